//! Formulations built from burn's tensor operations, for every backend: a 1×1 convolution as a
//! matrix product, batch norm folded into the convolution before it, and training-mode batch
//! norm from reductions.
//!
//! Design notes: `docs/design.md`, "ops::composed".

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

/// Whether `conv` is a plain 1×1 convolution: no stride, padding, dilation or groups.
pub(crate) fn is_pointwise(conv: &Conv2d) -> bool {
    conv.kernel_size == [1, 1]
        && conv.stride == [1, 1]
        && symmetric_padding(conv) == Some([0, 0])
        && conv.dilation == [1, 1]
        && conv.groups == 1
}

/// `[top and bottom, left and right]` when `conv` pads each side of an axis alike and
/// independently of the input size; `None` for `Same` or uneven padding.
pub(crate) fn symmetric_padding(conv: &Conv2d) -> Option<[usize; 2]> {
    match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    }
}

/// A 1×1 convolution as one matrix product per image: `[C_out, C] × [C, H·W]`, with the
/// convolution's `weight` (`[C_out, C, 1, 1]`) and `bias` given in the input's float type.
pub(crate) fn pointwise_conv(
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    input: Tensor<4>,
) -> Tensor<4> {
    let [batch, channels, height, width] = input.dims();
    let [out_channels, ..] = weight.dims();
    let weight = weight.reshape([1, out_channels, channels]);
    let output = weight.matmul(input.reshape([batch, channels, height * width]));
    let output = match bias {
        Some(bias) => output + bias.reshape([1, out_channels, 1]),
        None => output,
    };
    output.reshape([batch, out_channels, height, width])
}

/// burn's convolution of `conv`'s geometry, with its `weight` and `bias` given in the input's
/// float type. A `Same` padding, which only burn's module resolves, runs in the weights' own
/// float type instead, the input cast to it and the output back.
pub(crate) fn burn_conv(
    conv: &Conv2d,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    input: Tensor<4>,
) -> Tensor<4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([(0, 0), (0, 0)]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([(top, bottom), (left, right)]),
        _ => None,
    };
    let dtype = input.dtype();
    match padding {
        Some(padding) => burn::tensor::module::conv2d(
            input,
            weight,
            bias,
            ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups),
        ),
        None if dtype == conv.weight.dtype() => conv.forward(input),
        None => conv.forward(input.cast(conv.weight.dtype())).cast(dtype),
    }
}

/// The convolution that computes `conv` followed by `norm` with its running statistics
/// (inference): the norm is an affine map per output channel, so it folds into the weights and
/// bias (`w·s`, `(b − mean)·s + beta` with `s = gamma / sqrt(var + ε)`). The activation is then
/// read once, by the convolution, instead of again by each step of the norm.
pub(crate) fn fold_norm(conv: &Conv2d, norm: &BatchNorm) -> Conv2d {
    let device = conv.weight.device();
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
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        ..conv.clone()
    }
}

/// Training-mode batch norm from reductions over `[N, C, H·W]`: the output and the per-channel
/// batch mean and biased variance.
pub(crate) fn batch_norm(norm: &BatchNorm, input: Tensor<4>) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
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
pub(crate) fn update_running_statistics(norm: &BatchNorm, mean: Tensor<1>, variance: Tensor<1>) {
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
