//! Claiming an artifact directory for a run: one run at a time (a lock naming its process),
//! and a fresh run never replaces another run's files unless asked to, nor touches files that
//! no run of this crate wrote.
//!
//! Design notes: `docs/design.md`, "train::claim".

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};

use serde::{Deserialize, Serialize};

use super::checkpoints::FileDigest;
use super::{ArtifactDir, TrainError};

/// The manifest's file name.
pub(crate) const MANIFEST: &str = "manifest.json";
/// The lock file's name: it holds the pid of the run that has the directory.
pub(crate) const LOCK: &str = ".nin-lock";
/// Every name a run writes in its directory, besides the manifest and the lock.
const RUN_FILES: [&str; 6] = [
    "config.json",
    "model.bpk",
    "checkpoints",
    "metrics.csv",
    "training.svg",
    "report.json",
];

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// What wrote the files.
    written_by: String,
    /// The names of the files, relative to the directory.
    files: Vec<String>,
    /// Each checkpoint file's size and SHA-256 as it was written, by its name in
    /// `checkpoints/`; absent in the manifests of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checkpoints: Option<BTreeMap<String, FileDigest>>,
}

/// The exclusive lock on an artifact directory, held until dropped (or the process ends, when
/// the operating system releases it, whatever way it ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl ArtifactDir {
    /// Takes the directory's lock for this process, or names the process that holds it.
    ///
    /// # Errors
    ///
    /// [`TrainError::Locked`] when another run holds it; [`TrainError::Artifact`] when the lock
    /// file cannot be opened.
    #[doc(hidden)]
    pub fn lock(&self) -> Result<RunLock, TrainError> {
        let path = self.root().join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(TrainError::Locked {
                    dir: self.root().to_path_buf(),
                    pid: holder.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(TrainError::io(&path, e)),
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(RunLock { _file: file })
    }

    /// Makes the directory ready for a fresh run: refuses when it holds an earlier run's files
    /// (unless `overwrite`, which removes exactly those) or files of a run's names that no run
    /// of this crate wrote; then records this run's files in the manifest.
    ///
    /// # Errors
    ///
    /// [`TrainError::Occupied`], [`TrainError::Foreign`], or [`TrainError::Artifact`] when a
    /// file cannot be read or removed.
    pub(crate) fn claim(&self, overwrite: bool) -> Result<(), TrainError> {
        let listed = self.manifest_files()?;
        let present: Vec<&str> = RUN_FILES
            .into_iter()
            .filter(|name| self.root().join(name).exists())
            .collect();
        if let Some(foreign) = present
            .iter()
            .find(|name| !listed.iter().any(|l| l == *name))
        {
            return Err(TrainError::Foreign {
                path: self.root().join(foreign),
            });
        }
        if !present.is_empty() {
            if !overwrite {
                return Err(TrainError::Occupied {
                    dir: self.root().to_path_buf(),
                    files: present.iter().map(|name| name.to_string()).collect(),
                });
            }
            for name in &present {
                self.remove_run_file(name)?;
            }
        }
        self.write_manifest(BTreeMap::new())
    }

    /// Records a run's files in the manifest with the digests of the checkpoints written so
    /// far; a resumed run records them too, for a directory an older version of this crate
    /// wrote without one.
    pub(crate) fn write_manifest(
        &self,
        checkpoints: BTreeMap<String, FileDigest>,
    ) -> Result<(), TrainError> {
        let manifest = Manifest {
            written_by: format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
            files: RUN_FILES
                .iter()
                .chain(&[LOCK])
                .map(|name| name.to_string())
                .collect(),
            checkpoints: Some(checkpoints),
        };
        super::write_json(&self.root().join(MANIFEST), &manifest)
    }

    /// The manifest, or `None` where there is none.
    pub(crate) fn read_manifest(&self) -> Result<Option<Manifest>, TrainError> {
        let path = self.root().join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TrainError::io(&path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TrainError::Artifact {
                path: path.clone(),
                reason: format!("not a manifest of this crate ({e}); remove it by hand"),
            })
    }

    /// The names the manifest lists that are a run's own names (a manifest naming anything else
    /// is not trusted with it); none without a manifest.
    fn manifest_files(&self) -> Result<Vec<String>, TrainError> {
        let files = self.read_manifest()?.map_or_else(Vec::new, |m| m.files);
        Ok(files
            .into_iter()
            .filter(|name| RUN_FILES.contains(&name.as_str()))
            .collect())
    }

    /// Removes one of a run's files; of `checkpoints/`, only the checkpoint files in it, and
    /// the folder itself once empty.
    fn remove_run_file(&self, name: &str) -> Result<(), TrainError> {
        let path = self.root().join(name);
        if path.is_dir() {
            self.remove_checkpoints_from(0)
                .map_err(|e| TrainError::io(&path, e))?;
            return match std::fs::remove_dir(&path) {
                Ok(()) => Ok(()),
                // Something else is in it: it stays, with the files that are not ours.
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
                Err(e) => Err(TrainError::io(&path, e)),
            };
        }
        std::fs::remove_file(&path).map_err(|e| TrainError::io(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_manifest(dir: &std::path::Path) -> bool {
        dir.join(MANIFEST).is_file()
    }

    fn dir() -> (tempfile::TempDir, ArtifactDir) {
        let root = tempfile::tempdir().unwrap();
        let artifacts = ArtifactDir::new(root.path());
        (root, artifacts)
    }

    #[test]
    fn a_second_fresh_run_refuses_and_overwrite_removes_only_the_runs_files() {
        let (root, artifacts) = dir();
        artifacts.claim(false).unwrap();
        std::fs::write(artifacts.config(), "{}").unwrap();
        std::fs::create_dir(artifacts.checkpoints()).unwrap();
        std::fs::write(artifacts.checkpoints().join("model-1.bpk"), "m").unwrap();
        std::fs::write(artifacts.checkpoints().join("notes.txt"), "mine").unwrap();
        std::fs::write(root.path().join("notes.txt"), "mine").unwrap();

        let err = artifacts.claim(false).unwrap_err();
        assert!(matches!(err, TrainError::Occupied { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("`TrainOptions::resume`")
                && message.contains("`TrainOptions::overwrite`"),
            "{message}"
        );

        artifacts.claim(true).unwrap();
        assert!(!artifacts.config().exists());
        assert!(!artifacts.checkpoints().join("model-1.bpk").exists());
        // What no run wrote survives, in the folder and beside it.
        assert!(artifacts.checkpoints().join("notes.txt").exists());
        assert!(root.path().join("notes.txt").exists());
    }

    #[test]
    fn files_no_run_wrote_are_never_replaced() {
        let (root, artifacts) = dir();
        std::fs::create_dir(root.path().join("checkpoints")).unwrap();
        std::fs::write(root.path().join("checkpoints/model.pt"), "project's own").unwrap();
        for overwrite in [false, true] {
            let err = artifacts.claim(overwrite).unwrap_err();
            assert!(matches!(err, TrainError::Foreign { .. }), "{err}");
            assert!(err.to_string().contains("checkpoints"), "{err}");
        }
        assert!(root.path().join("checkpoints/model.pt").exists());
        assert!(!has_manifest(root.path()));
    }

    #[test]
    fn a_manifest_cannot_make_a_run_delete_other_names() {
        let (root, artifacts) = dir();
        std::fs::write(root.path().join("thesis.tex"), "mine").unwrap();
        std::fs::write(
            root.path().join(MANIFEST),
            r#"{"written_by": "nin", "files": ["thesis.tex", "../elsewhere"]}"#,
        )
        .unwrap();
        artifacts.claim(true).unwrap();
        assert!(root.path().join("thesis.tex").exists());
    }

    #[test]
    fn the_lock_is_exclusive_and_names_its_holder() {
        let (_root, artifacts) = dir();
        let held = artifacts.lock().unwrap();
        // A second handle in the same process conflicts like another process would.
        let err = artifacts.lock().unwrap_err();
        match &err {
            TrainError::Locked { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(&std::process::id().to_string()));
        drop(held);
        artifacts.lock().unwrap();
    }
}
