//! Prints a NiN preset layer by layer, as d2l does for its network, on a chosen backend.
//!
//! ```text
//! cargo run --release --example shapes -- --preset d2l --backend auto
//! ```

use std::process::ExitCode;

use burn::module::Module;
use burn::tensor::Tensor;
use nin::NinConfig;

const USAGE: &str = "usage: shapes [--preset d2l|compact|cifar10] [--backend auto|flex|ndarray|wgpu|cuda] [--batch N]";

struct Args {
    preset: String,
    backend: String,
    batch: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        preset: "d2l".into(),
        backend: "auto".into(),
        batch: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--preset" => args.preset = value,
            "--backend" => args.backend = value,
            "--batch" => {
                args.batch = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--batch takes a positive integer, got {value:?}"))?
            }
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn preset(name: &str) -> Result<(NinConfig, [usize; 3]), String> {
    match name {
        "d2l" => Ok((NinConfig::d2l(10), [1, 224, 224])),
        "compact" => Ok((NinConfig::compact(10), [1, 28, 28])),
        "cifar10" => Ok((NinConfig::cifar10(), [3, 32, 32])),
        other => Err(format!(
            "unknown preset {other:?}; choose d2l, compact or cifar10"
        )),
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let (config, [c, h, w]) = preset(&args.preset)?;
    let device = nin::backend::device(&args.backend).map_err(|e| e.to_string())?;
    println!("preset {} on {device:?}", args.preset);

    let model = config.init(&device).valid();
    println!("{} parameters", model.num_params());
    let input = Tensor::<4>::random(
        [args.batch, c, h, w],
        burn::tensor::Distribution::Default,
        &device,
    );
    let logits = model
        .forward_observed(input, |stage, x| {
            println!("{:<28} output shape: {:?}", stage.to_string(), x.dims())
        })
        .map_err(|e| e.to_string())?;
    println!("{:<28} output shape: {:?}", "logits", logits.dims());
    // Reading the values waits for the device; a GPU runtime torn down at exit with work still
    // queued can crash the process.
    let first: Vec<f32> = logits
        .slice(0..1)
        .into_data()
        .try_to_vec()
        .map_err(|e| format!("reading logits: {e:?}"))?;
    println!("logits of the first (random) image: {first:.4?}");
    device.sync().map_err(|e| format!("device failed: {e:?}"))?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
