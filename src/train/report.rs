//! The end of a run: the model evaluated on the test set, and the artifacts written.

use burn::data::dataset::Dataset;
use burn::module::Module;

use crate::data::ImageItem;
use crate::model::Nin;

use super::options::Trained;
use super::recorder::{EpochMetrics, Record};
use super::run::Run;
use super::{ClassAccuracy, Report, TrainError, evaluate, plot};

impl<Te: Dataset<ImageItem>> Run<'_, Te> {
    /// Evaluates the trained model on the test set and writes `model.bpk`, `training.svg` and
    /// `report.json`.
    pub(super) fn report(
        self,
        model: Nin,
        record: Record,
        completed: usize,
    ) -> Result<Trained, TrainError> {
        let (config, options, run, data) = (self.config, self.options, &self.dir, &self.data);
        let model = model.valid();
        let evaluation = evaluate(
            &model,
            &*data.test_set,
            &data.eval_batcher,
            config.batch_size,
            &data.devices[0],
        )?;
        let artifacts = &run.artifacts;
        artifacts.save_model(&model)?;
        plot::write_training_svg(
            &record.rows,
            &format!("NiN ({}) on {} images", config.preset, data.train_len),
            &artifacts.plot(),
        )?;
        let per_class_accuracy = evaluation
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
            .collect();
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
            per_class_accuracy,
            eval_images_per_second: evaluation.images() as f64 / evaluation.seconds.max(1e-9),
            wall_seconds: self.started.elapsed().as_secs_f64(),
            confusion_matrix: evaluation.confusion,
            train_images_per_second: self.train_images_per_second(&record.rows),
            test_predictions: evaluation.predictions,
        };
        super::write_json(&artifacts.report(), &report)?;
        Ok(Trained {
            model,
            report,
            metrics: record.rows,
        })
    }

    /// The mean training throughput of the epochs this run trained (not those it resumed
    /// after).
    fn train_images_per_second(&self, rows: &[EpochMetrics]) -> f64 {
        let new_rows: Vec<&EpochMetrics> = rows
            .iter()
            .filter(|r| r.epoch > self.dir.start_epoch)
            .collect();
        new_rows.iter().map(|r| r.images_per_second).sum::<f64>() / new_rows.len().max(1) as f64
    }
}
