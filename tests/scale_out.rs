//! Data-parallel training on several devices through burn-train's multi-device strategy: two
//! devices take the steps one device takes on their batches together, two wgpu devices on one
//! adapter (lavapipe here) train and resume, and device lists that cannot work are refused
//! before anything is written.
#![cfg(feature = "train")]

use crate::common;

use burn::data::dataset::InMemDataset;
use burn::tensor::Device;
use nin::NinConfig;
use nin::train::{
    ArtifactDir, Optimizer, Preset, Progress, Schedule, Strategy, TrainError, TrainOptions,
    Trained, TrainingConfig,
};

const CLASSES: usize = 4;

/// The same global batch of 32 on any number of devices: each takes `32 / devices` images per
/// step.
fn config(devices: usize, epochs: usize) -> TrainingConfig {
    TrainingConfig {
        model: common::two_block_nin(CLASSES),
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

/// `config` trained on `images` striped images (and tested on half as many) on `devices`.
fn run(
    config: &TrainingConfig,
    images: usize,
    devices: &[Device],
    dir: &std::path::Path,
    resume: bool,
) -> Result<Trained, TrainError> {
    nin::train::train(
        config,
        InMemDataset::new(common::striped(images, CLASSES, 1)),
        InMemDataset::new(common::striped(images / 2, CLASSES, 2)),
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

/// Every weight and bias of `model`, block by block, as one list.
fn parameters(model: &nin::Nin) -> Vec<f32> {
    model
        .blocks
        .iter()
        .flat_map(common::block_weights)
        .collect()
}

/// Two devices, each with its half of the data, take the steps one device takes with all of
/// it: the gradients are summed across devices and the optimiser (SGD with momentum and weight
/// decay, under a cosine schedule) steps once per step. Each epoch is one step: 16 images, one
/// batch of 16 on one device, and each of two devices takes its half of the epoch's order as one
/// batch of 8. The network has no batch norm and no dropout, whose running statistics and masks
/// are per device. The devices are flex and
/// ndarray, two CPU backends, so the step is exact up to the order of float sums and costs no
/// GPU kernel compilation.
#[cfg(feature = "ndarray")]
#[test]
fn two_devices_step_as_one_device_does_on_the_whole_batch() {
    let test = "two_devices_step_as_one_device_does_on_the_whole_batch";
    let flex = Device::flex();
    let ndarray = nin::backend::device("ndarray").expect("the ndarray feature is on");
    let config = |devices: usize| TrainingConfig {
        model: NinConfig::compact(CLASSES).with_dropout(0.0),
        epochs: 3,
        batch_size: 16 / devices,
        workers: 0,
        normalize: None,
        augment: None,
        optimizer: Optimizer::Sgd {
            lr: 0.05,
            momentum: Some(0.9),
            // Large, so that decay applied once per device would show in three steps.
            weight_decay: Some(0.5),
        },
        schedule: Schedule::Cosine { warmup_steps: 1 },
        ..TrainingConfig::preset(Preset::Compact)
    };
    let root = tempfile::tempdir().unwrap();
    let train = |devices: &[Device], dir: &str| {
        let dir = root.path().join(dir);
        let trained = run(&config(devices.len()), 16, devices, &dir, false);
        parameters(&trained.expect("training runs").model)
    };
    flex.seed(config(1).seed);
    let initial = parameters(&config(1).model.init(&flex));
    let one = train(std::slice::from_ref(&flex), "one");
    let two = train(&[flex.clone(), ndarray], "two");
    let moved = common::max_abs_diff(&one, &initial);
    let difference = common::max_abs_diff(&two, &one);
    println!(
        "{test}: after 3 steps the weights moved by up to {moved:.3e} from their initial values; \
         two devices differ from one by up to {difference:.3e}"
    );
    assert!(
        moved > 1e-2,
        "the steps moved the weights by only {moved:.3e}"
    );
    assert!(
        difference <= 1e-5 * moved.max(1.0),
        "two devices differ from one device by {difference:.3e} (the steps moved the weights by \
         {moved:.3e})"
    );
}

/// Two wgpu devices (lavapipe's one adapter, twice, here) train a network with batch norm and
/// dropout, stop after one epoch, and resume on both to learn the task; resuming on one device
/// is refused. What the devices compute is held to one device by
/// [`two_devices_step_as_one_device_does_on_the_whole_batch`].
#[test]
fn two_wgpu_devices_train_and_resume() {
    let test = "two_wgpu_devices_train_and_resume";
    let Some(devices) = two_wgpu_devices(test) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // Stopped after one epoch, then resumed from the checkpoint to two (each epoch on lavapipe
    // costs about half a minute).
    let dir = root.path().join("two");
    let first = run(&config(2, 1), 256, &devices, &dir, false).unwrap();
    assert_eq!(first.metrics.len(), 1);
    let two = run(&config(2, 2), 256, &devices, &dir, true).unwrap();
    let epochs: Vec<usize> = two.metrics.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [1, 2]);

    // The last epoch's training accuracy (0.98 in a run of this test). The test accuracy is not
    // checked: after so few steps it hangs on batch norm's running statistics, which lag the
    // weights (runs have scored 0.25, chance, on the test images with a training accuracy of
    // 1.0).
    let accuracy = two.metrics.last().unwrap().train_accuracy;
    println!(
        "{test}: training accuracy of the last epoch {accuracy:.4} (chance 0.25), test accuracy \
         {:.4}",
        two.report.test_accuracy
    );
    assert!(accuracy > 0.9, "two devices, resumed: {accuracy}");
    // The report names both devices.
    assert_eq!(
        two.report.backend.matches("WgpuDevice").count(),
        2,
        "{}",
        two.report.backend
    );
    // Resuming it on one device would split the data differently: refused.
    let err = run(&config(1, 3), 256, &devices[..1], &dir, true).unwrap_err();
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
