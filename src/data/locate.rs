//! Where a dataset is searched for, in order: the caller's directory, `NIN_DATA_DIR`, the user
//! cache, the Debian package's copy; and what to tell a person when none serves.

use std::fmt;
use std::path::{Path, PathBuf};

use super::catalogue::DatasetSource;

/// Environment variable naming a directory that holds the dataset's files.
pub const DATA_DIR_VAR: &str = "NIN_DATA_DIR";

/// A place searched for a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A directory the caller passed (the `dir` argument of the loaders).
    Explicit,
    /// The `NIN_DATA_DIR` environment variable.
    EnvVar,
    /// The user cache directory.
    UserCache,
    /// The Debian/Ubuntu package's copy.
    System,
    /// A download from the dataset's mirrors into the user cache.
    Download,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Place::Explicit => "the directory passed in",
            Place::EnvVar => DATA_DIR_VAR,
            Place::UserCache => "the user cache",
            Place::System => "the system copy",
            Place::Download => "a download",
        })
    }
}

/// One place that was searched and why it did not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// Which place.
    pub place: Place,
    /// The directory, if the place names one.
    pub dir: Option<PathBuf>,
    /// Why it did not serve.
    pub reason: String,
}

impl fmt::Display for Tried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dir {
            Some(dir) => write!(f, "{} ({}): {}", self.place, dir.display(), self.reason),
            None => write!(f, "{}: {}", self.place, self.reason),
        }
    }
}

/// Why no copy of a dataset was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The dataset's display name.
    pub dataset: &'static str,
    /// Every place tried, in order.
    pub tried: Vec<Tried>,
    /// The fixes to offer.
    pub fixes: Vec<String>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} not found. Looked in:", self.dataset)?;
        for tried in &self.tried {
            writeln!(f, "  - {tried}")?;
        }
        write!(f, "To fix it, {}.", self.fixes.join(", or "))
    }
}

impl std::error::Error for NotFound {}

/// The directory a dataset was found in, and which place it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The directory holding the data set's files.
    pub dir: PathBuf,
    /// Where it came from.
    pub place: Place,
}

/// The user cache directory for a dataset: `$XDG_CACHE_HOME/nin/<name>`, else
/// `$HOME/.cache/nin/<name>`.
pub fn user_cache_dir(source: &(impl DatasetSource + ?Sized)) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("nin").join(source.dir_name()))
}

/// Finds the dataset, searching the places in order. `explicit` is the caller's directory.
pub fn locate(
    source: &(impl DatasetSource + ?Sized),
    explicit: Option<&Path>,
) -> Result<Located, NotFound> {
    let env_dir = env_data_dir();
    locate_in(
        source,
        explicit,
        env_dir.as_deref(),
        user_cache_dir(source).as_deref(),
    )
}

/// The directory named by [`DATA_DIR_VAR`], if it is set and not empty.
pub fn env_data_dir() -> Option<PathBuf> {
    std::env::var_os(DATA_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// [`locate`] with the environment passed in, so it can be tested without touching it.
pub fn locate_in(
    source: &(impl DatasetSource + ?Sized),
    explicit: Option<&Path>,
    env_dir: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<Located, NotFound> {
    let mut tried = Vec::new();
    let reason = |dir: &Path| {
        if !dir.is_dir() {
            return Some("no such directory".to_string());
        }
        source.lacks(dir)
    };
    // A directory the user named is authoritative: fall through only when none was named.
    for (place, dir) in [(Place::Explicit, explicit), (Place::EnvVar, env_dir)] {
        let Some(dir) = dir else {
            tried.push(Tried {
                place,
                dir: None,
                reason: "not given".into(),
            });
            continue;
        };
        return match reason(dir) {
            None => Ok(Located {
                dir: dir.to_path_buf(),
                place,
            }),
            Some(reason) => Err(not_found(
                source,
                vec![Tried {
                    place,
                    dir: Some(dir.to_path_buf()),
                    reason,
                }],
            )),
        };
    }
    let system = source.system().map(|(dir, _)| Path::new(dir));
    for (place, dir) in [(Place::UserCache, cache_dir), (Place::System, system)] {
        let Some(dir) = dir else { continue };
        match reason(dir) {
            None => {
                return Ok(Located {
                    dir: dir.to_path_buf(),
                    place,
                });
            }
            Some(reason) => tried.push(Tried {
                place,
                dir: Some(dir.to_path_buf()),
                reason,
            }),
        }
    }
    Err(not_found(source, tried))
}

fn not_found(source: &(impl DatasetSource + ?Sized), tried: Vec<Tried>) -> NotFound {
    let mut fixes = Vec::new();
    if let Some((_, package)) = source.system() {
        fixes.push(format!(
            "install the Debian/Ubuntu package (`sudo apt-get install {package}`)"
        ));
    }
    fixes.push(format!(
        "put {} in a directory and pass it (the `dir` argument) or set {DATA_DIR_VAR}",
        source.by_hand()
    ));
    NotFound {
        dataset: source.display_name(),
        tried,
        fixes,
    }
}
