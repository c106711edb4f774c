//! The forward pass on slices: one matrix product per group of images over their patch
//! matrices (or, where a layer narrows, the transpose of its mirror image: a product over the
//! images themselves, then col2im), with the bias and the ReLU applied while the output is
//! still in cache, and, for a batch norm that follows, each map's moments taken there too.

use rayon::prelude::*;

use super::group::{
    GroupScratch, convolve_group, join, preferred_mirror, transposed_convolve_group,
};
use super::tasks::ImageTasks;
use crate::ops::flex::{merge_in_order, zeros};
use crate::ops::gemm::MatRef;
use crate::ops::geometry::ConvGeometry;
use crate::ops::moments::{Moments, accumulate};

/// `[N, C_out, H', W']` output of convolving `x` (`[N, C, H, W]`) with `weight`
/// (`[C_out, C, kh, kw]`) plus `bias` (`[C_out]`), followed by a ReLU when `relu` is set; all
/// row-major, with the sizes in `g`.
///
/// # Panics
///
/// If a slice is shorter than `g` says.
pub fn conv2d_forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    g: &ConvGeometry,
    relu: bool,
) -> Vec<f32> {
    forward(x, weight, bias, g, relu, false).0
}

/// [`conv2d_forward`] without a ReLU, and the moments of each output channel over the batch,
/// taken from each map while it is in cache (for the batch norm that follows).
pub(crate) fn conv2d_forward_with_moments(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    g: &ConvGeometry,
) -> (Vec<f32>, Vec<Moments>) {
    forward(x, weight, bias, g, false, true)
}

fn forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    g: &ConvGeometry,
    relu: bool,
    with_moments: bool,
) -> (Vec<f32>, Vec<Moments>) {
    let tasks = ImageTasks::for_batch(g.batch);
    let group = tasks.images_per_product(g);
    let mirror = preferred_mirror(weight, g);
    let weight = MatRef::row_major(weight, g.out_channels, g.patch_len());
    let mut output = zeros(g.batch * g.output_image());
    let moments_of_tasks: Vec<Vec<Moments>> = output
        .par_chunks_mut(tasks.images_per_task * g.output_image())
        .zip(x.par_chunks(tasks.images_per_task * g.input_image()))
        .map(|(output, x)| {
            let mut moments =
                vec![Moments::default(); if with_moments { g.out_channels } else { 0 }];
            let mut scratch = GroupScratch::new(mirror.as_ref().map_or(g, |(m, _)| m), group);
            let groups = output
                .chunks_mut(group * g.output_image())
                .zip(x.chunks(group * g.input_image()));
            for (output, images) in groups {
                let threads = tasks.product_threads;
                if let Some((m, mirrored)) = &mirror {
                    // The mirror's transpose: col2im of the mirrored weights times the images.
                    let weight_t = MatRef::transposed(mirrored, m.patch_len(), m.out_channels);
                    let joined = join(images, g.in_channels, g.input_plane(), &mut scratch.wide);
                    transposed_convolve_group(
                        joined,
                        weight_t,
                        m,
                        &mut scratch.patches,
                        output,
                        threads,
                    );
                } else {
                    convolve_group(images, weight, g, &mut scratch, output, threads);
                }
                let plane = g.output_plane();
                for (map, &b) in output.chunks_exact_mut(plane).zip(bias.iter().cycle()) {
                    add_bias(map, b, relu);
                }
                if with_moments {
                    accumulate(&mut moments, output, plane);
                }
            }
            moments
        })
        .collect();
    let moments = merge_in_order(moments_of_tasks, Moments::merge);
    (output, moments)
}

/// `map += b`, then `max(map, 0)` when `relu` is set; NaN stays NaN, as in burn's and
/// PyTorch's ReLU, so that a diverging run is seen as one.
fn add_bias(map: &mut [f32], b: f32, relu: bool) {
    if relu {
        for v in map {
            let shifted = *v + b;
            *v = if shifted < 0.0 { 0.0 } else { shifted };
        }
    } else if b != 0.0 {
        for v in map {
            *v += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_keeps_nan_and_zeroes_negatives() {
        let mut map = [f32::NAN, -2.0, 0.5, -0.5];
        add_bias(&mut map, 1.0, true);
        assert!(map[0].is_nan());
        assert_eq!(&map[1..], &[0.0, 1.5, 0.5]);
    }
}
