//! Checkpoints a resume can trust: each file's size and SHA-256 go into the run's manifest as
//! the file is written, and a resume checks the newest complete checkpoint against them before
//! burn-train loads it, falling back to the one before when it is damaged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use burn::lr_scheduler::LrSchedulerRecord;
use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError, FileCheckpointer};
use serde::{Deserialize, Serialize};

use super::{ArtifactDir, TrainError};
use crate::data::source::sha256_hex;

/// The three files of one epoch's checkpoint, by the names burn-train's checkpointers give
/// them (`<kind>-<epoch>.bpk`).
pub(crate) const KINDS: [&str; 3] = ["model", "optim", "scheduler"];

/// A checkpoint file's size and SHA-256, as recorded when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileDigest {
    pub bytes: u64,
    pub sha256: String,
}

impl FileDigest {
    fn of(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        Ok(Self {
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        })
    }
}

/// The name of `kind`'s file of `epoch` in `checkpoints/`.
pub(crate) fn file_name(kind: &str, epoch: usize) -> String {
    format!("{kind}-{epoch}.bpk")
}

/// A checkpoint file found damaged, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.reason)
    }
}

/// The run's manifest as the record of its checkpoint files, which burn-train's three
/// checkpointers (each on a thread of its own) update in turn.
pub(crate) struct Ledger {
    artifacts: ArtifactDir,
    lock: Mutex<()>,
}

impl Ledger {
    pub(crate) fn new(artifacts: ArtifactDir) -> Arc<Self> {
        Arc::new(Self {
            artifacts,
            lock: Mutex::new(()),
        })
    }

    /// Sets (`Some`) or removes (`None`) the digest recorded for checkpoint file `name`.
    fn update(&self, name: &str, digest: Option<FileDigest>) -> Result<(), TrainError> {
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut recorded = self.artifacts.recorded_checkpoints()?.unwrap_or_default();
        match digest {
            Some(digest) => recorded.insert(name.to_string(), digest),
            None => recorded.remove(name),
        };
        self.artifacts.write_manifest(recorded)
    }
}

/// burn-train's file checkpointer for one kind of record, recording each file it writes (and
/// forgetting each it deletes) in the run's manifest.
pub(crate) struct RecordedCheckpointer {
    inner: FileCheckpointer,
    kind: &'static str,
    ledger: Arc<Ledger>,
}

impl RecordedCheckpointer {
    pub(crate) fn new(ledger: &Arc<Ledger>, kind: &'static str) -> Self {
        Self {
            inner: FileCheckpointer::new(ledger.artifacts.checkpoints(), kind),
            kind,
            ledger: Arc::clone(ledger),
        }
    }
}

impl<R: Checkpoint> Checkpointer<R> for RecordedCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        self.inner.save(epoch, record)?;
        let name = file_name(self.kind, epoch);
        let path = self.ledger.artifacts.checkpoints().join(&name);
        let digest = FileDigest::of(&path).map_err(CheckpointerError::IOError)?;
        self.ledger
            .update(&name, Some(digest))
            .map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        <FileCheckpointer as Checkpointer<R>>::delete(&self.inner, epoch)?;
        self.ledger
            .update(&file_name(self.kind, epoch), None)
            .map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        self.inner.restore(epoch)
    }
}

impl ArtifactDir {
    /// The digests of the checkpoint files the manifest records, or `None` for a run of an
    /// earlier version, which recorded none.
    pub(crate) fn recorded_checkpoints(
        &self,
    ) -> Result<Option<BTreeMap<String, FileDigest>>, TrainError> {
        Ok(self
            .read_manifest()?
            .and_then(|manifest| manifest.checkpoints))
    }

    /// The newest epoch whose checkpoint is complete and intact, with the files of newer
    /// complete checkpoints found damaged; or, when none is intact, every damaged file.
    ///
    /// A file is intact when its size and SHA-256 are the ones the manifest recorded as it was
    /// written. A file the manifest has no record of (a run of an earlier version, or a process
    /// ended between writing the file and recording it) is loaded instead, which finds a file
    /// cut short but not one whose bytes were changed in place.
    #[doc(hidden)]
    pub fn intact_checkpoint(&self) -> Result<(usize, Vec<Damage>), Vec<Damage>> {
        let recorded = self
            .recorded_checkpoints()
            .ok()
            .flatten()
            .unwrap_or_default();
        let mut damaged = Vec::new();
        for epoch in self.complete_checkpoints().into_iter().rev() {
            let found: Vec<Damage> = KINDS
                .iter()
                .filter_map(|kind| {
                    let name = file_name(kind, epoch);
                    let path = self.checkpoints().join(&name);
                    check(kind, &path, recorded.get(&name))
                        .err()
                        .map(|reason| Damage { path, reason })
                })
                .collect();
            if found.is_empty() {
                return Ok((epoch, damaged));
            }
            damaged.extend(found);
        }
        Err(damaged)
    }
}

/// Whether the checkpoint file of `kind` at `path` is intact: its `recorded` size and digest,
/// or, without a record, whether it loads.
fn check(kind: &str, path: &Path, recorded: Option<&FileDigest>) -> Result<(), String> {
    let Some(recorded) = recorded else {
        let loaded = match kind {
            "model" => ModuleRecord::load(path).map(drop),
            "optim" => OptimizerRecord::load(path).map(drop),
            _ => LrSchedulerRecord::load(path).map(drop),
        };
        return loaded.map_err(|e| format!("it does not load: {e}"));
    };
    let actual = FileDigest::of(path).map_err(|e| format!("cannot read it: {e}"))?;
    if actual.bytes != recorded.bytes {
        return Err(format!(
            "{} bytes, {} when it was written",
            actual.bytes, recorded.bytes
        ));
    }
    if actual.sha256 != recorded.sha256 {
        return Err(format!(
            "its SHA-256 is {}, {} when it was written",
            actual.sha256, recorded.sha256
        ));
    }
    Ok(())
}
