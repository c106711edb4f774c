//! Loading and verifying all 70,000 Fashion-MNIST images from the gzip files (goal: ≤ 0.3 s on
//! a 2-core machine).
//!
//! `cargo bench --bench data` (needs the files: `apt-get install dataset-fashion-mnist` or
//! `NIN_DATA_DIR`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nin::data::{FashionMnist, Split, source};

fn bench_load(c: &mut Criterion) {
    let dir = match source::locate(&source::FASHION_MNIST_FILES, None) {
        Ok(found) => found.dir,
        Err(err) => {
            eprintln!("data bench skipped:\n{err}");
            return;
        }
    };
    let mut group = c.benchmark_group("fashion-mnist");
    group.sample_size(10);
    group.bench_function("load+verify train and test (70k images)", |b| {
        b.iter(|| {
            let train = FashionMnist::from_dir(&dir, Split::Train).expect("train split");
            let test = FashionMnist::from_dir(&dir, Split::Test).expect("test split");
            black_box((train, test))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_load);
criterion_main!(benches);
