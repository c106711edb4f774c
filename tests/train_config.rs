//! The training configuration, the metrics file and the training curve, without data.
#![cfg(feature = "train")]

use nin::train::{
    EpochMetrics, METRICS_CSV_HEADER, Optimizer, Preset, Schedule, TrainError, TrainingConfig,
    metrics_csv, training_svg,
};

fn row(epoch: usize, loss: f64) -> EpochMetrics {
    EpochMetrics {
        epoch,
        train_loss: loss,
        train_accuracy: 0.5 + epoch as f64 / 100.0,
        test_loss: loss * 1.1,
        test_accuracy: 0.6 + epoch as f64 / 100.0,
        learning_rate: 1e-3,
        images_per_second: 312.5,
    }
}

#[test]
fn d2l_preset_is_the_reference_recipe() {
    let config = TrainingConfig::preset(Preset::D2l);
    assert_eq!(config.model, nin::NinConfig::d2l(10));
    assert_eq!((config.epochs, config.batch_size), (10, 128));
    assert_eq!(
        config.optimizer,
        Optimizer::Sgd {
            lr: 0.1,
            momentum: None,
            weight_decay: None
        }
    );
    assert_eq!(config.schedule, Schedule::Constant);
    assert_eq!((config.normalize, config.augment), (None, None));
    let model = config.model.init(&burn::tensor::Device::flex());
    assert_eq!(burn::module::Module::num_params(&model), 1_992_166);
}

#[test]
fn configs_round_trip_through_json_and_presets_by_name() {
    for preset in Preset::ALL {
        let config = TrainingConfig::preset(preset);
        config.validate().unwrap();
        let text = serde_json::to_string_pretty(&config).unwrap();
        let back: TrainingConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
        assert_eq!(preset.name().parse::<Preset>(), Ok(preset));
    }
    assert!("alexnet".parse::<Preset>().is_err());
    // A config.json written before `frozen_blocks` existed reads as freezing nothing.
    let mut old = serde_json::to_value(TrainingConfig::preset(Preset::Compact)).unwrap();
    old.as_object_mut()
        .unwrap()
        .remove("frozen_blocks")
        .unwrap();
    let read: TrainingConfig = serde_json::from_value(old).unwrap();
    assert_eq!(read.frozen_blocks, 0);
}

#[test]
fn invalid_values_are_named() {
    let base = TrainingConfig::preset(Preset::Compact);
    let cases = [
        (
            TrainingConfig {
                epochs: 0,
                ..base.clone()
            },
            "epochs",
        ),
        (
            TrainingConfig {
                batch_size: 0,
                ..base.clone()
            },
            "batch size",
        ),
        (
            TrainingConfig {
                optimizer: base.optimizer.with_lr(f64::NAN),
                ..base.clone()
            },
            "learning rate",
        ),
        (
            TrainingConfig {
                optimizer: base.optimizer.with_lr(2.0),
                ..base.clone()
            },
            "learning rate",
        ),
        (
            TrainingConfig {
                normalize: Some((0.5, 0.0)),
                ..base.clone()
            },
            "normalize",
        ),
        (
            TrainingConfig {
                train_limit: Some(0),
                ..base.clone()
            },
            "train limit",
        ),
        (
            TrainingConfig {
                frozen_blocks: base.model.blocks.len(),
                ..base.clone()
            },
            "frozen blocks",
        ),
        (
            TrainingConfig {
                model: nin::NinConfig::new(vec![]),
                ..base.clone()
            },
            "model",
        ),
    ];
    for (config, named) in cases {
        let err = config.validate().unwrap_err();
        if named == "model" {
            // The network's own error, typed, so a caller can match on it.
            assert!(
                matches!(err, TrainError::Model(nin::ConfigError::NoBlocks)),
                "{err}"
            );
        } else {
            assert!(matches!(err, TrainError::Config(_)), "{err}");
        }
        assert!(err.to_string().contains(named), "{named}: {err}");
    }
}

#[test]
fn metrics_csv_round_trips_and_rejects_damage() {
    let rows = vec![row(1, 0.9), row(2, 0.5), row(3, 0.4)];
    let text = metrics_csv(&rows);
    assert!(text.starts_with(METRICS_CSV_HEADER));
    let back = EpochMetrics::parse_csv(&text).unwrap();
    assert_eq!(back.len(), 3);
    for (a, b) in back.iter().zip(&rows) {
        assert_eq!(a.epoch, b.epoch);
        assert!((a.train_loss - b.train_loss).abs() < 1e-6);
        assert!((a.test_accuracy - b.test_accuracy).abs() < 1e-6);
    }
    assert!(EpochMetrics::parse_csv("epoch,loss\n1,2\n").is_err());
    let truncated = text.replace(",312.5\n", ",\n");
    let err = EpochMetrics::parse_csv(&truncated).unwrap_err();
    assert!(err.to_string().contains("row 2"), "{err}");
}

#[test]
fn the_training_curve_has_the_three_series() {
    let svg = training_svg(&[row(1, 1.2), row(2, 0.6), row(3, 0.45)], "test run").unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
    for label in ["train loss", "train acc", "test acc", "epoch", "test run"] {
        assert!(svg.contains(label), "{label} missing");
    }
    // A non-finite value (a diverged epoch) is left out rather than breaking the picture.
    training_svg(&[row(1, f64::NAN), row(2, 0.6)], "nan").unwrap();
}
