//! Formulations of a 1×1 convolution and of batch normalisation that compute what burn's
//! modules compute with less traffic over memory.
//!
//! - Inference: a convolution and the batch norm after it run as one convolution with folded
//!   weights.
//! - Training (autodiff device): burn computes a convolution's weight gradient as a convolution
//!   over batch-transposed activations, and batch norm's statistics and gradients over a
//!   channel-transposed copy of its input. Both copy whole activations (a transposing copy was a
//!   quarter of a compact training step on flex). A 1×1 convolution written as a matrix product
//!   over a `[N, C, H·W]` view gives the same values with gradients that need no such copy.
//!   Batch norm and its ReLU run as one flex kernel with a hand-written backward pass
//!   (`batch_norm_relu`), or from reductions over `[N, C, H·W]` on other backends. Inference
//!   keeps burn's 1×1 convolution, which is faster there without a backward pass.
//!
//! All are tested equal to the plain path: outputs, gradients and running statistics
//! (tests/fast_path.rs).

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// Whether `conv` is a plain 1×1 convolution: no stride, padding, dilation or groups.
pub(crate) fn is_pointwise(conv: &Conv2d) -> bool {
    let no_padding = matches!(
        conv.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    conv.kernel_size == [1, 1]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && no_padding
}

/// A 1×1 convolution as one matrix product per image: `[C_out, C] × [C, H·W]`.
/// `conv` must satisfy [`is_pointwise`].
pub(crate) fn pointwise_conv(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = input.dims();
    let [out_channels, ..] = conv.weight.dims();
    let weight = conv.weight.val().reshape([1, out_channels, channels]);
    let output = weight.matmul(input.reshape([batch, channels, height * width]));
    let output = match &conv.bias {
        Some(bias) => output + bias.val().reshape([1, out_channels, 1]),
        None => output,
    };
    output.reshape([batch, out_channels, height, width])
}

/// A convolution followed by batch norm with running statistics (inference), as one
/// convolution: the norm is an affine map per output channel, so it folds into the weights and
/// bias (`w·s`, `(b − mean)·s + beta` with `s = gamma / sqrt(var + ε)`). The activation is then
/// read once, by the convolution, instead of again by each step of the norm.
pub(crate) fn conv_with_folded_norm(
    conv: &Conv2d,
    norm: &BatchNorm,
    input: Tensor<4>,
) -> Tensor<4> {
    let device = input.device();
    let [out_channels, ..] = conv.weight.dims();
    let mean = norm.running_mean.value().to_device(&device);
    let variance = norm.running_var.value().to_device(&device);
    let scale = norm.gamma.val() * (variance + norm.epsilon).sqrt().recip();
    let weight = conv.weight.val() * scale.clone().reshape([out_channels, 1, 1, 1]);
    let shifted_mean = match &conv.bias {
        Some(bias) => mean - bias.val(),
        None => mean,
    };
    let bias = norm.beta.val() - shifted_mean * scale;
    let folded = Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        ..conv.clone()
    };
    folded.forward(input)
}

/// Batch normalisation with batch statistics followed by a ReLU, as `BatchNorm::forward` then
/// `relu` compute it in training (biased variance, the same running-statistics update). On flex
/// in `f32` one fused kernel does it (`batch_norm_relu`); elsewhere reductions over `[N, C, H·W]`.
pub(crate) fn batch_norm_relu_train(norm: &BatchNorm, input: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if super::batch_norm_relu::supports(&input.device(), input.dtype()) {
        let (output, mean, variance) = super::batch_norm_relu::batch_norm_relu(
            input,
            norm.gamma.val(),
            norm.beta.val(),
            norm.epsilon,
        );
        update_running_statistics(norm, mean, variance);
        return output;
    }
    let (output, mean, variance) = batch_norm_composed(norm, input);
    update_running_statistics(norm, mean, variance);
    relu(output)
}

/// Training-mode batch norm from reductions over `[N, C, H·W]`: the output and the per-channel
/// batch mean and biased variance.
pub(crate) fn batch_norm_composed(
    norm: &BatchNorm,
    input: Tensor<4>,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let [batch, channels, height, width] = input.dims();
    let per_channel = |t: Tensor<1>| t.reshape([1, channels, 1]);
    let flat = input.reshape([batch, channels, height * width]);
    let mean = flat.clone().mean_dim(2).mean_dim(0);
    let centered = flat - mean.clone();
    let variance = centered.clone().square().mean_dim(2).mean_dim(0);
    let scale = (variance.clone() + norm.epsilon).sqrt().recip() * per_channel(norm.gamma.val());
    let output = centered * scale + per_channel(norm.beta.val());
    (
        output.reshape([batch, channels, height, width]),
        mean.reshape([channels]),
        variance.reshape([channels]),
    )
}

/// Moves the running mean and variance towards the batch's, by the norm's momentum.
fn update_running_statistics(norm: &BatchNorm, mean: Tensor<1>, variance: Tensor<1>) {
    let momentum = norm.momentum;
    let blend = |running: Tensor<1>, batch_value: Tensor<1>| {
        running
            .to_device(&batch_value.device())
            .mul_scalar(1.0 - momentum)
            .add(batch_value.detach().mul_scalar(momentum))
            .detach()
    };
    norm.running_mean
        .update(blend(norm.running_mean.value_sync(), mean));
    norm.running_var
        .update(blend(norm.running_var.value_sync(), variance));
}
