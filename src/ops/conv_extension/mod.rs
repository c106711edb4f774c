//! The convolution as a backend operation: one burn backend extension, implemented by the flex
//! kernel (`flex_conv`) and by the cube kernel (`cube_conv`, wgpu, Vulkan and CUDA), with one
//! autodiff node for both.
//!
//! The node keeps the input and the weights, not the patch matrix: the backward pass of either
//! kernel rebuilds what it needs, so a training step holds one copy of each activation, as
//! burn's own convolution does.

mod autodiff;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, ExtensionType, backend_extension};
use burn::tensor::Tensor;

use super::conv_settings::ConvSettings;
use super::geometry::ConvGeometry;

/// The convolution as a backend operation.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(feature = "cube"),
    Fusion: cfg(feature = "cube"),
    Autodiff
)]
pub(crate) trait Conv2dOps: Backend {
    /// `x` (`[N, C, H, W]`) convolved with `weight` (`[C_out, C, kh, kw]`), plus `bias`
    /// (`[C_out]`), with symmetric zero `padding`; then a ReLU when `relu` is set. All three in
    /// one float type, which the output has too. Cube backends run it as `settings` say.
    #[fusion(dtype = x, shape = output_shape(x, weight, stride, padding))]
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
        settings: ConvSettings,
    ) -> FloatTensor<Self>;

    /// [`Conv2dOps::conv2d_relu`] without a ReLU, and the batch mean and biased variance of
    /// each output channel as a `[2, C_out]` tensor (not tracked by autodiff). By default the
    /// statistics are reductions over the output; the flex kernel takes them while each map is
    /// in cache. Only flex's batch norm takes them.
    #[cfg(feature = "flex")]
    #[fusion(default)]
    fn conv2d_with_statistics(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        use burn::backend::TensorMetadata;

        let output = Self::conv2d_relu(
            x,
            weight,
            bias,
            stride,
            padding,
            false,
            ConvSettings::default(),
        );
        let [n, c, h, w] = output.shape().dims::<4>();
        let per_channel = Self::float_reshape(
            Self::float_swap_dims(output.clone(), 0, 1),
            [c, n * h * w].into(),
        );
        let mean = Self::float_mean_dim(per_channel.clone(), 1);
        let centered = Self::float_sub(per_channel, mean.clone());
        let variance = Self::float_mean_dim(Self::float_mul(centered.clone(), centered), 1);
        let statistics = Self::float_swap_dims(Self::float_cat(vec![mean, variance], 1), 0, 1);
        (output, statistics)
    }

    /// Gradients of `weight` and `bias`, and of `x` when `input_grad` is set, given the gradient
    /// of the convolution's output. A ReLU is not part of it: the caller has already masked
    /// `output_grad` with the ReLU's output. Cube backends run it as `settings` say.
    #[fusion(meta = gradients_metadata)]
    fn conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        input_grad: bool,
        settings: ConvSettings,
    ) -> Conv2dGradients<Self>;
}

/// The gradients of one convolution, as [`Conv2dOps::conv2d_backward`] returns them.
#[derive(ExtensionType)]
#[extension_type(fusion: cfg(feature = "cube"))]
pub(crate) enum Conv2dGradients<B: Backend> {
    /// The input's gradient too.
    WithInput {
        /// `[N, C, H, W]`.
        input: FloatTensor<B>,
        /// `[C_out, C, kh, kw]`.
        weight: FloatTensor<B>,
        /// `[C_out]`.
        bias: FloatTensor<B>,
    },
    /// The parameters' gradients only: the input takes none (a network's images).
    Parameters {
        /// `[C_out, C, kh, kw]`.
        weight: FloatTensor<B>,
        /// `[C_out]`.
        bias: FloatTensor<B>,
    },
}

impl<B: Backend> Conv2dGradients<B> {
    /// `(input, weight, bias)`, the input's when it was asked for.
    pub(crate) fn into_parts(self) -> (Option<FloatTensor<B>>, FloatTensor<B>, FloatTensor<B>) {
        match self {
            Conv2dGradients::WithInput {
                input,
                weight,
                bias,
            } => (Some(input), weight, bias),
            Conv2dGradients::Parameters { weight, bias } => (None, weight, bias),
        }
    }

    /// The gradients from their parts; `input` decides the variant.
    pub(crate) fn from_parts(
        input: Option<FloatTensor<B>>,
        weight: FloatTensor<B>,
        bias: FloatTensor<B>,
    ) -> Self {
        match input {
            Some(input) => Conv2dGradients::WithInput {
                input,
                weight,
                bias,
            },
            None => Conv2dGradients::Parameters { weight, bias },
        }
    }
}

/// The geometry of convolving `x` with `weight`, from their shapes.
pub(crate) fn geometry(
    x: &burn::tensor::Shape,
    weight: &burn::tensor::Shape,
    stride: [usize; 2],
    padding: [usize; 2],
) -> ConvGeometry {
    let dims = |shape: &burn::tensor::Shape, what: &str| -> [usize; 4] {
        assert_eq!(shape.num_dims(), 4, "conv2d takes a 4-D {what}");
        [shape[0], shape[1], shape[2], shape[3]]
    };
    ConvGeometry::new(dims(x, "input"), dims(weight, "weight"), stride, padding)
}

/// The output shape of [`Conv2dOps::conv2d_relu`], for fusion's lazy graph.
#[cfg(feature = "cube")]
fn output_shape(
    x: &burn::tensor::Shape,
    weight: &burn::tensor::Shape,
    stride: &[usize; 2],
    padding: &[usize; 2],
) -> burn::tensor::Shape {
    geometry(x, weight, *stride, *padding).output_shape().into()
}

/// The shapes of [`Conv2dOps::conv2d_backward`]'s gradients, for fusion's lazy graph.
#[cfg(feature = "cube")]
fn gradients_metadata(
    x: &burn::backend::fusion::custom::TensorSpec,
    weight: &burn::backend::fusion::custom::TensorSpec,
    output_grad: &burn::backend::fusion::custom::TensorSpec,
    _stride: &[usize; 2],
    _padding: &[usize; 2],
    input_grad: &bool,
    _settings: &ConvSettings,
) -> Conv2dGradientsMetadata {
    use burn::backend::fusion::custom::TensorSpec;

    let bias = TensorSpec::new([weight.shape[0]].into(), output_grad.dtype);
    let weight = TensorSpec::new(weight.shape.clone(), output_grad.dtype);
    if *input_grad {
        Conv2dGradientsMetadata::WithInput {
            input: TensorSpec::new(x.shape.clone(), output_grad.dtype),
            weight,
            bias,
        }
    } else {
        Conv2dGradientsMetadata::Parameters { weight, bias }
    }
}

/// The convolution through this crate's kernel, with its ReLU when `relu` is set. `bias` of
/// `None` is a zero bias. The three tensors share one float type.
pub(crate) fn conv2d_relu(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: [usize; 2],
    relu: bool,
    settings: &ConvSettings,
) -> Tensor<4> {
    let bias = bias_or_zeros(bias, &weight);
    Tensor::from_dispatch(<Dispatch as Conv2dOps>::conv2d_relu(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
        padding,
        relu,
        settings.clone(),
    ))
}

/// The convolution through this crate's kernel, without a ReLU, and the batch mean and biased
/// variance of each output channel as a `[2, C_out]` tensor that autodiff does not track: what
/// a training-mode batch norm after it needs.
#[cfg(feature = "flex")]
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

/// The gradients of the convolution through this crate's kernel, outside autodiff: `(input
/// when asked for, weight, bias)` given the gradient of its output (before any ReLU). For
/// benchmarks; training gets them from the autodiff node.
pub(crate) fn conv2d_backward(
    x: Tensor<4>,
    weight: Tensor<4>,
    output_grad: Tensor<4>,
    stride: [usize; 2],
    padding: [usize; 2],
    input_grad: bool,
    settings: &ConvSettings,
) -> (Option<Tensor<4>>, Tensor<4>, Tensor<1>) {
    let (input, weight, bias) = <Dispatch as Conv2dOps>::conv2d_backward(
        x.into_dispatch(),
        weight.into_dispatch(),
        output_grad.into_dispatch(),
        stride,
        padding,
        input_grad,
        settings.clone(),
    )
    .into_parts();
    (
        input.map(Tensor::from_dispatch),
        Tensor::from_dispatch(weight),
        Tensor::from_dispatch(bias),
    )
}

/// `bias`, or for a convolution without one a constant zero bias in the weights' float type:
/// it takes no gradient, so its node is never tracked.
fn bias_or_zeros(bias: Option<Tensor<1>>, weight: &Tensor<4>) -> Tensor<1> {
    bias.unwrap_or_else(|| {
        Tensor::<1>::zeros([weight.dims()[0]], &weight.device()).cast(weight.dtype())
    })
}
