//! The same model on every backend: equal logits for equal weights, a training step that lowers
//! the loss, records that round-trip exactly, and the backend-name errors.

use crate::common;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor};
use nin::{BackendError, BackendName, Nin, NinConfig};

const TOLERANCE: f32 = 1e-4;

/// Logits of `model` (in evaluation mode) for the test images, on `device`.
fn logits(model: &Nin, shape: [usize; 4], device: &Device) -> Vec<f32> {
    let model = model.valid().to_device(device);
    common::values(model.forward(common::pattern_images(shape, device)))
}

fn assert_same_logits_everywhere(test: &str, config: &NinConfig, shape: [usize; 4]) {
    let flex = nin::backend::device("flex").unwrap();
    flex.seed(3);
    let model = config.init(&flex);
    let reference = logits(&model, shape, &flex);
    assert!(
        reference.iter().any(|v| *v != 0.0),
        "degenerate all-zero logits"
    );
    for (name, device) in common::backends(test) {
        let got = logits(&model, shape, &device);
        let diff = common::max_abs_diff(&reference, &got);
        println!(
            "{test}: {name}: max |logit - flex| = {diff:.2e} over {} logits",
            got.len()
        );
        assert!(diff <= TOLERANCE, "{name} differs from flex by {diff}");
    }
}

#[test]
fn compact_gives_the_same_logits_on_every_backend() {
    assert_same_logits_everywhere("compact_logits", &NinConfig::compact(10), [8, 1, 28, 28]);
}

#[test]
fn d2l_gives_the_same_logits_on_every_backend() {
    assert_same_logits_everywhere("d2l_logits", &NinConfig::d2l(10), [2, 1, 224, 224]);
}

/// Cross-entropy of `model` in evaluation mode on the fixed batch.
fn eval_loss(model: &Nin, images: &Tensor<4>, targets: &Tensor<1, Int>) -> f32 {
    let device = images.device();
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(model.valid().forward(images.clone()), targets.clone());
    loss.into_scalar::<f32>()
}

#[test]
fn one_sgd_step_lowers_the_loss_on_every_backend() {
    // Dropout off so the step is deterministic and comparable across backends.
    let config = NinConfig::compact(10).with_dropout(0.0);
    let flex = nin::backend::device("flex").unwrap();
    flex.seed(11);
    let start = config.init(&flex);
    let labels: Vec<i64> = (0..16).map(|i| (i * 7 % 10) as i64).collect();

    let mut after_step = Vec::new();
    for (name, device) in common::backends("sgd_step") {
        let train_device = device.clone().autodiff();
        let model = start.clone().to_device(&train_device).train();
        let images = common::pattern_images([16, 1, 28, 28], &train_device);
        let targets = Tensor::<1, Int>::from_ints(labels.as_slice(), &train_device);

        let before = eval_loss(&model, &images, &targets);
        let loss = CrossEntropyLossConfig::new()
            .init(&train_device)
            .forward(model.forward(images.clone()), targets.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut optim = SgdConfig::new().init();
        let model = optim.step(0.1, model, grads);
        let after = eval_loss(&model, &images, &targets);

        println!("sgd_step: {name}: loss {before:.5} -> {after:.5}");
        assert!(before.is_finite() && after.is_finite());
        assert!(
            after < before,
            "{name}: loss did not fall ({before} -> {after})"
        );
        after_step.push((name, logits(&model, [4, 1, 28, 28], &flex)));
    }
    // The gradients agree too: every backend's updated model gives flex's logits.
    let (_, reference) = &after_step[0];
    for (name, got) in &after_step[1..] {
        let diff = common::max_abs_diff(reference, got);
        println!("sgd_step: {name}: updated model differs from flex by {diff:.2e}");
        assert!(
            diff <= 1e-3,
            "{name}: updated model differs from flex by {diff}"
        );
    }
}

#[test]
fn record_round_trip_gives_bit_identical_logits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nin.bpk");
    let device = nin::backend::device("flex").unwrap();
    let config = NinConfig::compact(10);

    device.seed(1);
    let saved = config.init(&device);
    let expected = logits(&saved, [4, 1, 28, 28], &device);
    saved.save_file(&path).unwrap();

    device.seed(2);
    let fresh = config.init(&device);
    assert_ne!(
        logits(&fresh, [4, 1, 28, 28], &device),
        expected,
        "seeds gave equal models"
    );
    let loaded = fresh.try_load_file(&path).unwrap();
    assert_eq!(logits(&loaded, [4, 1, 28, 28], &device), expected);

    // A record of another shape is refused rather than loaded into the wrong layers.
    let other = NinConfig::d2l(10).init(&device);
    assert!(other.try_load_file(&path).is_err());
}

#[test]
fn backend_names_parse_and_unknown_ones_are_listed() {
    for backend in BackendName::ALL {
        assert_eq!(backend.as_str().parse::<BackendName>(), Ok(backend));
    }
    assert_eq!(" WGPU ".parse::<BackendName>(), Ok(BackendName::Wgpu));

    let err = nin::backend::device("metal-ish").unwrap_err();
    assert_eq!(err, BackendError::Unknown("metal-ish".into()));
    assert_eq!(
        err.to_string(),
        "unknown backend \"metal-ish\"; valid names are: auto, flex, ndarray, wgpu, vulkan, cuda"
    );
    assert!(nin::backend::device("auto").is_ok());
    assert!(nin::backend::device("flex").is_ok());
}

#[test]
fn a_backend_left_out_of_the_build_names_its_feature() {
    let missing = BackendName::ALL.into_iter().find(|b| !b.is_compiled());
    let Some(missing) = missing else {
        eprintln!("backend_feature_error: every backend is compiled in; nothing to check");
        return;
    };
    let err = missing.device().unwrap_err();
    assert_eq!(err, BackendError::NotCompiled(missing));
    let message = err.to_string();
    assert!(
        message.contains(&format!("--features {missing}")),
        "{message}"
    );
    assert!(
        message.contains("flex"),
        "lists what is compiled in: {message}"
    );
}

/// `auto` picks a hardware GPU, else flex, and never a software adapter. What it must pick on
/// the machine at hand is known only outside the crate: `NIN_EXPECT_AUTO` says `flex` (no GPU;
/// CI sets it, its only adapter being lavapipe) or `gpu`. Unset, the test checks only what
/// holds on every machine.
#[test]
fn auto_prefers_a_hardware_gpu_and_falls_back_to_flex() {
    let test = "auto_backend";
    let device = nin::backend::device("auto").unwrap();
    let flex = nin::backend::device("flex").unwrap();
    println!("{test}: picked {device:?}");
    match nin::backend::devices("wgpu:cpu") {
        Ok(software) => assert!(
            !software.contains(&device),
            "auto picked the software adapter {device:?}"
        ),
        Err(err) => println!("{test}: no software adapter to refuse: {err}"),
    }
    match std::env::var("NIN_EXPECT_AUTO").as_deref() {
        Ok("flex") => assert_eq!(device, flex, "NIN_EXPECT_AUTO=flex"),
        Ok("gpu") => assert_ne!(device, flex, "NIN_EXPECT_AUTO=gpu"),
        Ok(other) => panic!("NIN_EXPECT_AUTO is `{other}`; set it to `flex` or `gpu`"),
        Err(_) => eprintln!(
            "{test}: NIN_EXPECT_AUTO is not set, so which device auto must pick here is unknown \
             (set it to `flex` or `gpu`)"
        ),
    }
}
