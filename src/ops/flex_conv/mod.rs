//! A 2-D convolution of our own on flex, with a ReLU folded into its output and its own
//! backward pass.
//!
//! burn-flex's convolution copies activations into transposed layouts for its gradients, runs
//! the weight gradient as one small product per input channel (a matrix-vector product for a
//! 1×1 layer) and the input gradient as a transposed convolution with a fresh buffer per image
//! and a scalar scatter. This one keeps everything in NCHW and runs one matrix product per
//! image and pass, with one level of threading (`tasks`):
//! - forward: `W · im2col(x_b)`, bias and ReLU applied to each image's output in cache, and
//!   for a batch norm after it the moments of each map taken there too (`forward`);
//! - backward: `dW += dY_b · im2col(x_b)ᵀ`, bias gradient as row sums, and
//!   `dx_b = col2im(Wᵀ · dY_b)` only when the input needs a gradient (`backward`).
//!
//! A layer with fewer output channels than input channels (the last block's ten classes) runs
//! through its mirror image, the stride-1 convolution from its output space back to its input
//! space with the weights turned by 180° (`ConvGeometry::mirrored`): forward
//! `col2im(W'ᵀ · x_b)`, input gradient `W' · im2col'(dY_b)`, weight gradient from
//! `x_b · im2col'(dY_b)ᵀ`. The arithmetic is the same; the patch matrix built and read is the
//! narrow side's, `C_out·kh·kw` rows instead of `C·kh·kw`.
//!
//! Where maps are small, several images' patch matrices stand side by side in one product
//! (`group`). A single image of a 1×1 layer is its own patch matrix. This is flex's
//! implementation of the convolution's backend extension (`conv_extension`), whose autodiff
//! node it shares with the cube kernel. Tested equal to burn's `conv2d` in value and gradients
//! (tests/conv2d.rs).
//!
//! The kernel on plain row-major slices ([`conv2d_forward`], [`conv2d_backward`]) is public
//! for benchmarks (`cargo run --release --example perf -- --layers`) and for code outside burn;
//! models use [`crate::ops::conv2d`].

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
    ) -> FlexTensor {
        // A step allocates its activations anew: keep freed memory for the next one.
        crate::ops::memory::retain_freed_memory_once();
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
        crate::ops::memory::retain_freed_memory_once();
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

    fn conv2d_relu_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        input_grad: bool,
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
