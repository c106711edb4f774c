//! The patch matrix of one image (im2col) and its adjoint (col2im).
//!
//! Design notes: `docs/design.md`, "ops::flex_conv::patches".

use crate::ops::geometry::{ConvGeometry, valid_outputs};

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
    if let Some(blocks) = SameWidth::of(g) {
        blocks.for_each_row(|row, block| {
            let at = row * columns.width + columns.offset;
            let patch_row = &mut patches[at..at + g.output_plane()];
            let Some(block) = block else {
                patch_row.fill(0.0);
                return;
            };
            patch_row[..block.first].fill(0.0);
            patch_row[block.end..].fill(0.0);
            patch_row[block.first..block.end]
                .copy_from_slice(&x[block.input..block.input + block.end - block.first]);
            blocks.clear_gaps(&block, patch_row);
        });
        return;
    }
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
/// receives the sum over the windows that read it. Values of those columns whose tap lies in
/// the padding may be overwritten with zeros.
pub(crate) fn col2im_add(patches: &mut [f32], g: &ConvGeometry, columns: Columns, dx: &mut [f32]) {
    debug_assert_eq!(dx.len(), g.input_image());
    debug_assert_eq!(patches.len(), g.patch_len() * columns.width);
    if let Some(blocks) = SameWidth::of(g) {
        blocks.for_each_row(|row, block| {
            let Some(block) = block else {
                return;
            };
            let at = row * columns.width + columns.offset;
            let patch_row = &mut patches[at..at + g.output_plane()];
            // The gaps hold the gradients of taps in the padding: zero them, then one sum over
            // the whole block adds exactly the taps inside the image.
            blocks.clear_gaps(&block, patch_row);
            let sources = &patch_row[block.first..block.end];
            let targets = &mut dx[block.input..block.input + sources.len()];
            for (target, &value) in targets.iter_mut().zip(sources) {
                *target += value;
            }
        });
        return;
    }
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

/// The patch matrix of a stride-1 convolution whose output is as wide as its input (a "same"
/// convolution, padding `(kw - 1) / 2`). Within one patch-matrix row, consecutive output rows
/// then read consecutive input rows at the same offset, so the row's valid taps form one
/// contiguous run of the input channel, interrupted only by the few columns whose tap falls
/// into the left or right padding ("gaps"). Copying and summing whole runs replaces a short
/// copy per output row, which on 13- and 6-wide maps cost more than the values moved.
struct SameWidth<'g> {
    g: &'g ConvGeometry,
}

/// The run of one patch-matrix row: positions `first..end` of the row (`H'·W'` values) take
/// the input values from index `input` on; the rest of the row lies in the padding.
struct Block {
    first: usize,
    end: usize,
    input: usize,
    /// Output rows `rows` hold taps inside the input, at columns `columns` of each.
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
}

impl<'g> SameWidth<'g> {
    fn of(g: &'g ConvGeometry) -> Option<Self> {
        (g.stride == [1, 1] && g.output[1] == g.input[1]).then_some(Self { g })
    }

    /// Calls `visit` with each patch-matrix row in storage order and its run, `None` when every
    /// tap of the row lies in the padding. The runs of one tap differ from channel to channel
    /// only by where they start in the input, so they are worked out once per tap.
    fn for_each_row(&self, mut visit: impl FnMut(usize, Option<Block>)) {
        let g = self.g;
        let [kh, kw] = g.kernel;
        let taps: Vec<Option<Block>> = (0..kh * kw).map(|tap| self.block(tap)).collect();
        for channel in 0..g.in_channels {
            for (tap, block) in taps.iter().enumerate() {
                let block = block.as_ref().map(|block| Block {
                    input: block.input + channel * g.input_plane(),
                    rows: block.rows.clone(),
                    columns: block.columns.clone(),
                    ..*block
                });
                visit(channel * kh * kw + tap, block);
            }
        }
    }

    /// The run of patch-matrix row `(c, i, j)`, or `None` when every tap of the row lies in
    /// the padding.
    fn block(&self, row: usize) -> Option<Block> {
        let g = self.g;
        let [height, width] = g.input;
        let [kh, kw] = g.kernel;
        let (channel, i, j) = (row / (kh * kw), row / kw % kh, row % kw);
        let rows = valid_outputs(g.output[0], 1, i, g.padding[0], height);
        let columns = valid_outputs(width, 1, j, g.padding[1], width);
        if rows.is_empty() || columns.is_empty() {
            return None;
        }
        let first = rows.start * width + columns.start;
        let end = (rows.end - 1) * width + columns.end;
        let ih = rows.start + i - g.padding[0];
        let iw = columns.start + j - g.padding[1];
        Some(Block {
            first,
            end,
            input: (channel * height + ih) * width + iw,
            rows,
            columns,
        })
    }

    /// Zeros the positions inside `block`'s run whose tap lies in the left or right padding:
    /// the end of each output row and the start of the next.
    fn clear_gaps(&self, block: &Block, patch_row: &mut [f32]) {
        let width = self.g.input[1];
        for oh in block.rows.start..block.rows.end - 1 {
            for value in &mut patch_row
                [oh * width + block.columns.end..(oh + 1) * width + block.columns.start]
            {
                *value = 0.0;
            }
        }
    }
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
            ConvGeometry::new([1, 2, 5, 6], [2, 2, 3, 5], [1, 1], [0, 2]),
            ConvGeometry::new([1, 2, 7, 6], [2, 2, 3, 3], [1, 1], [0, 0]),
            ConvGeometry::new([1, 2, 1, 1], [2, 2, 3, 3], [1, 1], [1, 1]),
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
            let mut p: Vec<f32> = (0..g.patch_len() * g.output_plane())
                .map(|v| (v % 5) as f32 - 2.0)
                .collect();
            let patches_of_x = naive_im2col(&x, &g);
            let mut dx = vec![0.0; g.input_image()];
            let lhs: f32 = patches_of_x.iter().zip(&p).map(|(a, b)| a * b).sum();
            let mut wide = vec![f32::NAN; 3 * p.len()];
            let plane = g.output_plane();
            for (row, values) in p.chunks(plane).enumerate() {
                wide[(3 * row + 1) * plane..(3 * row + 2) * plane].copy_from_slice(values);
            }
            col2im_add(&mut p, &g, Columns::of_group(&g, 0, 1), &mut dx);
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");

            // The second of three images side by side reads only its own columns.
            let mut dx_wide = vec![0.0; g.input_image()];
            col2im_add(&mut wide, &g, Columns::of_group(&g, 1, 3), &mut dx_wide);
            assert_eq!(dx_wide, dx, "{g:?}");
        }
    }
}
