//! The data-movement kernels around the matrix products: the patch matrix of a run of images
//! (`im2col`), its adjoint (`col2im`), the product's columns back into NCHW maps with bias and
//! ReLU, and an output gradient into the product's layout.
//!
//! Design notes: `docs/design.md`, "ops::cube_conv::kernels".

#![allow(unsafe_code)]

use burn::backend::cubecl::dtype_to_storage_type;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeCount, CubeDim, calculate_cube_count_elemwise};

use crate::ops::geometry::ConvGeometry;

/// The window of a convolution, as the patch-matrix kernels index it; the image sizes come
/// from the tensors themselves.
#[derive(CubeType, CubeLaunch, Clone, Copy)]
pub(super) struct Window {
    kernel_h: usize,
    kernel_w: usize,
    stride_h: usize,
    stride_w: usize,
    pad_h: usize,
    pad_w: usize,
    out_h: usize,
    out_w: usize,
}

fn window(g: &ConvGeometry) -> RuntimeArg<Window> {
    WindowLaunch::new(
        g.kernel[0],
        g.kernel[1],
        g.stride[0],
        g.stride[1],
        g.padding[0],
        g.padding[1],
        g.output[0],
        g.output[1],
    )
}

/// Images `first..first + images` of `input` (`[N, C, H, W]`, any strides) as their patch
/// matrix `[C·kh·kw, images·H'·W']`, zero where a window reaches into the padding.
#[cube(launch_unchecked, address_type = "dynamic")]
fn im2col_kernel<F: Float>(
    input: &Tensor<F>,
    columns: &mut Tensor<F>,
    first: usize,
    images: usize,
    window: Window,
    #[define(F)] _dtype: ElemType,
) {
    let w = window;
    let (in_h, in_w) = (input.shape(2), input.shape(3));
    let plane = w.out_h * w.out_w;
    let width = images * plane;
    let taps = w.kernel_h * w.kernel_w;
    if ABSOLUTE_POS >= input.shape(1) * taps * width {
        terminate!();
    }
    let row = ABSOLUTE_POS / width;
    let column = ABSOLUTE_POS % width;
    let image = column / plane;
    let at = column % plane;
    let c = row / taps;
    let tap = row % taps;
    // Coordinates in the padded image.
    let y = (at / w.out_w) * w.stride_h + tap / w.kernel_w;
    let x = (at % w.out_w) * w.stride_w + tap % w.kernel_w;
    let mut value = F::new(0.0);
    if y >= w.pad_h && x >= w.pad_w && y < in_h + w.pad_h && x < in_w + w.pad_w {
        value = input[(first + image) * input.stride(0)
            + c * input.stride(1)
            + (y - w.pad_h) * input.stride(2)
            + (x - w.pad_w) * input.stride(3)];
    }
    columns[ABSOLUTE_POS] = value;
}

/// The gradient of images `first..first + images` from the gradient of their patch matrix
/// (`[C·kh·kw, images·H'·W']`, any strides): each input value sums the patch entries it was
/// copied to. Written into `input_grad` (`[N, C, H, W]`, contiguous) at image `first`.
#[cube(launch_unchecked, address_type = "dynamic")]
fn col2im_kernel<F: Float>(
    columns: &Tensor<F>,
    input_grad: &mut Tensor<F>,
    first: usize,
    images: usize,
    window: Window,
    #[define(F)] _dtype: ElemType,
) {
    let w = window;
    let in_w = input_grad.shape(3);
    let in_plane = input_grad.shape(2) * in_w;
    let image_len = input_grad.shape(1) * in_plane;
    if ABSOLUTE_POS >= images * image_len {
        terminate!();
    }
    let image = ABSOLUTE_POS / image_len;
    let c = (ABSOLUTE_POS % image_len) / in_plane;
    // Coordinates in the padded image.
    let y = (ABSOLUTE_POS % in_plane) / in_w + w.pad_h;
    let x = ABSOLUTE_POS % in_w + w.pad_w;
    let plane = w.out_h * w.out_w;
    let column_base = image * plane;
    let row_base = c * w.kernel_h * w.kernel_w;
    let mut sum = F::new(0.0);
    for i in 0..w.kernel_h {
        // The output row whose window puts tap row `i` on `y`, if there is one.
        let oh = (y - i) / w.stride_h;
        if y >= i && oh * w.stride_h == y - i && oh < w.out_h {
            for j in 0..w.kernel_w {
                let ow = (x - j) / w.stride_w;
                if x >= j && ow * w.stride_w == x - j && ow < w.out_w {
                    sum += columns[(row_base + i * w.kernel_w + j) * columns.stride(0)
                        + (column_base + oh * w.out_w + ow) * columns.stride(1)];
                }
            }
        }
    }
    input_grad[first * image_len + ABSOLUTE_POS] = sum;
}

/// A product `[C_out, images·H'·W']` (any strides) back into maps: `output[first + g, o, p] =
/// product[o, g·H'·W' + p] + bias[o]`, then a ReLU when `relu` is set. `output` is
/// `[N, C_out, H', W']`, contiguous.
#[cube(launch_unchecked, address_type = "dynamic")]
fn maps_kernel<F: Float>(
    product: &Tensor<F>,
    bias: &Tensor<F>,
    output: &mut Tensor<F>,
    first: usize,
    images: usize,
    plane: usize,
    #[comptime] relu: bool,
    #[define(F)] _dtype: ElemType,
) {
    let channels = product.shape(0);
    let image_len = channels * plane;
    if ABSOLUTE_POS >= images * image_len {
        terminate!();
    }
    let image = ABSOLUTE_POS / image_len;
    let o = (ABSOLUTE_POS % image_len) / plane;
    let p = ABSOLUTE_POS % plane;
    let mut value = product[o * product.stride(0) + (image * plane + p) * product.stride(1)]
        + bias[o * bias.stride(0)];
    if relu {
        value = max(value, F::new(0.0));
    }
    output[first * image_len + ABSOLUTE_POS] = value;
}

/// Images `first..first + images` of an output gradient (`[N, C_out, H', W']`, any strides) in
/// the product's layout, `[C_out, images·H'·W']`.
#[cube(launch_unchecked, address_type = "dynamic")]
fn channel_rows_kernel<F: Float>(
    grad: &Tensor<F>,
    rows: &mut Tensor<F>,
    first: usize,
    images: usize,
    #[define(F)] _dtype: ElemType,
) {
    let out_w = grad.shape(3);
    let plane = grad.shape(2) * out_w;
    let width = images * plane;
    if ABSOLUTE_POS >= grad.shape(1) * width {
        terminate!();
    }
    let o = ABSOLUTE_POS / width;
    let image = (ABSOLUTE_POS % width) / plane;
    let p = ABSOLUTE_POS % plane;
    rows[ABSOLUTE_POS] = grad[(first + image) * grad.stride(0)
        + o * grad.stride(1)
        + (p / out_w) * grad.stride(2)
        + (p % out_w) * grad.stride(3)];
}

/// A contiguous tensor of `shape` in `like`'s float type on its device, its values not written.
pub(super) fn empty<const D: usize>(like: &CubeTensor, shape: [usize; D]) -> CubeTensor {
    let shape = burn::tensor::Shape::new(shape);
    let handle = like.client.empty(shape.num_elements() * like.dtype.size());
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        shape,
        handle,
        like.dtype,
    )
}

/// One thread per element of `output`.
fn elementwise(output: &CubeTensor) -> (CubeCount, CubeDim) {
    let count = output.meta.num_elements();
    let cube_dim = CubeDim::new(&output.client, count);
    (
        calculate_cube_count_elemwise(&output.client, count, cube_dim),
        cube_dim,
    )
}

/// The widest index any of `tensors` needs.
fn address_type(tensors: &[&CubeTensor]) -> AddressType {
    tensors
        .iter()
        .map(|tensor| tensor.required_address_type())
        .max()
        .unwrap_or_default()
}

/// The patch matrix of images `first..first + images` of `input`: `[C·kh·kw, images·H'·W']`.
pub(super) fn im2col(
    input: &CubeTensor,
    g: &ConvGeometry,
    first: usize,
    images: usize,
) -> CubeTensor {
    let columns = empty(input, [g.patch_len(), images * g.output_plane()]);
    let (cube_count, cube_dim) = elementwise(&columns);
    // SAFETY: see the module's comment; the kernel guards the positions past `columns`' end.
    unsafe {
        im2col_kernel::launch_unchecked(
            &input.client,
            cube_count,
            cube_dim,
            address_type(&[input, &columns]),
            input.clone().into_tensor_arg(),
            columns.clone().into_tensor_arg(),
            first,
            images,
            window(g),
            dtype_to_storage_type(input.dtype),
        );
    }
    columns
}

/// Writes the gradient of images `first..first + images` into `input_grad` (`[N, C, H, W]`,
/// contiguous) from the gradient of their patch matrix.
pub(super) fn col2im(
    columns: &CubeTensor,
    input_grad: &CubeTensor,
    g: &ConvGeometry,
    first: usize,
    images: usize,
) {
    let count = images * g.input_image();
    let cube_dim = CubeDim::new(&columns.client, count);
    let cube_count = calculate_cube_count_elemwise(&columns.client, count, cube_dim);
    // SAFETY: see the module's comment; the kernel guards the positions past the `images`
    // images it writes, and `first + images` is at most the batch `input_grad` holds.
    unsafe {
        col2im_kernel::launch_unchecked(
            &columns.client,
            cube_count,
            cube_dim,
            address_type(&[columns, input_grad]),
            columns.clone().into_tensor_arg(),
            input_grad.clone().into_tensor_arg(),
            first,
            images,
            window(g),
            dtype_to_storage_type(columns.dtype),
        );
    }
}

/// Writes images `first..first + images` of the output (`[N, C_out, H', W']`, contiguous) from
/// their product `[C_out, images·H'·W']`, adding `bias` and applying a ReLU when `relu` is set.
pub(super) fn write_maps(
    product: &CubeTensor,
    bias: &CubeTensor,
    output: &CubeTensor,
    g: &ConvGeometry,
    (first, images): (usize, usize),
    relu: bool,
) {
    let count = images * g.output_image();
    let cube_dim = CubeDim::new(&product.client, count);
    let cube_count = calculate_cube_count_elemwise(&product.client, count, cube_dim);
    // SAFETY: see the module's comment; the kernel guards the positions past the `images`
    // images it writes, and `first + images` is at most the batch `output` holds.
    unsafe {
        maps_kernel::launch_unchecked(
            &product.client,
            cube_count,
            cube_dim,
            address_type(&[product, bias, output]),
            product.clone().into_tensor_arg(),
            bias.clone().into_tensor_arg(),
            output.clone().into_tensor_arg(),
            first,
            images,
            g.output_plane(),
            relu,
            dtype_to_storage_type(product.dtype),
        );
    }
}

/// Images `first..first + images` of an output gradient in the product's layout,
/// `[C_out, images·H'·W']`.
pub(super) fn channel_rows(
    grad: &CubeTensor,
    g: &ConvGeometry,
    first: usize,
    images: usize,
) -> CubeTensor {
    let rows = empty(grad, [g.out_channels, images * g.output_plane()]);
    let (cube_count, cube_dim) = elementwise(&rows);
    // SAFETY: see the module's comment; the kernel guards the positions past `rows`' end.
    unsafe {
        channel_rows_kernel::launch_unchecked(
            &grad.client,
            cube_count,
            cube_dim,
            address_type(&[grad, &rows]),
            grad.clone().into_tensor_arg(),
            rows.clone().into_tensor_arg(),
            first,
            images,
            dtype_to_storage_type(grad.dtype),
        );
    }
    rows
}
