//! The integration tests, one module a file of `tests/`, built as one test binary.
//!
//! Each file used to be a binary of its own that instantiated and linked burn's generic code
//! again; one binary compiles that once (docs/ci.md). `Cargo.toml` sets `autotests = false`, so a
//! new file in `tests/` runs only once it is named below, and [`every_test_file_is_a_module`]
//! fails until it is.

mod common;

mod backends;
mod batcher;
mod blocked;
mod checkpoints;
mod cifar;
mod colour;
mod conv2d;
mod cube_conv;
mod download;
mod fashion_mnist;
mod fast_path;
mod folder;
mod hostile_inputs;
mod idx;
mod max_pool;
mod model;
mod precision;
mod pretrained;
mod repeatable;
mod scale_out;
mod simd_levels;
mod source;
mod train;
mod train_config;
mod web;
mod weights;

/// A file in `tests/` that is not declared above would never be compiled or run.
#[test]
fn every_test_file_is_a_module() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let declared = include_str!("all.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&tests).expect("tests/ is readable") {
        let path = entry.expect("a directory entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(module) = name.strip_suffix(".rs") else {
            continue;
        };
        if module != "all" && !declared.contains(&format!("\nmod {module};\n")) {
            missing.push(name.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "tests/{missing:?} would not run: add `mod <name>;` to tests/all.rs"
    );
}
