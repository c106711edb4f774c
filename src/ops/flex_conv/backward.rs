//! The backward pass on slices: the weight, bias and input gradients in one walk over the
//! batch, so that each group's output gradient is read while it is in cache.
//!
//! Design notes: `docs/design.md`, "ops::flex_conv::backward".

use rayon::prelude::*;

use super::group::{
    Maps, join, mirrored_weights, multiply_into_maps, patches, preferred_mirror,
    transposed_convolve_group,
};
use super::tasks::ImageTasks;
use crate::ops::flex::zeros;
use crate::ops::gemm::{MatRef, Threads, matmul};
use crate::ops::geometry::ConvGeometry;
use crate::ops::scratch::Scratch;

/// The gradients of one convolution.
pub struct ConvGrads {
    /// `[N, C, H, W]`, when asked for.
    pub input: Option<Vec<f32>>,
    /// `[C_out, C, kh, kw]`.
    pub weight: Vec<f32>,
    /// `[C_out]`.
    pub bias: Vec<f32>,
}

/// The gradients of [`conv2d_forward`](super::conv2d_forward)`(x, weight, ·, g, false)` given
/// the gradient of its output (`[N, C_out, H', W']`); the input's only when `input_grad` is set.
///
/// # Panics
///
/// If a slice is shorter than `g` says, or the batch is empty.
pub fn conv2d_backward(
    x: &[f32],
    weight: &[f32],
    output_grad: &[f32],
    g: &ConvGeometry,
    input_grad: bool,
) -> ConvGrads {
    let tasks = ImageTasks::for_batch(g.batch);
    let group = tasks.images_per_product(g);
    let mirror = preferred_mirror(weight, g);
    let form = match &mirror {
        Some((m, w)) => Form::Mirrored {
            mirror: m,
            weight: MatRef::row_major(w, m.out_channels, m.patch_len()),
        },
        None => Form::Direct {
            weight_t: MatRef::transposed(weight, g.patch_len(), g.out_channels),
        },
    };

    let mut dx = if input_grad {
        zeros(g.batch * g.input_image())
    } else {
        Vec::new()
    };
    let dx_parts: Vec<Option<&mut [f32]>> = if input_grad {
        dx.chunks_mut(tasks.images_per_task * g.input_image())
            .map(Some)
            .collect()
    } else {
        (0..tasks.count(g.batch)).map(|_| None).collect()
    };

    let partial_sums: Vec<(Vec<f32>, Vec<f64>)> = dx_parts
        .into_par_iter()
        .enumerate()
        .map(|(task, mut dx)| {
            let first = task * tasks.images_per_task;
            let images = first..(first + tasks.images_per_task).min(g.batch);
            let x = &x[images.start * g.input_image()..images.end * g.input_image()];
            let dy = &output_grad[images.start * g.output_image()..images.end * g.output_image()];
            let mut sums = TaskSums {
                weight: vec![0f32; g.out_channels * g.patch_len()],
                bias: vec![0f64; g.out_channels],
            };
            let mut scratch = form.scratch(g, group, input_grad);
            let groups = x
                .chunks(group * g.input_image())
                .zip(dy.chunks(group * g.output_image()));
            for (index, (images, dy)) in groups.enumerate() {
                let dx = dx.as_deref_mut().map(|dx| {
                    let first = index * group * g.input_image();
                    &mut dx[first..first + images.len()]
                });
                let threads = tasks.product_threads;
                // The task's first group overwrites the weight sums, the others add to them.
                let accumulate = index > 0;
                let group = Group { x: images, dy, dx };
                form.group_gradients(g, group, accumulate, &mut scratch, &mut sums, threads);
            }
            (sums.weight, sums.bias)
        })
        .collect();

    let mut sums = partial_sums.into_iter();
    let (mut weight_grad, mut bias_grad) = sums.next().expect("a batch has at least one image");
    for (dw, db) in sums {
        weight_grad.iter_mut().zip(dw).for_each(|(a, b)| *a += b);
        bias_grad.iter_mut().zip(db).for_each(|(a, b)| *a += b);
    }
    if let Some((m, _)) = &mirror {
        // The sums are the mirror's weight gradient; mirroring it back gives this one's.
        weight_grad = mirrored_weights(&weight_grad, m);
    }
    ConvGrads {
        input: input_grad.then_some(dx),
        weight: weight_grad,
        bias: bias_grad.into_iter().map(|v| v as f32).collect(),
    }
}

/// Which products compute a group's gradients (see `ConvGeometry::preferred_mirror`).
enum Form<'a> {
    /// Over the patch matrix of `x`: `dW += dY·P(x)ᵀ`, `dx = col2im(Wᵀ·dY)`.
    Direct { weight_t: MatRef<'a> },
    /// Over the patch matrix of `dY` in the mirror image `mirror`, whose weights are `weight`
    /// (`[C, C_out·kh·kw]`): its weight gradient `x·P(dY)ᵀ` (this one's mirrored) and its
    /// forward pass `dx = weight·P(dY)`.
    Mirrored {
        mirror: &'a ConvGeometry,
        weight: MatRef<'a>,
    },
}

/// One task's running sums of the weight gradient (in the form's layout) and bias gradient.
struct TaskSums {
    weight: Vec<f32>,
    bias: Vec<f64>,
}

/// A group of images: `x` (`[count, C, H, W]`), its output gradient `dy`
/// (`[count, C_out, H', W']`), and where its input gradient goes (`[count, C, H, W]`, holding
/// zeros), when asked for.
struct Group<'a> {
    x: &'a [f32],
    dy: &'a [f32],
    dx: Option<&'a mut [f32]>,
}

/// One task's scratch, sized for its largest group and reused for each.
struct TaskScratch {
    /// The patch matrix: of `x` (direct form) or of `dY` in the mirror (mirrored form).
    patches: Scratch,
    /// The group's maps side by side: of `dY` (direct) or of `x` (mirrored).
    joined: Scratch,
    /// The direct form's `Wᵀ·dY` before col2im, when the input takes a gradient.
    product: Scratch,
    /// The mirrored form's `dx` of a group, side by side, before it is split per image.
    wide: Scratch,
}

impl Form<'_> {
    fn scratch(&self, g: &ConvGeometry, group: usize, input_grad: bool) -> TaskScratch {
        let sized = |len: usize, needed: bool| Scratch::new(if needed { len } else { 0 });
        let single_pointwise = group == 1 && g.is_pointwise();
        let columns = group * g.output_plane();
        match self {
            Form::Direct { .. } => TaskScratch {
                patches: sized(g.patch_len() * columns, !single_pointwise),
                joined: sized(g.out_channels * columns, group > 1),
                product: sized(g.patch_len() * columns, input_grad && !single_pointwise),
                wide: Scratch::new(0),
            },
            Form::Mirrored { mirror, .. } => {
                let columns = group * mirror.output_plane();
                TaskScratch {
                    patches: Scratch::new(mirror.patch_len() * columns),
                    joined: sized(g.input_image() * group, group > 1),
                    product: Scratch::new(0),
                    wide: sized(g.in_channels * columns, input_grad && group > 1),
                }
            }
        }
    }

    /// Adds the weight and bias gradients of `group` to `sums` (overwriting the weight sums
    /// unless `accumulate`), and writes its input gradient when asked for.
    fn group_gradients(
        &self,
        g: &ConvGeometry,
        Group { x, dy, dx }: Group<'_>,
        accumulate: bool,
        scratch: &mut TaskScratch,
        sums: &mut TaskSums,
        threads: Threads,
    ) {
        let count = x.len() / g.input_image();
        for (index, map) in dy.chunks_exact(g.output_plane()).enumerate() {
            sums.bias[index % g.out_channels] += row_sum(map);
        }
        match *self {
            Form::Direct { weight_t } => {
                let columns = count * g.output_plane();
                let patches = patches(x, g, count, &mut scratch.patches);
                let patches_t = MatRef::transposed(patches, columns, g.patch_len());
                let dy = join(dy, g.out_channels, g.output_plane(), &mut scratch.joined);
                let dy_matrix = MatRef::row_major(dy, g.out_channels, columns);
                matmul(&mut sums.weight, dy_matrix, patches_t, accumulate, threads);
                if let Some(dx) = dx {
                    transposed_convolve_group(dy, weight_t, g, &mut scratch.product, dx, threads);
                }
            }
            Form::Mirrored { mirror, weight } => {
                let columns = count * mirror.output_plane();
                let dy_patch_values = patches(dy, mirror, count, &mut scratch.patches);
                let dy_patches = MatRef::row_major(dy_patch_values, mirror.patch_len(), columns);
                let x_joined = join(x, g.in_channels, g.input_plane(), &mut scratch.joined);
                let x_matrix = MatRef::row_major(x_joined, g.in_channels, columns);
                let dy_patches_t = MatRef::transposed(dy_patch_values, columns, mirror.patch_len());
                matmul(
                    &mut sums.weight,
                    x_matrix,
                    dy_patches_t,
                    accumulate,
                    threads,
                );
                if let Some(dx) = dx {
                    let maps = Maps {
                        rows: g.in_channels,
                        plane: g.input_plane(),
                    };
                    multiply_into_maps(dx, weight, dy_patches, maps, &mut scratch.wide, threads);
                }
            }
        }
    }
}

/// The sum of `values`, over eight lanes (a loop the compiler vectorises, where a plain float
/// sum must stay sequential), the lanes then added in `f64`.
fn row_sum(values: &[f32]) -> f64 {
    let mut lanes = [0f32; 8];
    let mut blocks = values.chunks_exact(8);
    for block in &mut blocks {
        for (lane, &v) in lanes.iter_mut().zip(block) {
            *lane += v;
        }
    }
    let rest: f64 = blocks.remainder().iter().map(|&v| v as f64).sum();
    lanes.iter().map(|&v| v as f64).sum::<f64>() + rest
}
