//! The options of a run apart from what it computes: where it writes, how it shows progress,
//! which devices it uses and how they share the work.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::model::Nin;

use super::Report;
use super::recorder::EpochMetrics;

/// How a run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// burn-train's terminal dashboard (feature `tui`) when stdout is a terminal, else
    /// [`Progress::Lines`].
    Dashboard,
    /// A line at each tenth of a split and one per epoch.
    Lines,
    /// Nothing.
    Quiet,
}

/// How a run on several devices shares the work: one of burn-train's execution strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// burn-train's `MultiDevice`: one process, a thread per device, each training on its own
    /// part of the data; the gradients are added on the first device, which takes the
    /// optimiser step and evaluates. Works on every backend.
    #[default]
    Multi,
    /// burn-train's distributed data parallel (`ExecutionStrategy::ddp`, gradients averaged by
    /// an all-reduce). burn 0.22 implements the collective operations it needs on CUDA only
    /// (NCCL), so every device must be a CUDA device.
    Ddp,
}

impl Strategy {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Multi => "multi",
            Strategy::Ddp => "ddp",
        }
    }
}

impl crate::names::Named for Strategy {
    const KIND: &'static str = "strategy";

    fn all() -> &'static [Self] {
        &[Strategy::Multi, Strategy::Ddp]
    }

    fn name(self) -> &'static str {
        Strategy::name(self)
    }
}

crate::names::impl_named!(Strategy);

/// Where and how a run works, apart from what it computes.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The artifact directory.
    pub artifact_dir: PathBuf,
    /// Continue the run in `artifact_dir` from its last checkpoint instead of starting over.
    pub resume: bool,
    /// Start over in a directory that holds an earlier run, removing that run's files (only
    /// those its `manifest.json` lists). Without it, such a directory is refused.
    pub overwrite: bool,
    /// How progress is shown.
    pub progress: Progress,
    /// A flag that stops the run when set, from a Ctrl-C handler for instance (the
    /// `fashion_mnist` example registers one): the epoch in progress is abandoned, the last
    /// complete checkpoint stays, and `train` returns [`TrainError::Interrupted`](super::TrainError::Interrupted), after which
    /// `resume` continues the run.
    pub stop: Option<Arc<AtomicBool>>,
    /// Class names, by label, for the report.
    pub class_names: Vec<String>,
    /// Weights to start from instead of a fresh initialisation, such as a model that
    /// `nin::pytorch::load` filled from a PyTorch file. It must have the configuration's
    /// layers; it cannot be combined with `resume`, which starts from the last checkpoint.
    pub initial_model: Option<Nin>,
    /// How several devices share the work.
    pub strategy: Strategy,
}

impl TrainOptions {
    /// Options for a fresh run into `artifact_dir` on one device, with progress as lines.
    pub fn new(artifact_dir: impl Into<PathBuf>) -> Self {
        Self {
            artifact_dir: artifact_dir.into(),
            resume: false,
            overwrite: false,
            progress: Progress::Lines,
            stop: None,
            class_names: Vec::new(),
            initial_model: None,
            strategy: Strategy::default(),
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Trained {
    /// The trained network, in evaluation mode, on the device it was trained on.
    pub model: Nin,
    /// What was written to `report.json`.
    pub report: Report,
    /// One row per epoch, as in `metrics.csv`.
    pub metrics: Vec<EpochMetrics>,
}
