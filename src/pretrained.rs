//! Weights trained by this crate and embedded in it (feature `pretrained`, on by default): a
//! network that classifies Fashion-MNIST with no training.
//!
//! ```
//! use nin::pretrained::{Classifier, Weights};
//!
//! let device = nin::backend::device("auto").unwrap();
//! let classifier = Classifier::new(Weights::FashionMnistCompact, &device).unwrap();
//!
//! // The first image of the Fashion-MNIST test set, kept next to the weights in the source tree.
//! let png = std::fs::read(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/weights/fashion_mnist_compact/test-0-ankle-boot.png"
//! ))
//! .unwrap();
//! let seen = classifier.classify(&png, false).unwrap();
//! let (class, probability) = seen.ranked()[0];
//! assert_eq!(Weights::FashionMnistCompact.class_names()[class], "Ankle boot");
//! assert!(probability > 0.9);
//! ```
//!
//! [`fashion_mnist`] gives the network itself, for images you prepare yourself: 28×28
//! grayscale, scaled to `[0, 1]` and normalised with [`Weights::normalize`].
//!
//! The weights are loaded from bytes compiled into the crate, with no file I/O, after their
//! SHA-256 is checked. `weights/fashion_mnist_compact/` in the source tree holds the command
//! and the `config.json` that trained them.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::activation::softmax;
use burn::tensor::{Bytes, Device, Tensor, TensorData};

use crate::data::folder::{ImageError, decode_image};
use crate::data::source::sha256_hex;
use crate::data::{FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN_STD, ImageBatcher, ImageItem};
use crate::{Nin, NinConfig};

/// The weights shipped with the crate. More may be added in later versions, hence
/// `non_exhaustive`: iterate [`Weights::ALL`] rather than matching every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Weights {
    /// The compact preset's network (`NinConfig::compact(10)` with batch norm, dropout 0.1),
    /// trained on Fashion-MNIST with its recipe for 30 epochs with random crops and
    /// mirroring (`--augment`): test accuracy 0.9390 on the 10,000 test images
    /// ([`test_accuracy`](Self::test_accuracy)); an f16 copy of the weights measured the same.
    FashionMnistCompact,
}

impl Weights {
    /// Every set of weights shipped.
    pub const ALL: &'static [Weights] = &[Weights::FashionMnistCompact];

    /// The network the weights belong to.
    pub fn config(self) -> NinConfig {
        match self {
            Weights::FashionMnistCompact => NinConfig::compact(10)
                .with_batch_norm(true)
                .with_dropout(0.1),
        }
    }

    /// Test accuracy of the weights on the 10,000 Fashion-MNIST test images (flex backend,
    /// f32), as `tests/pretrained.rs` checks it.
    pub fn test_accuracy(self) -> f64 {
        match self {
            Weights::FashionMnistCompact => FASHION_MNIST_COMPACT_ACCURACY,
        }
    }

    /// The mean and standard deviation to normalise `[0, 1]` pixels with before the network
    /// (those of [`preprocessing`](Self::preprocessing)).
    pub fn normalize(self) -> (f32, f32) {
        match self {
            Weights::FashionMnistCompact => FASHION_MNIST_MEAN_STD,
        }
    }

    /// How images are prepared for these weights, as they were in training: the one
    /// description [`Classifier`], the `predict` example and the browser page all follow.
    ///
    /// ```
    /// let prepare = nin::pretrained::Weights::FashionMnistCompact.preprocessing();
    /// assert_eq!((prepare.channels, prepare.side), (1, 28));
    /// ```
    pub fn preprocessing(self) -> Preprocessing {
        let config = self.config();
        let [side, _] = config
            .input_size
            .expect("every shipped network names its input size");
        Preprocessing {
            channels: config.blocks[0].in_channels,
            side,
            normalize: self.normalize(),
        }
    }

    /// The class names, by output index.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            Weights::FashionMnistCompact => &FASHION_MNIST_CLASSES,
        }
    }

    /// The embedded weights: a burnpack record of f32 values.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Weights::FashionMnistCompact => FASHION_MNIST_COMPACT,
        }
    }

    /// Lower-case hex SHA-256 of [`bytes`](Self::bytes).
    pub fn sha256(self) -> &'static str {
        match self {
            Weights::FashionMnistCompact => FASHION_MNIST_COMPACT_SHA256,
        }
    }

    /// The network with the embedded weights, in evaluation mode, on `device`.
    pub fn load(self, device: &Device) -> Result<Nin, PretrainedError> {
        self.load_bytes(self.bytes(), device)
    }

    /// The network with weights from `bytes`, which must be exactly these weights, such as a
    /// copy of [`bytes`](Self::bytes) written to a file or sent elsewhere: their SHA-256 is
    /// checked before they are decoded. Other weights (a fine-tuned copy, say) are not these:
    /// load them into [`config`](Self::config)`().init(&device)` as any burnpack record.
    pub fn load_bytes(self, bytes: &[u8], device: &Device) -> Result<Nin, PretrainedError> {
        let actual = sha256_hex(bytes);
        if actual != self.sha256() {
            return Err(PretrainedError::Checksum {
                weights: self,
                expected: self.sha256(),
                actual,
            });
        }
        let decode = |reason: String| PretrainedError::Decode {
            weights: self,
            reason,
        };
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| decode(e.to_string()))?;
        // The digest pins these bytes to the ones trained and tested, so unlike a training run's
        // `model.bpk` they need no scan for non-finite values.
        let model = self
            .config()
            .init(device)
            .try_load_record(record)
            .map_err(|e| decode(e.to_string()))?;
        Ok(model.valid())
    }
}

/// The compact network trained on Fashion-MNIST ([`Weights::FashionMnistCompact`]), in
/// evaluation mode, on `device`. Inputs are 28×28 grayscale images scaled to `[0, 1]` and
/// normalised with [`Weights::normalize`].
///
/// # Panics
///
/// If the embedded weights fail their check, which would mean this copy of the crate is
/// damaged; [`Weights::load`] returns that as an error instead.
pub fn fashion_mnist(device: &Device) -> Nin {
    Weights::FashionMnistCompact
        .load(device)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// How images are prepared for a set of [`Weights`]: decoded to `channels` planes of
/// `side × side` pixels, scaled to `[0, 1]` and normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// Planes per image: 1 for grayscale, 3 for RGB.
    pub channels: usize,
    /// Height and width of the network's input.
    pub side: usize,
    /// The mean and standard deviation `[0, 1]` pixels are normalised with.
    pub normalize: (f32, f32),
}

impl Preprocessing {
    /// The PNG or JPEG image in `bytes` at this input's channels and size ([`decode_image`]),
    /// its levels inverted when `invert` is set.
    pub fn decode(&self, bytes: &[u8], invert: bool) -> Result<ImageItem, ImageError> {
        let mut item = decode_image(bytes, self.channels, self.side)?;
        if invert {
            item.pixels.iter_mut().for_each(|p| *p = 255 - *p);
        }
        Ok(item)
    }

    /// One image from [`decode`](Self::decode) as the network's input, `[1, channels, side,
    /// side]`: scaled to `[0, 1]` and normalised as [`batcher`](Self::batcher) does, on the
    /// CPU. [`Classifier`] uses this rather than the batcher, whose resizing and augmentation
    /// the browser page's module would otherwise carry.
    ///
    /// # Errors
    ///
    /// [`ImageError::Shape`] when `item` is not `channels` planes of `side × side` pixels.
    pub fn input(&self, item: &ImageItem, device: &Device) -> Result<Tensor<4>, ImageError> {
        let shape = [1, self.channels, self.side, self.side];
        if item.shape() != [self.channels, self.side, self.side]
            || item.pixels.len() != self.channels * self.side * self.side
        {
            return Err(ImageError::Shape {
                expected: [self.channels, self.side, self.side],
                actual: item.shape(),
            });
        }
        let (mean, std) = self.normalize;
        let values: Vec<f32> = item
            .pixels
            .iter()
            .map(|&p| (f32::from(p) / 255.0 - mean) / std)
            .collect();
        Ok(Tensor::<4>::from_data(
            TensorData::new(values, shape),
            device,
        ))
    }

    /// The batcher that turns images into the network's input: scaled, normalised, and
    /// resized to `side` when they are another size.
    pub fn batcher(&self) -> ImageBatcher {
        let (mean, std) = self.normalize;
        ImageBatcher::new()
            .with_normalize(mean, std)
            .with_resize([self.side, self.side])
    }
}

/// A network with shipped weights and everything around it that turns an image file into
/// class probabilities: decoding, the input size, the normalisation, the softmax. The browser
/// page (`web/`) runs this same code.
#[derive(Debug)]
pub struct Classifier {
    weights: Weights,
    preprocessing: Preprocessing,
    model: Nin,
    device: Device,
}

/// What a [`Classifier`] made of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The probability of each class, by class index; they sum to 1.
    pub probabilities: Vec<f32>,
    /// The pixels the network saw, channels first (for the Fashion-MNIST weights, 28×28
    /// grayscale), after decoding, resizing and, if asked, inverting.
    pub pixels: Vec<u8>,
}

impl Classification {
    /// `(class index, probability)` pairs, most probable first.
    pub fn ranked(&self) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> =
            self.probabilities.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }
}

impl Classifier {
    /// The network with `weights` (their SHA-256 checked), in evaluation mode, on `device`.
    pub fn new(weights: Weights, device: &Device) -> Result<Self, PretrainedError> {
        Ok(Self {
            weights,
            preprocessing: weights.preprocessing(),
            model: weights.load(device)?,
            device: device.clone(),
        })
    }

    /// The weights this classifier runs.
    pub fn weights(&self) -> Weights {
        self.weights
    }

    /// Classifies the PNG or JPEG image in `bytes`: decoded and resized to the network's input
    /// ([`decode_image`]), inverted when `invert` is set (for a dark object on a light
    /// background, since the network learnt light clothes on black), scaled to `[0, 1]` and
    /// normalised as in training. Bytes that are no image, or one too large to decode, are
    /// [`PretrainedError::Image`].
    pub fn classify(&self, bytes: &[u8], invert: bool) -> Result<Classification, PretrainedError> {
        let item = self.preprocessing.decode(bytes, invert)?;
        let image = self.preprocessing.input(&item, &self.device)?;
        let probabilities = softmax(self.model.forward(image), 1)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| PretrainedError::Decode {
                weights: self.weights,
                reason: format!("the network's output: {e:?}"),
            })?;
        Ok(Classification {
            probabilities,
            pixels: item.pixels,
        })
    }
}

/// Why shipped weights could not be loaded, or an image not classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PretrainedError {
    /// The bytes are not the weights shipped.
    #[error(
        "{weights:?}: SHA-256 of the weights is {actual}, expected {expected}: the bytes are \
         damaged, cut short or other weights. Use Weights::load, which reads the copy compiled \
         into nin; if that fails too, that copy is damaged: remove nin from cargo's registry \
         cache (~/.cargo/registry) and build again"
    )]
    Checksum {
        /// Which weights.
        weights: Weights,
        /// The digest recorded in the crate.
        expected: &'static str,
        /// The digest of the bytes given.
        actual: String,
    },
    /// The bytes passed their check but could not be decoded into the network.
    #[error("{weights:?}: cannot decode the weights: {reason}")]
    Decode {
        /// Which weights.
        weights: Weights,
        /// What went wrong.
        reason: String,
    },
    /// [`Classifier::classify`] was given bytes that are not a PNG or JPEG image it can read.
    #[error("not an image the classifier can read (PNG or JPEG): {0}")]
    Image(#[from] ImageError),
}

// The run's `model.bpk`, its `sha256sum`, and the test accuracy its `report.json` records and
// `tests/pretrained.rs` measures again on the test set.
const FASHION_MNIST_COMPACT: &[u8] = include_bytes!("../weights/fashion_mnist_compact/model.bpk");
const FASHION_MNIST_COMPACT_SHA256: &str =
    "0bc102932c5c87bfb4824943d94bf17b83b1c73e0d25fb7033fc1ac6c5b751ac";
const FASHION_MNIST_COMPACT_ACCURACY: f64 = 0.9390;
