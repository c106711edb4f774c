//! burn-train's supervised training run with this crate's checkpoints, metrics and renderer.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::data::dataset::Dataset;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::{
    ExecutionStrategy, Interrupter, Learner, LearningResult, MultiDeviceOptim, SupervisedTraining,
    TrainingStrategy,
};

use super::TrainingNin;
use crate::data::ImageItem;

use super::TrainError;
use super::checkpoints::{Ledger, RecordedCheckpointer};
use super::options::{Progress, Strategy};
use super::recorder::{EpochRecorder, Record};
use super::renderer::PlainRenderer;
use super::run::Run;

impl<Te: Dataset<ImageItem>> Run<'_, Te> {
    /// Runs burn-train's supervised training with this crate's checkpoints, metrics, renderer
    /// and recorder, passing a stop request from the options on to it. Returns burn-train's
    /// result and what the recorder saw, or a panic inside burn-train as an error.
    pub(super) fn launch(
        &self,
        learner: Learner<TrainingNin>,
    ) -> Result<(LearningResult<TrainingNin>, Record), TrainError> {
        let dashboard = self.options.progress == Progress::Dashboard
            && cfg!(feature = "tui")
            && std::io::stdout().is_terminal();
        let training = self.supervised_training(dashboard);
        let recorder = EpochRecorder::new(
            self.dir.previous_rows.clone(),
            self.dir.artifacts.metrics(),
            training.interrupter(),
            self.config.epochs,
            self.data.train_len,
            self.options.progress != Progress::Quiet && !dashboard,
        );
        let record = recorder.record();
        let interrupter = training.interrupter();
        let result = stopping_on_request(self.options.stop.as_deref(), &interrupter, || {
            training.with_metric_logger(recorder).launch(learner)
        });
        let record = std::mem::take(&mut *record.lock().unwrap_or_else(|e| e.into_inner()));
        Ok((result?, record))
    }

    /// burn-train's training of this run: its loaders, epochs, checkpointers, metrics,
    /// renderer, the checkpoint it resumes from and how several devices share the work.
    fn supervised_training(&self, dashboard: bool) -> SupervisedTraining<TrainingNin> {
        let (run, data) = (&self.dir, &self.data);
        let ledger = Ledger::new(run.artifacts.clone());
        let mut training = SupervisedTraining::new(
            run.artifacts.root(),
            Arc::clone(&data.train_loader),
            Arc::clone(&data.valid_loader),
        )
        .num_epochs(self.config.epochs)
        .with_custom_checkpointers(
            RecordedCheckpointer::new(&ledger, "model"),
            RecordedCheckpointer::new(&ledger, "optim"),
            RecordedCheckpointer::new(&ledger, "scheduler"),
        )
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(2))
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        // A library must not install a process-wide logger behind its caller's back.
        .with_application_logger(None);
        if !dashboard {
            // Lines within the epoch whenever progress is wanted at all: a dashboard asked
            // for on a pipe or a log file shows as lines too.
            training = training.renderer(Box::new(PlainRenderer::new(
                self.options.progress != Progress::Quiet,
            )));
        }
        if run.start_epoch > 0 {
            training = training.checkpoint(run.start_epoch);
        }
        if data.devices.len() > 1 {
            let devices: Vec<Device> = data.devices.iter().map(|d| d.clone().autodiff()).collect();
            let strategy = match self.options.strategy {
                Strategy::Multi => {
                    ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice)
                }
                Strategy::Ddp => ExecutionStrategy::ddp(
                    devices,
                    DistributedConfig {
                        all_reduce_op: ReduceOperation::Mean,
                    },
                ),
            };
            training = training.with_training_strategy(TrainingStrategy::Default(strategy));
        }
        training
    }
}

/// Runs `launch`, with a thread that passes `stop`, when it is set, on to burn-train's
/// `interrupter` (checked between steps); a panic in `launch` comes back as an error.
fn stopping_on_request<T>(
    stop: Option<&AtomicBool>,
    interrupter: &Interrupter,
    launch: impl FnOnce() -> T,
) -> Result<T, TrainError> {
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        if let Some(stop) = stop {
            scope.spawn(|| {
                while !finished.load(Ordering::Relaxed) {
                    if stop.load(Ordering::Relaxed) {
                        interrupter.stop(Some("stopped on request"));
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            });
        }
        // Set however the launch ends, a panic included, so that the thread above ends and
        // the scope returns rather than waiting for it forever.
        let _finish = SetOnDrop(&finished);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(launch)).map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            TrainError::Training(format!("burn-train stopped with a panic: {message}"))
        })
    })
}

/// Sets its flag when dropped.
pub(super) struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
