//! A training run from start to end: open the artifact directory, build the learner, launch
//! burn-train, read the outcome, report.

use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::PartialDataset;
use burn::module::Module;
use burn::tensor::Device;
use burn::train::{Learner, LearningResult};

use super::TrainingNin;
use crate::data::{ImageBatch, ImageBatcher, ImageItem, Split};

use super::artifacts::RunConfig;
use super::checks::{check_channels, check_devices, check_items, limit};
use super::claim::RunLock;
use super::loader::{EpochLoader, Order};
use super::options::{Progress, Strategy, TrainOptions, Trained};
use super::recorder::{EpochMetrics, Record};
use super::resume::resume_point;
use super::{ArtifactDir, TrainError, TrainingConfig};

/// Trains `config` on `train_set`, evaluating on `test_set` after every epoch, and writes the
/// artifacts. Returns the model and the report.
///
/// `devices` are the devices to train on, data-parallel: one for a plain run (`&[device]`), or
/// several, the first of which takes the optimiser step and evaluates. Each trains on its own
/// share of the training set with `batch_size` images per step, so an epoch is still one pass
/// over the set, in `1/n` as many steps of a global batch `n` times as large; the learning rate
/// applies to that global batch's mean gradient. `config.json` records their number, and a
/// resumed run must have as many.
///
/// The run holds the directory's lock (`.nin-lock`) throughout: a second run there is refused,
/// naming this one's process. A fresh run refuses a directory that holds an earlier run's files
/// unless `options.overwrite` (which removes only the files its `manifest.json` lists); with
/// `options.resume` it continues from the last checkpoint, provided `config.json` there
/// describes the same run (only `epochs` may grow).
///
/// The allocator is left as the program set it: a binary that wants each step to reuse the
/// memory earlier steps freed calls [`retain_freed_memory`](crate::ops::retain_freed_memory)
/// first, as the examples do.
pub fn train<Tr, Te>(
    config: &TrainingConfig,
    train_set: Tr,
    test_set: Te,
    devices: &[Device],
    options: &TrainOptions,
) -> Result<Trained, TrainError>
where
    Tr: Dataset<ImageItem> + 'static,
    Te: Dataset<ImageItem> + 'static,
{
    let run = Run::open(config, options, devices, train_set, test_set)?;
    let learner = run.learner()?;
    let (result, record) = run.launch(learner)?;
    let completed = run.outcome(&result, &record)?;
    run.report(result.model.into_model(), record, completed)
}

/// A run from its opened directory to its report: what it computes, where and how it works,
/// its artifact directory and its data.
pub(super) struct Run<'a, Te: Dataset<ImageItem>> {
    pub(super) config: &'a TrainingConfig,
    pub(super) options: &'a TrainOptions,
    pub(super) dir: OpenRun,
    pub(super) data: RunData<Te>,
    pub(super) started: Instant,
}

impl<'a, Te: Dataset<ImageItem> + 'static> Run<'a, Te> {
    /// Checks the devices, the configuration and the data, and takes the artifact directory.
    fn open<Tr: Dataset<ImageItem> + 'static>(
        config: &'a TrainingConfig,
        options: &'a TrainOptions,
        devices: &[Device],
        train_set: Tr,
        test_set: Te,
    ) -> Result<Self, TrainError> {
        let started = Instant::now();
        check_devices(config, options, devices)?;
        let dir = open_run(config, options, devices.len(), &train_set)?;
        let data = RunData::new(
            config,
            train_set,
            test_set,
            dir.start_epoch,
            devices.to_vec(),
        )?;
        Ok(Self {
            config,
            options,
            dir,
            data,
            started,
        })
    }
}

/// The artifact directory of a run, locked, with where the run starts.
pub(super) struct OpenRun {
    pub(super) artifacts: ArtifactDir,
    pub(super) _lock: RunLock,
    /// Epochs already done (by the run being resumed).
    pub(super) start_epoch: usize,
    /// Their metrics rows.
    pub(super) previous_rows: Vec<EpochMetrics>,
}

/// Validates the configuration and the options, then takes the artifact directory: locked,
/// and either resumed (its checkpoint and metrics read) or claimed for a fresh run, with the
/// configuration written.
fn open_run<Tr: Dataset<ImageItem>>(
    config: &TrainingConfig,
    options: &TrainOptions,
    devices: usize,
    train_set: &Tr,
) -> Result<OpenRun, TrainError> {
    config.validate()?;
    // Before anything is written: the common mistake, a grayscale model on colour images or
    // the reverse, shows in the first item. Every item is checked with the labels later.
    if let Ok(first) = train_set.get(0) {
        check_channels(&first, config.model.blocks[0].in_channels, Split::Train, 0)?;
    }
    if options.resume && options.initial_model.is_some() {
        return Err(TrainError::Config(
            "an initial model and resume were both given: a resumed run continues from its last \
             checkpoint, so drop one of them"
                .into(),
        ));
    }
    let run_config = RunConfig {
        config: config.clone(),
        devices,
    };
    let artifacts = ArtifactDir::new(&options.artifact_dir);
    std::fs::create_dir_all(artifacts.root()).map_err(|e| TrainError::io(artifacts.root(), e))?;
    let lock = artifacts.lock()?;
    let (start_epoch, previous_rows) = if options.resume {
        let point = resume_point(&run_config, &artifacts, options.progress != Progress::Quiet)?;
        artifacts.write_manifest(artifacts.recorded_checkpoints()?.unwrap_or_default())?;
        point
    } else {
        artifacts.claim(options.overwrite)?;
        (0, Vec::new())
    };
    super::write_json(&artifacts.config(), &run_config)?;
    Ok(OpenRun {
        artifacts,
        _lock: lock,
        start_epoch,
        previous_rows,
    })
}

/// The datasets of a run, checked, and the loaders over them.
pub(super) struct RunData<Te: Dataset<ImageItem>> {
    pub(super) train_loader: Arc<dyn DataLoader<ImageBatch>>,
    pub(super) valid_loader: Arc<dyn DataLoader<ImageBatch>>,
    /// The test set, for the final evaluation.
    pub(super) test_set: Arc<PartialDataset<Te, ImageItem>>,
    pub(super) eval_batcher: ImageBatcher,
    /// Training images per epoch.
    pub(super) train_len: usize,
    /// The autodiff device training runs on (the first, with several).
    pub(super) train_device: Device,
    /// Every device the run trains on.
    pub(super) devices: Vec<Device>,
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
        check_items(&train_set, classes, channels, Split::Train)?;
        check_items(&*test_set, classes, channels, Split::Test)?;

        let first = train_set.get(0).map_err(|source| TrainError::Item {
            set: Split::Train,
            index: 0,
            source,
        })?;
        let eval_batcher = config.batcher([first.height, first.width]);
        let train_device = device.clone().autodiff();
        device.seed(config.seed);
        let train_loader = Arc::new(EpochLoader::new(
            Arc::new(train_set),
            eval_batcher.clone(),
            config.batch_size,
            config.workers,
            Order::Shuffled {
                seed: config.seed,
                augment: config.augment,
            },
            start_epoch + 1,
            train_device.clone(),
        ));
        let valid_loader = Arc::new(EpochLoader::new(
            Arc::clone(&test_set) as Arc<dyn Dataset<ImageItem>>,
            eval_batcher.clone(),
            config.batch_size,
            config.workers,
            Order::Sequential,
            1,
            device.clone(),
        ));
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

impl<Te: Dataset<ImageItem>> Run<'_, Te> {
    /// The model (fresh, or the options' initial weights), its optimiser and its learning-rate
    /// schedule, on the training device.
    fn learner(&self) -> Result<Learner<TrainingNin>, TrainError> {
        let (config, options, data) = (self.config, self.options, &self.data);
        // With n devices burn-train cuts the training set into n parts, the last taking the
        // remainder, and takes one step per batch of each part.
        let n = data.devices.len();
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
        let mut model = super::param_ids::numbered(model).with_precision(config.precision);
        for block in &mut model.blocks[..config.frozen_blocks] {
            *block = block.clone().freeze();
        }
        Ok(Learner::new(
            TrainingNin::new(model),
            optimizer.init(),
            scheduler,
        ))
    }

    /// The epochs completed, or the error that ended the run before its last epoch: a diverged
    /// loss (whose epoch's checkpoints are removed), burn-train's error, a failed metrics write, or
    /// an interruption.
    fn outcome(
        &self,
        result: &LearningResult<TrainingNin>,
        record: &Record,
    ) -> Result<usize, TrainError> {
        let (config, run) = (self.config, &self.dir);
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
}
