//! Max pooling on flex (no padding, no dilation, floor rounding: the pools between NiN blocks),
//! with a backward pass that finds each window's maximum again instead of storing its index.
//!
//! Design notes: `docs/design.md`, "ops::max_pool".

mod autodiff;
mod kernel;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::flex::{dims4, f32_values, flex_tensor};
pub(crate) use kernel::PoolGeometry;

/// Max pooling as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait MaxPoolOps: Backend {
    /// `[N, C, H, W]` → `[N, C, H', W']`, the maximum of each `kernel` window taken every
    /// `stride` values, without padding.
    fn max_pool2d_plain(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self>;

    /// The gradient of `x` given the forward's input, output and the output's gradient.
    fn max_pool2d_plain_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self>;
}

/// The pool on flex tensors in `f32` (see `ops::flex::runs_on_flex`); `input` must fit at
/// least one window.
pub(crate) fn max_pool2d(input: Tensor<4>, kernel: [usize; 2], stride: [usize; 2]) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as MaxPoolOps>::max_pool2d_plain(
        input.into_dispatch(),
        kernel,
        stride,
    ))
}

impl MaxPoolOps for Flex {
    fn max_pool2d_plain(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2]) -> FlexTensor {
        let g = PoolGeometry::new(dims4(&x, "max_pool2d"), kernel, stride);
        flex_tensor(kernel::forward(&f32_values(&x), &g), g.output_shape())
    }

    fn max_pool2d_plain_backward(
        x: FlexTensor,
        output: FlexTensor,
        output_grad: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FlexTensor {
        let g = PoolGeometry::new(dims4(&x, "max_pool2d"), kernel, stride);
        let dx = kernel::backward(
            &f32_values(&x),
            &f32_values(&output),
            &f32_values(&output_grad),
            &g,
        );
        flex_tensor(dx, g.input_shape())
    }
}
