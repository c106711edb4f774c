//! Colour images through training and `predict`: a 3-channel network learns from generated RGB
//! images and classifies RGB files, and a model whose channel count differs from the images'
//! is refused before anything is written; dataset and shape errors keep their types.
#![cfg(feature = "train")]

use crate::common;

use std::process::Command;

use burn::data::dataset::{Dataset, DatasetError, InMemDataset};
use burn::tensor::{Device, Tensor};
use nin::data::{ImageItem, Split};
use nin::train::{Preset, Progress, Strategy, TrainError, TrainOptions, TrainingConfig};
use nin::{NinConfig, ShapeError};

const SIDE: usize = 28;
const CLASSES: usize = 4;
/// Each class's brightness per channel (red, green, blue, grey), out of 255.
const GAINS: [[u16; 3]; CLASSES] = [[255, 60, 60], [60, 255, 60], [60, 60, 255], [150, 150, 150]];

/// A pixel of class `label`'s colour over texture value `t` (0..96).
fn shade(label: usize, t: u8) -> [u8; 3] {
    GAINS[label].map(|gain| ((t as u16 + 64) * gain / 255) as u8)
}

/// `count` RGB images whose class shows only in their colour: red, green, blue or grey, with
/// the same random texture in every channel, so that no single channel's brightness alone
/// tells the classes apart.
fn colour_items(count: usize, seed: u64) -> Vec<ImageItem> {
    let mut next = common::xorshift(seed);
    (0..count)
        .map(|index| {
            let label = index % CLASSES;
            let texture: Vec<u8> = (0..SIDE * SIDE).map(|_| (next() % 96) as u8).collect();
            let pixels = (0..3)
                .flat_map(|c| texture.iter().map(move |&t| shade(label, t)[c]))
                .collect();
            ImageItem {
                pixels,
                channels: 3,
                height: SIDE,
                width: SIDE,
                label,
            }
        })
        .collect()
}

fn options(dir: &std::path::Path) -> TrainOptions {
    TrainOptions {
        artifact_dir: dir.to_path_buf(),
        resume: false,
        overwrite: false,
        progress: Progress::Lines,
        stop: None,
        class_names: ["red", "green", "blue", "grey"].map(String::from).to_vec(),
        initial_model: None,
        strategy: Strategy::Multi,
    }
}

fn config(in_channels: usize) -> TrainingConfig {
    let preset = TrainingConfig::preset(Preset::Compact);
    TrainingConfig {
        model: NinConfig::compact(CLASSES)
            .with_batch_norm(true)
            .with_dropout(0.1)
            .with_in_channels(in_channels),
        // Small batches, so that the batch norms' running statistics, which evaluation uses,
        // see enough steps to settle.
        epochs: 6,
        batch_size: 32,
        workers: 1,
        ..preset
    }
}

#[test]
fn a_colour_network_learns_classes_that_only_colour_tells_apart() {
    let dir = tempfile::tempdir().unwrap();
    let trained = nin::train::train(
        &config(3),
        InMemDataset::new(colour_items(512, 1)),
        InMemDataset::new(colour_items(128, 2)),
        &[Device::flex()],
        &options(dir.path()),
    )
    .expect("training on colour images");
    let accuracy = trained.report.test_accuracy;
    println!("colour test accuracy: {accuracy:.4} (chance 0.25)");
    // A network that saw one channel only could tell red and grey apart by brightness but not
    // green from blue: at most 0.75.
    assert!(accuracy > 0.9, "test accuracy {accuracy}");

    // `predict` reads RGB files in colour for this model: a green file and a blue one, twice
    // the model's input side, differ only in which channel is bright. Their texture is the
    // training images' kind (random, each value over 2×2 pixels, so that resizing keeps it):
    // a smooth texture the network never saw left it guessing (0.4–0.5 for the top class).
    let mut next = common::xorshift(3);
    let texture: Vec<u8> = (0..SIDE * SIDE).map(|_| (next() % 96) as u8).collect();
    let side = 2 * SIDE as u32;
    for (label, name) in [(1, "green"), (2, "blue")] {
        let path = dir.path().join(format!("{name}.png"));
        let at = |x: u32, y: u32| texture[(y / 2) as usize * SIDE + (x / 2) as usize];
        image::RgbImage::from_fn(side, side, |x, y| image::Rgb(shade(label, at(x, y))))
            .save(&path)
            .unwrap();
        let output = Command::new(common::example("predict"))
            .args(["--backend", "flex", "--top", "1", "--artifact-dir"])
            .arg(dir.path())
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        println!("{}", stdout.trim());
        assert!(stdout.contains(&format!(": {name} ")), "{stdout}");
    }

    // Fashion-MNIST's test images are grayscale: --index is refused for a colour model.
    let output = Command::new(common::example("predict"))
        .args(["--backend", "flex", "--index", "0", "--artifact-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("3-channel"), "{stderr}");
}

#[test]
fn a_grayscale_model_refuses_colour_images_naming_both_counts() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("run");
    let err = nin::train::train(
        &config(1),
        InMemDataset::new(colour_items(8, 1)),
        InMemDataset::new(colour_items(8, 2)),
        &[Device::flex()],
        &options(&artifacts),
    )
    .expect_err("a 1-channel model on 3-channel images");
    match &err {
        TrainError::ChannelMismatch { model, data, .. } => assert_eq!((*model, *data), (1, 3)),
        other => panic!("expected ChannelMismatch, got {other:?}"),
    }
    let message = err.to_string();
    println!("error: {message}");
    assert!(
        message.contains("1 channel") && message.contains("has 3"),
        "{message}"
    );
    assert!(
        !artifacts.exists(),
        "nothing may be written for a refused run"
    );
}

/// Items that fail to read at one index, as a dataset on a flaky disk would.
struct Unreadable {
    items: Vec<ImageItem>,
    broken: usize,
}

impl Dataset<ImageItem> for Unreadable {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        if index == self.broken {
            return Err(DatasetError::new(std::io::Error::other("sector not found")));
        }
        self.items
            .get(index)
            .cloned()
            .ok_or_else(|| DatasetError::new(std::io::Error::other("past the end")))
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

#[test]
fn errors_keep_their_type_and_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let err = nin::train::train(
        &config(3),
        Unreadable {
            items: colour_items(8, 1),
            broken: 5,
        },
        InMemDataset::new(colour_items(8, 2)),
        &[Device::flex()],
        &options(&dir.path().join("run")),
    )
    .expect_err("an unreadable item");
    match &err {
        TrainError::Item { set, index, .. } => assert_eq!((*set, *index), (Split::Train, 5)),
        other => panic!("expected Item, got {other:?}"),
    }
    let source = std::error::Error::source(&err).expect("the dataset's error as the source");
    assert!(source.to_string().contains("sector not found"), "{source}");

    // Images the network cannot take are its own ShapeError.
    let model = config(3).model.init(&Device::flex());
    let err = nin::train::predict(
        &model,
        Tensor::<4>::zeros([1, 1, 28, 28], &Device::flex()),
        1,
    )
    .expect_err("one channel into a three-channel network");
    assert!(
        matches!(err, TrainError::Shape(ShapeError::Channels { .. })),
        "{err:?}"
    );
}

/// Runs a training example on the flex backend with plain log lines, and returns its stdout
/// after checking it succeeded; its `test accuracy:` line must be the last.
fn run_example(name: &str, args: &[&str], env: &[(&str, &std::path::Path)]) -> (String, f64) {
    let mut command = Command::new(common::example(name));
    command
        .args(args)
        .args(["--backend", "flex", "--no-tui"])
        .env("NIN_OFFLINE", "1");
    for (var, value) in env {
        command.env(var, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let accuracy = last
        .strip_prefix("test accuracy: ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{name}: last line is not the accuracy:\n{stdout}"));
    (stdout, accuracy)
}

#[cfg(feature = "dataset")]
#[test]
fn the_cifar10_example_learns_from_a_cifar_folder_named_by_nin_data_dir() {
    use common::cifar::{all_files, write_folder};
    use nin::data::CIFAR10;

    // Files of the official size (10,000 records each) in the binary format, told apart by
    // colour; the run takes 500 training and 100 test images of them.
    let data = tempfile::tempdir().unwrap();
    write_folder(data.path(), &CIFAR10, &all_files(&CIFAR10, 10_000));
    let work = tempfile::tempdir().unwrap();
    let artifacts = work.path().join("run");
    let (stdout, accuracy) = run_example(
        "cifar10",
        &[
            "--preset",
            "compact",
            "--epochs",
            "4",
            "--batch-size",
            "32",
            "--train-limit",
            "500",
            "--test-limit",
            "100",
            "--artifact-dir",
            artifacts.to_str().unwrap(),
        ],
        &[
            ("NIN_DATA_DIR", data.path()),
            ("XDG_CACHE_HOME", work.path()),
        ],
    );
    println!("{stdout}");
    assert!(
        stdout.contains("data: CIFAR-10") && stdout.contains("(NIN_DATA_DIR)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("50000 training and 10000 test images, 10 classes"),
        "{stdout}"
    );
    // Chance is 0.1.
    assert!(accuracy > 0.5, "test accuracy {accuracy}");
    for file in ["config.json", "model.bpk", "metrics.csv", "report.json"] {
        assert!(artifacts.join(file).is_file(), "{file} missing");
    }
}

/// Writes `count` PNG files of class `label`'s colour (with texture) into `dir/<class>/`.
fn write_pngs(dir: &std::path::Path, label: usize, count: usize, seed: u32) {
    let class_dir = dir.join(["red", "green", "blue", "grey"][label]);
    std::fs::create_dir_all(&class_dir).unwrap();
    for index in 0..count as u32 {
        let texture = |x: u32, y: u32| ((x * 7 + y * 13 + index * 31 + seed) % 96) as u8;
        image::RgbImage::from_fn(20, 20, |x, y| image::Rgb(shade(label, texture(x, y))))
            .save(class_dir.join(format!("{index:03}.png")))
            .unwrap();
    }
}

#[test]
fn the_image_folder_example_learns_and_names_the_file_it_skipped() {
    let data = tempfile::tempdir().unwrap();
    let (train, test) = (data.path().join("train"), data.path().join("test"));
    for label in 0..CLASSES {
        write_pngs(&train, label, 48, 0);
        write_pngs(&test, label, 12, 5);
    }
    let broken = train.join("green").join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let work = tempfile::tempdir().unwrap();
    let artifacts = work.path().join("run");
    let (stdout, accuracy) = run_example(
        "image_folder",
        &[
            "--train",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
            "--size",
            "24",
            "--epochs",
            "4",
            "--batch-size",
            "16",
            "--artifact-dir",
            artifacts.to_str().unwrap(),
        ],
        &[],
    );
    println!("{stdout}");
    assert!(
        stdout.contains("training: skipped 1 unreadable file(s):")
            && stdout.contains(&broken.display().to_string()),
        "{stdout}"
    );
    assert!(stdout.contains("192 training and 48 test images, 4 classes"));
    // Chance is 0.25; one channel alone caps at 0.75.
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
}
