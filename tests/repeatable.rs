//! Runs that repeat on flex: one seed gives one model, byte for byte, run after run and with or
//! without worker threads building the batches; and a run stopped inside an epoch and resumed
//! ends with the model and the metrics of the run that was never stopped.
#![cfg(feature = "train")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::data::dataset::{Dataset, DatasetError, InMemDataset};
use burn::tensor::Device;
use nin::data::{Augment, ImageItem};
use nin::train::{Optimizer, Preset, Progress, Schedule, TrainError, TrainOptions, TrainingConfig};

use crate::common;

const CLASSES: usize = 4;
const TRAIN_IMAGES: usize = 96;
const BATCH: usize = 16;

/// Everything that draws random numbers in a run is on: the weights, the shuffle, the
/// augmentation (shifts and flips) and dropout; and momentum, weight decay, a cosine schedule
/// and batch norm's running statistics carry state from step to step.
fn config(workers: usize) -> TrainingConfig {
    TrainingConfig {
        model: common::two_block_nin(CLASSES),
        epochs: 3,
        batch_size: BATCH,
        workers,
        seed: 11,
        normalize: None,
        augment: Some(Augment {
            crop_padding: 2,
            horizontal_flip: true,
            seed: 5,
        }),
        optimizer: Optimizer::Sgd {
            lr: 0.05,
            momentum: Some(0.9),
            weight_decay: Some(1e-4),
        },
        schedule: Schedule::Cosine { warmup_steps: 2 },
        ..TrainingConfig::preset(Preset::Compact)
    }
}

fn options(dir: &Path, resume: bool, stop: Option<Arc<AtomicBool>>) -> TrainOptions {
    TrainOptions {
        resume,
        stop,
        progress: Progress::Quiet,
        class_names: (0..CLASSES).map(|c| c.to_string()).collect(),
        ..TrainOptions::new(dir)
    }
}

fn train_images() -> InMemDataset<ImageItem> {
    InMemDataset::new(common::striped(TRAIN_IMAGES, CLASSES, 1))
}

fn test_images() -> InMemDataset<ImageItem> {
    InMemDataset::new(common::striped(TRAIN_IMAGES / 2, CLASSES, 2))
}

/// How a child process trains: the whole run, a run that stops in epoch 2, or a resumed one.
const WHOLE: &str = "whole";
const STOPPED: &str = "stopped";
const RESUMED: &str = "resumed";
const RUN_VAR: &str = "NIN_REPEATABLE_RUN";

/// Trains in a process of its own (this test binary again, running only [`one_run`]): flex has
/// one random generator per process, and another test drawing from it meanwhile (initialising
/// a network, dropout) would change this run's weights and masks.
fn run_alone(kind: &str, dir: &Path, workers: usize) {
    let output = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "repeatable::one_run",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(RUN_VAR, format!("{kind},{workers},{}", dir.display()))
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the {kind} run in {} failed:\n{stdout}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run_whole(dir: &Path, workers: usize) {
    run_alone(WHOLE, dir, workers);
}

/// One run, as [`run_alone`] describes it in `NIN_REPEATABLE_RUN` (`kind,workers,dir`).
#[test]
#[ignore = "one training run of the other tests here, started by them in a process of its own"]
fn one_run() {
    let spec = std::env::var(RUN_VAR).expect("started by the tests of tests/repeatable.rs");
    let mut parts = spec.splitn(3, ',');
    let (kind, workers, dir) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
        Path::new(parts.next().unwrap()),
    );
    match kind {
        WHOLE => {
            train(train_images(), dir, workers, false, None).expect("the run trains");
        }
        RESUMED => {
            train(train_images(), dir, workers, true, None).expect("the resumed run trains");
        }
        STOPPED => {
            let stop = Arc::new(AtomicBool::new(false));
            let stopping = StopInEpochTwo {
                images: train_images(),
                reads: AtomicUsize::new(0),
                stop: Arc::clone(&stop),
            };
            let err = train(stopping, dir, workers, false, Some(stop))
                .expect_err("the run stops in epoch 2");
            assert!(
                matches!(err, TrainError::Interrupted { completed: 1 }),
                "{err}"
            );
        }
        other => panic!("unknown kind of run: {other}"),
    }
}

fn train(
    train_set: impl Dataset<ImageItem> + 'static,
    dir: &Path,
    workers: usize,
    resume: bool,
    stop: Option<Arc<AtomicBool>>,
) -> Result<nin::train::Trained, TrainError> {
    nin::train::train(
        &config(workers),
        train_set,
        test_images(),
        &[Device::flex()],
        &options(dir, resume, stop),
    )
}

/// The training images, raising `stop` one batch into epoch 2 and from then on slow to give an
/// image, so that the run stops between two steps of epoch 2 (the request is passed on within
/// 20 ms), as on a Ctrl-C. Before training, the run reads every image once to check it (and
/// the first twice more); each epoch then reads each once. Should that count change, the stop
/// lands elsewhere and the run's `Interrupted { completed: 1 }` check fails.
struct StopInEpochTwo {
    images: InMemDataset<ImageItem>,
    reads: AtomicUsize,
    stop: Arc<AtomicBool>,
}

impl Dataset<ImageItem> for StopInEpochTwo {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let checks = TRAIN_IMAGES + 2;
        let into_epoch_two = checks + TRAIN_IMAGES + BATCH;
        if self.reads.fetch_add(1, Ordering::SeqCst) >= into_epoch_two {
            self.stop.store(true, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.images.get(index)
    }

    fn len(&self) -> usize {
        self.images.len()
    }
}

#[test]
fn one_seed_gives_one_model_whatever_the_threads_do() {
    let test = "one_seed_gives_one_model_whatever_the_threads_do";
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("first");
    run_whole(&first, 2);
    let expected = common::finished_run(&first);
    assert_eq!(
        expected.1.len(),
        4,
        "a header and three epochs: {:?}",
        expected.1
    );
    let again = root.path().join("again");
    run_whole(&again, 2);
    common::assert_same_run(&format!("{test}: the same seed"), &again, &expected);
    let alone = root.path().join("no-workers");
    run_whole(&alone, 0);
    common::assert_same_run(&format!("{test}: no worker threads"), &alone, &expected);
    println!(
        "{test}: three runs, {} bytes of model.bpk equal; last epoch {}",
        expected.0.len(),
        expected.1[3]
    );
}

#[test]
fn a_run_stopped_in_epoch_two_resumes_to_the_unbroken_runs_model() {
    let test = "a_run_stopped_in_epoch_two_resumes_to_the_unbroken_runs_model";
    let root = tempfile::tempdir().unwrap();
    let unbroken = root.path().join("unbroken");
    run_whole(&unbroken, 2);
    let dir = root.path().join("stopped");
    run_alone(STOPPED, &dir, 2);
    run_alone(RESUMED, &dir, 2);
    let expected = common::finished_run(&unbroken);
    common::assert_same_run(&format!("{test}: the resumed run"), &dir, &expected);
    println!(
        "{test}: stopped in epoch 2 and resumed: model.bpk and metrics equal the unbroken run's"
    );
}
