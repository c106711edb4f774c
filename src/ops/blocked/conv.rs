//! The direct convolution on the blocked layout, with bias (the batch norm folded in) and ReLU.
//!
//! A tile is up to `R` output pixels of one row, or of two rows where rows are short (6×6 and
//! 2×2 maps: twice the pixels for each weight vector loaded), by two vectors of output channels.
//! Its accumulators stay in registers while every input channel and tap goes by: each step
//! loads the two weight vectors of one (input channel, tap) and multiplies them by that input
//! value of each pixel, broadcast. No patch matrix is built; the input is read where it lies.
//! Where neighbouring pixels' inputs are a fixed distance apart (blocked input without stride,
//! or planes without stride), that distance is a constant of the compiled tile, so each pixel's
//! value is an offset from one pointer rather than a pointer of its own in a register.

#![allow(unsafe_code)]

use std::ops::Range;

use pulp::{Simd, WithSimd};

use super::layout::{BLOCK, Map, Packing, Strides};
use crate::ops::simd::SimdLevel;

/// Vectors of output channels a tile computes (two weight loads per input value broadcast).
const TILE_VECTORS: usize = 2;

/// A convolution's weights and bias, packed for the kernel, and its geometry.
#[derive(Clone, Debug)]
pub(crate) struct PackedConv {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub relu: bool,
    /// How the input it reads is laid out.
    pub input: Packing,
    /// `[⌈C_out/16⌉][blocks of the input][kh][kw][channels per input block][16]`, zeros for
    /// channels past `C_out`.
    weights: Vec<f32>,
    /// `[⌈C_out/16⌉·16]`, zeros past `C_out`.
    bias: Vec<f32>,
}

/// A convolution's parameters as burn's `Conv2d` (and the `BatchNorm` after it) hold them.
pub(crate) struct ConvParameters<'a> {
    /// `[C_out, C, kh, kw]`, row-major.
    pub weight: &'a [f32],
    pub weight_shape: [usize; 4],
    /// `[C_out]`, or none for a zero bias.
    pub bias: Option<&'a [f32]>,
    /// `(scale, shift)` per output channel of the batch norm after the convolution, with its
    /// running statistics: `scale = γ / √(var + ε)`, `shift = β − mean·scale`.
    pub norm: Option<(Vec<f32>, Vec<f32>)>,
}

impl PackedConv {
    /// Packs `parameters` for a convolution reading an input laid out as `input`.
    pub(crate) fn new(
        parameters: ConvParameters<'_>,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
        input: Packing,
    ) -> Self {
        let [out_channels, in_channels, kh, kw] = parameters.weight_shape;
        let (input_blocks, per_block) = match input {
            Packing::Planes => (1, in_channels),
            Packing::Blocked => (in_channels.div_ceil(BLOCK), BLOCK),
        };
        let out_blocks = out_channels.div_ceil(BLOCK);
        let per_output_block = input_blocks * kh * kw * per_block * BLOCK;
        let mut weights = vec![0f32; out_blocks * per_output_block];
        let mut bias = vec![0f32; out_blocks * BLOCK];
        for o in 0..out_channels {
            let (scale, shift) = match &parameters.norm {
                Some((scale, shift)) => (scale[o], shift[o]),
                None => (1.0, 0.0),
            };
            let b = parameters.bias.map_or(0.0, |bias| bias[o]);
            bias[o] = b * scale + shift;
            for c in 0..in_channels {
                let (block, lane) = (c / per_block, c % per_block);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let at = (o / BLOCK) * per_output_block
                            + (((block * kh + ky) * kw + kx) * per_block + lane) * BLOCK
                            + o % BLOCK;
                        weights[at] =
                            parameters.weight[((o * in_channels + c) * kh + ky) * kw + kx] * scale;
                    }
                }
            }
        }
        Self {
            in_channels,
            out_channels,
            kernel: [kh, kw],
            stride,
            padding,
            relu,
            input,
            weights,
            bias,
        }
    }

    /// `[H', W']` of the output for an input of `[height, width]`, or `None` when the window
    /// does not fit.
    pub(crate) fn output_size(&self, [height, width]: [usize; 2]) -> Option<[usize; 2]> {
        let side = |size: usize, axis: usize| {
            let padded = size + 2 * self.padding[axis];
            (padded >= self.kernel[axis])
                .then(|| (padded - self.kernel[axis]) / self.stride[axis] + 1)
        };
        Some([side(height, 0)?, side(width, 1)?])
    }

    /// The units of work of one image at `level`, as [`run`](Self::run) numbers them: each is
    /// one segment of output pixels for one group of output channels.
    pub(crate) fn units(&self, level: SimdLevel, output: &Map) -> usize {
        self.groups(level.lanes()) * Segments::of(self, output).count
    }

    fn groups(&self, lanes: usize) -> usize {
        (self.out_channels.div_ceil(BLOCK) * BLOCK).div_ceil(TILE_VECTORS * lanes)
    }

    /// Computes units `units` (of [`units`](Self::units)) of the output `output` from `input`,
    /// laid out as the maps say, at `level`.
    ///
    /// # Safety
    ///
    /// `input` must hold `input_map.len()` values and `output` must be valid for writes of
    /// `output_map.len()` values; nothing else may read or write the part of `output` these
    /// units write while this runs (other threads may run other units). The maps must be the
    /// ones this convolution reads and writes: `input_map` of its input packing and channels,
    /// `output_map` blocked, of `output_size` of the input's size.
    pub(crate) unsafe fn run(
        &self,
        level: SimdLevel,
        input: &[f32],
        input_map: &Map,
        output: *mut f32,
        output_map: &Map,
        units: Range<usize>,
    ) {
        debug_assert_eq!(input.len(), input_map.len());
        debug_assert_eq!(input_map.packing, self.input);
        debug_assert_eq!(input_map.border, self.padding);
        debug_assert_eq!(output_map.packing, Packing::Blocked);
        debug_assert_eq!(
            self.output_size([input_map.height, input_map.width]),
            Some([output_map.height, output_map.width])
        );
        let op = ConvUnits {
            conv: self,
            input,
            input_map,
            output,
            output_map,
            units,
        };
        if level.run(op).is_none() {
            unreachable!("the blocked path runs at an available level")
        }
    }
}

/// How a convolution's output is cut into segments: runs of output pixels that lie in one row
/// of the output (or in two rows, when rows are short) and are read from one row of each input
/// tap. A 1×1 layer without stride, padding or borders reads and writes whole maps as one long
/// row, cut into equal parts.
#[derive(Clone, Copy, Debug)]
struct Segments {
    count: usize,
    /// Pixels per segment (the last may have fewer).
    length: usize,
    /// Whether segments are parts of the flattened map rather than rows.
    flat: bool,
    /// Rows per segment, when they are rows: 2 where rows are at most [`Self::SHORT_ROW`]
    /// pixels, so that a tile of both rows loads each weight vector for twice the pixels.
    rows: usize,
}

impl Segments {
    /// Pixels of a flattened segment: a few tiles, so that two threads can share one image.
    const FLAT_LENGTH: usize = 48;

    /// The longest row that goes in a pair: half the widest tile.
    const SHORT_ROW: usize = 6;

    fn of(conv: &PackedConv, output: &Map) -> Self {
        let flat = conv.kernel == [1, 1]
            && conv.stride == [1, 1]
            && conv.padding == [0, 0]
            && conv.input == Packing::Blocked
            && output.border == [0, 0];
        if flat {
            let pixels = output.height * output.width;
            Self {
                count: pixels.div_ceil(Self::FLAT_LENGTH),
                length: Self::FLAT_LENGTH,
                flat: true,
                rows: 1,
            }
        } else {
            let rows = if output.width <= Self::SHORT_ROW {
                2
            } else {
                1
            };
            Self {
                count: output.height.div_ceil(rows),
                length: output.width,
                flat: false,
                rows,
            }
        }
    }
}

struct ConvUnits<'a> {
    conv: &'a PackedConv,
    input: &'a [f32],
    input_map: &'a Map,
    output: *mut f32,
    output_map: &'a Map,
    units: Range<usize>,
}

impl WithSimd for ConvUnits<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        // Accumulators for R pixels of two vectors, two weight vectors and a broadcast must
        // fit the register file.
        if S::F32_LANES == 1 {
            self.run::<S, 4>(simd);
        } else if S::REGISTER_COUNT >= 32 {
            self.run::<S, 12>(simd);
        } else {
            self.run::<S, 6>(simd);
        }
    }
}

/// Where one tile reads and writes.
struct TileAt {
    input: *const f32,
    weights: [*const f32; TILE_VECTORS],
    bias: [*const f32; TILE_VECTORS],
    output: [*mut f32; TILE_VECTORS],
}

/// What every tile of a convolution shares.
#[derive(Clone, Copy)]
struct TileShape {
    input: Strides,
    kernel: [usize; 2],
    /// Input values between neighbouring output pixels of a tile.
    pixel_step: usize,
    /// Input values between a two-row tile's rows.
    row_step: usize,
    /// Output values between a two-row tile's rows (neighbouring pixels are [`BLOCK`] apart:
    /// the output is blocked).
    output_row: usize,
    relu: bool,
}

impl ConvUnits<'_> {
    #[inline(always)]
    fn run<S: Simd, const R: usize>(self, simd: S) {
        let conv = self.conv;
        let lanes = S::F32_LANES;
        let input = self.input_map.strides();
        let output = self.output_map.strides();
        let segments = Segments::of(conv, self.output_map);
        let channels_per_group = TILE_VECTORS * lanes;
        let per_output_block = conv.weights.len() / conv.out_channels.div_ceil(BLOCK);
        let shape = TileShape {
            input,
            kernel: conv.kernel,
            pixel_step: conv.stride[1] * input.pixel,
            row_step: conv.stride[0] * input.row,
            output_row: output.row,
            relu: conv.relu,
        };
        // The last group reaches past the last block where the blocks are odd and a group
        // spans two (16 lanes): it runs with one vector.
        let padded_channels = conv.out_channels.div_ceil(BLOCK) * BLOCK;
        for unit in self.units.clone() {
            let (group, segment) = (unit / segments.count, unit % segments.count);
            let first_channel = group * channels_per_group;
            let vectors = ((padded_channels - first_channel) / lanes).min(TILE_VECTORS);
            let channel = |v: usize| first_channel + v.min(vectors - 1) * lanes;
            let (pixels, input_start, output_start) = if segments.flat {
                let start = segment * segments.length;
                let pixels = segments
                    .length
                    .min(self.output_map.height * self.output_map.width - start);
                (pixels, start * input.pixel, start * output.pixel)
            } else {
                let row = segment * segments.rows;
                let start = (
                    self.output_map.width,
                    row * shape.row_step,
                    self.output_map.interior() + row * output.row,
                );
                let width = self.output_map.width;
                let pair = segments.rows == 2 && row + 1 < self.output_map.height;
                if pair && 2 * width <= R && shape.pixel_step == BLOCK {
                    // Both rows in one tile.
                    let c = [channel(0), channel(1)];
                    // SAFETY: as for the tiles below.
                    unsafe {
                        let at = self.tile_at(c, per_output_block, start.1, start.2);
                        if vectors == TILE_VECTORS {
                            tile_any::<S, 2, R, BLOCK, 2>(simd, &at, shape, 2 * width);
                        } else {
                            tile_any::<S, 1, R, BLOCK, 2>(simd, &at, shape, 2 * width);
                        }
                    }
                    continue;
                }
                if pair {
                    // The rows one after the other.
                    self.row_tiles::<S, R>(
                        simd,
                        shape,
                        [channel(0), channel(1)],
                        vectors,
                        per_output_block,
                        width,
                        start.1,
                        start.2,
                    );
                    self.row_tiles::<S, R>(
                        simd,
                        shape,
                        [channel(0), channel(1)],
                        vectors,
                        per_output_block,
                        width,
                        start.1 + shape.row_step,
                        start.2 + output.row,
                    );
                    continue;
                }
                start
            };
            self.row_tiles::<S, R>(
                simd,
                shape,
                [channel(0), channel(1)],
                vectors,
                per_output_block,
                pixels,
                input_start,
                output_start,
            );
        }
    }

    /// The channels `c` of the pixels of one segment that lie in a row, from `input_start` and
    /// `output_start` on, as tiles of at most `R` pixels.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn row_tiles<S: Simd, const R: usize>(
        &self,
        simd: S,
        shape: TileShape,
        c: [usize; TILE_VECTORS],
        vectors: usize,
        per_output_block: usize,
        pixels: usize,
        input_start: usize,
        output_start: usize,
    ) {
        // Tiles of nearly equal sizes (13 pixels as 7 and 6, not 12 and 1): a tile of a few
        // pixels loads as many weights as a full one.
        let tiles = pixels.div_ceil(R);
        let mut done = 0;
        for tile in 0..tiles {
            let r = (tile + 1) * pixels / tiles - tile * pixels / tiles;
            // SAFETY: every offset below stays inside the maps: the tile's last pixel is
            // inside the segment, its window inside the padded input, and the channels
            // inside the packed weights and the output's blocks (`run`'s contract).
            let at = unsafe {
                self.tile_at(
                    c,
                    per_output_block,
                    input_start + done * shape.pixel_step,
                    output_start + done * BLOCK,
                )
            };
            // SAFETY: as above.
            unsafe {
                match (vectors == TILE_VECTORS, shape.pixel_step) {
                    (true, BLOCK) => tile_any::<S, 2, R, BLOCK, 1>(simd, &at, shape, r),
                    (true, 1) => tile_any::<S, 2, R, 1, 1>(simd, &at, shape, r),
                    (true, _) => tile_any::<S, 2, R, 0, 1>(simd, &at, shape, r),
                    (false, BLOCK) => tile_any::<S, 1, R, BLOCK, 1>(simd, &at, shape, r),
                    (false, 1) => tile_any::<S, 1, R, 1, 1>(simd, &at, shape, r),
                    (false, _) => tile_any::<S, 1, R, 0, 1>(simd, &at, shape, r),
                }
            }
            done += r;
        }
    }

    /// Where a tile of channels `c` starts, at `input` and `output` (offsets in the maps).
    ///
    /// # Safety
    ///
    /// The offsets and channels must be inside the maps, the packed weights and the bias.
    #[inline(always)]
    unsafe fn tile_at(
        &self,
        c: [usize; TILE_VECTORS],
        per_output_block: usize,
        input: usize,
        output: usize,
    ) -> TileAt {
        let block = self.output_map.strides().block;
        // SAFETY: the caller's promise.
        unsafe {
            TileAt {
                input: self.input.as_ptr().add(input),
                weights: c.map(|c| {
                    self.conv
                        .weights
                        .as_ptr()
                        .add((c / BLOCK) * per_output_block + c % BLOCK)
                }),
                bias: c.map(|c| self.conv.bias.as_ptr().add(c)),
                output: c.map(|c| self.output.add((c / BLOCK) * block + c % BLOCK + output)),
            }
        }
    }
}

/// [`tile`] for `r ≤ R` pixels, each count compiled on its own so that the accumulators stay
/// in registers.
///
/// # Safety
///
/// As [`tile`].
#[inline(always)]
unsafe fn tile_any<
    S: Simd,
    const V: usize,
    const R: usize,
    const STEP: usize,
    const ROWS: usize,
>(
    simd: S,
    at: &TileAt,
    shape: TileShape,
    r: usize,
) {
    macro_rules! counts {
        ($($n:literal)*) => {
            match r {
                $($n if $n <= R && $n % ROWS == 0 => unsafe { tile::<S, V, $n, STEP, ROWS>(simd, at, shape) },)*
                _ => unreachable!("a tile of {r} pixels, at most {R}"),
            }
        };
    }
    counts!(1 2 3 4 5 6 7 8 9 10 11 12)
}

/// One tile: `N` output pixels by `V` vectors of output channels, each the bias plus the sum
/// over input channels and taps, then the ReLU (which keeps NaN, so that a diverging network
/// shows).
///
/// # Safety
///
/// `at` must point at the first pixel's window in the input, the first of the tile's channels
/// in the packed weights and bias, and the first pixel's channels in the output, with every
/// value `shape` reaches from there inside its buffer.
#[inline(always)]
unsafe fn tile<S: Simd, const V: usize, const N: usize, const STEP: usize, const ROWS: usize>(
    simd: S,
    at: &TileAt,
    shape: TileShape,
) {
    // A step known at compile time (blocked input, no stride) makes each pixel's value a fixed
    // offset from one pointer, instead of a pointer of its own held in a register.
    let pixel_step = if STEP == 0 { shape.pixel_step } else { STEP };
    // SAFETY (of every `load`): the caller's pointers have a whole vector behind them.
    let bias: [S::f32s; V] = std::array::from_fn(|v| unsafe { load::<S>(at.bias[v]) });
    let mut acc = [bias; N];
    let [kh, kw] = shape.kernel;
    let s = shape.input;
    for block in 0..s.blocks {
        for ky in 0..kh {
            // SAFETY: inside the input window (the caller's promise).
            let row = unsafe { at.input.add(block * s.block + ky * s.row) };
            for kx in 0..kw {
                let tap = (block * kh + ky) * kw + kx;
                for channel in 0..s.channels_per_block {
                    let w_at = (tap * s.channels_per_block + channel) * BLOCK;
                    // SAFETY: inside the packed weights.
                    let w: [S::f32s; V] =
                        std::array::from_fn(|v| unsafe { load::<S>(at.weights[v].add(w_at)) });
                    // SAFETY: inside the input window.
                    let x = unsafe { row.add(kx * s.pixel + channel * s.channel) };
                    for (pixel, acc) in acc.iter_mut().enumerate() {
                        let (row, column) = (pixel / (N / ROWS), pixel % (N / ROWS));
                        let at = row * shape.row_step + column * pixel_step;
                        // SAFETY: the pixel's value is inside the input window.
                        let value = simd.splat_f32s(unsafe { *x.add(at) });
                        for (acc, &w) in acc.iter_mut().zip(&w) {
                            *acc = simd.mul_add_e_f32s(w, value, *acc);
                        }
                    }
                }
            }
        }
    }
    let zero = simd.splat_f32s(0.0);
    for (pixel, acc) in acc.iter().enumerate() {
        let (row, column) = (pixel / (N / ROWS), pixel % (N / ROWS));
        let at_pixel = row * shape.output_row + column * BLOCK;
        for (&value, &output) in acc.iter().zip(&at.output) {
            let value = if shape.relu {
                simd.select_f32s(simd.less_than_f32s(value, zero), zero, value)
            } else {
                value
            };
            // SAFETY: inside the output (the caller's promise).
            unsafe { (output.add(at_pixel) as *mut S::f32s).write_unaligned(value) };
        }
    }
}

/// The vector of values at `p`.
///
/// # Safety
///
/// `p` must have a whole vector of values behind it.
#[inline(always)]
unsafe fn load<S: Simd>(p: *const f32) -> S::f32s {
    // SAFETY: the caller's promise; the read is unaligned.
    unsafe { (p as *const S::f32s).read_unaligned() }
}
