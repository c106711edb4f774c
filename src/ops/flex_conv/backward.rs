//! The backward pass on slices: the weight, bias and input gradients in one walk over the
//! batch, so that each image's output gradient is read while it is in cache.
//!
//! Per image `b`, with `P_b` its patch matrix (`[C·kh·kw, H'·W']`) and `dY_b` its output
//! gradient (`[C_out, H'·W']`):
//! - `dW += dY_b · P_bᵀ`, summed per task and the task sums added at the end (no transposed
//!   copies of the activations; for a 1×1 layer `P_b` is the image itself);
//! - `db += row sums of dY_b`;
//! - `dx_b = col2im(Wᵀ · dY_b)`, or `Wᵀ · dY_b` itself for a 1×1 layer; skipped when the input
//!   needs no gradient (the first layer's images).

use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::patches::{col2im_add, im2col};
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
            let mut dw = vec![0f32; g.out_channels * patch_len];
            let mut db = vec![0f64; g.out_channels];
            let scratch = || {
                if g.is_pointwise() {
                    Vec::new()
                } else {
                    vec![0f32; patch_len * plane]
                }
            };
            let (mut patches, mut patch_grad) = (scratch(), scratch());
            for (i, b) in images.enumerate() {
                let image = &x[b * g.input_image()..][..g.input_image()];
                let dy = &output_grad[b * g.output_image()..][..g.output_image()];
                let dy_matrix = MatRef::row_major(dy, g.out_channels, plane);

                let patches = if g.is_pointwise() {
                    image
                } else {
                    im2col(image, g, &mut patches);
                    &patches
                };
                let patches_t = MatRef::transposed(patches, plane, patch_len);
                matmul(&mut dw, dy_matrix, patches_t, i > 0, tasks.product_threads);
                for (sum, row) in db.iter_mut().zip(dy.chunks_exact(plane)) {
                    *sum += row.iter().map(|&v| v as f64).sum::<f64>();
                }

                if let Some(dx) = dx.as_deref_mut() {
                    let dx = &mut dx[i * g.input_image()..][..g.input_image()];
                    if g.is_pointwise() {
                        matmul(dx, weight_t, dy_matrix, false, tasks.product_threads);
                    } else {
                        matmul(
                            &mut patch_grad,
                            weight_t,
                            dy_matrix,
                            false,
                            tasks.product_threads,
                        );
                        col2im_add(&patch_grad, g, dx);
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
