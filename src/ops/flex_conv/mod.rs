//! A 2-D convolution of our own on flex, with a ReLU folded into its output and its own
//! backward pass.
//!
//! Design notes: `docs/design.md`, "ops::flex_conv".

mod backward;
mod forward;
mod group;
mod patches;
mod tasks;

pub use crate::ops::geometry::ConvGeometry;
pub use backward::{ConvGrads, conv2d_backward};
pub use forward::conv2d_forward;

use burn::backend::Flex;
use burn_flex::FlexTensor;

use super::conv_extension::{self, Conv2dGradients, Conv2dOps};
use super::conv_settings::ConvSettings;
use super::flex::{dims4, f32_values, flex_tensor};

fn geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: [usize; 2],
    padding: [usize; 2],
) -> ConvGeometry {
    conv_extension::geometry(x.layout().shape(), weight.layout().shape(), stride, padding)
}

impl Conv2dOps for Flex {
    fn conv2d_relu(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
        // Cube backends' choice of kernel and budget: flex has one kernel.
        _: ConvSettings,
    ) -> FlexTensor {
        let g = geometry(&x, &weight, stride, padding);
        let output = forward::conv2d_forward(
            &f32_values(&x),
            &f32_values(&weight),
            &f32_values(&bias),
            &g,
            relu,
        );
        flex_tensor(output, g.output_shape())
    }

    fn conv2d_with_statistics(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FlexTensor, FlexTensor) {
        let g = geometry(&x, &weight, stride, padding);
        let (output, moments) = forward::conv2d_forward_with_moments(
            &f32_values(&x),
            &f32_values(&weight),
            &f32_values(&bias),
            &g,
        );
        let (mean, variance): (Vec<f32>, Vec<f32>) =
            moments.iter().map(|m| m.mean_variance()).unzip();
        (
            flex_tensor(output, g.output_shape()),
            flex_tensor([mean, variance].concat(), [2, g.out_channels]),
        )
    }

    fn conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        input_grad: bool,
        _: ConvSettings,
    ) -> Conv2dGradients<Self> {
        let g = geometry(&x, &weight, stride, padding);
        let grads = backward::conv2d_backward(
            &f32_values(&x),
            &f32_values(&weight),
            &f32_values(&output_grad),
            &g,
            input_grad,
        );
        let weight_shape = dims4(&weight, "conv2d");
        Conv2dGradients::from_parts(
            grads
                .input
                .map(|dx| flex_tensor(dx, [g.batch, g.in_channels, g.input[0], g.input[1]])),
            flex_tensor(grads.weight, weight_shape),
            flex_tensor(grads.bias, [g.out_channels]),
        )
    }
}
