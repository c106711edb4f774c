//! The loops of the batch-norm kernel, each in a portable form and, on x86-64, an AVX2 + FMA
//! form chosen at run time; and the FMA loop that measures the machine's peak.
//!
//! The crate is built for baseline x86-64 (SSE2), where these loops run four lanes wide at
//! most; and the compiler does not vectorise a float sum by itself, since it may not reorder
//! one. So the element-wise loops get a copy compiled with AVX2 enabled, and the two
//! reductions are written with intrinsics. The portable forms are what other CPUs run, and the
//! tests below hold every AVX2 form to its portable one.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;

/// Defines `$name`, which runs `$portable` compiled with AVX2 and FMA enabled when the CPU has
/// them, and `$portable` itself, the body as written.
macro_rules! simd_kernel {
    ($(#[$doc:meta])* fn $name:ident / $portable:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        /// The portable form of the kernel of the same name without `_portable`.
        #[inline(always)]
        pub(crate) fn $portable($($arg: $ty),*) $(-> $ret)? $body

        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $portable($($arg),*)
                }
                if avx2::available() {
                    // SAFETY: `avx2` needs AVX2 and FMA, and this CPU has both.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}

/// `grad` where the ReLU's `output` is positive, else 0; a bit mask rather than a branch, so
/// that the loops around it vectorise.
#[inline(always)]
pub(crate) fn relu_grad(grad: f32, output: f32) -> f32 {
    let keep = if output > 0.0 { u32::MAX } else { 0 };
    f32::from_bits(grad.to_bits() & keep)
}

simd_kernel! {
    /// `out = max(0, a·x + b)`.
    fn scale_shift_relu / scale_shift_relu_portable(
        out: &mut [MaybeUninit<f32>],
        input: &[f32],
        a: f32,
        b: f32,
    ) {
        assert_eq!(out.len(), input.len(), "scale_shift_relu writes every output");
        for (o, &v) in out.iter_mut().zip(input) {
            o.write((a * v + b).max(0.0));
        }
    }
}

simd_kernel! {
    /// In place, `grad = k·g − shift − slope·(x − mean)`, with `g` the gradient where the
    /// forward's `affine = [a, b]` made `a·x + b` positive (where the ReLU let it through) and
    /// 0 elsewhere.
    fn batch_norm_input_grad / batch_norm_input_grad_portable(
        grad: &mut [f32],
        x: &[f32],
        coefficients: [f32; 3],
        mean: f32,
        affine: [f32; 2],
    ) {
        let [k, shift, slope] = coefficients;
        let [a, b] = affine;
        for (g, &v) in grad.iter_mut().zip(x) {
            *g = k * relu_grad(*g, a * v + b) - shift - slope * (v - mean);
        }
    }
}

/// `(Σ (x − centre), Σ (x − centre)²)`.
pub(crate) fn plane_sums(values: &[f32], centre: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { avx2::plane_sums(values, centre) };
    }
    plane_sums_portable(values, centre)
}

/// The portable form of [`plane_sums`].
pub(crate) fn plane_sums_portable(values: &[f32], centre: f32) -> (f32, f32) {
    let squares = values.iter().map(|v| (v - centre) * (v - centre)).sum();
    (values.iter().map(|v| v - centre).sum(), squares)
}

/// `(Σ g, Σ g·(x − mean))` over the positions where `a·x + b` is positive (`affine = [a, b]`,
/// the forward's scale and shift: where the ReLU let the value through).
pub(crate) fn masked_sums(grad: &[f32], x: &[f32], mean: f32, affine: [f32; 2]) -> (f32, f32) {
    assert!(x.len() == grad.len());
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA, and the two slices have one length.
        return unsafe { avx2::masked_sums(grad, x, mean, affine) };
    }
    masked_sums_portable(grad, x, mean, affine)
}

/// The portable form of [`masked_sums`].
pub(crate) fn masked_sums_portable(
    grad: &[f32],
    x: &[f32],
    mean: f32,
    affine: [f32; 2],
) -> (f32, f32) {
    let [a, b] = affine;
    let mut sums = (0.0, 0.0);
    for (&g, &v) in grad.iter().zip(x) {
        let g = relu_grad(g, a * v + b);
        sums = (sums.0 + g, sums.1 + g * (v - mean));
    }
    sums
}

/// Runs `rounds` rounds of 96 independent multiply-adds (12 vectors of 8 lanes) on this
/// thread and returns the floating-point operations done: a loop with no memory traffic and no
/// dependency between neighbouring multiply-adds, so it runs at the FMA units' peak.
pub(crate) fn fma_flops(rounds: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        std::hint::black_box(unsafe { avx2::fma_loop(rounds) });
        return rounds * 96 * 2;
    }
    let mut acc = [[1.0f32; 8]; 12];
    for _ in 0..rounds {
        for vector in &mut acc {
            for lane in vector.iter_mut() {
                *lane = lane.mul_add(0.999_999, 1e-7);
            }
        }
    }
    std::hint::black_box(acc);
    rounds * 96 * 2
}

/// The two reductions with AVX2 intrinsics, and the FMA peak loop.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let pair = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps::<1>(pair, pair)))
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_loop(rounds: u64) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..rounds {
            for v in &mut acc {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| horizontal_sum(v)).sum()
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn plane_sums(values: &[f32], centre: f32) -> (f32, f32) {
        let (mut sum, mut squares) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let c = _mm256_set1_ps(centre);
        let mut blocks = values.chunks_exact(8);
        for block in &mut blocks {
            // SAFETY: `block` holds 8 floats.
            let v = unsafe { _mm256_loadu_ps(block.as_ptr()) };
            let centred = _mm256_sub_ps(v, c);
            sum = _mm256_add_ps(sum, centred);
            squares = _mm256_fmadd_ps(centred, centred, squares);
        }
        let (rest_sum, rest_squares) = super::plane_sums_portable(blocks.remainder(), centre);
        (
            horizontal_sum(sum) + rest_sum,
            horizontal_sum(squares) + rest_squares,
        )
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA; `x` must be as long as `grad`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn masked_sums(
        grad: &[f32],
        x: &[f32],
        mean: f32,
        affine: [f32; 2],
    ) -> (f32, f32) {
        let (mut sg, mut sgx) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (m, zero) = (_mm256_set1_ps(mean), _mm256_setzero_ps());
        let (a, b) = (_mm256_set1_ps(affine[0]), _mm256_set1_ps(affine[1]));
        let whole = grad.len() / 8 * 8;
        for i in (0..whole).step_by(8) {
            // SAFETY: i + 8 ≤ the length of both slices.
            let (g, v) = unsafe {
                (
                    _mm256_loadu_ps(grad.as_ptr().add(i)),
                    _mm256_loadu_ps(x.as_ptr().add(i)),
                )
            };
            // A multiply, then an add, not a fused multiply-add: the same rounding as the
            // forward's `a·x + b`, so the same mask.
            let pre = _mm256_add_ps(_mm256_mul_ps(a, v), b);
            let g = _mm256_and_ps(g, _mm256_cmp_ps::<_CMP_GT_OQ>(pre, zero));
            sg = _mm256_add_ps(sg, g);
            sgx = _mm256_fmadd_ps(g, _mm256_sub_ps(v, m), sgx);
        }
        let (rest_g, rest_gx) =
            super::masked_sums_portable(&grad[whole..], &x[whole..], mean, affine);
        (horizontal_sum(sg) + rest_g, horizontal_sum(sgx) + rest_gx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with both signs and some exact zeros, the cases the ReLU mask separates.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(2_654_435_761) >> 16;
                if h.is_multiple_of(11) {
                    0.0
                } else {
                    (h % 2000) as f32 / 500.0 - 2.0
                }
            })
            .collect()
    }

    fn close(a: f32, b: f32, scale: f32) -> bool {
        (a - b).abs() <= 1e-5 * scale.max(1.0)
    }

    /// `max(0, a·x + b)` of each value through `kernel`, one of the two forms.
    fn shifted(
        kernel: fn(&mut [MaybeUninit<f32>], &[f32], f32, f32),
        x: &[f32],
        a: f32,
        b: f32,
    ) -> Vec<f32> {
        // SAFETY: the kernel writes every output (it asserts the lengths match).
        unsafe { crate::ops::flex::written_vec(x.len(), |out| kernel(out, x, a, b)) }
    }

    /// Every length from empty to past two AVX2 blocks, so that the vector body, the remainder
    /// loop and both together are covered; on a CPU without AVX2 both sides are portable.
    #[test]
    fn each_kernel_agrees_with_its_portable_form() {
        for len in 0..40 {
            let (x, g, y) = (values(len, 1), values(len, 2), values(len, 3));
            let scale = len as f32 * 4.0;

            let (s, q) = plane_sums(&x, 0.3);
            let (sp, qp) = plane_sums_portable(&x, 0.3);
            assert!(
                close(s, sp, scale) && close(q, qp, scale * 4.0),
                "plane_sums, {len}"
            );

            let affine = [1.5, -0.25];
            let (a, b) = masked_sums(&g, &x, -0.2, affine);
            let (ap, bp) = masked_sums_portable(&g, &x, -0.2, affine);
            assert!(
                close(a, ap, scale) && close(b, bp, scale * 4.0),
                "masked_sums, {len}"
            );

            let out = shifted(scale_shift_relu, &x, 1.5, -0.25);
            let out_p = shifted(scale_shift_relu_portable, &x, 1.5, -0.25);
            assert_eq!(out, out_p, "scale_shift_relu, {len}");

            let coefficients = [0.7, 0.1, -0.3];
            let (mut grad, mut grad_p) = (y.clone(), y.clone());
            batch_norm_input_grad(&mut grad, &x, coefficients, 0.5, affine);
            batch_norm_input_grad_portable(&mut grad_p, &x, coefficients, 0.5, affine);
            assert!(
                grad.iter().zip(&grad_p).all(|(a, b)| close(*a, *b, 1.0)),
                "batch_norm_input_grad, {len}"
            );
        }
    }

    /// The backward pass recomputes the ReLU's mask as `a·x + b > 0`: it must be exactly where
    /// the forward kernel's output is positive, including values that round to 0.
    #[test]
    fn the_backward_mask_is_where_the_forward_output_is_positive() {
        let x: Vec<f32> = (0..4000).map(|i| (i as f32 - 2000.0) * 1e-3).collect();
        for (a, b) in [
            (1.0, 0.0),
            (0.3, 0.1),
            (7.1, -1.9),
            (-2.5, 0.6),
            (1.0e-3, -1.0e-6),
        ] {
            let out = shifted(scale_shift_relu, &x, a, b);
            let positive = out.iter().filter(|&&o| o > 0.0).count() as f32;
            let ones = vec![1.0; x.len()];
            assert_eq!(
                masked_sums(&ones, &x, 0.0, [a, b]).0,
                positive,
                "a = {a}, b = {b}"
            );
        }
    }

    #[test]
    fn the_portable_forms_compute_what_they_say() {
        let x = [1.0, -2.0, 3.0, 0.0];
        assert_eq!(
            plane_sums_portable(&x, 0.5),
            (0.5 - 2.5 + 2.5 - 0.5, 0.25 + 6.25 + 6.25 + 0.25)
        );
        // Only positions where 2·x − 1 is positive count: the first and the third.
        let g = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(masked_sums_portable(&g, &x, 1.0, [2.0, -1.0]), (5.0, 8.0));
        let mut grad = g;
        batch_norm_input_grad_portable(&mut grad, &x, [1.0, 0.0, 0.0], 1.0, [2.0, -1.0]);
        assert_eq!(grad, [1.0, 0.0, 4.0, 0.0]);
        let out = shifted(scale_shift_relu_portable, &x, 2.0, 1.0);
        assert_eq!(out, [3.0, 0.0, 7.0, 1.0]);
    }
}
