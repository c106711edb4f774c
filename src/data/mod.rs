//! Datasets for NiN (feature `dataset`): a hardened IDX reader, Fashion-MNIST and MNIST,
//! CIFAR-10 and CIFAR-100 from their binary archives, and folders of your own images.

mod batcher;
pub mod cifar;
#[cfg(feature = "download")]
pub mod download;
pub mod folder;
pub mod idx;
mod mnist;
pub mod source;

pub use batcher::{Augment, ImageBatch, ImageBatcher, pixel_mean_std};
pub use cifar::{CIFAR10, CIFAR100, Cifar10, Cifar100, CifarDataset};
pub use folder::{ImageError, ImageFolder, Unreadable};
pub use idx::{IdxError, IdxFault, IdxImages};
pub use mnist::{DataError, FashionMnist, IdxDataset, ImageItem, Mnist, Split};
pub use source::{
    FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN_STD, Located, MNIST_CLASSES, NotFound, Place,
};
