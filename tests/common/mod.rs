//! Helpers shared by the integration tests: which backends to run on, and how a missing one is
//! reported (skipped with a printed reason, or a failure when the CI variables require it).
#![allow(dead_code)]

#[cfg(feature = "dataset")]
pub mod cifar;
pub mod conv;
#[cfg(feature = "download")]
pub mod http;
#[cfg(feature = "dataset")]
pub mod idx;
pub mod reference;

use burn::tensor::{Device, Tensor};

/// True when the environment variable is set to `1`.
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v.trim() == "1")
}

/// Reports a resource the test cannot use: a failure when `var` requires it, else a printed skip.
pub fn unavailable(test: &str, what: &str, var: &str, reason: &str) {
    if required(var) {
        panic!("{test}: {var}=1 but {what} is unavailable: {reason}");
    }
    eprintln!("{test}: skipping {what}: {reason} (set {var}=1 to make this a failure)");
}

/// The device of backend `name`, or `None` after reporting why it is missing (a failure when
/// the environment variable `var` requires the backend).
fn optional_backend(test: &str, name: &str, var: &str) -> Option<Device> {
    match nin::backend::device(name) {
        Ok(device) => Some(device),
        Err(err) => {
            unavailable(test, &format!("the {name} backend"), var, &err.to_string());
            None
        }
    }
}

/// The wgpu device, or `None` after reporting why it is missing.
pub fn wgpu(test: &str) -> Option<Device> {
    optional_backend(test, "wgpu", "NIN_REQUIRE_WGPU")
}

/// The CUDA device, or `None` after reporting why it is missing. CUDA is only required where a
/// machine with an NVIDIA GPU runs the suite.
pub fn cuda(test: &str) -> Option<Device> {
    optional_backend(test, "cuda", "NIN_REQUIRE_CUDA")
}

/// Every backend this run can use, named: flex always, ndarray when compiled, wgpu and CUDA
/// when a device is present.
pub fn backends(test: &str) -> Vec<(&'static str, Device)> {
    let mut list = vec![(
        "flex",
        nin::backend::device("flex").expect("flex is a default feature"),
    )];
    match nin::backend::device("ndarray") {
        Ok(device) => list.push(("ndarray", device)),
        Err(err) => eprintln!("{test}: skipping ndarray: {err}"),
    }
    if let Some(device) = wgpu(test) {
        list.push(("wgpu", device));
    }
    if let Some(device) = cuda(test) {
        list.push(("cuda", device));
    }
    list
}

/// The tensor's values as `f32`.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

/// Every convolution weight and bias of `block`, layer by layer, as one list.
pub fn block_weights(block: &nin::NinBlock) -> Vec<f32> {
    let mut weights = Vec::new();
    for (_, layer) in block.layers() {
        weights.extend(values(layer.conv.weight.val()));
        if let Some(bias) = &layer.conv.bias {
            weights.extend(values(bias.val()));
        }
    }
    weights
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A deterministic batch of images in [0, 1): a smooth pattern that differs per image and
/// channel, so logits are not all alike.
pub fn pattern_images(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let [n, c, h, w] = shape;
    let data: Vec<f32> = (0..n * c * h * w)
        .map(|i| {
            let (x, y) = ((i % w) as f32, ((i / w) % h) as f32);
            let k = (i / (h * w)) as f32 + 1.0;
            (0.5 + 0.5 * (0.37 * k * x + 0.23 * y + k).sin()) * 0.999
        })
        .collect();
    Tensor::<1>::from_floats(data.as_slice(), device).reshape(shape)
}

/// The directory the library finds (`NIN_DATA_DIR`, the user cache, the system copy), or
/// `None` after reporting why there is none.
#[cfg(feature = "dataset")]
pub fn fashion_mnist_dir(test: &str) -> Option<std::path::PathBuf> {
    match nin::data::source::locate(&nin::data::source::FASHION_MNIST_FILES, None) {
        Ok(found) => {
            println!("{test}: using {} ({})", found.dir.display(), found.place);
            Some(found.dir)
        }
        Err(err) => {
            unavailable(
                test,
                "the Fashion-MNIST files",
                "NIN_REQUIRE_DATA",
                &err.to_string(),
            );
            None
        }
    }
}

/// `target/<profile>/examples/<name>`: `cargo test` builds the examples beside the tests.
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join(name)
}

/// What a finished training run left in `dir`: `model.bpk`'s bytes, and `metrics.csv`'s rows
/// without their last column, the measured speed, which no two runs share.
#[cfg(feature = "train")]
pub fn finished_run(dir: &std::path::Path) -> (Vec<u8>, Vec<String>) {
    let artifacts = nin::train::ArtifactDir::new(dir);
    let model = std::fs::read(artifacts.model()).expect("a finished run writes model.bpk");
    let csv = std::fs::read_to_string(artifacts.metrics()).unwrap();
    let rows = csv
        .lines()
        .map(|row| {
            row.rsplit_once(',')
                .map_or(row, |(kept, _)| kept)
                .to_string()
        })
        .collect();
    (model, rows)
}

/// Asserts that the finished run in `dir` left what `expected` ([`finished_run`]) holds: the same
/// metrics rows and the same `model.bpk`, byte for byte. `what` names the run in the message.
#[cfg(feature = "train")]
pub fn assert_same_run(what: &str, dir: &std::path::Path, expected: &(Vec<u8>, Vec<String>)) {
    let (model, rows) = finished_run(dir);
    assert_eq!(rows, expected.1, "{what}: other metrics than expected");
    // Not `assert_eq!`: the files are hundreds of kilobytes.
    assert!(
        model == expected.0,
        "{what}: another model.bpk than expected"
    );
}

/// A two-block NiN with batch norm and dropout for the 28×28 images of [`striped`], which it
/// learns as well as the four-block presets do: on a software GPU every layer shape costs kernel
/// compilations (on each device), so the training tests there keep to two blocks.
pub fn two_block_nin(classes: usize) -> nin::NinConfig {
    nin::NinConfig::new(vec![
        nin::NinBlockConfig::new(1, 16, 5).with_stride(2),
        nin::NinBlockConfig::new(16, classes, 3).with_padding(1),
    ])
    .with_input_size(Some([28, 28]))
    .with_batch_norm(true)
    .with_dropout(0.1)
}

/// `count` 28×28 grayscale images in `classes` classes (up to four), whose class is the
/// orientation and spacing of their stripes, with noise: learnable in a few epochs, not by
/// brightness alone.
#[cfg(feature = "dataset")]
pub fn striped(count: usize, classes: usize, seed: u64) -> Vec<nin::data::ImageItem> {
    const SIDE: usize = 28;
    let mut next = xorshift(seed);
    (0..count)
        .map(|index| {
            let label = index % classes;
            let phase = (next() % 8) as usize;
            let pixels = (0..SIDE * SIDE)
                .map(|i| {
                    let (y, x) = (i / SIDE, i % SIDE);
                    let along = if label.is_multiple_of(2) { x } else { y };
                    let period = if label < 2 { 4 } else { 8 };
                    let on = (along + phase) % period < period / 2;
                    (if on { 170 } else { 40 }) + (next() % 40) as u8
                })
                .collect();
            nin::data::ImageItem::grayscale(pixels, SIDE, SIDE, label)
        })
        .collect()
}

/// A seeded xorshift generator of `u64`s: generated test data that is the same on every run
/// without a dependency on a random-number crate.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
