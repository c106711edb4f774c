//! A group of images as one product: their patch matrices, and their per-image maps, side by
//! side as the columns of one matrix.

use super::patches::{Columns, col2im_add, im2col};
use crate::ops::gemm::{MatRef, Threads, matmul};
use crate::ops::geometry::ConvGeometry;
use crate::ops::scratch::Scratch;

/// Scratch of one thread for the products of one convolution `g`, sized once for its largest
/// group and reused: a patch matrix (`[C·kh·kw, group·H'·W']`) and a matrix of `C_out` maps
/// side by side (`[C_out, group·H'·W']`).
pub(crate) struct GroupScratch {
    pub(crate) patches: Scratch,
    pub(crate) wide: Scratch,
}

impl GroupScratch {
    /// Scratch for groups of up to `group` images of convolution `g`; a single 1×1 image needs
    /// none.
    pub(crate) fn new(g: &ConvGeometry, group: usize) -> Self {
        let plane = g.output_plane();
        let single_pointwise = group == 1 && g.is_pointwise();
        let patches = if single_pointwise {
            0
        } else {
            g.patch_len() * group * plane
        };
        let wide = if group > 1 {
            g.out_channels * group * plane
        } else {
            0
        };
        Self {
            patches: Scratch::new(patches),
            wide: Scratch::new(wide),
        }
    }
}

/// `output = weight · patches(images)` for the `count` images in `images` (`[count, C, H, W]`),
/// written image by image into `output` (`[count, C_out, H', W']`), with `weight` the
/// `C_out × C·kh·kw` matrix of `g`.
pub(crate) fn convolve_group(
    images: &[f32],
    weight: MatRef<'_>,
    g: &ConvGeometry,
    scratch: &mut GroupScratch,
    output: &mut [f32],
    threads: Threads,
) {
    let count = images.len() / g.input_image();
    let columns = count * g.output_plane();
    let patches = patches(images, g, count, &mut scratch.patches);
    let patches = MatRef::row_major(patches, g.patch_len(), columns);
    let maps = Maps {
        rows: g.out_channels,
        plane: g.output_plane(),
    };
    multiply_into_maps(output, weight, patches, maps, &mut scratch.wide, threads);
}

/// The shape of one image's part of a product's result: `rows` maps of `plane` values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Maps {
    pub rows: usize,
    pub plane: usize,
}

/// `lhs · rhs` for a group of images side by side in the columns of `rhs`, written image by
/// image into `output` (`[count, maps.rows, maps.plane]`): directly for one image, through
/// `wide` and [`split_columns`] for several.
pub(crate) fn multiply_into_maps(
    output: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    maps: Maps,
    wide: &mut [f32],
    threads: Threads,
) {
    if output.len() == maps.rows * maps.plane {
        matmul(output, lhs, rhs, false, threads);
    } else {
        let wide = &mut wide[..output.len()];
        matmul(wide, lhs, rhs, false, threads);
        split_columns(wide, maps.rows, maps.plane, output);
    }
}

/// The transpose of convolution `g` for a group: `col2im(weight_t · joined)` added image by
/// image onto `output` (`[count, C, H, W]`, holding zeros), where `joined` holds the `count`
/// images' `C_out` maps side by side (`[C_out, count·H'·W']`, see [`join`]) and `weight_t` is
/// `Wᵀ`, `C·kh·kw × C_out`. `product` is scratch for `C·kh·kw × count·H'·W'` values, unused
/// for a single image of a 1×1 layer, whose product is the result.
pub(crate) fn transposed_convolve_group(
    joined: &[f32],
    weight_t: MatRef<'_>,
    g: &ConvGeometry,
    product: &mut [f32],
    output: &mut [f32],
    threads: Threads,
) {
    let count = output.len() / g.input_image();
    let columns = count * g.output_plane();
    let joined = MatRef::row_major(joined, g.out_channels, columns);
    if count == 1 && g.is_pointwise() {
        matmul(output, weight_t, joined, false, threads);
        return;
    }
    let product = &mut product[..g.patch_len() * columns];
    matmul(product, weight_t, joined, false, threads);
    for (index, image) in output.chunks_exact_mut(g.input_image()).enumerate() {
        col2im_add(product, g, Columns::of_group(g, index, count), image);
    }
}

/// The `rows` maps of each of the images in `maps` (`[count, rows, plane]`) side by side,
/// `[rows, count·plane]`: `maps` itself for one image, else joined in `wide`.
pub(crate) fn join<'a>(
    maps: &'a [f32],
    rows: usize,
    plane: usize,
    wide: &'a mut [f32],
) -> &'a [f32] {
    if maps.len() == rows * plane {
        return maps;
    }
    let wide = &mut wide[..maps.len()];
    join_columns(maps, rows, plane, wide);
    wide
}

/// The mirror image the kernel runs `g` through ([`ConvGeometry::preferred_mirror`]) with its
/// weights, if any.
pub(crate) fn preferred_mirror(
    weight: &[f32],
    g: &ConvGeometry,
) -> Option<(ConvGeometry, Vec<f32>)> {
    g.preferred_mirror()
        .map(|mirror| (mirror, mirrored_weights(weight, g)))
}

/// The weights of a convolution's mirror image (`[C, C_out, kh, kw]`, see
/// [`ConvGeometry::mirrored`]): `weight` (`[C_out, C, kh, kw]`) with its channel axes swapped
/// and each window turned by 180°.
pub(crate) fn mirrored_weights(weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    let mut mirrored = vec![0f32; weight.len()];
    for (o, filters) in weight.chunks_exact(g.patch_len()).enumerate() {
        for (c, window) in filters.chunks_exact(kh * kw).enumerate() {
            let at = (c * g.out_channels + o) * kh * kw;
            let target = &mut mirrored[at..at + kh * kw];
            for (target, &value) in target.iter_mut().zip(window.iter().rev()) {
                *target = value;
            }
        }
    }
    mirrored
}

/// The patch matrix of the `count` images in `images` (`[count, C, H, W]`), side by side:
/// `[C·kh·kw, count·H'·W']`. A single 1×1 image is its own patch matrix; otherwise the matrix
/// is built in `scratch`.
pub(crate) fn patches<'a>(
    images: &'a [f32],
    g: &ConvGeometry,
    count: usize,
    scratch: &'a mut [f32],
) -> &'a [f32] {
    if count == 1 && g.is_pointwise() {
        return images;
    }
    let patches = &mut scratch[..g.patch_len() * count * g.output_plane()];
    for (index, image) in images.chunks_exact(g.input_image()).enumerate() {
        im2col(image, g, patches, Columns::of_group(g, index, count));
    }
    patches
}

/// Copies `count` per-image maps (`[count, rows, plane]`) into the columns of `wide`
/// (`[rows, count·plane]`).
pub(crate) fn join_columns(maps: &[f32], rows: usize, plane: usize, wide: &mut [f32]) {
    let count = maps.len() / (rows * plane);
    for (index, map) in maps.chunks_exact(rows * plane).enumerate() {
        for (row, values) in map.chunks_exact(plane).enumerate() {
            let at = (row * count + index) * plane;
            wide[at..at + plane].copy_from_slice(values);
        }
    }
}

/// The inverse of [`join_columns`]: the columns of `wide` (`[rows, count·plane]`) back into
/// per-image maps (`[count, rows, plane]`).
pub(crate) fn split_columns(wide: &[f32], rows: usize, plane: usize, maps: &mut [f32]) {
    let count = maps.len() / (rows * plane);
    for (index, map) in maps.chunks_exact_mut(rows * plane).enumerate() {
        for (row, values) in map.chunks_exact_mut(plane).enumerate() {
            let at = (row * count + index) * plane;
            values.copy_from_slice(&wide[at..at + plane]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_and_splitting_columns_are_inverse() {
        let (count, rows, plane) = (3, 2, 4);
        let maps: Vec<f32> = (0..count * rows * plane).map(|v| v as f32).collect();
        let mut wide = vec![0.0; maps.len()];
        join_columns(&maps, rows, plane, &mut wide);
        // Row 1 holds row 1 of each image in turn.
        assert_eq!(&wide[12..16], &maps[4..8]);
        assert_eq!(&wide[16..20], &maps[12..16]);
        let mut back = vec![0.0; maps.len()];
        split_columns(&wide, rows, plane, &mut back);
        assert_eq!(back, maps);
    }
}
