//! `perf --worker`: one measurement in a process of its own, printed as JSON for the parent.

use super::*;

/// One measurement in this process: warm-up steps, then the median of the timed ones.
pub(super) fn worker(
    args: &Args,
    preset: Preset,
    mode: Mode,
    batch: usize,
    precision: Precision,
) -> Result<(), Box<dyn std::error::Error>> {
    let (warmup, steps) = (args.warmup, args.steps);
    if !args.own_loop {
        support::retain_freed_memory_unless_declined();
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
pub(super) fn peak_rss_bytes() -> Result<u64, String> {
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
