//! The pool's loops on row-major slices, one `[H, W]` plane at a time.

use rayon::prelude::*;

use crate::ops::flex::zeros;

/// Sizes of a max pool over `[N, C, H, W]` with a `kernel` window every `stride` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolGeometry {
    planes: usize,
    batch: usize,
    channels: usize,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    output: [usize; 2],
}

impl PoolGeometry {
    /// # Panics
    ///
    /// If a window does not fit the input or a stride is 0 (the model checks shapes first).
    pub(crate) fn new(input: [usize; 4], kernel: [usize; 2], stride: [usize; 2]) -> Self {
        let [batch, channels, height, width] = input;
        let side = |size: usize, k: usize, s: usize| {
            assert!(
                s > 0 && k > 0 && size >= k,
                "max_pool2d: a {k}-wide window every {s} does not fit {size}"
            );
            (size - k) / s + 1
        };
        Self {
            planes: batch * channels,
            batch,
            channels,
            input: [height, width],
            kernel,
            stride,
            output: [
                side(height, kernel[0], stride[0]),
                side(width, kernel[1], stride[1]),
            ],
        }
    }

    pub(crate) fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.output[0], self.output[1]]
    }

    pub(crate) fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.input[0], self.input[1]]
    }

    fn input_plane(&self) -> usize {
        self.input[0] * self.input[1]
    }

    fn output_plane(&self) -> usize {
        self.output[0] * self.output[1]
    }
}

/// The larger of two values, NaN if either is: NaN must win so that a diverging run shows.
#[inline(always)]
fn nan_max(a: f32, b: f32) -> f32 {
    if a > b || a.is_nan() { a } else { b }
}

/// Whether `value` is the window's maximum `max` (both NaN counts as equal).
#[inline(always)]
fn is_max(value: f32, max: f32) -> bool {
    // `|` and `&`, not `||` and `&&`: no branch (see `first_max_in`).
    (value == max) | (value.is_nan() & max.is_nan())
}

/// The offset in `window` (a slice from the window's top-left value on) of the window's first
/// value, in row-major order, equal to its maximum `max`: the one burn and PyTorch route the
/// gradient to. `offsets` lists the window's offsets in that order.
///
/// Which value is the maximum is random, so a branch per value would mispredict often. For
/// windows of a size known at compile time (`N`, see [`backward`]) the compares go into a bit
/// mask, independent of each other, and the first set bit is the answer.
#[inline(always)]
fn first_max_in<const N: usize>(window: &[f32], offsets: &[usize; N], max: f32) -> usize {
    const { assert!(N <= 64, "one bit per window value in a u64") };
    let hits = offsets.iter().enumerate().fold(0u64, |hits, (k, &offset)| {
        hits | (u64::from(is_max(window[offset], max)) << k)
    });
    assert!(hits != 0, "the maximum lies in its window");
    offsets[hits.trailing_zeros() as usize]
}

/// [`first_max_in`] for windows of any size: a backwards scan that keeps the last hit with a
/// select, one compare per value, still without a branch.
#[inline(always)]
fn first_max_in_any(window: &[f32], offsets: &[usize], max: f32) -> usize {
    let at = offsets.iter().rev().fold(usize::MAX, |at, &offset| {
        if is_max(window[offset], max) {
            offset
        } else {
            at
        }
    });
    assert!(at != usize::MAX, "the maximum lies in its window");
    at
}

pub(crate) fn forward(x: &[f32], g: &PoolGeometry) -> Vec<f32> {
    let [_, width] = g.input;
    let [out_height, out_width] = g.output;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let mut output = zeros(g.planes * g.output_plane());
    if output.is_empty() {
        return output;
    }
    output
        .par_chunks_mut(g.output_plane())
        .zip(x.par_chunks(g.input_plane()))
        .for_each_init(
            || vec![0f32; width],
            |rows_max, (out, plane)| {
                for (oh, out_row) in out.chunks_exact_mut(out_width).enumerate().take(out_height) {
                    // Element-wise maximum of the window's rows, then of each window's columns.
                    let first = oh * sh * width;
                    rows_max.copy_from_slice(&plane[first..first + width]);
                    for i in 1..kh {
                        let row = &plane[first + i * width..first + (i + 1) * width];
                        for (m, &v) in rows_max.iter_mut().zip(row) {
                            *m = nan_max(*m, v);
                        }
                    }
                    for (ow, o) in out_row.iter_mut().enumerate() {
                        let window = &rows_max[ow * sw..ow * sw + kw];
                        *o = window[1..].iter().fold(window[0], |m, &v| nan_max(m, v));
                    }
                }
            },
        );
    output
}

pub(crate) fn backward(
    x: &[f32],
    output: &[f32],
    output_grad: &[f32],
    g: &PoolGeometry,
) -> Vec<f32> {
    let [_, width] = g.input;
    let [kh, kw] = g.kernel;
    // Each window value's place relative to the window's top-left value, in row-major order.
    let offsets: Vec<usize> = (0..kh)
        .flat_map(|i| (0..kw).map(move |j| i * width + j))
        .collect();
    let planes = (x, output, output_grad);
    // Windows of 9 values (NiN's 3×3) and of 4 (2×2) get their size fixed at compile time.
    if let Ok(offsets) = <[usize; 9]>::try_from(offsets.as_slice()) {
        return route(planes, g, |w, max| first_max_in(w, &offsets, max));
    }
    if let Ok(offsets) = <[usize; 4]>::try_from(offsets.as_slice()) {
        return route(planes, g, |w, max| first_max_in(w, &offsets, max));
    }
    route(planes, g, |w, max| first_max_in_any(w, &offsets, max))
}

/// The input's gradient: each output value's gradient added where `first_max(window, max)`
/// finds the window's maximum. `planes` holds the input, the output and the output's gradient.
fn route(
    planes: (&[f32], &[f32], &[f32]),
    g: &PoolGeometry,
    first_max: impl Fn(&[f32], f32) -> usize + Sync,
) -> Vec<f32> {
    let (x, output, output_grad) = planes;
    let [_, width] = g.input;
    let [_, out_width] = g.output;
    let [sh, sw] = g.stride;
    let mut dx = zeros(g.planes * g.input_plane());
    if dx.is_empty() || output.is_empty() {
        return dx;
    }
    dx.par_chunks_mut(g.input_plane())
        .zip(x.par_chunks(g.input_plane()))
        .zip(
            output
                .par_chunks(g.output_plane())
                .zip(output_grad.par_chunks(g.output_plane())),
        )
        .for_each(|((dx, plane), (out, grad))| {
            let rows = out
                .chunks_exact(out_width)
                .zip(grad.chunks_exact(out_width));
            for (oh, (out_row, grad_row)) in rows.enumerate() {
                for (ow, (&max, &gradient)) in out_row.iter().zip(grad_row).enumerate() {
                    let corner = oh * sh * width + ow * sw;
                    dx[corner + first_max(&plane[corner..], max)] += gradient;
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_a_plane_and_routes_the_gradient_to_the_first_maximum() {
        // 1 plane, 3×5, 3×3 windows every 2 columns: two windows.
        let x = [
            1.0, 5.0, 2.0, 0.0, 7.0, //
            3.0, 4.0, 5.0, 1.0, 1.0, //
            0.0, 2.0, 1.0, 6.0, 2.0,
        ];
        let g = PoolGeometry::new([1, 1, 3, 5], [3, 3], [2, 2]);
        let out = forward(&x, &g);
        assert_eq!(out, vec![5.0, 7.0]);
        let dx = backward(&x, &out, &[1.0, 10.0], &g);
        let mut expected = [0.0; 15];
        expected[1] = 1.0; // the first 5, not the second at (1, 2)
        expected[4] = 10.0;
        assert_eq!(dx.to_vec(), expected.to_vec());
    }

    #[test]
    fn nan_wins_a_window() {
        let x = [1.0, f32::NAN, 2.0, 3.0];
        let g = PoolGeometry::new([1, 1, 2, 2], [2, 2], [2, 2]);
        let out = forward(&x, &g);
        assert!(out[0].is_nan());
        assert_eq!(backward(&x, &out, &[1.0], &g), vec![0.0, 1.0, 0.0, 0.0]);
    }

    /// The first maximum in row-major order, found by the plainest loop.
    fn first_max_by_scan(window: &[f32], offsets: &[usize], max: f32) -> usize {
        *offsets
            .iter()
            .find(|&&offset| is_max(window[offset], max))
            .expect("a maximum")
    }

    #[test]
    fn each_window_search_finds_the_first_maximum_as_a_plain_scan_does() {
        // Values from a small set, so that windows often hold the maximum twice or more, and
        // some NaN.
        let values: Vec<f32> = (0..64u32)
            .map(|i| match i.wrapping_mul(2_654_435_761) >> 28 {
                0 => f32::NAN,
                h => (h % 4) as f32,
            })
            .collect();
        let width = 8;
        let window_of = |kh: usize, kw: usize| -> Vec<usize> {
            (0..kh)
                .flat_map(|i| (0..kw).map(move |j| i * width + j))
                .collect()
        };
        let max_of = |window: &[f32], offsets: &[usize]| {
            offsets.iter().map(|&o| window[o]).reduce(nan_max).unwrap()
        };
        let (nine, four, six) = (window_of(3, 3), window_of(2, 2), window_of(2, 3));
        let nine: [usize; 9] = nine.try_into().unwrap();
        let four: [usize; 4] = four.try_into().unwrap();
        for corner in 0..width * 3 + 3 {
            let window = &values[corner..];
            let check = |name: &str, offsets: &[usize], search: &dyn Fn(f32) -> usize| {
                let max = max_of(window, offsets);
                let expected = first_max_by_scan(window, offsets, max);
                assert_eq!(search(max), expected, "{name} at {corner}");
            };
            check("3×3", &nine, &|max| first_max_in(window, &nine, max));
            check("3×3, any size", &nine, &|max| {
                first_max_in_any(window, &nine, max)
            });
            check("2×2", &four, &|max| first_max_in(window, &four, max));
            check("2×3, any size", &six, &|max| {
                first_max_in_any(window, &six, max)
            });
        }
    }
}
