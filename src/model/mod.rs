//! The NiN modules: [`NinBlock`] and the [`Nin`] classifier with its presets.

mod block;
mod error;
#[cfg(any(feature = "pytorch", feature = "train"))]
mod finite;
mod init;
mod nin;
mod precision;
mod shape;

pub use block::{ConvNormRelu, NinBlock, NinBlockConfig};
pub use error::{ConfigError, ShapeError};
#[cfg(any(feature = "pytorch", feature = "train"))]
pub(crate) use finite::first_non_finite;
pub use nin::{Nin, NinConfig};
pub use precision::{Precision, PrecisionError};
pub use shape::Stage;
