//! The NiN ("mlpconv") block: a k×k convolution followed by two 1×1 convolutions.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::error::ConfigError;
use super::init::{D2L_WEIGHT_INIT, SquareConv};
use crate::ops;

/// Configuration of a [`NinBlock`], built with [`NinBlockConfig::new`] and the `with_*` setters,
/// turned into a module with [`init`](NinBlockConfig::init).
///
/// The field names follow d2l's `nin_block(in_channels, out_channels, kernel_size, strides,
/// padding)`: `out_channels` is the width of the k×k convolution, and of both 1×1 layers unless
/// [`mlp_channels`](Self::mlp_channels) gives them their own widths (as the paper's CIFAR-10
/// network does: 192 → 160 → 96).
///
/// ```
/// use burn::tensor::Tensor;
/// use nin::NinBlockConfig;
///
/// let device = nin::backend::device("auto").unwrap();
/// // d2l's first block: 11×11 convolution with stride 4, 96 channels.
/// let block = NinBlockConfig::new(1, 96, 11).with_stride(4).init(&device);
/// let maps = block.forward(Tensor::<4>::zeros([2, 1, 224, 224], &device));
/// assert_eq!(maps.dims(), [2, 96, 54, 54]);
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct NinBlockConfig {
    /// Channels of the input feature maps.
    pub in_channels: usize,
    /// Width of the k×k convolution (and of the 1×1 layers unless `mlp_channels` is set).
    pub out_channels: usize,
    /// Side of the square k×k kernel.
    pub kernel_size: usize,
    /// Stride of the k×k convolution.
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding on each side for the k×k convolution.
    #[config(default = 0)]
    pub padding: usize,
    /// Widths of the two 1×1 layers; `None` uses `out_channels` for both, as d2l does.
    #[config(default = "None")]
    pub mlp_channels: Option<[usize; 2]>,
    /// Batch normalisation after each convolution (before its ReLU). Off in d2l and the paper.
    /// With it on the convolutions carry no bias, since the norm's shift replaces it.
    #[config(default = false)]
    pub batch_norm: bool,
    /// How convolution weights are drawn. Defaults to d2l's `init_cnn` (Xavier-uniform); biases
    /// always use PyTorch's default, as d2l leaves them.
    #[config(default = "D2L_WEIGHT_INIT")]
    pub initializer: Initializer,
}

impl NinBlockConfig {
    /// Output channels of the block's three layers in the order they run: the k×k convolution
    /// (`out_channels`), then the two 1×1 ones. The last is the block's output.
    ///
    /// ```
    /// let cifar_first = nin::NinBlockConfig::new(3, 192, 5).with_mlp_channels(Some([160, 96]));
    /// assert_eq!(cifar_first.layer_channels(), [192, 160, 96]);
    /// assert_eq!(nin::NinBlockConfig::new(1, 96, 11).layer_channels(), [96, 96, 96]);
    /// ```
    pub fn layer_channels(&self) -> [usize; 3] {
        let [mlp1, mlp2] = self
            .mlp_channels
            .unwrap_or([self.out_channels, self.out_channels]);
        [self.out_channels, mlp1, mlp2]
    }

    /// Checks every size is positive; `block` is the index reported in the error.
    pub(crate) fn validate_as(&self, block: usize) -> Result<(), ConfigError> {
        let [conv, mlp1, mlp2] = self.layer_channels();
        let sizes = [
            ("in_channels", self.in_channels),
            ("out_channels", conv),
            ("kernel_size", self.kernel_size),
            ("stride", self.stride),
            ("mlp_channels[0]", mlp1),
            ("mlp_channels[1]", mlp2),
        ];
        match sizes.iter().find(|(_, size)| *size == 0) {
            Some((field, _)) => Err(ConfigError::Zero { block, field }),
            None => Ok(()),
        }
    }

    /// Checks every size is positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_as(0)
    }

    /// Builds the block on `device`.
    ///
    /// # Panics
    ///
    /// If [`validate`](Self::validate) fails; call it first to get the error as a value.
    pub fn init(&self, device: &Device) -> NinBlock {
        if let Err(err) = self.validate() {
            panic!("invalid NinBlockConfig: {err}");
        }
        let [conv, mlp1, mlp2] = self.layer_channels();
        let spatial = SquareConv {
            in_channels: self.in_channels,
            out_channels: conv,
            kernel_size: self.kernel_size,
            stride: self.stride,
            padding: self.padding,
        };
        let layer = |shape: SquareConv| ConvNormRelu {
            conv: shape.init(&self.initializer, !self.batch_norm, device),
            norm: self
                .batch_norm
                .then(|| BatchNormConfig::new(shape.out_channels).init(device)),
        };
        NinBlock {
            conv: layer(spatial),
            mlp1: layer(SquareConv::pointwise(conv, mlp1)),
            mlp2: layer(SquareConv::pointwise(mlp1, mlp2)),
        }
    }
}

/// One layer of a block: a convolution, its optional batch norm, then a ReLU.
#[derive(Module, Debug)]
pub struct ConvNormRelu {
    /// The convolution.
    pub conv: Conv2d,
    /// Batch normalisation, present when the block was built with `batch_norm`.
    pub norm: Option<BatchNorm>,
}

impl ConvNormRelu {
    /// Convolution, optional batch norm, ReLU, through the fastest kernels this backend has
    /// (`ops`); the values are burn's `Conv2d`, `BatchNorm` and `relu` in a row.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        ops::conv_norm_relu(&self.conv, self.norm.as_ref(), input)
    }
}

/// The NiN block ("mlpconv layer"): a k×k convolution, then two 1×1 convolutions, each followed
/// by a ReLU. The 1×1 layers act as a small fully connected network applied at every pixel.
///
/// Built with [`NinBlockConfig`]. Input `[N, in_channels, H, W]`, output
/// `[N, layer_channels()[2], H', W']` with `H' = (H + 2·padding − kernel) / stride + 1`.
#[derive(Module, Debug)]
pub struct NinBlock {
    /// The k×k convolution.
    pub conv: ConvNormRelu,
    /// The first 1×1 convolution.
    pub mlp1: ConvNormRelu,
    /// The second 1×1 convolution.
    pub mlp2: ConvNormRelu,
}

impl NinBlock {
    /// The block's three layers in the order they run, each with its field name (the module
    /// path of burn's records): the k×k convolution, then the two 1×1 ones. The forward pass,
    /// the FLOP count and the PyTorch layout all follow this one list.
    ///
    /// ```
    /// let device = nin::backend::device("auto").unwrap();
    /// let block = nin::NinBlockConfig::new(1, 8, 3).init(&device);
    /// let names: Vec<&str> = block.layers().iter().map(|(name, _)| *name).collect();
    /// assert_eq!(names, ["conv", "mlp1", "mlp2"]);
    /// ```
    pub fn layers(&self) -> [(&'static str, &ConvNormRelu); 3] {
        [
            ("conv", &self.conv),
            ("mlp1", &self.mlp1),
            ("mlp2", &self.mlp2),
        ]
    }

    /// Applies the block to `[N, C, H, W]` feature maps.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        self.layers()
            .into_iter()
            .fold(input, |x, (_, layer)| layer.forward(x))
    }

    /// Channels the block takes.
    pub fn in_channels(&self) -> usize {
        self.conv.conv.weight.lazy_shape()[1]
    }

    /// Output channels of the block's three layers in the order they run; the last is the
    /// block's output.
    pub fn layer_channels(&self) -> [usize; 3] {
        self.layers()
            .map(|(_, layer)| layer.conv.weight.lazy_shape()[0])
    }

    /// Side of the k×k kernel.
    pub fn kernel_size(&self) -> usize {
        self.conv.conv.kernel_size[0]
    }

    /// Stride of the k×k convolution.
    pub fn stride(&self) -> usize {
        self.conv.conv.stride[0]
    }

    /// Zero padding on each side of the k×k convolution.
    pub fn padding(&self) -> usize {
        match self.conv.conv.padding {
            PaddingConfig2d::Explicit(top, ..) => top,
            _ => 0,
        }
    }

    /// Height or width of the output for an input side of `input`, or `None` when the input is
    /// smaller than the kernel after padding.
    pub fn output_side(&self, input: usize) -> Option<usize> {
        window_output_side(input, self.kernel_size(), self.stride(), self.padding())
    }

    /// The smallest input side the k×k convolution accepts.
    pub fn min_input_side(&self) -> usize {
        input_side_for(1, self.kernel_size(), self.stride(), self.padding())
    }
}

/// The smallest input side from which a window with `kernel`, `stride` and `padding` produces
/// `output` values (at least 1): `(output − 1)·stride + kernel − 2·padding`.
pub(crate) fn input_side_for(output: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    ((output.max(1) - 1) * stride + kernel)
        .saturating_sub(2 * padding)
        .max(1)
}

/// Output side of a convolution or pooling window, PyTorch's floor arithmetic; `None` when the
/// window does not fit in the padded input.
pub(crate) fn window_output_side(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Option<usize> {
    let padded = input.checked_add(2 * padding)?;
    (input > 0 && padded >= kernel && stride > 0).then(|| (padded - kernel) / stride + 1)
}
