//! Fashion-MNIST and MNIST: four IDX files each, read into compact `u8` storage and served
//! through Burn's [`Dataset`] trait.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};

use super::catalogue::{DatasetFiles, FASHION_MNIST_FILES, MNIST_FILES, find_file};
use super::error::DataError;
use super::idx::{self, IdxError, IdxImages};
use super::item::{ImageItem, Split, item_or_out_of_range};
use super::locate::Located;
use super::source;
use super::verify::read_verified;

/// A split of an IDX image-classification dataset held in memory as bytes (the Fashion-MNIST
/// training split is 47 MB this way).
#[derive(Debug, Clone)]
pub struct IdxDataset {
    images: Arc<IdxImages>,
    labels: Arc<Vec<u8>>,
    classes: &'static [&'static str],
}

impl IdxDataset {
    /// Builds a dataset from an image and a label file (plain or `.gz`), checking the labels
    /// are below `classes.len()` and the counts agree.
    pub fn from_files(
        images_path: &Path,
        labels_path: &Path,
        classes: &'static [&'static str],
    ) -> Result<Self, DataError> {
        let images = idx::read_images(images_path)?;
        let labels = idx::read_labels(labels_path, classes.len())?;
        Self::from_parts(images, images_path, labels, labels_path, classes)
    }

    fn from_parts(
        images: IdxImages,
        images_path: &Path,
        labels: Vec<u8>,
        labels_path: &Path,
        classes: &'static [&'static str],
    ) -> Result<Self, DataError> {
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images_file: images_path.display().to_string(),
                images: images.count,
                labels_file: labels_path.display().to_string(),
                labels: labels.len(),
            });
        }
        Ok(Self {
            images: Arc::new(images),
            labels: Arc::new(labels),
            classes,
        })
    }

    /// Loads `split` of a known dataset from `dir` (standard file names, plain or `.gz`),
    /// checking each file against its recorded SHA-256 where one exists. Each data set's own
    /// `from_dir` is the way in; this one takes the hidden file catalogue.
    #[doc(hidden)]
    pub fn from_dir(dir: &Path, split: Split, files: &DatasetFiles) -> Result<Self, DataError> {
        let [images_file, labels_file] = split.files(files);
        let find = |name: &str| {
            find_file(dir, name).ok_or_else(|| DataError::MissingFile {
                dir: dir.display().to_string(),
                name: name.to_string(),
            })
        };
        let (images_path, labels_path) = (find(images_file.name)?, find(labels_file.name)?);
        let images = read_verified(&images_path, images_file)?;
        let labels = read_verified(&labels_path, labels_file)?;
        let images =
            idx::parse_images(images).map_err(|fault| IdxError::malformed(&images_path, fault))?;
        let labels = idx::parse_labels(labels, files.classes.len())
            .map_err(|fault| IdxError::malformed(&labels_path, fault))?;
        Self::from_parts(images, &images_path, labels, &labels_path, files.classes)
    }

    /// Finds a known dataset (`dir` if given, else `NIN_DATA_DIR`, the user cache, the system
    /// copy, then, with the `download` feature, a download into the user cache) and loads
    /// `split` from it. Returns where it was found too.
    pub(crate) fn load(
        files: &DatasetFiles,
        split: Split,
        dir: Option<&Path>,
    ) -> Result<(Self, Located), DataError> {
        let located = source::find(files, dir)?;
        Ok((Self::from_dir(&located.dir, split, files)?, located))
    }

    /// The class names, by label.
    pub fn classes(&self) -> &'static [&'static str] {
        self.classes
    }

    /// Height and width of every image.
    pub fn image_size(&self) -> [usize; 2] {
        [self.images.rows, self.images.cols]
    }

    /// All labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The item at `index`, or `None` past the end.
    pub fn item(&self, index: usize) -> Option<ImageItem> {
        Some(ImageItem::grayscale(
            self.images.image(index)?.to_vec(),
            self.images.rows,
            self.images.cols,
            usize::from(*self.labels.get(index)?),
        ))
    }
}

impl Dataset<ImageItem> for IdxDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        item_or_out_of_range(self.item(index), index, self.labels.len())
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Fashion-MNIST (Zalando): 28×28 grayscale images of clothing in 10 classes.
pub struct FashionMnist;

impl FashionMnist {
    /// Loads `split` from a directory with the four standard file names (plain or `.gz`),
    /// verifying each against the published SHA-256.
    pub fn from_dir(dir: &Path, split: Split) -> Result<IdxDataset, DataError> {
        IdxDataset::from_dir(dir, split, &FASHION_MNIST_FILES)
    }

    /// Finds the dataset (`dir` if given, else `NIN_DATA_DIR`, the user cache, the system copy
    /// from Debian's `dataset-fashion-mnist`, then, with the `download` feature, a download into
    /// the user cache) and loads `split` from it. Returns where it was found too.
    pub fn load(split: Split, dir: Option<&Path>) -> Result<(IdxDataset, Located), DataError> {
        IdxDataset::load(&FASHION_MNIST_FILES, split, dir)
    }

    /// The training split (60,000 images), found as [`load`](Self::load) does.
    pub fn train() -> Result<IdxDataset, DataError> {
        Self::load(Split::Train, None).map(|(data, _)| data)
    }

    /// The test split (10,000 images), found as [`load`](Self::load) does.
    pub fn test() -> Result<IdxDataset, DataError> {
        Self::load(Split::Test, None).map(|(data, _)| data)
    }
}

/// MNIST: 28×28 grayscale handwritten digits.
pub struct Mnist;

impl Mnist {
    /// Loads `split` from a directory with the four standard file names (plain or `.gz`).
    pub fn from_dir(dir: &Path, split: Split) -> Result<IdxDataset, DataError> {
        IdxDataset::from_dir(dir, split, &MNIST_FILES)
    }

    /// Finds the dataset (`dir` if given, else `NIN_DATA_DIR`, the user cache, then, with the
    /// `download` feature, a download into the user cache; MNIST has no system copy) and loads
    /// `split` from it. Returns where it was found too.
    pub fn load(split: Split, dir: Option<&Path>) -> Result<(IdxDataset, Located), DataError> {
        IdxDataset::load(&MNIST_FILES, split, dir)
    }

    /// The training split (60,000 images), found as [`load`](Self::load) does.
    pub fn train() -> Result<IdxDataset, DataError> {
        Self::load(Split::Train, None).map(|(data, _)| data)
    }

    /// The test split (10,000 images), found as [`load`](Self::load) does.
    pub fn test() -> Result<IdxDataset, DataError> {
        Self::load(Split::Test, None).map(|(data, _)| data)
    }
}
