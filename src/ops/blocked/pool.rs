//! Max pooling and global average pooling on the blocked layout, a vector of channels at a
//! time.

#![allow(unsafe_code)]

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::conv::load;
use super::layout::{BLOCK, Map, Packing};
use crate::ops::simd::SimdLevel;

/// A max pool without padding: `kernel` windows every `stride` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MaxPool {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
}

impl MaxPool {
    /// `[H', W']` for an input of `[height, width]`, or `None` when a window does not fit.
    pub(crate) fn output_size(&self, [height, width]: [usize; 2]) -> Option<[usize; 2]> {
        let side = |size: usize, axis: usize| {
            (size >= self.kernel[axis]).then(|| (size - self.kernel[axis]) / self.stride[axis] + 1)
        };
        Some([side(height, 0)?, side(width, 1)?])
    }

    /// Units of work of one image: one output row of one block each.
    pub(crate) fn units(&self, output: &Map) -> usize {
        output.channels.div_ceil(BLOCK) * output.height
    }

    /// Computes units `units` (of [`units`](Self::units)) of `output` from `input`.
    ///
    /// # Safety
    ///
    /// As `PackedConv::run`: `input` holds `input_map.len()` values, `output` is valid for
    /// writes of `output_map.len()` values of which no one else touches these units' rows
    /// meanwhile; both maps blocked, with the same channels, the input without a border and the
    /// output of `output_size` of the input's size.
    pub(crate) unsafe fn run(
        &self,
        level: SimdLevel,
        input: &[f32],
        input_map: &Map,
        output: *mut f32,
        output_map: &Map,
        units: Range<usize>,
    ) {
        debug_assert_eq!(input.len(), input_map.len());
        debug_assert!(input_map.packing == Packing::Blocked && input_map.border == [0, 0]);
        debug_assert_eq!(output_map.packing, Packing::Blocked);
        debug_assert_eq!(
            self.output_size([input_map.height, input_map.width]),
            Some([output_map.height, output_map.width])
        );
        let op = PoolUnits {
            pool: *self,
            input,
            input_map,
            output,
            output_map,
            units,
        };
        if level.run(op).is_none() {
            unreachable!("the blocked path runs at an available level")
        }
    }
}

struct PoolUnits<'a> {
    pool: MaxPool,
    input: &'a [f32],
    input_map: &'a Map,
    output: *mut f32,
    output_map: &'a Map,
    units: Range<usize>,
}

impl WithSimd for PoolUnits<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let (input, output) = (self.input_map.strides(), self.output_map.strides());
        let [kh, kw] = self.pool.kernel;
        let [sh, sw] = self.pool.stride;
        let rows = self.output_map.height;
        let lanes = S::F32_LANES.min(BLOCK);
        // The last window's last value, from which the bounds of every load below follow.
        let [last_row, last_column] = [rows - 1, self.output_map.width - 1];
        let blocks = self.output_map.channels.div_ceil(BLOCK);
        let reach = (blocks - 1) * input.block
            + (last_row * sh + kh - 1) * input.row
            + (last_column * sw + kw - 1) * input.pixel
            + BLOCK;
        assert!(
            reach <= self.input.len(),
            "the pool's windows lie inside its input"
        );
        let x = self.input.as_ptr();
        let nan = simd.splat_f32s(f32::NAN);
        for unit in self.units {
            let (block, row) = (unit / rows, unit % rows);
            let window_row = block * input.block + row * sh * input.row;
            let out_row = block * output.block + self.output_map.interior() + row * output.row;
            for column in 0..self.output_map.width {
                let window = window_row + column * sw * input.pixel;
                for lane in (0..BLOCK).step_by(lanes) {
                    // SAFETY: every window value of this unit is at most `reach` (checked
                    // above), with a whole vector of its block behind it.
                    let first = unsafe { x.add(window + lane) };
                    // SAFETY: as above.
                    let mut max = unsafe { load::<S>(first) };
                    // A window with a NaN gives NaN, as the crate's and burn's other pools do,
                    // so that a diverging network shows. `ordered` holds the lanes with no NaN
                    // so far; the maximum itself is the plain one (one instruction where the
                    // CPU has it), and the NaN comes in at the end: two instructions a value
                    // less than a NaN-keeping maximum at each step.
                    let mut ordered = simd.equal_f32s(max, max);
                    for ky in 0..kh {
                        for kx in 0..kw {
                            // SAFETY: as above.
                            let value =
                                unsafe { load::<S>(first.add(ky * input.row + kx * input.pixel)) };
                            max = simd.max_f32s(value, max);
                            ordered = simd.and_m32s(ordered, simd.equal_f32s(value, value));
                        }
                    }
                    let max = simd.select_f32s(ordered, max, nan);
                    // SAFETY: the output pixel's channels are inside the output map, in a row
                    // of this unit.
                    unsafe {
                        let at = self.output.add(out_row + column * output.pixel + lane);
                        (at as *mut S::f32s).write_unaligned(max);
                    }
                }
            }
        }
    }
}

/// The mean of each of the first `channels` maps of `input` (blocked, no border), into
/// `means`.
pub(crate) fn global_average(level: SimdLevel, input: &[f32], map: &Map, means: &mut [f32]) {
    debug_assert!(map.packing == Packing::Blocked && map.border == [0, 0]);
    let op = GlobalAverage { input, map, means };
    if level.run(op).is_none() {
        unreachable!("the blocked path runs at an available level")
    }
}

struct GlobalAverage<'a> {
    input: &'a [f32],
    map: &'a Map,
    means: &'a mut [f32],
}

impl WithSimd for GlobalAverage<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let s = self.map.strides();
        let pixels = self.map.height * self.map.width;
        let lanes = S::F32_LANES.min(BLOCK);
        let mut sums = [0f32; BLOCK];
        for (block, means) in self.means.chunks_mut(BLOCK).enumerate() {
            let values = &self.input[block * s.block..][..pixels * BLOCK];
            for lane in (0..BLOCK).step_by(lanes) {
                let mut sum = simd.splat_f32s(0.0);
                for pixel in values.chunks_exact(BLOCK) {
                    let part = &pixel[lane..lane + lanes];
                    // SAFETY: `part` holds one vector's worth of values.
                    let v = unsafe { (part.as_ptr() as *const S::f32s).read_unaligned() };
                    sum = simd.add_f32s(sum, v);
                }
                let part = &mut sums[lane..lane + lanes];
                // SAFETY: `part` has room for one vector.
                unsafe { (part.as_mut_ptr() as *mut S::f32s).write_unaligned(sum) };
            }
            for (mean, sum) in means.iter_mut().zip(sums) {
                *mean = sum / pixels as f32;
            }
        }
    }
}
