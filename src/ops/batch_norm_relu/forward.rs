//! The forward pass: batch statistics per channel (unless the convolution before brought them),
//! then `max(0, a·x + b)`.

use std::mem::MaybeUninit;

use burn::tensor::Shape;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{NchwDims, Normalised, affine};
use crate::ops::flex::{f32_values, flex_tensor, written_vec};
use crate::ops::moments::Moments;
use crate::ops::simd::scale_shift_relu;
use burn::backend::Flex;

pub(super) fn batch_norm_relu(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    statistics: FlexTensor,
    epsilon: f64,
) -> Normalised<Flex> {
    let dims = NchwDims::of(&x);
    let (x, gamma, beta) = (f32_values(&x), f32_values(&gamma), f32_values(&beta));
    let statistics = f32_values(&statistics);
    let (mean, variance) = statistics.split_at(dims.channels);
    let affine = affine(&gamma, &beta, mean, variance, epsilon);
    let fill = |output: &mut [MaybeUninit<f32>]| {
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
    };
    // SAFETY: the images' planes cover the output, and `scale_shift_relu` writes each value of
    // its plane.
    #[allow(unsafe_code)]
    let output = unsafe { written_vec(x.len(), fill) };
    (
        flex_tensor(output, dims.shape()),
        flex_tensor(mean.to_vec(), Shape::new([dims.channels])),
        flex_tensor(variance.to_vec(), Shape::new([dims.channels])),
    )
}

/// Batch mean and biased variance per channel as `[2, C]`, from the moments of its planes (two
/// passes over each plane, channels in parallel).
pub(super) fn batch_statistics(x: FlexTensor) -> FlexTensor {
    let dims = NchwDims::of(&x);
    let x = f32_values(&x);
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..dims.channels)
        .into_par_iter()
        .map(|c| {
            dims.planes_of(c)
                .map(|range| Moments::of_plane(&x[range]))
                .fold(Moments::default(), Moments::merge)
                .mean_variance()
        })
        .unzip();
    flex_tensor([mean, variance].concat(), [2, dims.channels])
}
