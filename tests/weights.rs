//! Weights from and for PyTorch: d2l's `nn.Sequential` layout, loading `.pth` and
//! `.safetensors` files written by PyTorch (tests/fixtures/pytorch/reference.py) and matching
//! PyTorch's logits, saving in the same layout, and the errors for files that do not fit.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use nin::pytorch::{self, WeightsError, WeightsFormat};
use nin::{Nin, NinBlockConfig, NinConfig};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn flex() -> Device {
    nin::backend::device("flex").expect("flex is a default feature")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

/// `fixtures.json`, read once.
fn fixtures() -> &'static Value {
    static FIXTURES: LazyLock<Value> = LazyLock::new(|| {
        let text = std::fs::read_to_string(fixture("fixtures.json")).expect("fixtures.json");
        serde_json::from_str(&text).expect("fixtures.json is JSON")
    });
    &FIXTURES
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect()
}

/// The small network of the fixtures (`small` or `small_bn`), built from the configuration
/// the script wrote, with fresh weights.
fn small_model(name: &str, device: &Device) -> Nin {
    let config = &fixtures()[name]["config"];
    let size = |block: &Value, field: &str| block[field].as_u64().expect(field) as usize;
    let blocks = config["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .map(|block| {
            NinBlockConfig::new(
                size(block, "in_channels"),
                size(block, "out_channels"),
                size(block, "kernel_size"),
            )
            .with_stride(size(block, "stride"))
            .with_padding(size(block, "padding"))
            .with_batch_norm(block["batch_norm"].as_bool().expect("batch_norm"))
        })
        .collect();
    NinConfig::new(blocks).init(device)
}

fn fixture_input(device: &Device) -> Tensor<4> {
    let all = fixtures();
    let shape: Vec<usize> = all["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    Tensor::from_data(TensorData::new(floats(&all["input"]), shape), device)
}

fn eval_logits(model: &Nin, device: &Device) -> Vec<f32> {
    common::values(model.valid().forward(fixture_input(device)))
}

fn assert_pytorch_logits(test: &str, name: &str, file: &str) {
    let expected = floats(&fixtures()[name]["logits"]);
    for (backend, device) in common::backends(test) {
        let model = pytorch::load(small_model(name, &device), fixture(file))
            .unwrap_or_else(|err| panic!("{file} on {backend}: {err}"));
        let got = eval_logits(&model, &device);
        let diff = common::max_abs_diff(&expected, &got);
        println!(
            "{test}: {backend}: max |logit - PyTorch| = {diff:.2e} over {} logits",
            got.len()
        );
        assert!(diff <= TOLERANCE, "{backend}: {file} differs by {diff}");
    }
}

#[test]
fn d2l_layout_is_pytorchs_state_dict() {
    let text = std::fs::read_to_string(fixture("d2l_keys.json")).unwrap();
    let pytorch: Vec<(String, Vec<usize>)> = serde_json::from_str::<Vec<Value>>(&text)
        .unwrap()
        .iter()
        .map(|entry| {
            let shape = entry["shape"].as_array().unwrap();
            (
                entry["key"].as_str().unwrap().to_string(),
                shape.iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            )
        })
        .collect();
    let model = NinConfig::d2l(10).init(&flex());
    let ours: Vec<(String, Vec<usize>)> = pytorch::torch_layout(&model)
        .into_iter()
        .map(|entry| (entry.key, entry.shape))
        .collect();
    assert_eq!(ours, pytorch);
    // Blocks at Sequential indices 0, 2, 4 and 7; convolutions at 0, 2 and 4 in each.
    assert_eq!(ours[4].0, "0.4.weight");
    assert_eq!(ours[6].0, "2.0.weight");
    assert_eq!(ours[18].0, "7.0.weight");
}

#[test]
fn pytorch_pth_gives_pytorchs_logits() {
    assert_pytorch_logits("pth_logits", "small", "small.pth");
}

#[test]
fn safetensors_gives_pytorchs_logits() {
    assert_pytorch_logits("safetensors_logits", "small", "small.safetensors");
}

#[test]
fn batch_norm_weights_and_statistics_give_pytorchs_logits() {
    assert_pytorch_logits("bn_pth_logits", "small_bn", "small_bn.pth");
    assert_pytorch_logits("bn_safetensors_logits", "small_bn", "small_bn.safetensors");
}

#[test]
fn saved_safetensors_reload_to_the_same_model() {
    let device = flex();
    let dir = tempfile::tempdir().unwrap();
    for name in ["small", "small_bn"] {
        let model =
            pytorch::load(small_model(name, &device), fixture(&format!("{name}.pth"))).unwrap();
        let path = dir.path().join(format!("{name}.safetensors"));
        pytorch::save_safetensors(&model, &path).unwrap();
        let head = std::fs::read(&path).unwrap();
        assert_eq!(
            WeightsFormat::sniff(&head),
            Some(WeightsFormat::Safetensors)
        );

        let reloaded = pytorch::load(small_model(name, &device), &path).unwrap();
        assert_eq!(
            eval_logits(&reloaded, &device),
            eval_logits(&model, &device),
            "{name}: the round trip changed the model"
        );
        // Nothing but the file itself is left in the directory.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}

/// `model` saved by `pytorch::save_safetensors` as `dir/name`, and the file read back as
/// PyTorch's loader reads it (an 8-byte length, then JSON): its bytes, its header, and the
/// header's length.
fn save_and_read_safetensors(model: &Nin, dir: &Path, name: &str) -> (Vec<u8>, Value, usize) {
    let path = dir.join(name);
    pytorch::save_safetensors(model, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    (bytes, header, header_len)
}

#[test]
fn saved_safetensors_have_the_pytorch_keys() {
    let device = flex();
    let model = NinConfig::d2l(10).init(&device);
    let dir = tempfile::tempdir().unwrap();
    let (_, header, _) = save_and_read_safetensors(&model, dir.path(), "d2l.safetensors");
    let mut keys: Vec<(String, Vec<usize>)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, _)| *key != "__metadata__")
        .map(|(key, info)| {
            assert_eq!(info["dtype"], "F32", "{key}");
            let shape = info["shape"].as_array().unwrap();
            (
                key.clone(),
                shape.iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            )
        })
        .collect();
    keys.sort();
    let mut expected: Vec<(String, Vec<usize>)> = pytorch::torch_layout(&model)
        .into_iter()
        .map(|e| (e.key, e.shape))
        .collect();
    expected.sort();
    assert_eq!(keys, expected);
}

/// Where `NIN_PYTHON` names a Python with torch, the exported weights load in PyTorch and give
/// the logits nin computed; elsewhere the test says why it did not run.
#[test]
fn exported_weights_give_the_same_logits_in_pytorch() {
    let Some(python) = std::env::var_os("NIN_PYTHON") else {
        eprintln!(
            "exported_weights_in_pytorch: skipped: set NIN_PYTHON to a Python with torch, numpy \
             and safetensors to run the PyTorch side"
        );
        return;
    };
    let device = flex();
    let dir = tempfile::tempdir().unwrap();
    for (name, flag) in [("small", None), ("small_bn", Some("--batch-norm"))] {
        // Weights of nin's own drawing, not PyTorch's, so the check is of the export.
        device.seed(5);
        let model = small_model(name, &device);
        let path = dir.path().join(format!("{name}.safetensors"));
        pytorch::save_safetensors(&model, &path).unwrap();
        let logits = serde_json::to_string(&eval_logits(&model, &device)).unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.safetensors.logits.json")),
            logits,
        )
        .unwrap();
        let output = std::process::Command::new(&python)
            .arg(fixture("reference.py"))
            .arg("check-export")
            .arg(&path)
            .args(flag)
            .output()
            .expect("NIN_PYTHON runs");
        println!("{name}: {}", String::from_utf8_lossy(&output.stdout).trim());
        assert!(
            output.status.success(),
            "{name}: PyTorch rejected the export:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn a_shape_mismatch_names_the_key_and_both_shapes() {
    let model = NinConfig::compact(10).init(&flex());
    let err = pytorch::load(model, fixture("small.pth")).unwrap_err();
    println!("{err}");
    match &err {
        WeightsError::ShapeMismatch {
            key,
            expected,
            found,
            ..
        } => {
            assert_eq!(key, "0.0.weight");
            assert_eq!(expected, &[32, 1, 5, 5]);
            assert_eq!(found, &[8, 1, 5, 5]);
        }
        other => panic!("expected a shape mismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("`0.0.weight`") && message.contains("[8, 1, 5, 5]"));
    assert!(message.contains("[32, 1, 5, 5]") && message.contains("small.pth"));
}

#[test]
fn a_missing_or_extra_key_is_named() {
    let device = flex();
    // Batch-norm weights into the network without: its convolutions have no bias.
    let err = pytorch::load(small_model("small", &device), fixture("small_bn.pth")).unwrap_err();
    println!("{err}");
    assert!(
        matches!(&err, WeightsError::MissingKey { key, .. } if key == "0.0.bias"),
        "{err:?}"
    );
    // A two-block network has its last block at Sequential index 3, where d2l's four-block
    // file has a max pool.
    let two_blocks = NinConfig::new(vec![
        NinBlockConfig::new(1, 8, 5).with_padding(2),
        NinBlockConfig::new(8, 12, 3).with_padding(1),
    ])
    .init(&device);
    let err = pytorch::load(two_blocks, fixture("small.pth")).unwrap_err();
    println!("{err}");
    assert!(
        matches!(&err, WeightsError::MissingKey { key, .. } if key == "3.0.weight"),
        "{err:?}"
    );
    // Every key the model needs and a dense head it has none for.
    let err = pytorch::load(
        small_model("small", &device),
        fixture("small_with_head.safetensors"),
    )
    .unwrap_err();
    println!("{err}");
    assert!(
        matches!(&err, WeightsError::UnexpectedKey { key, shape, .. }
            if key == "10.weight" && shape == &[10, 10]),
        "{err:?}"
    );
}

#[test]
fn unknown_truncated_and_empty_files_are_errors() {
    let device = flex();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.pth", Vec::new()),
        ("text.pth", b"this is not a checkpoint\n".to_vec()),
        ("half.pth", {
            let bytes = std::fs::read(fixture("small.pth")).unwrap();
            bytes[..bytes.len() / 2].to_vec()
        }),
        ("half.safetensors", {
            let bytes = std::fs::read(fixture("small.safetensors")).unwrap();
            bytes[..bytes.len() / 2].to_vec()
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = pytorch::load(small_model("small", &device), &path).unwrap_err();
        println!("{name}: {err}");
        assert!(
            matches!(
                err,
                WeightsError::UnknownFormat { .. } | WeightsError::Corrupt { .. }
            ),
            "{name}: {err:?}"
        );
        assert!(
            err.to_string().contains(name),
            "{name}: the error names the file"
        );
    }
    let err = pytorch::load(small_model("small", &device), dir.path().join("absent.pth"));
    assert!(matches!(err, Err(WeightsError::Io { .. })));
}

#[test]
fn a_nan_or_infinite_weight_is_refused_naming_its_key() {
    let device = flex();
    let model = NinConfig::compact(10).init(&device);
    let dir = tempfile::tempdir().unwrap();
    let (bytes, header, header_len) =
        save_and_read_safetensors(&model, dir.path(), "compact.safetensors");

    let layout = pytorch::torch_layout(&model);
    let keys = [&layout[3].key, &layout.last().unwrap().key];
    for (key, value) in keys.into_iter().zip([f32::NAN, f32::INFINITY]) {
        // The fourth value of `key`, wherever the file keeps it.
        let start = header[key.as_str()]["data_offsets"][0].as_u64().unwrap() as usize;
        let at = 8 + header_len + start + 3 * 4;
        let mut corrupted = bytes.clone();
        corrupted[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let bad = dir.path().join(format!("{key}.safetensors"));
        std::fs::write(&bad, &corrupted).unwrap();

        let err = pytorch::load(NinConfig::compact(10).init(&device), &bad).unwrap_err();
        println!("{err}");
        match &err {
            WeightsError::NonFinite {
                key: named, index, ..
            } => {
                assert_eq!(named, key);
                assert_eq!(*index, 3);
            }
            other => panic!("expected a non-finite value, got {other:?}"),
        }
        assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
    }
}

#[test]
fn a_safetensors_header_that_lies_is_a_clean_error() {
    let device = flex();
    let model = NinConfig::compact(10).init(&device);
    let dir = tempfile::tempdir().unwrap();
    let (bytes, header, header_len) =
        save_and_read_safetensors(&model, dir.path(), "compact.safetensors");
    let data_len = (bytes.len() - 8 - header_len) as u64;
    let key = pytorch::torch_layout(&model)[0].key.clone();

    // Each lie: a field of the first tensor's entry, written back with a header of the right
    // length field.
    let lies = [
        (
            "offsets past the end",
            "data_offsets",
            serde_json::json!([data_len, data_len + 3200]),
        ),
        (
            "offsets reversed",
            "data_offsets",
            serde_json::json!([400, 0]),
        ),
        (
            "a shape larger than its bytes",
            "shape",
            serde_json::json!([32, 1, 5, 500]),
        ),
        (
            "a size beyond memory",
            "shape",
            serde_json::json!([u64::MAX / 8, 2]),
        ),
    ];
    for (lie, field, value) in lies {
        let mut lying = header.clone();
        lying[key.as_str()][field] = value;
        let text = serde_json::to_vec(&lying).unwrap();
        let mut corrupted = (text.len() as u64).to_le_bytes().to_vec();
        corrupted.extend_from_slice(&text);
        corrupted.extend_from_slice(&bytes[8 + header_len..]);
        let bad = dir.path().join("lying.safetensors");
        std::fs::write(&bad, &corrupted).unwrap();
        // A panic fails the test as surely as an Ok does.
        let err = pytorch::load(NinConfig::compact(10).init(&device), &bad)
            .err()
            .unwrap_or_else(|| panic!("{lie}: loaded"));
        println!("{lie}: {err}");
        assert!(
            err.to_string().contains("lying.safetensors"),
            "{lie}: {err}"
        );
    }
}
