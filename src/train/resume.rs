//! Where a resumed run starts: the newest intact checkpoint of the same configuration.

use super::artifacts::RunConfig;
use super::recorder::EpochMetrics;
use super::{ArtifactDir, TrainError};

/// The epoch to resume after and the metrics rows up to it: the newest intact checkpoint's.
/// Newer checkpoints found damaged are removed, saying so when `tell` is set.
pub(super) fn resume_point(
    asked: &RunConfig,
    artifacts: &ArtifactDir,
    tell: bool,
) -> Result<(usize, Vec<EpochMetrics>), TrainError> {
    let refuse = |reason: String| refusal(artifacts, reason);
    if !artifacts.config().is_file() {
        return Err(refuse(
            "there is no config.json, so no run to resume; start one without resuming \
             (`TrainOptions::resume`)"
                .into(),
        ));
    }
    let saved = artifacts.read_run_config()?;
    let comparable = |c: &RunConfig| {
        let mut c = c.clone();
        c.config.epochs = 0;
        c
    };
    if comparable(&saved) != comparable(asked) {
        return Err(refuse(format!(
            "its config.json describes another run ({}); resume with the same settings, or \
             start a new run in another artifact directory (`TrainOptions::new`)",
            differences(&saved, asked)
        )));
    }
    let last = newest_intact_checkpoint(artifacts, tell)?;
    let rows = match std::fs::read_to_string(artifacts.metrics()) {
        Ok(text) => EpochMetrics::parse_csv(&text).map_err(|e| TrainError::Artifact {
            path: artifacts.metrics(),
            reason: e.to_string(),
        })?,
        Err(_) => Vec::new(),
    };
    let rows: Vec<EpochMetrics> = rows.into_iter().filter(|r| r.epoch <= last).collect();
    Ok((last, rows))
}

/// The newest checkpoint whose files are intact; newer ones found damaged are removed, saying
/// so when `tell` is set.
fn newest_intact_checkpoint(artifacts: &ArtifactDir, tell: bool) -> Result<usize, TrainError> {
    match artifacts.intact_checkpoint() {
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
            Ok(last)
        }
        Err(damaged) if damaged.is_empty() => Err(refusal(
            artifacts,
            "no complete checkpoint in checkpoints/; start the run again without resuming".into(),
        )),
        Err(damaged) => Err(refusal(
            artifacts,
            format!(
                "every checkpoint is damaged: {}; start the run again, overwriting this one",
                list(&damaged)
            ),
        )),
    }
}

/// A run in `artifacts` that cannot be resumed, and why.
fn refusal(artifacts: &ArtifactDir, reason: String) -> TrainError {
    TrainError::Resume {
        dir: artifacts.root().to_path_buf(),
        reason,
    }
}

/// Damaged files as `path (reason), path (reason)`.
pub(super) fn list(damaged: &[super::Damage]) -> String {
    damaged
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The settings that differ between `saved` and `asked`, as `name: saved -> asked`.
pub(super) fn differences(saved: &RunConfig, asked: &RunConfig) -> String {
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
