//! `perf --layers`: every convolution of each preset, pass by pass, against the measured peak
//! and PyTorch.

use super::*;

/// A convolution of a preset: the preset, the layer's name and its geometry.
pub(super) type PresetLayer = (Preset, String, ConvGeometry);

/// Every convolution of each preset at its batch size, with the model it belongs to.
pub(super) fn preset_layers(args: &Args) -> Result<Vec<PresetLayer>, Box<dyn std::error::Error>> {
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
pub(super) fn peak_line() -> f64 {
    let peak = nin::ops::gemm::measured_peak_gflops();
    println!(
        "peak: {peak:.0} GFLOP/s, measured with independent FMAs of {} vectors on all {} threads \
         (nin::ops::gemm::measured_peak_gflops)",
        nin::ops::SimdLevel::active().label(),
        rayon::current_num_threads()
    );
    peak
}

/// `perf --layers`: GFLOP/s of each pass of each convolution, here and in PyTorch.
pub(super) fn layer_table(
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
    let mut totals = Totals::default();
    for (index, (preset, name, g)) in layers.iter().enumerate() {
        let their = theirs.as_ref().map(|list| {
            let seconds = |key: &str| list[index][key].as_f64().unwrap_or(f64::NAN);
            [
                seconds("forward"),
                seconds("weight_grad"),
                seconds("input_grad"),
            ]
        });
        let row = LayerRow::measure(g, args.steps, their, name);
        row.print(*preset, name, g);
        totals.add(&row);
    }
    println!();
    println!(
        "all layers: nin forward {:.1} s, backward {:.1} s; PyTorch forward {:.1} s, backward \
         {:.1} s (sums over both presets); nin at {:.0} % of peak forward, {:.0} % backward",
        totals.forward,
        totals.backward,
        totals.their_forward,
        totals.their_backward,
        100.0 * totals.forward_flops / totals.forward / 1e9 / peak,
        100.0 * totals.backward_flops / totals.backward / 1e9 / peak
    );
    Ok(())
}

/// One convolution's row of `perf --layers`: nin's im2col and direct kernels, and PyTorch's
/// forward, weight-gradient and input-gradient seconds where it ran.
struct LayerRow {
    ours: kernels::LayerTimes,
    direct: f64,
    theirs: Option<[f64; 3]>,
    flops: f64,
    /// The first layer's images take no gradient in training.
    needs_input_grad: bool,
}

impl LayerRow {
    fn measure(g: &ConvGeometry, steps: usize, theirs: Option<[f64; 3]>, name: &str) -> Self {
        let ours = kernels::time_layer(g, steps);
        let direct_layer = nin::ops::DirectConvLayer::new(g);
        let direct = kernels::median_seconds(1, steps, || {
            std::hint::black_box(direct_layer.run());
        });
        Self {
            ours,
            direct,
            theirs,
            flops: g.flops_forward() as f64,
            needs_input_grad: name != "0.conv",
        }
    }

    fn rate(&self, seconds: f64) -> f64 {
        self.flops / seconds / 1e9
    }

    fn print(&self, preset: Preset, name: &str, g: &ConvGeometry) {
        let cell = |s: Option<f64>| s.map_or("–".to_string(), |s| format!("{:.1}", self.rate(s)));
        let their = |pass: usize| cell(self.theirs.map(|t| t[pass]));
        println!(
            "{} {:.1} | {:.1} | {} | {:.1} | {} | {} | {} |",
            layer_cells(preset, name, g),
            self.rate(self.ours.forward),
            self.rate(self.direct),
            their(0),
            self.rate(self.ours.weight_grad),
            their(1),
            match (self.needs_input_grad, self.ours.input_grad) {
                (false, _) => "(none)".to_string(),
                (true, Some(seconds)) => format!("{:.1}", self.rate(seconds)),
                (true, None) => "(noise)".to_string(),
            },
            if self.needs_input_grad {
                their(2)
            } else {
                "(none)".into()
            },
        );
    }
}

/// Sums over the rows: seconds of each side's passes, and the FLOPs they did.
#[derive(Default)]
struct Totals {
    forward: f64,
    backward: f64,
    their_forward: f64,
    their_backward: f64,
    forward_flops: f64,
    backward_flops: f64,
}

impl Totals {
    fn add(&mut self, row: &LayerRow) {
        let input_grad = |seconds: f64| if row.needs_input_grad { seconds } else { 0.0 };
        self.forward += row.ours.forward;
        self.backward += row.ours.weight_grad + input_grad(row.ours.input_grad.unwrap_or(0.0));
        self.their_forward += row.theirs.map_or(0.0, |t| t[0]);
        self.their_backward += row.theirs.map_or(0.0, |t| t[1] + input_grad(t[2]));
        self.forward_flops += row.flops;
        self.backward_flops += row.flops * if row.needs_input_grad { 2.0 } else { 1.0 };
    }
}

/// The first cells of a layer's row: `| preset | layer | batch | input | kernel |`.
pub(super) fn layer_cells(preset: Preset, name: &str, g: &ConvGeometry) -> String {
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
pub(super) fn pytorch_layers(
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
    let mut command = peer_command(python);
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
pub(super) fn cube_layer_table(
    args: &Args,
    python: &Path,
    script: &Path,
    threads: usize,
    layers: &[PresetLayer],
) -> Result<(), Box<dyn std::error::Error>> {
    use nin::ops::ConvKernel;

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
