//! Turning dataset items into model input: `[N, C, H, W]` floats in `[0, 1]`, optionally
//! normalised per channel and resized on the device.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::item::ImageItem;

/// A batch ready for [`Nin::forward`](crate::Nin::forward).
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Images `[N, C, H, W]`, values in `[0, 1]` before normalisation.
    pub images: Tensor<4>,
    /// Class indices `[N]`.
    pub targets: Tensor<1, Int>,
}

/// Builds [`ImageBatch`]es from [`ImageItem`]s of any channel count.
///
/// Pixels are scaled to `[0, 1]` (as torchvision's `ToTensor`), optionally normalised with a
/// mean and standard deviation per channel (as torchvision's `Normalize`), and optionally
/// resized with bilinear interpolation on the target device, as d2l's `Resize(224)` does for
/// its NiN (half-pixel centres, which is what bilinear resizing in PIL and PyTorch uses).
#[derive(Debug, Clone, Default)]
pub struct ImageBatcher {
    /// Height and width to resize to; `None` keeps the images' size.
    pub resize: Option<[usize; 2]>,
    /// Means and standard deviations to normalise with after scaling to `[0, 1]`: one pair
    /// for every channel, or one pair per channel. `None` leaves `[0, 1]`.
    pub normalize: Option<Vec<(f32, f32)>>,
    /// Random augmentation, for training batches only. Each batch's draws come from the seed
    /// and a count of the batches built so far, so a loader with worker threads, which builds
    /// batches in whichever order its threads reach them, augments them differently from run
    /// to run; the trainer augments each image from (seed, epoch, index) instead.
    pub augment: Option<Augment>,
    /// Batches made so far: with the seed, it picks each batch's random draws, so a run that
    /// asks for the same batches in the same order sees the same augmentation.
    batches: Arc<AtomicU64>,
}

/// Training-time augmentation, applied to the pixels before resizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Shift each image by up to this many pixels in each direction, filling with black: a
    /// random crop of the image padded by this much, at its original size.
    pub crop_padding: usize,
    /// Mirror half of the images left to right.
    pub horizontal_flip: bool,
    /// Seed of the random draws.
    pub seed: u64,
}

impl ImageBatcher {
    /// A batcher that scales to `[0, 1]` and does nothing else.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resize images to `size` (`[height, width]`).
    pub fn with_resize(mut self, size: [usize; 2]) -> Self {
        self.resize = Some(size);
        self
    }

    /// Normalise every channel to `(x − mean) / std` after scaling.
    pub fn with_normalize(mut self, mean: f32, std: f32) -> Self {
        self.normalize = Some(vec![(mean, std)]);
        self
    }

    /// Normalise channel `c` to `(x − mean[c]) / std[c]` after scaling, e.g. with the RGB
    /// means and standard deviations of a colour dataset.
    pub fn with_channel_normalize(mut self, mean_std: &[(f32, f32)]) -> Self {
        self.normalize = Some(mean_std.to_vec());
        self
    }

    /// Augment every batch (use a separate batcher without it for evaluation).
    pub fn with_augment(mut self, augment: Augment) -> Self {
        self.augment = Some(augment);
        self
    }
}

impl Augment {
    /// Shifts and flips `item` in place with draws from `seed` alone, so that an image's
    /// augmentation does not depend on which thread built its batch, or when.
    #[cfg(feature = "train")]
    pub(crate) fn apply_to_item(&self, item: &mut ImageItem, seed: u64) {
        let shape = [item.height, item.width];
        self.apply(&mut item.pixels, shape, &mut SplitMix64(seed));
    }

    /// Shifts and flips one image (`[C, h, w]`) in place, drawing from `rng`: every channel
    /// moves alike.
    fn apply(&self, pixels: &mut [u8], [h, w]: [usize; 2], rng: &mut SplitMix64) {
        let pad = self.crop_padding as i64;
        let span = 2 * pad as u64 + 1;
        let dy = (rng.next() % span) as i64 - pad;
        let dx = (rng.next() % span) as i64 - pad;
        let flip = self.horizontal_flip && rng.next() & 1 == 1;
        if dx == 0 && dy == 0 && !flip {
            return;
        }
        for plane in pixels.chunks_exact_mut(h * w) {
            let source = plane.to_vec();
            for y in 0..h {
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x } as i64 + dx;
                    let sy = y as i64 + dy;
                    let inside = (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx);
                    plane[y * w + x] = if inside {
                        source[sy as usize * w + sx as usize]
                    } else {
                        0
                    };
                }
            }
        }
    }
}

/// SplitMix64: a small, fast, well-mixed generator; enough for picking shifts and flips, and
/// for the training order's permutations.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    /// A seed that depends on every one of `parts` and their order: each is mixed into the state
    /// in turn. Used to give each epoch, image or batch a stream of its own.
    #[cfg(feature = "train")]
    pub(crate) fn derive(parts: &[u64]) -> u64 {
        parts.iter().fold(0x6a09_e667_f3bc_c909, |state, part| {
            SplitMix64(state ^ part).next()
        })
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    /// # Panics
    ///
    /// If `items` is empty, the images differ in shape or an item's pixels do not fill its
    /// shape (a dataset yields equal, whole images, so each means the caller mixed datasets or
    /// built an item by hand), or the normalisation names a number of channels other than one
    /// or the images'.
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let first = items
            .first()
            .expect("ImageBatcher::batch needs at least one item");
        let [c, h, w] = first.shape();
        let mut pixels = Vec::with_capacity(items.len() * c * h * w);
        let mut targets = Vec::with_capacity(items.len());
        for item in &items {
            assert_eq!(
                item.shape(),
                [c, h, w],
                "ImageBatcher::batch got images of different shapes ([C, H, W])"
            );
            assert_eq!(
                item.pixels.len(),
                c * h * w,
                "an ImageItem's pixels must fill its [{c}, {h}, {w}] shape"
            );
            pixels.extend_from_slice(&item.pixels);
            targets.push(item.label as i64);
        }
        if let Some(augment) = &self.augment {
            let batch_index = self.batches.fetch_add(1, Ordering::Relaxed);
            let mut rng =
                SplitMix64(augment.seed ^ batch_index.wrapping_mul(0xa076_1d64_78bd_642f));
            for image in pixels.chunks_exact_mut(c * h * w) {
                augment.apply(image, [h, w], &mut rng);
            }
        }
        // Bytes go to the device as they are; scaling happens there, not in a CPU loop.
        let values = items.len() * c * h * w;
        let bytes = Tensor::<1, Int>::from_data(TensorData::new(pixels, [values]), device);
        let mut images = (bytes.float() / 255.0).reshape([items.len(), c, h, w]);
        if let Some(size) = self.resize.filter(|size| *size != [h, w]) {
            images = interpolate(
                images,
                InterpolateOptions {
                    output_size: Some(size),
                    align_corners: false,
                    ..InterpolateOptions::new(InterpolateMode::Bilinear)
                },
            );
        }
        match self.normalize.as_deref() {
            None => {}
            Some([(mean, std)]) => images = (images - *mean) / *std,
            Some(per_channel) => {
                assert_eq!(
                    per_channel.len(),
                    c,
                    "ImageBatcher normalises {} channels, the images have {c}",
                    per_channel.len()
                );
                let (mean, std): (Vec<f32>, Vec<f32>) = per_channel.iter().copied().unzip();
                let column = |values: Vec<f32>| {
                    Tensor::<1>::from_data(TensorData::new(values, [c]), device)
                        .reshape([1, c, 1, 1])
                };
                images = (images - column(mean)) / column(std);
            }
        }
        let targets = Tensor::from_data(TensorData::new(targets, [items.len()]), device);
        ImageBatch { images, targets }
    }
}

/// The mean and standard deviation of every pixel of `dataset` after scaling to `[0, 1]`, over
/// all its channels: the pair to normalise it with (as [`ImageBatcher::with_normalize`] and
/// `TrainingConfig::normalize` take it). `None` for a dataset without pixels or of one flat
/// colour.
///
/// ```
/// use burn::data::dataset::InMemDataset;
/// use nin::data::{ImageItem, pixel_mean_std};
///
/// let items = vec![
///     ImageItem::grayscale(vec![0, 255], 1, 2, 0),
///     ImageItem::grayscale(vec![255, 255], 1, 2, 1),
/// ];
/// let (mean, std) = pixel_mean_std(&InMemDataset::new(items))?.unwrap();
/// assert!((mean - 0.75).abs() < 1e-6 && (std - 0.75f32.sqrt() / 2.0).abs() < 1e-6);
/// # Ok::<(), burn::data::dataset::DatasetError>(())
/// ```
pub fn pixel_mean_std<D>(dataset: &D) -> Result<Option<(f32, f32)>, DatasetError>
where
    D: Dataset<ImageItem> + ?Sized,
{
    // Counts per byte value, then exact sums: no rounding drift over millions of pixels.
    let mut counts = [0u64; 256];
    for index in 0..dataset.len() {
        for &pixel in &dataset.get(index)?.pixels {
            counts[usize::from(pixel)] += 1;
        }
    }
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Ok(None);
    }
    let moment = |power: i32| {
        counts
            .iter()
            .enumerate()
            .map(|(value, &count)| count as f64 * (value as f64 / 255.0).powi(power))
            .sum::<f64>()
            / total as f64
    };
    let mean = moment(1);
    let variance = (moment(2) - mean * mean).max(0.0);
    Ok((variance > 0.0).then(|| (mean as f32, variance.sqrt() as f32)))
}
