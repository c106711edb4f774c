//! Weights in PyTorch's layout: load a `state_dict` of d2l's `nn.Sequential` NiN (`.pt`/`.pth`
//! or `.safetensors`) into a [`Nin`], and save a `Nin` as a `.safetensors` file that
//! `net.load_state_dict(...)` accepts.
//!
//! ```no_run
//! use nin::NinConfig;
//! use nin::pytorch;
//!
//! let device = nin::backend::device("auto")?;
//! // Trained with d2l's PyTorch code and saved with torch.save(net.state_dict(), ...).
//! let model = pytorch::load(NinConfig::d2l(10).init(&device), "nin_d2l.pth")?;
//! // And back: net.load_state_dict(safetensors.torch.load_file("nin.safetensors")).
//! pytorch::save_safetensors(&model, "nin.safetensors")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Design notes: `docs/design.md`, "pytorch".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;

use crate::model::{ConvNormRelu, Nin, Stage};

/// A file format for weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `torch.save(net.state_dict(), path)`: a zip archive (PyTorch ≥ 1.6) or a legacy pickle.
    PyTorch,
    /// A `.safetensors` file (`safetensors.torch.save_file`).
    Safetensors,
}

impl WeightsFormat {
    /// Tells the format from the first bytes of a file: a safetensors file starts with the
    /// 8-byte length of its JSON header and then `{`; a PyTorch file is a zip archive (`PK`)
    /// or a pickle (protocol byte `0x80`).
    pub fn sniff(head: &[u8]) -> Option<Self> {
        match head {
            [_, _, _, _, _, _, _, _, b'{', ..] => Some(WeightsFormat::Safetensors),
            [b'P', b'K', 3, 4, ..] | [0x80, ..] => Some(WeightsFormat::PyTorch),
            _ => None,
        }
    }
}

impl fmt::Display for WeightsFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightsFormat::PyTorch => "PyTorch",
            WeightsFormat::Safetensors => "safetensors",
        })
    }
}

/// One tensor of the PyTorch layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchTensor {
    /// Its key in the PyTorch `state_dict`, e.g. `2.0.weight`.
    pub key: String,
    /// Its path in the [`Nin`] module, e.g. `blocks.1.conv.conv.weight`.
    pub module_path: String,
    /// Its shape, the same in both.
    pub shape: Vec<usize>,
}

/// The PyTorch `state_dict` keys of `model`, in the order PyTorch lists them, with the module
/// path and shape each one maps to. See the [module docs](self) for the layout.
///
/// ```
/// let model = nin::NinConfig::d2l(10).init(&nin::backend::device("flex").unwrap());
/// let layout = nin::pytorch::torch_layout(&model);
/// assert_eq!(layout[0].key, "0.0.weight");
/// assert_eq!(layout[0].shape, [96, 1, 11, 11]);
/// assert_eq!(layout.last().unwrap().key, "7.4.bias");
/// ```
pub fn torch_layout(model: &Nin) -> Vec<TorchTensor> {
    let mut layout = Vec::new();
    // d2l's nn.Sequential holds the stages in the order they run, one index each.
    let blocks =
        model
            .stages()
            .into_iter()
            .enumerate()
            .filter_map(|(sequential, stage)| match stage {
                Stage::Block(b) => Some((sequential, b, &model.blocks[b])),
                _ => None,
            });
    for (sequential, b, block) in blocks {
        let mut position = 0;
        for (name, layer) in block.layers() {
            let module = format!("blocks.{b}.{name}");
            push_layer(&mut layout, sequential, position, &module, layer);
            // Each layer is conv, [batch norm], ReLU in the nin_block Sequential.
            position += if layer.norm.is_some() { 3 } else { 2 };
        }
    }
    layout
}

/// The tensors of one convolution layer whose convolution sits at `position` of the block at
/// `sequential` in d2l's network, and its batch norm right after.
fn push_layer(
    layout: &mut Vec<TorchTensor>,
    sequential: usize,
    position: usize,
    module: &str,
    layer: &ConvNormRelu,
) {
    let mut push = |index: usize, torch_name: &str, burn_path: String, shape: Vec<usize>| {
        layout.push(TorchTensor {
            key: format!("{sequential}.{index}.{torch_name}"),
            module_path: burn_path,
            shape,
        })
    };
    let conv = &layer.conv;
    push(
        position,
        "weight",
        format!("{module}.conv.weight"),
        conv.weight.lazy_shape().to_vec(),
    );
    if let Some(bias) = &conv.bias {
        push(
            position,
            "bias",
            format!("{module}.conv.bias"),
            bias.lazy_shape().to_vec(),
        );
    }
    if let Some(norm) = &layer.norm {
        let channels = norm.gamma.lazy_shape().to_vec();
        // burn's store adapters rename PyTorch's weight/bias to gamma/beta for batch norm.
        for name in ["weight", "bias", "running_mean", "running_var"] {
            push(
                position + 1,
                name,
                format!("{module}.norm.{name}"),
                channels.clone(),
            );
        }
    }
}

/// PyTorch keeps a batch counter in every `BatchNorm2d`; it carries no weight.
const BATCH_NORM_COUNTER: &str = "num_batches_tracked";

/// Why weights could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read the weights: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is neither a PyTorch checkpoint nor a safetensors file.
    #[error(
        "{path}: not a PyTorch checkpoint or a safetensors file (it starts with {head}); save \
         the weights with torch.save(net.state_dict(), path) or safetensors.torch.save_file"
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Its first bytes, in hex.
        head: String,
    },
    /// The file looked like a known format but could not be decoded.
    #[error("{path}: cannot decode the {format} file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The format it looked like.
        format: WeightsFormat,
        /// What the reader reported.
        reason: String,
    },
    /// A key the model needs is missing from the file.
    #[error(
        "{path}: no tensor `{key}` (for {module_path}, shape {expected:?}); the file has {found}. \
         Build the model with the configuration the weights were trained with (d2l's network is \
         NinConfig::d2l(10))"
    )]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        key: String,
        /// The module path it would load into.
        module_path: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// A short list of the keys the file has.
        found: String,
    },
    /// A tensor's shape in the file differs from the model's.
    #[error(
        "{path}: tensor `{key}` has shape {found:?} in the file, but the model's {module_path} \
         has shape {expected:?}; build the model with the configuration the weights were \
         trained with (d2l's network is NinConfig::d2l(10))"
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        key: String,
        /// The module path.
        module_path: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// The file has a tensor the model has no place for.
    #[error(
        "{path}: tensor `{key}` (shape {shape:?}) has no place in this model, whose last key is \
         `{last_key}`; the file holds another network"
    )]
    UnexpectedKey {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        key: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The model's last key, for orientation.
        last_key: String,
    },
    /// A tensor is stored in another element type than 32-bit float.
    #[error(
        "{path}: tensor `{key}` is {dtype:?}, not float32; convert the network with \
         net.float() before saving"
    )]
    DType {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        key: String,
        /// Its element type.
        dtype: DType,
    },
    /// A tensor holds a value that is not a finite number: weights of a run that diverged.
    #[error(
        "{path}: tensor `{key}` holds {value} at index {index}: these weights come from a run \
         that diverged; use an earlier checkpoint, or train again with a lower learning rate"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The PyTorch key.
        key: String,
        /// The first value that is not finite.
        value: f32,
        /// Its index in the tensor, flattened.
        index: usize,
    },
    /// burn's store refused the tensors after they were checked (not expected to happen).
    #[error("{path}: loading the checked tensors failed: {reason}")]
    Apply {
        /// The file.
        path: PathBuf,
        /// What the store reported.
        reason: String,
    },
    /// Writing the file failed; nothing is left at the destination.
    #[error("{path}: cannot write the weights: {reason}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Loads a PyTorch `state_dict` (`.pt`/`.pth`) or a `.safetensors` file in d2l's layout into
/// `model`, which must have the same layers (build it from the same configuration). The format
/// is told from the file's content, not its name.
///
/// Every key and shape is checked before anything is loaded, and every value once loaded: a
/// missing key, a shape that differs, a tensor the model has no place for, a type other than
/// float32 or a value that is NaN or infinite is an error that names the first such key, with
/// both shapes for a mismatch; the model is returned only when all are right.
pub fn load(model: Nin, path: impl AsRef<Path>) -> Result<Nin, WeightsError> {
    let path = path.as_ref();
    let layout = torch_layout(&model);
    // Keys of the layout become module paths; any other key keeps its PyTorch name.
    let remapper = exact_remapper(
        layout
            .iter()
            .map(|entry| (entry.key.clone(), entry.module_path.clone())),
    );
    match sniff_file(path)? {
        WeightsFormat::PyTorch => {
            let store = PytorchStore::from_file(path)
                .map_indices_contiguous(false)
                .remap(remapper);
            load_from_store(model, &layout, path, WeightsFormat::PyTorch, store)
        }
        WeightsFormat::Safetensors => {
            let store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .remap(remapper);
            load_from_store(model, &layout, path, WeightsFormat::Safetensors, store)
        }
    }
}

/// A remapper that renames each `from` name, matched whole, to its `to` name. The names hold
/// only word characters and dots, so escaping the dots makes each an exact pattern.
fn exact_remapper(pairs: impl Iterator<Item = (String, String)>) -> KeyRemapper {
    pairs.fold(KeyRemapper::new(), |remapper, (from, to)| {
        remapper
            .add_pattern(format!("^{}$", from.replace('.', r"\.")), to)
            .expect("escaped names are valid patterns")
    })
}

fn sniff_file(path: &Path) -> Result<WeightsFormat, WeightsError> {
    use std::io::Read;
    let io = |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(9);
    std::fs::File::open(path)
        .map_err(io)?
        .take(9)
        .read_to_end(&mut head)
        .map_err(io)?;
    WeightsFormat::sniff(&head).ok_or_else(|| WeightsError::UnknownFormat {
        path: path.to_path_buf(),
        head: if head.is_empty() {
            "nothing: the file is empty".into()
        } else {
            head.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        },
    })
}

/// Checks what `store` holds against `layout`, then loads it into `model`. The store renames
/// the layout's keys to module paths, so the file is only parsed once.
fn load_from_store<S: ModuleStore>(
    mut model: Nin,
    layout: &[TorchTensor],
    path: &Path,
    format: WeightsFormat,
    mut store: S,
) -> Result<Nin, WeightsError>
where
    S::Error: fmt::Display,
{
    let corrupt = |reason: String| WeightsError::Corrupt {
        path: path.to_path_buf(),
        format,
        reason,
    };
    // Checks and messages speak of the file's own keys: undo the renaming for them.
    let key_of: HashMap<&str, &str> = layout
        .iter()
        .map(|entry| (entry.module_path.as_str(), entry.key.as_str()))
        .collect();
    let in_file: BTreeMap<String, (Vec<usize>, DType)> = store
        .get_all_tensors()
        .map_err(|err| corrupt(err.to_string()))?
        .iter()
        .map(|(name, tensor)| {
            let key = key_of.get(name.as_str()).map_or(name.as_str(), |key| key);
            (key.to_string(), (tensor.shape.to_vec(), tensor.dtype))
        })
        .collect();
    check_against_layout(path, layout, &in_file)?;
    let result = model
        .load_from(&mut store)
        .map_err(|err| corrupt(err.to_string()))?;
    let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
    if !result.errors.is_empty() || !missing.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(ToString::to_string).collect();
        return Err(WeightsError::Apply {
            path: path.to_path_buf(),
            reason: format!("errors: {errors:?}; not loaded: {missing:?}"),
        });
    }
    if let Some((module_path, index, value)) = crate::model::first_non_finite(&model) {
        let key = key_of
            .get(module_path.as_str())
            .map_or(module_path.as_str(), |key| key);
        return Err(WeightsError::NonFinite {
            path: path.to_path_buf(),
            key: key.to_string(),
            value,
            index,
        });
    }
    Ok(model)
}

/// The first way `in_file` (key → shape, type) differs from `layout`, in the layout's order.
fn check_against_layout(
    path: &Path,
    layout: &[TorchTensor],
    in_file: &BTreeMap<String, (Vec<usize>, DType)>,
) -> Result<(), WeightsError> {
    for entry in layout {
        let Some((shape, dtype)) = in_file.get(&entry.key) else {
            return Err(WeightsError::MissingKey {
                path: path.to_path_buf(),
                key: entry.key.clone(),
                module_path: entry.module_path.clone(),
                expected: entry.shape.clone(),
                found: key_summary(in_file.keys()),
            });
        };
        if *shape != entry.shape {
            return Err(WeightsError::ShapeMismatch {
                path: path.to_path_buf(),
                key: entry.key.clone(),
                module_path: entry.module_path.clone(),
                expected: entry.shape.clone(),
                found: shape.clone(),
            });
        }
        if *dtype != DType::F32 {
            return Err(WeightsError::DType {
                path: path.to_path_buf(),
                key: entry.key.clone(),
                dtype: *dtype,
            });
        }
    }
    let known: HashSet<&str> = layout.iter().map(|e| e.key.as_str()).collect();
    let extra = in_file
        .iter()
        .find(|(key, _)| !known.contains(key.as_str()) && !key.ends_with(BATCH_NORM_COUNTER));
    if let Some((key, (shape, _))) = extra {
        return Err(WeightsError::UnexpectedKey {
            path: path.to_path_buf(),
            key: key.clone(),
            shape: shape.clone(),
            last_key: layout.last().map_or_else(String::new, |e| e.key.clone()),
        });
    }
    Ok(())
}

/// At most six keys, for an error message.
fn key_summary<'a>(keys: impl ExactSizeIterator<Item = &'a String>) -> String {
    let count = keys.len();
    if count == 0 {
        return "no tensors".into();
    }
    let shown: Vec<&str> = keys.take(6).map(String::as_str).collect();
    let more = if count > shown.len() { ", …" } else { "" };
    format!("{count} tensors ({}{more})", shown.join(", "))
}

/// Saves `model` as a `.safetensors` file in d2l's PyTorch layout ([`torch_layout`]), which
/// `net.load_state_dict(safetensors.torch.load_file(path))` accepts for the same network. An
/// existing file is replaced. burn's store builds the file beside `path` and renames it into
/// place, so `path` is never left half-written.
///
/// PyTorch's `BatchNorm2d` also keeps a `num_batches_tracked` counter, which has no
/// counterpart here; load a model with batch norm with `strict=False`.
pub fn save_safetensors(model: &Nin, path: impl AsRef<Path>) -> Result<(), WeightsError> {
    let path = path.as_ref();
    let mut store = SafetensorsStore::from_file(path)
        .overwrite(true)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata("format", "pt")
        .remap(exact_remapper(
            torch_layout(model)
                .into_iter()
                .map(|entry| (entry.module_path, entry.key)),
        ));
    model
        .save_into(&mut store)
        .map_err(|err| WeightsError::Write {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })
}
