//! Where a dataset's files come from, and how they are checked.
//!
//! Design notes: `docs/design.md`, "data::source".

use std::fmt;
use std::path::{Path, PathBuf};

use md5::Md5;
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
    /// MD5 of the `.gz` file, where the dataset's own page publishes one: checked alongside
    /// [`gz_sha256`](Self::gz_sha256), which comes from another record of the same file.
    pub gz_md5: Option<&'static str>,
}

impl KnownFile {
    /// Whether a downloaded copy of this file can be verified.
    pub fn has_digest(&self) -> bool {
        self.sha256.is_some() || self.gz_sha256.is_some()
    }

    /// The file's name as the mirrors publish it: `<name>.gz`.
    pub fn published_name(&self) -> String {
        format!("{}.gz", self.name)
    }
}

/// What the search for a dataset, and its download, need to know of it.
///
/// Implemented by [`DatasetFiles`] (the IDX datasets) and
/// [`CifarFormat`](super::cifar::CifarFormat).
pub trait DatasetSource {
    /// Name used for directories (`fashion-mnist`, `cifar-10`).
    fn dir_name(&self) -> &'static str;
    /// Name shown to people (`Fashion-MNIST`).
    fn display_name(&self) -> &'static str;
    /// Directory of the Debian/Ubuntu package's copy and the package name, if one exists.
    fn system(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    /// Why `dir` does not hold the dataset, or `None` when it does.
    fn lacks(&self, dir: &Path) -> Option<String>;
    /// What a person puts in a directory to provide the dataset by hand, for error messages.
    fn by_hand(&self) -> String;
    /// The published files a download must fetch into `dir` for it to hold the dataset.
    fn to_download(&self, dir: &Path) -> Vec<KnownFile>;
    /// Base URLs (ending in `/`) that serve each file under its
    /// [published name](KnownFile::published_name), tried in order.
    fn mirrors(&self) -> &'static [&'static str];
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

/// Fashion-MNIST's pixel mean and standard deviation over the training set, after scaling to
/// `[0, 1]`.
pub const FASHION_MNIST_MEAN_STD: (f32, f32) = (0.2860, 0.3530);

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
            gz_md5: None,
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            gz_sha256: None,
            gz_md5: None,
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            gz_sha256: None,
            gz_md5: None,
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
            gz_sha256: None,
            gz_md5: None,
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
            gz_md5: None,
        },
        KnownFile {
            name: "train-labels-idx1-ubyte",
            sha256: None,
            gz_sha256: Some("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            gz_md5: None,
        },
        KnownFile {
            name: "t10k-images-idx3-ubyte",
            sha256: None,
            gz_sha256: Some("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            gz_md5: None,
        },
        KnownFile {
            name: "t10k-labels-idx1-ubyte",
            sha256: None,
            gz_sha256: Some("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            gz_md5: None,
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

impl DatasetSource for DatasetFiles {
    fn dir_name(&self) -> &'static str {
        self.dir_name
    }

    fn display_name(&self) -> &'static str {
        self.display_name
    }

    fn system(&self) -> Option<(&'static str, &'static str)> {
        self.system
    }

    fn lacks(&self, dir: &Path) -> Option<String> {
        missing_file(dir, self).map(|name| format!("{name}[.gz] is missing"))
    }

    fn by_hand(&self) -> String {
        let names: Vec<&str> = self.files.iter().map(|f| f.name).collect();
        format!("the four IDX files ({})", names.join(", "))
    }

    fn to_download(&self, dir: &Path) -> Vec<KnownFile> {
        self.files
            .iter()
            .filter(|f| find_file(dir, f.name).is_none())
            .copied()
            .collect()
    }

    fn mirrors(&self) -> &'static [&'static str] {
        self.mirrors
    }
}

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
    /// The directory holding the four files.
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

/// Finds the dataset as [`locate`] does and, with the `download` feature, downloads it into the
/// user cache when no directory was named and no copy was found (see
/// [`download::locate_or_download`](super::download::locate_or_download)).
pub fn find(
    source: &(impl DatasetSource + ?Sized),
    explicit: Option<&Path>,
) -> Result<Located, NotFound> {
    #[cfg(feature = "download")]
    return super::download::locate_or_download(
        source,
        explicit,
        &super::download::Downloader::new(),
    );
    #[cfg(not(feature = "download"))]
    locate(source, explicit)
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
    if known.sha256.is_none() && idx::is_gzip(&raw) {
        check_published(&ArchiveDigests::of(&raw), known, file)?;
    }
    let content = idx::decompress(raw).map_err(|fault| IdxError::Malformed {
        file: file.to_string(),
        fault,
    })?;
    if let Some(expected) = known.sha256 {
        check_digest(
            &sha256_hex(&content),
            expected,
            "SHA-256",
            Digested::Content,
            file,
        )?;
    }
    Ok(content)
}

/// Checks a file as a mirror served it, before anything is stored: against the digest of its
/// decompressed content where one is recorded, else as the published gzip file byte for byte.
/// A file with neither digest cannot be verified, so it is refused.
pub fn verify_published(raw: &[u8], known: &KnownFile, file: &str) -> Result<(), DataError> {
    if known.sha256.is_some() {
        return verify(raw.to_vec(), known, file).map(drop);
    }
    if !idx::is_gzip(raw) || !known.has_digest() {
        return Err(DataError::Malformed {
            file: file.to_string(),
            offset: 0,
            problem: format!(
                "not the gzip file {} as published, which is the only form that can be verified",
                known.published_name()
            ),
        });
    }
    check_published(&ArchiveDigests::of(raw), known, file)
}

/// The digests of a published file, taken in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDigests {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Lower-case hex MD5.
    pub md5: String,
}

impl ArchiveDigests {
    /// The digests of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = ArchiveHasher::default();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// [`ArchiveDigests`] of bytes fed in pieces, such as a file streamed once for reading.
#[derive(Debug, Clone, Default)]
pub struct ArchiveHasher {
    sha256: Sha256,
    md5: Md5,
}

impl ArchiveHasher {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.md5.update(bytes);
    }

    /// The digests of everything fed.
    pub fn finish(self) -> ArchiveDigests {
        ArchiveDigests {
            sha256: hex(&self.sha256.finalize()),
            md5: hex(&self.md5.finalize()),
        }
    }
}

/// Checks a published file's digests against every reference `known` records for it.
pub fn check_published(
    actual: &ArchiveDigests,
    known: &KnownFile,
    file: &str,
) -> Result<(), DataError> {
    if let Some(expected) = known.gz_sha256 {
        check_digest(&actual.sha256, expected, "SHA-256", Digested::Archive, file)?;
    }
    if let Some(expected) = known.gz_md5 {
        check_digest(&actual.md5, expected, "MD5", Digested::Archive, file)?;
    }
    Ok(())
}

fn check_digest(
    actual: &str,
    expected: &'static str,
    algorithm: &'static str,
    digested: Digested,
    file: &str,
) -> Result<(), DataError> {
    if actual == expected {
        return Ok(());
    }
    Err(DataError::Checksum {
        file: file.to_string(),
        algorithm,
        digested,
        expected,
        actual: actual.to_string(),
    })
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
