//! Times NiN training steps and inference here and in PyTorch, side by side, and prints a
//! table: images/s for each, the ratio, the achieved GFLOP/s, and each run's peak memory.
//!
//! ```text
//! cargo run --release --example perf
//! cargo run --release --example perf -- --python ~/.venvs/torch/bin/python --d2l-batch 128
//! ```
//!
//! Every measurement runs in a fresh process (this program again, or
//! `benches/pytorch_reference.py`), so its peak resident set is its own. Both sides build the
//! same network from the preset's `NinConfig`, use the preset's optimiser, random data and as
//! many threads as the machine has cores.

mod support;
#[path = "../benches/support/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use nin::train::{Optimizer, Preset, TrainingConfig};
use serde_json::{Value, json};
use workload::Workload;

#[derive(Parser, Debug)]
#[command(about = "NiN throughput here and in PyTorch, side by side")]
struct Args {
    /// Python with torch installed (default: $NIN_PYTHON, else python3).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Backend for this side.
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Timed steps per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Batch for the compact preset.
    #[arg(long, default_value_t = 128)]
    compact_batch: usize,
    /// Batch for the d2l preset.
    #[arg(long, default_value_t = 32)]
    d2l_batch: usize,
    /// Only this side, without PyTorch.
    #[arg(long)]
    no_pytorch: bool,
    /// Internal: run one measurement and print it as JSON.
    #[arg(long, hide = true)]
    worker: Option<Mode>,
    /// Internal: the worker's preset.
    #[arg(long, hide = true, default_value = "compact")]
    preset: String,
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
    let preset: Preset = args.preset.parse()?;
    if let Some(mode) = args.worker {
        let batch = batch_for(&args, preset);
        return worker(&args.backend, preset, mode, batch, args.warmup, args.steps);
    }

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("NIN_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pytorch_reference.py");
    let config_dir = tempfile::tempdir()?;
    println!(
        "nin on {} vs PyTorch on the CPU, {threads} threads each; median of {} steps after {} \
         warm-up steps",
        args.backend, args.steps, args.warmup
    );
    println!();
    println!(
        "| preset | batch | mode | nin img/s | PyTorch img/s | nin / PyTorch | nin GFLOP/s | \
         PyTorch GFLOP/s | nin peak RSS | PyTorch peak RSS |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for preset in [Preset::Compact, Preset::D2l] {
        let batch = batch_for(&args, preset);
        let config = TrainingConfig::preset(preset);
        let flops = config
            .model
            .init(&nin::backend::device(&args.backend)?)
            .forward_flops(workload::image_shape(&config))?;
        let model_json = config_dir.path().join(format!("{}.json", preset.name()));
        std::fs::write(&model_json, serde_json::to_vec(&config.model)?)?;
        for mode in [Mode::Train, Mode::Infer] {
            let ours = measure_nin(&args, preset, mode, batch)?;
            let theirs = if args.no_pytorch {
                None
            } else {
                Some(measure_pytorch(
                    &python,
                    &script,
                    &model_json,
                    &config.optimizer,
                    mode,
                    batch,
                    threads,
                    &args,
                )?)
            };
            let gflops = |m: &Measured| m.images_per_s * mode.flops(flops) as f64 / 1e9;
            let mib = |m: &Measured| format!("{:.0} MiB", m.peak_rss_bytes / (1024.0 * 1024.0));
            let dash = || "–".to_string();
            println!(
                "| {} | {batch} | {} | {:.1} | {} | {} | {:.1} | {} | {} | {} |",
                preset.name(),
                mode.name(),
                ours.images_per_s,
                theirs
                    .as_ref()
                    .map_or_else(dash, |t| format!("{:.1}", t.images_per_s)),
                theirs.as_ref().map_or_else(dash, |t| format!(
                    "**{:.2}×**",
                    ours.images_per_s / t.images_per_s
                )),
                gflops(&ours),
                theirs
                    .as_ref()
                    .map_or_else(dash, |t| format!("{:.1}", gflops(t))),
                mib(&ours),
                theirs.as_ref().map_or_else(dash, mib),
            );
        }
    }
    Ok(())
}

fn batch_for(args: &Args, preset: Preset) -> usize {
    match preset {
        Preset::Compact => args.compact_batch,
        Preset::D2l => args.d2l_batch,
    }
}

/// Runs this program again as a worker for one measurement.
fn measure_nin(
    args: &Args,
    preset: Preset,
    mode: Mode,
    batch: usize,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--worker", mode.name(), "--preset", preset.name()]);
    command.args(["--backend", &args.backend]);
    command.args(["--steps", &args.steps.to_string()]);
    command.args(["--warmup", &args.warmup.to_string()]);
    command.args([&format!("--{}-batch", preset.name()), &batch.to_string()]);
    run_json(command, "the nin worker")
}

#[allow(clippy::too_many_arguments)]
fn measure_pytorch(
    python: &Path,
    script: &Path,
    model_json: &Path,
    optimizer: &Optimizer,
    mode: Mode,
    batch: usize,
    threads: usize,
    args: &Args,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut command = Command::new(python);
    command.arg(script).arg("--config").arg(model_json);
    command.args(["--mode", mode.name()]);
    command.args(["--batch", &batch.to_string()]);
    command.args(["--threads", &threads.to_string()]);
    command.args(["--steps", &args.steps.to_string()]);
    command.args(["--warmup", &args.warmup.to_string()]);
    command.args(["--lr", &optimizer.lr().to_string()]);
    match *optimizer {
        Optimizer::Sgd {
            momentum,
            weight_decay,
            ..
        } => {
            command.args(["--optimizer", "sgd"]);
            command.args(["--momentum", &momentum.unwrap_or(0.0).to_string()]);
            command.args(["--weight-decay", &weight_decay.unwrap_or(0.0).to_string()]);
        }
        Optimizer::AdamW { weight_decay, .. } => {
            command.args(["--optimizer", "adamw"]);
            command.args(["--weight-decay", &weight_decay.to_string()]);
        }
    }
    run_json(
        command,
        &format!("{} {}", python.display(), script.display()),
    )
    .map_err(|err| {
        format!(
            "{err}\nPyTorch is needed for the comparison: `python3 -m venv ~/.venvs/torch && \
             ~/.venvs/torch/bin/pip install torch numpy`, then pass --python \
             ~/.venvs/torch/bin/python (or set NIN_PYTHON), or run with --no-pytorch"
        )
        .into()
    })
}

/// Runs `command` and reads the JSON line it prints last.
fn run_json(mut command: Command, what: &str) -> Result<Measured, Box<dyn std::error::Error>> {
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
    let value: Value = serde_json::from_str(line)
        .map_err(|err| format!("{what} printed {line:?}, not a JSON result: {err}"))?;
    let number = |key: &str| {
        value[key]
            .as_f64()
            .ok_or_else(|| format!("{what}: no number {key:?} in {line}"))
    };
    Ok(Measured {
        images_per_s: number("images_per_s")?,
        peak_rss_bytes: number("peak_rss_bytes")?,
    })
}

/// One measurement in this process: warm-up steps, then the median of the timed ones.
fn worker(
    backend: &str,
    preset: Preset,
    mode: Mode,
    batch: usize,
    warmup: usize,
    steps: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let device = nin::backend::device(backend)?;
    let mut work = Workload::new(preset, batch, &device);
    let mut step = || match mode {
        Mode::Train => {
            work.train_step();
        }
        Mode::Infer => {
            work.infer();
        }
    };
    for _ in 0..warmup {
        step();
    }
    let mut seconds: Vec<f64> = (0..steps.max(1))
        .map(|_| {
            let start = Instant::now();
            step();
            start.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let result = json!({
        "seconds_per_step": median,
        "images_per_s": batch as f64 / median,
        "peak_rss_bytes": peak_rss_bytes()?,
    });
    println!("{result}");
    Ok(())
}

/// The process's peak resident set (VmHWM), from /proc on Linux.
fn peak_rss_bytes() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|err| format!("peak memory needs /proc/self/status: {err}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .ok_or_else(|| "no VmHWM line in /proc/self/status".to_string())
}
