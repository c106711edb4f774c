//! Classifies images with a model trained by the `fashion_mnist` example (or by
//! `nin::train::train` on images of your own, grayscale or RGB), or, before any training, with
//! the Fashion-MNIST weights shipped in the crate.
//!
//! ```text
//! cargo run --release --example predict -- shoe.png shirt.jpg
//! cargo run --release --example predict -- --index 0 --index 42 --json
//! cargo run --release --example predict -- --weights nin_d2l.pth --index 0   # d2l's PyTorch weights
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[path = "support/mod.rs"]
mod support;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use clap::Parser;
use nin::data::{FASHION_MNIST_CLASSES, FashionMnist, ImageBatcher, ImageItem, Split};
use nin::names::Named;
#[cfg(feature = "pretrained")]
use nin::pretrained::Weights;
use nin::train::{ArtifactDir, Preset, TrainingConfig, predict};
use nin::{BackendName, Nin, Precision};
use serde::Serialize;

/// Classify PNG/JPEG files, or Fashion-MNIST test images by index, with a trained model and
/// print the most likely classes with their probabilities.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Image files (PNG or JPEG). For a grayscale model they are converted to grayscale and
    /// resized to 28×28 like Fashion-MNIST, then to the model's input size; for a colour model
    /// they stay RGB and are resized to its input size.
    images: Vec<PathBuf>,
    /// A Fashion-MNIST test image to classify, by index (repeatable).
    #[arg(long = "index")]
    indices: Vec<usize>,
    /// The directory a training example wrote [default: artifacts/fashion_mnist if a run is
    /// there, else the pretrained Fashion-MNIST weights shipped in the crate].
    #[arg(long)]
    artifact_dir: Option<PathBuf>,
    /// Classify with weights from a file instead of a training run: a PyTorch state_dict
    /// (.pt/.pth) or .safetensors file in d2l's nn.Sequential layout.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// With --weights: the preset whose network and input pipeline the weights belong to
    /// (d2l: 224×224 without normalisation, as d2l's PyTorch code; compact: 28×28 normalised)
    /// [default: d2l].
    #[arg(long, value_parser = support::named(&[Preset::D2l, Preset::Compact]))]
    preset: Option<Preset>,
    /// The backend to classify on (`auto`: CUDA, else a hardware GPU through wgpu, else flex).
    #[arg(long, default_value_t = BackendName::Auto,
          value_parser = support::named(&BackendName::ALL))]
    backend: BackendName,
    /// Float type of the layers: f16 needs a GPU with shader-f16, bf16 CUDA.
    #[arg(long, default_value_t = Precision::F32, value_parser = support::named(Precision::all()))]
    precision: Precision,
    /// Directory with the Fashion-MNIST files, for --index.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Invert the files' levels (every channel): Fashion-MNIST shows light objects on black,
    /// most photos dark objects on light.
    #[arg(long)]
    invert: bool,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// One classified input.
#[derive(Debug, Serialize)]
struct Classified {
    input: String,
    /// The true class, for test images.
    label: Option<String>,
    top: Vec<Guess>,
}

#[derive(Debug, Serialize)]
struct Guess {
    class: String,
    index: usize,
    probability: f32,
}

/// How inputs are prepared for a model: how image files are read, and the batcher that turns
/// them (and test images) into the model's input, as in training.
struct Pipeline {
    file_input: FileInput,
    batcher: ImageBatcher,
}

impl Pipeline {
    /// A training run's: its configuration's normalisation and input size.
    fn for_run(config: &TrainingConfig) -> Result<Self, String> {
        let file_input = FileInput::for_model(config)?;
        let side = file_input.side as usize;
        Ok(Self {
            file_input,
            batcher: config.batcher([side, side]),
        })
    }

    /// The shipped weights' own ([`Weights::preprocessing`]).
    #[cfg(feature = "pretrained")]
    fn for_weights(weights: Weights) -> Self {
        let prepare = weights.preprocessing();
        Self {
            file_input: FileInput {
                channels: prepare.channels,
                side: prepare.side as u32,
            },
            batcher: prepare.batcher(),
        }
    }
}

/// How image files are prepared for a model: grayscale or RGB, and the side they are resized
/// to before the batcher takes over.
#[derive(Debug, Clone, Copy)]
struct FileInput {
    channels: usize,
    side: u32,
}

impl FileInput {
    /// Grayscale files at Fashion-MNIST's 28×28 for a one-channel model (the batcher resizes
    /// to the model's input from there, as in training); RGB at the model's own input size for
    /// a three-channel one.
    fn for_model(config: &TrainingConfig) -> Result<Self, String> {
        let channels = config.model.blocks[0].in_channels;
        let side = |size: Option<[usize; 2]>| size.map_or(28, |[h, _]| h as u32);
        match channels {
            1 => Ok(Self { channels, side: 28 }),
            3 => Ok(Self {
                channels,
                side: side(config.model.input_size),
            }),
            other => Err(format!(
                "the model takes {other}-channel images; image files are read as grayscale (1) \
                 or RGB (3)"
            )),
        }
    }
}

/// Reads an image file as an item of `input`'s channels and size (decoding bounded as
/// `nin::data::folder::read_image` bounds it).
fn read_image(path: &Path, invert: bool, input: FileInput) -> Result<ImageItem, String> {
    let mut item = nin::data::folder::read_image(path, input.channels, input.side as usize)
        .map_err(|e| format!("{}: cannot read the image: {e}", path.display()))?;
    if invert {
        item.pixels.iter_mut().for_each(|p| *p = 255 - *p);
    }
    Ok(item)
}

/// Where the `fashion_mnist` example writes its run unless told otherwise.
const DEFAULT_ARTIFACT_DIR: &str = "artifacts/fashion_mnist";

/// The model, how its inputs are prepared, and the class names: from a weights file with
/// --weights, else from the artifact directory, else (no directory named and no run in the
/// default one) the weights shipped in the crate.
fn load(
    args: &Args,
    device: &burn::tensor::Device,
) -> Result<(Nin, Pipeline, Vec<String>), Box<dyn std::error::Error>> {
    let fashion_mnist = || owned(&FASHION_MNIST_CLASSES);
    let Some(weights) = &args.weights else {
        if args.preset.is_some() {
            return Err(
                "--preset goes with --weights; a training run's own configuration is \
                        read from its artifact directory"
                    .into(),
            );
        }
        let artifacts = match &args.artifact_dir {
            Some(dir) => ArtifactDir::new(dir),
            None => {
                let artifacts = ArtifactDir::new(DEFAULT_ARTIFACT_DIR);
                #[cfg(feature = "pretrained")]
                if !artifacts.config().is_file() {
                    return pretrained(device);
                }
                artifacts
            }
        };
        let (model, config) = artifacts.load_model(device)?;
        // The report names the classes the model was trained on.
        let class_names = match artifacts.read_report() {
            Ok(report) => report
                .per_class_accuracy
                .into_iter()
                .map(|c| c.class)
                .collect(),
            Err(_) => fashion_mnist(),
        };
        return Ok((model, Pipeline::for_run(&config)?, class_names));
    };
    let config = TrainingConfig::preset(args.preset.unwrap_or(Preset::D2l));
    let model = nin::pytorch::load(config.model.init(device), weights)?;
    Ok((model, Pipeline::for_run(&config)?, fashion_mnist()))
}

/// The compact network with the Fashion-MNIST weights shipped in the crate, saying so on stderr.
#[cfg(feature = "pretrained")]
fn pretrained(
    device: &burn::tensor::Device,
) -> Result<(Nin, Pipeline, Vec<String>), Box<dyn std::error::Error>> {
    let weights = Weights::FashionMnistCompact;
    eprintln!(
        "no training run in {DEFAULT_ARTIFACT_DIR}: using the pretrained Fashion-MNIST weights \
         shipped in nin ({weights:?}, test accuracy {:.4}); pass --artifact-dir or --weights \
         for others",
        weights.test_accuracy()
    );
    let model = weights.load(device)?;
    Ok((
        model,
        Pipeline::for_weights(weights),
        owned(weights.class_names()),
    ))
}

/// Class names as `load` returns them.
fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|c| c.to_string()).collect()
}

/// An image to classify: what to call it, its true class where known, and its pixels.
type Input = (String, Option<usize>, ImageItem);

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.images.is_empty() && args.indices.is_empty() {
        return Err("nothing to classify: pass image files and/or --index N".into());
    }
    let device = args.backend.device()?;
    args.precision.check(&device)?;
    let (model, pipeline, class_names) = load(&args, &device)?;
    let model = model.with_precision(args.precision);

    let inputs = inputs(&args, pipeline.file_input)?;
    let items: Vec<ImageItem> = inputs.iter().map(|(_, _, item)| item.clone()).collect();
    let batch = pipeline.batcher.batch(items, &device);
    let predictions = predict(&model, batch.images, args.top.max(1))?;
    device.sync()?;

    let name = |index: usize| {
        class_names
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    };
    let classified: Vec<Classified> = inputs
        .into_iter()
        .zip(predictions)
        .map(|((input, label, _), prediction)| Classified {
            input,
            label: label.map(name),
            top: prediction
                .top
                .into_iter()
                .map(|(index, probability)| Guess {
                    class: name(index),
                    index,
                    probability,
                })
                .collect(),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&classified)?);
    } else {
        print_lines(&classified);
    }
    Ok(())
}

/// The image files, then the Fashion-MNIST test images of `--index`.
fn inputs(args: &Args, file_input: FileInput) -> Result<Vec<Input>, Box<dyn std::error::Error>> {
    let mut inputs = Vec::new();
    for path in &args.images {
        let item = read_image(path, args.invert, file_input)?;
        inputs.push((path.display().to_string(), None, item));
    }
    if args.indices.is_empty() {
        return Ok(inputs);
    }
    if file_input.channels != 1 {
        return Err(format!(
            "--index takes Fashion-MNIST test images, which are grayscale, but the model takes \
             {}-channel images; classify image files instead",
            file_input.channels
        )
        .into());
    }
    let (test_set, _) = FashionMnist::load(Split::Test, args.data_dir.as_deref())?;
    for &index in &args.indices {
        let item = test_set
            .get(index)
            .map_err(|e| format!("--index {index}: {e}"))?;
        inputs.push((format!("test image {index}"), Some(item.label), item));
    }
    Ok(inputs)
}

/// A line per image: its name, its true class where known, and the top classes.
fn print_lines(classified: &[Classified]) {
    for item in classified {
        let guesses: Vec<String> = item
            .top
            .iter()
            .map(|g| format!("{} {:.3}", g.class, g.probability))
            .collect();
        match &item.label {
            Some(label) => println!("{} (true: {label}): {}", item.input, guesses.join(", ")),
            None => println!("{}: {}", item.input, guesses.join(", ")),
        }
    }
}

fn main() -> ExitCode {
    support::retain_freed_memory_unless_declined();
    support::exit_with(run(Args::parse()))
}
