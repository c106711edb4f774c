//! The NiN modules: [`NinBlock`] and the [`Nin`] classifier with its presets.

mod block;
mod error;
mod init;
mod nin;

pub use block::{ConvLayer, NinBlock, NinBlockConfig};
pub use error::{ConfigError, ShapeError, Stage};
pub use init::D2L_WEIGHT_INIT;
pub use nin::{Nin, NinConfig};
