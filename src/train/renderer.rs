//! Progress as plain log lines, for logs, pipes and CI, where burn-train's dashboard cannot
//! draw: a line at each tenth of a split with the time left and the latest training loss,
//! nothing per step.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

use super::recorder::Tracked;

/// burn-train renderer that prints split progress with an estimate of the time left.
#[derive(Debug)]
pub struct PlainRenderer {
    print: bool,
    epoch: usize,
    epochs: usize,
    split: String,
    total: usize,
    started: Instant,
    next_tenth: usize,
    names: HashMap<MetricId, Tracked>,
    loss: Option<f64>,
}

impl PlainRenderer {
    /// A renderer that prints to stdout, or nothing when `print` is false.
    pub fn new(print: bool) -> Self {
        Self {
            print,
            epoch: 0,
            epochs: 0,
            split: String::new(),
            total: 0,
            started: Instant::now(),
            next_tenth: 1,
            names: HashMap::new(),
            loss: None,
        }
    }
}

/// `1h02m`, `3m07s` or `41s`.
pub(crate) fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

impl TrainingProgressLogger for PlainRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.epochs = total_epochs;
        self.epoch = starting_epoch;
    }

    fn update_epoch(&mut self, epoch: usize) {
        // burn reports the epoch just finished, as its own CLI renderer reads it.
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_string();
        self.total = total_items;
        self.started = Instant::now();
        self.next_tenth = 1;
    }

    fn update_split(&mut self, items_processed: usize) {
        if !self.print || self.total == 0 || items_processed * 10 < self.next_tenth * self.total {
            return;
        }
        let done = items_processed.min(self.total);
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = elapsed * (self.total - done) as f64 / done.max(1) as f64;
        let loss = match (self.split.as_str(), self.loss) {
            ("train", Some(loss)) => format!(", loss {loss:.4}"),
            _ => String::new(),
        };
        // A closed stdout (a pipe whose reader went away) must not stop the run.
        let _ = writeln!(
            std::io::stdout(),
            "epoch {}/{} {}: {:3}% ({done}/{} images){loss}, {} left in this split",
            self.epoch,
            self.epochs,
            self.split,
            done * 100 / self.total,
            self.total,
            duration(left)
        );
        self.next_tenth = done * 10 / self.total + 1;
    }

    fn end_split(&mut self) {}

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for PlainRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, _name: &str, _total_items: usize) {}

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        // Per-step values; the epoch's final mean is not a step's loss.
        if let MetricState::Numeric(entry, Some(value)) = state
            && !matches!(value, NumericEntry::Final(_))
            && self
                .names
                .get(&entry.metric_id)
                .is_some_and(|&metric| metric == Tracked::Loss)
        {
            self.loss = Some(value.current());
        }
    }

    fn update_valid(&mut self, _state: MetricState) {}
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        if let Some(metric) = Tracked::from_burn_name(&definition.name) {
            self.names.insert(definition.metric_id, metric);
        }
    }
}
