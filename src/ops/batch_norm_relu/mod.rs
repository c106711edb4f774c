//! Batch normalisation with batch statistics followed by a ReLU, as one flex kernel with a
//! hand-written backward pass.
//!
//! Design notes: `docs/design.md`, "ops::batch_norm_relu".

mod autodiff;
mod backward;
mod forward;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{Shape, Tensor};
use burn_flex::FlexTensor;

use super::flex::dims4;

/// Three tensors: the activation and two per-channel vectors (statistics or gradients).
type Normalised<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

/// The fused batch norm + ReLU as a backend operation.
#[backend_extension(Flex, Autodiff)]
pub(crate) trait BatchNormReluOps: Backend {
    /// The per-channel batch mean and biased variance of `x` (`[N, C, H, W]`) as a `[2, C]`
    /// tensor, not tracked by autodiff.
    fn batch_statistics(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `relu(gamma · (x − mean) / sqrt(var + epsilon) + beta)` over `[N, C, H, W]`, with the
    /// per-channel batch mean and biased variance of `x` in `statistics` (`[2, C]`, from
    /// [`BatchNormReluOps::batch_statistics`] or from the convolution that wrote `x`); returns
    /// `(output, mean, variance)`.
    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `x`, `gamma` and `beta` given the forward's input, parameters and
    /// statistics and the output's gradient.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The fused operation on `[N, C, H, W]` flex tensors in `f32` (see `ops::flex::runs_on_flex`).
/// Returns the activation and the batch mean and biased variance (not tracked by autodiff),
/// which `statistics` (`[2, C]`, from `ops::flex_conv::conv2d_with_statistics`) may bring
/// along already.
pub(crate) fn batch_norm_relu(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    statistics: Option<Tensor<2>>,
    epsilon: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let statistics = match statistics {
        Some(statistics) => statistics.into_dispatch(),
        None => <Dispatch as BatchNormReluOps>::batch_statistics(x.clone().into_dispatch()),
    };
    let (output, mean, variance) = <Dispatch as BatchNormReluOps>::batch_norm_relu(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        statistics,
        epsilon,
    );
    (
        Tensor::from_dispatch(output),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(variance),
    )
}

impl BatchNormReluOps for Flex {
    fn batch_statistics(x: FlexTensor) -> FlexTensor {
        forward::batch_statistics(x)
    }

    fn batch_norm_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        statistics: FlexTensor,
        epsilon: f64,
    ) -> Normalised<Self> {
        forward::batch_norm_relu(x, gamma, beta, statistics, epsilon)
    }

    fn batch_norm_relu_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        output_grad: FlexTensor,
        epsilon: f64,
    ) -> Normalised<Self> {
        backward::batch_norm_relu_backward(x, gamma, beta, mean, variance, output_grad, epsilon)
    }
}

/// Per channel `[a, b]` with `a = gamma / sqrt(variance + epsilon)` and `b = beta − a·mean`: the
/// output is `relu(a·x + b)`. The forward pass and the backward pass (which recomputes the
/// ReLU's mask as `a·x + b > 0`) both take it from here, so that both round it the same way.
fn affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    variance: &[f32],
    epsilon: f64,
) -> Vec<[f32; 2]> {
    (0..gamma.len())
        .map(|c| {
            let inv_std = (1.0 / (variance[c] as f64 + epsilon).sqrt()) as f32;
            let a = gamma[c] * inv_std;
            [a, beta[c] - a * mean[c]]
        })
        .collect()
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
        let [batch, channels, height, width] = dims4(tensor, "batch_norm_relu");
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
