//! Vector loops written once over `pulp`'s [`Simd`] trait and run at the widest level the CPU
//! offers, chosen at run time: AVX-512 or AVX2 + FMA on x86-64, NEON on AArch64, simd128 in
//! WebAssembly built with it, and a portable scalar form everywhere. The tests hold every level
//! the machine has to the portable one.

use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use pulp::{Simd, WithSimd};

/// The vector instructions this crate's CPU kernels (flex's convolutions, pools and batch
/// norm) run with: the widest the CPU has, detected at run time, unless capped.
///
/// A cap lowers the level, to measure a narrower machine's code path on a wider one or to
/// rule a level out: the environment variable `NIN_SIMD` (one of the names below, read on the
/// kernels' first use) or [`SimdLevel::cap`]. A cap above what the CPU has changes nothing, and
/// a cap the CPU has no level at or under (`neon` on x86-64) leaves the portable code. The
/// `gemm` crate's matrix products under the kernels pick their own instructions and are not
/// capped (docs/performance.md, "SIMD levels").
///
/// ```
/// use nin::ops::SimdLevel;
///
/// let widest = SimdLevel::active();
/// assert!(SimdLevel::available().contains(&widest));
/// assert_eq!(SimdLevel::cap(Some(SimdLevel::Portable)), SimdLevel::Portable);
/// assert_eq!(SimdLevel::active().lanes(), 1);
/// SimdLevel::cap(None);
/// assert_eq!(SimdLevel::active(), widest);
/// assert_eq!("AVX2".parse::<SimdLevel>().unwrap(), SimdLevel::Avx2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimdLevel {
    /// x86-64 with AVX-512 (F, BW, CD, DQ, VL): 16 `f32` lanes.
    Avx512,
    /// x86-64 with AVX2 and FMA: 8 lanes.
    Avx2,
    /// AArch64's NEON: 4 lanes.
    Neon,
    /// WebAssembly's simd128, where the module was built with it: 4 lanes.
    Simd128,
    /// Plain scalar code: one lane, on every CPU.
    Portable,
}

impl crate::names::Named for SimdLevel {
    const KIND: &'static str = "SIMD level";

    fn all() -> &'static [Self] {
        &SimdLevel::ALL
    }

    fn name(self) -> &'static str {
        match self {
            SimdLevel::Avx512 => "avx512",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Neon => "neon",
            SimdLevel::Simd128 => "simd128",
            SimdLevel::Portable => "portable",
        }
    }
}

crate::names::impl_named!(SimdLevel);

/// The environment variable that caps the level ([`SimdLevel`]).
const SIMD_VAR: &str = "NIN_SIMD";

/// The active level as its index in `SimdLevel::ALL` (its discriminant), or `UNSET` before
/// the first use.
static ACTIVE: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = u8::MAX;

impl SimdLevel {
    /// Every level, widest first.
    const ALL: [SimdLevel; 5] = [
        SimdLevel::Avx512,
        SimdLevel::Avx2,
        SimdLevel::Neon,
        SimdLevel::Simd128,
        SimdLevel::Portable,
    ];

    /// The widest level this CPU runs, detected once; caps do not change it.
    pub fn detected() -> SimdLevel {
        static DETECTED: OnceLock<SimdLevel> = OnceLock::new();
        *DETECTED.get_or_init(|| Self::widest_under(None))
    }

    /// The level the kernels run at now: [`SimdLevel::detected`], or the widest level under the
    /// cap.
    #[inline]
    pub fn active() -> SimdLevel {
        match ACTIVE.load(Ordering::Relaxed) {
            UNSET => Self::set_active(Self::cap_from_environment()),
            index => Self::ALL[usize::from(index)],
        }
    }

    /// Caps the level of every later kernel call in this process at `max` (`None` lifts the
    /// cap) and returns the level they will run at. Calls already running finish at their level.
    pub fn cap(max: Option<SimdLevel>) -> SimdLevel {
        Self::set_active(max)
    }

    /// The levels this CPU runs, widest first; [`SimdLevel::Portable`] is always among them.
    pub fn available() -> Vec<SimdLevel> {
        Self::ALL
            .into_iter()
            .filter(|level| level.is_available())
            .collect()
    }

    /// `f32` lanes of one vector at this level.
    pub fn lanes(self) -> usize {
        match self {
            SimdLevel::Avx512 => 16,
            SimdLevel::Avx2 => 8,
            SimdLevel::Neon | SimdLevel::Simd128 => 4,
            SimdLevel::Portable => 1,
        }
    }

    /// The level's name as its vendor writes it (`AVX-512`), for reports; its
    /// [`Named`](crate::names::Named) name (`avx512`) is what `NIN_SIMD` takes.
    pub fn label(self) -> &'static str {
        match self {
            SimdLevel::Avx512 => "AVX-512",
            SimdLevel::Avx2 => "AVX2",
            SimdLevel::Neon => "NEON",
            SimdLevel::Simd128 => "simd128",
            SimdLevel::Portable => "portable",
        }
    }

    /// Whether this CPU (or this WebAssembly build) runs the level.
    pub(crate) fn is_available(self) -> bool {
        self.run(Lanes).is_some()
    }

    fn set_active(max: Option<SimdLevel>) -> SimdLevel {
        let level = Self::widest_under(max);
        // The variants are declared in `ALL`'s order, so a level's discriminant is its index.
        ACTIVE.store(level as u8, Ordering::Relaxed);
        level
    }

    /// The widest level the CPU runs with at most `max`'s lanes.
    fn widest_under(max: Option<SimdLevel>) -> SimdLevel {
        let lanes = max.map_or(usize::MAX, SimdLevel::lanes);
        Self::ALL
            .into_iter()
            .find(|level| level.lanes() <= lanes && level.is_available())
            .unwrap_or(SimdLevel::Portable)
    }

    /// The cap `NIN_SIMD` names ([`crate::names::from_environment`]).
    fn cap_from_environment() -> Option<SimdLevel> {
        crate::names::from_environment(SIMD_VAR, std::env::var(SIMD_VAR).ok())
    }

    /// Runs `op` at this level, or returns `None` where the CPU lacks it.
    #[inline]
    pub(crate) fn run<Op: WithSimd>(self, op: Op) -> Option<Op::Output> {
        match self {
            SimdLevel::Portable => Some(Simd::vectorize(pulp::Scalar::new(), op)),
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2 => pulp::x86::V3::try_new().map(|simd| Simd::vectorize(simd, op)),
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => pulp::x86::V4::try_new().map(|simd| Simd::vectorize(simd, op)),
            #[cfg(target_arch = "aarch64")]
            SimdLevel::Neon => pulp::aarch64::Neon::try_new().map(|simd| Simd::vectorize(simd, op)),
            #[cfg(target_arch = "wasm32")]
            SimdLevel::Simd128 => {
                pulp::wasm::Simd128::try_new().map(|simd| Simd::vectorize(simd, op))
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// Runs `op` at the active level ([`SimdLevel::active`]).
#[inline]
pub(crate) fn dispatch<Op: WithSimd>(op: Op) -> Op::Output {
    match SimdLevel::active().run(op) {
        Some(output) => output,
        // `active` only names a level that `run` found available.
        None => unreachable!("the active SIMD level is available"),
    }
}

/// The `f32` lanes of a level's vectors.
struct Lanes;

impl WithSimd for Lanes {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> usize {
        S::F32_LANES
    }
}

/// `grad` where the ReLU's `output` is positive, else 0; a bit mask rather than a branch, so
/// that the loops around it vectorise.
#[inline(always)]
pub(crate) fn relu_grad(grad: f32, output: f32) -> f32 {
    let keep = if output > 0.0 { u32::MAX } else { 0 };
    f32::from_bits(grad.to_bits() & keep)
}

/// `out = max(0, a·x + b)`.
pub(crate) fn scale_shift_relu(out: &mut [MaybeUninit<f32>], input: &[f32], a: f32, b: f32) {
    dispatch(ScaleShiftRelu { out, input, a, b });
}

struct ScaleShiftRelu<'a> {
    out: &'a mut [MaybeUninit<f32>],
    input: &'a [f32],
    a: f32,
    b: f32,
}

impl WithSimd for ScaleShiftRelu<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { out, input, a, b } = self;
        assert_eq!(
            out.len(),
            input.len(),
            "scale_shift_relu writes every output"
        );
        let (out_vectors, out_rest) = S::as_uninit_mut_simd_f32s(out);
        let (vectors, rest) = S::as_simd_f32s(input);
        let (va, vb, zero) = (simd.splat_f32s(a), simd.splat_f32s(b), simd.splat_f32s(0.0));
        for (o, &v) in out_vectors.iter_mut().zip(vectors) {
            // A multiply, then an add, as the backward pass recomputes the mask.
            o.write(simd.max_f32s(simd.add_f32s(simd.mul_f32s(va, v), vb), zero));
        }
        for (o, &v) in out_rest.iter_mut().zip(rest) {
            o.write((a * v + b).max(0.0));
        }
    }
}

/// In place, `grad = k·g − shift − slope·(x − mean)`, with `g` the gradient where the forward's
/// `affine = [a, b]` made `a·x + b` positive (where the ReLU let it through) and 0 elsewhere.
pub(crate) fn batch_norm_input_grad(
    grad: &mut [f32],
    x: &[f32],
    coefficients: [f32; 3],
    mean: f32,
    affine: [f32; 2],
) {
    assert_eq!(grad.len(), x.len(), "one input value per gradient");
    dispatch(BatchNormInputGrad {
        grad,
        x,
        coefficients,
        mean,
        affine,
    });
}

struct BatchNormInputGrad<'a> {
    grad: &'a mut [f32],
    x: &'a [f32],
    coefficients: [f32; 3],
    mean: f32,
    affine: [f32; 2],
}

impl WithSimd for BatchNormInputGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            grad,
            x,
            coefficients: [k, shift, slope],
            mean,
            affine: [a, b],
        } = self;
        let (grad_vectors, grad_rest) = S::as_mut_simd_f32s(grad);
        let (x_vectors, x_rest) = S::as_simd_f32s(x);
        let splat = |v| simd.splat_f32s(v);
        let (vk, vshift, vslope, vmean) = (splat(k), splat(shift), splat(slope), splat(mean));
        let (va, vb, zero) = (splat(a), splat(b), splat(0.0));
        for (g, &v) in grad_vectors.iter_mut().zip(x_vectors) {
            let through = simd.greater_than_f32s(simd.add_f32s(simd.mul_f32s(va, v), vb), zero);
            let masked = simd.select_f32s(through, *g, zero);
            let centred = simd.sub_f32s(v, vmean);
            let scaled = simd.sub_f32s(simd.mul_f32s(vk, masked), vshift);
            *g = simd.sub_f32s(scaled, simd.mul_f32s(vslope, centred));
        }
        for (g, &v) in grad_rest.iter_mut().zip(x_rest) {
            *g = k * relu_grad(*g, a * v + b) - shift - slope * (v - mean);
        }
    }
}

/// `(Σ (x − centre), Σ (x − centre)²)`.
pub(crate) fn plane_sums(values: &[f32], centre: f32) -> (f32, f32) {
    dispatch(PlaneSums { values, centre })
}

struct PlaneSums<'a> {
    values: &'a [f32],
    centre: f32,
}

impl WithSimd for PlaneSums<'_> {
    type Output = (f32, f32);

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> (f32, f32) {
        let (vectors, rest) = S::as_simd_f32s(self.values);
        let c = simd.splat_f32s(self.centre);
        let (mut sum, mut squares) = (simd.splat_f32s(0.0), simd.splat_f32s(0.0));
        for &v in vectors {
            let centred = simd.sub_f32s(v, c);
            sum = simd.add_f32s(sum, centred);
            squares = simd.mul_add_e_f32s(centred, centred, squares);
        }
        let (mut sum, mut squares) = (simd.reduce_sum_f32s(sum), simd.reduce_sum_f32s(squares));
        for &v in rest {
            let centred = v - self.centre;
            sum += centred;
            squares += centred * centred;
        }
        (sum, squares)
    }
}

/// `(Σ g, Σ g·(x − mean))` over the positions where `a·x + b` is positive (`affine = [a, b]`,
/// the forward's scale and shift: where the ReLU let the value through).
pub(crate) fn masked_sums(grad: &[f32], x: &[f32], mean: f32, affine: [f32; 2]) -> (f32, f32) {
    assert_eq!(grad.len(), x.len(), "one input value per gradient");
    dispatch(MaskedSums {
        grad,
        x,
        mean,
        affine,
    })
}

struct MaskedSums<'a> {
    grad: &'a [f32],
    x: &'a [f32],
    mean: f32,
    affine: [f32; 2],
}

impl WithSimd for MaskedSums<'_> {
    type Output = (f32, f32);

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> (f32, f32) {
        let Self {
            grad,
            x,
            mean,
            affine: [a, b],
        } = self;
        let (grad_vectors, grad_rest) = S::as_simd_f32s(grad);
        let (x_vectors, x_rest) = S::as_simd_f32s(x);
        let (va, vb, vmean) = (
            simd.splat_f32s(a),
            simd.splat_f32s(b),
            simd.splat_f32s(mean),
        );
        let zero = simd.splat_f32s(0.0);
        let (mut sg, mut sgx) = (zero, zero);
        for (&g, &v) in grad_vectors.iter().zip(x_vectors) {
            // A multiply, then an add, not a fused multiply-add: the same rounding as the
            // forward's `a·x + b`, so the same mask.
            let through = simd.greater_than_f32s(simd.add_f32s(simd.mul_f32s(va, v), vb), zero);
            let g = simd.select_f32s(through, g, zero);
            sg = simd.add_f32s(sg, g);
            sgx = simd.mul_add_e_f32s(g, simd.sub_f32s(v, vmean), sgx);
        }
        let (mut sg, mut sgx) = (simd.reduce_sum_f32s(sg), simd.reduce_sum_f32s(sgx));
        for (&g, &v) in grad_rest.iter().zip(x_rest) {
            let g = relu_grad(g, a * v + b);
            sg += g;
            sgx += g * (v - mean);
        }
        (sg, sgx)
    }
}

/// Runs `rounds` rounds of 12 independent multiply-adds of the active level's vectors on
/// this thread, and returns the floating-point operations done: a loop with no memory traffic
/// and no dependency between neighbouring multiply-adds, so it runs at the FMA units' peak.
pub(crate) fn fma_flops(rounds: u64) -> u64 {
    dispatch(FmaLoop { rounds })
}

struct FmaLoop {
    rounds: u64,
}

impl WithSimd for FmaLoop {
    type Output = u64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> u64 {
        const CHAINS: usize = 12;
        let (a, b) = (simd.splat_f32s(0.999_999), simd.splat_f32s(1e-7));
        let mut acc = [simd.splat_f32s(1.0); CHAINS];
        for _ in 0..self.rounds {
            for v in &mut acc {
                *v = simd.mul_add_e_f32s(*v, a, b);
            }
        }
        std::hint::black_box(acc);
        self.rounds * (CHAINS * S::F32_LANES * 2) as u64
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

    /// `op` run at `level`, which the CPU has.
    fn at<Op: WithSimd>(level: SimdLevel, op: Op) -> Op::Output {
        level.run(op).expect("an available level")
    }

    fn close(a: f32, b: f32, scale: f32) -> bool {
        (a - b).abs() <= 1e-5 * scale.max(1.0)
    }

    /// `max(0, a·x + b)` of each value at `level`.
    fn shifted(level: SimdLevel, x: &[f32], a: f32, b: f32) -> Vec<f32> {
        let fill = |out: &mut [MaybeUninit<f32>]| {
            at(
                level,
                ScaleShiftRelu {
                    out,
                    input: x,
                    a,
                    b,
                },
            )
        };
        // SAFETY: the kernel writes every output (it asserts the lengths match).
        #[allow(unsafe_code)]
        unsafe {
            crate::ops::flex::written_vec(x.len(), fill)
        }
    }

    #[test]
    fn the_portable_level_is_always_there_and_detected_is_the_widest() {
        let available = SimdLevel::available();
        assert!(available.contains(&SimdLevel::Portable));
        assert_eq!(SimdLevel::detected(), available[0]);
        for level in available {
            assert_eq!(level.run(Lanes), Some(level.lanes()), "{level:?}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(SimdLevel::detected(), SimdLevel::Avx512);
        }
    }

    /// `active` reads a level back from its discriminant as an index into `ALL`.
    #[test]
    fn the_levels_are_declared_in_all_s_order() {
        for (index, level) in SimdLevel::ALL.into_iter().enumerate() {
            assert_eq!(level as usize, index, "{level:?}");
        }
    }

    /// A cap picks the widest level the CPU has at or under its lanes: itself where the CPU has
    /// it, never a wider one, and the portable code for a level of another architecture.
    #[test]
    fn a_cap_never_picks_a_wider_level_than_it_names() {
        let available = SimdLevel::available();
        for cap in SimdLevel::ALL {
            let picked = SimdLevel::widest_under(Some(cap));
            assert!(picked.lanes() <= cap.lanes(), "{cap:?} picked {picked:?}");
            assert!(available.contains(&picked), "{cap:?} picked {picked:?}");
            if available.contains(&cap) {
                assert_eq!(picked, cap);
            }
        }
        assert_eq!(SimdLevel::widest_under(None), SimdLevel::detected());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            SimdLevel::widest_under(Some(SimdLevel::Neon)),
            SimdLevel::Portable
        );
    }

    /// Every level the CPU has against the portable one, at every length from empty to past two
    /// 16-lane vectors, so that the vector body, the remainder loop and both together are
    /// covered.
    #[test]
    fn each_level_agrees_with_the_portable_one() {
        for level in SimdLevel::available() {
            for len in 0..40 {
                let (x, g, y) = (values(len, 1), values(len, 2), values(len, 3));
                let scale = len as f32 * 4.0;
                let both =
                    |op: &dyn Fn(SimdLevel) -> (f32, f32)| (op(level), op(SimdLevel::Portable));

                let ((s, q), (sp, qp)) = both(&|level| {
                    at(
                        level,
                        PlaneSums {
                            values: &x,
                            centre: 0.3,
                        },
                    )
                });
                assert!(
                    close(s, sp, scale) && close(q, qp, scale * 4.0),
                    "plane_sums at {level:?}, {len}: {s} {q} against {sp} {qp}"
                );

                let affine = [1.5, -0.25];
                let ((a, b), (ap, bp)) = both(&|level| {
                    at(
                        level,
                        MaskedSums {
                            grad: &g,
                            x: &x,
                            mean: -0.2,
                            affine,
                        },
                    )
                });
                assert!(
                    close(a, ap, scale) && close(b, bp, scale * 4.0),
                    "masked_sums at {level:?}, {len}"
                );

                assert_eq!(
                    shifted(level, &x, 1.5, -0.25),
                    shifted(SimdLevel::Portable, &x, 1.5, -0.25),
                    "scale_shift_relu at {level:?}, {len}"
                );

                let coefficients = [0.7, 0.1, -0.3];
                let (mut grad, mut grad_p) = (y.clone(), y.clone());
                for (level, grad) in [(level, &mut grad), (SimdLevel::Portable, &mut grad_p)] {
                    at(
                        level,
                        BatchNormInputGrad {
                            grad,
                            x: &x,
                            coefficients,
                            mean: 0.5,
                            affine,
                        },
                    );
                }
                assert!(
                    grad.iter().zip(&grad_p).all(|(a, b)| close(*a, *b, 1.0)),
                    "batch_norm_input_grad at {level:?}, {len}"
                );
            }
        }
    }

    /// The backward pass recomputes the ReLU's mask as `a·x + b > 0`: it must be exactly where
    /// the forward kernel's output is positive, including values that round to 0, at every
    /// level.
    #[test]
    fn the_backward_mask_is_where_the_forward_output_is_positive() {
        let x: Vec<f32> = (0..4000).map(|i| (i as f32 - 2000.0) * 1e-3).collect();
        let ones = vec![1.0; x.len()];
        for level in SimdLevel::available() {
            for (a, b) in [
                (1.0, 0.0),
                (0.3, 0.1),
                (7.1, -1.9),
                (-2.5, 0.6),
                (1.0e-3, -1.0e-6),
            ] {
                let out = shifted(level, &x, a, b);
                let positive = out.iter().filter(|&&o| o > 0.0).count() as f32;
                let (count, _) = at(
                    level,
                    MaskedSums {
                        grad: &ones,
                        x: &x,
                        mean: 0.0,
                        affine: [a, b],
                    },
                );
                assert_eq!(count, positive, "{level:?}: a = {a}, b = {b}");
            }
        }
    }

    #[test]
    fn the_portable_forms_compute_what_they_say() {
        let x = [1.0, -2.0, 3.0, 0.0];
        assert_eq!(
            at(
                SimdLevel::Portable,
                PlaneSums {
                    values: &x,
                    centre: 0.5
                }
            ),
            (0.5 - 2.5 + 2.5 - 0.5, 0.25 + 6.25 + 6.25 + 0.25)
        );
        // Only positions where 2·x − 1 is positive count: the first and the third.
        let g = [1.0, 2.0, 4.0, 8.0];
        let sums = at(
            SimdLevel::Portable,
            MaskedSums {
                grad: &g,
                x: &x,
                mean: 1.0,
                affine: [2.0, -1.0],
            },
        );
        assert_eq!(sums, (5.0, 8.0));
        let mut grad = g;
        at(
            SimdLevel::Portable,
            BatchNormInputGrad {
                grad: &mut grad,
                x: &x,
                coefficients: [1.0, 0.0, 0.0],
                mean: 1.0,
                affine: [2.0, -1.0],
            },
        );
        assert_eq!(grad, [1.0, 0.0, 4.0, 0.0]);
        assert_eq!(
            shifted(SimdLevel::Portable, &x, 2.0, 1.0),
            [3.0, 0.0, 7.0, 1.0]
        );
    }

    #[test]
    fn the_peak_loop_counts_its_flops_at_the_active_level() {
        let lanes = SimdLevel::active().lanes() as u64;
        assert_eq!(fma_flops(10), 10 * 12 * lanes * 2);
    }
}
