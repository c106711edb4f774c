//! Training-step and inference throughput of the presets: `compact` at batch 128 and `d2l` at
//! batch 32, on flex, and on ndarray and wgpu when those features are compiled in (with short
//! sample counts: they are much slower on a CPU). Before the timings, it prints how many cores
//! flex kept busy, which catches a build without burn's `rayon` feature.
//!
//! ```text
//! cargo bench --bench model
//! cargo bench --bench model --features ndarray,wgpu -- inference
//! ```
//!
//! `cargo run --release --example perf` times the same work next to PyTorch.

#[path = "support/workload.rs"]
mod workload;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use nin::Precision;
use nin::train::Preset;
use workload::Workload;

/// The presets and the batch each is timed at.
const CASES: [(Preset, usize); 2] = [(Preset::Compact, 128), (Preset::D2l, 32)];

/// The backends compiled in, with flex first; the others get fewer samples.
fn backends() -> Vec<&'static str> {
    let mut names = vec!["flex"];
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    names
}

fn group<'a>(c: &'a mut Criterion, name: String, backend: &str) -> BenchmarkGroup<'a, WallTime> {
    // As the trainer does: steps reuse the memory earlier steps freed.
    nin::ops::retain_freed_memory();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    if backend != "flex" {
        group.warm_up_time(Duration::from_millis(1));
        group.measurement_time(Duration::from_secs(1));
    }
    group
}

fn bench_train_step(c: &mut Criterion) {
    for backend in backends() {
        let device = nin::backend::device(backend).expect("a compiled-in backend");
        let mut group = group(c, format!("train_step/{backend}"), backend);
        for (preset, batch) in CASES {
            let mut work = Workload::new(preset, batch, &device, Precision::F32);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{}/batch{batch}", preset.name()), |b| {
                b.iter(|| black_box(work.train_step()))
            });
        }
        group.finish();
    }
}

fn bench_inference(c: &mut Criterion) {
    for backend in backends() {
        let device = nin::backend::device(backend).expect("a compiled-in backend");
        let mut group = group(c, format!("inference/{backend}"), backend);
        for (preset, batch) in CASES {
            let work = Workload::new(preset, batch, &device, Precision::F32);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{}/batch{batch}", preset.name()), |b| {
                b.iter(|| black_box(work.infer()))
            });
        }
        group.finish();
    }
}

/// Process CPU time (user + system) in seconds, from /proc on Linux.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Prints how many cores flex kept busy during d2l inference: about the machine's core count
/// with rayon, 1.0 without it.
fn report_cores_busy(_: &mut Criterion) {
    let device = nin::backend::device("flex").expect("flex is a default feature");
    let work = Workload::new(Preset::D2l, 16, &device, Precision::F32);
    black_box(work.infer());
    let (Some(cpu_start), wall_start) = (cpu_seconds(), Instant::now()) else {
        eprintln!("cores busy: not measured (no /proc/self/stat)");
        return;
    };
    for _ in 0..3 {
        black_box(work.infer());
    }
    let wall = wall_start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().unwrap_or(cpu_start) - cpu_start;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "flex: {:.2} cores busy on average during d2l inference ({cores} available)",
        cpu / wall
    );
}

criterion_group!(
    benches,
    report_cores_busy,
    bench_train_step,
    bench_inference
);
criterion_main!(benches);
