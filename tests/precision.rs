//! Mixed precision: a network computing in f16 (wgpu) or bf16 (flex; wgpu and Vulkan have no
//! bf16 arithmetic) gives logits and gradients within a stated tolerance of its f32 self, and
//! a short f16 training run with its dynamic loss scale learns.
#![cfg(all(feature = "train", feature = "pretrained"))]

use crate::common;

use burn::data::dataset::InMemDataset;
use burn::module::{Module, Param};
use burn::nn::DropoutConfig;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Int;
use burn::tensor::activation::relu;
use burn::tensor::{DType, Device, Distribution, Tensor};
use nin::pretrained::Weights;
use nin::train::{Preset, TrainOptions, TrainingConfig};
use nin::{Nin, Precision};

/// How far a result in `precision` may be from f32, as a fraction of the largest f32 value, for
/// the logits and the first and last convolutions' weight gradients of [`compare`].
///
/// PyTorch's `torch.autocast` on the same network, weights and batch moves them by 1.1·10⁻³,
/// 0.12 and 3.0·10⁻³ in f16, and 9.9·10⁻³, 0.28 and 1.9·10⁻² in bf16
/// (tests/fixtures/pytorch/amp_reference.py, torch 2.15 on the CPU); the bounds are those
/// with room to spare. The first layer's gradient moves most: it is a sum over every position
/// of the batch of an output gradient that the batch norm after it centres, so rounding that
/// gradient to the half type leaves a residue that does not cancel.
fn tolerances(precision: Precision) -> [f32; 3] {
    match precision {
        Precision::F16 => [2e-3, 0.2, 6e-3],
        Precision::Bf16 => [2e-2, 0.45, 4e-2],
        Precision::F32 => [0.0; 3],
    }
}

/// Convolution outputs and gradients in f16, against f32: half-precision operands with products
/// accumulated in f32 move them by a few rounding steps of f16 (2⁻¹¹ ≈ 4.9·10⁻⁴ of a value).
const F16_CONVOLUTION_TOLERANCE: f32 = 3e-3;

fn relative_difference(ours: &[f32], reference: &[f32]) -> f32 {
    let scale = reference
        .iter()
        .fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
    common::max_abs_diff(ours, reference) / scale
}

/// The logits of `model` for a batch of patterned images normalised as its weights expect, and
/// the gradients of the weights of its first and last convolutions under a cross-entropy loss
/// (scaled for f16 as training scales it, and unscaled).
fn logits_and_gradients(model: &Nin, device: &Device) -> [Vec<f32>; 3] {
    let (mean, std) = Weights::FashionMnistCompact.normalize();
    let images = (common::pattern_images([8, 1, 28, 28], device) - mean) / std;
    let logits = model.forward(images);
    assert_eq!(logits.dtype(), DType::F32, "logits come out in f32");
    let targets = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 4, 5, 6, 7], device);
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits.clone(), targets);
    let scale = if model.precision == Precision::F16 {
        1024.0
    } else {
        1.0
    };
    let grads = (loss * scale).backward();
    let grad = |param: &Param<Tensor<4>>| {
        let grad = param
            .val()
            .grad(&grads)
            .expect("the weight takes a gradient");
        assert_eq!(grad.dtype(), DType::F32, "parameter gradients stay f32");
        common::values(grad.div_scalar(scale))
    };
    [
        common::values(logits),
        grad(&model.blocks[0].conv.conv.weight),
        grad(&model.blocks[3].mlp2.conv.weight),
    ]
}

/// The shipped Fashion-MNIST network (trained, so its activations are those of a network in
/// use, not of a random initialisation's dead units), in training mode with batch statistics
/// and without dropout, in `precision` on `device` against f32 on flex. The f32 network gives
/// the same logits on every backend (tests/backends.rs), so the reference is taken where it is
/// cheapest: on a software GPU the f32 pass would compile and tune a second set of kernels.
fn compare(device: Device, precision: Precision) {
    let load = |device: &Device| {
        let mut model = Weights::FashionMnistCompact
            .load(&device.clone().autodiff())
            .expect("the shipped weights")
            .train();
        // Dropout's masks would differ between the two passes.
        model.dropout = DropoutConfig::new(0.0).init();
        model
    };
    let flex = nin::backend::device("flex").expect("flex is a default feature");
    let reference = logits_and_gradients(&load(&flex), &flex.autodiff());
    let lowered =
        logits_and_gradients(&load(&device).with_precision(precision), &device.autodiff());
    let names = [
        "logits",
        "first layer's weight gradient",
        "last layer's weight gradient",
    ];
    for ((what, tolerance), (ours, f32s)) in names
        .iter()
        .zip(tolerances(precision))
        .zip(lowered.iter().zip(&reference))
    {
        let difference = relative_difference(ours, f32s);
        println!("{precision}: {what}: {difference:.2e} of the f32 values' scale");
        assert!(
            difference <= tolerance,
            "{precision}: {what} differ from f32 by {difference:.2e} of their scale (allowed \
             {tolerance:.0e})"
        );
        assert!(
            ours != f32s,
            "{precision}: {what} are bit-identical to f32's"
        );
    }
}

#[test]
fn f16_on_wgpu_gives_logits_and_gradients_close_to_f32() {
    let Some(device) = common::wgpu("f16_on_wgpu") else {
        return;
    };
    Precision::F16
        .check(&device)
        .expect("lavapipe and every wgpu GPU this crate targets have shader-f16");
    compare(device, Precision::F16);
}

#[test]
fn bf16_on_flex_gives_logits_and_gradients_close_to_f32() {
    let device = nin::backend::device("flex").expect("flex is a default feature");
    compare(device, Precision::Bf16);
}

#[test]
fn bf16_on_wgpu_is_refused_naming_what_to_use() {
    let Some(device) = common::wgpu("bf16_on_wgpu") else {
        return;
    };
    let err = Precision::Bf16.check(&device).unwrap_err().to_string();
    assert!(err.contains("bf16") && err.contains("CUDA"), "{err}");
    let config = TrainingConfig {
        precision: Precision::Bf16,
        ..TrainingConfig::preset(Preset::Compact)
    };
    let dir = tempfile::tempdir().unwrap();
    let refused = nin::train::train(
        &config,
        InMemDataset::new(common::striped(8, 4, 1)),
        InMemDataset::new(common::striped(8, 4, 2)),
        std::slice::from_ref(&device),
        &TrainOptions::new(dir.path()),
    );
    let Err(err) = refused else {
        panic!("bf16 training on wgpu was not refused");
    };
    assert!(err.to_string().contains("precision"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing is written"
    );
}

/// `forward`'s output, input gradient and weight gradient for `x` cast to `dtype`, as f32 values.
fn output_and_gradients(
    conv: &Conv2d,
    x: &Tensor<4>,
    dtype: DType,
    forward: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>,
) -> Vec<Vec<f32>> {
    let x = x.clone().cast(dtype).require_grad();
    let y = forward(conv, x.clone());
    let grads = y.clone().cast(DType::F32).sum().backward();
    let weight_grad = conv.weight.val().grad(&grads).expect("a weight gradient");
    let input_grad = x.grad(&grads).expect("an input gradient");
    [y.cast(DType::F32), input_grad.cast(DType::F32), weight_grad]
        .map(common::values)
        .into()
}

/// The cube backend's convolution in f16 against the same layer in f32, on d2l's three window
/// sizes with their strides and paddings: the autotuned choice in f16 runs this crate's kernel
/// for every pass, never timing burn's, and comes within [`F16_CONVOLUTION_TOLERANCE`] of
/// burn's `conv2d` and ReLU in f32 on flex. The reference is taken on flex because the
/// backends agree in f32 (tests/backends.rs, tests/cube_conv.rs), and on a software GPU an f32
/// pass would compile a second set of kernels for every shape and pass. burn's kernels, which
/// the autotuner does not pick in half precision because they accumulate in it, are measured
/// on the 5×5 layer and printed.
#[test]
fn f16_convolutions_on_wgpu_accumulate_in_f32() {
    use nin::ops::{ConvChoice, ConvKernel, ConvPass, ConvSettings, KernelRuns};

    let Some(device) = common::wgpu("f16_convolutions") else {
        return;
    };
    let device = device.autodiff();
    let flex = nin::backend::device("flex")
        .expect("flex is a default feature")
        .autodiff();
    let burns = ConvSettings::new(ConvChoice::Always(ConvKernel::Burn));
    for (input, out, kernel, stride, padding) in [
        ([2, 1, 39, 39], 8, 11, 4, 0),
        ([2, 6, 13, 13], 10, 5, 1, 2),
        ([3, 5, 9, 9], 7, 3, 1, 1),
    ] {
        device.seed(5);
        let conv = Conv2dConfig::new([input[1], out], [kernel, kernel])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .init(&device);
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        // Parameters are drawn lazily, on the device that first reads them: read them here, so
        // that flex gets a copy of them (and after `x`, as this test's values always were: a
        // pre-activation within f16's rounding of zero flips ReLU's mask, and with it a whole
        // term of the gradients).
        let _ = (conv.weight.val(), conv.bias.as_ref().map(Param::val));
        let f32s = output_and_gradients(
            &conv.clone().fork(&flex),
            &x.clone().to_device(&flex),
            DType::F32,
            |conv, x| relu(conv.forward(x)),
        );
        // Whatever NIN_CONV_KERNEL says: the autotuned pick in f16 is what this test is about.
        let runs = KernelRuns::new();
        let tuned = ConvSettings::new(ConvChoice::Autotune).counting_in(&runs);
        let ours = output_and_gradients(&conv, &x, DType::F16, |conv, x| {
            nin::ops::conv2d_with(conv, x, true, &tuned)
        });
        // The autotuner's pick in f16 is this crate's kernel, for every pass, with no timing
        // runs of burn's.
        for pass in ConvPass::ALL {
            assert!(
                runs.get(pass, ConvKernel::Im2col) > 0,
                "{kernel}×{kernel}: f16 {pass:?} did not run this crate's kernel"
            );
            assert_eq!(
                runs.get(pass, ConvKernel::Burn),
                0,
                "{kernel}×{kernel}: f16 {pass:?} ran burn's kernel"
            );
        }
        let names = ["output", "input gradient", "weight gradient"];
        for (what, (ours, reference)) in names.iter().zip(ours.iter().zip(&f32s)) {
            let difference = relative_difference(ours, reference);
            println!("{kernel}×{kernel}, this crate's kernel: f16 {what}: {difference:.2e}");
            assert!(
                difference <= F16_CONVOLUTION_TOLERANCE,
                "{kernel}×{kernel}: f16 {what} differs from f32 by {difference:.2e} of its scale \
                 (allowed {F16_CONVOLUTION_TOLERANCE:.0e})"
            );
        }
        if kernel == 5 {
            let burn = output_and_gradients(&conv, &x, DType::F16, |conv, x| {
                nin::ops::conv2d_with(conv, x, true, &burns)
            });
            for (what, (burn, reference)) in names.iter().zip(burn.iter().zip(&f32s)) {
                let difference = relative_difference(burn, reference);
                println!("{kernel}×{kernel}, burn's kernel: f16 {what}: {difference:.2e}");
            }
        }
    }
}

#[test]
fn f16_training_with_loss_scaling_learns() {
    let Some(device) = common::wgpu("f16_training") else {
        return;
    };
    let config = TrainingConfig {
        model: common::two_block_nin(4),
        epochs: 3,
        batch_size: 32,
        workers: 1,
        precision: Precision::F16,
        ..TrainingConfig::preset(Preset::Compact)
    };
    let dir = tempfile::tempdir().unwrap();
    let trained = nin::train::train(
        &config,
        InMemDataset::new(common::striped(256, 4, 1)),
        InMemDataset::new(common::striped(128, 4, 2)),
        std::slice::from_ref(&device),
        &TrainOptions {
            class_names: (0..4).map(|c| c.to_string()).collect(),
            ..TrainOptions::new(dir.path())
        },
    )
    .expect("f16 training runs");
    let last = trained.metrics.last().expect("three epochs of metrics");
    println!(
        "f16 training: train accuracy {:.4}, test accuracy {:.4} (chance 0.25)",
        last.train_accuracy, last.test_accuracy
    );
    assert!(last.train_loss.is_finite());
    assert!(
        last.train_accuracy > 0.6,
        "f16 training did not learn: train accuracy {:.4}",
        last.train_accuracy
    );
    assert_eq!(trained.model.precision, Precision::F16);
}
