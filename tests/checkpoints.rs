//! Damaged checkpoints: a resume checks the newest checkpoint against the sizes and digests the
//! manifest recorded, falls back to the one before when it is truncated or has a flipped bit,
//! and refuses with the files named when none is intact. Each case runs under a deadline, so a
//! hang in a loader fails the test instead of stalling the suite.
#![cfg(feature = "train")]

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use burn::data::dataset::InMemDataset;
use burn::tensor::Device;
use nin::NinConfig;
use nin::train::{ArtifactDir, Preset, Progress, TrainError, TrainOptions, TrainingConfig};

const CLASSES: usize = 4;
/// A run of this test's size takes seconds an epoch on flex alone, but it shares the machine
/// with the lavapipe tests of the same test binary: in a cold CI run, while they tuned their
/// kernels, one call took over 120 s (2-core Intel Xeon). Ten minutes is a hang.
const DEADLINE: Duration = Duration::from_secs(600);

fn config(epochs: usize) -> TrainingConfig {
    TrainingConfig {
        model: NinConfig::compact(CLASSES).with_dropout(0.0),
        epochs,
        batch_size: 32,
        workers: 1,
        ..TrainingConfig::preset(Preset::Compact)
    }
}

/// Trains (or resumes) the run in `dir` to `epochs` on a thread of its own, failing the test
/// if it has not returned within [`DEADLINE`]. Returns the epochs in its metrics.
fn run(dir: &Path, epochs: usize, resume: bool) -> Result<Vec<usize>, TrainError> {
    let (send, receive) = mpsc::channel();
    let owned = dir.to_path_buf();
    std::thread::spawn(move || {
        let options = TrainOptions {
            resume,
            progress: Progress::Quiet,
            class_names: (0..CLASSES).map(|c| c.to_string()).collect(),
            ..TrainOptions::new(&owned)
        };
        let trained = nin::train::train(
            &config(epochs),
            InMemDataset::new(common::striped(96, CLASSES, 1)),
            InMemDataset::new(common::striped(32, CLASSES, 2)),
            &[Device::flex()],
            &options,
        );
        let _ = send.send(trained.map(|t| t.metrics.iter().map(|m| m.epoch).collect()));
    });
    receive.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        panic!(
            "training in {} did not return within {DEADLINE:?}",
            dir.display()
        )
    })
}

/// The checkpoint file of `kind` ("model", "optim" or "scheduler") of `epoch`.
fn checkpoint(dir: &Path, kind: &str, epoch: usize) -> PathBuf {
    ArtifactDir::new(dir)
        .checkpoints()
        .join(format!("{kind}-{epoch}.bpk"))
}

fn truncate(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

/// Flips one bit in the middle of the file: same size, other bytes.
fn flip_a_bit(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// A way of damaging a file.
type Damage = fn(&Path);

/// A run of two epochs, with the checkpoints of both kept.
fn two_epochs(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    assert_eq!(run(&dir, 2, false).unwrap(), [1, 2]);
    for epoch in [1, 2] {
        assert!(checkpoint(&dir, "model", epoch).is_file(), "epoch {epoch}");
    }
    dir
}

#[test]
fn a_damaged_newest_checkpoint_resumes_from_the_one_before() {
    let root = tempfile::tempdir().unwrap();
    let damages: [(&str, &str, Damage); 2] = [
        ("truncated", "model", truncate),
        ("bit-flipped", "optim", flip_a_bit),
    ];
    for (name, kind, damage) in damages {
        let dir = two_epochs(root.path(), name);
        let damaged = checkpoint(&dir, kind, 2);
        damage(&damaged);

        let (last, found) = ArtifactDir::new(&dir).intact_checkpoint().unwrap();
        assert_eq!(last, 1, "{name}");
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0].path, damaged, "{name}");
        println!("{name}: {}", found[0]);

        // Epoch 2 is trained again, once: every epoch appears once in the metrics.
        assert_eq!(run(&dir, 3, true).unwrap(), [1, 2, 3], "{name}");
        let csv = std::fs::read_to_string(ArtifactDir::new(&dir).metrics()).unwrap();
        let epochs: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| &l[..l.find(',').unwrap()])
            .collect();
        assert_eq!(epochs, ["1", "2", "3"], "{name}: {csv}");
        // The checkpoint written again is intact, and recorded.
        assert_eq!(
            ArtifactDir::new(&dir).intact_checkpoint().unwrap(),
            (3, vec![])
        );
    }
}

#[test]
fn when_every_checkpoint_is_damaged_resume_refuses_naming_the_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = two_epochs(root.path(), "run");
    let first = checkpoint(&dir, "scheduler", 1);
    let second = checkpoint(&dir, "model", 2);
    flip_a_bit(&first);
    truncate(&second);

    let err = run(&dir, 3, true).unwrap_err();
    println!("{err}");
    assert!(matches!(err, TrainError::Resume { .. }), "{err:?}");
    let message = err.to_string();
    for path in [&first, &second] {
        assert!(message.contains(&path.display().to_string()), "{message}");
    }
    assert!(message.contains("every checkpoint is damaged"), "{message}");
    // Nothing was removed: the files stay for whoever wants to look at them.
    assert!(first.is_file() && second.is_file());
}

#[test]
fn checkpoints_without_a_record_are_checked_by_loading_them() {
    // A run written before digests were recorded (or cut off between writing a file and
    // recording it) has no record: a truncated file is still found, by loading it.
    let root = tempfile::tempdir().unwrap();
    let dir = two_epochs(root.path(), "run");
    let manifest = ArtifactDir::new(&dir).root().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(value["checkpoints"].is_object(), "{text}");
    value.as_object_mut().unwrap().remove("checkpoints");
    std::fs::write(&manifest, value.to_string()).unwrap();

    let damaged = checkpoint(&dir, "model", 2);
    truncate(&damaged);
    let (last, found) = ArtifactDir::new(&dir).intact_checkpoint().unwrap();
    assert_eq!((last, found.len()), (1, 1), "{found:?}");
    assert_eq!(found[0].path, damaged);
    assert!(found[0].reason.contains("does not load"), "{}", found[0]);
    assert_eq!(run(&dir, 3, true).unwrap(), [1, 2, 3]);
}

#[test]
fn a_truncated_final_model_is_a_clean_error() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    assert_eq!(run(&dir, 1, false).unwrap(), [1]);
    let artifacts = ArtifactDir::new(&dir);
    truncate(&artifacts.model());
    let err = artifacts.load_model(&Device::flex()).unwrap_err();
    println!("{err}");
    assert!(
        err.to_string()
            .contains(&artifacts.model().display().to_string()),
        "the error names the file: {err}"
    );
}
