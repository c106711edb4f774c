//! The NiN classifier: NiN blocks, max pools, dropout and global average pooling.

use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{DType, Device, Tensor};

use super::block::{NinBlock, NinBlockConfig};
use super::error::{ConfigError, ShapeError};
use super::precision::Precision;
use super::shape::Stage;
use crate::ops;

/// Configuration of a [`Nin`] classifier.
///
/// The network is `block₀, pool, block₁, pool, …, dropout, block_last, global average pool`: a
/// `pool_size`×`pool_size` max pool with stride `pool_stride` after every block but the last,
/// dropout before the last block, and no fully connected layer. The last block's output
/// channels are the classes. Start from a preset ([`d2l`](Self::d2l),
/// [`compact`](Self::compact), [`cifar10`](Self::cifar10)) or list the blocks yourself.
///
/// ```
/// use burn::tensor::Tensor;
/// use nin::{NinBlockConfig, NinConfig};
///
/// let device = nin::backend::device("auto").unwrap();
/// let config = NinConfig::new(vec![
///     NinBlockConfig::new(3, 32, 3).with_padding(1),
///     NinBlockConfig::new(32, 5, 3).with_padding(1),
/// ])
/// .with_dropout(0.2);
/// let model = config.init(&device);
/// let logits = model.forward(Tensor::<4>::zeros([4, 3, 16, 16], &device));
/// assert_eq!(logits.dims(), [4, 5]);
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct NinConfig {
    /// The blocks, first to last; the last one's output channels are the number of classes.
    pub blocks: Vec<NinBlockConfig>,
    /// Dropout probability before the last block.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Window of the max pool between blocks.
    #[config(default = 3)]
    pub pool_size: usize,
    /// Stride of the max pool between blocks.
    #[config(default = 2)]
    pub pool_stride: usize,
    /// Height and width the network was designed for. Informational: data pipelines resize to
    /// it, and shape errors mention it; any input large enough is accepted.
    #[config(default = "None")]
    pub input_size: Option<[usize; 2]>,
}

impl NinConfig {
    /// d2l's NiN (Dive into Deep Learning, ch. 7.3) for 1×224×224 images: blocks of 96
    /// (11×11, stride 4), 256 (5×5, padding 2), 384 (3×3, padding 1) and `num_classes` (3×3,
    /// padding 1) channels. With 10 classes it has exactly 1,992,166 parameters, as the PyTorch
    /// reference does.
    pub fn d2l(num_classes: usize) -> Self {
        Self::new(vec![
            NinBlockConfig::new(1, 96, 11).with_stride(4),
            NinBlockConfig::new(96, 256, 5).with_padding(2),
            NinBlockConfig::new(256, 384, 3).with_padding(1),
            NinBlockConfig::new(384, num_classes, 3).with_padding(1),
        ])
        .with_input_size(Some([224, 224]))
    }

    /// A small NiN for native 1×28×28 images (Fashion-MNIST, MNIST) that trains on a laptop CPU:
    /// blocks of 32 (5×5), 64 and 128 (3×3) channels, then the class block, about 0.15 M
    /// parameters and 21 MFLOPs per image.
    pub fn compact(num_classes: usize) -> Self {
        Self::new(vec![
            NinBlockConfig::new(1, 32, 5).with_padding(2),
            NinBlockConfig::new(32, 64, 3).with_padding(1),
            NinBlockConfig::new(64, 128, 3).with_padding(1),
            NinBlockConfig::new(128, num_classes, 3).with_padding(1),
        ])
        .with_input_size(Some([28, 28]))
    }

    /// The paper's CIFAR-10 network (Lin, Chen & Yan, 2014) for 3×32×32 images: mlpconv layers
    /// 192-160-96 (5×5), 192-192-192 (5×5) and 192-192-10 (3×3), about 0.97 M parameters.
    pub fn cifar10() -> Self {
        Self::cifar(10)
    }

    /// The paper's CIFAR network with `num_classes` maps in its last layer (100 for
    /// CIFAR-100, as the paper trains it).
    ///
    /// ```
    /// let config = nin::NinConfig::cifar(100);
    /// assert_eq!(config.num_classes(), 100);
    /// assert_eq!(config, nin::NinConfig::cifar10().with_num_classes(100));
    /// ```
    pub fn cifar(num_classes: usize) -> Self {
        Self::new(vec![
            NinBlockConfig::new(3, 192, 5)
                .with_padding(2)
                .with_mlp_channels(Some([160, 96])),
            NinBlockConfig::new(96, 192, 5).with_padding(2),
            NinBlockConfig::new(192, 192, 3)
                .with_padding(1)
                .with_mlp_channels(Some([192, num_classes])),
        ])
        .with_input_size(Some([32, 32]))
    }

    /// The same network for `num_classes` classes: the last block's last layer gets that
    /// many maps (for blocks without their own 1×1 widths, the whole last block, as d2l's
    /// `nin_block(384, num_classes, ...)` has).
    ///
    /// ```
    /// assert_eq!(nin::NinConfig::compact(10).with_num_classes(4), nin::NinConfig::compact(4));
    /// ```
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        if let Some(last) = self.blocks.last_mut() {
            match &mut last.mlp_channels {
                Some([_, out]) => *out = num_classes,
                None => last.out_channels = num_classes,
            }
        }
        self
    }

    /// Number of classes: the output channels of the last block (0 without blocks).
    pub fn num_classes(&self) -> usize {
        self.blocks
            .last()
            .map_or(0, |block| block.layer_channels()[2])
    }

    /// Checks the configuration can be built: at least one block, positive sizes, each block's
    /// `in_channels` equal to the previous block's output, dropout in `[0, 1)`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.blocks.is_empty() {
            return Err(ConfigError::NoBlocks);
        }
        for (index, block) in self.blocks.iter().enumerate() {
            block.validate_as(index)?;
        }
        for (index, pair) in self.blocks.windows(2).enumerate() {
            let [_, _, previous_out] = pair[0].layer_channels();
            if pair[1].in_channels != previous_out {
                return Err(ConfigError::ChannelMismatch {
                    block: index + 1,
                    in_channels: pair[1].in_channels,
                    previous_out,
                });
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ConfigError::Dropout(self.dropout));
        }
        if self.pool_size == 0 {
            return Err(ConfigError::Pool("pool_size"));
        }
        if self.pool_stride == 0 {
            return Err(ConfigError::Pool("pool_stride"));
        }
        Ok(())
    }

    /// The same network with batch normalisation after every convolution (`on`) or none.
    /// Not part of d2l's NiN; it lets a small NiN train in a few epochs.
    pub fn with_batch_norm(mut self, on: bool) -> Self {
        for block in &mut self.blocks {
            block.batch_norm = on;
        }
        self
    }

    /// The same network for images of `channels` planes (3 for RGB): the first block's
    /// `in_channels`.
    ///
    /// ```
    /// let rgb = nin::NinConfig::compact(10).with_in_channels(3);
    /// assert_eq!(rgb.blocks[0].in_channels, 3);
    /// ```
    pub fn with_in_channels(mut self, channels: usize) -> Self {
        if let Some(first) = self.blocks.first_mut() {
            first.in_channels = channels;
        }
        self
    }

    /// Builds the network on `device`, with weights drawn as d2l's `init_cnn` does unless the
    /// blocks name another initializer.
    ///
    /// # Panics
    ///
    /// If [`validate`](Self::validate) fails; call it first to get the error as a value.
    pub fn init(&self, device: &Device) -> Nin {
        if let Err(err) = self.validate() {
            panic!("invalid NinConfig: {err}");
        }
        Nin {
            blocks: self.blocks.iter().map(|b| b.init(device)).collect(),
            pool: MaxPool2dConfig::new([self.pool_size, self.pool_size])
                .with_strides([self.pool_stride, self.pool_stride])
                .init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            global_pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            input_size: self.input_size,
            precision: Precision::F32,
            inference: ops::InferenceCache::default(),
        }
    }
}

/// Network in Network: an image classifier made of [`NinBlock`]s with max pooling in between,
/// dropout before the last block, and global average pooling of the last block's per-class
/// maps instead of a fully connected head.
///
/// Built with [`NinConfig`]. Runs on whichever backend its [`Device`] belongs to.
#[derive(Module, Debug)]
pub struct Nin {
    /// The NiN blocks, first to last.
    pub blocks: Vec<NinBlock>,
    /// The max pool applied after every block but the last.
    pub pool: MaxPool2d,
    /// Dropout before the last block.
    pub dropout: Dropout,
    /// Global average pooling to one value per class.
    pub global_pool: AdaptiveAvgPool2d,
    /// Height and width the network was designed for, if known.
    #[module(skip)]
    pub input_size: Option<[usize; 2]>,
    /// The float type the layers compute in ([`with_precision`](Self::with_precision)).
    #[module(skip)]
    pub precision: Precision,
    /// The packed weights of inference on flex, kept between calls and shared by copies of the
    /// model (see [`try_forward`](Self::try_forward)).
    #[module(skip)]
    pub(crate) inference: ops::InferenceCache,
}

impl Nin {
    /// The same network computing in `precision`: its parameters stay `f32`, images are cast
    /// to `precision` on the way in and the logits come out in `f32` (see [`Precision`]).
    /// Check the device with [`Precision::check`] first: a device without arithmetic in that
    /// float type fails in its first kernel.
    ///
    /// ```
    /// use burn::tensor::Tensor;
    /// use nin::{NinConfig, Precision};
    ///
    /// let device = nin::backend::device("auto").unwrap();
    /// let model = NinConfig::compact(10).init(&device).with_precision(Precision::F32);
    /// let logits = model.forward(Tensor::<4>::zeros([2, 1, 28, 28], &device));
    /// assert_eq!(logits.dtype(), burn::tensor::DType::F32);
    /// ```
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Class logits `[N, num_classes]` for images `[N, C, H, W]`.
    ///
    /// Dropout is active when the model is on an autodiff device in training mode; call
    /// [`valid`](Module::valid) for evaluation.
    ///
    /// # Panics
    ///
    /// With the [`ShapeError`] message if the input does not fit (wrong channel count, empty
    /// batch, images too small for the pools); [`try_forward`](Self::try_forward) returns it
    /// instead.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self.try_forward(images) {
            Ok(logits) => logits,
            Err(err) => panic!("Nin::forward: {err}"),
        }
    }

    /// Like [`forward`](Self::forward), but returns a [`ShapeError`] for an input that does not
    /// fit rather than panicking.
    ///
    /// In inference on flex (a device without autodiff, `f32`), the whole network runs in one
    /// call of the crate's blocked-layout kernels, with each batch norm folded into its
    /// convolution; the packed weights are kept in the model, shared by its copies (`clone`,
    /// [`valid`](Module::valid), `to_device`), and packed again only after a parameter changes.
    /// Everywhere else the layers run one by one.
    pub fn try_forward(&self, images: Tensor<4>) -> Result<Tensor<2>, ShapeError> {
        self.check_input(images.dims())?;
        #[cfg(feature = "flex")]
        if self.global_pool.output_size == [1, 1]
            && let Some(logits) = self.forward_blocked(&images, &self.stages())
        {
            return Ok(logits);
        }
        Ok(self.run(images, |_, _| {}))
    }

    /// The feature maps the last block classifies: the output of the last max pool,
    /// `[N, C, H', W']`, with `C` the second-last block's output channels (`[N, 384, 5, 5]` for
    /// d2l's network at 224×224), in the network's [`precision`](Self::precision). Dropout and
    /// the last block, which a new task replaces ([`with_classes`](Self::with_classes)), do not
    /// run. A network of one block has no features but its input.
    ///
    /// ```
    /// use burn::tensor::Tensor;
    ///
    /// let device = nin::backend::device("auto").unwrap();
    /// let model = nin::NinConfig::compact(10).init(&device);
    /// let maps = model.forward_features(Tensor::<4>::zeros([2, 1, 28, 28], &device)).unwrap();
    /// assert_eq!(maps.dims(), [2, 128, 2, 2]);
    /// ```
    pub fn forward_features(&self, images: Tensor<4>) -> Result<Tensor<4>, ShapeError> {
        self.check_input(images.dims())?;
        Ok(self.run_stages(images, self.feature_stages(), |_, _| {}))
    }

    /// [`forward_features`](Self::forward_features) averaged over each map: one `f32` vector of
    /// `C` values per image, `[N, C]`, for a classifier or a nearest-neighbour search of your
    /// own. In inference on flex it runs on the same one-call path as
    /// [`try_forward`](Self::try_forward).
    ///
    /// ```
    /// use burn::tensor::Tensor;
    ///
    /// let device = nin::backend::device("auto").unwrap();
    /// let model = nin::NinConfig::compact(10).init(&device);
    /// let images = Tensor::<4>::zeros([2, 1, 28, 28], &device);
    /// assert_eq!(model.forward_pooled_features(images).unwrap().dims(), [2, 128]);
    /// ```
    pub fn forward_pooled_features(&self, images: Tensor<4>) -> Result<Tensor<2>, ShapeError> {
        self.check_input(images.dims())?;
        let stages = self.feature_stages();
        #[cfg(feature = "flex")]
        if !stages.is_empty() {
            let pooled_stages = [stages.as_slice(), &[Stage::GlobalAvgPool]].concat();
            if let Some(pooled) = self.forward_blocked(&images, &pooled_stages) {
                return Ok(pooled);
            }
        }
        let maps = self.run_stages(images, stages, |_, _| {});
        let [batch, channels, _, _] = maps.dims();
        Ok(ops::cast_to(maps, DType::F32)
            .mean_dim(3)
            .mean_dim(2)
            .reshape([batch, channels]))
    }

    /// The stages before dropout and the last block: those of
    /// [`forward_features`](Self::forward_features).
    fn feature_stages(&self) -> Vec<Stage> {
        self.stages()
            .into_iter()
            .take_while(|stage| *stage != Stage::Dropout)
            .collect()
    }

    /// The same network for `num_classes` classes: a new last block, drawn afresh on `device`
    /// as [`NinConfig::init`] draws it, and every other weight kept. The new block has the old
    /// one's kernel, stride, padding and batch norm; its widths change as
    /// [`NinConfig::with_num_classes`] changes them (all three where they were all the class
    /// count, as in d2l's network, else the last 1×1 layer's alone). The way to fine-tune
    /// trained weights on classes of your own; freeze the rest with `freeze` on
    /// `model.blocks[..n - 1]` to train the new block alone.
    ///
    /// ```
    /// use burn::tensor::Tensor;
    ///
    /// let device = nin::backend::device("auto").unwrap();
    /// let model = nin::NinConfig::compact(10).init(&device).with_classes(3, &device);
    /// assert_eq!(model.num_classes(), 3);
    /// let logits = model.forward(Tensor::<4>::zeros([2, 1, 28, 28], &device));
    /// assert_eq!(logits.dims(), [2, 3]);
    /// ```
    pub fn with_classes(mut self, num_classes: usize, device: &Device) -> Self {
        let Some(last) = self.blocks.pop() else {
            return self;
        };
        let [spatial, mlp1, mlp2] = last.layer_channels();
        let widths = if spatial == mlp2 && mlp1 == mlp2 {
            [num_classes; 3]
        } else {
            [spatial, mlp1, num_classes]
        };
        let config = NinBlockConfig::new(last.in_channels(), widths[0], last.kernel_size())
            .with_stride(last.stride())
            .with_padding(last.padding())
            .with_mlp_channels(Some([widths[1], widths[2]]))
            .with_batch_norm(last.conv.norm.is_some());
        self.blocks.push(config.init(device));
        self
    }

    /// The whole network, or its pooled features, through `ops`' blocked inference path:
    /// `stages` end with the global average. `None` where it does not run: autodiff, another
    /// backend or precision.
    #[cfg(feature = "flex")]
    fn forward_blocked(&self, images: &Tensor<4>, stages: &[Stage]) -> Option<Tensor<2>> {
        if self.precision != Precision::F32 {
            return None;
        }
        let mut network = Vec::with_capacity(4 * self.blocks.len());
        for &stage in stages {
            match stage {
                Stage::Block(index) => {
                    let block = &self.blocks[index];
                    for (_, layer) in block.layers() {
                        network.push(ops::NetworkStage::Conv {
                            conv: &layer.conv,
                            norm: layer.norm.as_ref(),
                            relu: true,
                        });
                    }
                }
                Stage::MaxPool(_) => network.push(ops::NetworkStage::MaxPool(&self.pool)),
                // Dropout is the identity without autodiff, where this path runs.
                Stage::Dropout => {}
                Stage::GlobalAvgPool => network.push(ops::NetworkStage::GlobalAvgPool),
            }
        }
        self.inference.forward(&network, images)
    }

    /// Runs the network and hands each stage's output to `observe`, as d2l's layer-by-layer
    /// shape printout does. Returns the logits.
    pub fn forward_observed(
        &self,
        images: Tensor<4>,
        observe: impl FnMut(Stage, &Tensor<4>),
    ) -> Result<Tensor<2>, ShapeError> {
        self.check_input(images.dims())?;
        Ok(self.run(images, observe))
    }

    /// The network as a fold of [`stages`](Self::stages) over [`apply`](Self::apply), with
    /// each stage's output shown to `observe`.
    fn run(&self, images: Tensor<4>, observe: impl FnMut(Stage, &Tensor<4>)) -> Tensor<2> {
        let maps = self.run_stages(images, self.stages(), observe);
        let [batch, classes, _, _] = maps.dims();
        maps.reshape([batch, classes])
    }

    /// `stages` in order on `images` cast to the network's precision; `observe` sees each
    /// stage's output.
    fn run_stages(
        &self,
        images: Tensor<4>,
        stages: Vec<Stage>,
        mut observe: impl FnMut(Stage, &Tensor<4>),
    ) -> Tensor<4> {
        let input = ops::cast_to(images, self.precision.dtype());
        stages.into_iter().fold(input, |x, stage| {
            let x = self.apply(stage, x);
            observe(stage, &x);
            x
        })
    }

    /// One stage of the network.
    fn apply(&self, stage: Stage, x: Tensor<4>) -> Tensor<4> {
        match stage {
            Stage::Block(index) => self.blocks[index].forward(x),
            Stage::MaxPool(_) => ops::max_pool2d(&self.pool, x),
            Stage::Dropout => self.dropout.forward(x),
            // The class maps are averaged, and the loss taken, in f32.
            Stage::GlobalAvgPool => self.global_pool.forward(ops::cast_to(x, DType::F32)),
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::{Module, Param};
    use burn::tensor::{Device, Tensor};

    use super::NinConfig;
    use crate::ops::PACKINGS;

    fn packings() -> usize {
        PACKINGS.with(|packings| packings.get())
    }

    #[test]
    fn logits_and_pooled_features_keep_a_plan_each() {
        let device = Device::flex();
        let model = NinConfig::compact(10).init(&device);
        let images = Tensor::<4>::ones([2, 1, 28, 28], &device);
        let start = packings();
        for _ in 0..2 {
            model.forward(images.clone());
            model.forward_pooled_features(images.clone()).unwrap();
        }
        assert_eq!(packings(), start + 2, "one packing each, then none");
    }

    #[test]
    fn copies_share_the_packed_weights_until_a_parameter_changes() {
        let device = Device::flex();
        let model = NinConfig::compact(10).with_batch_norm(true).init(&device);
        let images = Tensor::<4>::ones([2, 1, 28, 28], &device);
        let start = packings();
        let logits = model.forward(images.clone());
        assert_eq!(packings(), start + 1, "the first call packs");

        let copies = [
            model.valid(),
            model.clone(),
            model.clone().to_device(&device),
        ];
        for copy in &copies {
            let again = copy.forward(images.clone());
            let largest = (again - logits.clone()).abs().max().into_scalar::<f32>();
            assert_eq!(largest, 0.0);
        }
        assert_eq!(packings(), start + 1, "valid, clone and to_device repacked");

        let mut changed = model.clone();
        let weight = &mut changed.blocks[0].conv.conv.weight;
        *weight = Param::from_tensor(weight.val().mul_scalar(2.0));
        let changed_logits = changed.forward(images);
        assert_eq!(packings(), start + 2, "a changed parameter is packed again");
        let largest = (changed_logits - logits).abs().max().into_scalar::<f32>();
        assert!(largest > 0.0, "the new weights are the ones used");
    }
}
