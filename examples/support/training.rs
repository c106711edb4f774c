//! What the three training examples (`fashion_mnist`, `cifar10`, `image_folder`) share: the
//! training flags, how they change a preset, and the run from the first printed line to the
//! last, `test accuracy: 0.XXXX`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::data::dataset::Dataset;
use burn::tensor::Device;
use nin::BackendName;
use nin::Precision;
use nin::data::{Augment, ImageItem};
use nin::names::Named;
use nin::train::{OptimizerKind, Progress, Strategy, TrainOptions, TrainingConfig};

/// The flags every training example takes.
#[derive(Debug, clap::Args)]
pub struct TrainFlags {
    /// The backend to train on (`auto`: CUDA, else a hardware GPU through wgpu, else flex).
    #[arg(long, default_value_t = BackendName::Auto,
          value_parser = crate::support::named(&BackendName::ALL))]
    pub backend: BackendName,
    /// Train on several devices at once, data-parallel: a comma-separated list of backends or
    /// devices (wgpu:0,wgpu:1; wgpu:all; cuda:all; wgpu:default,wgpu:cpu). Each device takes
    /// --batch-size images per step; the first also takes the optimiser step and evaluates.
    #[arg(long, conflicts_with = "backend")]
    pub devices: Option<String>,
    /// How several devices share the work: multi (one process, gradients added on the first
    /// device; any backend) or ddp (distributed data parallel; CUDA devices only).
    #[arg(long, default_value_t = Strategy::Multi, requires = "devices",
          value_parser = crate::support::named(Strategy::all()))]
    pub strategy: Strategy,
    /// Passes over the training set [default: the preset's].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per step [default: the preset's].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate [default: the preset's, or the optimiser's usual one].
    #[arg(long)]
    pub lr: Option<f64>,
    /// The optimiser, with its usual settings [default: the preset's].
    #[arg(long, value_parser = crate::support::named(OptimizerKind::all()))]
    pub optimizer: Option<OptimizerKind>,
    /// Where to write the run's files [default: artifacts/<example>].
    #[arg(long)]
    pub artifact_dir: Option<PathBuf>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Seed of the weights, the shuffling and the augmentation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue the run in --artifact-dir from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Start over in an --artifact-dir that holds an earlier run, removing that run's files
    /// (only those its manifest.json lists; anything else there stays).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Print progress as plain lines instead of the terminal dashboard.
    #[arg(long)]
    pub no_tui: bool,
    /// Augment training images: random crops (shifts, with black padding) and horizontal
    /// flips; the padding is the example's (2 pixels for 28×28 images, 4 for 32×32).
    #[arg(long)]
    pub augment: bool,
    /// Start from these weights instead of a fresh initialisation: a PyTorch state_dict
    /// (.pt/.pth) or .safetensors file in d2l's nn.Sequential layout, for the preset's network.
    #[arg(long, conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Also save the trained weights here as .safetensors in d2l's PyTorch layout, for
    /// `net.load_state_dict(safetensors.torch.load_file(FILE))`.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Float type of the layers: f32, f16 (dynamic loss scaling) or bf16. Parameters,
    /// optimiser state and loss stay f32. f16 needs a GPU with shader-f16, bf16 CUDA.
    #[arg(long, default_value_t = Precision::F32,
          value_parser = crate::support::named(Precision::all()))]
    pub precision: Precision,
}

impl TrainFlags {
    /// `config` with the flags applied; `--augment` crops with `crop_padding` pixels.
    pub fn apply(&self, mut config: TrainingConfig, crop_padding: usize) -> TrainingConfig {
        if let Some(epochs) = self.epochs {
            config.epochs = epochs;
        }
        if let Some(batch_size) = self.batch_size {
            config.batch_size = batch_size;
        }
        if let Some(kind) = self.optimizer
            && kind != config.optimizer.kind()
        {
            config.optimizer = kind.usual();
        }
        if let Some(lr) = self.lr {
            config.optimizer = config.optimizer.with_lr(lr);
        }
        if let Some(seed) = self.seed {
            config.seed = seed;
            if let Some(augment) = config.augment.as_mut() {
                augment.seed = seed;
            }
        }
        config.train_limit = self.train_limit;
        config.test_limit = self.test_limit;
        config.precision = self.precision;
        if self.augment {
            config.augment = Some(Augment {
                crop_padding,
                horizontal_flip: true,
                seed: config.seed,
            });
        }
        config
    }
}

/// A flag that the first Ctrl-C (SIGINT) or SIGTERM sets, so that the run stops between steps
/// and exits with an error naming `--resume`; a second signal ends the process at once (status
/// 130 for SIGINT, 143 for SIGTERM, as their default actions would). Slurm, Kubernetes and
/// systemd send SIGTERM before SIGKILL: the grace period goes to a clean stop.
fn stop_on_signals() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for (signal, status) in [(SIGINT, 130), (SIGTERM, 143)] {
        // Registered first, so it sees the flag before the second handler sets it.
        signal_hook::flag::register_conditional_shutdown(signal, status, stop.clone())?;
        signal_hook::flag::register(signal, stop.clone())?;
    }
    Ok(stop)
}

/// The data of a run, as the examples load it.
pub struct RunData<Tr, Te> {
    /// The training images.
    pub train: Tr,
    /// The test images.
    pub test: Te,
    /// Class names, by label.
    pub classes: Vec<String>,
    /// Where the data came from, for the `data:` line.
    pub source: String,
}

/// Trains `config` on `data`, printing the configuration, the device, the data, the report and
/// last `test accuracy: 0.XXXX`, and writes the artifacts (`--artifact-dir`, else
/// `artifacts/<example>`).
pub fn run<Tr, Te>(
    flags: &TrainFlags,
    example: &str,
    config: TrainingConfig,
    data: RunData<Tr, Te>,
) -> Result<(), Box<dyn std::error::Error>>
where
    Tr: Dataset<ImageItem> + 'static,
    Te: Dataset<ImageItem> + 'static,
{
    let devices = match &flags.devices {
        Some(spec) => nin::backend::devices(spec)?,
        None => vec![flags.backend.device()?],
    };
    config.validate()?;
    let artifact_dir = flags
        .artifact_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("artifacts").join(example));
    announce(flags, &config, &devices, &data, &artifact_dir);
    let options = TrainOptions {
        initial_model: initial_model(flags, &config, &devices[0])?,
        artifact_dir: artifact_dir.clone(),
        resume: flags.resume,
        overwrite: flags.overwrite,
        stop: Some(stop_on_signals()?),
        progress: if flags.no_tui {
            Progress::Lines
        } else {
            Progress::Dashboard
        },
        class_names: data.classes,
        strategy: flags.strategy,
    };
    let trained = nin::train::train(&config, data.train, data.test, &devices, &options)?;
    // Finish queued GPU work before the process tears the devices down.
    for device in &devices {
        device.sync()?;
    }
    let report = &trained.report;
    println!(
        "trained {} epochs in {:.0} s ({:.0} training images/s)",
        report.epochs, report.wall_seconds, report.train_images_per_second
    );
    for class in &report.per_class_accuracy {
        println!("  {:<12} {:.4}", class.class, class.accuracy);
    }
    if let Some(path) = &flags.export {
        nin::pytorch::save_safetensors(&trained.model, path)?;
        println!("PyTorch weights: {}", path.display());
    }
    println!("artifacts: {}", artifact_dir.display());
    println!("test accuracy: {:.4}", report.test_accuracy);
    Ok(())
}

/// The first screen, two lines: the network and where it trains, then the data and where the
/// artifacts go (the whole configuration is in config.json).
fn announce<Tr, Te>(
    flags: &TrainFlags,
    config: &TrainingConfig,
    devices: &[Device],
    data: &RunData<Tr, Te>,
    artifact_dir: &std::path::Path,
) where
    Tr: Dataset<ImageItem>,
    Te: Dataset<ImageItem>,
{
    let on = match devices {
        [device] => format!("{device:?}"),
        _ => format!(
            "{} devices ({}, {}), global batch {}",
            devices.len(),
            flags.strategy.name(),
            devices
                .iter()
                .map(|d| format!("{d:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            devices.len() * config.batch_size
        ),
    };
    let parameters = burn::module::Module::num_params(&config.model.init(&devices[0]));
    println!(
        "{} preset: NiN of {} blocks, {parameters} parameters, on {on}; {}",
        config.preset.name(),
        config.model.blocks.len(),
        config.recipe()
    );
    println!(
        "data: {}: {} training and {} test images, {} classes; artifacts: {}",
        data.source,
        data.train.len(),
        data.test.len(),
        data.classes.len(),
        artifact_dir.display()
    );
}

/// The weights of `--init-from`, loaded into the configuration's network.
fn initial_model(
    flags: &TrainFlags,
    config: &TrainingConfig,
    device: &Device,
) -> Result<Option<nin::Nin>, Box<dyn std::error::Error>> {
    let Some(path) = &flags.init_from else {
        return Ok(None);
    };
    let model = nin::pytorch::load(config.model.init(device), path)?;
    println!("initial weights: {}", path.display());
    Ok(Some(model))
}
