//! The backward pass: two sums per channel over the positions the ReLU let through, then the
//! input's gradient in one pass.

use burn::backend::Flex;
use burn::tensor::Shape;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{NchwDims, Normalised};
use crate::ops::flex::{f32_values, flex_tensor};
use crate::ops::simd::{batch_norm_input_grad, masked_sums};

pub(super) fn batch_norm_relu_backward(
    x: FlexTensor,
    output: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    output_grad: FlexTensor,
    epsilon: f64,
) -> Normalised<Flex> {
    let dims = NchwDims::of(&x);
    let (x, output, grad) = (
        f32_values(&x),
        f32_values(&output),
        f32_values(&output_grad),
    );
    let (gamma, mean, variance) = (f32_values(&gamma), f32_values(&mean), f32_values(&variance));
    let count = dims.count_per_channel() as f64;
    // Per channel: Σg and Σg·(x − mean) over the positions the ReLU let through.
    let sums: Vec<(f64, f64)> = (0..dims.channels)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            dims.planes_of(c).fold((0.0, 0.0), |(sg, sgx), range| {
                let (g, y, v) = (&grad[range.clone()], &output[range.clone()], &x[range]);
                let (a, b) = masked_sums(g, y, v, m);
                (sg + a as f64, sgx + b as f64)
            })
        })
        .collect();
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
    let mut grad_x = vec![0f32; x.len()];
    grad_x
        .par_chunks_mut(dims.image())
        .enumerate()
        .for_each(|(n, out)| {
            for (c, out) in out.chunks_mut(dims.plane).enumerate() {
                let range = dims.plane_range(n, c);
                let planes = (&grad[range.clone()], &output[range.clone()], &x[range]);
                batch_norm_input_grad(out, planes, coefficients[c], mean[c]);
            }
        });
    (
        flex_tensor(grad_x, dims.shape()),
        flex_tensor(grad_gamma, Shape::new([dims.channels])),
        flex_tensor(grad_beta, Shape::new([dims.channels])),
    )
}
