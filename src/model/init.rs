//! Weight initialisation as in Dive into Deep Learning's `init_cnn`.
//!
//! d2l calls `nn.init.xavier_uniform_` on every convolution weight and leaves the bias at
//! PyTorch's default, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. Burn's `Conv2dConfig` draws weight
//! and bias from one initializer, so the bias is drawn here separately: with Xavier applied to
//! the bias too, the starting point (and the lr 0.1 SGD recipe that depends on it) would differ
//! from the reference.

use burn::module::Initializer;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::Device;

/// The initializer d2l's `init_cnn` applies to convolution weights: Xavier-uniform, gain 1.
pub(crate) const D2L_WEIGHT_INIT: Initializer = Initializer::XavierUniform { gain: 1.0 };

/// Shape of one square convolution, as the NiN layers use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SquareConv {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel_size: usize,
    pub stride: usize,
    pub padding: usize,
}

impl SquareConv {
    /// A 1×1 convolution: the per-pixel fully connected layer of an mlpconv block.
    pub fn pointwise(in_channels: usize, out_channels: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: 1,
            stride: 1,
            padding: 0,
        }
    }

    /// Builds the convolution with `weight_init` for the weight and, when `bias` is set,
    /// PyTorch's default bias initialisation.
    pub fn init(&self, weight_init: &Initializer, bias: bool, device: &Device) -> Conv2d {
        let p = self.padding;
        let mut conv = Conv2dConfig::new(
            [self.in_channels, self.out_channels],
            [self.kernel_size, self.kernel_size],
        )
        .with_stride([self.stride, self.stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .with_initializer(weight_init.clone())
        .init(device);

        if bias {
            let fan_in = self.in_channels * self.kernel_size * self.kernel_size;
            let bound = 1.0 / (fan_in as f64).sqrt();
            conv.bias = Some(
                Initializer::Uniform {
                    min: -bound,
                    max: bound,
                }
                .init([self.out_channels], device),
            );
        }
        conv
    }
}
