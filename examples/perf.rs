//! Times NiN training steps and inference here and in PyTorch, side by side, and prints a
//! table: images/s for each, the ratio, the achieved GFLOP/s, and each run's peak memory.
//!
//! ```text
//! cargo run --release --example perf
//! cargo run --release --example perf -- --python ~/.venvs/torch/bin/python --d2l-batch 128
//! cargo run --release --example perf -- --python ~/.venvs/torch/bin/python --rounds 5
//! cargo run --release --example perf -- --layers   # every convolution, pass by pass
//! cargo run --release --example perf -- --gemm     # the matrix products under them
//! ```
//!
//! Every measurement runs in a fresh process (this program again, or
//! `benches/pytorch_reference.py`), so its peak resident set is its own. Both sides build the
//! same network from the preset's `NinConfig`, use the preset's optimiser, random data and as
//! many threads as the machine has cores.

#[cfg(feature = "cube")]
#[path = "support/cube_layers.rs"]
mod cube_layers;
#[path = "support/kernels.rs"]
mod kernels;
mod support;
#[path = "../benches/support/workload.rs"]
mod workload;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, ValueEnum};
use nin::Precision;
use nin::ops::ConvGeometry;
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
    /// Device for PyTorch's side: `cpu`, or `cuda` to compare GPUs on the same card.
    #[arg(long, default_value = "cpu")]
    torch_device: String,
    /// Precisions to measure, comma-separated: f32, f16, bf16. Each is compared with its like
    /// in PyTorch (strict f32, autocast f16, autocast bf16) and, on CUDA, with PyTorch's
    /// default f32 too (TF32 tensor cores allowed in convolutions).
    #[arg(long, default_value = "f32", value_delimiter = ',')]
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
    /// Print what the --backend device is and offers (its compiler, float types and
    /// tensor-core tiles), instead of timing anything.
    #[arg(long)]
    probe: bool,
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

    if args.gemm {
        return gemm_table(&args);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let python = args
        .python
        .clone()
        .or_else(|| std::env::var_os("NIN_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let script = pytorch_script();
    if args.layers {
        return layer_table(&args, &python, &script, threads);
    }
    step_table(&args, &device, &python, &script, threads)
}

/// A row of the main table: what is measured.
#[derive(Clone, Copy, Debug)]
struct Row {
    preset: Preset,
    mode: Mode,
    batch: usize,
    variant: Variant,
}

/// How this crate's side of a row runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    /// As the trainer and the examples run it.
    Plain,
    /// A training loop of the user's own: nothing of the crate called before the steps.
    OwnLoop,
    /// That loop with the C allocator's defaults (`NIN_RETAIN_FREED_MEMORY=0`).
    AllocatorDefaults,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "",
            Variant::OwnLoop => ", own loop",
            Variant::AllocatorDefaults => ", allocator defaults",
        }
    }
}

/// Timed steps of a measurement of `row`: `--steps`, times as many as the preset's batch
/// holds `row.batch` (so that a batch of one is timed over as many images as a full batch).
fn steps_for(args: &Args, row: &Row) -> usize {
    args.steps * (batch_for(args, row.preset) / row.batch.max(1)).max(1)
}

/// The rows: each preset's training step and inference at its batch, the own-loop rows for
/// compact training, and inference at the further batches.
fn rows(args: &Args) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
    let extra: Vec<usize> = args
        .infer_batches
        .iter()
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.trim()
                .parse::<usize>()
                .map_err(|err| format!("--infer-batches {b:?}: {err}"))
        })
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for preset in [Preset::Compact, Preset::D2l] {
        let batch = batch_for(args, preset);
        let row = |mode, batch, variant| Row {
            preset,
            mode,
            batch,
            variant,
        };
        rows.push(row(Mode::Train, batch, Variant::Plain));
        if preset == Preset::Compact && !args.no_loop_rows {
            rows.push(row(Mode::Train, batch, Variant::OwnLoop));
            rows.push(row(Mode::Train, batch, Variant::AllocatorDefaults));
        }
        rows.push(row(Mode::Infer, batch, Variant::Plain));
        for &small in extra.iter().filter(|&&b| b != batch && b > 0) {
            rows.push(row(Mode::Infer, small, Variant::Plain));
        }
    }
    Ok(rows)
}

/// The main table: whole training steps and inference passes here, in PyTorch and (inference
/// on the CPU) in ONNX Runtime.
fn step_table(
    args: &Args,
    device: &burn::tensor::Device,
    python: &Path,
    script: &Path,
    threads: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let config_dir = tempfile::tempdir()?;
    // PyTorch's default (TF32 in cuDNN's convolutions) differs from strict f32 on CUDA only.
    let on_cuda = args.torch_device.starts_with("cuda");
    let with_ort = !args.no_pytorch && !args.no_onnxruntime && args.torch_device == "cpu";
    let level = nin::ops::simd_level();
    println!(
        "CPU: {}, {threads} threads; SIMD: {} ({} f32 lanes); peak {:.0} GFLOP/s (measured, \
         nin::ops::gemm::measured_peak_gflops)",
        cpu_model(),
        level.name,
        level.f32_lanes,
        nin::ops::gemm::measured_peak_gflops(),
    );
    println!(
        "nin on {} vs PyTorch on {}{}, {threads} CPU threads each; median of {} steps after {} \
         warm-up steps; {} round(s) per row, alternating the sides; each precision against \
         PyTorch's like (f32: strict f32, TF32 off; f16/bf16: torch.autocast){}",
        args.backend,
        args.torch_device,
        if with_ort {
            " and ONNX Runtime (CPU, inference)"
        } else {
            ""
        },
        args.steps,
        args.warmup,
        args.rounds.max(1),
        if on_cuda {
            ", and against PyTorch's default (TF32)"
        } else {
            ""
        }
    );
    println!();
    let mut header = String::from(
        "| preset | batch | mode | precision | nin img/s | PyTorch img/s | nin / PyTorch |",
    );
    let mut rule = String::from("|---|---:|---|---|---:|---:|---:|");
    if with_ort {
        header.push_str(" ONNX Runtime img/s | nin / ONNX Runtime |");
        rule.push_str("---:|---:|");
    }
    if on_cuda {
        header.push_str(" PyTorch TF32 img/s | nin / TF32 |");
        rule.push_str("---:|---:|");
    }
    let peak_rss = if with_ort {
        " nin peak RSS | PyTorch peak RSS | ONNX Runtime peak RSS |"
    } else {
        " nin peak RSS | PyTorch peak RSS |"
    };
    println!("{header} nin GFLOP/s |{peak_rss}");
    println!(
        "{rule}---:|---:|---:|{}",
        if with_ort { "---:|" } else { "" }
    );
    let mut exported = std::collections::HashMap::new();
    for row in rows(args)? {
        let Row {
            preset,
            mode,
            batch,
            variant,
        } = row;
        let config = TrainingConfig::preset(preset);
        let flops = config
            .model
            .init(device)
            .forward_flops(workload::image_shape(&config))?;
        let model_json = config_dir.path().join(format!("{}.json", preset.name()));
        std::fs::write(&model_json, serde_json::to_vec(&config.model)?)?;
        let onnx_model = if with_ort && mode == Mode::Infer {
            if let std::collections::hash_map::Entry::Vacant(entry) = exported.entry(preset.name())
            {
                let path = config_dir.path().join(format!("{}.onnx", preset.name()));
                export_onnx(python, script, &model_json, &path)?;
                entry.insert(path);
            }
            exported.get(preset.name()).cloned()
        } else {
            None
        };
        for &precision in &args.precision {
            let pytorch = |torch_precision: TorchPrecision| -> Result<Option<Measured>, Box<dyn std::error::Error>> {
                if args.no_pytorch {
                    return Ok(None);
                }
                let run = PyTorchRun {
                    python,
                    script,
                    model_json: &model_json,
                    optimizer: &config.optimizer,
                    threads,
                    precision: torch_precision,
                };
                Ok(Some(measure_pytorch(&run, mode, batch, steps_for(args, &row), args)?))
            };
            // ONNX Runtime computes in f32 only.
            let onnxruntime = || -> Result<Option<Measured>, Box<dyn std::error::Error>> {
                match &onnx_model {
                    Some(model) if precision == Precision::F32 => {
                        let steps = steps_for(args, &row);
                        Ok(Some(measure_onnxruntime(
                            python, script, model, batch, threads, steps, args,
                        )?))
                    }
                    _ => Ok(None),
                }
            };
            // Rounds alternate the sides, so that a slow spell of the machine falls on all
            // sides of a round rather than on one side of the whole comparison.
            let mut rounds = Vec::with_capacity(args.rounds);
            for _ in 0..args.rounds.max(1) {
                let ours = measure_nin(args, row, precision)?;
                let like = pytorch(TorchPrecision::like(precision))?;
                let ort = onnxruntime()?;
                let default = if on_cuda {
                    pytorch(TorchPrecision::Default)?
                } else {
                    None
                };
                rounds.push(Round {
                    ours,
                    like,
                    ort,
                    default,
                });
            }
            let summary = RowSummary::of(&rounds);
            let gflops = |images_per_s: f64| images_per_s * mode.flops(flops) as f64 / 1e9;
            let mib = |bytes: f64| format!("{:.0} MiB", bytes / (1024.0 * 1024.0));
            let dash = || "–".to_string();
            let images = |value: Option<f64>| value.map_or_else(dash, |t| format!("{t:.1}"));
            let mut line = format!(
                "| {} | {batch} | {}{} | {precision} | {:.1} | {} | {} |",
                preset.name(),
                mode.name(),
                variant.label(),
                summary.ours,
                images(summary.like.value),
                summary.like.ratio.clone().unwrap_or_else(dash),
            );
            if with_ort {
                line.push_str(&format!(
                    " {} | {} |",
                    images(summary.ort.value),
                    summary.ort.ratio.clone().unwrap_or_else(dash),
                ));
            }
            if on_cuda {
                line.push_str(&format!(
                    " {} | {} |",
                    images(summary.default.value),
                    summary.default.ratio.clone().unwrap_or_else(dash),
                ));
            }
            line.push_str(&format!(
                " {:.1} | {} | {} |",
                gflops(summary.ours),
                summary.our_rss.map_or_else(dash, mib),
                summary.like.rss.map_or_else(dash, mib),
            ));
            if with_ort {
                line.push_str(&format!(" {} |", summary.ort.rss.map_or_else(dash, mib)));
            }
            println!("{line}");
        }
    }
    Ok(())
}

/// The CPU's model name, from /proc/cpuinfo where there is one.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

/// One round of a row: this crate's measurement, PyTorch's in the same precision, ONNX
/// Runtime's (CPU inference), and PyTorch's default f32 (TF32) where that differs.
struct Round {
    ours: Measured,
    like: Option<Measured>,
    ort: Option<Measured>,
    default: Option<Measured>,
}

/// A peer's side of a row over its rounds: the median images/s, the ratio of ours to it with
/// the range of the rounds' ratios, and the median peak memory.
struct PeerSummary {
    value: Option<f64>,
    ratio: Option<String>,
    rss: Option<f64>,
}

/// The medians of a row's rounds, and the ratios with the range of the rounds' ratios.
struct RowSummary {
    ours: f64,
    our_rss: Option<f64>,
    like: PeerSummary,
    ort: PeerSummary,
    default: PeerSummary,
}

impl RowSummary {
    fn of(rounds: &[Round]) -> Self {
        let peer = |theirs: &dyn Fn(&Round) -> Option<&Measured>| {
            let ratios: Vec<f64> = rounds
                .iter()
                .filter_map(|round| theirs(round).map(|t| round.ours.images_per_s / t.images_per_s))
                .collect();
            let ratio = median(ratios.clone()).map(|ratio| {
                let (low, high) = ratios
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
                if ratios.len() > 1 {
                    format!("**{ratio:.2}×** ({low:.2}–{high:.2})")
                } else {
                    format!("**{ratio:.2}×**")
                }
            });
            PeerSummary {
                value: median(
                    rounds
                        .iter()
                        .filter_map(|r| theirs(r).map(|t| t.images_per_s))
                        .collect(),
                ),
                ratio,
                rss: median(
                    rounds
                        .iter()
                        .filter_map(|r| theirs(r).map(|t| t.peak_rss_bytes))
                        .collect(),
                ),
            }
        };
        Self {
            ours: median(rounds.iter().map(|r| r.ours.images_per_s).collect()).unwrap_or_default(),
            our_rss: median(rounds.iter().map(|r| r.ours.peak_rss_bytes).collect()),
            like: peer(&|r| r.like.as_ref()),
            ort: peer(&|r| r.ort.as_ref()),
            default: peer(&|r| r.default.as_ref()),
        }
    }
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

/// A convolution of a preset: the preset, the layer's name and its geometry.
type PresetLayer = (Preset, String, ConvGeometry);

/// Every convolution of each preset at its batch size, with the model it belongs to.
fn preset_layers(args: &Args) -> Result<Vec<PresetLayer>, Box<dyn std::error::Error>> {
    let device = nin::backend::device("flex")?;
    let mut layers = Vec::new();
    for preset in [Preset::Compact, Preset::D2l] {
        let config = TrainingConfig::preset(preset);
        let model = config.model.init(&device);
        let image = workload::image_shape(&config);
        for (name, g) in kernels::conv_layers(&model, image, batch_for(args, preset)) {
            layers.push((preset, name, g));
        }
    }
    Ok(layers)
}

/// Measures and prints this machine's FMA peak.
fn peak_line() -> f64 {
    let peak = nin::ops::gemm::measured_peak_gflops();
    println!(
        "peak: {peak:.0} GFLOP/s, measured with independent FMAs of the widest vectors on all {} threads \
         (nin::ops::gemm::measured_peak_gflops)",
        rayon::current_num_threads()
    );
    peak
}

/// `perf --layers`: GFLOP/s of each pass of each convolution, here and in PyTorch.
fn layer_table(
    args: &Args,
    python: &Path,
    script: &Path,
    threads: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    nin::ops::retain_freed_memory();
    let layers = preset_layers(args)?;
    #[cfg(feature = "cube")]
    if matches!(args.backend.as_str(), "wgpu" | "vulkan" | "cuda") {
        return cube_layer_table(args, python, script, threads, &layers);
    }
    let theirs = pytorch_layers(
        args,
        python,
        script,
        threads,
        &layers,
        TorchPrecision::StrictF32,
    )?;
    let peak = peak_line();
    println!(
        "GFLOP/s of each pass; nin's kernels / PyTorch, median of {} runs; \"im2col\": the \
         kernel of training steps (NCHW), \"direct\": the kernel of inference (blocked layout, \
         an image per thread); weight gradient includes the bias's; nin's input gradient is its \
         backward pass with it less the one without",
        args.steps
    );
    println!();
    println!(
        "| preset | layer | batch | input | kernel | nin im2col fwd | nin direct fwd | PyTorch \
         fwd | nin dW | PyTorch dW | nin dX | PyTorch dX |"
    );
    println!("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut totals = [0.0f64; 6];
    for (index, (preset, name, g)) in layers.iter().enumerate() {
        let ours = kernels::time_layer(g, args.steps);
        let direct_layer = nin::ops::DirectConvLayer::new(g);
        let direct = kernels::median_seconds(1, args.steps, || {
            std::hint::black_box(direct_layer.run());
        });
        let flops = g.flops_forward() as f64;
        let rate = |seconds: f64| flops / seconds / 1e9;
        let their = theirs.as_ref().map(|list| {
            let seconds = |key: &str| list[index][key].as_f64().unwrap_or(f64::NAN);
            [
                seconds("forward"),
                seconds("weight_grad"),
                seconds("input_grad"),
            ]
        });
        let cell = |s: Option<f64>| s.map_or("–".to_string(), |s| format!("{:.1}", rate(s)));
        // The first layer's images take no gradient in training.
        let needs_input_grad = name != "0.conv";
        println!(
            "{} {:.1} | {:.1} | {} | {:.1} | {} | {} | {} |",
            layer_cells(*preset, name, g),
            rate(ours.forward),
            rate(direct),
            cell(their.map(|t| t[0])),
            rate(ours.weight_grad),
            cell(their.map(|t| t[1])),
            match (needs_input_grad, ours.input_grad) {
                (false, _) => "(none)".to_string(),
                (true, Some(seconds)) => format!("{:.1}", rate(seconds)),
                (true, None) => "(noise)".to_string(),
            },
            if needs_input_grad {
                cell(their.map(|t| t[2]))
            } else {
                "(none)".into()
            },
        );
        let dx = if needs_input_grad {
            ours.input_grad.unwrap_or(0.0)
        } else {
            0.0
        };
        let their_dx = their.map_or(0.0, |t| if needs_input_grad { t[2] } else { 0.0 });
        totals[0] += ours.forward;
        totals[1] += ours.weight_grad + dx;
        totals[2] += their.map_or(0.0, |t| t[0]);
        totals[3] += their.map_or(0.0, |t| t[1] + their_dx);
        totals[4] += flops;
        totals[5] += flops * if needs_input_grad { 2.0 } else { 1.0 };
    }
    println!();
    println!(
        "all layers: nin forward {:.1} s, backward {:.1} s; PyTorch forward {:.1} s, backward \
         {:.1} s (sums over both presets); nin at {:.0} % of peak forward, {:.0} % backward",
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        100.0 * totals[4] / totals[0] / 1e9 / peak,
        100.0 * totals[5] / totals[1] / 1e9 / peak
    );
    Ok(())
}

/// The first cells of a layer's row: `| preset | layer | batch | input | kernel |`.
fn layer_cells(preset: Preset, name: &str, g: &ConvGeometry) -> String {
    format!(
        "| {} | {name} | {} | {}×{}×{} | {}×{}/{} p{} |",
        preset.name(),
        g.batch,
        g.in_channels,
        g.input[0],
        g.input[1],
        g.kernel[0],
        g.kernel[1],
        g.stride[0],
        g.padding[0],
    )
}

/// PyTorch's seconds of each pass of each layer (`forward`, `weight_grad`, `input_grad`), or
/// `None` with `--no-pytorch`.
fn pytorch_layers(
    args: &Args,
    python: &Path,
    script: &Path,
    threads: usize,
    layers: &[PresetLayer],
    precision: TorchPrecision,
) -> Result<Option<Vec<Value>>, Box<dyn std::error::Error>> {
    if args.no_pytorch {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("layers.json");
    let listing: Vec<Value> = layers
        .iter()
        .map(|(preset, name, g)| {
            json!({
                "name": format!("{} {name}", preset.name()),
                "input": [g.batch, g.in_channels, g.input[0], g.input[1]],
                "weight": [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]],
                "stride": g.stride,
                "padding": g.padding,
            })
        })
        .collect();
    std::fs::write(&file, serde_json::to_vec(&listing)?)?;
    let mut command = Command::new(python);
    command.arg(script).arg("--layers").arg(&file);
    command.args(["--threads", &threads.to_string()]);
    command.args(["--steps", &args.steps.to_string()]);
    command.args(["--warmup", &args.warmup.max(1).to_string()]);
    command.args(["--device", &args.torch_device]);
    command.args(["--precision", precision.name()]);
    let value = run_json_value(
        command,
        &format!("{} {}", python.display(), script.display()),
    )?;
    Ok(Some(
        value["layers"]
            .as_array()
            .cloned()
            .ok_or("no layer list from PyTorch")?,
    ))
}

/// `perf --layers` on a cube backend: each pass of each k×k convolution with burn's kernel and
/// this crate's, the one the autotuner keeps, and PyTorch's, as GFLOP/s.
#[cfg(feature = "cube")]
fn cube_layer_table(
    args: &Args,
    python: &Path,
    script: &Path,
    threads: usize,
    layers: &[PresetLayer],
) -> Result<(), Box<dyn std::error::Error>> {
    use nin::ops::cube_conv::ConvKernel;

    let device = nin::backend::device(&args.backend)?;
    let precision = args.precision.first().copied().unwrap_or_default();
    precision.check(&device)?;
    // The 1×1 layers are matrix products on every path; the k×k ones have two kernels.
    let windows: Vec<PresetLayer> = layers
        .iter()
        .filter(|(_, _, g)| !g.is_pointwise())
        .cloned()
        .collect();
    let theirs = pytorch_layers(
        args,
        python,
        script,
        threads,
        &windows,
        TorchPrecision::like(precision),
    )?;
    println!(
        "{precision} GFLOP/s of each pass of the k×k convolutions on {device:?}: burn's kernel, \
         this crate's (im2col + burn's matrix products), the one autotune keeps, and PyTorch \
         ({}) on {}; median of {} timings; weight gradients include the bias's; input gradients \
         are the backward pass with them less the one without",
        TorchPrecision::like(precision).name(),
        args.torch_device,
        args.steps
    );
    println!();
    println!(
        "| preset | layer | batch | input | kernel | burn fwd | nin fwd | kept | PyTorch fwd | burn \
         dW | nin dW | kept | PyTorch dW | burn dX | nin dX | kept | PyTorch dX |"
    );
    println!("|---|---|---:|---|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---|---:|");
    for (index, (preset, name, g)) in windows.iter().enumerate() {
        // The first layer's images take no gradient in training.
        let input_grad = name != "0.conv";
        let times = cube_layers::time_layer(g, &device, precision.dtype(), args.steps, input_grad);
        let rate = |seconds: Option<f64>| {
            seconds.map_or("–".to_string(), |s| {
                format!("{:.1}", g.flops_forward() as f64 / s / 1e9)
            })
        };
        let kept =
            |pass: &cube_layers::PassTimes| pass.tuned.map_or("–", ConvKernel::name).to_string();
        let pytorch = |key: &str| theirs.as_ref().and_then(|list| list[index][key].as_f64());
        let mut row = layer_cells(*preset, name, g);
        for (pass, key) in [
            (&times.forward, "forward"),
            (&times.weight_grad, "weight_grad"),
            (&times.input_grad, "input_grad"),
        ] {
            let none = key == "input_grad" && !input_grad;
            let [burn, ours] = pass.seconds;
            if none {
                row.push_str(" (none) | (none) | – | (none) |");
            } else {
                row.push_str(&format!(
                    " {} | {} | {} | {} |",
                    rate(burn),
                    rate(ours),
                    kept(pass),
                    rate(pytorch(key))
                ));
            }
        }
        println!("{row}");
    }
    Ok(())
}

/// `perf --gemm`: each matrix product the kernel runs, one per thread and threaded.
fn gemm_table(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    nin::ops::retain_freed_memory();
    let layers = preset_layers(args)?;
    let peak = peak_line();
    // The libraries compared: gemm, and private-gemm-x86 and matrixmultiply when their features
    // are on (matrixmultiply's "threaded" column uses its own global setting,
    // MATMUL_NUM_THREADS).
    #[allow(unused_mut)]
    let mut libraries: Vec<(&str, kernels::Multiply)> = vec![("gemm", nin::ops::gemm::matmul_gemm)];
    #[cfg(all(feature = "private-gemm-x86", target_arch = "x86_64"))]
    libraries.push(("private-gemm-x86", nin::ops::gemm::matmul_private_gemm_x86));
    #[cfg(feature = "matrixmultiply")]
    libraries.push(("matrixmultiply", nin::ops::gemm::matmul_matrixmultiply));
    println!(
        "gemm 0.19 is what flex and this crate's kernel use; GFLOP/s, median of {} runs: \
         \"one per thread\" runs a product on every thread at once (the kernel's split, summed), \
         \"threaded\" one product over all threads",
        args.steps
    );
    println!();
    let mut header = String::from("| preset | product | m×k · k×n | images per product |");
    let mut rule = String::from("|---|---|---|---:|");
    for (library, _) in &libraries {
        header.push_str(&format!(" {library} one per thread | {library} threaded |"));
        rule.push_str("---:|---:|");
    }
    println!("{header} best % of peak |");
    println!("{rule}---:|");
    let mut seen = std::collections::HashSet::new();
    for (preset, name, g) in layers {
        for product in kernels::layer_products(&name, &g, rayon::current_num_threads()) {
            if !seen.insert((product.m, product.k, product.n, product.rhs_transposed)) {
                continue;
            }
            let mut row = format!(
                "| {} | {} | {}×{} · {}×{}{} | {} |",
                preset.name(),
                product.name,
                product.m,
                product.k,
                product.k,
                product.n,
                if product.rhs_transposed { " (ᵀ)" } else { "" },
                product.images,
            );
            let mut best = 0f64;
            for &(_, multiply) in &libraries {
                let (split, threaded) = kernels::time_product(&product, multiply, args.steps);
                row.push_str(&format!(" {split:.1} | {threaded:.1} |"));
                best = best.max(split).max(threaded);
            }
            println!("{row} {:.0} % |", 100.0 * best / peak);
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

/// Runs this program again as a worker for one measurement of `row`.
fn measure_nin(
    args: &Args,
    row: Row,
    precision: Precision,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--worker", row.mode.name(), "--preset", row.preset.name()]);
    command.args(["--backend", &args.backend]);
    command.args(["--precision", precision.name()]);
    command.args(["--steps", &steps_for(args, &row).to_string()]);
    command.args(["--warmup", &args.warmup.to_string()]);
    command.args([
        &format!("--{}-batch", row.preset.name()),
        &row.batch.to_string(),
    ]);
    match row.variant {
        Variant::Plain => {}
        Variant::OwnLoop => {
            command.arg("--own-loop");
        }
        Variant::AllocatorDefaults => {
            command.arg("--own-loop");
            command.env("NIN_RETAIN_FREED_MEMORY", "0");
        }
    }
    run_json(command, "the nin worker")
}

/// Exports `model_json`'s network to `onnx` with PyTorch (`pytorch_reference.py --export-onnx`).
fn export_onnx(
    python: &Path,
    script: &Path,
    model_json: &Path,
    onnx: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut command = Command::new(python);
    command.arg(script).arg("--config").arg(model_json);
    command.arg("--export-onnx").arg(onnx);
    let output = command
        .output()
        .map_err(|err| format!("could not start {}: {err}", python.display()))?;
    if !output.status.success() {
        return Err(format!(
            "exporting the network to ONNX failed ({}):\n{}\nONNX Runtime is the peer for CPU \
             inference: `~/.venvs/torch/bin/pip install onnxruntime onnx`, or run with \
             --no-onnxruntime",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )
        .into());
    }
    Ok(())
}

/// ONNX Runtime's inference of `onnx` at `batch` (`pytorch_reference.py --onnx-model`).
fn measure_onnxruntime(
    python: &Path,
    script: &Path,
    onnx: &Path,
    batch: usize,
    threads: usize,
    steps: usize,
    args: &Args,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut command = Command::new(python);
    command.arg(script).arg("--onnx-model").arg(onnx);
    command.args(["--batch", &batch.to_string()]);
    command.args(["--threads", &threads.to_string()]);
    command.args(["--steps", &steps.to_string()]);
    command.args(["--warmup", &args.warmup.to_string()]);
    run_json(command, "ONNX Runtime")
}

/// What a PyTorch measurement of one preset runs with.
struct PyTorchRun<'a> {
    python: &'a Path,
    script: &'a Path,
    model_json: &'a Path,
    optimizer: &'a Optimizer,
    threads: usize,
    precision: TorchPrecision,
}

fn measure_pytorch(
    run: &PyTorchRun<'_>,
    mode: Mode,
    batch: usize,
    steps: usize,
    args: &Args,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let PyTorchRun {
        python,
        script,
        model_json,
        optimizer,
        threads,
        precision,
    } = *run;
    let mut command = Command::new(python);
    command.arg(script).arg("--config").arg(model_json);
    command.args(["--precision", precision.name()]);
    command.args(["--mode", mode.name()]);
    command.args(["--batch", &batch.to_string()]);
    command.args(["--threads", &threads.to_string()]);
    command.args(["--steps", &steps.to_string()]);
    command.args(["--warmup", &args.warmup.to_string()]);
    command.args(["--device", &args.torch_device]);
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

/// One measurement in this process: warm-up steps, then the median of the timed ones.
fn worker(
    args: &Args,
    preset: Preset,
    mode: Mode,
    batch: usize,
    precision: Precision,
) -> Result<(), Box<dyn std::error::Error>> {
    let (warmup, steps) = (args.warmup, args.steps);
    if !args.own_loop {
        nin::ops::retain_freed_memory();
    }
    let device = nin::backend::device(&args.backend)?;
    precision.check(&device)?;
    let mut work = Workload::new(preset, batch, &device, precision);
    let step = || match mode {
        Mode::Train => {
            work.train_step();
        }
        Mode::Infer => {
            work.infer();
        }
    };
    let median = kernels::median_seconds(warmup, steps, step);
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
