//! Inference throughput of the presets on the CPU backend, and a check that flex really uses
//! every core (burn's `rayon` feature, which this crate's `flex` feature turns on).
//!
//! `cargo bench --bench forward`

use std::hint::black_box;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nin::{Nin, NinConfig};

fn model_and_input(config: NinConfig, batch: usize, device: &Device) -> (Nin, Tensor<4>) {
    let [h, w] = config.input_size.expect("presets name their input size");
    let channels = config.blocks[0].in_channels;
    let model = config.init(device).valid();
    let input = Tensor::random([batch, channels, h, w], Distribution::Default, device);
    (model, input)
}

fn infer(model: &Nin, input: &Tensor<4>) -> Vec<f32> {
    // Reading the logits back waits for the backend to finish.
    model
        .forward(input.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 logits")
}

/// Process CPU time (user + system) in seconds, from /proc on Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Prints how many cores flex kept busy during a d2l forward pass: about the machine's core
/// count with rayon, 1.0 without it.
fn report_cores_busy(device: &Device) {
    let (model, input) = model_and_input(NinConfig::d2l(10), 16, device);
    black_box(infer(&model, &input));
    let (Some(cpu_start), wall_start) = (cpu_seconds(), Instant::now()) else {
        eprintln!("cores busy: not measured (no /proc/self/stat)");
        return;
    };
    for _ in 0..3 {
        black_box(infer(&model, &input));
    }
    let wall = wall_start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().unwrap_or(cpu_start) - cpu_start;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "flex: {:.2} cores busy on average during d2l inference ({cores} available)",
        cpu / wall
    );
}

fn bench_inference(c: &mut Criterion) {
    let device = nin::backend::device("flex").expect("flex is a default feature");
    report_cores_busy(&device);

    let mut group = c.benchmark_group("inference/flex");
    group.sample_size(10);
    for (name, config, batch) in [
        ("compact", NinConfig::compact(10), 128),
        ("d2l", NinConfig::d2l(10), 32),
    ] {
        let (model, input) = model_and_input(config, batch, &device);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("{name}/batch{batch}"), |b| {
            b.iter(|| black_box(infer(&model, &input)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_inference);
criterion_main!(benches);
