//! What a training run does, as one serialisable value saved with the run.

use serde::{Deserialize, Serialize};

use crate::data::{Augment, FASHION_MNIST_MEAN_STD, ImageBatcher};
use crate::model::{NinConfig, Precision};

use super::TrainError;
use super::optimizer::{Optimizer, Schedule};

/// A named starting point: a model and the recipe that trains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Preset {
    /// [`NinConfig::compact`] on native 28×28 images, with the recipe that reaches the best
    /// test accuracy on two CPU cores in under ten minutes (its runs: docs/training.md).
    Compact,
    /// d2l's NiN ([`NinConfig::d2l`]) and d2l's recipe: images resized to 224×224, plain SGD
    /// with learning rate 0.1, batch 128, 10 epochs.
    D2l,
    /// The paper's CIFAR-10 network ([`NinConfig::cifar10`]) and its recipe as far as the
    /// paper gives it: SGD with momentum and weight decay, batches of 128, dropout, no
    /// augmentation. Meant for a GPU.
    Cifar10,
}

impl Preset {
    /// Every preset, for help texts.
    pub const ALL: [Preset; 3] = [Preset::Compact, Preset::D2l, Preset::Cifar10];

    /// The name used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Compact => "compact",
            Preset::D2l => "d2l",
            Preset::Cifar10 => "cifar10",
        }
    }
}

impl crate::names::Named for Preset {
    const KIND: &'static str = "preset";

    fn all() -> &'static [Self] {
        &Self::ALL
    }

    fn name(self) -> &'static str {
        Preset::name(self)
    }
}

crate::names::impl_named!(Preset);

/// Everything that decides what a run computes. Saved as `config.json` in the artifact
/// directory; `--resume` checks the saved one matches.
///
/// ```
/// use nin::train::{Preset, TrainingConfig};
///
/// let config = TrainingConfig::preset(Preset::D2l);
/// assert_eq!((config.epochs, config.batch_size, config.optimizer.lr()), (10, 128, 0.1));
/// assert_eq!(config.model.input_size, Some([224, 224]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    /// The preset this configuration started from.
    pub preset: Preset,
    /// The network. Its `input_size`, if any, is the size images are resized to.
    pub model: NinConfig,
    /// Number of passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Optimiser and peak learning rate.
    pub optimizer: Optimizer,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Seed of the weights, the shuffling and the augmentation.
    pub seed: u64,
    /// Threads that build batches.
    pub workers: usize,
    /// `(mean, std)` to normalise pixels with after scaling to `[0, 1]`.
    pub normalize: Option<(f32, f32)>,
    /// Training-time augmentation.
    pub augment: Option<Augment>,
    /// Use only the first this many training images.
    pub train_limit: Option<usize>,
    /// Use only the first this many test images.
    pub test_limit: Option<usize>,
    /// The float type the network computes in ([`Precision`]); parameters, optimiser state
    /// and loss stay `f32`. `f16` trains with a dynamic loss scale.
    #[serde(default)]
    pub precision: Precision,
    /// The first this many blocks keep the weights the run starts from
    /// ([`TrainOptions::initial_model`](super::TrainOptions::initial_model)): the optimiser
    /// updates only the blocks after them. `model.blocks.len() - 1` fine-tunes a new last block
    /// ([`Nin::with_classes`](crate::Nin::with_classes)) alone; 0 (the default) trains every
    /// block. Batch-norm running statistics of frozen blocks still follow the data, as
    /// PyTorch's do for parameters without `requires_grad`.
    #[serde(default)]
    pub frozen_blocks: usize,
}

impl TrainingConfig {
    /// The configuration of `preset` for 10 classes. Every preset trains in batches of 128.
    pub fn preset(preset: Preset) -> Self {
        let recipe = |model, epochs, optimizer, schedule| Self {
            preset,
            model,
            epochs,
            batch_size: 128,
            optimizer,
            schedule,
            seed: 0,
            workers: 2,
            normalize: None,
            augment: None,
            train_limit: None,
            test_limit: None,
            precision: Precision::F32,
            frozen_blocks: 0,
        };
        match preset {
            // d2l: `d2l.load_data_fashion_mnist(batch_size=128, resize=224)` (ToTensor only, no
            // normalisation) and `d2l.train_ch6(net, ..., num_epochs=10, lr=0.1)`: plain SGD.
            Preset::D2l => recipe(
                NinConfig::d2l(10),
                10,
                Optimizer::Sgd {
                    lr: 0.1,
                    momentum: None,
                    weight_decay: None,
                },
                Schedule::Constant,
            ),
            // Lin, Chen & Yan (2014), section 4.1: mini-batches of 128, dropout on the outputs of
            // the mlpconv layers, weight decay, and a learning rate lowered tenfold when
            // accuracy stops improving. The paper's remaining values follow Krizhevsky's
            // cuda-convnet conventions rather than being stated; momentum 0.9, weight decay
            // 1e-4 and a cosine decay from 0.05 (after a warm-up, as nothing normalises the
            // activations) stand in for them. The paper preprocesses with global contrast
            // normalisation and ZCA whitening; here pixels are normalised with one mean and
            // standard deviation, which the `cifar10` example takes from the training set.
            Preset::Cifar10 => recipe(
                NinConfig::cifar10(),
                100,
                Optimizer::Sgd {
                    lr: 0.05,
                    momentum: Some(0.9),
                    weight_decay: Some(1e-4),
                },
                Schedule::Cosine { warmup_steps: 1000 },
            ),
            // Batch norm, light dropout and decoupled weight decay, ten epochs: the runs that
            // chose them, and those that did not do better, are in docs/training.md.
            Preset::Compact => Self {
                normalize: Some(FASHION_MNIST_MEAN_STD),
                ..recipe(
                    NinConfig::compact(10)
                        .with_batch_norm(true)
                        .with_dropout(0.1),
                    10,
                    Optimizer::AdamW {
                        lr: 5e-3,
                        weight_decay: 0.05,
                    },
                    Schedule::Cosine { warmup_steps: 100 },
                )
            },
        }
    }

    /// The recipe in a few words, for a run's first line: `10 epochs of batch 128, AdamW lr
    /// 0.005 with weight decay 0.05, cosine schedule (100 warm-up steps)`.
    ///
    /// ```
    /// use nin::train::{Preset, TrainingConfig};
    ///
    /// let recipe = TrainingConfig::preset(Preset::D2l).recipe();
    /// assert_eq!(recipe, "10 epochs of batch 128, SGD lr 0.1, constant rate");
    /// ```
    pub fn recipe(&self) -> String {
        let optimizer = match self.optimizer {
            Optimizer::Sgd {
                lr,
                momentum,
                weight_decay,
            } => {
                let mut text = format!("SGD lr {lr}");
                if let Some(momentum) = momentum {
                    text.push_str(&format!(", momentum {momentum}"));
                }
                if let Some(decay) = weight_decay {
                    text.push_str(&format!(", weight decay {decay}"));
                }
                text
            }
            Optimizer::AdamW { lr, weight_decay } => {
                format!("AdamW lr {lr} with weight decay {weight_decay}")
            }
        };
        let schedule = match self.schedule {
            Schedule::Constant => "constant rate".to_string(),
            Schedule::Cosine { warmup_steps } => {
                format!("cosine schedule ({warmup_steps} warm-up steps)")
            }
        };
        let precision = match self.precision {
            crate::Precision::F32 => String::new(),
            other => format!(", {other}"),
        };
        let frozen = match self.frozen_blocks {
            0 => String::new(),
            1 => ", the first block frozen".to_string(),
            n => format!(", the first {n} blocks frozen"),
        };
        format!(
            "{} epochs of batch {}, {optimizer}, {schedule}{precision}{frozen}",
            self.epochs, self.batch_size
        )
    }

    /// The same recipe for images of `channels` planes of `side × side` pixels in `classes`
    /// classes, normalised with `normalize` (a mean and standard deviation after scaling to
    /// `[0, 1]`, or `None` for none): the network's input channels, its classes and its input
    /// size change, nothing else.
    ///
    /// ```
    /// use nin::train::{Preset, TrainingConfig};
    ///
    /// // The compact network on CIFAR-100.
    /// let config = TrainingConfig::preset(Preset::Compact).for_images(3, 32, 100, None);
    /// assert_eq!(config.model.blocks[0].in_channels, 3);
    /// assert_eq!(config.model.num_classes(), 100);
    /// assert_eq!(config.model.input_size, Some([32, 32]));
    /// ```
    pub fn for_images(
        mut self,
        channels: usize,
        side: usize,
        classes: usize,
        normalize: Option<(f32, f32)>,
    ) -> Self {
        self.model = self
            .model
            .with_in_channels(channels)
            .with_num_classes(classes)
            .with_input_size(Some([side, side]));
        self.normalize = normalize;
        self
    }

    /// The batcher that prepares `image_size` images as this configuration's model expects
    /// them: scaled to `[0, 1]`, normalised if configured, resized to the model's input size
    /// when that differs. No augmentation.
    pub fn batcher(&self, image_size: [usize; 2]) -> ImageBatcher {
        let mut batcher = ImageBatcher::new();
        if let Some((mean, std)) = self.normalize {
            batcher = batcher.with_normalize(mean, std);
        }
        match self.model.input_size {
            Some(size) if size != image_size => batcher.with_resize(size),
            _ => batcher,
        }
    }

    /// Checks the values can be trained with, naming the first one that cannot.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |what: &str, why: String| Err(TrainError::Config(format!("{what}: {why}")));
        self.model.validate()?;
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch size", "must be at least 1".into());
        }
        let lr = self.optimizer.lr();
        if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
            return bad("learning rate", format!("{lr} is not in (0, 1]"));
        }
        if let Some((mean, std)) = self.normalize
            && !(mean.is_finite() && std.is_finite() && std > 0.0)
        {
            return bad(
                "normalize",
                format!("mean {mean}, std {std}: std must be positive"),
            );
        }
        let blocks = self.model.blocks.len();
        if self.frozen_blocks >= blocks {
            return bad(
                "frozen blocks",
                format!(
                    "{} of a network of {blocks} blocks leaves nothing to train; at most {}",
                    self.frozen_blocks,
                    blocks - 1
                ),
            );
        }
        for (what, limit) in [
            ("train limit", self.train_limit),
            ("test limit", self.test_limit),
        ] {
            if limit == Some(0) {
                return bad(what, "must be at least 1 image".into());
            }
        }
        Ok(())
    }
}
