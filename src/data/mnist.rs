//! Fashion-MNIST and MNIST: four IDX files each, read into compact `u8` storage and served
//! through Burn's [`Dataset`] trait.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};

use super::catalogue::{DatasetFiles, FASHION_MNIST_FILES, KnownFile, MNIST_FILES, find_file};
use super::error::DataError;
use super::idx::{self, IdxError, IdxImages};
use super::locate::Located;
use super::source;
use super::verify::read_verified;

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split (60,000 images for both datasets).
    Train,
    /// The test split (10,000 images).
    Test,
}

impl Split {
    /// Position of the split's image file in [`DatasetFiles::files`]; its label file follows.
    fn first_file(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Test => 2,
        }
    }

    /// The split's image and label files in `files`.
    pub fn files(self, files: &DatasetFiles) -> [&KnownFile; 2] {
        let first = self.first_file();
        [&files.files[first], &files.files[first + 1]]
    }
}

/// `training` or `test`, as errors name the split.
impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "training",
            Split::Test => "test",
        })
    }
}

/// One image with its label: `channels` planes of `height × width` bytes, channels first (the
/// layout the batcher hands the model). Fashion-MNIST and MNIST items have one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// Pixels `[channels, height, width]`, row-major within each plane.
    pub pixels: Vec<u8>,
    /// Planes of the image: 1 for grayscale, 3 for RGB.
    pub channels: usize,
    /// Rows of the image.
    pub height: usize,
    /// Columns of the image.
    pub width: usize,
    /// Class index.
    pub label: usize,
}

impl ImageItem {
    /// A one-channel image of `height × width` bytes.
    pub fn grayscale(pixels: Vec<u8>, height: usize, width: usize, label: usize) -> Self {
        Self {
            pixels,
            channels: 1,
            height,
            width,
            label,
        }
    }

    /// Planes of the image: 1 for grayscale, 3 for RGB.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
}

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
    /// checking each file against its recorded SHA-256 where one exists.
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
    pub fn load(
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

/// `item`, or the error of reading `index` past the end of a dataset of `len` items.
pub(crate) fn item_or_out_of_range(
    item: Option<ImageItem>,
    index: usize,
    len: usize,
) -> Result<ImageItem, DatasetError> {
    item.ok_or_else(|| DatasetError::new(DataError::OutOfRange { index, len }))
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

    /// Finds the dataset as [`IdxDataset::load`] does and loads `split` from it. Returns where
    /// it was found too.
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

    /// Finds the dataset as [`IdxDataset::load`] does (MNIST has no system copy) and loads
    /// `split` from it. Returns where it was found too.
    pub fn load(split: Split, dir: Option<&Path>) -> Result<(IdxDataset, Located), DataError> {
        IdxDataset::load(&MNIST_FILES, split, dir)
    }
}
