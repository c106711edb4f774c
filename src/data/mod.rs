//! Datasets for NiN (feature `dataset`): Fashion-MNIST and MNIST, CIFAR-10 and CIFAR-100, and
//! folders of your own images, each served through Burn's `Dataset` trait as [`ImageItem`]s.
//!
//! The built-in data sets (`FashionMnist`, `Mnist`, `Cifar10`, `Cifar100`) have the same shape:
//! `X::train()` and `X::test()` find it (`NIN_DATA_DIR`, the user cache, Debian's copy for
//! Fashion-MNIST, then, with the `download` feature, a download), `X::load(split, dir)` also
//! says where it was found, and `X::from_dir(dir, split)` reads a directory you name.
//! [`ImageFolder::open`] reads folders of your own images.

mod batcher;
mod catalogue;
// The modules below are the loaders' machinery. They stay public, and out of the documentation,
// for the crate's tests, fuzz targets and benches; their user-facing types are re-exported here.
#[doc(hidden)]
pub mod cifar;
#[cfg(feature = "download")]
#[doc(hidden)]
pub mod download;
mod error;
pub mod folder;
#[doc(hidden)]
pub mod idx;
mod item;
mod locate;
mod mnist;
#[doc(hidden)]
pub mod source;
mod verify;

#[cfg(feature = "train")]
pub(crate) use batcher::SplitMix64;
pub use batcher::{Augment, ImageBatch, ImageBatcher, pixel_mean_std};
pub use catalogue::FASHION_MNIST_CLASSES;
pub use cifar::{Cifar10, Cifar100, CifarDataset};
pub use error::{DataError, Digested};
pub use folder::{ImageError, ImageFolder, Unreadable};
pub use idx::{IdxError, IdxFault};
pub use item::{ImageItem, Split};
pub use locate::{Located, NotFound, Place, Tried};
pub use mnist::{FashionMnist, IdxDataset, Mnist};

// The format descriptions behind `Cifar10` and `Cifar100`, for the tests.
#[doc(hidden)]
pub use cifar::{CIFAR10, CIFAR100};

// Read by the shipped weights' preprocessing and the training presets.
#[cfg(any(feature = "pretrained", feature = "train"))]
pub(crate) use catalogue::FASHION_MNIST_MEAN_STD;
