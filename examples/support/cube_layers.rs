//! `perf --layers` on a cube backend (wgpu, Vulkan, CUDA): each pass of each k×k convolution
//! with burn's kernel and with this crate's, timed on the device, and the kernel the autotuner
//! keeps for it.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{DType, Device, Distribution, Tensor};
use nin::ops::ConvGeometry;
use nin::ops::{ConvChoice, ConvKernel, ConvPass, ConvSettings, KernelRuns};

use crate::kernels::median_seconds;

/// Seconds of one pass with each kernel (`[burn, im2col]`), and the kernel the autotuner keeps.
pub struct PassTimes {
    pub seconds: [Option<f64>; 2],
    pub tuned: Option<ConvKernel>,
}

/// The three passes of one layer.
pub struct LayerTimes {
    pub forward: PassTimes,
    pub weight_grad: PassTimes,
    pub input_grad: PassTimes,
}

/// The layer's convolution, its input and an output gradient, in `dtype` on `device`.
fn layer(g: &ConvGeometry, device: &Device, dtype: DType) -> (Conv2d, Tensor<4>, Tensor<4>) {
    let [ph, pw] = g.padding;
    let conv = Conv2dConfig::new([g.in_channels, g.out_channels], g.kernel)
        .with_stride(g.stride)
        .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
        .init(device);
    let [n, c, h, w] = [g.batch, g.in_channels, g.input[0], g.input[1]];
    let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), device).cast(dtype);
    let dy =
        Tensor::<4>::random(g.output_shape(), Distribution::Normal(0.0, 1.0), device).cast(dtype);
    (conv, x, dy)
}

/// Seconds of one call of `pass`, on the device: enough calls between two waits for the device
/// that the wait is a small part of them.
fn seconds(device: &Device, reps: usize, mut pass: impl FnMut()) -> f64 {
    let mut once = || {
        pass();
        device.sync().expect("the device runs the pass");
    };
    let single = median_seconds(1, 1, &mut once);
    let inner = (0.02 / single.max(1e-6)).ceil().clamp(1.0, 50.0) as usize;
    median_seconds(0, reps, || {
        for _ in 0..inner {
            pass();
        }
        device.sync().expect("the device runs the pass");
    }) / inner as f64
}

/// Times every pass of the layer `g` with both kernels, then lets the autotuner choose and
/// reports which kernel it runs from then on. `input_grad` is false for a network's first
/// layer, whose images take no gradient.
pub fn time_layer(
    g: &ConvGeometry,
    device: &Device,
    dtype: DType,
    reps: usize,
    input_grad: bool,
) -> LayerTimes {
    let (conv, x, dy) = layer(g, device, dtype);
    let (conv, x, dy) = (&conv, &x, &dy);
    let forward = |settings: &ConvSettings| {
        std::hint::black_box(nin::ops::conv2d_with(conv, x.clone(), true, settings));
    };
    let gradients = |settings: &ConvSettings, with_input: bool| {
        std::hint::black_box(nin::ops::conv2d_gradients(
            conv,
            x.clone(),
            dy.clone(),
            with_input,
            settings,
        ));
    };
    let mut times = [[None; 2]; 3];
    for (index, kernel) in ConvKernel::ALL.into_iter().enumerate() {
        let settings = ConvSettings::new(ConvChoice::Always(kernel));
        times[0][index] = Some(seconds(device, reps, || forward(&settings)));
        let weight = seconds(device, reps, || gradients(&settings, false));
        times[1][index] = Some(weight);
        if input_grad {
            let both = seconds(device, reps, || gradients(&settings, true));
            times[2][index] = (both > weight).then_some(both - weight);
        }
    }

    // One call tunes every pass; in the next each pass runs the kernel kept for it, which is
    // the one that second call counts.
    let tune = ConvSettings::new(ConvChoice::Autotune);
    let runs = KernelRuns::new();
    let counted = tune.clone().counting_in(&runs);
    for settings in [&tune, &counted] {
        forward(settings);
        gradients(settings, input_grad);
        device.sync().expect("the device runs the passes");
    }
    let tuned = |pass: ConvPass| {
        ConvKernel::ALL
            .into_iter()
            .find(|&kernel| runs.get(pass, kernel) > 0)
    };
    let [forward_times, weight_times, input_times] = times;
    LayerTimes {
        forward: PassTimes {
            seconds: forward_times,
            tuned: tuned(ConvPass::Forward),
        },
        weight_grad: PassTimes {
            seconds: weight_times,
            tuned: tuned(ConvPass::WeightGrad),
        },
        input_grad: PassTimes {
            seconds: input_times,
            tuned: if input_grad {
                tuned(ConvPass::InputGrad)
            } else {
                None
            },
        },
    }
}
