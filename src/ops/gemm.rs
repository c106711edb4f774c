//! Matrix products for the flex kernels: a safe, bounds-checked front to the `gemm` crate, the
//! same matrix-product library flex itself runs on.
//!
//! ```
//! use nin::ops::gemm::{MatRef, Threads, matmul};
//!
//! let a = [1.0, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
//! let b = [1.0, 0.0, 0.0, 1.0];
//! let mut c = [0.0; 4];
//! matmul(&mut c, MatRef::transposed(&a, 2, 2), MatRef::row_major(&b, 2, 2), false, Threads::One);
//! assert_eq!(c, [1.0, 3.0, 2.0, 4.0]);
//! ```

#![allow(unsafe_code)]

/// A read-only `rows × cols` matrix inside a slice: element `(r, c)` is
/// `data[r·row_stride + c·col_stride]`. Swapping the strides views the transpose without a copy.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// The transpose of the row-major `cols × rows` matrix at the start of `data`, viewed as a
    /// `rows × cols` matrix.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, 1, rows)
    }

    fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        let span = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * row_stride + (cols - 1) * col_stride + 1
        };
        assert!(
            data.len() >= span,
            "a {rows}×{cols} matrix needs {span} values, the slice has {}",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }
}

/// Whether a product may spread over the rayon pool, or must stay on the calling thread (when
/// the caller already runs one product per thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// On the calling thread only.
    One,
    /// Over all threads of the rayon pool.
    All,
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` with `accumulate`, for a row-major `dst` of
/// `lhs.rows × rhs.cols` values: the product the kernels run. It is [`matmul_gemm`], except
/// that with the `private-gemm-x86` feature products on one thread go through
/// `matmul_private_gemm_x86` (one product over all threads stays with `gemm`, which spreads
/// small products better).
///
/// # Panics
///
/// If the shapes do not chain or `dst` has another length: a bug in the caller, never a
/// property of user input.
pub fn matmul(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    threads: Threads,
) {
    #[cfg(all(feature = "private-gemm-x86", target_arch = "x86_64"))]
    if threads == Threads::One {
        return matmul_private_gemm_x86(dst, lhs, rhs, accumulate, threads);
    }
    matmul_gemm(dst, lhs, rhs, accumulate, threads)
}

/// [`matmul`] through the `gemm` crate, the matrix-product library flex itself runs on.
///
/// # Panics
///
/// As [`matmul`].
pub fn matmul_gemm(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    threads: Threads,
) {
    let Some((m, k, n)) = product_shape(dst, lhs, rhs, accumulate) else {
        return;
    };
    let parallelism = match threads {
        Threads::One => gemm::Parallelism::None,
        Threads::All => gemm::Parallelism::Rayon(0),
    };
    // SAFETY: `product_shape` and the constructors keep every index the product reads
    // (`(m−1)·rs + (k−1)·cs` and likewise) inside the borrowed slices, and `dst` is an exclusive
    // borrow of exactly `m·n` values, so nothing else reads or writes it meanwhile.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// [`matmul`] through `private-gemm-x86`, the x86 kernels under faer (AVX-512 where the CPU has
/// it, else AVX2), for comparing the two libraries (`perf --gemm`); [`matmul_gemm`] where the
/// CPU has neither.
///
/// # Panics
///
/// As [`matmul`].
#[cfg(all(feature = "private-gemm-x86", target_arch = "x86_64"))]
pub fn matmul_private_gemm_x86(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    threads: Threads,
) {
    use private_gemm_x86 as pg;
    let instructions = if is_x86_feature_detected!("avx512f") {
        pg::InstrSet::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        pg::InstrSet::Avx256
    } else {
        return matmul_gemm(dst, lhs, rhs, accumulate, threads);
    };
    let Some((m, k, n)) = product_shape(dst, lhs, rhs, accumulate) else {
        return;
    };
    let threads = match threads {
        Threads::One => 1,
        Threads::All => rayon::current_num_threads(),
    };
    let alpha = 1.0f32;
    let beta = if accumulate {
        pg::Accum::Add
    } else {
        pg::Accum::Replace
    };
    // SAFETY: as in `matmul`: every index read is inside the borrowed slices, `dst` is an
    // exclusive borrow of `m·n` values, the instruction set was detected on this CPU, and the
    // null index and diagonal pointers ask for a dense product without a diagonal.
    unsafe {
        pg::gemm(
            pg::DType::F32,
            pg::IType::U64,
            instructions,
            m,
            n,
            k,
            dst.as_mut_ptr().cast(),
            n as isize,
            1,
            std::ptr::null(),
            std::ptr::null(),
            pg::DstKind::Full,
            beta,
            lhs.data.as_ptr().cast(),
            lhs.row_stride as isize,
            lhs.col_stride as isize,
            false,
            std::ptr::null(),
            0,
            rhs.data.as_ptr().cast(),
            rhs.row_stride as isize,
            rhs.col_stride as isize,
            false,
            (&raw const alpha).cast(),
            threads,
        );
    }
}

/// [`matmul`] through `matrixmultiply` (the matrix-product crate under ndarray), for comparing
/// the libraries (`perf --gemm`). Its threading is not chosen per call: it runs on one thread
/// unless its `threading` feature is on (burn's ndarray backend turns it on), and then on as
/// many as `MATMUL_NUM_THREADS` says (at most 4); `threads` is ignored.
///
/// # Panics
///
/// As [`matmul`].
#[cfg(feature = "matrixmultiply")]
pub fn matmul_matrixmultiply(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    _threads: Threads,
) {
    let Some((m, k, n)) = product_shape(dst, lhs, rhs, accumulate) else {
        return;
    };
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: as in `matmul`: every index read is inside the borrowed slices and `dst` is an
    // exclusive borrow of `m·n` values; with beta 0 the destination is written, never read.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            lhs.data.as_ptr(),
            lhs.row_stride as isize,
            lhs.col_stride as isize,
            rhs.data.as_ptr(),
            rhs.row_stride as isize,
            rhs.col_stride as isize,
            beta,
            dst.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `(m, k, n)` of `dst = lhs · rhs` after checking that the shapes chain, or `None` when there
/// is nothing to multiply (an empty `dst`, or `k = 0`, where `dst` is cleared unless
/// accumulating).
fn product_shape(
    dst: &mut [f32],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
) -> Option<(usize, usize, usize)> {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "inner dimensions of a product differ");
    assert_eq!(dst.len(), m * n, "the destination is not {m}×{n}");
    if k == 0 && !accumulate {
        dst.fill(0.0);
    }
    (m > 0 && n > 0 && k > 0).then_some((m, k, n))
}

/// This machine's single-precision peak in GFLOP/s, measured: every thread of the rayon pool
/// runs a loop of independent fused multiply-adds of the active level's vectors (see
/// [`SimdLevel`](crate::ops::SimdLevel)) at once. It is the ceiling against which `perf --gemm`
/// and `perf --layers` report; it takes about a tenth of a second.
///
/// On CPUs whose 512-bit FMAs retire twice the work of 256-bit ones per cycle (Intel server
/// parts with two FMA ports) this is what 512-bit vectors reach; on Zen 4, which runs a 512-bit
/// FMA in two halves, it equals the 256-bit peak.
pub fn measured_peak_gflops() -> f64 {
    use std::time::Instant;
    let rounds = 4_000_000;
    // The best of three: the first runs may find the cores below their working clock.
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let flops: u64 = rayon::broadcast(|_| super::simd::fma_flops(rounds))
            .iter()
            .sum();
        best = best.max(flops as f64 / start.elapsed().as_secs_f64() / 1e9);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn products_plain_transposed_and_accumulated_match_a_naive_loop() {
        let (m, k, n) = (7, 13, 5);
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let expected = naive(&a, &b, m, k, n);
        for threads in [Threads::One, Threads::All] {
            let mut dst = vec![0.0; m * n];
            matmul(
                &mut dst,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                false,
                threads,
            );
            assert!(dst.iter().zip(&expected).all(|(x, y)| (x - y).abs() < 1e-4));

            // The same product from transposed storage of both operands.
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let mut dst_t = vec![0.0; m * n];
            matmul(
                &mut dst_t,
                MatRef::transposed(&at, m, k),
                MatRef::transposed(&bt, k, n),
                false,
                threads,
            );
            assert!(
                dst_t
                    .iter()
                    .zip(&expected)
                    .all(|(x, y)| (x - y).abs() < 1e-4)
            );

            matmul(
                &mut dst,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                true,
                threads,
            );
            assert!(
                dst.iter()
                    .zip(&expected)
                    .all(|(x, y)| (x - 2.0 * y).abs() < 1e-4)
            );
        }
    }

    #[test]
    #[should_panic(expected = "needs")]
    fn a_slice_too_short_for_its_shape_is_refused() {
        let short = vec![0.0; 5];
        let _ = MatRef::row_major(&short, 2, 3);
    }
}
