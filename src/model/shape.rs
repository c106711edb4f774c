//! The network's stages and the shape arithmetic over them: which stage runs where, what
//! shape each gives, the smallest input that fits and the FLOPs of a forward pass.

use core::fmt;

use super::block::{input_side_for, window_output_side};
use super::error::ShapeError;
use super::nin::Nin;

/// Where in the network an input stopped fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The NiN block with this index (0-based).
    Block(usize),
    /// The max pool that follows the block with this index.
    MaxPool(usize),
    /// The dropout layer before the last block.
    Dropout,
    /// The global average pool that turns the last block's maps into logits.
    GlobalAvgPool,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Block(i) => write!(f, "block {i}"),
            Stage::MaxPool(i) => write!(f, "max pool after block {i}"),
            Stage::Dropout => f.write_str("dropout"),
            Stage::GlobalAvgPool => f.write_str("global average pool"),
        }
    }
}

impl Nin {
    /// The stages in the order they run: the blocks, a max pool after every block but the
    /// last, dropout before the last block, then the global average pool. `forward`, the shape
    /// checks and the PyTorch layout all follow this one list.
    ///
    /// ```
    /// use nin::{NinConfig, Stage};
    ///
    /// let model = NinConfig::compact(10).init(&nin::backend::device("auto").unwrap());
    /// let stages = model.stages();
    /// assert_eq!(stages[..3], [Stage::Block(0), Stage::MaxPool(0), Stage::Block(1)]);
    /// assert_eq!(stages[stages.len() - 3..], [Stage::Dropout, Stage::Block(3), Stage::GlobalAvgPool]);
    /// ```
    pub fn stages(&self) -> Vec<Stage> {
        let last = self.blocks.len() - 1;
        let mut stages = Vec::with_capacity(2 * self.blocks.len() + 1);
        for index in 0..self.blocks.len() {
            if index == last {
                stages.push(Stage::Dropout);
            }
            stages.push(Stage::Block(index));
            if index != last {
                stages.push(Stage::MaxPool(index));
            }
        }
        stages.push(Stage::GlobalAvgPool);
        stages
    }

    /// Checks an input shape `[N, C, H, W]` without running anything and returns the logits'
    /// shape `[N, num_classes]`.
    ///
    /// ```
    /// use nin::{NinConfig, ShapeError};
    ///
    /// let model = NinConfig::d2l(10).init(&nin::backend::device("auto").unwrap());
    /// assert_eq!(model.check_input([8, 1, 224, 224]), Ok([8, 10]));
    /// // Fashion-MNIST at its native 28×28 must be resized for the d2l network.
    /// let err = model.check_input([8, 1, 28, 28]).unwrap_err();
    /// assert!(matches!(err, ShapeError::TooSmall { .. }));
    /// assert!(err.to_string().contains("resize"));
    /// ```
    pub fn check_input(&self, shape: [usize; 4]) -> Result<[usize; 2], ShapeError> {
        self.stage_shapes(shape)
            .map(|stages| [shape[0], stages.last().map_or(0, |(_, s)| s[1])])
    }

    /// The output shape of every stage for an input of `shape`, computed without running the
    /// network.
    pub fn stage_shapes(&self, shape: [usize; 4]) -> Result<Vec<(Stage, [usize; 4])>, ShapeError> {
        let [batch, channels, _, _] = shape;
        if batch == 0 {
            return Err(ShapeError::EmptyBatch { shape });
        }
        let expected = self.in_channels();
        if channels != expected {
            return Err(ShapeError::Channels { shape, expected });
        }
        let too_small = |stage, reached: [usize; 2], needs: [usize; 2]| {
            let min = self.min_input_side();
            ShapeError::TooSmall {
                shape,
                stage,
                reached,
                needs,
                min_size: [min, min],
                designed_for: self.input_size,
            }
        };

        let mut stages = Vec::with_capacity(2 * self.blocks.len() + 1);
        let mut current = shape;
        for stage in self.stages() {
            let [n, c, h, w] = current;
            current = match stage {
                Stage::Block(index) => {
                    let block = &self.blocks[index];
                    match [h, w].map(|s| block.output_side(s)) {
                        [Some(h), Some(w)] => [n, block.layer_channels()[2], h, w],
                        _ => {
                            let need = block.min_input_side();
                            return Err(too_small(stage, [h, w], [need, need]));
                        }
                    }
                }
                Stage::MaxPool(_) => match [h, w].map(|s| self.pool_output_side(s)) {
                    [Some(h), Some(w)] => [n, c, h, w],
                    _ => {
                        let need = self.pool_size();
                        return Err(too_small(stage, [h, w], [need, need]));
                    }
                },
                Stage::Dropout => current,
                Stage::GlobalAvgPool => [n, c, 1, 1],
            };
            stages.push((stage, current));
        }
        Ok(stages)
    }

    /// Floating-point operations of one forward pass over a single `[C, H, W]` image: two per
    /// multiply-add of every convolution. Pools, ReLUs, biases and batch norms are left out;
    /// they add under 1 % for the presets. A training step costs about three times this per
    /// image: the forward pass, then the gradients of each convolution's input and weight.
    ///
    /// ```
    /// use nin::NinConfig;
    ///
    /// let model = NinConfig::d2l(10).init(&nin::backend::device("auto").unwrap());
    /// let gflops = model.forward_flops([1, 224, 224]).unwrap() as f64 / 1e9;
    /// assert!((1.5..1.7).contains(&gflops), "{gflops}");
    /// ```
    pub fn forward_flops(&self, image: [usize; 3]) -> Result<u64, ShapeError> {
        let [channels, height, width] = image;
        let stages = self.stage_shapes([1, channels, height, width])?;
        let flops = stages
            .iter()
            .filter_map(|(stage, [_, _, h, w])| match stage {
                Stage::Block(index) => Some((&self.blocks[*index], h * w)),
                _ => None,
            })
            .map(|(block, pixels)| {
                let multiply_adds_per_pixel: usize = block
                    .layers()
                    .iter()
                    .map(|(_, layer)| layer.conv.weight.lazy_shape().num_elements())
                    .sum();
                2 * (pixels * multiply_adds_per_pixel) as u64
            })
            .sum();
        Ok(flops)
    }

    /// The smallest height and width this network accepts.
    pub fn min_input_side(&self) -> usize {
        // Walk back from a 1×1 output through every window.
        self.stages()
            .into_iter()
            .rev()
            .fold(1, |side, stage| match stage {
                Stage::Block(index) => {
                    let block = &self.blocks[index];
                    input_side_for(side, block.kernel_size(), block.stride(), block.padding())
                }
                Stage::MaxPool(_) => input_side_for(side, self.pool_size(), self.pool_stride(), 0),
                Stage::Dropout | Stage::GlobalAvgPool => side,
            })
    }

    /// Window of the max pool between blocks.
    pub fn pool_size(&self) -> usize {
        self.pool.kernel_size[0]
    }

    /// Stride of the max pool between blocks.
    pub fn pool_stride(&self) -> usize {
        self.pool.stride[0]
    }

    /// Channels the network takes.
    pub fn in_channels(&self) -> usize {
        self.blocks[0].in_channels()
    }

    /// Number of classes: channels of the last block.
    pub fn num_classes(&self) -> usize {
        self.blocks[self.blocks.len() - 1].layer_channels()[2]
    }

    fn pool_output_side(&self, input: usize) -> Option<usize> {
        window_output_side(input, self.pool_size(), self.pool_stride(), 0)
    }
}
