//! Trains NiN on Fashion-MNIST, evaluates it on the test set and writes the artifacts.
//!
//! ```text
//! cargo run --release --example fashion_mnist                        # compact, on the best device
//! cargo run --release --example fashion_mnist -- --preset d2l --backend wgpu
//! cargo run --release --example fashion_mnist -- --resume            # continue an interrupted run
//! cargo run --release --example fashion_mnist -- --overwrite         # replace the earlier run
//! cargo run --release --example fashion_mnist -- --preset d2l --init-from nin_d2l.pth
//! cargo run --release --example fashion_mnist -- --export nin.safetensors   # for PyTorch
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "support/mod.rs"]
mod support;
#[path = "support/training.rs"]
mod training;

use clap::Parser;
use nin::data::{FashionMnist, Split};
use nin::train::{Preset, TrainingConfig};
use training::{RunData, TrainFlags};

/// Train NiN on Fashion-MNIST with burn-train, then report test accuracy and write config.json,
/// model.bpk, checkpoints/, metrics.csv, training.svg and report.json to the artifact directory.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Model and recipe: `compact` (native 28×28, a few minutes on a CPU) or `d2l` (d2l's NiN at
    /// 224×224: SGD lr 0.1, batch 128, 10 epochs; meant for a GPU).
    #[arg(long, default_value_t = Preset::Compact,
          value_parser = support::named(&[Preset::Compact, Preset::D2l]))]
    preset: Preset,
    /// Directory with the four Fashion-MNIST IDX files (plain or .gz) [default: NIN_DATA_DIR,
    /// the user cache, the Debian package's copy, then a download].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    flags: TrainFlags,
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.flags.apply(TrainingConfig::preset(args.preset), 2);
    let (train, found) = FashionMnist::load(Split::Train, args.data_dir.as_deref())?;
    let (test, _) = FashionMnist::load(Split::Test, Some(&found.dir))?;
    let data = RunData {
        classes: train.classes().iter().map(|c| c.to_string()).collect(),
        source: format!("{} ({})", found.dir.display(), found.place),
        train,
        test,
    };
    training::run(&args.flags, "fashion_mnist", config, data)
}

fn main() -> ExitCode {
    support::retain_freed_memory_unless_declined();
    support::exit_with(run(Args::parse()))
}
