//! The presets against the reference: parameter counts, stage shapes, weight initialisation,
//! the errors for configurations and inputs the model cannot take, and the features and new
//! last block that transfer learning uses.

use crate::common;

use burn::module::Module;
use burn::tensor::Tensor;
use nin::{ConfigError, NinBlockConfig, NinConfig, ShapeError, Stage};

fn flex() -> burn::tensor::Device {
    nin::backend::device("flex").unwrap()
}

/// Parameters of a square convolution with bias, counted by hand.
fn conv(cin: usize, cout: usize, k: usize) -> usize {
    cin * cout * k * k + cout
}

/// Parameters of a NiN block with 1×1 widths `m1`, `m2`, counted by hand.
fn block(cin: usize, cout: usize, k: usize, m1: usize, m2: usize) -> usize {
    conv(cin, cout, k) + conv(cout, m1, 1) + conv(m1, m2, 1)
}

#[test]
fn d2l_has_the_reference_parameter_count() {
    let model = NinConfig::d2l(10).init(&flex());
    assert_eq!(model.num_params(), 1_992_166);
    assert_eq!(model.num_classes(), 10);
    assert_eq!(model.in_channels(), 1);
}

#[test]
fn d2l_stage_shapes_match_the_reference_printout() {
    // d2l prints these for X = torch.rand(size=(1, 1, 224, 224)).
    let expected = [
        (Stage::Block(0), [1, 96, 54, 54]),
        (Stage::MaxPool(0), [1, 96, 26, 26]),
        (Stage::Block(1), [1, 256, 26, 26]),
        (Stage::MaxPool(1), [1, 256, 12, 12]),
        (Stage::Block(2), [1, 384, 12, 12]),
        (Stage::MaxPool(2), [1, 384, 5, 5]),
        (Stage::Dropout, [1, 384, 5, 5]),
        (Stage::Block(3), [1, 10, 5, 5]),
        (Stage::GlobalAvgPool, [1, 10, 1, 1]),
    ];
    let device = flex();
    let model = NinConfig::d2l(10).init(&device);
    let mut observed = Vec::new();
    let logits = model
        .forward_observed(Tensor::zeros([1, 1, 224, 224], &device), |stage, x| {
            observed.push((stage, x.dims()))
        })
        .unwrap();
    assert_eq!(observed, expected);
    assert_eq!(logits.dims(), [1, 10]);
    assert_eq!(model.stage_shapes([1, 1, 224, 224]).unwrap(), expected);
}

/// Output side of a square window, computed here independently of the crate.
fn side(input: usize, k: usize, s: usize, p: usize) -> usize {
    (input + 2 * p - k) / s + 1
}

/// FLOPs of one NiN block (2 per multiply-add) on an `out`×`out` output, counted by hand.
fn block_flops(out: u64, cin: u64, cout: u64, k: u64) -> u64 {
    2 * out * out * (cin * cout * k * k + 2 * cout * cout)
}

#[test]
fn forward_flops_are_the_convolutions_multiply_adds() {
    // d2l: 54×54, 26×26, 12×12 and 5×5 block outputs for a 224×224 image.
    let d2l = NinConfig::d2l(10).init(&flex());
    let expected = block_flops(54, 1, 96, 11)
        + block_flops(26, 96, 256, 5)
        + block_flops(12, 256, 384, 3)
        + block_flops(5, 384, 10, 3);
    assert_eq!(d2l.forward_flops([1, 224, 224]), Ok(expected));
    assert_eq!(expected, 1_524_594_704);
    // The compact preset's doc says about 21 MFLOPs.
    let compact = NinConfig::compact(10).init(&flex());
    let flops = compact.forward_flops([1, 28, 28]).unwrap();
    assert!((21_000_000..21_500_000).contains(&flops), "{flops}");
    // FLOPs grow with the image, and a shape the network cannot take is the usual error.
    assert!(d2l.forward_flops([1, 256, 256]).unwrap() > expected);
    assert!(matches!(
        d2l.forward_flops([3, 224, 224]),
        Err(ShapeError::Channels { .. })
    ));
}

#[test]
fn compact_preset_fits_28x28_with_the_expected_size() {
    let config = NinConfig::compact(10);
    assert_eq!(config.input_size, Some([28, 28]));
    let device = flex();
    let model = config.init(&device);
    let params = block(1, 32, 5, 32, 32)
        + block(32, 64, 3, 64, 64)
        + block(64, 128, 3, 128, 128)
        + block(128, 10, 3, 10, 10);
    assert_eq!(model.num_params(), params);

    let s0 = side(28, 5, 1, 2);
    let p0 = side(s0, 3, 2, 0);
    let s1 = side(p0, 3, 1, 1);
    let p1 = side(s1, 3, 2, 0);
    let s2 = side(p1, 3, 1, 1);
    let p2 = side(s2, 3, 2, 0);
    let s3 = side(p2, 3, 1, 1);
    let shapes = model.stage_shapes([2, 1, 28, 28]).unwrap();
    let expected = [
        [2, 32, s0, s0],
        [2, 32, p0, p0],
        [2, 64, s1, s1],
        [2, 64, p1, p1],
        [2, 128, s2, s2],
        [2, 128, p2, p2],
        [2, 128, p2, p2],
        [2, 10, s3, s3],
        [2, 10, 1, 1],
    ];
    assert_eq!(shapes.iter().map(|(_, s)| *s).collect::<Vec<_>>(), expected);
    let logits = model.forward(common::pattern_images([2, 1, 28, 28], &device));
    assert_eq!(logits.dims(), [2, 10]);
}

#[test]
fn cifar10_preset_is_the_papers_network() {
    let device = flex();
    let model = NinConfig::cifar10().init(&device);
    let params =
        block(3, 192, 5, 160, 96) + block(96, 192, 5, 192, 192) + block(192, 192, 3, 192, 10);
    assert_eq!(model.num_params(), params);
    assert_eq!(model.num_classes(), 10);

    let mut observed = Vec::new();
    let logits = model
        .forward_observed(
            common::pattern_images([2, 3, 32, 32], &device),
            |stage, x| observed.push((stage, x.dims())),
        )
        .unwrap();
    let p0 = side(32, 3, 2, 0);
    let p1 = side(p0, 3, 2, 0);
    assert_eq!(
        observed,
        [
            (Stage::Block(0), [2, 96, 32, 32]),
            (Stage::MaxPool(0), [2, 96, p0, p0]),
            (Stage::Block(1), [2, 192, p0, p0]),
            (Stage::MaxPool(1), [2, 192, p1, p1]),
            (Stage::Dropout, [2, 192, p1, p1]),
            (Stage::Block(2), [2, 10, p1, p1]),
            (Stage::GlobalAvgPool, [2, 10, 1, 1]),
        ]
    );
    assert_eq!(logits.dims(), [2, 10]);
}

#[test]
fn weights_are_xavier_uniform_and_biases_pytorch_default() {
    let device = flex();
    device.seed(7);
    let model = NinConfig::d2l(10).init(&device);
    let conv = &model.blocks[1].conv.conv;
    // fan_in = 96·5·5, fan_out = 256·5·5 for the second block's 5×5 convolution.
    let (fan_in, fan_out) = (96.0 * 25.0, 256.0 * 25.0);
    let bound = (6.0f32 / (fan_in + fan_out)).sqrt();
    let weights = common::values(conv.weight.val());
    assert!(weights.iter().all(|w| w.abs() <= bound));
    // A uniform on [-a, a] has variance a²/3: the draws must fill the range, not a narrow part.
    let var = weights.iter().map(|w| w * w).sum::<f32>() / weights.len() as f32;
    let expected = bound * bound / 3.0;
    assert!(
        (var / expected - 1.0).abs() < 0.02,
        "variance {var}, expected {expected}"
    );

    let bias_bound = 1.0 / fan_in.sqrt();
    let bias = common::values(conv.bias.as_ref().unwrap().val());
    assert!(bias.iter().all(|b| b.abs() <= bias_bound));
    assert!(
        bias.iter().any(|b| b.abs() > bias_bound / 2.0),
        "bias not drawn from ±1/sqrt(fan_in)"
    );
}

#[test]
fn distinct_mlp_widths_and_batch_norm() {
    let device = flex();
    let config = NinBlockConfig::new(3, 16, 3)
        .with_padding(1)
        .with_mlp_channels(Some([12, 8]))
        .with_batch_norm(true);
    assert_eq!(config.layer_channels()[2], 8);
    let block = config.init(&device);
    assert!(
        block.conv.conv.bias.is_none(),
        "batch norm replaces the conv bias"
    );
    assert!(block.mlp2.norm.is_some());
    // Convolutions without bias, plus gamma, beta and the running mean and variance of each batch
    // norm (Burn counts the running statistics, PyTorch keeps them as buffers).
    let expected = 3 * 16 * 9 + 16 * 12 + 12 * 8 + 4 * (16 + 12 + 8);
    assert_eq!(block.num_params(), expected);
    let out = block.forward(common::pattern_images([2, 3, 10, 10], &device));
    assert_eq!(out.dims(), [2, 8, 10, 10]);
    // ReLU comes last: no negative outputs.
    assert!(common::values(out).iter().all(|v| *v >= 0.0));
}

#[test]
fn wrong_channel_count_is_a_clear_error() {
    let device = flex();
    let model = NinConfig::compact(10).init(&device);
    let err = model
        .try_forward(Tensor::zeros([2, 3, 28, 28], &device))
        .unwrap_err();
    assert_eq!(
        err,
        ShapeError::Channels {
            shape: [2, 3, 28, 28],
            expected: 1
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("[2, 3, 28, 28]") && message.contains("[N, 1, H, W]"),
        "{message}"
    );
    assert!(message.contains("grayscale"), "{message}");
}

#[test]
fn too_small_input_names_the_stage_and_the_minimum() {
    let device = flex();
    let model = NinConfig::d2l(10).init(&device);
    let min = model.min_input_side();
    // Independently: the smallest side for which every stage of d2l's network has output ≥ 1.
    let fits = |n: usize| {
        n >= 11 && {
            let s = side(n, 11, 4, 0);
            s >= 3 && {
                let s = side(side(s, 3, 2, 0), 5, 1, 2);
                s >= 3 && side(side(s, 3, 2, 0), 3, 1, 1) >= 3
            }
        }
    };
    let brute = (1..300).find(|n| fits(*n)).unwrap();
    assert_eq!(min, brute);
    assert!(model.check_input([1, 1, min, min]).is_ok());

    let err = model.check_input([1, 1, min - 1, min]).unwrap_err();
    match &err {
        ShapeError::TooSmall {
            min_size,
            designed_for,
            ..
        } => {
            assert_eq!(*min_size, [min, min]);
            assert_eq!(*designed_for, Some([224, 224]));
        }
        other => panic!("expected TooSmall, got {other:?}"),
    }
    let err = model.check_input([4, 1, 28, 28]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("[4, 1, 28, 28]"), "{message}");
    assert!(
        message.contains(&format!("at least {min}×{min}")),
        "{message}"
    );
    assert!(message.contains("224×224"), "{message}");
}

#[test]
fn empty_batch_is_rejected() {
    let model = NinConfig::compact(10).init(&flex());
    assert_eq!(
        model.check_input([0, 1, 28, 28]),
        Err(ShapeError::EmptyBatch {
            shape: [0, 1, 28, 28]
        })
    );
}

#[test]
#[should_panic(expected = "expected [N, 1, H, W]")]
fn forward_panics_with_the_shape_message() {
    let device = flex();
    let model = NinConfig::compact(10).init(&device);
    let _ = model.forward(Tensor::zeros([1, 2, 28, 28], &device));
}

#[test]
fn invalid_configurations_are_reported() {
    assert_eq!(
        NinConfig::new(vec![]).validate(),
        Err(ConfigError::NoBlocks)
    );

    let mismatch = NinConfig::new(vec![
        NinBlockConfig::new(1, 16, 3),
        NinBlockConfig::new(8, 10, 3),
    ]);
    let err = mismatch.validate().unwrap_err();
    assert_eq!(
        err,
        ConfigError::ChannelMismatch {
            block: 1,
            in_channels: 8,
            previous_out: 16
        }
    );
    assert!(err.to_string().contains("set its `in_channels` to 16"));

    let zero = NinConfig::new(vec![NinBlockConfig::new(1, 16, 3).with_stride(0)]);
    assert_eq!(
        zero.validate(),
        Err(ConfigError::Zero {
            block: 0,
            field: "stride"
        })
    );

    let dropout = NinConfig::compact(10).with_dropout(1.0);
    assert_eq!(dropout.validate(), Err(ConfigError::Dropout(1.0)));

    assert!(NinConfig::d2l(10).validate().is_ok());
    assert!(NinConfig::cifar10().validate().is_ok());
}

#[test]
fn config_round_trips_through_json() {
    let config = NinConfig::cifar10().with_dropout(0.3);
    let json = serde_json::to_string(&config).unwrap();
    let back: NinConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
}

#[test]
fn features_are_the_maps_the_last_block_reads_and_pool_to_their_means() {
    let cases = [
        (NinConfig::compact(10).with_batch_norm(true), [3, 1, 28, 28]),
        (NinConfig::cifar10(), [2, 3, 32, 32]),
    ];
    for (config, shape) in cases {
        let device = flex();
        let model = config.init(&device);
        let images = common::pattern_images(shape, &device);
        // What the stage before dropout puts out, seen from the layer-by-layer run.
        let mut seen = None;
        model
            .forward_observed(images.clone(), |stage, maps| {
                if stage == Stage::MaxPool(model.blocks.len() - 2) {
                    seen = Some(maps.clone());
                }
            })
            .unwrap();
        let seen = seen.expect("the last max pool ran");
        let features = model.forward_features(images.clone()).unwrap();
        assert_eq!(features.dims(), seen.dims());
        assert_eq!(
            features.dims()[1],
            model.blocks[model.blocks.len() - 2].layer_channels()[2]
        );
        let features_values = common::values(features.clone());
        assert_eq!(
            common::max_abs_diff(&features_values, &common::values(seen)),
            0.0
        );

        // Pooled: on flex in inference the one-call path, against the maps' means.
        let [n, c, _, _] = features.dims();
        let means = common::values(features.mean_dim(3).mean_dim(2).reshape([n, c]));
        let pooled = model.forward_pooled_features(images.clone()).unwrap();
        assert_eq!(pooled.dims(), [n, c]);
        let largest = common::max_abs_diff(&common::values(pooled), &means);
        assert!(
            largest < 1e-4,
            "{shape:?}: pooled features off the means by {largest}"
        );
        // And the logits still come from the whole network after the features' plan.
        let logits = common::values(model.forward(images.clone()));
        let reference = common::values(common::reference::network(&model, images).expect("fits"));
        assert!(common::max_abs_diff(&logits, &reference) < 1e-4);
    }
}

#[test]
fn with_classes_gives_a_new_last_block_and_keeps_every_other_weight() {
    let device = flex();
    // d2l-style last block (all three widths are the classes) and the paper's CIFAR one (only
    // the last 1×1 layer's).
    let cases = [
        (NinConfig::compact(10), [5, 5, 5]),
        (NinConfig::cifar10(), [192, 192, 5]),
    ];
    for (config, widths) in cases {
        let model = config.init(&device);
        let tuned = model.clone().with_classes(5, &device);
        assert_eq!(tuned.num_classes(), 5);
        let last = tuned.blocks.len() - 1;
        assert_eq!(tuned.blocks[last].layer_channels(), widths);
        assert_eq!(
            tuned.num_params(),
            config.with_num_classes(5).init(&device).num_params()
        );
        for (before, after) in model.blocks[..last].iter().zip(&tuned.blocks[..last]) {
            assert_eq!(common::block_weights(before), common::block_weights(after));
        }
        let [kernel, stride, padding] = [
            tuned.blocks[last].kernel_size(),
            tuned.blocks[last].stride(),
            tuned.blocks[last].padding(),
        ];
        let old = &model.blocks[last];
        assert_eq!(
            [kernel, stride, padding],
            [old.kernel_size(), old.stride(), old.padding()]
        );
        let images = Tensor::<4>::zeros([2, tuned.in_channels(), 32, 32], &device);
        let logits = tuned.forward(images);
        assert_eq!(logits.dims(), [2, 5]);
    }
}
