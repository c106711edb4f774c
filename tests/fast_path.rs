//! `NinBlock::forward` runs through `nin::ops`: the crate's convolution and batch-norm kernels on
//! flex, matrix-product 1×1 convolutions and reduction batch norm on other autodiff backends,
//! batch norm folded into the convolution in inference. These tests hold it to
//! `common::reference` (burn's `Conv2d` and `BatchNorm`, then ReLU): the same outputs, the same
//! gradients for every parameter and for the input, and the same running statistics, on every
//! backend this run has; and, on flex, the same for whole networks.

use crate::common;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Distribution, Gradients, Tensor};
use nin::{Nin, NinBlock, NinBlockConfig, NinConfig};

const TOLERANCE: f32 = 1e-4;

/// A block's parameters by name, with their gradients.
fn parameter_grads(block: &NinBlock, grads: &Gradients) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (name, layer) in [
        ("conv", &block.conv),
        ("mlp1", &block.mlp1),
        ("mlp2", &block.mlp2),
    ] {
        let Conv2d { weight, bias, .. } = &layer.conv;
        out.push((format!("{name}.weight"), grad_values(weight.val(), grads)));
        if let Some(bias) = bias {
            out.push((format!("{name}.bias"), grad_values(bias.val(), grads)));
        }
        if let Some(norm) = &layer.norm {
            out.push((
                format!("{name}.gamma"),
                grad_values(norm.gamma.val(), grads),
            ));
            out.push((format!("{name}.beta"), grad_values(norm.beta.val(), grads)));
        }
    }
    out
}

fn grad_values<const D: usize>(tensor: Tensor<D>, grads: &Gradients) -> Vec<f32> {
    common::values(
        tensor
            .grad(grads)
            .expect("every parameter takes part in the loss"),
    )
}

/// Running statistics of every batch norm, by name.
fn running_stats(block: &NinBlock) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (name, layer) in [
        ("conv", &block.conv),
        ("mlp1", &block.mlp1),
        ("mlp2", &block.mlp2),
    ] {
        if let Some(norm) = &layer.norm {
            out.push((
                format!("{name}.mean"),
                common::values(norm.running_mean.value_sync()),
            ));
            out.push((
                format!("{name}.var"),
                common::values(norm.running_var.value_sync()),
            ));
        }
    }
    out
}

struct Pass {
    output: Vec<f32>,
    input_grad: Vec<f32>,
    param_grads: Vec<(String, Vec<f32>)>,
    running: Vec<(String, Vec<f32>)>,
}

/// Forward with `forward`, then the gradient of a weighted sum of the output (weights fixed,
/// so every output element gets its own upstream gradient).
fn pass(
    block: &NinBlock,
    input: &Tensor<4>,
    upstream: &Tensor<4>,
    forward: impl Fn(&NinBlock, Tensor<4>) -> Tensor<4>,
) -> Pass {
    let input = input.clone().require_grad();
    let output = forward(block, input.clone());
    let grads = (output.clone() * upstream.clone()).sum().backward();
    Pass {
        output: common::values(output),
        input_grad: grad_values(input, &grads),
        param_grads: parameter_grads(block, &grads),
        running: running_stats(block),
    }
}

fn assert_close(test: &str, what: &str, fast: &[f32], plain: &[f32]) {
    assert_eq!(fast.len(), plain.len(), "{what}: lengths differ");
    let scale = plain.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let diff = common::max_abs_diff(fast, plain);
    assert!(
        diff <= TOLERANCE * scale,
        "{test}: {what}: fast path differs by {diff:.2e} (values up to {scale:.2e})"
    );
}

fn assert_fast_path_matches(test: &str, config: NinBlockConfig, input_shape: [usize; 4]) {
    for (backend, device) in common::backends(test) {
        let device: Device = device.autodiff();
        device.seed(11);
        let block = config.init(&device);
        // A twin with the same weights, so each path updates running statistics of its own.
        let twin = config
            .init(&device)
            .load_record(block.clone().into_record());
        let input = Tensor::<4>::random(input_shape, Distribution::Normal(0.5, 1.0), &device);
        let [batch, _, height, width] = input_shape;
        let side = |s: usize| (s + 2 * config.padding - config.kernel_size) / config.stride + 1;
        let upstream = Tensor::<4>::random(
            [batch, config.layer_channels()[2], side(height), side(width)],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        );

        let fast = pass(&block, &input, &upstream, NinBlock::forward);
        let plain = pass(&twin, &input, &upstream, common::reference::block);

        assert!(fast.output.iter().any(|v| *v > 0.0), "degenerate output");
        assert_close(test, "output", &fast.output, &plain.output);
        assert_close(test, "input gradient", &fast.input_grad, &plain.input_grad);
        assert_eq!(fast.param_grads.len(), plain.param_grads.len());
        for ((name, f), (_, p)) in fast.param_grads.iter().zip(&plain.param_grads) {
            assert_close(test, &format!("{name} gradient"), f, p);
        }
        for ((name, f), (_, p)) in fast.running.iter().zip(&plain.running) {
            assert_close(test, &format!("running {name}"), f, p);
        }
        println!(
            "{test}: {backend}: output, input gradient, {} parameter gradients and {} running \
             statistics match",
            fast.param_grads.len(),
            fast.running.len()
        );
    }
}

/// The three block configurations one after the other, in one test: they share layer shapes, so
/// each GPU kernel is compiled and tuned once for all three. As three tests side by side, each
/// compiled and tuned its own (182 to 295 s each from cold on lavapipe, docs/ci.md).
#[test]
fn fast_path_matches_plain_in_every_block_configuration() {
    assert_fast_path_matches(
        "fast_path_plain",
        NinBlockConfig::new(8, 16, 3).with_padding(1),
        [4, 8, 10, 10],
    );
    assert_fast_path_matches(
        "fast_path_bn",
        NinBlockConfig::new(8, 16, 3)
            .with_padding(1)
            .with_batch_norm(true),
        [4, 8, 10, 10],
    );
    // Stride 2 and MLP widths of its own.
    assert_fast_path_matches(
        "fast_path_stride",
        NinBlockConfig::new(3, 12, 5)
            .with_stride(2)
            .with_mlp_channels(Some([10, 6]))
            .with_batch_norm(true),
        [3, 3, 17, 17],
    );
}

/// In inference a convolution and its batch norm run as one convolution with folded weights;
/// its output must equal burn's convolution, then `BatchNorm` with running statistics, then ReLU.
#[test]
fn folded_norm_matches_plain_in_inference() {
    let test = "folded_norm";
    let config = NinBlockConfig::new(3, 12, 5)
        .with_stride(2)
        .with_mlp_channels(Some([10, 6]))
        .with_batch_norm(true);
    for (backend, device) in common::backends(test) {
        let training: Device = device.clone().autodiff();
        training.seed(5);
        let block = config.init(&training);
        // A few training passes move the running statistics away from 0 and 1.
        for _ in 0..3 {
            let input =
                Tensor::<4>::random([4, 3, 17, 17], Distribution::Normal(2.0, 3.0), &training);
            let _ = block.forward(input);
        }
        let block = block.valid();
        let running = running_stats(&block);
        assert!(
            running
                .iter()
                .any(|(_, v)| v.iter().any(|x| (x - 1.0).abs() > 0.1 && x.abs() > 0.1)),
            "running statistics did not move"
        );
        let input = Tensor::<4>::random([4, 3, 17, 17], Distribution::Normal(2.0, 3.0), &device);
        let folded = common::values(block.forward(input.clone()));
        let plain = common::values(common::reference::block(&block, input));
        assert!(folded.iter().any(|v| *v > 0.0), "degenerate output");
        assert_close(test, "inference output", &folded, &plain);
        println!("{test}: {backend}: folded convolution and batch norm match the plain path");
    }
}

/// Logits and every parameter's gradient of a whole network, through `forward` or
/// the reference.
fn model_pass(
    model: &Nin,
    images: &Tensor<4>,
    forward: impl Fn(&Nin, Tensor<4>) -> Tensor<2>,
) -> (Vec<f32>, Vec<(String, Vec<f32>)>) {
    let logits = forward(model, images.clone());
    // A loss that weighs each logit differently, so that no gradient cancels by symmetry.
    let [batch, classes] = logits.dims();
    let weights: Vec<f32> = (0..batch * classes)
        .map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0)
        .collect();
    let weights =
        Tensor::<1>::from_floats(weights.as_slice(), &images.device()).reshape([batch, classes]);
    let grads = (logits.clone() * weights).sum().backward();
    let params = model
        .blocks
        .iter()
        .enumerate()
        .flat_map(|(i, block)| {
            parameter_grads(block, &grads)
                .into_iter()
                .map(move |(name, g)| (format!("blocks.{i}.{name}"), g))
        })
        .collect();
    (common::values(logits), params)
}

/// The presets end to end on flex: `Nin::forward` (the crate's kernels) and
/// `common::reference::network` (burn's modules) give the same logits and parameter gradients.
#[test]
fn whole_presets_match_the_reference_on_flex() {
    let test = "whole_presets";
    let device: Device = nin::backend::device("flex")
        .expect("flex is a default feature")
        .autodiff();
    // Dropout off: the comparison is about the layers, and a mask drawn twice would differ.
    let presets = [
        ("d2l", NinConfig::d2l(10), [2, 1, 224, 224]),
        ("compact", NinConfig::compact(10), [6, 1, 28, 28]),
        (
            "compact + batch norm",
            NinConfig::compact(10).with_batch_norm(true),
            [6, 1, 28, 28],
        ),
    ];
    for (name, config, shape) in presets {
        let config = config.with_dropout(0.0);
        device.seed(21);
        let model = config.init(&device);
        let twin = config
            .init(&device)
            .load_record(model.clone().into_record());
        let images = common::pattern_images(shape, &device);
        let (logits, grads) = model_pass(&model, &images, Nin::forward);
        let (ref_logits, ref_grads) = model_pass(&twin, &images, |m, x| {
            common::reference::network(m, x).expect("the presets take their own input size")
        });
        assert_close(test, &format!("{name} logits"), &logits, &ref_logits);
        assert_eq!(grads.len(), ref_grads.len());
        for ((param, g), (_, r)) in grads.iter().zip(&ref_grads) {
            assert!(
                r.iter().any(|v| *v != 0.0),
                "{name}: {param}: zero reference gradient"
            );
            assert_close(test, &format!("{name} {param} gradient"), g, r);
        }
        println!(
            "{test}: {name}: logits and {} parameter gradients match",
            grads.len()
        );
    }
}
