//! The performance layer: every kernel and faster formulation the model runs on.
//! [`conv2d`] and [`max_pool2d`] run burn's `Conv2d` (with its ReLU) and `MaxPool2d` on these
//! kernels for models of your own, with the modules' values and gradients.
//!
//! Design notes: `docs/design.md`, "ops".

#[cfg(feature = "flex")]
mod batch_norm_relu;
#[cfg(feature = "flex")]
mod blocked;
mod composed;
#[cfg(any(feature = "flex", feature = "cube"))]
mod conv_extension;
mod conv_settings;
#[cfg(feature = "cube")]
#[doc(hidden)] // the GPU kernel's autotune records, for its tests and `perf`
pub mod cube_conv;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
#[doc(hidden)] // for `perf` and the benches: not part of the supported API
pub mod flex_conv;
#[cfg(feature = "flex")]
#[doc(hidden)] // for `perf` and the benches: not part of the supported API
pub mod gemm;
mod geometry;
#[cfg(feature = "flex")]
mod max_pool;
pub(crate) mod memory;
#[cfg(feature = "flex")]
mod moments;
#[cfg(feature = "flex")]
mod scratch;
#[cfg(feature = "flex")]
mod simd;
#[cfg(feature = "flex")]
mod team;

#[cfg(feature = "flex")]
#[doc(hidden)]
pub use blocked::DirectConvLayer;
#[cfg(all(test, feature = "flex"))]
pub(crate) use blocked::PACKINGS;
#[cfg(feature = "flex")]
pub(crate) use blocked::{InferenceCache, NetworkStage};
/// Without flex there is no blocked path and nothing to keep; the type is there so that a
/// model has the same fields with every feature set.
#[cfg(not(feature = "flex"))]
#[derive(Clone, Debug, Default)]
pub(crate) struct InferenceCache;
// How the cube backends' convolution runs for one call (`conv2d_with`): the tests and `perf`
// force a kernel or count its passes with these; a model's `forward` needs none of them.
#[doc(hidden)]
pub use conv_settings::{ConvChoice, ConvKernel, ConvPass, ConvSettings, KernelRuns};
#[doc(hidden)]
pub use geometry::ConvGeometry;
pub use memory::retain_freed_memory;
#[cfg(feature = "flex")]
pub use simd::SimdLevel;

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::activation::relu;
use burn::tensor::{DType, Tensor};

/// `relu(norm(conv(input)))`, or `relu(conv(input))` without a norm, with batch statistics when
/// the input is on an autodiff device and the norm is in training mode, running statistics
/// otherwise; the fastest formulation this backend has.
pub(crate) fn conv_norm_relu(
    conv: &Conv2d,
    norm: Option<&BatchNorm>,
    input: Tensor<4>,
) -> Tensor<4> {
    let training = input.device().is_autodiff();
    match norm {
        Some(norm) if training && norm.training.is_enabled() => {
            let (x, statistics) = conv2d_with_statistics(conv, input);
            batch_norm_relu_train(norm, x, statistics)
        }
        Some(norm) => conv2d(&composed::fold_norm(conv, norm), input, true),
        None => conv2d(conv, input, true),
    }
}

/// `conv.forward(input)`, followed by a ReLU when `with_relu` is set: the same values and
/// gradients, computed by this crate's convolution kernel where it takes the convolution (see
/// [`conv2d_uses_kernel`]) and by burn's otherwise.
///
/// The convolution runs in the input's float type: weights and bias in another (a network's
/// `f32` parameters under `f16` images) are cast to it on the way in, and their gradients
/// come back in theirs. Products accumulate in `f32` on every path this crate's kernels take
/// (on flex, half-precision operands are rounded and then multiplied in `f32`).
///
/// ```
/// use burn::nn::PaddingConfig2d;
/// use burn::nn::conv::Conv2dConfig;
/// use burn::tensor::Tensor;
///
/// let device = nin::backend::device("flex").unwrap();
/// let conv = Conv2dConfig::new([3, 8], [3, 3])
///     .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
///     .init(&device);
/// let images = Tensor::<4>::ones([2, 3, 16, 16], &device);
/// assert!(nin::ops::conv2d_uses_kernel(&conv, &images));
/// let maps = nin::ops::conv2d(&conv, images, true);
/// assert_eq!(maps.dims(), [2, 8, 16, 16]);
/// ```
pub fn conv2d(conv: &Conv2d, input: Tensor<4>, with_relu: bool) -> Tensor<4> {
    conv2d_with(conv, input, with_relu, &ConvSettings::default())
}

/// [`conv2d`] with the cube backends' kernel run as `settings` say, for this call and its
/// gradients (flex has one kernel and ignores them).
///
/// ```
/// use burn::nn::conv::Conv2dConfig;
/// use burn::tensor::Tensor;
/// use nin::ops::{ConvChoice, ConvKernel, ConvSettings};
///
/// let device = nin::backend::device("flex").unwrap();
/// let conv = Conv2dConfig::new([3, 8], [3, 3]).init(&device);
/// let burns = ConvSettings::new(ConvChoice::Always(ConvKernel::Burn));
/// let maps = nin::ops::conv2d_with(&conv, Tensor::ones([1, 3, 8, 8], &device), true, &burns);
/// assert_eq!(maps.dims(), [1, 8, 6, 6]);
/// ```
#[doc(hidden)] // for the tests and `perf`: a model's `forward` uses the default settings
pub fn conv2d_with(
    conv: &Conv2d,
    input: Tensor<4>,
    with_relu: bool,
    settings: &ConvSettings,
) -> Tensor<4> {
    let dtype = input.dtype();
    let weight = cast_to(conv.weight.val(), dtype);
    let bias = conv.bias.as_ref().map(|bias| cast_to(bias.val(), dtype));
    #[cfg(feature = "flex")]
    if dtype != DType::F32 && flex::runs_on_flex(&input.device(), DType::F32) {
        // Flex has no half-precision kernel that accumulates in f32 (burn-flex's accumulates in
        // the half type): the operands, rounded to it, go through the f32 kernel, as tensor
        // cores take half-precision operands and accumulate in f32.
        let input = cast_to(input, DType::F32);
        let Some(padding) = kernel_padding(conv, &input) else {
            return cast_to(conv2d_with(conv, input, with_relu, settings), dtype);
        };
        let output = conv_extension::conv2d_relu(
            input,
            cast_to(weight, DType::F32),
            bias.map(|bias| cast_to(bias, DType::F32)),
            conv.stride,
            padding,
            with_relu,
            settings,
        );
        return cast_to(output, dtype);
    }
    #[cfg(any(feature = "flex", feature = "cube"))]
    if let Some(padding) = kernel_padding(conv, &input) {
        return conv_extension::conv2d_relu(
            input,
            weight,
            bias,
            conv.stride,
            padding,
            with_relu,
            settings,
        );
    }
    let _ = settings;
    let x = if composed::is_pointwise(conv)
        && (input.device().is_autodiff() || dtype != conv.weight.dtype())
    {
        composed::pointwise_conv(weight, bias, input)
    } else {
        composed::burn_conv(conv, weight, bias, input)
    };
    if with_relu { relu(x) } else { x }
}

/// `tensor` in float type `dtype` (itself when it is in it already).
pub(crate) fn cast_to<const D: usize>(tensor: Tensor<D>, dtype: DType) -> Tensor<D> {
    if tensor.dtype() == dtype {
        tensor
    } else {
        tensor.cast(dtype)
    }
}

/// `conv.forward(input)` and, where this crate's kernel runs it, the batch mean and biased
/// variance of each output channel (`[2, C_out]`), taken while each map is in cache.
fn conv2d_with_statistics(conv: &Conv2d, input: Tensor<4>) -> (Tensor<4>, Option<Tensor<2>>) {
    #[cfg(feature = "flex")]
    if flex::runs_on_flex(&input.device(), input.dtype())
        && let Some(padding) = kernel_padding(conv, &input)
    {
        let (output, statistics) = conv_extension::conv2d_with_statistics(
            input,
            conv.weight.val(),
            conv.bias.as_ref().map(|bias| bias.val()),
            conv.stride,
            padding,
        );
        return (output, Some(statistics));
    }
    (conv2d(conv, input, false), None)
}

/// The gradients of [`conv2d`]'s convolution outside autodiff, given the gradient of its output
/// before any ReLU: `(input's when input_grad is set, weight's, bias's)`, each in the input's
/// float type; `None` where [`conv2d_uses_kernel`] is false. Cube backends run the passes as
/// `settings` say. For benchmarks of the kernel's passes (`perf --layers`); training gets the
/// same gradients from autodiff.
#[allow(clippy::type_complexity)]
#[doc(hidden)] // for `perf --layers`
pub fn conv2d_gradients(
    conv: &Conv2d,
    input: Tensor<4>,
    output_grad: Tensor<4>,
    input_grad: bool,
    settings: &ConvSettings,
) -> Option<(Option<Tensor<4>>, Tensor<4>, Tensor<1>)> {
    #[cfg(any(feature = "flex", feature = "cube"))]
    if let Some(padding) = kernel_padding(conv, &input) {
        let weight = cast_to(conv.weight.val(), input.dtype());
        return Some(conv_extension::conv2d_backward(
            input,
            weight,
            output_grad,
            conv.stride,
            padding,
            input_grad,
            settings,
        ));
    }
    let _ = (conv, input, output_grad, input_grad, settings);
    None
}

/// Whether [`conv2d`] runs `conv` on `input` through this crate's kernel: without dilation or
/// groups, with the same padding on both sides of each axis and no empty dimension, on
///
/// - flex (with or without autodiff) in `f32`, every window size;
/// - a cube backend (wgpu, Vulkan, CUDA) in any float type, windows larger than 1×1 (a 1×1
///   layer is a matrix product of its own there).
///
/// Always false on ndarray, and without the `flex`, `wgpu` and `cuda` features.
pub fn conv2d_uses_kernel(conv: &Conv2d, input: &Tensor<4>) -> bool {
    #[cfg(any(feature = "flex", feature = "cube"))]
    return kernel_padding(conv, input).is_some();
    #[cfg(not(any(feature = "flex", feature = "cube")))]
    {
        let _ = (conv, input);
        false
    }
}

/// `pool.forward(input)`: the same values and gradient, computed by this crate's max-pool kernel
/// on flex (in `f32`, for pools without padding or dilation, rounding down, and an input that
/// fits a window) and by burn's otherwise.
pub fn max_pool2d(pool: &MaxPool2d, input: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if flex::runs_on_flex(&input.device(), input.dtype()) && plain_pool_fits(pool, input.dims()) {
        return max_pool::max_pool2d(input, pool.kernel_size, pool.stride);
    }
    pool.forward(input)
}

/// Whether `pool` has no padding, dilation or ceiling rounding and `input` fits one window.
#[cfg(feature = "flex")]
fn plain_pool_fits(pool: &MaxPool2d, input: [usize; 4]) -> bool {
    let [_, _, height, width] = input;
    matches!(
        pool.padding,
        burn::nn::PaddingConfig2d::Valid | burn::nn::PaddingConfig2d::Explicit(0, 0, 0, 0)
    ) && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && pool.stride.iter().all(|&s| s > 0)
        && input.iter().all(|&d| d > 0)
        && height >= pool.kernel_size[0]
        && width >= pool.kernel_size[1]
}

/// The padding to run `conv` with on this crate's kernel, or `None` when the kernel does not
/// take this convolution ([`conv2d_uses_kernel`]).
#[cfg(any(feature = "flex", feature = "cube"))]
fn kernel_padding(conv: &Conv2d, input: &Tensor<4>) -> Option<[usize; 2]> {
    let (device, dtype) = (input.device(), input.dtype());
    #[allow(unused_mut)]
    let mut backend_takes = false;
    #[cfg(feature = "flex")]
    {
        backend_takes |= flex::runs_on_flex(&device, dtype);
    }
    #[cfg(feature = "cube")]
    {
        backend_takes |= cube_conv::runs_on_cube(&device, dtype) && !composed::is_pointwise(conv);
    }
    let takes = backend_takes
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && input
            .dims()
            .iter()
            .chain(&conv.weight.dims())
            .all(|&d| d > 0);
    takes.then(|| composed::symmetric_padding(conv)).flatten()
}

/// Batch normalisation with batch statistics followed by a ReLU, as `BatchNorm::forward` then
/// `relu` compute it in training (biased variance, the same running-statistics update). On flex
/// in `f32` one fused kernel does it, with the statistics the convolution took where it did;
/// elsewhere reductions over `[N, C, H·W]`.
fn batch_norm_relu_train(
    norm: &BatchNorm,
    input: Tensor<4>,
    statistics: Option<Tensor<2>>,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if flex::runs_on_flex(&input.device(), input.dtype()) {
        let (output, mean, variance) = batch_norm_relu::batch_norm_relu(
            input,
            norm.gamma.val(),
            norm.beta.val(),
            statistics,
            norm.epsilon,
        );
        composed::update_running_statistics(norm, mean, variance);
        return output;
    }
    // Only the flex kernel's convolution takes statistics. The statistics, and so the
    // normalisation, are computed in f32 whatever float type the maps are in.
    let _ = statistics;
    let dtype = input.dtype();
    let (output, mean, variance) = composed::batch_norm(norm, cast_to(input, DType::F32));
    composed::update_running_statistics(norm, mean, variance);
    cast_to(relu(output), dtype)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
        tensor.into_data().try_to_vec::<f32>().expect("f32 values")
    }

    fn assert_close(what: &str, got: &[f32], expected: &[f32]) {
        assert_eq!(got.len(), expected.len(), "{what}");
        for (index, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{what}[{index}]: {g} against {e}"
            );
        }
    }

    /// The statistics the convolution takes from its maps are the batch mean and biased
    /// variance of its output, as defined and as the batch-norm kernel takes them itself; the
    /// batch norm gives the same output with either.
    #[test]
    fn the_convolution_brings_the_batch_statistics_of_its_output() {
        let device = crate::backend::device("flex").expect("flex");
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        // A mean far from zero against the spread, as after a convolution with a large bias.
        let input = Tensor::<4>::random([5, 3, 7, 6], Distribution::Normal(40.0, 3.0), &device);
        let (output, statistics) = conv2d_with_statistics(&conv, input);
        let statistics = statistics.expect("flex runs the crate's kernel");

        let [n, c, h, w] = output.dims();
        let per_channel = output.clone().swap_dims(0, 1).reshape([c, n * h * w]);
        let mean = per_channel.clone().mean_dim(1);
        let variance = (per_channel - mean.clone()).powf_scalar(2.0).mean_dim(1);
        let defined = [values(mean), values(variance)].concat();
        assert_close(
            "from the convolution",
            &values(statistics.clone()),
            &defined,
        );

        let own = <burn::backend::Dispatch as batch_norm_relu::BatchNormReluOps>::batch_statistics(
            output.clone().into_dispatch(),
        );
        assert_close(
            "from the batch-norm kernel",
            &values(Tensor::<2>::from_dispatch(own)),
            &defined,
        );

        let gamma = Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
        let beta = Tensor::<1>::random([c], Distribution::Uniform(-0.5, 0.5), &device);
        let with = |statistics| {
            let (normalised, _, _) = batch_norm_relu::batch_norm_relu(
                output.clone(),
                gamma.clone(),
                beta.clone(),
                statistics,
                1e-5,
            );
            values(normalised)
        };
        assert_close("normalised", &with(Some(statistics)), &with(None));
    }
}
