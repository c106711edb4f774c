//! A whole network on the blocked path: its packed layers in order, run image by image.
//!
//! With at least as many images as threads, each thread takes whole images through every
//! layer, so that an image's activations stay in its core's cache. With fewer, the threads
//! share each layer of one image, unit by unit.

#![allow(unsafe_code)]

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::conv::PackedConv;
use super::layout::{Map, Packing, planes_with_border};
use super::pool::{MaxPool, global_average};
use crate::ops::scratch::Scratch;
use crate::ops::simd::SimdLevel;
use crate::ops::team;

/// One layer of a plan.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Conv(PackedConv),
    MaxPool(MaxPool),
    /// The mean of each map: the logits, the network's last step.
    GlobalAverage,
}

/// A network as the blocked path runs it: convolutions and max pools, ending in a global
/// average pool, starting with a convolution that reads the images' planes.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    steps: Vec<Step>,
}

/// A plan cannot take this network; it runs layer by layer instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unsupported;

impl Plan {
    /// The plan of `steps`, if it has the shape the path runs: a convolution reading planes
    /// first, blocked layers after it, a global average last and nowhere else.
    pub(crate) fn new(steps: Vec<Step>) -> Result<Self, Unsupported> {
        let (last, layers) = steps.split_last().ok_or(Unsupported)?;
        let starts_with_planes =
            matches!(layers.first(), Some(Step::Conv(c)) if c.input == Packing::Planes);
        let rest_blocked = layers.iter().skip(1).all(|step| match step {
            Step::Conv(conv) => conv.input == Packing::Blocked,
            Step::MaxPool(_) => true,
            Step::GlobalAverage => false,
        });
        if !(matches!(last, Step::GlobalAverage) && starts_with_planes && rest_blocked) {
            return Err(Unsupported);
        }
        Ok(Self { steps })
    }

    /// The maps every step reads, then the last one's output, for images of `[C, H, W]`; or
    /// `None` when a window does not fit them.
    fn maps(&self, [channels, height, width]: [usize; 3]) -> Option<Vec<Map>> {
        let border_for = |step: Option<&Step>| match step {
            Some(Step::Conv(conv)) => conv.padding,
            _ => [0, 0],
        };
        let mut maps = vec![Map {
            packing: Packing::Planes,
            channels,
            height,
            width,
            border: border_for(self.steps.first()),
        }];
        for (index, step) in self.steps.iter().enumerate() {
            let current = maps[index];
            let next_border = border_for(self.steps.get(index + 1));
            let (channels, [height, width]) = match step {
                Step::Conv(conv) => {
                    if conv.in_channels != current.channels {
                        return None;
                    }
                    (
                        conv.out_channels,
                        conv.output_size([current.height, current.width])?,
                    )
                }
                Step::MaxPool(pool) => (
                    current.channels,
                    pool.output_size([current.height, current.width])?,
                ),
                Step::GlobalAverage => (current.channels, [1, 1]),
            };
            maps.push(Map {
                packing: Packing::Blocked,
                channels,
                height,
                width,
                border: next_border,
            });
        }
        Some(maps)
    }

    /// Logits `[N, classes]` of `images` (`[N, C, H, W]` row-major) at `level`, or `None` when
    /// the images do not fit the network.
    ///
    /// With at least as many images as threads, each thread takes whole images; with fewer, the
    /// threads share each step of one image after the other. The threads are the calling one
    /// and the helpers of `ops::team`, as many in all as rayon's current pool has.
    pub(crate) fn forward(
        &self,
        level: SimdLevel,
        images: &[f32],
        shape: [usize; 4],
    ) -> Option<Vec<f32>> {
        let [batch, channels, height, width] = shape;
        let maps = self.maps([channels, height, width])?;
        let classes = maps[maps.len() - 1].channels;
        let image_len = channels * height * width;
        assert_eq!(images.len(), batch * image_len, "the images are {shape:?}");
        let mut logits = vec![0f32; batch * classes];
        let threads = rayon::current_num_threads().max(1);
        if batch >= threads {
            let next = AtomicUsize::new(0);
            let out = SharedOutput(logits.as_mut_ptr());
            team::run(threads, &|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= batch {
                        break;
                    }
                    // SAFETY: image `index` is claimed by this thread alone, and its logits
                    // are `classes` of the `batch · classes` values of `logits`.
                    let logits = unsafe {
                        std::slice::from_raw_parts_mut(out.get().add(index * classes), classes)
                    };
                    let image = &images[index * image_len..(index + 1) * image_len];
                    ImageRun::new(self, level, &maps, image).alone(logits);
                }
            });
        } else {
            for (logits, image) in logits.chunks_mut(classes).zip(images.chunks(image_len)) {
                ImageRun::new(self, level, &maps, image).shared(threads, logits);
            }
        }
        Some(logits)
    }
}

/// One image's pass, which any number of threads take part in: each claims units of the
/// current step until none are left, then waits until every claimed unit is done before it
/// goes to the next step. A thread only ever waits for units another thread is computing, so
/// a helper that joins late, or never, delays nothing but its own share.
struct ImageRun<'a> {
    steps: &'a [Step],
    maps: &'a [Map],
    level: SimdLevel,
    /// The image, or a copy of it with the first step's border.
    input: Input<'a>,
    /// The two buffers the steps write in turn, each as long as the largest map.
    buffers: [Scratch; 2],
    /// For each step, the units claimed and the units done.
    progress: Vec<(AtomicUsize, AtomicUsize)>,
}

enum Input<'a> {
    Image(&'a [f32]),
    Padded(Scratch),
}

impl<'a> ImageRun<'a> {
    fn new(plan: &'a Plan, level: SimdLevel, maps: &'a [Map], image: &'a [f32]) -> Self {
        let input_map = &maps[0];
        // The image is the first step's input as it is, unless that step pads it.
        let input = if input_map.border == [0, 0] {
            Input::Image(image)
        } else {
            let mut planes = Scratch::new(input_map.len());
            planes_with_border(image, input_map, &mut planes);
            Input::Padded(planes)
        };
        let largest = maps.iter().skip(1).map(Map::len).max().unwrap_or(0);
        Self {
            steps: &plan.steps,
            maps,
            level,
            input,
            buffers: [Scratch::new(largest), Scratch::new(largest)],
            progress: plan
                .steps
                .iter()
                .map(|_| (AtomicUsize::new(0), AtomicUsize::new(0)))
                .collect(),
        }
    }

    /// The pass on this thread alone.
    fn alone(mut self, logits: &mut [f32]) {
        let buffers = self
            .buffers
            .each_mut()
            .map(|b| SharedOutput(b.as_mut_ptr()));
        self.take_part(buffers, SharedOutput(logits.as_mut_ptr()), 1);
    }

    /// The pass on this thread and up to `threads − 1` helpers.
    fn shared(mut self, threads: usize, logits: &mut [f32]) {
        let buffers = self
            .buffers
            .each_mut()
            .map(|b| SharedOutput(b.as_mut_ptr()));
        let logits = SharedOutput(logits.as_mut_ptr());
        let run = &self;
        team::run(threads, &|| run.take_part(buffers, logits, threads));
    }

    /// Takes part in the pass, writing the steps' outputs to `buffers` in turn (step `i` to
    /// buffer `i mod 2`) and the logits to `logits`.
    fn take_part(&self, buffers: [SharedOutput; 2], logits: SharedOutput, threads: usize) {
        for (index, step) in self.steps.iter().enumerate() {
            let (from, to) = (&self.maps[index], &self.maps[index + 1]);
            let units = match step {
                Step::Conv(conv) => conv.units(self.level, to),
                Step::MaxPool(pool) => pool.units(to),
                Step::GlobalAverage => 1,
            };
            let source = match (index, &self.input) {
                (0, Input::Image(image)) => image,
                (0, Input::Padded(planes)) => &planes[..],
                // SAFETY: the step before wrote `from.len()` values there and is done (the
                // wait below), and nothing writes that buffer during this step.
                _ => unsafe {
                    std::slice::from_raw_parts(buffers[(index + 1) % 2].get(), from.len())
                },
            };
            let target = Target {
                output: buffers[index % 2],
                logits,
            };
            let (claimed, done) = &self.progress[index];
            // Units are claimed a few at a time: each claim and each report of work done is a
            // cache line that moves between cores, and a step of a small map has units of a
            // microsecond or less. Four claims per thread still even out a late thread.
            let chunk = units.div_ceil(4 * threads);
            loop {
                let first = claimed.fetch_add(chunk, Ordering::Relaxed);
                if first >= units {
                    break;
                }
                let last = (first + chunk).min(units);
                // SAFETY: each unit is claimed by one thread; the step's input is complete, and
                // the buffer it writes is read by no unit of this step.
                unsafe { self.units(step, source, from, to, target, first..last) };
                done.fetch_add(last - first, Ordering::Release);
            }
            while done.load(Ordering::Acquire) < units {
                std::hint::spin_loop();
            }
        }
    }

    /// Units `units` of `step`, reading `source` (laid out as `from`) and writing `to`; unit 0
    /// also clears the border of `to`, which no unit writes.
    ///
    /// # Safety
    ///
    /// Only one thread may run a given unit; `target` must have room for `to` (or for the
    /// logits, in the last step).
    unsafe fn units(
        &self,
        step: &Step,
        source: &[f32],
        from: &Map,
        to: &Map,
        target: Target,
        units: Range<usize>,
    ) {
        let output = target.output.get();
        if units.start == 0 && to.border != [0, 0] {
            // SAFETY: the border is written by unit 0 alone and read only in the next step.
            to.clear_border(unsafe { std::slice::from_raw_parts_mut(output, to.len()) });
        }
        let level = self.level;
        match step {
            // SAFETY: this unit's part of the output is written by this thread alone.
            Step::Conv(conv) => unsafe { conv.run(level, source, from, output, to, units) },
            // SAFETY: as for the convolution.
            Step::MaxPool(pool) => unsafe { pool.run(level, source, from, output, to, units) },
            Step::GlobalAverage => {
                // SAFETY: the logits are written by this one unit, `classes` values.
                let logits =
                    unsafe { std::slice::from_raw_parts_mut(target.logits.get(), to.channels) };
                global_average(level, source, from, logits);
            }
        }
    }
}

/// Where a step writes: its buffer, or the logits in the last step.
#[derive(Clone, Copy)]
struct Target {
    output: SharedOutput,
    logits: SharedOutput,
}

/// A buffer written by several threads at once, each in its own units.
#[derive(Clone, Copy)]
struct SharedOutput(*mut f32);

impl SharedOutput {
    fn get(self) -> *mut f32 {
        self.0
    }
}

// SAFETY: the threads that share it write disjoint parts of the buffer (each its own units), and
// the buffer outlives them (`team::run` returns after every thread is done).
unsafe impl Send for SharedOutput {}
// SAFETY: as above.
unsafe impl Sync for SharedOutput {}
