//! The weights shipped in the crate: their accuracy on the real test set, f16's cost, loading
//! that is repeatable and refuses damaged bytes, and `predict` using them when there is no run.
#![cfg(all(feature = "pretrained", feature = "train", feature = "flex"))]

use crate::common;

use std::path::Path;
use std::process::Command;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Distribution, Tensor, TensorData, f16};
use nin::data::{FashionMnist, Split};
use nin::pretrained::{self, PretrainedError, Weights};
use nin::train::{ArtifactDir, EpochMetrics, Preset, TrainingConfig, evaluate};

/// Rounds every stored value (weights, biases, batch-norm scales, shifts and running
/// statistics) to f16 and back: the weights as an f16 copy would hold them.
struct ThroughF16;

impl ModuleMapper for ThroughF16 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| {
            let device = tensor.device();
            let shape = tensor.shape();
            let values: Vec<f32> = tensor
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .into_iter()
                .map(|v| f16::from_f32(v).to_f32())
                .collect();
            Tensor::from_data(TensorData::new(values, shape), &device)
        })
    }
}

#[test]
fn the_weights_belong_to_the_compact_preset() {
    assert_eq!(
        Weights::FashionMnistCompact.config(),
        TrainingConfig::preset(Preset::Compact).model
    );
    assert_eq!(
        Some(Weights::FashionMnistCompact.normalize()),
        TrainingConfig::preset(Preset::Compact).normalize
    );
    let bytes = Weights::FashionMnistCompact.bytes().len();
    assert!(bytes <= 1 << 20, "{bytes} bytes: over 1 MiB");
    let prepare = Weights::FashionMnistCompact.preprocessing();
    assert_eq!((prepare.channels, prepare.side), (1, 28));
    assert_eq!(prepare.normalize, Weights::FashionMnistCompact.normalize());
}

/// `Preprocessing::input`, which the classifier and the browser page use, gives the batcher's
/// values for an image of the network's size, and refuses an image of another size by name.
#[test]
fn one_image_as_input_is_what_the_batcher_makes_of_it() {
    use burn::data::dataloader::batcher::Batcher;
    use nin::data::ImageItem;

    let device = Device::flex();
    let prepare = Weights::FashionMnistCompact.preprocessing();
    let pixels: Vec<u8> = (0..28 * 28).map(|i| (i * 37 % 256) as u8).collect();
    let item = ImageItem::grayscale(pixels, 28, 28, 0);
    let input = prepare.input(&item, &device).unwrap();
    let batched = prepare.batcher().batch(vec![item], &device).images;
    assert_eq!(input.dims(), [1, 1, 28, 28]);
    assert_eq!(
        input.into_data().try_to_vec::<f32>().unwrap(),
        batched.into_data().try_to_vec::<f32>().unwrap()
    );
    let small = ImageItem::grayscale(vec![0; 14 * 14], 14, 14, 0);
    let error = prepare.input(&small, &device).unwrap_err().to_string();
    assert!(
        error.contains("[1, 14, 14]") && error.contains("Preprocessing::decode"),
        "{error}"
    );
}

/// The training run kept next to the shipped weights, in the repository.
fn shipped_run() -> ArtifactDir {
    ArtifactDir::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/fashion_mnist_compact"))
}

#[test]
fn the_run_kept_next_to_the_weights_is_the_one_documented() {
    let weights = Weights::FashionMnistCompact;
    let run = shipped_run();
    let config = run.read_config().unwrap();
    assert_eq!(config.model, weights.config());
    assert_eq!(config.normalize, Some(weights.normalize()));
    assert_eq!(config.epochs, 30);
    assert!(
        config.augment.is_some(),
        "the command trains with --augment"
    );
    let report = run.read_report().unwrap();
    assert_eq!((report.epochs, report.test_images), (30, 10_000));
    assert!(
        (report.test_accuracy - weights.test_accuracy()).abs() < 5e-5,
        "report.json says {}, the crate {}",
        report.test_accuracy,
        weights.test_accuracy()
    );

    // A second run of the same command reproduces the accuracy within 0.3 points.
    let second: TrainingConfig = serde_json::from_str(
        &std::fs::read_to_string(run.root().join("second-run-config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(second, config);
    let last_test_accuracy = |file: &str| -> f64 {
        let csv = std::fs::read_to_string(run.root().join(file)).unwrap();
        let rows = EpochMetrics::parse_csv(&csv).unwrap();
        let last = rows.last().unwrap();
        assert_eq!(last.epoch, 30, "{file} ends before epoch 30");
        last.test_accuracy
    };
    let first = last_test_accuracy("metrics.csv");
    let again = last_test_accuracy("second-run-metrics.csv");
    println!("test accuracy after epoch 30: {first:.4}, second run {again:.4}");
    assert!((first - report.test_accuracy).abs() < 5e-5, "{first}");
    assert!((first - again).abs() <= 0.003, "{first} against {again}");
    // The embedded bytes are the file kept with the run.
    let file = std::fs::read(run.model()).unwrap();
    assert!(
        file == weights.bytes(),
        "model.bpk differs from the embedded weights"
    );
}

#[test]
fn the_shipped_weights_reach_their_stated_accuracy_on_the_test_set() {
    let test = "the_shipped_weights_reach_their_stated_accuracy_on_the_test_set";
    let Some(dir) = common::fashion_mnist_dir(test) else {
        return;
    };
    let test_set = FashionMnist::from_dir(&dir, Split::Test).unwrap();
    let device = Device::flex();
    let weights = Weights::FashionMnistCompact;
    // The weights' own description of their input, which the classifier and `predict` follow.
    let batcher = weights.preprocessing().batcher();
    let model = pretrained::fashion_mnist(&device);
    let accuracy = evaluate(&model, &test_set, &batcher, 500, &device)
        .unwrap()
        .accuracy();
    println!(
        "f32: test accuracy {accuracy:.4} (stated {:.4})",
        weights.test_accuracy()
    );
    assert!(
        (accuracy - weights.test_accuracy()).abs() <= 0.001,
        "{accuracy} against the stated {}",
        weights.test_accuracy()
    );
    // The training run that made the weights measured them on the same 10,000 images: the
    // evaluation now gives its count of correct images, to within the few images whose two
    // best logits tie within float rounding (the kernels' sums have changed order since).
    let recorded = shipped_run().read_report().unwrap().test_accuracy;
    println!("f32: the training run recorded {recorded:.4}");
    assert!(
        (accuracy - recorded).abs() <= 3e-4 + 1e-9,
        "the shipped weights score {accuracy} on the test set; the run that trained them \
         recorded {recorded}"
    );

    // What an f16 copy would cost.
    let halved = model.map(&mut ThroughF16);
    let f16_accuracy = evaluate(&halved, &test_set, &batcher, 500, &device)
        .unwrap()
        .accuracy();
    println!(
        "f16: test accuracy {f16_accuracy:.4} ({:+.4})",
        f16_accuracy - accuracy
    );
    // The documentation says an f16 copy keeps the accuracy: at most one image in 2,000 may
    // change its class.
    assert!((f16_accuracy - accuracy).abs() <= 0.0005, "{f16_accuracy}");
}

#[test]
fn loading_twice_gives_bit_identical_logits() {
    let device = Device::flex();
    let images = Tensor::<4>::random([16, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let logits = |model: nin::Nin| {
        model
            .forward(images.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect::<Vec<u32>>()
    };
    let first = logits(Weights::FashionMnistCompact.load(&device).unwrap());
    let second = logits(Weights::FashionMnistCompact.load(&device).unwrap());
    assert_eq!(first, second);
    // And they are not an untrained network's.
    let fresh = logits(Weights::FashionMnistCompact.config().init(&device));
    assert_ne!(first, fresh);
}

#[test]
fn damaged_bytes_are_refused_with_a_clean_error() {
    let device = Device::flex();
    let weights = Weights::FashionMnistCompact;
    let mut flipped = weights.bytes().to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let half = &weights.bytes()[..weights.bytes().len() / 2];
    for (what, bytes) in [("flipped", &flipped[..]), ("cut", half), ("empty", &[][..])] {
        let err = weights.load_bytes(bytes, &device).unwrap_err();
        println!("{what}: {err}");
        assert!(
            matches!(err, PretrainedError::Checksum { .. }),
            "{what}: {err}"
        );
        assert!(err.to_string().contains("Weights::load"), "{err}");
    }
    assert!(weights.load_bytes(weights.bytes(), &device).is_ok());
}

#[test]
#[cfg(feature = "pytorch")] // `predict` is built with `train` and `pytorch`
fn predict_without_a_run_uses_the_shipped_weights_and_says_so() {
    // The first Fashion-MNIST test image, an ankle boot, kept next to the weights.
    let work = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("weights/fashion_mnist_compact/test-0-ankle-boot.png");
    let output = Command::new(common::example("predict"))
        .current_dir(work.path())
        .args([file.to_str().unwrap(), "--backend", "flex"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    println!("{stderr}{stdout}");
    assert!(
        stderr.contains("pretrained Fashion-MNIST weights"),
        "{stderr}"
    );
    assert!(
        stdout.starts_with(&format!("{}: Ankle boot", file.display())),
        "{stdout}"
    );

    // A directory that is named but holds no run is an error, not a silent fallback.
    let output = Command::new(common::example("predict"))
        .current_dir(work.path())
        .args([
            file.to_str().unwrap(),
            "--backend",
            "flex",
            "--artifact-dir",
            "nowhere",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no training run here"));
}
