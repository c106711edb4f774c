//! Turning dataset items into model input: `[N, 1, H, W]` floats in `[0, 1]`, optionally
//! normalised and resized on the device.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::mnist::ImageItem;

/// A batch ready for [`Nin::forward`](crate::Nin::forward).
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// Images `[N, 1, H, W]`, values in `[0, 1]` before normalisation.
    pub images: Tensor<4>,
    /// Class indices `[N]`.
    pub targets: Tensor<1, Int>,
}

/// Builds [`ImageBatch`]es from grayscale [`ImageItem`]s.
///
/// Pixels are scaled to `[0, 1]` (as torchvision's `ToTensor`), optionally normalised with a
/// mean and standard deviation, and optionally resized with bilinear interpolation on the
/// target device, as d2l's `Resize(224)` does for its NiN (half-pixel centres, which is what
/// bilinear resizing in PIL and PyTorch uses).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageBatcher {
    /// Height and width to resize to; `None` keeps the images' size.
    pub resize: Option<[usize; 2]>,
    /// `(mean, std)` to normalise with after scaling to `[0, 1]`; `None` leaves `[0, 1]`.
    pub normalize: Option<(f32, f32)>,
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

    /// Normalise to `(x − mean) / std` after scaling.
    pub fn with_normalize(mut self, mean: f32, std: f32) -> Self {
        self.normalize = Some((mean, std));
        self
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    /// # Panics
    ///
    /// If `items` is empty or the images differ in size: a dataset yields equal sizes, so
    /// either means the caller mixed datasets.
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let first = items
            .first()
            .expect("ImageBatcher::batch needs at least one item");
        let [h, w] = [first.height, first.width];
        let mut pixels = Vec::with_capacity(items.len() * h * w);
        let mut targets = Vec::with_capacity(items.len());
        for item in &items {
            assert_eq!(
                [item.height, item.width],
                [h, w],
                "ImageBatcher::batch got images of different sizes"
            );
            pixels.extend_from_slice(&item.pixels);
            targets.push(item.label as i64);
        }
        // Bytes go to the device as they are; scaling happens there, not in a CPU loop.
        let bytes =
            Tensor::<1, Int>::from_data(TensorData::new(pixels, [items.len() * h * w]), device);
        let mut images = (bytes.float() / 255.0).reshape([items.len(), 1, h, w]);
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
        if let Some((mean, std)) = self.normalize {
            images = (images - mean) / std;
        }
        let targets = Tensor::from_data(TensorData::new(targets, [items.len()]), device);
        ImageBatch { images, targets }
    }
}
