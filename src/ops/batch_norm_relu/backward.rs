//! The backward pass: two sums per channel over the positions the ReLU let through, then the
//! input's gradient in one pass.

use burn::backend::Flex;
use burn::tensor::Shape;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{NchwDims, Normalised, affine};
use crate::ops::flex::{f32_values, flex_tensor, into_overwritable, merge_in_order};
use crate::ops::simd::{batch_norm_input_grad, masked_sums};

pub(super) fn batch_norm_relu_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    output_grad: FlexTensor,
    epsilon: f64,
) -> Normalised<Flex> {
    let dims = NchwDims::of(&x);
    let x = f32_values(&x);
    let (gamma, beta) = (f32_values(&gamma), f32_values(&beta));
    let (mean, variance) = (f32_values(&mean), f32_values(&variance));
    let affine = affine(&gamma, &beta, &mean, &variance, epsilon);
    // The input's gradient overwrites the output's, which nothing else holds once the graph
    // hands it over: no new buffer to allocate and clear.
    let mut grad_x = into_overwritable(output_grad);
    let count = dims.count_per_channel() as f64;
    // Per channel: Σg and Σg·(x − mean) over the positions the ReLU let through. Each thread
    // walks a run of whole images in memory order (channel by channel, plane by plane, the
    // planes of one channel lie an image apart), and the runs' sums are added in image order
    // (`merge_in_order`).
    let sums: Vec<(f64, f64)> = {
        let grad = grad_x.storage::<f32>();
        let images_per_task = dims.batch.div_ceil(rayon::current_num_threads()).max(1);
        let per_task: Vec<Vec<(f64, f64)>> = grad
            .par_chunks(images_per_task * dims.image())
            .zip(x.par_chunks(images_per_task * dims.image()))
            .map(|(grad, x)| {
                let mut sums = vec![(0.0, 0.0); dims.channels];
                let planes = grad
                    .chunks_exact(dims.plane)
                    .zip(x.chunks_exact(dims.plane));
                for (index, (g, v)) in planes.enumerate() {
                    let c = index % dims.channels;
                    let (a, b) = masked_sums(g, v, mean[c], affine[c]);
                    sums[c] = (sums[c].0 + a as f64, sums[c].1 + b as f64);
                }
                sums
            })
            .collect();
        merge_in_order(per_task, |all, task| (all.0 + task.0, all.1 + task.1))
    };
    let inv_std: Vec<f64> = variance
        .iter()
        .map(|&v| 1.0 / (v as f64 + epsilon).sqrt())
        .collect();
    let grad_beta: Vec<f32> = sums.iter().map(|&(sg, _)| sg as f32).collect();
    let grad_gamma: Vec<f32> = sums
        .iter()
        .zip(&inv_std)
        .map(|(&(_, sgx), &s)| (sgx * s) as f32)
        .collect();
    // dx = k·g − k·Σg/M − k·(x − mean)·Σg(x − mean)/(M·(var + ε)), with k = gamma/std.
    let coefficients: Vec<[f32; 3]> = (0..dims.channels)
        .map(|c| {
            let k = gamma[c] as f64 * inv_std[c];
            let (sg, sgx) = sums[c];
            [
                k as f32,
                (k * sg / count) as f32,
                (k * sgx * inv_std[c] * inv_std[c] / count) as f32,
            ]
        })
        .collect();
    grad_x
        .storage_mut::<f32>()
        .par_chunks_mut(dims.image())
        .enumerate()
        .for_each(|(n, grad)| {
            for (c, grad) in grad.chunks_mut(dims.plane).enumerate() {
                let x = &x[dims.plane_range(n, c)];
                batch_norm_input_grad(grad, x, coefficients[c], mean[c], affine[c]);
            }
        });
    (
        grad_x,
        flex_tensor(grad_gamma, Shape::new([dims.channels])),
        flex_tensor(grad_beta, Shape::new([dims.channels])),
    )
}
