//! The patch matrix of one image (im2col) and its adjoint (col2im).
//!
//! Row `(c, i, j)` of the patch matrix holds, for every output position `(oh, ow)`, the input
//! value under tap `(i, j)` of that position's window in channel `c`, or 0 in the padding. A
//! convolution is then `W[C_out, C·kh·kw] · patches[C·kh·kw, H'·W']`. The patch matrices of
//! several images can stand side by side in one wider matrix ([`Columns`]), so that one product
//! serves them all. Both directions walk one
//! output row at a time; with stride 1 that row is a contiguous run of the input row, so the
//! copies and sums are slice operations the compiler vectorises.

use super::geometry::{ConvGeometry, valid_outputs};

/// Where one image's patch matrix sits in a wider matrix: its rows are `width` values apart and
/// its `H'·W'` columns start at column `offset`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Columns {
    pub width: usize,
    pub offset: usize,
}

impl Columns {
    /// The patch matrix of image `index` of a group of `count`, side by side.
    pub(crate) fn of_group(g: &ConvGeometry, index: usize, count: usize) -> Self {
        Self {
            width: count * g.output_plane(),
            offset: index * g.output_plane(),
        }
    }
}

/// Writes the patch matrix of the image `x` (`[C, H, W]`) into its columns of `patches`
/// (`[C·kh·kw, columns.width]`, every value of those columns overwritten).
pub(crate) fn im2col(x: &[f32], g: &ConvGeometry, patches: &mut [f32], columns: Columns) {
    debug_assert_eq!(x.len(), g.input_image());
    debug_assert_eq!(patches.len(), g.patch_len() * columns.width);
    let stride = g.stride[1];
    for_each_span(g, columns, |span| {
        let row = &mut patches[span.at..span.at + g.output[1]];
        let Some(first) = span.input else {
            row.fill(0.0);
            return;
        };
        let columns = span.columns;
        row[..columns.start].fill(0.0);
        row[columns.end..].fill(0.0);
        let row = &mut row[columns];
        if stride == 1 {
            row.copy_from_slice(&x[first..first + row.len()]);
        } else {
            for (k, value) in row.iter_mut().enumerate() {
                *value = x[first + k * stride];
            }
        }
    });
}

/// Adds the gradient of one image's patch matrix, its columns of `patches`
/// (`[C·kh·kw, columns.width]`), onto the image gradient `dx` (`[C, H, W]`): every input value
/// receives the sum over the windows that read it.
pub(crate) fn col2im_add(patches: &[f32], g: &ConvGeometry, columns: Columns, dx: &mut [f32]) {
    debug_assert_eq!(dx.len(), g.input_image());
    debug_assert_eq!(patches.len(), g.patch_len() * columns.width);
    let stride = g.stride[1];
    for_each_span(g, columns, |span| {
        let Some(first) = span.input else {
            return;
        };
        let columns = span.columns;
        let row = &patches[span.at + columns.start..span.at + columns.end];
        if stride == 1 {
            for (target, &value) in dx[first..first + row.len()].iter_mut().zip(row) {
                *target += value;
            }
        } else {
            for (k, &value) in row.iter().enumerate() {
                dx[first + k * stride] += value;
            }
        }
    });
}

/// One output row of one patch-matrix row.
struct Span {
    /// Index in the patch matrix of the row's first column.
    at: usize,
    /// The columns whose tap lies inside the input width.
    columns: std::ops::Range<usize>,
    /// Index in the image of the value that column `columns.start` reads, or `None` when the
    /// whole row lies in the top or bottom padding.
    input: Option<usize>,
}

/// Calls `visit` for every output row `oh` of every patch-matrix row `(c, i, j)`, in the
/// order they are stored.
fn for_each_span(g: &ConvGeometry, placement: Columns, mut visit: impl FnMut(Span)) {
    let [height, width] = g.input;
    let [out_height, out_width] = g.output;
    let [kh, kw] = g.kernel;
    for row in 0..g.patch_len() {
        let (channel, i, j) = (row / (kh * kw), row / kw % kh, row % kw);
        let columns = valid_outputs(out_width, g.stride[1], j, g.padding[1], width);
        let rows = valid_outputs(out_height, g.stride[0], i, g.padding[0], height);
        for oh in 0..out_height {
            let input = (rows.contains(&oh) && !columns.is_empty()).then(|| {
                let ih = oh * g.stride[0] + i - g.padding[0];
                let iw = columns.start * g.stride[1] + j - g.padding[1];
                (channel * height + ih) * width + iw
            });
            visit(Span {
                at: row * placement.width + placement.offset + oh * out_width,
                columns: columns.clone(),
                input,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patch matrix by its definition, one value at a time.
    fn naive_im2col(x: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let [height, width] = g.input;
        let [kh, kw] = g.kernel;
        let mut out = Vec::new();
        for c in 0..g.in_channels {
            for i in 0..kh {
                for j in 0..kw {
                    for oh in 0..g.output[0] {
                        for ow in 0..g.output[1] {
                            let ih = (oh * g.stride[0] + i) as isize - g.padding[0] as isize;
                            let iw = (ow * g.stride[1] + j) as isize - g.padding[1] as isize;
                            let inside = (0..height as isize).contains(&ih)
                                && (0..width as isize).contains(&iw);
                            out.push(if inside {
                                x[(c * height + ih as usize) * width + iw as usize]
                            } else {
                                0.0
                            });
                        }
                    }
                }
            }
        }
        out
    }

    fn geometries() -> Vec<ConvGeometry> {
        vec![
            ConvGeometry::new([1, 2, 9, 7], [3, 2, 3, 3], [1, 1], [1, 1]),
            ConvGeometry::new([1, 1, 23, 23], [2, 1, 11, 11], [4, 4], [0, 0]),
            ConvGeometry::new([1, 3, 6, 5], [2, 3, 5, 5], [1, 1], [2, 2]),
            ConvGeometry::new([1, 2, 8, 9], [2, 2, 3, 2], [2, 3], [1, 0]),
            ConvGeometry::new([1, 2, 2, 2], [1, 2, 5, 5], [1, 1], [2, 2]),
            ConvGeometry::new([1, 3, 4, 5], [2, 3, 1, 1], [1, 1], [0, 0]),
        ]
    }

    #[test]
    fn im2col_matches_the_definition() {
        for g in geometries() {
            let x: Vec<f32> = (0..g.input_image()).map(|v| v as f32 + 1.0).collect();
            let mut patches = vec![f32::NAN; g.patch_len() * g.output_plane()];
            im2col(&x, &g, &mut patches, Columns::of_group(&g, 0, 1));
            assert_eq!(patches, naive_im2col(&x, &g), "{g:?}");

            // The second of three images side by side fills exactly its own columns.
            let plane = g.output_plane();
            let mut wide = vec![f32::NAN; g.patch_len() * 3 * plane];
            im2col(&x, &g, &mut wide, Columns::of_group(&g, 1, 3));
            for (row, expected) in naive_im2col(&x, &g).chunks(plane).enumerate() {
                let row = &wide[row * 3 * plane..(row + 1) * 3 * plane];
                assert!(
                    row[..plane]
                        .iter()
                        .chain(&row[2 * plane..])
                        .all(|v| v.is_nan())
                );
                assert_eq!(&row[plane..2 * plane], expected, "{g:?}");
            }
        }
    }

    /// col2im is the adjoint of im2col: `<im2col(x), p> = <x, col2im(p)>` for every x and p.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for g in geometries() {
            let x: Vec<f32> = (0..g.input_image()).map(|v| (v % 7) as f32 - 3.0).collect();
            let p: Vec<f32> = (0..g.patch_len() * g.output_plane())
                .map(|v| (v % 5) as f32 - 2.0)
                .collect();
            let patches_of_x = naive_im2col(&x, &g);
            let mut dx = vec![0.0; g.input_image()];
            col2im_add(&p, &g, Columns::of_group(&g, 0, 1), &mut dx);
            let lhs: f32 = patches_of_x.iter().zip(&p).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }
}
