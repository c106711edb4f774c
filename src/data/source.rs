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

use super::idx::{self, IdxError};
use super::mnist::DataError;

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
    /// SHA-256 of the `.gz` file as the mirrors publish it, for datasets whose decompressed
    /// digest is not recorded. Only a gzip file can be checked against it.
    pub gz_sha256: Option<&'static str>,
}

impl KnownFile {
    /// Whether a downloaded copy of this file can be verified.
    pub fn has_digest(&self) -> bool {
        self.sha256.is_some() || self.gz_sha256.is_some()
    }
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
    /// The four IDX files, in the order training images, training labels, test images, test
    /// labels.
    pub files: [KnownFile; 4],
    /// Directory of the Debian/Ubuntu package's copy and the package name, if one exists.
    pub system: Option<(&'static str, &'static str)>,
    /// Base URLs (ending in `/`) that serve `<name>.gz` for each file, tried in order.
    pub mirrors: &'static [&'static str],
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
            gz_sha256: None,
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            gz_sha256: None,
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            gz_sha256: None,
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
            gz_sha256: None,
        },
    ],
    system: Some(("/usr/share/datasets/fashion-mnist", "dataset-fashion-mnist")),
    // Zalando's own bucket (plain HTTP is fine: every file is checked by SHA-256), then the
    // copy in its GitHub repository.
    mirrors: &[
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
};

/// MNIST's files. The digests are those of the `.gz` archives as Yann LeCun published them and
/// as every mirror serves them byte for byte; no digest of the decompressed files is recorded,
/// so a decompressed copy is checked for structure only.
pub const MNIST_FILES: DatasetFiles = DatasetFiles {
    dir_name: "mnist",
    display_name: "MNIST",
    classes: &MNIST_CLASSES,
    files: [
        KnownFile {
            name: "train-images-idx3-ubyte",
            sha256: None,
            gz_sha256: Some("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: None,
            gz_sha256: Some("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: None,
            gz_sha256: Some("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: None,
            gz_sha256: Some("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        },
    ],
    system: None,
    // The mirrors PyTorch and TensorFlow use; the original site often refuses scripted requests.
    mirrors: &[
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
};

impl DatasetFiles {
    /// The file with base name `name`, if it is one of the dataset's.
    pub fn file(&self, name: &str) -> Option<&KnownFile> {
        self.files.iter().find(|f| f.name == name)
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
    let env_dir = env_data_dir();
    locate_in(
        files,
        explicit,
        env_dir.as_deref(),
        user_cache_dir(files).as_deref(),
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

/// Which bytes a reference digest covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digested {
    /// The decompressed content.
    Content,
    /// The `.gz` file as published.
    Archive,
}

impl fmt::Display for Digested {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Digested::Content => "the decompressed content",
            Digested::Archive => "the gzip file",
        })
    }
}

/// Reads a dataset file (plain or gzip), checks it against `known`'s reference digest and
/// returns the decompressed content.
///
/// The decompressed digest is the authority where one is recorded. Otherwise a gzip file must
/// be byte for byte the published archive, and a plain file is left to the IDX reader's
/// structural checks, as nothing else is known about it.
pub fn read_verified(path: &Path, known: &KnownFile) -> Result<Vec<u8>, DataError> {
    let raw = idx::read_raw(path)?;
    verify(raw, known, &path.display().to_string())
}

/// [`read_verified`] for bytes already read; `file` names them in errors.
pub fn verify(raw: Vec<u8>, known: &KnownFile, file: &str) -> Result<Vec<u8>, DataError> {
    let check = |bytes: &[u8], expected: &'static str, digested: Digested| {
        let actual = sha256_hex(bytes);
        if actual == expected {
            return Ok(());
        }
        Err(DataError::Checksum {
            file: file.to_string(),
            digested,
            expected,
            actual,
        })
    };
    if let (None, Some(expected), true) = (known.sha256, known.gz_sha256, idx::is_gzip(&raw)) {
        check(&raw, expected, Digested::Archive)?;
    }
    let content = idx::decompress(raw).map_err(|fault| IdxError::Malformed {
        file: file.to_string(),
        fault,
    })?;
    if let Some(expected) = known.sha256 {
        check(&content, expected, Digested::Content)?;
    }
    Ok(content)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
