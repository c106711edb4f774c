//! Trains NiN on your own images: a training and a test folder, each with one sub-folder of
//! PNG or JPEG files per class. Evaluates on the test folder and writes the artifacts, as
//! `fashion_mnist` does.
//!
//! ```text
//! cargo run --release --example image_folder -- --train photos/train --test photos/test
//! cargo run --release --example image_folder -- --train t --test v --size 64 --channels 1
//! ```
//!
//! Files that cannot be decoded are skipped, and each is listed with its path and the reason.

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "support/mod.rs"]
mod support;
#[path = "support/training.rs"]
mod training;

use clap::Parser;
use nin::data::{ImageFolder, pixel_mean_std};
use nin::train::{Preset, TrainingConfig};
use training::{RunData, TrainFlags};

/// Train NiN on a folder of your own images with burn-train, then report the accuracy on the
/// test folder and write config.json, model.bpk, checkpoints/, metrics.csv, training.svg and
/// report.json to the artifact directory.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The training images: one sub-folder per class (its name is the class's), PNG or JPEG
    /// files in each.
    #[arg(long = "train")]
    train_dir: PathBuf,
    /// The test images, laid out as the training ones, with the same class names.
    #[arg(long = "test")]
    test_dir: PathBuf,
    /// Side, in pixels, every image is resized to (a square).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// 1 to read the images as grayscale, 3 as RGB.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    channels: u8,
    /// Model and recipe: `compact` (the compact network; a CPU's work) or `cifar10` (the NiN
    /// paper's network and recipe; meant for a GPU).
    #[arg(long, default_value_t = Preset::Compact,
          value_parser = support::named(&[Preset::Compact, Preset::Cifar10]))]
    preset: Preset,
    #[command(flatten)]
    flags: TrainFlags,
}

/// Prints the files a folder skipped, at most ten of them.
fn report_skipped(folder: &ImageFolder, set: &str) {
    let skipped = folder.skipped();
    if skipped.is_empty() {
        return;
    }
    println!("{set}: skipped {} unreadable file(s):", skipped.len());
    for file in skipped.iter().take(10) {
        println!("  {file}");
    }
    if skipped.len() > 10 {
        println!("  and {} more", skipped.len() - 10);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let channels = usize::from(args.channels);
    if channels == 2 {
        return Err("--channels takes 1 (grayscale) or 3 (RGB)".into());
    }
    let train = ImageFolder::open(&args.train_dir, channels, args.size)?;
    let test = ImageFolder::with_classes(&args.test_dir, channels, args.size, train.class_names())?;
    report_skipped(&train, "training");
    report_skipped(&test, "test");
    // One mean and standard deviation over the training images' pixels.
    let normalize = pixel_mean_std(&train)?;
    let classes = train.class_names().to_vec();
    let config = TrainingConfig::preset(args.preset).for_images(
        channels,
        args.size,
        classes.len(),
        normalize,
    );
    let config = args.flags.apply(config, (args.size / 8).max(1));
    let data = RunData {
        classes,
        source: format!(
            "{} and {}",
            args.train_dir.display(),
            args.test_dir.display()
        ),
        train,
        test,
    };
    training::run(&args.flags, "image_folder", config, data)
}

fn main() -> ExitCode {
    support::retain_freed_memory_unless_declined();
    support::exit_with(run(Args::parse()))
}
