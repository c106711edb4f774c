//! Times NiN training steps and inference here and in PyTorch, side by side, and prints a
//! table: images/s for each, the ratio, the achieved GFLOP/s, and each run's peak memory.
//!
//! ```text
//! cargo run --release --example perf
//! cargo run --release --example perf -- --python ~/.venvs/torch/bin/python --d2l-batch 128
//! cargo run --release --example perf -- --python ~/.venvs/torch/bin/python --rounds 5
//! cargo run --release --example perf -- --layers   # every convolution, pass by pass
//! cargo run --release --example perf -- --gemm     # the matrix products under them
//! cargo run --release --example perf -- --simd-levels  # the table at each SIMD level
//! ```
//!
//! Every measurement runs in a fresh process (this program again, or
//! `benches/pytorch_reference.py`), so its peak resident set is its own. Both sides build the
//! same network from the preset's `NinConfig`, use the preset's optimiser, random data and as
//! many threads as the machine has cores.

mod cpuid_cap;
#[cfg(feature = "cube")]
#[path = "../support/cube_layers.rs"]
mod cube_layers;
mod gemm;
#[path = "../support/kernels.rs"]
mod kernels;
mod layers;
mod steps;
#[path = "../support/mod.rs"]
mod support;
mod worker;
#[path = "../../benches/support/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, ValueEnum};
use nin::Precision;
use nin::names::Named;
use nin::ops::{ConvGeometry, SimdLevel};
use nin::train::{Optimizer, Preset, TrainingConfig};
use serde_json::{Value, json};
use workload::Workload;

use cpuid_cap::*;
use gemm::*;
use layers::*;
use steps::*;
use worker::*;

#[derive(Parser, Debug)]
#[command(about = "NiN throughput here and in PyTorch, side by side")]
struct Args {
    /// Python with torch installed (default: $NIN_PYTHON, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Backend for this side.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Device for PyTorch's side: `cpu`, or `cuda` to compare GPUs on the same card.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Precisions to measure, comma-separated: f32, f16, bf16. Each is compared with its like
    /// in PyTorch (strict f32, autocast f16, autocast bf16) and, on CUDA, with PyTorch's
    /// default f32 too (TF32 tensor cores allowed in convolutions).
    #[arg(long, default_value = "f32", value_delimiter = ',',
          value_parser = support::named(Precision::all()))]
    precision: Vec<Precision>,
    /// Timed steps per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Measure each row this many times, alternating the two sides; the table shows medians,
    /// and the range of the rounds' ratios.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Batch for the compact preset.
    #[arg(long, default_value_t = 128)]
    compact_batch: usize,
    /// Batch for the d2l preset.
    #[arg(long, default_value_t = 32)]
    d2l_batch: usize,
    /// Further inference batches for both presets, comma-separated (none: `--infer-batches ''`).
    #[arg(long, default_value = "8,1", value_delimiter = ',')]
    infer_batches: Vec<String>,
    /// Only this side, without PyTorch or ONNX Runtime.
    #[arg(long)]
    no_pytorch: bool,
    /// Without ONNX Runtime (the peer for CPU inference; it needs `onnxruntime` and `onnx` in
    /// the Python of --python).
    #[arg(long)]
    no_onnxruntime: bool,
    /// Without the rows of a compact training step in a loop of one's own (nothing of the
    /// crate's called first) and with the C allocator's defaults.
    #[arg(long)]
    no_loop_rows: bool,
    /// Time every convolution of both presets pass by pass (forward, weight gradient, input
    /// gradient) on the crate's kernel and in PyTorch, instead of whole steps.
    #[arg(long)]
    layers: bool,
    /// Time the matrix products of every convolution, one per thread and threaded, against the
    /// machine's peak, instead of whole steps.
    #[arg(long)]
    gemm: bool,
    /// Run the table (or --layers, --gemm) once per vector level the CPU has, widest first, each
    /// with the crate's kernels capped there (`NIN_SIMD`), so that an AVX-512 machine also
    /// measures the AVX2 path. The portable level is left out: it is for correctness, not speed.
    #[arg(long)]
    simd_levels: bool,
    /// Print what the --backend device is and offers (its compiler, float types and
    /// tensor-core tiles), instead of timing anything.
    #[arg(long)]
    probe: bool,
    /// Internal: print the SIMD level the crate detects in this process, and exit.
    #[arg(long, hide = true)]
    detected_simd: bool,
    /// Internal: run one measurement and print it as JSON.
    #[arg(long, hide = true)]
    worker: Option<Mode>,
    /// Internal: the worker's preset.
    #[arg(long, hide = true, default_value = "compact")]
    preset: String,
    /// Internal: the worker runs its steps as a user's own loop would, without calling
    /// `nin::ops::retain_freed_memory` first.
    #[arg(long, hide = true)]
    own_loop: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Mode {
    Train,
    Infer,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Infer => "infer",
        }
    }

    /// FLOPs of one image: the forward pass, or forward and the two backward products.
    fn flops(self, forward: u64) -> u64 {
        match self {
            Mode::Train => 3 * forward,
            Mode::Infer => forward,
        }
    }
}

/// One side's result for one measurement.
struct Measured {
    images_per_s: f64,
    peak_rss_bytes: f64,
}

fn main() -> ExitCode {
    support::exit_with(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.detected_simd {
        println!("{}", SimdLevel::detected().name());
        return Ok(());
    }
    let preset: Preset = args.preset.parse()?;
    if let Some(mode) = args.worker {
        let batch = batch_for(&args, preset);
        let precision = args.precision.first().copied().unwrap_or_default();
        return worker(&args, preset, mode, batch, precision);
    }
    let device = nin::backend::device(&args.backend)?;
    if args.probe {
        return probe(&device);
    }
    for precision in &args.precision {
        precision.check(&device)?;
    }

    // The capped processes' library, if one is built, goes when the run ends.
    let _remove = RemoveCpuidCap;
    if !args.simd_levels {
        return tables(&args, &device);
    }
    let levels = SimdLevel::available();
    for level in levels.into_iter().filter(|l| *l != SimdLevel::Portable) {
        SimdLevel::cap(Some(level));
        tables(&args, &device)?;
        println!();
    }
    SimdLevel::cap(None);
    Ok(())
}

/// The table the flags ask for, at the active SIMD level.
fn tables(args: &Args, device: &burn::tensor::Device) -> Result<(), Box<dyn std::error::Error>> {
    if (args.layers || args.gemm) && SimdLevel::active() != SimdLevel::detected() {
        println!(
            "this crate's side runs in this process, capped through NIN_SIMD only: `gemm` keeps \
             the CPU's widest kernels"
        );
    }
    if args.gemm {
        return gemm_table(args);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("NIN_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let script = pytorch_script();
    if args.layers {
        return layer_table(args, &python, &script, threads);
    }
    step_table(args, device, &python, &script, threads)
}

/// `perf --probe`: the device, and for a cube device its compiler, float types and tensor-core
/// tiles.
fn probe(device: &burn::tensor::Device) -> Result<(), Box<dyn std::error::Error>> {
    println!("device: {device:?}");
    #[cfg(feature = "cube")]
    if let Some(report) = nin::ops::cube_conv::device_report(device) {
        println!("name: {}", report.name);
        println!("compiler: {}", report.compiler);
        let floats: Vec<String> = report
            .float_types
            .iter()
            .map(|t| format!("{t:?}"))
            .collect();
        println!("float types: {}", floats.join(", "));
        if report.tensor_core_tiles.is_empty() {
            println!("tensor-core tiles: none");
        } else {
            println!("tensor-core tiles: {}", report.tensor_core_tiles.join(", "));
        }
    }
    Ok(())
}

/// The median of `values` (the upper one of an even count), `None` for none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn batch_for(args: &Args, preset: Preset) -> usize {
    match preset {
        // The paper's CIFAR network only runs here as a worker; it takes compact's batch of 128.
        Preset::Compact | Preset::Cifar10 => args.compact_batch,
        Preset::D2l => args.d2l_batch,
    }
}

/// `benches/pytorch_reference.py` in this source tree, else under the working directory (for a
/// binary copied to another machine together with the repository).
fn pytorch_script() -> PathBuf {
    let relative = Path::new("benches/pytorch_reference.py");
    let in_source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if in_source_tree.exists() {
        in_source_tree
    } else {
        relative.to_path_buf()
    }
}

/// A command for a peer's process (PyTorch, ONNX Runtime), with its CPU kernels capped at this
/// process's SIMD level: PyTorch's own kernels (`ATEN_CPU_CAPABILITY`) and oneDNN's
/// convolutions (`ONEDNN_MAX_CPU_ISA`) by their settings, and at AVX2 every library of the
/// process, ONNX Runtime's included, through [`cpuid_cap()`].
fn peer_command(python: &Path) -> Command {
    let mut command = Command::new(python);
    if let Some((aten, onednn)) = peer_cap() {
        command.env("ATEN_CPU_CAPABILITY", aten);
        command.env("ONEDNN_MAX_CPU_ISA", onednn);
    }
    if let Some(cap) = cpuid_cap() {
        cap.apply(&mut command);
    }
    command
}

/// The peers' settings for the active SIMD level where a cap lowered it: `None` uncapped, and
/// where PyTorch has no matching level.
fn peer_cap() -> Option<(&'static str, &'static str)> {
    if SimdLevel::active() == SimdLevel::detected() {
        return None;
    }
    match SimdLevel::active() {
        SimdLevel::Avx2 => Some(("avx2", "AVX2")),
        SimdLevel::Portable => Some(("default", "SSE41")),
        _ => None,
    }
}

/// Runs `command` and reads the JSON line it prints last.
fn run_json(command: Command, what: &str) -> Result<Measured, Box<dyn std::error::Error>> {
    let value = run_json_value(command, what)?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .ok_or_else(|| format!("{what}: no number {key:?} in {value}"))
    };
    Ok(Measured {
        images_per_s: number("images_per_s")?,
        peak_rss_bytes: number("peak_rss_bytes")?,
    })
}

/// Runs `command` and parses the last line it prints as JSON.
fn run_json_value(mut command: Command, what: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let output = command
        .output()
        .map_err(|err| format!("could not start {what}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )
        .into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|err| format!("{what} printed {line:?}, not a JSON result: {err}").into())
}

/// How PyTorch's side computes (`benches/pytorch_reference.py --precision`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum TorchPrecision {
    /// PyTorch's default f32: cuDNN may use TF32 tensor cores.
    Default,
    /// f32 with TF32 off in cuDNN and in matrix products.
    StrictF32,
    /// `torch.autocast` to f16, with a `GradScaler` in training.
    AmpF16,
    /// `torch.autocast` to bf16.
    AmpBf16,
}

impl TorchPrecision {
    /// PyTorch's counterpart of this crate's `precision`.
    fn like(precision: Precision) -> Self {
        match precision {
            Precision::F32 => TorchPrecision::StrictF32,
            Precision::F16 => TorchPrecision::AmpF16,
            Precision::Bf16 => TorchPrecision::AmpBf16,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TorchPrecision::Default => "default",
            TorchPrecision::StrictF32 => "strict-f32",
            TorchPrecision::AmpF16 => "amp-f16",
            TorchPrecision::AmpBf16 => "amp-bf16",
        }
    }
}
