//! Why a dataset could not be loaded.

use std::fmt;

use super::idx::IdxError;
use super::locate::NotFound;

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// One of the IDX files could not be read or is malformed.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// The image and label files describe different numbers of items.
    #[error(
        "{images_file} holds {images} images but {labels_file} holds {labels} labels; the two \
         files belong to different datasets or splits"
    )]
    CountMismatch {
        /// The image file.
        images_file: String,
        /// Images in it.
        images: usize,
        /// The label file.
        labels_file: String,
        /// Labels in it.
        labels: usize,
    },
    /// A dataset file whose content breaks its format (a CIFAR file that does not hold whole
    /// records, a label that names no class, an archive cut short).
    #[error("{file}: {problem} (at byte {offset})")]
    Malformed {
        /// The file, or the archive and its member.
        file: String,
        /// Where in it the problem is.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// A file or folder a dataset needs is not in the directory (or the archive).
    #[error("{dir}: {what} is not there; {fix}")]
    Missing {
        /// The directory or archive searched.
        dir: String,
        /// What is missing.
        what: String,
        /// What to do about it.
        fix: String,
    },
    /// A folder of your own images that cannot serve (no class sub-folders, no readable image,
    /// a test folder with a class the training folder lacks).
    #[error("{dir}: {problem}; {fix}")]
    Folder {
        /// The folder.
        dir: String,
        /// What is wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
    /// Neither the plain nor the `.gz` file is in the directory.
    #[error("{dir}: neither {name} nor {name}.gz is there")]
    MissingFile {
        /// The directory searched.
        dir: String,
        /// The base name wanted.
        name: String,
    },
    /// A file's content differs from the published dataset.
    #[error(
        "{file}: {algorithm} of {digested} is {actual}, expected {expected}; the file is \
         corrupt, cut short or belongs to another dataset: delete it and fetch it again"
    )]
    Checksum {
        /// The file.
        file: String,
        /// The digest compared: `SHA-256`, or `MD5` where the dataset's page publishes one.
        algorithm: &'static str,
        /// Which bytes were hashed.
        digested: Digested,
        /// The reference digest.
        expected: &'static str,
        /// The digest of what was read.
        actual: String,
    },
    /// No copy of the dataset was found.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// An index past the end of the dataset.
    #[error("item {index} is out of range for a dataset of {len} items")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// Items in the dataset.
        len: usize,
    },
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
