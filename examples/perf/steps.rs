//! The main table: training steps and inference of each preset here, in PyTorch and in ONNX
//! Runtime, each measurement in a fresh process, and the ratios.

use super::*;

/// A row of the main table: what is measured.
#[derive(Clone, Copy, Debug)]
pub(super) struct Row {
    preset: Preset,
    mode: Mode,
    batch: usize,
    variant: Variant,
}

/// How this crate's side of a row runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Variant {
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
pub(super) fn steps_for(args: &Args, row: &Row) -> usize {
    args.steps * (batch_for(args, row.preset) / row.batch.max(1)).max(1)
}

/// The rows: each preset's training step and inference at its batch, the own-loop rows for
/// compact training, and inference at the further batches.
pub(super) fn rows(args: &Args) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
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
pub(super) fn step_table(
    args: &Args,
    device: &burn::tensor::Device,
    python: &Path,
    script: &Path,
    threads: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let config_dir = tempfile::tempdir()?;
    // PyTorch's default (TF32 in cuDNN's convolutions) differs from strict f32 on CUDA only.
    let peers = Peers::of(args);
    let Peers { with_ort, on_cuda } = peers;
    print_heading(args, threads, peers);
    let mut exported = std::collections::HashMap::new();
    for row in rows(args)? {
        let Row { preset, mode, .. } = row;
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
        let sides = Sides {
            args,
            python,
            script,
            threads,
            on_cuda,
            model_json: &model_json,
            onnx_model: onnx_model.as_deref(),
            optimizer: &config.optimizer,
        };
        for &precision in &args.precision {
            let summary = RowSummary::of(&sides.rounds(row, precision)?);
            let gflops = summary.ours * mode.flops(flops) as f64 / 1e9;
            let line = table_line(&summary, row, precision, gflops, peers);
            println!("{line}");
        }
    }
    Ok(())
}

/// What measuring a row on every side needs: the settings, the peers' interpreter and script,
/// and the row's network as PyTorch's JSON and, for inference on the CPU, as ONNX.
struct Sides<'a> {
    args: &'a Args,
    python: &'a Path,
    script: &'a Path,
    threads: usize,
    on_cuda: bool,
    model_json: &'a Path,
    onnx_model: Option<&'a Path>,
    optimizer: &'a nin::train::Optimizer,
}

impl Sides<'_> {
    /// `args.rounds` rounds of the row, each timing every side once. Rounds alternate the
    /// sides, so that a slow spell of the machine falls on all sides of a round rather than on
    /// one side of the whole comparison.
    fn rounds(
        &self,
        row: Row,
        precision: Precision,
    ) -> Result<Vec<Round>, Box<dyn std::error::Error>> {
        let mut rounds = Vec::with_capacity(self.args.rounds);
        for _ in 0..self.args.rounds.max(1) {
            let ours = measure_nin(self.args, row, precision)?;
            let like = self.pytorch(row, TorchPrecision::like(precision))?;
            let ort = self.onnxruntime(row, precision)?;
            let default = if self.on_cuda {
                self.pytorch(row, TorchPrecision::Default)?
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
        Ok(rounds)
    }

    fn pytorch(
        &self,
        row: Row,
        precision: TorchPrecision,
    ) -> Result<Option<Measured>, Box<dyn std::error::Error>> {
        if self.args.no_pytorch {
            return Ok(None);
        }
        let run = PyTorchRun {
            python: self.python,
            script: self.script,
            model_json: self.model_json,
            optimizer: self.optimizer,
            threads: self.threads,
            precision,
        };
        let steps = steps_for(self.args, &row);
        Ok(Some(measure_pytorch(
            &run, row.mode, row.batch, steps, self.args,
        )?))
    }

    /// ONNX Runtime, which computes in f32 only, for inference on the CPU.
    fn onnxruntime(
        &self,
        row: Row,
        precision: Precision,
    ) -> Result<Option<Measured>, Box<dyn std::error::Error>> {
        match self.onnx_model {
            Some(model) if precision == Precision::F32 => {
                let steps = steps_for(self.args, &row);
                let (python, script, threads) = (self.python, self.script, self.threads);
                Ok(Some(measure_onnxruntime(
                    python, script, model, row.batch, threads, steps, self.args,
                )?))
            }
            _ => Ok(None),
        }
    }
}

/// The peers beside this crate: ONNX Runtime for inference on the CPU, and PyTorch's default
/// (TF32) on CUDA as well as its strict f32.
#[derive(Clone, Copy)]
struct Peers {
    with_ort: bool,
    on_cuda: bool,
}

impl Peers {
    fn of(args: &Args) -> Self {
        Self {
            with_ort: !args.no_pytorch && !args.no_onnxruntime && args.torch_device == "cpu",
            on_cuda: args.torch_device.starts_with("cuda"),
        }
    }
}

/// The table's first lines: the CPU, what is compared, and the column heads.
fn print_heading(args: &Args, threads: usize, peers: Peers) {
    let Peers { with_ort, on_cuda } = peers;
    let level = SimdLevel::active();
    println!(
        "CPU: {}, {threads} threads; SIMD: {}{} ({} f32 lanes); peak {:.0} GFLOP/s (measured, \
         nin::ops::gemm::measured_peak_gflops)",
        cpu_model(),
        level.label(),
        if level == SimdLevel::detected() {
            String::new()
        } else {
            format!(", capped (the CPU has {})", SimdLevel::detected().label())
        },
        level.lanes(),
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
    if let Some((aten, onednn)) = peer_cap() {
        match cpuid_cap() {
            Some(_) => println!(
                "Every process capped at AVX2: AVX-512 hidden from `cpuid` (examples/perf/cpuid_cap.c) \
                 in this crate's workers (its kernels and `gemm`), PyTorch (also \
                 ATEN_CPU_CAPABILITY={aten}, ONEDNN_MAX_CPU_ISA={onednn}) and ONNX Runtime"
            ),
            None => println!(
                "PyTorch capped as well (ATEN_CPU_CAPABILITY={aten}, ONEDNN_MAX_CPU_ISA={onednn}); \
                 ONNX Runtime and `gemm` run the CPU's widest kernels"
            ),
        }
    }
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
}

/// One row of the table, its cells in the order of [`print_heading`]'s columns.
fn table_line(
    summary: &RowSummary,
    row: Row,
    precision: Precision,
    gflops: f64,
    peers: Peers,
) -> String {
    let Peers { with_ort, on_cuda } = peers;
    let Row {
        preset,
        mode,
        batch,
        variant,
    } = row;
    let label = format!("{}{}", mode.name(), variant.label());
    let mib = |bytes: f64| format!("{:.0} MiB", bytes / (1024.0 * 1024.0));
    let dash = || "–".to_string();
    let images = |value: Option<f64>| value.map_or_else(dash, |t| format!("{t:.1}"));
    let mut line = format!(
        "| {} | {batch} | {label} | {precision} | {:.1} | {} | {} |",
        preset.name(),
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
        gflops,
        summary.our_rss.map_or_else(dash, mib),
        summary.like.rss.map_or_else(dash, mib),
    ));
    if with_ort {
        line.push_str(&format!(" {} |", summary.ort.rss.map_or_else(dash, mib)));
    }
    line
}

/// The CPU's model name, from /proc/cpuinfo where there is one.
pub(super) fn cpu_model() -> String {
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
pub(super) struct Round {
    ours: Measured,
    like: Option<Measured>,
    ort: Option<Measured>,
    default: Option<Measured>,
}

/// A peer's side of a row over its rounds: the median images/s, the ratio of ours to it with
/// the range of the rounds' ratios, and the median peak memory.
pub(super) struct PeerSummary {
    value: Option<f64>,
    ratio: Option<String>,
    rss: Option<f64>,
}

/// The medians of a row's rounds, and the ratios with the range of the rounds' ratios.
pub(super) struct RowSummary {
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

/// Runs this program again as a worker for one measurement of `row`.
pub(super) fn measure_nin(
    args: &Args,
    row: Row,
    precision: Precision,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["--worker", row.mode.name(), "--preset", row.preset.name()]);
    // The worker's kernels run at this process's level, capped or not, and at AVX2 so do the
    // `gemm` products under them.
    command.env("NIN_SIMD", SimdLevel::active().name());
    if let Some(cap) = cpuid_cap() {
        cap.apply(&mut command);
    }
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
pub(super) fn export_onnx(
    python: &Path,
    script: &Path,
    model_json: &Path,
    onnx: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut command = peer_command(python);
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
pub(super) fn measure_onnxruntime(
    python: &Path,
    script: &Path,
    onnx: &Path,
    batch: usize,
    threads: usize,
    steps: usize,
    args: &Args,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut command = peer_command(python);
    command.arg(script).arg("--onnx-model").arg(onnx);
    command.args(["--batch", &batch.to_string()]);
    command.args(["--threads", &threads.to_string()]);
    command.args(["--steps", &steps.to_string()]);
    command.args(["--warmup", &args.warmup.to_string()]);
    run_json(command, "ONNX Runtime")
}

/// What a PyTorch measurement of one preset runs with.
pub(super) struct PyTorchRun<'a> {
    python: &'a Path,
    script: &'a Path,
    model_json: &'a Path,
    optimizer: &'a Optimizer,
    threads: usize,
    precision: TorchPrecision,
}

pub(super) fn measure_pytorch(
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
    let mut command = peer_command(python);
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
