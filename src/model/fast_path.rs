//! Training-time formulations of a 1×1 convolution and of batch normalisation whose backward
//! passes avoid burn's generic gradients.
//!
//! burn computes a convolution's weight gradient as a convolution over batch-transposed
//! activations, and batch norm's statistics and gradients over a channel-transposed copy of
//! its input. Both copy whole activations (a transposing copy was a quarter of a compact
//! training step on flex, and batch norm a third). Written here with matrix products and
//! reductions over a `[N, C, H·W]` view, the same values come out and autodiff derives
//! gradients that need no such copy. `ConvLayer` takes these paths only on an autodiff device;
//! inference keeps burn's convolution, which is faster without a backward pass.
//!
//! Both are tested equal to the plain path, outputs and gradients (tests/fast_path.rs).

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::Tensor;

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

/// Batch normalisation with batch statistics, as `BatchNorm::forward` computes it in training
/// (biased variance, the same running-statistics update), from reductions over `[N, C, H·W]`.
pub(crate) fn batch_norm_train(norm: &BatchNorm, input: Tensor<4>) -> Tensor<4> {
    let [batch, channels, height, width] = input.dims();
    let per_channel = |t: Tensor<1>| t.reshape([1, channels, 1]);
    let flat = input.reshape([batch, channels, height * width]);
    let mean = flat.clone().mean_dim(2).mean_dim(0);
    let centered = flat - mean.clone();
    let variance = centered.clone().square().mean_dim(2).mean_dim(0);
    let scale = (variance.clone() + norm.epsilon).sqrt().recip() * per_channel(norm.gamma.val());
    let output = centered * scale + per_channel(norm.beta.val());

    let device = output.device();
    let momentum = norm.momentum;
    let blend = |running: Tensor<1>, batch_value: Tensor<3>| {
        running
            .to_device(&device)
            .mul_scalar(1.0 - momentum)
            .add(
                batch_value
                    .detach()
                    .reshape([channels])
                    .mul_scalar(momentum),
            )
            .detach()
    };
    norm.running_mean
        .update(blend(norm.running_mean.value_sync(), mean));
    norm.running_var
        .update(blend(norm.running_var.value_sync(), variance));
    output.reshape([batch, channels, height, width])
}
