#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod backend;
#[cfg(feature = "dataset")]
pub mod data;
pub mod model;
pub mod names;
pub mod ops;
#[cfg(feature = "pretrained")]
pub mod pretrained;
#[cfg(feature = "pytorch")]
pub mod pytorch;
#[cfg(feature = "train")]
pub mod train;

pub use backend::{BackendError, BackendName};
pub use model::{
    ConfigError, ConvNormRelu, Nin, NinBlock, NinBlockConfig, NinConfig, Precision, PrecisionError,
    ShapeError, Stage,
};
pub use names::UnknownName;
