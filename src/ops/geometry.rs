//! The sizes of one 2-D convolution, and the index arithmetic of its windows: shared by the
//! flex and cube kernels.

/// Shapes of a convolution of `[N, C, H, W]` images with `[C_out, C, kh, kw]` weights, symmetric
/// zero padding, no dilation and no groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Images in the batch, `N`.
    pub batch: usize,
    /// Channels of an input image, `C`.
    pub in_channels: usize,
    /// `[H, W]` of an input image.
    pub input: [usize; 2],
    /// Channels of an output image, `C_out`.
    pub out_channels: usize,
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Step of the window, `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Zero padding on each side, `[top and bottom, left and right]`.
    pub padding: [usize; 2],
    /// `[H', W']` of an output map.
    pub output: [usize; 2],
}

impl ConvGeometry {
    /// The geometry of convolving `input` (`[N, C, H, W]`) with `weight` (`[C_out, C, kh, kw]`).
    ///
    /// # Panics
    ///
    /// If the channel counts differ or the window does not fit the padded input (the model
    /// checks input shapes before any convolution runs).
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Self {
        let [batch, in_channels, height, width] = input;
        let [out_channels, weight_channels, kh, kw] = weight;
        assert_eq!(
            in_channels, weight_channels,
            "conv2d: the input has {in_channels} channels, the weight expects {weight_channels}"
        );
        let side = |size: usize, kernel: usize, stride: usize, padding: usize| {
            let padded = size + 2 * padding;
            assert!(
                stride > 0 && padded >= kernel,
                "conv2d: a {kernel}-wide window with stride {stride} does not fit {size} + 2·{padding}"
            );
            (padded - kernel) / stride + 1
        };
        Self {
            batch,
            in_channels,
            input: [height, width],
            out_channels,
            kernel: [kh, kw],
            stride,
            padding,
            output: [
                side(height, kh, stride[0], padding[0]),
                side(width, kw, stride[1], padding[1]),
            ],
        }
    }

    /// Values in one patch, and rows of the patch matrix: `C·kh·kw`.
    ///
    /// ```
    /// use nin::ops::ConvGeometry;
    ///
    /// // d2l's second layer at batch 32.
    /// let g = ConvGeometry::new([32, 96, 26, 26], [256, 96, 5, 5], [1, 1], [2, 2]);
    /// assert_eq!((g.patch_len(), g.output_plane()), (2400, 676));
    /// assert_eq!(g.flops_forward(), 2 * 32 * 256 * 2400 * 676);
    /// ```
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// Positions in one output map, and columns of the patch matrix: `H'·W'`.
    pub fn output_plane(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Positions in one input map: `H·W`.
    pub fn input_plane(&self) -> usize {
        self.input[0] * self.input[1]
    }

    /// Values in one input image: `C·H·W`.
    pub fn input_image(&self) -> usize {
        self.in_channels * self.input_plane()
    }

    /// Values in one output image: `C_out·H'·W'`.
    pub fn output_image(&self) -> usize {
        self.out_channels * self.output_plane()
    }

    /// Shape of the output, `[N, C_out, H', W']`.
    pub fn output_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.out_channels,
            self.output[0],
            self.output[1],
        ]
    }

    /// Floating-point operations of the forward pass, two per multiply-add; the weight
    /// gradient and the input gradient cost as much each.
    pub fn flops_forward(&self) -> u64 {
        2 * (self.batch * self.out_channels * self.patch_len() * self.output_plane()) as u64
    }

    /// How many images' patch matrices the kernel puts side by side in one product when a
    /// thread has `images_per_thread` images: enough for 512 columns, at most all of them.
    pub fn images_per_product(&self, images_per_thread: usize) -> usize {
        MIN_PRODUCT_COLUMNS
            .div_ceil(self.output_plane().max(1))
            .clamp(1, images_per_thread.max(1))
    }

    /// The mirror image of this convolution, for stride 1: a convolution from the output
    /// space back to the input space, of `[N, C_out, H', W']` maps with the weights turned by
    /// 180° and their channel axes swapped (`[C, C_out, kh, kw]`), padded by `k − 1 − p`. Its
    /// forward pass is this convolution's input gradient, and its input gradient (its
    /// transpose) is this convolution's forward pass. `None` for a strided convolution, or when
    /// the padding is as wide as the window (the mirror would crop rather than pad).
    ///
    /// ```
    /// use nin::ops::ConvGeometry;
    ///
    /// // The last block of d2l's network: 384 channels in, 10 out.
    /// let g = ConvGeometry::new([32, 384, 5, 5], [10, 384, 3, 3], [1, 1], [1, 1]);
    /// let mirror = g.mirrored().unwrap();
    /// assert_eq!(mirror.output_shape(), [32, 384, 5, 5]);
    /// assert_eq!((mirror.patch_len(), mirror.padding), (10 * 9, [1, 1]));
    /// assert_eq!(g.preferred_mirror(), Some(mirror));
    /// ```
    pub fn mirrored(&self) -> Option<ConvGeometry> {
        let [kh, kw] = self.kernel;
        if self.stride != [1, 1] || self.padding[0] >= kh || self.padding[1] >= kw {
            return None;
        }
        Some(ConvGeometry::new(
            [
                self.batch,
                self.out_channels,
                self.output[0],
                self.output[1],
            ],
            [self.in_channels, self.out_channels, kh, kw],
            [1, 1],
            [kh - 1 - self.padding[0], kw - 1 - self.padding[1]],
        ))
    }

    /// The [mirror image](Self::mirrored) the kernel runs this convolution through, if any:
    /// the forward pass as the mirror's transpose (`col2im` of a product over the input) and
    /// the input gradient as the mirror's forward pass (a product over the patches of `dY`).
    ///
    /// Either form does the same arithmetic; they differ in the matrix they build and read
    /// again: the direct form one of `C·kh·kw` rows per output position, the mirrored form one
    /// of `C_out·kh·kw`. So the mirror is taken where a layer narrows, `C_out < C` (the last
    /// block's 10 classes), and only for windows larger than 1×1: a single image of a 1×1
    /// layer needs no patch matrix in the direct form.
    pub fn preferred_mirror(&self) -> Option<ConvGeometry> {
        if self.out_channels < self.in_channels && !self.is_pointwise() {
            self.mirrored()
        } else {
            None
        }
    }

    /// A 1×1 window with stride 1 and no padding: the patch matrix of an image is the image
    /// itself, `[C, H·W]`.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// Columns a product should have at least, when the images allow. A product over one image of
/// a late layer is narrow (d2l's 3×3 layer on 12×12 maps: 144 columns against 2,304 rows of
/// weights), and a product's fixed costs, packing the weights and reading and writing the whole
/// weight gradient, are paid per product: putting several images' patch matrices side by side
/// pays them once for all.
const MIN_PRODUCT_COLUMNS: usize = 512;

/// The output positions `o` in `0..outputs` whose window tap `offset` lands inside the input,
/// `0 ≤ o·stride + offset − padding < size`, as a range (empty when there are none).
#[cfg(feature = "flex")]
pub(crate) fn valid_outputs(
    outputs: usize,
    stride: usize,
    offset: usize,
    padding: usize,
    size: usize,
) -> std::ops::Range<usize> {
    let first = padding.saturating_sub(offset).div_ceil(stride);
    let end = (size + padding)
        .checked_sub(offset)
        .map_or(0, |room| room.div_ceil(stride))
        .min(outputs);
    first.min(end)..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "flex")]
    #[test]
    fn valid_outputs_are_exactly_the_taps_inside_the_input() {
        for size in 1..9 {
            for kernel in 1..=size + 4 {
                for stride in 1..4 {
                    for padding in 0..3 {
                        if size + 2 * padding < kernel {
                            continue;
                        }
                        let outputs = (size + 2 * padding - kernel) / stride + 1;
                        for offset in 0..kernel {
                            let expected: Vec<usize> = (0..outputs)
                                .filter(|o| {
                                    let at = (o * stride + offset) as isize - padding as isize;
                                    (0..size as isize).contains(&at)
                                })
                                .collect();
                            let range = valid_outputs(outputs, stride, offset, padding, size);
                            assert_eq!(range.collect::<Vec<_>>(), expected);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn d2l_first_layer_geometry() {
        let g = ConvGeometry::new([2, 1, 224, 224], [96, 1, 11, 11], [4, 4], [0, 0]);
        assert_eq!(g.output_shape(), [2, 96, 54, 54]);
        assert_eq!(g.patch_len(), 121);
        assert!(!g.is_pointwise());
    }
}
