//! Downloading a dataset into the user cache (feature `download`).
//!
//! Each file is streamed into a temporary file next to its final name, checked against its
//! reference SHA-256 with the same check that files found on disk get, and only then renamed
//! into place. An interrupted, truncated or corrupted download therefore never leaves a file
//! that a later run would trust: the temporary file is deleted on every error path.

use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::catalogue::{DatasetSource, KnownFile};
use super::idx::MAX_FILE_BYTES;
use super::locate::{self, Located, NotFound, Place, Tried};
use super::verify::verify_published;

/// Environment variable that turns automatic downloads off when set to anything but `0` or
/// the empty string.
pub const OFFLINE_VAR: &str = "NIN_OFFLINE";

/// Fetches a dataset's files from its mirrors.
///
/// ```no_run
/// use nin::data::download::Downloader;
/// use nin::data::source::{self, FASHION_MNIST_FILES};
///
/// let dir = source::user_cache_dir(&FASHION_MNIST_FILES).expect("HOME is set");
/// Downloader::new().fetch(&FASHION_MNIST_FILES, &dir)?;
/// # Ok::<(), nin::data::download::DownloadError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Downloader {
    mirrors: Option<Vec<String>>,
    progress: bool,
    timeout: Duration,
}

impl Default for Downloader {
    fn default() -> Self {
        Self::new()
    }
}

impl Downloader {
    /// A downloader that uses each dataset's own mirrors and reports progress on stderr.
    pub fn new() -> Self {
        Self {
            mirrors: None,
            progress: true,
            timeout: Duration::from_secs(60),
        }
    }

    /// Uses these base URLs instead of the dataset's mirrors, in order. Each must serve every
    /// file under its published name (`<base>/<file>.gz`).
    pub fn with_mirrors<S: Into<String>>(mut self, mirrors: impl IntoIterator<Item = S>) -> Self {
        self.mirrors = Some(mirrors.into_iter().map(Into::into).collect());
        self
    }

    /// Reports nothing on stderr.
    pub fn quiet(mut self) -> Self {
        self.progress = false;
        self
    }

    /// Gives up on a mirror that sends nothing for this long (connecting or mid-transfer).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Downloads every published file of the dataset that `dir` lacks into `dir`, under its
    /// published name, verifying each before it is given that name.
    pub fn fetch(
        &self,
        dataset: &(impl DatasetSource + ?Sized),
        dir: &Path,
    ) -> Result<(), DownloadError> {
        let wanted = dataset.to_download(dir);
        if wanted.is_empty() {
            return Ok(());
        }
        // Refuse before touching the network: an unverifiable download would be trusted later.
        if let Some(file) = wanted.iter().find(|f| !f.has_digest()) {
            return Err(DownloadError::NoDigest {
                file: file.name.to_string(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| DownloadError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let agent = self.agent();
        let mirrors: Vec<&str> = match &self.mirrors {
            Some(own) => own.iter().map(String::as_str).collect(),
            None => dataset.mirrors().to_vec(),
        };
        for file in &wanted {
            self.fetch_file(&agent, &mirrors, file, dir)?;
        }
        Ok(())
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_connect(Some(self.timeout))
            .timeout_recv_response(Some(self.timeout))
            .timeout_per_read(Some(self.timeout))
            .user_agent(concat!("nin/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    }

    /// Tries each mirror in turn until one serves a file that verifies.
    fn fetch_file(
        &self,
        agent: &ureq::Agent,
        mirrors: &[&str],
        file: &KnownFile,
        dir: &Path,
    ) -> Result<(), DownloadError> {
        let published = file.published_name();
        let target = dir.join(&published);
        let mut attempts = Vec::new();
        for mirror in mirrors {
            let url = format!("{}/{published}", mirror.trim_end_matches('/'));
            match self.fetch_from(agent, &url, file, &target) {
                Ok(()) => return Ok(()),
                Err(Failure::Local(error)) => return Err(error),
                Err(Failure::Mirror(reason)) => attempts.push(Attempt { url, reason }),
            }
        }
        Err(DownloadError::AllMirrorsFailed {
            file: file.name.to_string(),
            attempts,
        })
    }

    /// Downloads `url`, verifies it, writes it to a temporary file beside `target` and renames
    /// that into place.
    fn fetch_from(
        &self,
        agent: &ureq::Agent,
        url: &str,
        file: &KnownFile,
        target: &Path,
    ) -> Result<(), Failure> {
        let mut progress = Progress::start(self.progress, url);
        let result = download(agent, url, &mut progress).and_then(|raw| {
            verify_published(&raw, file, "the download")
                .map_err(|error| Failure::Mirror(error.to_string()))?;
            store(&raw, file, target).map_err(Failure::Local)
        });
        progress.finish(if result.is_ok() {
            "verified"
        } else {
            "rejected"
        });
        result
    }
}

/// The body of `url`, complete, within [`MAX_FILE_BYTES`].
fn download(agent: &ureq::Agent, url: &str, progress: &mut Progress) -> Result<Vec<u8>, Failure> {
    let response = agent
        .get(url)
        .call()
        .map_err(|e| Failure::Mirror(e.to_string()))?;
    let announced = response.body().content_length();
    if let Some(len) = announced.filter(|&len| len > MAX_FILE_BYTES) {
        return Err(Failure::Mirror(format!(
            "announces {len} bytes, over the {MAX_FILE_BYTES}-byte limit"
        )));
    }
    progress.total = announced;
    let mut body = response.into_body().into_reader().take(MAX_FILE_BYTES + 1);
    let mut raw = Vec::with_capacity(announced.unwrap_or(0) as usize);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure::Mirror(format!(
                    "transfer broke off after {} bytes: {e}",
                    raw.len()
                )));
            }
        }
        progress.update(raw.len() as u64);
    }
    if raw.len() as u64 > MAX_FILE_BYTES {
        return Err(Failure::Mirror(format!(
            "sent more than the {MAX_FILE_BYTES}-byte limit"
        )));
    }
    if let Some(len) = announced.filter(|&len| len != raw.len() as u64) {
        return Err(Failure::Mirror(format!(
            "sent {} of the {len} bytes it announced",
            raw.len()
        )));
    }
    Ok(raw)
}

/// Writes verified bytes to a temporary file in `target`'s directory, flushes them to disk and
/// renames the file to `target`, so `target` is either absent or complete.
fn store(raw: &[u8], file: &KnownFile, target: &Path) -> Result<(), DownloadError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let io = |source| DownloadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    // Dropping `partial` before `persist` deletes it.
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.published_name()))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(io)?;
    partial.write_all(raw).map_err(io)?;
    partial.as_file().sync_all().map_err(io)?;
    partial.persist(target).map_err(|e| io(e.error))?;
    Ok(())
}

/// Why one mirror failed, or a local fault that makes trying others pointless.
enum Failure {
    Mirror(String),
    Local(DownloadError),
}

/// One mirror tried, and why it did not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The URL requested.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.reason)
    }
}

/// Why a download failed. Nothing unverified is left behind in any case.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No mirror served a copy that verified.
    #[error(
        "{file}: no mirror served a copy that verifies ({}); check the network connection, \
         or fetch the file by other means and pass its directory (the `dir` argument) or set \
         NIN_DATA_DIR",
        attempts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    AllMirrorsFailed {
        /// The file's base name.
        file: String,
        /// Each mirror tried, in order.
        attempts: Vec<Attempt>,
    },
    /// The file has no reference digest, so a download could not be verified.
    #[error(
        "{file}: no reference SHA-256 is recorded, so a download could not be verified; \
         fetch the file yourself and pass its directory (the `dir` argument) or set \
         NIN_DATA_DIR"
    )]
    NoDigest {
        /// The file's base name.
        file: String,
    },
    /// The cache directory could not be created or written.
    #[error("{}: cannot write the download: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Finds a dataset as [`locate`](super::source::locate) does and, when no directory was named
/// and no copy was found, downloads it into the user cache, unless [`OFFLINE_VAR`] is set.
pub fn locate_or_download(
    dataset: &(impl DatasetSource + ?Sized),
    explicit: Option<&Path>,
    downloader: &Downloader,
) -> Result<Located, NotFound> {
    let env_dir = locate::env_data_dir();
    let offline = std::env::var(OFFLINE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    locate_or_download_in(
        dataset,
        explicit,
        env_dir.as_deref(),
        locate::user_cache_dir(dataset).as_deref(),
        (!offline).then_some(downloader),
    )
}

/// [`locate_or_download`] with the environment passed in; `None` for `downloader` means
/// offline.
pub fn locate_or_download_in(
    dataset: &(impl DatasetSource + ?Sized),
    explicit: Option<&Path>,
    env_dir: Option<&Path>,
    cache_dir: Option<&Path>,
    downloader: Option<&Downloader>,
) -> Result<Located, NotFound> {
    let mut not_found = match locate::locate_in(dataset, explicit, env_dir, cache_dir) {
        Ok(located) => return Ok(located),
        Err(not_found) => not_found,
    };
    // A named directory is authoritative: do not fetch a copy somewhere else behind its back.
    if explicit.is_some() || env_dir.is_some() {
        return Err(not_found);
    }
    let Some(cache_dir) = cache_dir else {
        return Err(not_found);
    };
    let reason = match downloader {
        None => format!("turned off by {OFFLINE_VAR}"),
        Some(downloader) => match downloader.fetch(dataset, cache_dir) {
            Ok(()) => {
                return Ok(Located {
                    dir: cache_dir.to_path_buf(),
                    place: Place::Download,
                });
            }
            Err(error) => error.to_string(),
        },
    };
    not_found.tried.push(Tried {
        place: Place::Download,
        dir: Some(cache_dir.to_path_buf()),
        reason,
    });
    Err(not_found)
}

/// Download progress on stderr: a redrawn line on a terminal, a line at start and end
/// otherwise (logs, CI), nothing when quiet.
struct Progress {
    enabled: bool,
    redraw: bool,
    label: String,
    total: Option<u64>,
    started: Instant,
    last_drawn: Instant,
    received: u64,
}

impl Progress {
    fn start(enabled: bool, url: &str) -> Self {
        let redraw = enabled && std::io::stderr().is_terminal();
        let label = url.rsplit('/').next().unwrap_or(url).to_string();
        if enabled && !redraw {
            eprintln!("downloading {url}");
        }
        let now = Instant::now();
        Self {
            enabled,
            redraw,
            label,
            total: None,
            started: now,
            last_drawn: now,
            received: 0,
        }
    }

    fn update(&mut self, received: u64) {
        self.received = received;
        if self.redraw && self.last_drawn.elapsed() >= Duration::from_millis(100) {
            self.last_drawn = Instant::now();
            eprint!("\r{}", self.line());
        }
    }

    fn finish(&self, outcome: &str) {
        if !self.enabled {
            return;
        }
        let line = self.line();
        if self.redraw {
            eprintln!("\r{line}, {outcome}");
        } else {
            eprintln!("{line}, {outcome}");
        }
    }

    fn line(&self) -> String {
        let rate = self.received as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let done = size(self.received as f64);
        match self.total {
            Some(total) if total > 0 => format!(
                "{}: {done} of {} ({:.0}%), {}/s",
                self.label,
                size(total as f64),
                100.0 * self.received as f64 / total as f64,
                size(rate)
            ),
            _ => format!("{}: {done}, {}/s", self.label, size(rate)),
        }
    }
}

/// A byte count in kB or MB, whichever reads better.
fn size(bytes: f64) -> String {
    if bytes < 1e6 {
        format!("{:.1} kB", bytes / 1e3)
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}
