//! The backward pass on slices: the weight, bias and input gradients in one walk over the
//! batch, so that each group's output gradient is read while it is in cache.
//!
//! Per group of images `G`, with `P_G` their patch matrices side by side
//! (`[C·kh·kw, |G|·H'·W']`) and `dY_G` their output gradients likewise (`[C_out, |G|·H'·W']`):
//! - `dW += dY_G · P_Gᵀ`, summed per task and the task sums added at the end (no transposed
//!   copies of the activations; for a single image of a 1×1 layer `P_G` is the image itself);
//! - `db += row sums of dY_G`;
//! - `dx = col2im(Wᵀ · dY_G)` image by image, or `Wᵀ · dY` itself for a single image of a
//!   1×1 layer; skipped when the input needs no gradient (the first layer's images).

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::group::{join_columns, patches};
use super::patches::{Columns, col2im_add};
use super::tasks::ImageTasks;
use crate::ops::gemm::{MatRef, matmul};

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
    let (patch_len, plane) = (g.patch_len(), g.output_plane());
    let weight_t = MatRef::transposed(weight, patch_len, g.out_channels);

    let mut dx = if input_grad {
        vec![0f32; g.batch * g.input_image()]
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
            let mut dw = vec![0f32; g.out_channels * patch_len];
            let mut db = vec![0f64; g.out_channels];
            // Scratch for one group, reused for each group of the task.
            let single_pointwise = group == 1 && g.is_pointwise();
            let scratch = |rows: usize, needed: bool| {
                if needed {
                    vec![0f32; rows * group * plane]
                } else {
                    Vec::new()
                }
            };
            let mut patch_scratch = scratch(patch_len, !single_pointwise);
            let mut patch_grad = scratch(patch_len, input_grad && !single_pointwise);
            let mut wide_grad = scratch(g.out_channels, group > 1);

            let groups = x
                .chunks(group * g.input_image())
                .zip(dy.chunks(group * g.output_image()));
            for (index, (images, dy)) in groups.enumerate() {
                let count = images.len() / g.input_image();
                let columns = count * plane;
                let patches = patches(images, g, count, &mut patch_scratch);
                let dy = if count == 1 {
                    dy
                } else {
                    let wide = &mut wide_grad[..g.out_channels * columns];
                    join_columns(dy, g.out_channels, plane, wide);
                    wide
                };
                let dy_matrix = MatRef::row_major(dy, g.out_channels, columns);

                let patches_t = MatRef::transposed(patches, columns, patch_len);
                matmul(
                    &mut dw,
                    dy_matrix,
                    patches_t,
                    index > 0,
                    tasks.product_threads,
                );
                for (sum, row) in db.iter_mut().zip(dy.chunks_exact(columns)) {
                    *sum += row_sum(row);
                }

                if let Some(dx) = dx.as_deref_mut() {
                    let first = index * group * g.input_image();
                    let dx = &mut dx[first..first + count * g.input_image()];
                    if count == 1 && g.is_pointwise() {
                        matmul(dx, weight_t, dy_matrix, false, tasks.product_threads);
                    } else {
                        let grad = &mut patch_grad[..patch_len * columns];
                        matmul(grad, weight_t, dy_matrix, false, tasks.product_threads);
                        for (i, dx) in dx.chunks_exact_mut(g.input_image()).enumerate() {
                            col2im_add(grad, g, Columns::of_group(g, i, count), dx);
                        }
                    }
                }
            }
            (dw, db)
        })
        .collect();

    let mut sums = partial_sums.into_iter();
    let (mut weight_grad, mut bias_grad) = sums.next().expect("a batch has at least one image");
    for (dw, db) in sums {
        weight_grad.iter_mut().zip(dw).for_each(|(a, b)| *a += b);
        bias_grad.iter_mut().zip(db).for_each(|(a, b)| *a += b);
    }
    ConvGrads {
        input: input_grad.then_some(dx),
        weight: weight_grad,
        bias: bias_grad.into_iter().map(|v| v as f32).collect(),
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
