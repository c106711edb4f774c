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
//! (`group`). A single image of a 1×1 layer is its own patch matrix. The operation is a burn backend
//! extension implemented for flex and for autodiff over flex; other backends keep burn's
//! convolution. Tested equal to burn's `conv2d` in value and gradients (tests/conv2d.rs).
//!
//! The kernel on plain row-major slices ([`conv2d_forward`], [`conv2d_backward`]) is public
//! for benchmarks (`cargo run --release --example perf -- --layers`) and for code outside burn;
//! models use [`crate::ops::conv2d`].

mod autodiff;
mod backward;
mod forward;
mod geometry;
mod group;
mod patches;
mod tasks;

pub use backward::{ConvGrads, conv2d_backward};
pub use forward::conv2d_forward;
pub use geometry::ConvGeometry;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::flex::{dims4, f32_values, flex_tensor};

/// The convolution as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait Conv2dOps: Backend {
    /// `x` (`[N, C, H, W]`) convolved with `weight` (`[C_out, C, kh, kw]`), plus `bias`
    /// (`[C_out]`), with symmetric zero `padding`; then a ReLU when `relu` is set.
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
    ) -> FloatTensor<Self>;

    /// [`Conv2dOps::conv2d_relu`] without a ReLU, and the batch mean and biased variance of
    /// each output channel as a `[2, C_out]` tensor (not tracked by autodiff).
    fn conv2d_with_statistics(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `x` (when `input_grad` is set), `weight` and `bias` given the gradient of
    /// the convolution's output (before any ReLU).
    fn conv2d_relu_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        input_grad: bool,
    ) -> (
        Option<FloatTensor<Self>>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

/// The convolution on flex tensors (with or without autodiff) in `f32`, with its ReLU when
/// `relu` is set. `bias` of `None` is a zero bias.
pub(crate) fn conv2d_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: [usize; 2],
    relu: bool,
) -> Tensor<4> {
    let bias = bias_or_zeros(bias, &weight);
    Tensor::from_dispatch(<Dispatch as Conv2dOps>::conv2d_relu(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
        padding,
        relu,
    ))
}

/// The convolution on flex tensors (with or without autodiff) in `f32`, without a ReLU, and
/// the batch mean and biased variance of each output channel as a `[2, C_out]` tensor that
/// autodiff does not track: what a training-mode batch norm after it needs.
pub(crate) fn conv2d_with_statistics(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> (Tensor<4>, Tensor<2>) {
    let bias = bias_or_zeros(bias, &weight);
    let (output, statistics) = <Dispatch as Conv2dOps>::conv2d_with_statistics(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
        padding,
    );
    (
        Tensor::from_dispatch(output),
        Tensor::from_dispatch(statistics),
    )
}

/// `bias`, or for a convolution without one a constant zero bias: it takes no gradient, so its
/// node is never tracked.
fn bias_or_zeros(bias: Option<Tensor<1>>, weight: &Tensor<4>) -> Tensor<1> {
    bias.unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &weight.device()))
}

/// Whether [`conv2d_relu`] takes these shapes: no empty dimension (burn's own convolution
/// handles those degenerate cases).
pub(crate) fn supports_shapes(input: [usize; 4], weight: [usize; 4]) -> bool {
    input.iter().chain(&weight).all(|&d| d > 0)
}

fn geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: [usize; 2],
    padding: [usize; 2],
) -> ConvGeometry {
    ConvGeometry::new(dims4(x, "conv2d"), dims4(weight, "conv2d"), stride, padding)
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

    fn conv2d_relu_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        input_grad: bool,
    ) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
        let g = geometry(&x, &weight, stride, padding);
        let grads = backward::conv2d_backward(
            &f32_values(&x),
            &f32_values(&weight),
            &f32_values(&output_grad),
            &g,
            input_grad,
        );
        let weight_shape = dims4(&weight, "conv2d");
        (
            grads
                .input
                .map(|dx| flex_tensor(dx, [g.batch, g.in_channels, g.input[0], g.input[1]])),
            flex_tensor(grads.weight, weight_shape),
            flex_tensor(grads.bias, [g.out_channels]),
        )
    }
}
