//! Errors for configurations and inputs the model cannot take.

use super::shape::Stage;

/// A network configuration that cannot be built, found by [`NinConfig::validate`].
///
/// [`NinConfig::validate`]: crate::NinConfig::validate
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The configuration has no blocks at all.
    #[error("a NiN network needs at least one block; add a NinBlockConfig to `blocks`")]
    NoBlocks,
    /// A size that must be positive is zero.
    #[error("block {block}: `{field}` is 0; it must be at least 1")]
    Zero {
        /// Index of the offending block.
        block: usize,
        /// Name of the configuration field.
        field: &'static str,
    },
    /// A block does not take the channels the block before it produces.
    #[error(
        "block {block} takes {in_channels} input channels but block {} produces {previous_out}; \
         set its `in_channels` to {previous_out}",
        block - 1
    )]
    ChannelMismatch {
        /// Index of the block whose input does not fit.
        block: usize,
        /// Its `in_channels`.
        in_channels: usize,
        /// Output channels of the block before it.
        previous_out: usize,
    },
    /// The dropout probability is outside `[0, 1)`.
    #[error("dropout probability {0} is outside [0, 1)")]
    Dropout(f64),
    /// The max pool between blocks has a zero kernel or stride.
    #[error("the max pool's `{0}` is 0; it must be at least 1")]
    Pool(&'static str),
}

/// An input tensor the network cannot take, found by [`Nin::check_input`].
///
/// [`Nin::check_input`]: crate::Nin::check_input
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The batch holds no images.
    #[error("input shape {shape:?} has an empty batch; pass at least one image as [N, C, H, W]")]
    EmptyBatch {
        /// The shape that was passed.
        shape: [usize; 4],
    },
    /// The channel dimension does not match the first block.
    #[error(
        "input shape {shape:?} has {} channels, expected [N, {expected}, H, W]{}",
        shape[1],
        if *expected == 1 && shape[1] == 3 { " (convert RGB images to grayscale)" } else { "" }
    )]
    Channels {
        /// The shape that was passed.
        shape: [usize; 4],
        /// Channels the first block takes.
        expected: usize,
    },
    /// The image is too small to survive the convolutions and pools.
    #[error(
        "input shape {shape:?} is too small: the {stage} receives a {}×{} map but needs at least \
         {}×{}; this network takes inputs of at least {}×{}{}",
        reached[0], reached[1], needs[0], needs[1], min_size[0], min_size[1],
        match designed_for {
            Some([h, w]) => format!(" (it was designed for {h}×{w}; resize the images)"),
            None => String::new(),
        }
    )]
    TooSmall {
        /// The shape that was passed.
        shape: [usize; 4],
        /// The stage the input could not pass.
        stage: Stage,
        /// Height and width arriving at that stage.
        reached: [usize; 2],
        /// The smallest height and width that stage accepts.
        needs: [usize; 2],
        /// The smallest height and width the network accepts.
        min_size: [usize; 2],
        /// The input size the configuration was designed for, if it names one.
        designed_for: Option<[usize; 2]>,
    },
}
