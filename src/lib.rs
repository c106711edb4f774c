#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Only the kernels in `ops` (matrix products, SIMD loops) may opt back in.
#![deny(unsafe_code)]

pub mod backend;
#[cfg(feature = "dataset")]
pub mod data;
pub mod model;
pub mod ops;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "pytorch")]
pub mod weights;

pub use backend::{BackendError, BackendName};
pub use model::{ConfigError, Nin, NinBlock, NinBlockConfig, NinConfig, ShapeError, Stage};
