//! Batch normalisation with batch statistics followed by a ReLU, as one flex kernel with a
//! hand-written backward pass.
//!
//! Composed from tensor operations, a training-mode batch norm and its ReLU make one pass over
//! the whole activation per operation, forward and back, and on a CPU those passes over memory,
//! not arithmetic, are the cost of a batch-norm layer. This kernel makes three passes forward
//! (sum, centred squares, output) and two back (two sums per channel, then the input's
//! gradient).
//!
//! It is a burn backend extension: [`BatchNormReluOps`] is implemented for flex and for
//! autodiff over flex, where the backward pass is registered by hand. Other backends keep the
//! composed path (`fast_path::batch_norm_composed`, then a ReLU). The kernel is tested equal to
//! burn's `BatchNorm` followed by `relu`: outputs, gradients and running statistics
//! (tests/fast_path.rs).

use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::tensor::{DType, Shape, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Three tensors: the activation and two per-channel vectors (statistics or gradients).
type Normalised<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

/// The fused batch norm + ReLU as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait BatchNormReluOps: Backend {
    /// `relu(gamma · (x − mean) / sqrt(var + epsilon) + beta)` over `[N, C, H, W]`, with the
    /// per-channel batch mean and biased variance; returns `(output, mean, variance)`.
    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `x`, `gamma` and `beta` given the forward's input, output and statistics
    /// and the output's gradient.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Whether [`batch_norm_relu`] runs on tensors of `device` in this dtype: flex (with or without
/// autodiff) and `f32`.
pub(crate) fn supports(device: &burn::tensor::Device, dtype: DType) -> bool {
    dtype == DType::F32
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::Flex(_)
        )
}

/// The fused operation on `[N, C, H, W]` tensors; see [`supports`]. Returns the activation and
/// the batch mean and biased variance (not tracked by autodiff).
pub(crate) fn batch_norm_relu(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let (output, mean, variance) = <Dispatch as BatchNormReluOps>::batch_norm_relu(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(output),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(variance),
    )
}

/// Applies `f` to each of three values.
fn each<T, U>((a, b, c): (T, T, T), f: impl Fn(T) -> U) -> (U, U, U) {
    (f(a), f(b), f(c))
}

impl BatchNormReluOps for Flex {
    fn batch_norm_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> Normalised<Self> {
        let dims = NchwDims::of(&x);
        let (x, gamma, beta) = (f32_values(&x), f32_values(&gamma), f32_values(&beta));
        let stats = ChannelStats::of(&x, dims, epsilon);
        // Per channel the output is relu(a·x + b), with a = gamma/std and b = beta − a·mean.
        let scale: Vec<f32> = (0..dims.channels)
            .map(|c| gamma[c] * stats.inv_std[c])
            .collect();
        let shift: Vec<f32> = (0..dims.channels)
            .map(|c| beta[c] - scale[c] * stats.mean[c])
            .collect();
        let mut output = vec![0f32; x.len()];
        output
            .par_chunks_mut(dims.image())
            .zip(x.par_chunks(dims.image()))
            .for_each(|(out, input)| {
                let planes = out.chunks_mut(dims.plane).zip(input.chunks(dims.plane));
                for (c, (out, input)) in planes.enumerate() {
                    scale_shift_relu(out, input, scale[c], shift[c]);
                }
            });
        (
            flex_tensor(output, dims.shape()),
            flex_tensor(stats.mean, Shape::new([dims.channels])),
            flex_tensor(stats.variance, Shape::new([dims.channels])),
        )
    }

    fn batch_norm_relu_backward(
        x: FlexTensor,
        output: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
    ) -> Normalised<Self> {
        let dims = NchwDims::of(&x);
        let (x, output, grad) = (
            f32_values(&x),
            f32_values(&output),
            f32_values(&output_grad),
        );
        let (gamma, mean, variance) =
            (f32_values(&gamma), f32_values(&mean), f32_values(&variance));
        let count = dims.count_per_channel() as f64;
        // Per channel: Σg and Σg·(x − mean) over the positions the ReLU let through.
        let sums: Vec<(f64, f64)> = (0..dims.channels)
            .into_par_iter()
            .map(|c| {
                let m = mean[c];
                dims.planes_of(c).fold((0.0, 0.0), |(sg, sgx), range| {
                    let (g, y, v) = (&grad[range.clone()], &output[range.clone()], &x[range]);
                    let (a, b) = masked_sums(g, y, v, m);
                    (sg + a as f64, sgx + b as f64)
                })
            })
            .collect();
        let inv_std: Vec<f64> = variance
            .iter()
            .map(|&v| 1.0 / (v as f64 + epsilon).sqrt())
            .collect();
        let grad_beta: Vec<f32> = sums.iter().map(|&(sg, _)| sg as f32).collect();
        let grad_gamma: Vec<f32> = sums
            .iter()
            .zip(&inv_std)
            .map(|(&(_, sgx), &s)| (sgx * s) as f32)
            .collect();
        // dx = k·g − k·Σg/M − k·(x − mean)·Σg(x − mean)/(M·(var + ε)), with k = gamma/std.
        let coefficients: Vec<[f32; 3]> = (0..dims.channels)
            .map(|c| {
                let k = gamma[c] as f64 * inv_std[c];
                let (sg, sgx) = sums[c];
                [
                    k as f32,
                    (k * sg / count) as f32,
                    (k * sgx * inv_std[c] * inv_std[c] / count) as f32,
                ]
            })
            .collect();
        let mut grad_x = vec![0f32; x.len()];
        grad_x
            .par_chunks_mut(dims.image())
            .enumerate()
            .for_each(|(n, out)| {
                for (c, out) in out.chunks_mut(dims.plane).enumerate() {
                    let range = dims.plane_range(n, c);
                    let planes = (&grad[range.clone()], &output[range.clone()], &x[range]);
                    input_grad(out, planes, coefficients[c], mean[c]);
                }
            });
        (
            flex_tensor(grad_x, dims.shape()),
            flex_tensor(grad_gamma, Shape::new([dims.channels])),
            flex_tensor(grad_beta, Shape::new([dims.channels])),
        )
    }
}

/// Defines a kernel over slices together with a copy compiled for AVX2 and FMA, which it runs
/// when the CPU has them: the crate is built for the baseline x86-64 (SSE2), where these loops
/// would run four lanes wide at most.
macro_rules! simd_kernel {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if avx2::available() {
                    // SAFETY: `avx2` needs AVX2 and FMA, and this CPU has both.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

/// `grad` where the ReLU's `output` is positive, else 0; a bit mask rather than a branch, so
/// that the loops around it vectorise.
#[inline(always)]
fn relu_grad(grad: f32, output: f32) -> f32 {
    let keep = if output > 0.0 { u32::MAX } else { 0 };
    f32::from_bits(grad.to_bits() & keep)
}

/// `(Σ x, Σ (x − mean)²)`; the second with `mean` as given.
fn plane_sums(values: &[f32], mean: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { avx2::plane_sums(values, mean) };
    }
    let squares = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (values.iter().sum(), squares)
}

/// `(Σ g, Σ g·(x − mean))` over the positions where the output is positive.
fn masked_sums(grad: &[f32], output: &[f32], x: &[f32], mean: f32) -> (f32, f32) {
    assert!(output.len() == grad.len() && x.len() == grad.len());
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA, and the three slices have one length.
        return unsafe { avx2::masked_sums(grad, output, x, mean) };
    }
    let mut sums = (0.0, 0.0);
    for ((&g, &y), &v) in grad.iter().zip(output).zip(x) {
        let g = relu_grad(g, y);
        sums = (sums.0 + g, sums.1 + g * (v - mean));
    }
    sums
}

/// The two reductions with AVX2 intrinsics: the compiler does not vectorise a float sum by
/// itself (it may not reorder one), and the crate is built for baseline x86-64.
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
    pub(super) unsafe fn plane_sums(values: &[f32], mean: f32) -> (f32, f32) {
        let (mut sum, mut squares) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let m = _mm256_set1_ps(mean);
        let mut blocks = values.chunks_exact(8);
        for block in &mut blocks {
            // SAFETY: `block` holds 8 floats.
            let v = unsafe { _mm256_loadu_ps(block.as_ptr()) };
            sum = _mm256_add_ps(sum, v);
            let centred = _mm256_sub_ps(v, m);
            squares = _mm256_fmadd_ps(centred, centred, squares);
        }
        let rest = blocks.remainder();
        (
            horizontal_sum(sum) + rest.iter().sum::<f32>(),
            horizontal_sum(squares) + rest.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>(),
        )
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA; `output` and `x` must be as long as `grad`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn masked_sums(
        grad: &[f32],
        output: &[f32],
        x: &[f32],
        mean: f32,
    ) -> (f32, f32) {
        let (mut sg, mut sgx) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (m, zero) = (_mm256_set1_ps(mean), _mm256_setzero_ps());
        let whole = grad.len() / 8 * 8;
        for i in (0..whole).step_by(8) {
            // SAFETY: i + 8 ≤ the length of all three slices.
            let (g, y, v) = unsafe {
                (
                    _mm256_loadu_ps(grad.as_ptr().add(i)),
                    _mm256_loadu_ps(output.as_ptr().add(i)),
                    _mm256_loadu_ps(x.as_ptr().add(i)),
                )
            };
            let g = _mm256_and_ps(g, _mm256_cmp_ps::<_CMP_GT_OQ>(y, zero));
            sg = _mm256_add_ps(sg, g);
            sgx = _mm256_fmadd_ps(g, _mm256_sub_ps(v, m), sgx);
        }
        let (mut a, mut b) = (horizontal_sum(sg), horizontal_sum(sgx));
        for i in whole..grad.len() {
            let g = super::relu_grad(grad[i], output[i]);
            a += g;
            b += g * (x[i] - mean);
        }
        (a, b)
    }
}

simd_kernel! {
    /// `out = max(0, a·x + b)`.
    fn scale_shift_relu(out: &mut [f32], input: &[f32], a: f32, b: f32) {
        for (o, &v) in out.iter_mut().zip(input) {
            *o = (a * v + b).max(0.0);
        }
    }
}

simd_kernel! {
    /// `out = k·g − shift − slope·(x − mean)`, with `g` the gradient where the output is
    /// positive and 0 elsewhere; `planes` holds the gradient, the output and `x`.
    fn input_grad(out: &mut [f32], planes: (&[f32], &[f32], &[f32]), coefficients: [f32; 3], mean: f32) {
        let (grad, output, x) = planes;
        let [k, shift, slope] = coefficients;
        for (((o, &g), &y), &v) in out.iter_mut().zip(grad).zip(output).zip(x) {
            *o = k * relu_grad(g, y) - shift - slope * (v - mean);
        }
    }
}

/// The sizes of an `[N, C, H, W]` tensor as the kernels walk it: `N·C` planes of `H·W` values.
#[derive(Clone, Copy)]
struct NchwDims {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    plane: usize,
}

impl NchwDims {
    fn of(tensor: &FlexTensor) -> Self {
        let shape = tensor.layout().shape();
        assert_eq!(shape.num_dims(), 4, "batch_norm_relu takes [N, C, H, W]");
        let (batch, channels, height, width) = (shape[0], shape[1], shape[2], shape[3]);
        Self {
            batch,
            channels,
            height,
            width,
            plane: height * width,
        }
    }

    fn shape(&self) -> Shape {
        Shape::new([self.batch, self.channels, self.height, self.width])
    }

    fn count_per_channel(&self) -> usize {
        self.batch * self.plane
    }

    /// Values per image.
    fn image(&self) -> usize {
        self.channels * self.plane
    }

    /// The index range of image `n`'s plane of channel `c`.
    fn plane_range(&self, n: usize, c: usize) -> std::ops::Range<usize> {
        let start = (n * self.channels + c) * self.plane;
        start..start + self.plane
    }

    /// The index ranges of channel `c`'s plane in each image.
    fn planes_of(&self, c: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        (0..self.batch).map(move |n| self.plane_range(n, c))
    }
}

/// Batch mean, biased variance and `1/sqrt(variance + epsilon)` per channel, in two passes (the
/// variance from centred values, which keeps its precision when the mean is large).
struct ChannelStats {
    mean: Vec<f32>,
    variance: Vec<f32>,
    inv_std: Vec<f32>,
}

impl ChannelStats {
    fn of(x: &[f32], dims: NchwDims, epsilon: f64) -> Self {
        let count = dims.count_per_channel() as f64;
        let per_channel: Vec<(f32, f32)> = (0..dims.channels)
            .into_par_iter()
            .map(|c| {
                // The first pass centres on 0 for the sum; the second on the mean.
                let sum: f64 = dims
                    .planes_of(c)
                    .map(|range| plane_sums(&x[range], 0.0).0 as f64)
                    .sum();
                let mean = (sum / count) as f32;
                let squares: f64 = dims
                    .planes_of(c)
                    .map(|range| plane_sums(&x[range], mean).1 as f64)
                    .sum();
                (mean, (squares / count) as f32)
            })
            .collect();
        let (mean, variance): (Vec<f32>, Vec<f32>) = per_channel.into_iter().unzip();
        let inv_std = variance
            .iter()
            .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
            .collect();
        Self {
            mean,
            variance,
            inv_std,
        }
    }
}

/// The tensor's values in row-major order, without a copy when it is already laid out so.
fn f32_values(tensor: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    assert_eq!(tensor.dtype(), DType::F32, "batch_norm_relu runs in f32");
    match tensor.as_slice::<f32>() {
        Some(values) => std::borrow::Cow::Borrowed(values),
        None => std::borrow::Cow::Owned(
            tensor
                .to_contiguous()
                .as_slice::<f32>()
                .expect("a contiguous f32 tensor")
                .to_vec(),
        ),
    }
}

fn flex_tensor(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The autodiff node of the fused operation: its backward pass calls the backend's kernel.
#[derive(Debug)]
struct BatchNormReluBackward;

/// What the backward pass keeps: input, output, gamma, batch mean and variance, epsilon.
type SavedForBackward<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    f64,
);

impl<B: Backend + BatchNormReluOps> Backward<B, 3> for BatchNormReluBackward {
    type State = SavedForBackward<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, output, gamma, mean, variance, epsilon) = ops.state;
        let output_grad = grads.consume::<B>(&ops.node);
        let (grad_x, grad_gamma, grad_beta) =
            B::batch_norm_relu_backward(x, output, gamma, mean, variance, output_grad, epsilon);
        let [x_node, gamma_node, beta_node] = ops.parents;
        for (node, grad) in [
            (x_node, grad_x),
            (gamma_node, grad_gamma),
            (beta_node, grad_beta),
        ] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + BatchNormReluOps, C: CheckpointStrategy> BatchNormReluOps for Autodiff<B, C> {
    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalised<Self> {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
        let (output, mean, variance) =
            B::batch_norm_relu(x.clone(), gamma.clone(), beta.into_primitive(), epsilon);
        let saved = (
            x,
            output.clone(),
            gamma,
            mean.clone(),
            variance.clone(),
            epsilon,
        );
        let output = match BatchNormReluBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }

    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalised<Self> {
        // Gradients are not themselves differentiated: compute on the inner backend.
        let grads = B::batch_norm_relu_backward(
            x.into_primitive(),
            output.into_primitive(),
            gamma.into_primitive(),
            mean.into_primitive(),
            variance.into_primitive(),
            output_grad.into_primitive(),
            epsilon,
        );
        each(grads, Self::from_inner)
    }
}
