//! Training on real Fashion-MNIST: a short run learns, an interrupted run resumes without a
//! gap, a diverging run stops with an error and leaves no model, `predict` agrees with the
//! report (from the run's files and from the weights exported in PyTorch's layout), and training
//! starts from exported weights; predictions of classes past 255 reach the evaluation and the
//! report. Skips with a reason without the data; fails instead when `NIN_REQUIRE_DATA=1`.
#![cfg(feature = "train")]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::data::dataset::InMemDataset;
use burn::module::Param;
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};
use nin::NinConfig;
use nin::data::{FashionMnist, IdxDataset, Split};
use nin::train::{
    ArtifactDir, EpochMetrics, Optimizer, Preset, Progress, Schedule, Strategy, TrainError,
    TrainOptions, Trained, TrainingConfig,
};

fn data(test: &str) -> Option<(IdxDataset, IdxDataset)> {
    let dir = common::fashion_mnist_dir(test)?;
    Some((
        FashionMnist::from_dir(&dir, Split::Train).unwrap(),
        FashionMnist::from_dir(&dir, Split::Test).unwrap(),
    ))
}

fn options(dir: &Path, resume: bool) -> TrainOptions {
    TrainOptions {
        artifact_dir: dir.to_path_buf(),
        resume,
        overwrite: false,
        progress: Progress::Lines,
        stop: None,
        class_names: nin::data::FASHION_MNIST_CLASSES
            .iter()
            .map(|c| c.to_string())
            .collect(),
        initial_model: None,
        strategy: Strategy::Multi,
    }
}

/// Trains `config` on flex into `dir`.
fn run(
    config: &TrainingConfig,
    (train_set, test_set): (IdxDataset, IdxDataset),
    dir: &Path,
    resume: bool,
) -> Result<Trained, TrainError> {
    nin::train::train(
        config,
        train_set,
        test_set,
        &[Device::flex()],
        &options(dir, resume),
    )
}

/// The compact recipe on a slice of the data, small enough for a test.
fn short(train_limit: usize, test_limit: usize, epochs: usize) -> TrainingConfig {
    TrainingConfig {
        epochs,
        train_limit: Some(train_limit),
        test_limit: Some(test_limit),
        // One loader thread keeps the batch order, and so the result, the same run to run.
        workers: 1,
        ..TrainingConfig::preset(Preset::Compact)
    }
}

use common::example;

/// The top class `predict` prints as JSON for the one input `command` names, on flex.
fn predicted_class(command: &mut Command) -> usize {
    let output = command
        .args(["--backend", "flex", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let index = printed[0]["top"][0]["index"].as_u64().unwrap();
    usize::try_from(index).unwrap()
}

#[test]
fn a_short_compact_run_learns_and_writes_every_artifact() {
    let test = "a_short_compact_run_learns_and_writes_every_artifact";
    let Some((train_set, test_set)) = data(test) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let config = short(6_000, 2_000, 1);
    let trained = run(
        &config,
        (train_set.clone(), test_set.clone()),
        root.path(),
        false,
    )
    .unwrap();
    let report = &trained.report;
    println!("{test}: test accuracy {:.4}", report.test_accuracy);
    assert!(report.test_accuracy > 0.70, "{}", report.test_accuracy);
    assert_eq!(report.test_images, 2_000);
    let confusion_total: u64 = report.confusion_matrix.iter().flatten().sum();
    assert_eq!(confusion_total, 2_000);
    assert_eq!(report.per_class_accuracy[9].class, "Ankle boot");

    let artifacts = ArtifactDir::new(root.path());
    for path in [
        artifacts.config(),
        artifacts.model(),
        artifacts.metrics(),
        artifacts.plot(),
        artifacts.report(),
    ] {
        assert!(path.is_file(), "{} is missing", path.display());
    }
    assert_eq!(artifacts.read_config().unwrap(), config);
    assert_eq!(artifacts.read_report().unwrap(), *report);
    let rows =
        EpochMetrics::parse_csv(&std::fs::read_to_string(artifacts.metrics()).unwrap()).unwrap();
    assert_eq!(rows, trained.metrics);
    assert_eq!(rows.len(), 1);
    // The epoch's own evaluation and the final one see the same model and images.
    assert!((rows[0].test_accuracy - report.test_accuracy).abs() < 1e-3);
    let svg = std::fs::read_to_string(artifacts.plot()).unwrap();
    assert!(svg.contains("test acc") && svg.contains("train loss"));

    // What `predict` prints for a test image is what the report recorded for it.
    let predict = example("predict");
    if !predict.is_file() {
        panic!(
            "{} was not built; run the tests with cargo test",
            predict.display()
        );
    }
    let index = 7;
    let from_run = predicted_class(
        Command::new(&predict)
            .args(["--index", &index.to_string(), "--artifact-dir"])
            .arg(root.path()),
    );
    assert_eq!(from_run, report.test_predictions[index]);

    // The model exported in PyTorch's layout: `predict --weights` classifies the same.
    let exported = root.path().join("exported.safetensors");
    nin::pytorch::save_safetensors(&trained.model, &exported).unwrap();
    let from_weights = predicted_class(
        Command::new(&predict)
            .args([
                "--index",
                &index.to_string(),
                "--preset",
                "compact",
                "--weights",
            ])
            .arg(&exported),
    );
    assert_eq!(from_weights, report.test_predictions[index]);

    // Training that starts from the exported weights starts where this run ended: with a
    // learning rate of ~0 the accuracy stays (a fresh start would be near chance, 0.1).
    let initial = nin::pytorch::load(config.model.init(&Device::flex()), &exported).unwrap();
    let frozen = TrainingConfig {
        optimizer: config.optimizer.with_lr(1e-12),
        ..short(256, 2_000, 1)
    };
    let again = tempfile::tempdir().unwrap();
    let restarted = nin::train::train(
        &frozen,
        train_set.clone(),
        test_set.clone(),
        &[Device::flex()],
        &TrainOptions {
            initial_model: Some(initial.clone()),
            ..options(again.path(), false)
        },
    )
    .unwrap();
    println!(
        "{test}: from the exported weights, test accuracy {:.4} (trained {:.4})",
        restarted.report.test_accuracy, report.test_accuracy
    );
    assert!((restarted.report.test_accuracy - report.test_accuracy).abs() < 0.02);
    // An initial model and resume contradict each other.
    let err = nin::train::train(
        &frozen,
        train_set,
        test_set,
        &[Device::flex()],
        &TrainOptions {
            initial_model: Some(initial),
            ..options(again.path(), true)
        },
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Config(_)), "{err}");
}

#[test]
fn an_interrupted_run_resumes_where_it_stopped() {
    let test = "an_interrupted_run_resumes_where_it_stopped";
    let Some((train_set, test_set)) = data(test) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // The first invocation stops after one epoch of two, as a killed run would have.
    let first = run(
        &short(1_000, 500, 1),
        (train_set.clone(), test_set.clone()),
        root.path(),
        false,
    )
    .unwrap();
    let artifacts = ArtifactDir::new(root.path());
    std::fs::remove_file(artifacts.model()).unwrap();
    assert_eq!(artifacts.last_checkpoint(), Some(1));

    let resumed = run(
        &short(1_000, 500, 2),
        (train_set.clone(), test_set.clone()),
        root.path(),
        true,
    )
    .unwrap();
    let epochs: Vec<usize> = resumed.metrics.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, [1, 2]);
    assert_eq!(
        resumed.metrics[0], first.metrics[0],
        "epoch 1 is kept as it was"
    );
    assert_eq!(resumed.report.epochs, 2);
    let csv = std::fs::read_to_string(artifacts.metrics()).unwrap();
    assert_eq!(EpochMetrics::parse_csv(&csv).unwrap(), resumed.metrics);

    // Resuming with other settings is refused rather than mixing two runs.
    let other = TrainingConfig {
        batch_size: 64,
        ..short(1_000, 500, 3)
    };
    let err = run(&other, (train_set, test_set), root.path(), true).unwrap_err();
    assert!(matches!(err, TrainError::Resume { .. }), "{err}");
    println!("{test}: {err}");
}

#[test]
fn a_diverging_run_stops_with_an_error_and_writes_no_model() {
    let test = "a_diverging_run_stops_with_an_error_and_writes_no_model";
    let Some((train_set, test_set)) = data(test) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    // A standard deviation this small makes lit pixels about 1e30, and all-positive weights
    // without batch norm grow them past f32's range within a few layers: the logits are +inf
    // and the first loss is NaN. (With mixed-sign weights, +inf meets -inf, and the ReLUs turn
    // the resulting NaNs into zeros, so the loss would stay finite.)
    let mut model = NinConfig::compact(10);
    for block in &mut model.blocks {
        block.initializer = Initializer::Constant { value: 1.0 };
    }
    let config = TrainingConfig {
        model,
        normalize: Some((0.0, 1e-30)),
        ..short(512, 256, 1)
    };
    let err = run(&config, (train_set, test_set), root.path(), false).unwrap_err();
    println!("{test}: {err}");
    match &err {
        TrainError::Diverged(divergence) => {
            assert_eq!((divergence.epoch, divergence.step), (1, 1));
            assert!(!divergence.loss.is_finite());
        }
        other => panic!("expected divergence, got {other}"),
    }
    assert!(err.to_string().contains("epoch 1, step 1"), "{err}");
    let artifacts = ArtifactDir::new(root.path());
    assert!(!artifacts.model().exists());
    assert_eq!(artifacts.last_checkpoint(), None);
}

/// The `fashion_mnist` example on flex for `epochs` epochs of the first `limits` training and
/// test images, into `dir`.
fn example_run(data_dir: &Path, dir: &Path, epochs: usize, limits: [usize; 2]) -> Command {
    let mut command = Command::new(example("fashion_mnist"));
    command
        .args(["--backend", "flex", "--epochs", &epochs.to_string()])
        .args(["--train-limit", &limits[0].to_string()])
        .args(["--test-limit", &limits[1].to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--artifact-dir")
        .arg(dir);
    command
}

/// Runs the example for one epoch of a few images into `dir` with stdout piped, plus `extra`.
fn run_example(data_dir: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    example_run(data_dir, dir, 1, [512, 256])
        .args(extra)
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn the_example_protects_earlier_runs_locks_its_directory_and_reports_through_a_pipe() {
    use std::os::unix::fs::PermissionsExt;

    let test = "the_example_protects_earlier_runs_locks_its_directory_and_reports_through_a_pipe";
    let Some(data_dir) = common::fashion_mnist_dir(test) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    // Without --no-tui, on a pipe: progress lines within the epoch, not only its summary.
    let first = run_example(&data_dir, &dir, &[]);
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(stdout.contains("epoch 1/1 train:"), "{stdout}");
    assert!(stdout.contains("test accuracy:"), "{stdout}");

    // Every file has the permissions of a file the user creates here.
    let ordinary = root.path().join("ordinary");
    std::fs::File::create(&ordinary).unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for name in [
        "config.json",
        "model.bpk",
        "metrics.csv",
        "training.svg",
        "report.json",
        "manifest.json",
    ] {
        assert_eq!(mode(&dir.join(name)), mode(&ordinary), "{name}");
    }

    // A second fresh run refuses and names the ways on; the first run is untouched.
    let report = std::fs::read(dir.join("report.json")).unwrap();
    let again = run_example(&data_dir, &dir, &[]);
    let stderr = text(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("--resume") && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(dir.join("report.json")).unwrap(), report);

    // While another process holds the directory, a run there is refused, naming that process.
    let artifacts = ArtifactDir::new(&dir);
    let lock = artifacts.lock().unwrap();
    let locked = run_example(&data_dir, &dir, &["--overwrite"]);
    let stderr = text(&locked.stderr);
    assert!(!locked.status.success());
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    drop(lock);

    // --overwrite replaces the run and leaves alone what no run wrote.
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let replaced = run_example(&data_dir, &dir, &["--overwrite"]);
    assert!(replaced.status.success(), "{}", text(&replaced.stderr));
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"mine");
    assert!(artifacts.read_report().is_ok());
}

/// Training and test images of the interrupted runs: enough that an epoch lasts a second in a
/// release build (so a signal lands inside it), few enough for the test profile.
const INTERRUPTED_LIMITS: [usize; 2] = [1500, 300];

/// Starts the `fashion_mnist` example for three short epochs into `dir`, waits until it
/// reports progress inside epoch 2, lets it run a little longer (a different point each time),
/// and stops it with `signal` (`KILL`, `INT` or `TERM`). Returns its exit status and what it
/// wrote to stderr.
#[cfg(unix)]
fn stop_in_epoch_two(
    data_dir: &Path,
    dir: &Path,
    signal: &str,
) -> (std::process::ExitStatus, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let mut child = example_run(data_dir, dir, 3, INTERRUPTED_LIMITS)
        .arg("--no-tui")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let in_epoch_two = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.starts_with("epoch 2/3 train:"));
    assert!(in_epoch_two, "the run ended before epoch 2");
    // Keep reading, so that the run goes on until the signal stops it.
    std::thread::spawn(move || lines.for_each(drop));
    // Somewhere in the rest of the epoch: 0 to 0.5 s more.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(std::time::Duration::from_millis(u64::from(nanos % 500)));
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    (status, errors.join().unwrap())
}

#[cfg(unix)]
#[test]
fn a_run_killed_or_interrupted_in_epoch_two_resumes_to_the_same_result() {
    let test = "a_run_killed_or_interrupted_in_epoch_two_resumes_to_the_same_result";
    let Some(data_dir) = common::fashion_mnist_dir(test) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let three_epochs = |dir: &Path, extra: &[&str]| {
        example_run(&data_dir, dir, 3, INTERRUPTED_LIMITS)
            .arg("--no-tui")
            .args(extra)
            .output()
            .unwrap()
    };
    let whole = root.path().join("whole");
    let uninterrupted = three_epochs(&whole, &[]);
    assert!(uninterrupted.status.success());
    // The first screen is a line or two, not the configuration (that is in config.json).
    let stdout = String::from_utf8_lossy(&uninterrupted.stdout);
    let before_progress = stdout
        .lines()
        .take_while(|line| !line.starts_with("epoch 1/"))
        .count();
    assert!(
        before_progress <= 3,
        "{before_progress} lines before progress:\n{stdout}"
    );
    let expected = common::finished_run(&whole);

    for signal in ["KILL", "INT", "TERM"] {
        let dir = root.path().join(signal);
        let (status, stderr) = stop_in_epoch_two(&data_dir, &dir, signal);
        assert!(!status.success(), "{signal}: {status}");
        if signal != "KILL" {
            // Stopped between steps, as the first Ctrl-C: status 1 and a word on resuming.
            assert_eq!(status.code(), Some(1), "{signal}: {status}\n{stderr}");
            assert!(stderr.contains("--resume"), "{signal}: {stderr}");
        }
        let artifacts = ArtifactDir::new(&dir);
        assert!(!artifacts.model().exists(), "{signal}: no final model yet");

        let resumed = three_epochs(&dir, &["--resume"]);
        let stdout = String::from_utf8_lossy(&resumed.stdout);
        assert!(
            resumed.status.success(),
            "{signal}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        // The epochs after the stop draw the batches, augmentation and dropout masks of the
        // unbroken run, from its model and optimiser state: the same run, to the byte.
        common::assert_same_run(&format!("{signal}: the resumed run"), &dir, &expected);
        println!(
            "{test}: {signal} in epoch 2, resumed: model.bpk and metrics equal the unbroken \
             run's; {}",
            stdout.lines().last().unwrap_or_default()
        );
    }
}

/// A tmpfs mounted for a test, unmounted when dropped.
#[cfg(target_os = "linux")]
struct TinyDisk(PathBuf);

#[cfg(target_os = "linux")]
impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_stops_the_run_with_an_error_naming_the_file_and_keeps_the_last_checkpoint() {
    let test =
        "a_full_disk_stops_the_run_with_an_error_naming_the_file_and_keeps_the_last_checkpoint";
    let Some(data_dir) = common::fashion_mnist_dir(test) else {
        return;
    };
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root_user {
        eprintln!("{test}: skipping: mounting a small tmpfs needs root");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mount_point = root.path().join("disk");
    std::fs::create_dir(&mount_point).unwrap();
    // Room for one epoch's checkpoint of the compact network (model 0.6 MB, optimiser 1.2 MB),
    // not for two.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2500k", "tmpfs"])
        .arg(&mount_point)
        .status()
        .unwrap();
    if !mounted.success() {
        eprintln!("{test}: skipping: mount -t tmpfs failed here ({mounted})");
        return;
    }
    let _disk = TinyDisk(mount_point.clone());
    let dir = mount_point.join("run");

    let output = example_run(&data_dir, &dir, 3, [512, 256])
        .arg("--no-tui")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{test}: {}", stderr.trim());
    assert!(!output.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains(&dir.display().to_string()),
        "names the file: {stderr}"
    );

    // Epoch 1 is whole: its checkpoint, the configuration and its metrics row (epoch 2's
    // row, written before its checkpoint failed, is dropped by a resume, which continues from
    // the last complete checkpoint).
    let artifacts = ArtifactDir::new(&dir);
    assert_eq!(artifacts.last_checkpoint(), Some(1));
    assert!(artifacts.read_config().is_ok());
    let csv = std::fs::read_to_string(artifacts.metrics()).unwrap();
    let rows = EpochMetrics::parse_csv(&csv).unwrap();
    assert_eq!(rows.first().map(|row| row.epoch), Some(1), "{csv}");
}

/// An image folder can hold more classes than a byte counts. The network starts with its last
/// layer set to answer class 299 of 300 for every image, and every image is of that class, so a
/// short run keeps that answer: `evaluate` and `report.json` must both carry 299 for each test
/// image (no data set needed).
#[test]
fn predictions_past_class_255_reach_the_evaluation_and_the_report() {
    const CLASSES: usize = 300;
    const LABEL: usize = 299;
    let images = |count, seed| {
        let mut items = common::striped(count, 1, seed);
        for item in &mut items {
            item.label = LABEL;
        }
        InMemDataset::new(items)
    };
    let device = Device::flex();
    let config = TrainingConfig {
        model: NinConfig::compact(CLASSES).with_dropout(0.0),
        epochs: 1,
        batch_size: 16,
        workers: 1,
        optimizer: Optimizer::Sgd {
            lr: 1e-3,
            momentum: None,
            weight_decay: None,
        },
        schedule: Schedule::Constant,
        ..TrainingConfig::preset(Preset::Compact)
    };
    let mut model = config.model.init(&device);
    let last = &mut model.blocks.last_mut().unwrap().mlp2.conv;
    last.weight = Param::from_tensor(last.weight.val().zeros_like());
    let mut bias = vec![0f32; CLASSES];
    bias[LABEL] = 10.0;
    last.bias = Some(Param::from_tensor(Tensor::from_floats(
        bias.as_slice(),
        &device,
    )));

    let root = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        progress: Progress::Quiet,
        initial_model: Some(model),
        ..TrainOptions::new(root.path())
    };
    let trained = nin::train::train(
        &config,
        images(64, 1),
        images(16, 2),
        std::slice::from_ref(&device),
        &options,
    )
    .unwrap();

    let evaluation = nin::train::evaluate(
        &trained.model,
        &images(16, 2),
        &config.batcher([28, 28]),
        5,
        &device,
    )
    .unwrap();
    assert_eq!(evaluation.predictions, vec![LABEL; 16]);
    assert_eq!(evaluation.confusion[LABEL][LABEL], 16);
    let artifacts = ArtifactDir::new(root.path());
    assert_eq!(
        artifacts.read_report().unwrap().test_predictions,
        evaluation.predictions
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(artifacts.report()).unwrap()).unwrap();
    assert_eq!(written["test_predictions"][0], 299, "{written}");
}

/// Fine-tuning the shipped network's new last block on classes of one's own with the rest
/// frozen: after the run, every block before the last has exactly the weights it started with,
/// and the new block has learnt (no data set needed). The shipped weights, not a random
/// initialisation, feed the new block: random frozen blocks can leave it no live input at all.
#[cfg(feature = "pretrained")]
#[test]
fn fine_tuning_with_frozen_blocks_trains_the_new_block_alone() {
    const CLASSES: usize = 3;
    let device = Device::flex();
    let shipped = nin::pretrained::Weights::FashionMnistCompact;
    let model = shipped
        .load(&device)
        .unwrap()
        .with_classes(CLASSES, &device);
    assert_eq!(model.num_classes(), CLASSES);
    let config = TrainingConfig {
        model: shipped.config().with_num_classes(CLASSES),
        epochs: 1,
        batch_size: 16,
        workers: 1,
        optimizer: Optimizer::Sgd {
            lr: 0.05,
            momentum: None,
            weight_decay: None,
        },
        schedule: Schedule::Constant,
        frozen_blocks: 3,
        ..TrainingConfig::preset(Preset::Compact)
    };
    let root = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        progress: Progress::Quiet,
        initial_model: Some(model.clone()),
        ..TrainOptions::new(root.path())
    };
    let trained = nin::train::train(
        &config,
        InMemDataset::new(common::striped(64, CLASSES, 1)),
        InMemDataset::new(common::striped(16, CLASSES, 2)),
        std::slice::from_ref(&device),
        &options,
    )
    .unwrap();
    for (index, (before, after)) in model.blocks.iter().zip(&trained.model.blocks).enumerate() {
        let moved = common::max_abs_diff(
            &common::block_weights(before),
            &common::block_weights(after),
        );
        if index < config.frozen_blocks {
            assert_eq!(moved, 0.0, "frozen block {index} changed");
        } else {
            assert!(moved > 0.0, "the new block {index} did not train");
        }
    }
}
