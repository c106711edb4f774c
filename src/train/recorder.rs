//! Turns burn-train's metric stream into one row per epoch (`metrics.csv`), and stops the run
//! at the first non-finite loss.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use serde::{Deserialize, Serialize};

use super::artifacts;

/// The metrics of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy over the epoch, in `[0, 1]`.
    pub train_accuracy: f64,
    /// Test loss after the epoch.
    pub test_loss: f64,
    /// Test accuracy after the epoch, in `[0, 1]`.
    pub test_accuracy: f64,
    /// Learning rate at the epoch's last step.
    pub learning_rate: f64,
    /// Training images per second over the epoch (forward, backward and update).
    pub images_per_second: f64,
}

/// Header of `metrics.csv`, in the order of [`EpochMetrics`]'s fields.
pub const METRICS_CSV_HEADER: &str =
    "epoch,train_loss,train_accuracy,test_loss,test_accuracy,learning_rate,images_per_second";

impl EpochMetrics {
    fn csv_row(&self) -> String {
        // Shortest round-trip forms: reading the file back gives exactly these numbers.
        format!(
            "{},{},{},{},{},{},{}",
            self.epoch,
            self.train_loss,
            self.train_accuracy,
            self.test_loss,
            self.test_accuracy,
            self.learning_rate,
            self.images_per_second
        )
    }

    /// Parses the rows of a `metrics.csv` written by [`metrics_csv`].
    #[doc(hidden)]
    pub fn parse_csv(text: &str) -> Result<Vec<Self>, MetricsCsvError> {
        let mut lines = text.lines();
        match lines.next() {
            Some(header) if header.trim() == METRICS_CSV_HEADER => {}
            other => {
                return Err(MetricsCsvError(format!(
                    "the header is {other:?}, expected {METRICS_CSV_HEADER:?}"
                )));
            }
        }
        lines
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                let fields: Vec<&str> = line.split(',').collect();
                let number = |i: usize| -> Result<f64, MetricsCsvError> {
                    fields
                        .get(i)
                        .and_then(|f| f.trim().parse::<f64>().ok())
                        .ok_or_else(|| {
                            MetricsCsvError(format!(
                                "row {}: field {} is not a number",
                                index + 2,
                                i + 1
                            ))
                        })
                };
                if fields.len() != 7 {
                    return Err(MetricsCsvError(format!(
                        "row {}: {} fields, expected 7",
                        index + 2,
                        fields.len()
                    )));
                }
                Ok(Self {
                    epoch: number(0)? as usize,
                    train_loss: number(1)?,
                    train_accuracy: number(2)?,
                    test_loss: number(3)?,
                    test_accuracy: number(4)?,
                    learning_rate: number(5)?,
                    images_per_second: number(6)?,
                })
            })
            .collect()
    }
}

/// What is wrong with a `metrics.csv`: the row and field, or the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetricsCsvError(pub String);

/// `metrics.csv`'s text for these rows.
pub fn metrics_csv(rows: &[EpochMetrics]) -> String {
    let mut text = String::from(METRICS_CSV_HEADER);
    text.push('\n');
    for row in rows {
        text.push_str(&row.csv_row());
        text.push('\n');
    }
    text
}

/// Where the loss first stopped being a finite number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The step within the epoch, from 1.
    pub step: usize,
    /// The loss value (NaN or infinite).
    pub loss: f64,
}

/// The metrics a run registers with burn-train, told apart by the names burn gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Tracked {
    Loss,
    Accuracy,
    LearningRate,
}

impl Tracked {
    /// The metric burn-train displays as `name`, if this crate tracks it.
    pub(crate) fn from_burn_name(name: &str) -> Option<Self> {
        match name {
            "Loss" => Some(Tracked::Loss),
            "Accuracy" => Some(Tracked::Accuracy),
            "Learning Rate" => Some(Tracked::LearningRate),
            _ => None,
        }
    }
}

/// What the recorder has seen; shared with the code that launched the run.
#[derive(Debug, Default)]
pub struct Record {
    /// Completed epochs, in order, including those of the run being resumed.
    pub rows: Vec<EpochMetrics>,
    /// The first non-finite loss, if any.
    pub divergence: Option<Divergence>,
    /// A failure to write `metrics.csv`, if any.
    pub write_error: Option<String>,
}

/// burn-train metric logger that keeps the running epoch means of the metrics it is sent,
/// writes `metrics.csv` after each validation pass and prints one line per epoch.
pub struct EpochRecorder {
    record: Arc<Mutex<Record>>,
    csv_path: PathBuf,
    interrupter: Interrupter,
    names: HashMap<MetricId, Tracked>,
    means: HashMap<(bool, Tracked), f64>,
    epochs: usize,
    train_items: usize,
    step: usize,
    train_started: Option<Instant>,
    train_seconds: f64,
    print: bool,
}

impl EpochRecorder {
    /// A recorder that continues `previous` rows, writes `csv_path` and stops `interrupter` on
    /// a non-finite loss.
    pub fn new(
        previous: Vec<EpochMetrics>,
        csv_path: PathBuf,
        interrupter: Interrupter,
        epochs: usize,
        train_items: usize,
        print: bool,
    ) -> Self {
        Self {
            record: Arc::new(Mutex::new(Record {
                rows: previous,
                ..Record::default()
            })),
            csv_path,
            interrupter,
            names: HashMap::new(),
            means: HashMap::new(),
            epochs,
            train_items,
            step: 0,
            train_started: None,
            train_seconds: 0.0,
            print,
        }
    }

    /// A handle on what is recorded, readable after the run.
    pub fn record(&self) -> Arc<Mutex<Record>> {
        Arc::clone(&self.record)
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep using it.
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mean(&self, train: bool, metric: Tracked) -> f64 {
        self.means
            .get(&(train, metric))
            .copied()
            .unwrap_or(f64::NAN)
    }

    fn finish_epoch(&mut self, epoch: usize) {
        // burn reports accuracy in percent.
        let row = EpochMetrics {
            epoch,
            train_loss: self.mean(true, Tracked::Loss),
            train_accuracy: self.mean(true, Tracked::Accuracy) / 100.0,
            test_loss: self.mean(false, Tracked::Loss),
            test_accuracy: self.mean(false, Tracked::Accuracy) / 100.0,
            learning_rate: self.mean(true, Tracked::LearningRate),
            images_per_second: self.train_items as f64 / self.train_seconds.max(1e-9),
        };
        if self.print {
            // A closed stdout (a pipe whose reader went away) must not stop the run.
            let _ = writeln!(
                std::io::stdout(),
                "epoch {epoch}/{}: train loss {:.4}, train acc {:.4}, test loss {:.4}, test acc \
                 {:.4}, lr {:.3e}, {:.0} images/s",
                self.epochs,
                row.train_loss,
                row.train_accuracy,
                row.test_loss,
                row.test_accuracy,
                row.learning_rate,
                row.images_per_second
            );
        }
        let csv_path = self.csv_path.clone();
        let mut record = self.lock();
        record.rows.retain(|r| r.epoch < epoch);
        record.rows.push(row);
        if let Err(e) = artifacts::write_atomic(&csv_path, metrics_csv(&record.rows).as_bytes()) {
            record.write_error = Some(e.to_string());
        }
        drop(record);
        self.means.clear();
    }
}

impl MetricLogger for EpochRecorder {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        let train = matches!(split, Split::Train);
        if train {
            if self.train_started.is_none() {
                self.train_started = Some(Instant::now());
                self.step = 0;
            }
            self.step += 1;
        }
        for numeric in &update.entries_numeric {
            let Some(&metric) = self.names.get(&numeric.entry.metric_id) else {
                continue;
            };
            if train
                && metric == Tracked::Loss
                && let Some(value) = numeric.numeric_entry.as_ref().map(NumericEntry::current)
                && !value.is_finite()
            {
                let mut record = self.lock();
                if record.divergence.is_none() {
                    record.divergence = Some(Divergence {
                        epoch,
                        step: self.step,
                        loss: value,
                    });
                    drop(record);
                    self.interrupter
                        .stop(Some("the loss is not a finite number"));
                }
            }
            // The learning rate is kept as it stands at the epoch's last step (burn also sends
            // its epoch mean as a final entry, which is skipped), the rest as epoch means.
            let value = if metric == Tracked::LearningRate {
                match &numeric.numeric_entry {
                    Some(NumericEntry::Final(_)) | None => None,
                    Some(step) => Some(step.current()),
                }
            } else {
                numeric.running_entry.as_ref().map(NumericEntry::current)
            };
            if let Some(value) = value {
                self.means.insert((train, metric), value);
            }
        }
    }

    fn read_numeric(
        &mut self,
        _name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<burn::train::metric::NumericEntry>, String> {
        Err("the epoch recorder keeps epoch means only".to_string())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        if let Some(metric) = Tracked::from_burn_name(&definition.name) {
            self.names.insert(definition.metric_id, metric);
        }
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        match summary.split {
            Split::Train => {
                self.train_seconds = self
                    .train_started
                    .take()
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
            }
            Split::Valid => self.finish_epoch(summary.epoch_number),
            Split::Test(_) => {}
        }
    }
}
