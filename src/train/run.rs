//! A training run: data loaders, burn-train's `SupervisedTraining` and `Learner`, checkpoints,
//! and the artifacts written at the end.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::PartialDataset;
use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::{
    ExecutionStrategy, Learner, LearningResult, MultiDeviceOptim, SupervisedTraining,
    TrainingStrategy,
};

use crate::data::{Augment, ImageBatch, ImageBatcher, ImageItem};
use crate::model::Nin;

use super::checkpoints::{Ledger, RecordedCheckpointer};
use super::claim::RunLock;
use super::recorder::{EpochMetrics, EpochRecorder, Record};
use super::renderer::PlainRenderer;
use super::{ArtifactDir, ClassAccuracy, Report, TrainError, TrainingConfig, evaluate, plot};

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

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "multi" => Ok(Strategy::Multi),
            "ddp" => Ok(Strategy::Ddp),
            other => Err(format!("unknown strategy `{other}`; use multi or ddp")),
        }
    }
}

/// Where and how a run works, apart from what it computes.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The artifact directory.
    pub artifact_dir: PathBuf,
    /// Continue the run in `artifact_dir` from its last checkpoint instead of starting over.
    pub resume: bool,
    /// Start over in a directory that holds an earlier run, removing that run's files (only
    /// those: see [`ArtifactDir::claim`]). Without it, such a directory is refused.
    pub overwrite: bool,
    /// How progress is shown.
    pub progress: Progress,
    /// A flag that stops the run when set, from a Ctrl-C handler for instance (the
    /// `fashion_mnist` example registers one): the epoch in progress is abandoned, the last
    /// complete checkpoint stays, and `train` returns [`TrainError::Interrupted`], after which
    /// `resume` continues the run.
    pub stop: Option<Arc<AtomicBool>>,
    /// Class names, by label, for the report.
    pub class_names: Vec<String>,
    /// Weights to start from instead of a fresh initialisation, such as a model that
    /// `nin::weights::load` filled from a PyTorch file. It must have the configuration's
    /// layers; it cannot be combined with `resume`, which starts from the last checkpoint.
    pub initial_model: Option<Nin>,
    /// Every device to train on, data-parallel, the device passed to [`train`] first (it
    /// holds the optimiser step and the evaluation); empty for that device alone. Each device
    /// trains on its own share of the training set with `batch_size` images per step, so an
    /// epoch is still one pass over the set, in `1/n` as many steps of a global batch `n` times
    /// as large; the learning rate applies to that global batch's mean gradient. Their number
    /// must be [`TrainingConfig::devices`].
    pub devices: Vec<Device>,
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
            devices: Vec::new(),
            strategy: Strategy::default(),
        }
    }

    /// The devices of the run: [`devices`](Self::devices), or `device` alone.
    fn training_devices(&self, device: &Device) -> Vec<Device> {
        if self.devices.is_empty() {
            vec![device.clone()]
        } else {
            self.devices.clone()
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

/// Trains `config` on `train_set`, evaluating on `test_set` after every epoch, and writes the
/// artifacts. Returns the model and the report.
///
/// The run holds the directory's lock throughout ([`ArtifactDir::lock`]): a second run there
/// is refused, naming this one's process. A fresh run refuses a directory that holds an earlier
/// run's files unless `options.overwrite` ([`ArtifactDir::claim`]); with `options.resume` it
/// continues from the last checkpoint, provided `config.json` there describes the same run
/// (only `epochs` may grow).
///
/// Steps reuse the memory earlier steps freed
/// ([`retain_freed_memory`](crate::ops::retain_freed_memory), unless
/// `NIN_RETAIN_FREED_MEMORY=0`).
pub fn train<Tr, Te>(
    config: &TrainingConfig,
    train_set: Tr,
    test_set: Te,
    device: &Device,
    options: &TrainOptions,
) -> Result<Trained, TrainError>
where
    Tr: Dataset<ImageItem> + 'static,
    Te: Dataset<ImageItem> + 'static,
{
    let started = Instant::now();
    crate::ops::memory::retain_freed_memory_once();
    let devices = options.training_devices(device);
    check_devices(config, options, &devices, device)?;
    let run = open_run(config, options, &train_set)?;
    let data = RunData::new(config, train_set, test_set, run.start_epoch, devices)?;
    let learner = learner(config, options, &data)?;
    let (result, record) = launch(config, options, &run, &data, learner)?;
    let completed = outcome(config, &run, &result, &record)?;
    report(
        config,
        options,
        device,
        &run,
        &data,
        result.model,
        record,
        completed,
        started,
    )
}

/// The devices must be distinct, start with `device`, be as many as the configuration says,
/// and suit the strategy.
fn check_devices(
    config: &TrainingConfig,
    options: &TrainOptions,
    devices: &[Device],
    device: &Device,
) -> Result<(), TrainError> {
    let refuse = |reason: String| Err(TrainError::Config(format!("devices: {reason}")));
    if devices[0] != *device {
        return refuse(format!(
            "the first of TrainOptions::devices ({:?}) must be the device passed to train \
             ({device:?}), which takes the optimiser step and evaluates",
            devices[0]
        ));
    }
    for (index, later) in devices.iter().enumerate().skip(1) {
        if devices[..index].contains(later) {
            return refuse(format!("{later:?} is listed twice"));
        }
    }
    if devices.len() != config.devices {
        return refuse(format!(
            "{} given, but the configuration's `devices` is {}: set it to the number of devices \
             (it is saved with the run, so that a resumed run splits the work the same way)",
            devices.len(),
            config.devices
        ));
    }
    for device in devices {
        config.precision.check(device)?;
    }
    if options.strategy == Strategy::Ddp {
        #[cfg(feature = "cuda")]
        let cuda = Device::enumerate(burn::tensor::DeviceType::Cuda);
        #[cfg(feature = "cuda")]
        let on_cuda = |d: &Device| cuda.contains(d);
        #[cfg(not(feature = "cuda"))]
        let on_cuda = |_: &Device| false;
        if let Some(other) = devices.iter().find(|d| !on_cuda(d)) {
            return refuse(format!(
                "the ddp strategy needs collective operations between devices, which burn 0.22 \
                 implements on CUDA devices only (NCCL), and {other:?} is not one; use the \
                 multi strategy"
            ));
        }
    }
    Ok(())
}

/// The artifact directory of a run, locked, with where the run starts.
struct OpenRun {
    artifacts: ArtifactDir,
    _lock: RunLock,
    /// Epochs already done (by the run being resumed).
    start_epoch: usize,
    /// Their metrics rows.
    previous_rows: Vec<EpochMetrics>,
}

/// Validates the configuration and the options, then takes the artifact directory: locked,
/// and either resumed (its checkpoint and metrics read) or claimed for a fresh run, with the
/// configuration written.
fn open_run<Tr: Dataset<ImageItem>>(
    config: &TrainingConfig,
    options: &TrainOptions,
    train_set: &Tr,
) -> Result<OpenRun, TrainError> {
    config.validate()?;
    // Before anything is written: the common mistake, a grayscale model on colour images or
    // the reverse, shows in the first item. Every item is checked with the labels later.
    if let Ok(first) = train_set.get(0) {
        check_channels(&first, config.model.blocks[0].in_channels, "training", 0)?;
    }
    if options.resume && options.initial_model.is_some() {
        return Err(TrainError::Config(
            "an initial model and resume were both given: a resumed run continues from its last \
             checkpoint, so drop one of them"
                .into(),
        ));
    }
    let artifacts = ArtifactDir::new(&options.artifact_dir);
    std::fs::create_dir_all(artifacts.root()).map_err(|e| TrainError::io(artifacts.root(), e))?;
    let lock = artifacts.lock()?;
    let (start_epoch, previous_rows) = if options.resume {
        let point = resume_point(config, &artifacts, options.progress != Progress::Quiet)?;
        artifacts.write_manifest(artifacts.recorded_checkpoints()?.unwrap_or_default())?;
        point
    } else {
        artifacts.claim(options.overwrite)?;
        (0, Vec::new())
    };
    super::write_json(&artifacts.config(), config)?;
    Ok(OpenRun {
        artifacts,
        _lock: lock,
        start_epoch,
        previous_rows,
    })
}

/// The datasets of a run, checked, and the loaders over them.
struct RunData<Te: Dataset<ImageItem>> {
    train_loader: Arc<dyn DataLoader<ImageBatch>>,
    valid_loader: Arc<dyn DataLoader<ImageBatch>>,
    /// The test set, for the final evaluation.
    test_set: Arc<PartialDataset<Te, ImageItem>>,
    eval_batcher: ImageBatcher,
    /// Training images per epoch.
    train_len: usize,
    /// The autodiff device training runs on (the first, with several).
    train_device: Device,
    /// Every device the run trains on.
    devices: Vec<Device>,
}

impl<Te: Dataset<ImageItem> + 'static> RunData<Te> {
    fn new<Tr: Dataset<ImageItem> + 'static>(
        config: &TrainingConfig,
        train_set: Tr,
        test_set: Te,
        start_epoch: usize,
        devices: Vec<Device>,
    ) -> Result<Self, TrainError> {
        let device = &devices[0];
        let train_len = limit(train_set.len(), config.train_limit);
        let test_len = limit(test_set.len(), config.test_limit);
        let train_set = PartialDataset::new(train_set, 0, train_len);
        let test_set = Arc::new(PartialDataset::new(test_set, 0, test_len));
        let classes = config.model.num_classes();
        let channels = config.model.blocks[0].in_channels;
        check_items(&train_set, classes, channels, "training")?;
        check_items(&*test_set, classes, channels, "test")?;

        let first = train_set.get(0).map_err(|source| TrainError::Item {
            set: "training".into(),
            index: 0,
            source,
        })?;
        let eval_batcher = config.batcher([first.height, first.width]);
        let train_batcher = match config.augment {
            Some(augment) => eval_batcher.clone().with_augment(Augment {
                // A resumed run must not replay the first epochs' draws.
                seed: augment.seed.wrapping_add(start_epoch as u64),
                ..augment
            }),
            None => eval_batcher.clone(),
        };
        let train_device = device.clone().autodiff();
        device.seed(config.seed);
        let train_loader = DataLoaderBuilder::new(train_batcher)
            .batch_size(config.batch_size)
            .shuffle(config.seed.wrapping_add(start_epoch as u64))
            .num_workers(config.workers)
            .set_device(train_device.clone())
            .build(train_set);
        let valid_loader = DataLoaderBuilder::new(eval_batcher.clone())
            .batch_size(config.batch_size)
            .num_workers(config.workers)
            .set_device(device.clone())
            .build(Arc::clone(&test_set));
        Ok(Self {
            train_loader,
            valid_loader,
            test_set,
            eval_batcher,
            train_len,
            train_device,
            devices,
        })
    }
}

/// The model (fresh, or the options' initial weights), its optimiser and its learning-rate
/// schedule, on the training device.
fn learner<Te: Dataset<ImageItem>>(
    config: &TrainingConfig,
    options: &TrainOptions,
    data: &RunData<Te>,
) -> Result<Learner<Nin>, TrainError> {
    // With n devices burn-train cuts the training set into n parts, the last taking the
    // remainder, and takes one step per batch of each part.
    let n = config.devices;
    let last_part = data.train_len - (n - 1) * (data.train_len / n);
    let steps_per_epoch = last_part.div_ceil(config.batch_size);
    // burn-train's multi-device strategy adds the devices' gradients; DDP averages them.
    let optimizer = match options.strategy {
        Strategy::Multi => config.optimizer.for_summed_gradients(n),
        Strategy::Ddp => config.optimizer,
    };
    let scheduler = config
        .schedule
        .init(optimizer.lr(), steps_per_epoch * config.epochs)
        .map_err(TrainError::Config)?;
    let model = config.model.init(&data.train_device);
    let model = match &options.initial_model {
        // Loading the record into a fresh model puts the weights on the training device with
        // the fresh model's gradient tracking, whichever device the initial model is on.
        Some(initial) => model
            .try_load_record(initial.clone().into_record())
            .map_err(|e| {
                TrainError::Config(format!(
                    "the initial model does not have the layers of the configuration: {e}"
                ))
            })?,
        None => model,
    };
    let model = model.with_precision(config.precision);
    Ok(Learner::new(model, optimizer.init(), scheduler))
}

/// Runs burn-train's supervised training with this crate's checkpoints, metrics, renderer and
/// recorder, passing a stop request from the options on to it. Returns burn-train's result and
/// what the recorder saw, or a panic inside burn-train as an error.
fn launch<Te: Dataset<ImageItem>>(
    config: &TrainingConfig,
    options: &TrainOptions,
    run: &OpenRun,
    data: &RunData<Te>,
    learner: Learner<Nin>,
) -> Result<(LearningResult<Nin>, Record), TrainError> {
    let ledger = Ledger::new(run.artifacts.clone());
    let mut training = SupervisedTraining::new(
        run.artifacts.root(),
        Arc::clone(&data.train_loader),
        Arc::clone(&data.valid_loader),
    )
    .num_epochs(config.epochs)
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
    let dashboard = options.progress == Progress::Dashboard
        && cfg!(feature = "tui")
        && std::io::stdout().is_terminal();
    if !dashboard {
        // Lines within the epoch whenever progress is wanted at all: a dashboard asked for
        // on a pipe or a log file shows as lines too.
        training = training.renderer(Box::new(PlainRenderer::new(
            options.progress != Progress::Quiet,
        )));
    }
    if run.start_epoch > 0 {
        training = training.checkpoint(run.start_epoch);
    }
    if data.devices.len() > 1 {
        let devices: Vec<Device> = data.devices.iter().map(|d| d.clone().autodiff()).collect();
        let strategy = match options.strategy {
            Strategy::Multi => ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice),
            Strategy::Ddp => ExecutionStrategy::ddp(
                devices,
                DistributedConfig {
                    all_reduce_op: ReduceOperation::Mean,
                },
            ),
        };
        training = training.with_training_strategy(TrainingStrategy::Default(strategy));
    }
    let recorder = EpochRecorder::new(
        run.previous_rows.clone(),
        run.artifacts.metrics(),
        training.interrupter(),
        config.epochs,
        data.train_len,
        options.progress != Progress::Quiet && !dashboard,
    );
    let record = recorder.record();
    let interrupter = training.interrupter();
    let finished = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        if let Some(stop) = &options.stop {
            // burn-train checks its interrupter between steps: pass a request on to it.
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
        let launched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            training.with_metric_logger(recorder).launch(learner)
        }));
        launched.map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic without a message");
            TrainError::Training(format!("burn-train stopped with a panic: {message}"))
        })
    });
    let record = std::mem::take(&mut *record.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((result?, record))
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The epochs completed, or the error that ended the run before its last epoch: a diverged
/// loss (whose epoch's checkpoints are removed), burn-train's error, a failed metrics write, or
/// an interruption.
fn outcome(
    config: &TrainingConfig,
    run: &OpenRun,
    result: &LearningResult<Nin>,
    record: &Record,
) -> Result<usize, TrainError> {
    let artifacts = &run.artifacts;
    if let Some(divergence) = record.divergence {
        artifacts
            .remove_checkpoints_from(divergence.epoch)
            .map_err(|e| TrainError::io(&artifacts.checkpoints(), e))?;
        return Err(TrainError::Diverged(divergence));
    }
    if let Some(error) = &result.error {
        return Err(TrainError::Training(error.to_string()));
    }
    if let Some(reason) = &record.write_error {
        return Err(TrainError::Artifact {
            path: artifacts.metrics(),
            reason: reason.clone(),
        });
    }
    let completed = record.rows.last().map_or(run.start_epoch, |r| r.epoch);
    if result.interrupted.is_some() || completed < config.epochs {
        // An epoch stopped during its validation has a metrics row but no checkpoint: what a
        // resume continues from is the last checkpoint.
        let checkpointed = artifacts.last_checkpoint().unwrap_or(run.start_epoch);
        return Err(TrainError::Interrupted {
            completed: completed.min(checkpointed),
        });
    }
    Ok(completed)
}

/// Evaluates the trained model on the test set and writes `model.bpk`, `training.svg` and
/// `report.json`.
#[allow(clippy::too_many_arguments)]
fn report<Te: Dataset<ImageItem>>(
    config: &TrainingConfig,
    options: &TrainOptions,
    device: &Device,
    run: &OpenRun,
    data: &RunData<Te>,
    model: Nin,
    record: Record,
    completed: usize,
    started: Instant,
) -> Result<Trained, TrainError> {
    let model = model.valid();
    let evaluation = evaluate(
        &model,
        &*data.test_set,
        &data.eval_batcher,
        config.batch_size,
        device,
    )?;
    let new_rows: Vec<&EpochMetrics> = record
        .rows
        .iter()
        .filter(|r| r.epoch > run.start_epoch)
        .collect();
    let train_images_per_second =
        new_rows.iter().map(|r| r.images_per_second).sum::<f64>() / new_rows.len().max(1) as f64;
    let artifacts = &run.artifacts;
    artifacts.save_model(&model)?;
    plot::write_training_svg(
        &record.rows,
        &format!("NiN ({}) on {} images", config.preset, data.train_len),
        &artifacts.plot(),
    )?;
    let report = Report {
        preset: config.preset.name().to_string(),
        backend: data
            .devices
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        epochs: completed,
        test_images: evaluation.images() as usize,
        test_accuracy: evaluation.accuracy(),
        test_loss: evaluation.loss(),
        per_class_accuracy: evaluation
            .per_class()
            .into_iter()
            .enumerate()
            .map(|(class, (accuracy, images))| ClassAccuracy {
                class: options
                    .class_names
                    .get(class)
                    .cloned()
                    .unwrap_or_else(|| class.to_string()),
                accuracy,
                images,
            })
            .collect(),
        eval_images_per_second: evaluation.images() as f64 / evaluation.seconds.max(1e-9),
        wall_seconds: started.elapsed().as_secs_f64(),
        confusion_matrix: evaluation.confusion,
        train_images_per_second,
        test_predictions: evaluation.predictions,
    };
    super::write_json(&artifacts.report(), &report)?;
    Ok(Trained {
        model,
        report,
        metrics: record.rows,
    })
}

fn limit(len: usize, limit: Option<usize>) -> usize {
    limit.map_or(len, |l| l.min(len))
}

/// Every label must name one of the model's classes (cross-entropy would otherwise index past
/// the logits), and every image must have the channels the model takes.
fn check_items<D: Dataset<ImageItem> + ?Sized>(
    dataset: &D,
    classes: usize,
    channels: usize,
    which: &str,
) -> Result<(), TrainError> {
    if dataset.is_empty() {
        return Err(TrainError::Data(format!("the {which} set is empty")));
    }
    for index in 0..dataset.len() {
        let item = dataset.get(index).map_err(|source| TrainError::Item {
            set: which.into(),
            index,
            source,
        })?;
        if item.label >= classes {
            return Err(TrainError::Data(format!(
                "{which} item {index} has label {}, but the model has {classes} classes",
                item.label
            )));
        }
        check_channels(&item, channels, which, index)?;
    }
    Ok(())
}

fn check_channels(
    item: &ImageItem,
    channels: usize,
    which: &str,
    index: usize,
) -> Result<(), TrainError> {
    if item.channels() == channels {
        return Ok(());
    }
    Err(TrainError::ChannelMismatch {
        set: which.to_string(),
        index,
        model: channels,
        data: item.channels(),
    })
}

/// The epoch to resume after and the metrics rows up to it: the newest intact checkpoint's.
/// Newer checkpoints found damaged are removed, saying so when `tell` is set.
fn resume_point(
    config: &TrainingConfig,
    artifacts: &ArtifactDir,
    tell: bool,
) -> Result<(usize, Vec<EpochMetrics>), TrainError> {
    let refuse = |reason: String| TrainError::Resume {
        dir: artifacts.root().to_path_buf(),
        reason,
    };
    if !artifacts.config().is_file() {
        return Err(refuse(
            "there is no config.json, so no run to resume; start one without --resume".into(),
        ));
    }
    let saved = artifacts.read_config()?;
    let comparable = |c: &TrainingConfig| TrainingConfig {
        epochs: 0,
        ..c.clone()
    };
    if comparable(&saved) != comparable(config) {
        return Err(refuse(format!(
            "its config.json describes another run ({}); resume with the same settings, or \
             start a new run in another --artifact-dir",
            differences(&saved, config)
        )));
    }
    let last = match artifacts.intact_checkpoint() {
        Ok((last, damaged)) => {
            if !damaged.is_empty() {
                artifacts
                    .remove_checkpoints_from(last + 1)
                    .map_err(|e| TrainError::io(&artifacts.checkpoints(), e))?;
                if tell {
                    println!(
                        "resuming after epoch {last}: the newer checkpoint is damaged and was \
                         removed: {}",
                        list(&damaged)
                    );
                }
            }
            last
        }
        Err(damaged) if damaged.is_empty() => {
            return Err(refuse(
                "no complete checkpoint in checkpoints/; start the run again without resuming"
                    .into(),
            ));
        }
        Err(damaged) => {
            return Err(refuse(format!(
                "every checkpoint is damaged: {}; start the run again, overwriting this one",
                list(&damaged)
            )));
        }
    };
    let rows = match std::fs::read_to_string(artifacts.metrics()) {
        Ok(text) => EpochMetrics::parse_csv(&text).map_err(|reason| TrainError::Artifact {
            path: artifacts.metrics(),
            reason,
        })?,
        Err(_) => Vec::new(),
    };
    let rows: Vec<EpochMetrics> = rows.into_iter().filter(|r| r.epoch <= last).collect();
    Ok((last, rows))
}

/// Damaged files as `path (reason), path (reason)`.
fn list(damaged: &[super::Damage]) -> String {
    damaged
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The settings that differ between `saved` and `asked`, as `name: saved -> asked`.
fn differences(saved: &TrainingConfig, asked: &TrainingConfig) -> String {
    let (Ok(serde_json::Value::Object(saved)), Ok(serde_json::Value::Object(asked))) =
        (serde_json::to_value(saved), serde_json::to_value(asked))
    else {
        return "the settings differ".into();
    };
    saved
        .iter()
        .filter(|(key, value)| key.as_str() != "epochs" && asked.get(*key) != Some(*value))
        .map(|(key, value)| {
            let asked = asked.get(key).map_or("-".into(), ToString::to_string);
            format!("{key}: {value} -> {asked}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
