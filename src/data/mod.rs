//! Datasets for NiN (feature `dataset`): a hardened IDX reader, Fashion-MNIST and MNIST,
//! CIFAR-10 and CIFAR-100 from their binary archives, and folders of your own images.

mod batcher;
mod catalogue;
pub mod cifar;
#[cfg(feature = "download")]
pub mod download;
mod error;
pub mod folder;
pub mod idx;
mod locate;
mod mnist;
pub mod source;
mod verify;

pub use batcher::{Augment, ImageBatch, ImageBatcher, pixel_mean_std};
pub use cifar::{CIFAR10, CIFAR100, Cifar10, Cifar100, CifarDataset};
pub use error::{DataError, Digested};
pub use folder::{ImageError, ImageFolder, Unreadable};
pub use idx::{IdxError, IdxFault, IdxImages};
pub use mnist::{FashionMnist, IdxDataset, ImageItem, Mnist, Split};
pub use source::{
    FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN_STD, Located, MNIST_CLASSES, NotFound, Place,
};
