//! Where a dataset's files come from, and how they are checked.
//!
//! The places, in order: a directory the caller names, `NIN_DATA_DIR`, the user cache
//! (`$XDG_CACHE_HOME/nin/<dataset>`, else `~/.cache/nin/<dataset>`), then the system copy that
//! Debian and Ubuntu install (`/usr/share/datasets/fashion-mnist`). A directory named by the
//! caller or by `NIN_DATA_DIR` is authoritative: if it lacks a file, that is the error, rather
//! than quietly using another copy.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Environment variable naming a directory that holds the dataset's files.
pub const DATA_DIR_VAR: &str = "NIN_DATA_DIR";

/// A file of a dataset with its reference digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFile {
    /// Base name, without `.gz`.
    pub name: &'static str,
    /// SHA-256 of the decompressed bytes, lower-case hex, where a reference is recorded.
    /// Digests are taken after decompression because repackagers (Debian among them) recompress
    /// the files, which changes the `.gz` bytes but not their content.
    pub sha256: Option<&'static str>,
}

/// The files of a dataset and where its system copy lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetFiles {
    /// Name used for directories (`fashion-mnist`).
    pub dir_name: &'static str,
    /// Name shown to people (`Fashion-MNIST`).
    pub display_name: &'static str,
    /// Class names, by label.
    pub classes: &'static [&'static str],
    /// The four IDX files.
    pub files: [KnownFile; 4],
    /// Directory of the Debian/Ubuntu package's copy and the package name, if one exists.
    pub system: Option<(&'static str, &'static str)>,
}

/// Fashion-MNIST's class names, by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// MNIST's class names: the digits.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST's files, with the SHA-256 of each decompressed file.
pub const FASHION_MNIST_FILES: DatasetFiles = DatasetFiles {
    dir_name: "fashion-mnist",
    display_name: "Fashion-MNIST",
    classes: &FASHION_MNIST_CLASSES,
    files: [
        KnownFile {
            name: "train-images-idx3-ubyte",
            sha256: Some("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        },
    ],
    system: Some(("/usr/share/datasets/fashion-mnist", "dataset-fashion-mnist")),
};

/// MNIST's files. No reference digests are recorded yet, so MNIST files are checked for
/// structure (the IDX reader) but not for content.
pub const MNIST_FILES: DatasetFiles = DatasetFiles {
    dir_name: "mnist",
    display_name: "MNIST",
    classes: &MNIST_CLASSES,
    files: [
        KnownFile {
            name: "train-images-idx3-ubyte",
            sha256: None,
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: None,
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: None,
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: None,
        },
    ],
    system: None,
};

impl DatasetFiles {
    /// The reference digest of the file with base name `name`, if recorded.
    pub fn sha256_of(&self, name: &str) -> Option<&'static str> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.sha256)
    }
}

/// A place searched for a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A directory the caller passed (`--data-dir`).
    Explicit,
    /// The `NIN_DATA_DIR` environment variable.
    EnvVar,
    /// The user cache directory.
    UserCache,
    /// The Debian/Ubuntu package's copy.
    System,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Place::Explicit => "the directory passed in",
            Place::EnvVar => DATA_DIR_VAR,
            Place::UserCache => "the user cache",
            Place::System => "the system copy",
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
    /// The directory holding the four files.
    pub dir: PathBuf,
    /// Where it came from.
    pub place: Place,
}

/// The user cache directory for a dataset: `$XDG_CACHE_HOME/nin/<name>`, else
/// `$HOME/.cache/nin/<name>`.
pub fn user_cache_dir(files: &DatasetFiles) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("nin").join(files.dir_name))
}

/// The first file of the dataset missing from `dir`, or `None` when all four are there (plain
/// or `.gz`).
pub fn missing_file(dir: &Path, files: &DatasetFiles) -> Option<&'static str> {
    files
        .files
        .iter()
        .find(|f| find_file(dir, f.name).is_none())
        .map(|f| f.name)
}

/// `dir/name`, else `dir/name.gz`, if either is a file.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// Finds the dataset, searching the places in order. `explicit` is the caller's directory.
pub fn locate(files: &DatasetFiles, explicit: Option<&Path>) -> Result<Located, NotFound> {
    let env_dir = std::env::var_os(DATA_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    locate_in(
        files,
        explicit,
        env_dir.as_deref(),
        user_cache_dir(files).as_deref(),
    )
}

/// [`locate`] with the environment passed in, so it can be tested without touching it.
pub fn locate_in(
    files: &DatasetFiles,
    explicit: Option<&Path>,
    env_dir: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<Located, NotFound> {
    let mut tried = Vec::new();
    let reason = |dir: &Path| {
        if !dir.is_dir() {
            return Some("no such directory".to_string());
        }
        missing_file(dir, files).map(|name| format!("{name}[.gz] is missing"))
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
                files,
                vec![Tried {
                    place,
                    dir: Some(dir.to_path_buf()),
                    reason,
                }],
            )),
        };
    }
    let system = files.system.map(|(dir, _)| Path::new(dir));
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
    Err(not_found(files, tried))
}

fn not_found(files: &DatasetFiles, tried: Vec<Tried>) -> NotFound {
    let mut fixes = Vec::new();
    if let Some((_, package)) = files.system {
        fixes.push(format!(
            "install the Debian/Ubuntu package (`sudo apt-get install {package}`)"
        ));
    }
    fixes.push(format!(
        "put the four IDX files ({}) in a directory and pass it with --data-dir or {DATA_DIR_VAR}",
        files
            .files
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    NotFound {
        dataset: files.display_name,
        tried,
        fixes,
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
