//! The convolution lowered to matrix products on a cube backend, in runs of images whose patch
//! matrices fit a budget of bytes (`ConvSettings::column_budget_bytes`):
//! - forward: `Y = W · im2col(X)`, then bias and ReLU as the product's columns are written back
//!   into maps;
//! - weight gradient: `dW = Σ dY · im2col(X)ᵀ` over the runs (the transpose is a view: the
//!   matrix product reads either layout);
//! - input gradient: `dX = col2im(Wᵀ · dY)`, run by run.
//!
//! Design notes: `docs/design.md`, "ops::cube_conv::lowered".

use burn::backend::ops::FloatTensorOps;
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;

use super::kernels::{channel_rows, col2im, empty, im2col, write_maps};
use crate::ops::geometry::ConvGeometry;

type B = CubeBackend;

/// The runs `(first image, images)` of a batch, each with a patch matrix within `budget` bytes
/// (a run has at least one image whatever the budget).
fn runs(
    g: &ConvGeometry,
    element_bytes: usize,
    budget: usize,
) -> impl Iterator<Item = (usize, usize)> {
    let per_image = g.patch_len() * g.output_plane() * element_bytes;
    let images = (budget / per_image.max(1)).clamp(1, g.batch);
    (0..g.batch)
        .step_by(images)
        .map(move |first| (first, images.min(g.batch - first)))
}

/// `weight` as the `[C_out, C·kh·kw]` matrix of the products.
fn weight_matrix(weight: CubeTensor, g: &ConvGeometry) -> CubeTensor {
    B::float_reshape(weight, [g.out_channels, g.patch_len()].into())
}

/// `relu(conv(x, weight) + bias)` (without the ReLU unless `relu`), `[N, C_out, H', W']`.
pub(super) fn forward(
    x: &CubeTensor,
    weight: &CubeTensor,
    bias: &CubeTensor,
    g: &ConvGeometry,
    relu: bool,
    budget: usize,
) -> CubeTensor {
    let weight = weight_matrix(weight.clone(), g);
    let output = empty(x, g.output_shape());
    for run in runs(g, x.dtype.size(), budget) {
        let columns = im2col(x, g, run.0, run.1);
        let product = B::float_matmul(weight.clone(), columns);
        write_maps(&product, bias, &output, g, run, relu);
    }
    output
}

/// The weight gradient `[C_out, C, kh, kw]` given the output gradient `dy`.
pub(super) fn weight_grad(
    x: &CubeTensor,
    dy: &CubeTensor,
    g: &ConvGeometry,
    budget: usize,
) -> CubeTensor {
    let mut sum: Option<CubeTensor> = None;
    for (first, images) in runs(g, x.dtype.size(), budget) {
        let columns = B::float_swap_dims(im2col(x, g, first, images), 0, 1);
        let part = B::float_matmul(channel_rows(dy, g, first, images), columns);
        sum = Some(match sum {
            Some(sum) => B::float_add(sum, part),
            None => part,
        });
    }
    let sum = sum.expect("a batch has at least one run");
    B::float_reshape(
        sum,
        [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]].into(),
    )
}

/// The input gradient `[N, C, H, W]` given the output gradient `dy`.
pub(super) fn input_grad(
    weight: &CubeTensor,
    dy: &CubeTensor,
    g: &ConvGeometry,
    budget: usize,
) -> CubeTensor {
    let weight_t = B::float_swap_dims(weight_matrix(weight.clone(), g), 0, 1);
    let input_grad = empty(dy, [g.batch, g.in_channels, g.input[0], g.input[1]]);
    for (first, images) in runs(g, dy.dtype.size(), budget) {
        let columns = B::float_matmul(weight_t.clone(), channel_rows(dy, g, first, images));
        col2im(&columns, &input_grad, g, first, images);
    }
    input_grad
}
