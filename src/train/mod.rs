//! Training and evaluating NiN on image classification with burn-train's `Learner`
//! (feature `train`).
//!
//! [`train`] runs a [`TrainingConfig`] on any datasets of [`ImageItem`](crate::data::ImageItem)s
//! and leaves everything a user needs afterwards in an [`ArtifactDir`]; [`evaluate`] and
//! [`predict`] use a trained model.

mod artifacts;
mod checkpoints;
mod checks;
mod claim;
mod config;
mod evaluate;
mod launch;
mod loader;
mod loss_scale;
mod optimizer;
mod options;
mod param_ids;
mod plot;
mod recorder;
mod renderer;
mod report;
mod resume;
mod run;
mod step;

use std::path::{Path, PathBuf};

use burn::data::dataset::DatasetError;

use crate::data::Split;
use crate::model::{ConfigError, PrecisionError, ShapeError};

pub use artifacts::{ArtifactDir, ClassAccuracy, Report};
pub use config::{Preset, TrainingConfig};
pub use evaluate::{Evaluation, Prediction, evaluate, predict};
pub use optimizer::{Optimizer, OptimizerKind, Schedule};
pub use options::{Progress, Strategy, TrainOptions, Trained};
pub use recorder::{Divergence, EpochMetrics};
pub use run::train;

// The machinery below stays public, out of the documentation, for the crate's tests and the
// `perf` example: checkpoint damage and the run lock, the plot and the CSV writers, and the
// model the Learner trains.
#[doc(hidden)]
pub use checkpoints::Damage;
#[doc(hidden)]
pub use claim::RunLock;
#[doc(hidden)]
pub use plot::{PlotError, training_svg};
#[doc(hidden)]
pub use recorder::{METRICS_CSV_HEADER, MetricsCsvError, metrics_csv};
#[doc(hidden)]
pub use step::TrainingNin;

pub(crate) use artifacts::write_json;

pub(crate) use loss_scale::LossScale;

/// Why a run could not train, evaluate or save.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value of the recipe cannot be trained with.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// The network the configuration describes cannot be built.
    #[error("invalid training configuration: model: {0}")]
    Model(#[from] ConfigError),
    /// The images do not fit the network (after the batcher's resizing).
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A training device cannot compute in the configuration's precision.
    #[error("invalid training configuration: precision: {0}")]
    Precision(#[from] PrecisionError),
    /// A dataset item could not be read.
    #[error("{set} item {index}: {source}")]
    Item {
        /// The training or the test set.
        set: Split,
        /// The item.
        index: usize,
        /// What the dataset reported.
        source: DatasetError,
    },
    /// The loss stopped being a finite number; nothing from the diverged epoch was kept.
    #[error(
        "the loss became {} at epoch {}, step {}: training diverged; lower the learning rate \
         (`TrainingConfig::optimizer`) or resume from the last good epoch \
         (`TrainOptions::resume`)",
        .0.loss, .0.epoch, .0.step
    )]
    Diverged(Divergence),
    /// burn-train stopped on an error.
    #[error("training stopped: {0}")]
    Training(String),
    /// The run was stopped before its last epoch (for instance from the dashboard).
    #[error(
        "training was stopped after epoch {completed}; continue it by resuming \
         (`TrainOptions::resume`)"
    )]
    Interrupted {
        /// Epochs completed and checkpointed.
        completed: usize,
    },
    /// `--resume` was asked for but there is nothing to resume, or it does not match.
    #[error("cannot resume from {}: {reason}", dir.display())]
    Resume {
        /// The artifact directory.
        dir: PathBuf,
        /// Why not.
        reason: String,
    },
    /// A dataset cannot be trained on: it is empty, or a label names no class of the model.
    #[error("dataset: {0}")]
    Data(String),
    /// The images have another number of channels than the model takes.
    #[error(
        "the model takes images of {model} channel(s), but {set} item {index} has {data}: give \
         the model's first block in_channels = {data} (for example \
         NinConfig::compact(classes).with_in_channels({data})), or convert the images"
    )]
    ChannelMismatch {
        /// The training or the test set.
        set: Split,
        /// The item.
        index: usize,
        /// Channels the model's first block takes.
        model: usize,
        /// Channels of the item's image.
        data: usize,
    },
    /// A fresh run was asked for in a directory that holds an earlier run's files.
    #[error(
        "{} holds the files of an earlier run ({}): continue that run \
         (`TrainOptions::resume`), replace it (`TrainOptions::overwrite`), or choose another \
         artifact directory (`TrainOptions::new`)",
        dir.display(), files.join(", ")
    )]
    Occupied {
        /// The artifact directory.
        dir: PathBuf,
        /// The earlier run's files there.
        files: Vec<String>,
    },
    /// A file has one of a run's names, but no run of this crate wrote it.
    #[error(
        "{} was not written by a run of this crate (the directory's manifest.json does not list \
         it), so it is left alone: choose another artifact directory (`TrainOptions::new`)",
        path.display()
    )]
    Foreign {
        /// The file or folder.
        path: PathBuf,
    },
    /// Another run holds the directory.
    #[error(
        "{} is in use by another run{}; wait for it to end, or choose another artifact \
         directory (`TrainOptions::new`)",
        dir.display(),
        pid.map_or(String::new(), |pid| format!(" (pid {pid})"))
    )]
    Locked {
        /// The artifact directory.
        dir: PathBuf,
        /// The process that holds it, as its lock file says.
        pid: Option<u32>,
    },
    /// A file of the artifact directory is missing, unreadable or malformed.
    #[error("{}: {reason}", path.display())]
    Artifact {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl TrainError {
    fn io(path: &Path, error: std::io::Error) -> Self {
        TrainError::Artifact {
            path: path.to_path_buf(),
            reason: error.to_string(),
        }
    }
}
