//! The network as burn's own modules compute it: `Conv2d`, `BatchNorm`, `relu`, `MaxPool2d`,
//! `Dropout` and `AdaptiveAvgPool2d` in the order of `Nin::stages`. The crate's kernels
//! (`forward`) are tested against it.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use nin::{ConvNormRelu, Nin, NinBlock, ShapeError, Stage};

/// Convolution, optional batch norm, ReLU.
pub fn layer(layer: &ConvNormRelu, input: Tensor<4>) -> Tensor<4> {
    let x = layer.conv.forward(input);
    let x = match &layer.norm {
        Some(norm) => norm.forward(x),
        None => x,
    };
    relu(x)
}

/// A block's three layers in a row.
pub fn block(block: &NinBlock, input: Tensor<4>) -> Tensor<4> {
    block
        .layers()
        .into_iter()
        .fold(input, |x, (_, l)| layer(l, x))
}

/// The whole network's logits, after the same input check as `Nin::try_forward`.
pub fn network(model: &Nin, images: Tensor<4>) -> Result<Tensor<2>, ShapeError> {
    model.check_input(images.dims())?;
    let maps = model
        .stages()
        .into_iter()
        .fold(images, |x, stage| match stage {
            Stage::Block(index) => block(&model.blocks[index], x),
            Stage::MaxPool(_) => model.pool.forward(x),
            Stage::Dropout => model.dropout.forward(x),
            Stage::GlobalAvgPool => model.global_pool.forward(x),
        });
    let [batch, classes, _, _] = maps.dims();
    Ok(maps.reshape([batch, classes]))
}
