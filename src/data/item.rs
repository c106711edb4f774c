//! The types every data set shares: one image with its label, and which half of a data set.

use burn::data::dataset::DatasetError;

use super::catalogue::{DatasetFiles, KnownFile};
use super::error::DataError;

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split (60,000 images of Fashion-MNIST and MNIST, 50,000 of CIFAR).
    Train,
    /// The test split (10,000 images of each).
    Test,
}

impl Split {
    /// Position of the split's image file in an IDX data set's [`DatasetFiles::files`]; its
    /// label file follows.
    fn first_file(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Test => 2,
        }
    }

    /// The split's image and label files among an IDX data set's `files`.
    pub(crate) fn files(self, files: &DatasetFiles) -> [&KnownFile; 2] {
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

/// `item`, or the error of reading `index` past the end of a dataset of `len` items.
pub(crate) fn item_or_out_of_range(
    item: Option<ImageItem>,
    index: usize,
    len: usize,
) -> Result<ImageItem, DatasetError> {
    item.ok_or_else(|| DatasetError::new(DataError::OutOfRange { index, len }))
}
