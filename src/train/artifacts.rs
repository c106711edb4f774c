//! The artifact directory of a run: what is in it, and writing each file so that it is either
//! complete or absent.
//!
//! Design notes: `docs/design.md`, "train::artifacts".

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::model::Nin;

use super::{TrainError, TrainingConfig};

/// The files of an artifact directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactDir {
    root: PathBuf,
}

impl ArtifactDir {
    /// The artifact directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }

    /// `model.bpk`, the final weights.
    pub fn model(&self) -> PathBuf {
        self.root.join("model.bpk")
    }

    /// `checkpoints/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// `metrics.csv`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }

    /// `training.svg`.
    pub fn plot(&self) -> PathBuf {
        self.root.join("training.svg")
    }

    /// `report.json`.
    pub fn report(&self) -> PathBuf {
        self.root.join("report.json")
    }

    /// The last epoch with a complete checkpoint (model, optimiser and scheduler), if any.
    pub fn last_checkpoint(&self) -> Option<usize> {
        self.complete_checkpoints().last().copied()
    }

    /// The epochs with a complete checkpoint (model, optimiser and scheduler), in order.
    pub(crate) fn complete_checkpoints(&self) -> Vec<usize> {
        // `<kind>-<epoch>.bpk` for each file of checkpoints/.
        let files: Vec<(String, usize)> = std::fs::read_dir(self.checkpoints())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let (kind, epoch) = name.strip_suffix(".bpk")?.rsplit_once('-')?;
                Some((kind.to_string(), epoch.parse().ok()?))
            })
            .collect();
        let has = |kind: &str, epoch: usize| files.iter().any(|(k, e)| k == kind && *e == epoch);
        let mut epochs: Vec<usize> = files
            .iter()
            .filter(|(kind, epoch)| {
                kind == "model" && has("optim", *epoch) && has("scheduler", *epoch)
            })
            .map(|(_, epoch)| *epoch)
            .collect();
        epochs.sort_unstable();
        epochs
    }

    /// Deletes the checkpoints of `epoch` and later ones.
    pub fn remove_checkpoints_from(&self, epoch: usize) -> std::io::Result<()> {
        let Ok(entries) = std::fs::read_dir(self.checkpoints()) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem_epoch = name
                .strip_suffix(".bpk")
                .and_then(|stem| stem.rsplit('-').next())
                .and_then(|n| n.parse::<usize>().ok());
            if stem_epoch.is_some_and(|e| e >= epoch) {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> Result<TrainingConfig, TrainError> {
        self.read_run_config().map(|saved| saved.config)
    }

    /// Reads `config.json` with the number of devices the run trained on.
    pub(super) fn read_run_config(&self) -> Result<RunConfig, TrainError> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainError::Artifact {
            path,
            reason: format!("not a training configuration: {e}"),
        })
    }

    /// Reads `report.json`.
    pub fn read_report(&self) -> Result<Report, TrainError> {
        let path = self.report();
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainError::Artifact {
            path,
            reason: format!("not a training report: {e}"),
        })
    }

    /// Builds the network of `config.json` on `device` and loads `model.bpk` into it.
    pub fn load_model(&self, device: &Device) -> Result<(Nin, TrainingConfig), TrainError> {
        if !self.config().is_file() {
            return Err(TrainError::Artifact {
                path: self.root.clone(),
                reason: "no training run here (config.json is missing); train one with `cargo \
                         run --release --example fashion_mnist`, or name the directory it wrote \
                         (`ArtifactDir::new`)"
                    .into(),
            });
        }
        let config = self.read_config()?;
        let path = self.model();
        if !path.is_file() {
            return Err(TrainError::Artifact {
                path,
                reason: "no trained model here; train one with `cargo run --release --example \
                         fashion_mnist`"
                    .into(),
            });
        }
        let model = config
            .model
            .init(device)
            .try_load_file(&path)
            .map_err(|e| TrainError::Artifact {
                path: path.clone(),
                reason: format!("cannot load the weights: {e}"),
            })?;
        if let Some((parameter, index, value)) = crate::model::first_non_finite(&model) {
            return Err(TrainError::Artifact {
                path,
                reason: format!(
                    "parameter `{parameter}` holds {value} at index {index}: these weights come \
                     from a run that diverged; train again with a lower learning rate"
                ),
            });
        }
        Ok((model, config))
    }

    /// Saves `model` as `model.bpk`. burn's writer builds the file beside its destination and
    /// renames it into place, so `model.bpk` is never half-written.
    pub fn save_model(&self, model: &Nin) -> Result<(), TrainError> {
        let path = self.model();
        model
            .clone()
            .save_file(&path)
            .map_err(|e| TrainError::Artifact {
                path,
                reason: format!("cannot save the weights: {e}"),
            })
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it and renames it to `path`. The
/// file gets the permissions of any file the user creates (the process's umask applied to
/// read and write for all), not the owner-only ones of a temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".partial-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode asked for at creation, which the kernel masks with the umask as for any
        // new file.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut partial = builder
        .tempfile_in(dir)
        .map_err(|e| TrainError::io(dir, e))?;
    partial
        .write_all(bytes)
        .and_then(|()| partial.as_file().sync_all())
        .map_err(|e| TrainError::io(path, e))?;
    partial
        .persist(path)
        .map_err(|e| TrainError::io(path, e.error))?;
    Ok(())
}

/// What `config.json` holds: the configuration, and the number of devices the run trains on,
/// which sets its global batch and how the training set is split, so a resumed run must keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RunConfig {
    #[serde(flatten)]
    pub(super) config: TrainingConfig,
    #[serde(default = "one_device")]
    pub(super) devices: usize,
}

fn one_device() -> usize {
    1
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| TrainError::Artifact {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    write_atomic(path, text.as_bytes())
}

/// The outcome of a run, saved as `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The preset the run started from.
    pub preset: String,
    /// The device it ran on.
    pub backend: String,
    /// Epochs completed.
    pub epochs: usize,
    /// Test images evaluated.
    pub test_images: usize,
    /// Fraction of test images classified correctly.
    pub test_accuracy: f64,
    /// Mean cross-entropy over the test images.
    pub test_loss: f64,
    /// Per class: its name and the fraction of its test images classified correctly.
    pub per_class_accuracy: Vec<ClassAccuracy>,
    /// `confusion[true][predicted]`: test images of class `true` predicted as `predicted`.
    pub confusion_matrix: Vec<Vec<u64>>,
    /// Training images per second, over the epochs of this invocation.
    pub train_images_per_second: f64,
    /// Test images per second during the final evaluation.
    pub eval_images_per_second: f64,
    /// Wall time of this invocation, in seconds, from start to the report.
    pub wall_seconds: f64,
    /// Predicted class of each evaluated test image, by index, so a single prediction can be
    /// checked against the run.
    pub test_predictions: Vec<usize>,
}

/// One class's accuracy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// Class name.
    pub class: String,
    /// Fraction of the class's test images classified correctly.
    pub accuracy: f64,
    /// Test images of the class.
    pub images: u64,
}

#[cfg(test)]
mod tests {
    use burn::module::{ModuleMapper, Param};
    use burn::tensor::Tensor;

    use super::*;
    use crate::train::{Preset, TrainingConfig};

    /// Turns every value of every float parameter into NaN.
    struct Poison;

    impl ModuleMapper for Poison {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|tensor| tensor.mul_scalar(f32::NAN))
        }
    }

    #[test]
    fn a_saved_model_holding_nan_is_refused_naming_the_parameter() {
        let device = Device::flex();
        let root = tempfile::tempdir().unwrap();
        let artifacts = ArtifactDir::new(root.path());
        let config = TrainingConfig::preset(Preset::Compact);
        write_json(&artifacts.config(), &config).unwrap();
        let model = config.model.init(&device);
        artifacts.save_model(&model).unwrap();
        assert!(artifacts.load_model(&device).is_ok());

        artifacts.save_model(&model.map(&mut Poison)).unwrap();
        let err = artifacts.load_model(&device).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("model.bpk") && message.contains("NaN"),
            "{message}"
        );
        assert!(message.contains("`blocks.0.conv"), "{message}");
    }
}
