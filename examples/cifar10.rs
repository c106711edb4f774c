//! Trains NiN on CIFAR-10 (or CIFAR-100), evaluates it on the test set and writes the
//! artifacts, as `fashion_mnist` does.
//!
//! ```text
//! cargo run --release --example cifar10                       # the paper's network (a GPU's work)
//! cargo run --release --example cifar10 -- --preset compact   # the compact network, for CPUs
//! cargo run --release --example cifar10 -- --cifar100 --backend wgpu
//! cargo run --release --example cifar10 -- --data-dir ~/datasets   # holds cifar-10-binary.tar.gz
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

#[path = "support/mod.rs"]
mod support;
#[path = "support/training.rs"]
mod training;

use clap::Parser;
use nin::data::{Cifar10, Cifar100, Split, pixel_mean_std};
use nin::train::{Preset, TrainingConfig};
use training::{RunData, TrainFlags};

/// Train NiN on CIFAR-10 or CIFAR-100 with burn-train, then report test accuracy and write
/// config.json, model.bpk, checkpoints/, metrics.csv, training.svg and report.json to the
/// artifact directory.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Model and recipe: `cifar10` (the NiN paper's network and recipe; meant for a GPU) or
    /// `compact` (the compact network for 3 channels; its recipe, a CPU's work).
    #[arg(long, default_value_t = Preset::Cifar10,
          value_parser = support::named(&[Preset::Cifar10, Preset::Compact]))]
    preset: Preset,
    /// Train on CIFAR-100's 100 fine classes instead of CIFAR-10.
    #[arg(long)]
    cifar100: bool,
    /// Directory holding the binary archive (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz)
    /// or its extracted folder, or that folder itself [default: NIN_DATA_DIR, the user cache,
    /// then a download].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    flags: TrainFlags,
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = args.data_dir.as_deref();
    let (example, name, (train, found), test) = if args.cifar100 {
        let (train, found) = Cifar100::load(Split::Train, data_dir)?;
        let test = Cifar100::from_dir(&found.dir, Split::Test)?;
        ("cifar100", "CIFAR-100", (train, found), test)
    } else {
        let (train, found) = Cifar10::load(Split::Train, data_dir)?;
        let test = Cifar10::from_dir(&found.dir, Split::Test)?;
        ("cifar10", "CIFAR-10", (train, found), test)
    };
    // One mean and standard deviation over the training images' pixels.
    let normalize = pixel_mean_std(&train)?;
    let classes = train.class_names().len();
    let config = TrainingConfig::preset(args.preset).for_images(3, 32, classes, normalize);
    let config = args.flags.apply(config, 4);
    let data = RunData {
        classes: train.class_names().to_vec(),
        source: format!("{name} {} ({})", found.dir.display(), found.place),
        train,
        test,
    };
    training::run(&args.flags, example, config, data)
}

fn main() -> ExitCode {
    support::retain_freed_memory_unless_declined();
    support::exit_with(run(Args::parse()))
}
