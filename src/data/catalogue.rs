//! The datasets this crate knows: their files, reference digests, class names and mirrors, and
//! how a file is named on disk (plain or `.gz`).

use std::path::{Path, PathBuf};

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

    /// The dataset's files that `dir` holds in neither form, in order.
    fn absent<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a KnownFile> + 'a {
        self.files
            .iter()
            .filter(move |f| find_file(dir, f.name).is_none())
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
        self.absent(dir).copied().collect()
    }

    fn mirrors(&self) -> &'static [&'static str] {
        self.mirrors
    }
}

/// The first file of the dataset missing from `dir`, or `None` when all four are there (plain
/// or `.gz`).
pub fn missing_file(dir: &Path, files: &DatasetFiles) -> Option<&'static str> {
    files.absent(dir).next().map(|f| f.name)
}

/// `dir/name`, else `dir/name.gz`, if either is a file.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}
