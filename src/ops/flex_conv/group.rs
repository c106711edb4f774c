//! A group of images as one product: their patch matrices, and their per-image maps, side by
//! side as the columns of one matrix.

use super::geometry::ConvGeometry;
use super::patches::{Columns, im2col};

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
