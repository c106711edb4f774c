//! Fine-tunes the shipped Fashion-MNIST network on new classes: scikit-learn's 1,797 handwritten
//! digits (8×8 pixels, shown to the network at 28×28), and trains the same network from
//! scratch beside it; prints both test accuracies after each epoch.
//!
//! ```text
//! apt-get install python3-sklearn        # or: pip install scikit-learn, then pass --digits
//! cargo run --release --example fine_tune
//! cargo run --release --example fine_tune -- --frozen-blocks 3   # train the new last block alone
//! cargo run --release --example fine_tune -- --digits .../sklearn/datasets/data/digits.csv.gz
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[path = "support/mod.rs"]
mod support;

use burn::data::dataset::InMemDataset;
use clap::Parser;
use nin::BackendName;
use nin::data::ImageItem;
use nin::pretrained::Weights;
use nin::train::{EpochMetrics, Preset, Progress, TrainOptions, TrainingConfig};

/// Where Debian's python3-sklearn puts the digits.
const DEBIAN_DIGITS: &str = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
/// The digits' pixels run from 0 to this.
const DIGIT_LEVELS: u32 = 16;

/// Fine-tune the shipped network on scikit-learn's handwritten digits, against training from
/// scratch.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// scikit-learn's `digits.csv.gz` (64 pixels and the label per line).
    #[arg(long, default_value = DEBIAN_DIGITS)]
    digits: PathBuf,
    /// Passes over the training images, for each of the two runs.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Blocks of the shipped network that keep their weights (0 to 3): 3 trains the new last
    /// block alone.
    #[arg(long, default_value_t = 0)]
    frozen_blocks: usize,
    /// Backend to train on.
    #[arg(long, default_value_t = BackendName::Auto,
          value_parser = support::named(&BackendName::ALL))]
    backend: BackendName,
    /// Keep the two runs' artifacts in DIR/shipped and DIR/scratch (replacing earlier ones)
    /// [default: a temporary directory].
    #[arg(long)]
    artifact_dir: Option<PathBuf>,
}

/// The digits as grayscale images, ink bright on black as in Fashion-MNIST, every fourth one
/// held out for the test: `(train, test)`.
fn read_digits(path: &Path) -> Result<(Vec<ImageItem>, Vec<ImageItem>), String> {
    let missing = |reason: String| {
        format!(
            "{}: {reason}. The digits ship with scikit-learn: `apt-get install python3-sklearn` \
             puts them at {DEBIAN_DIGITS}; with `pip install scikit-learn`, pass --digits \
             <site-packages>/sklearn/datasets/data/digits.csv.gz",
            path.display()
        )
    };
    let file = std::fs::File::open(path).map_err(|e| missing(e.to_string()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|e| missing(format!("not a gzip-compressed CSV ({e})")))?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (index, line) in text.lines().enumerate() {
        let item = parse_digit(line)
            .map_err(|reason| format!("{}: line {}: {reason}", path.display(), index + 1))?;
        if index % 4 == 3 {
            test.push(item);
        } else {
            train.push(item);
        }
    }
    if test.is_empty() {
        return Err(format!("{}: fewer than four digits", path.display()));
    }
    Ok((train, test))
}

/// One line: 64 pixels from 0 to 16, row by row, then the digit.
fn parse_digit(line: &str) -> Result<ImageItem, String> {
    let values = line
        .split(',')
        .map(|field| field.trim().parse::<u32>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a list of whole numbers ({e})"))?;
    let Some((&label, pixels)) = values.split_last().filter(|(_, pixels)| pixels.len() == 64)
    else {
        return Err(format!("{} values where 65 are expected", values.len()));
    };
    if label > 9 || pixels.iter().any(|&level| level > DIGIT_LEVELS) {
        return Err(format!(
            "a label outside 0..=9 or a pixel outside 0..={DIGIT_LEVELS}"
        ));
    }
    let pixels = pixels
        .iter()
        .map(|&level| (level * 255 / DIGIT_LEVELS) as u8)
        .collect();
    Ok(ImageItem::grayscale(pixels, 8, 8, label as usize))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (train, test) = read_digits(&args.digits)?;
    let device = args.backend.device()?;
    let weights = Weights::FashionMnistCompact;
    let config = TrainingConfig {
        // The shipped network's layers, with a last block for ten digits; images resized to
        // its 28×28 and normalised as it was trained.
        model: weights.config().with_num_classes(10),
        normalize: Some(weights.normalize()),
        epochs: args.epochs,
        batch_size: 64,
        // Flips and shifts that suit clothes turn a 6 into something else.
        augment: None,
        frozen_blocks: args.frozen_blocks,
        ..TrainingConfig::preset(Preset::Compact)
    };
    let temporary = tempfile::tempdir()?;
    let root = args
        .artifact_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    println!(
        "{} training and {} test digits; {} epochs on {device:?}",
        train.len(),
        test.len(),
        args.epochs
    );
    let run = |name: &str, config: &TrainingConfig, initial_model| {
        println!("training {name} …");
        let options = TrainOptions {
            progress: Progress::Quiet,
            overwrite: true,
            initial_model,
            ..TrainOptions::new(root.join(name))
        };
        nin::train::train(
            config,
            InMemDataset::new(train.clone()),
            InMemDataset::new(test.clone()),
            std::slice::from_ref(&device),
            &options,
        )
    };
    let shipped_start = weights.load(&device)?.with_classes(10, &device);
    let shipped = run("shipped", &config, Some(shipped_start))?;
    // From scratch every block trains: there is nothing worth keeping to freeze.
    let scratch_config = TrainingConfig {
        frozen_blocks: 0,
        ..config.clone()
    };
    let scratch = run("scratch", &scratch_config, None)?;
    print_accuracies(&shipped.metrics, &scratch.metrics, args.frozen_blocks);
    if let Some(dir) = &args.artifact_dir {
        println!("artifacts: {}", dir.display());
    }
    Ok(())
}

fn print_accuracies(shipped: &[EpochMetrics], scratch: &[EpochMetrics], frozen_blocks: usize) {
    println!();
    println!(
        "test accuracy | from the shipped weights ({frozen_blocks} blocks frozen) | from scratch"
    );
    for (ours, theirs) in shipped.iter().zip(scratch) {
        println!(
            "epoch {:>2}      | {:.4}                                   | {:.4}",
            ours.epoch, ours.test_accuracy, theirs.test_accuracy
        );
    }
}

fn main() -> ExitCode {
    support::retain_freed_memory_unless_declined();
    support::exit_with(run(Args::parse()))
}
