//! Data-parallel training on several devices through burn-train's multi-device strategy: two
//! wgpu devices on one adapter (lavapipe here) reach the accuracy of one, a resumed
//! two-device run continues, and device lists that cannot work are refused before anything is
//! written.
#![cfg(feature = "train")]

use crate::common;

use burn::data::dataset::InMemDataset;
use burn::tensor::Device;
use nin::NinConfig;
use nin::train::{
    ArtifactDir, Preset, Progress, Strategy, TrainError, TrainOptions, Trained, TrainingConfig,
};

const CLASSES: usize = 4;

/// The same global batch of 32 on any number of devices: each takes `32 / devices` images per
/// step, so one device and two take the same steps of the same size.
fn config(devices: usize, epochs: usize) -> TrainingConfig {
    TrainingConfig {
        model: NinConfig::compact(CLASSES)
            .with_batch_norm(true)
            .with_dropout(0.1),
        epochs,
        batch_size: 32 / devices,
        workers: 1,
        ..TrainingConfig::preset(Preset::Compact)
    }
}

fn options(dir: &std::path::Path, resume: bool) -> TrainOptions {
    TrainOptions {
        resume,
        class_names: (0..CLASSES).map(|c| c.to_string()).collect(),
        ..TrainOptions::new(dir)
    }
}

fn run(
    config: &TrainingConfig,
    devices: &[Device],
    dir: &std::path::Path,
    resume: bool,
) -> Result<Trained, TrainError> {
    nin::train::train(
        config,
        InMemDataset::new(common::striped(256, CLASSES, 1)),
        InMemDataset::new(common::striped(128, CLASSES, 2)),
        devices,
        &options(dir, resume),
    )
}

/// Two distinct wgpu devices, or `None` after reporting why there are none.
fn two_wgpu_devices(test: &str) -> Option<Vec<Device>> {
    common::wgpu(test)?;
    match nin::backend::devices("wgpu:default,wgpu:cpu") {
        Ok(devices) => Some(devices),
        Err(err) => {
            common::unavailable(
                test,
                "two wgpu devices",
                "NIN_REQUIRE_WGPU",
                &err.to_string(),
            );
            None
        }
    }
}

#[test]
fn two_wgpu_devices_learn_as_one_does_and_resume() {
    let test = "two_wgpu_devices_learn_as_one_does_and_resume";
    let Some(devices) = two_wgpu_devices(test) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let one = run(
        &config(1, 2),
        &devices[..1],
        &root.path().join("one"),
        false,
    )
    .unwrap();

    // Two devices: stopped after one epoch, then resumed from the checkpoint to two (each
    // epoch on lavapipe costs about half a minute).
    let two_dir = root.path().join("two");
    let first = run(&config(2, 1), &devices, &two_dir, false).unwrap();
    assert_eq!(first.metrics.len(), 1);
    let two = run(&config(2, 2), &devices, &two_dir, true).unwrap();
    let epochs: Vec<usize> = two.metrics.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [1, 2]);

    // The last epoch's training accuracy is compared: 0.96-1.0 after two epochs in runs of
    // this test (0.72-0.78 after one). The test accuracy is not: after so few steps it hangs on
    // batch norm's running statistics, which lag the weights (runs of this test have scored
    // 0.25, chance, on the test images with a training accuracy of 1.0).
    let last = |trained: &Trained| trained.metrics.last().unwrap().train_accuracy;
    let (a, b) = (last(&one), last(&two));
    println!(
        "{test}: training accuracy of the last epoch: one device {a:.4}, two devices (resumed \
         after epoch 1) {b:.4} (chance 0.25); test accuracy {:.4} and {:.4}",
        one.report.test_accuracy, two.report.test_accuracy
    );
    assert!(a > 0.9 && b > 0.9, "one device {a}, two devices {b}");
    assert!((a - b).abs() < 0.1, "one device {a}, two devices {b}");
    // The report names both devices.
    assert_eq!(
        two.report.backend.matches("WgpuDevice").count(),
        2,
        "{}",
        two.report.backend
    );
    // Resuming it on one device would split the data differently: refused.
    let err = run(&config(1, 3), &devices[..1], &two_dir, true).unwrap_err();
    assert!(err.to_string().contains("devices: 2 -> 1"), "{err}");
}

#[test]
fn device_lists_that_cannot_work_are_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let flex = Device::flex();
    let cases: [(TrainingConfig, Vec<Device>, Strategy, &str); 3] = [
        (
            config(2, 1),
            vec![flex.clone(), flex.clone()],
            Strategy::Multi,
            "listed twice",
        ),
        (config(1, 1), vec![flex.clone()], Strategy::Ddp, "CUDA"),
        (config(1, 1), Vec::new(), Strategy::Multi, "empty"),
    ];
    for (config, devices, strategy, expected) in cases {
        let err = nin::train::train(
            &config,
            InMemDataset::new(common::striped(8, CLASSES, 1)),
            InMemDataset::new(common::striped(8, CLASSES, 2)),
            &devices,
            &TrainOptions {
                strategy,
                ..options(&dir, false)
            },
        )
        .unwrap_err();
        println!("{err}");
        assert!(matches!(err, TrainError::Config(_)), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!dir.exists(), "nothing may be written");
    }
    assert!(ArtifactDir::new(&dir).read_report().is_err());
    // The same device twice in a list, and a list naming nothing.
    for spec in ["flex,flex", "flex,", "wgpu:seven", "tpu:0"] {
        let err = nin::backend::devices(spec).unwrap_err();
        println!("{err}");
    }
}

#[test]
fn progress_is_the_default_for_options() {
    assert_eq!(TrainOptions::new("x").progress, Progress::Lines);
}
