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
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[path = "support/mod.rs"]
mod support;

use clap::Parser;
use nin::data::{FashionMnist, Split};
use nin::train::{Optimizer, Preset, Progress, TrainOptions, TrainingConfig};

/// Train NiN on Fashion-MNIST with burn-train, then report test accuracy and write config.json,
/// model.bpk, checkpoints/, metrics.csv, training.svg and report.json to the artifact directory.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Model and recipe: `compact` (native 28×28, a few minutes on a CPU) or `d2l` (d2l's NiN at
    /// 224×224: SGD lr 0.1, batch 128, 10 epochs; meant for a GPU).
    #[arg(long, default_value = "compact")]
    preset: Preset,
    /// auto | flex | ndarray | wgpu | cuda
    #[arg(long, default_value = "auto")]
    backend: String,
    /// Passes over the training set [default: the preset's].
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step [default: the preset's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate [default: the preset's, or the optimiser's usual one].
    #[arg(long)]
    lr: Option<f64>,
    /// sgd | adamw [default: the preset's].
    #[arg(long, value_parser = ["sgd", "adamw"])]
    optimizer: Option<String>,
    /// Directory with the four Fashion-MNIST IDX files (plain or .gz) [default: NIN_DATA_DIR,
    /// the user cache, the Debian package's copy, then a download].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where to write the run's files.
    #[arg(long, default_value = "artifacts/fashion_mnist")]
    artifact_dir: PathBuf,
    /// Train on the first N training images only.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Seed of the weights, the shuffling and the augmentation.
    #[arg(long)]
    seed: Option<u64>,
    /// Continue the run in --artifact-dir from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Start over in an --artifact-dir that holds an earlier run, removing that run's files
    /// (only those its manifest.json lists; anything else there stays).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Print progress as plain lines instead of the terminal dashboard.
    #[arg(long)]
    no_tui: bool,
    /// Augment training images more than the preset does: random crops with 2 pixels of
    /// padding and horizontal flips (the compact preset shifts by up to 1 pixel).
    #[arg(long)]
    augment: bool,
    /// Start from these weights instead of a fresh initialisation: a PyTorch state_dict
    /// (.pt/.pth) or .safetensors file in d2l's nn.Sequential layout, for the preset's network.
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Also save the trained weights here as .safetensors in d2l's PyTorch layout, for
    /// `net.load_state_dict(safetensors.torch.load_file(FILE))`.
    #[arg(long)]
    export: Option<PathBuf>,
}

/// A flag that the first Ctrl-C (SIGINT) sets, so that the run stops between steps and exits
/// with an error naming `--resume`; a second Ctrl-C ends the process at once.
fn stop_on_ctrl_c() -> std::io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    // Registered first, so it sees the flag before the second handler sets it.
    signal_hook::flag::register_conditional_shutdown(
        signal_hook::consts::SIGINT,
        130,
        stop.clone(),
    )?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    Ok(stop)
}

/// The preset's configuration with the flags applied.
fn config(args: &Args) -> TrainingConfig {
    let mut config = TrainingConfig::preset(args.preset);
    if let Some(epochs) = args.epochs {
        config.epochs = epochs;
    }
    if let Some(batch_size) = args.batch_size {
        config.batch_size = batch_size;
    }
    match args.optimizer.as_deref() {
        Some("sgd") if !matches!(config.optimizer, Optimizer::Sgd { .. }) => {
            config.optimizer = Optimizer::Sgd {
                lr: 0.1,
                momentum: None,
                weight_decay: None,
            };
        }
        Some("adamw") if !matches!(config.optimizer, Optimizer::AdamW { .. }) => {
            config.optimizer = Optimizer::AdamW {
                lr: 1e-3,
                weight_decay: 1e-4,
            };
        }
        _ => {}
    }
    if let Some(lr) = args.lr {
        config.optimizer = config.optimizer.with_lr(lr);
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
        if let Some(augment) = config.augment.as_mut() {
            augment.seed = seed;
        }
    }
    config.train_limit = args.train_limit;
    config.test_limit = args.test_limit;
    if args.augment {
        config.augment = Some(nin::data::Augment {
            crop_padding: 2,
            horizontal_flip: true,
            seed: config.seed,
        });
    }
    config
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = config(&args);
    config.validate()?;
    let device = nin::backend::device(&args.backend)?;
    let (train_set, found) = FashionMnist::load(Split::Train, args.data_dir.as_deref())?;
    let (test_set, _) = FashionMnist::load(Split::Test, Some(&found.dir))?;
    let classes = train_set.classes().iter().map(|c| c.to_string()).collect();

    println!("config: {}", serde_json::to_string_pretty(&config)?);
    println!("device: {device:?}");
    println!(
        "data: {} ({}): {} training and {} test images",
        found.dir.display(),
        found.place,
        burn::data::dataset::Dataset::len(&train_set),
        burn::data::dataset::Dataset::len(&test_set)
    );
    let initial_model = match &args.init_from {
        Some(path) => {
            let model = nin::weights::load(config.model.init(&device), path)?;
            println!("initial weights: {}", path.display());
            Some(model)
        }
        None => None,
    };
    let options = TrainOptions {
        initial_model,
        artifact_dir: args.artifact_dir.clone(),
        resume: args.resume,
        overwrite: args.overwrite,
        stop: Some(stop_on_ctrl_c()?),
        progress: if args.no_tui {
            Progress::Lines
        } else {
            Progress::Dashboard
        },
        class_names: classes,
    };
    let trained = nin::train::train(&config, train_set, test_set, &device, &options)?;
    // Finish queued GPU work before the process tears the device down.
    device.sync()?;
    let report = &trained.report;
    println!(
        "trained {} epochs in {:.0} s ({:.0} training images/s)",
        report.epochs, report.wall_seconds, report.train_images_per_second
    );
    for class in &report.per_class_accuracy {
        println!("  {:<12} {:.4}", class.class, class.accuracy);
    }
    println!("test accuracy: {:.4}", report.test_accuracy);
    if let Some(path) = &args.export {
        nin::weights::save_safetensors(&trained.model, path)?;
        println!("PyTorch weights: {}", path.display());
    }
    println!("artifacts: {}", args.artifact_dir.display());
    Ok(())
}

fn main() -> ExitCode {
    support::exit_with(run(Args::parse()))
}
