//! The forward pass: batch statistics per channel in two passes, then `max(0, a·x + b)`.

use burn::tensor::Shape;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{NchwDims, Normalised, affine};
use crate::ops::flex::{f32_values, flex_tensor};
use crate::ops::simd::{plane_sums, scale_shift_relu};
use burn::backend::Flex;

pub(super) fn batch_norm_relu(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> Normalised<Flex> {
    let dims = NchwDims::of(&x);
    let (x, gamma, beta) = (f32_values(&x), f32_values(&gamma), f32_values(&beta));
    let stats = ChannelStats::of(&x, dims);
    let affine = affine(&gamma, &beta, &stats.mean, &stats.variance, epsilon);
    let mut output = vec![0f32; x.len()];
    output
        .par_chunks_mut(dims.image())
        .zip(x.par_chunks(dims.image()))
        .for_each(|(out, input)| {
            let planes = out.chunks_mut(dims.plane).zip(input.chunks(dims.plane));
            for (c, (out, input)) in planes.enumerate() {
                let [a, b] = affine[c];
                scale_shift_relu(out, input, a, b);
            }
        });
    (
        flex_tensor(output, dims.shape()),
        flex_tensor(stats.mean, Shape::new([dims.channels])),
        flex_tensor(stats.variance, Shape::new([dims.channels])),
    )
}

/// Batch mean and biased variance per channel, in two passes (the variance from centred values,
/// which keeps its precision when the mean is large).
struct ChannelStats {
    mean: Vec<f32>,
    variance: Vec<f32>,
}

impl ChannelStats {
    fn of(x: &[f32], dims: NchwDims) -> Self {
        let count = dims.count_per_channel() as f64;
        let per_channel: Vec<(f32, f32)> = (0..dims.channels)
            .into_par_iter()
            .map(|c| {
                // The first pass centres on 0 for the sum; the second on the mean.
                let sum: f64 = dims
                    .planes_of(c)
                    .map(|range| plane_sums(&x[range], 0.0).0 as f64)
                    .sum();
                let mean = (sum / count) as f32;
                let squares: f64 = dims
                    .planes_of(c)
                    .map(|range| plane_sums(&x[range], mean).1 as f64)
                    .sum();
                (mean, (squares / count) as f32)
            })
            .collect();
        let (mean, variance): (Vec<f32>, Vec<f32>) = per_channel.into_iter().unzip();
        Self { mean, variance }
    }
}
