//! The direct convolution on the blocked layout, with bias (the batch norm folded in) and ReLU.
//!
//! A tile is up to `R` output pixels of one row, or of two rows where rows are short and both
//! fit (at AVX-512, a 6×6 map's: twice the pixels for each weight vector loaded), by two
//! vectors of output channels.
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

/// Channels of a block a tile takes between loop counts on blocked input.
const UNROLLED_CHANNELS: usize = 4;
const _: () = assert!(BLOCK.is_multiple_of(UNROLLED_CHANNELS));

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
        self.groups(level.lanes()) * Segments::of(self, output).count()
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

/// How a convolution's output is cut into segments: with a group of output channels, the units
/// of work.
#[derive(Clone, Copy, Debug)]
enum Segments {
    /// A 1×1 layer without stride, padding or borders reads and writes whole maps as one long
    /// row: parts of [`Segments::FLAT_LENGTH`] pixels of it.
    Flat { count: usize },
    /// Runs of `rows` output rows, each row's pixels read from one row of each input tap.
    Rows { count: usize, rows: usize },
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
            return Self::Flat {
                count: pixels.div_ceil(Self::FLAT_LENGTH),
            };
        }
        // Short rows go in pairs where a pair can be one tile: on the blocked layout without a
        // stride across, so that its pixels are a fixed distance apart. A level whose tiles are
        // narrower than the pair computes the two rows one after the other.
        let pairs = output.width <= Self::SHORT_ROW
            && conv.input == Packing::Blocked
            && conv.stride[1] == 1;
        let rows = if pairs { 2 } else { 1 };
        Self::Rows {
            count: output.height.div_ceil(rows),
            rows,
        }
    }

    fn count(self) -> usize {
        match self {
            Self::Flat { count } | Self::Rows { count, .. } => count,
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
    /// The `STEP` tiles are compiled for ([`tile`]) at the levels that specialise them
    /// ([`specialised`]; the others compile 0 only): [`BLOCK`] on blocked input without a
    /// stride across, 1 on planes without one, else 0 (the step read at run time).
    compiled_step: usize,
    /// Whether the input is blocked (else planes).
    blocked: bool,
    /// Input values between a two-row tile's rows.
    row_step: usize,
    /// Output values between a two-row tile's rows (neighbouring pixels are [`BLOCK`] apart:
    /// the output is blocked).
    output_row: usize,
    /// Output values between blocks of channels.
    output_block: usize,
    /// Packed weights of one block of output channels.
    weights_per_block: usize,
    relu: bool,
}

/// The output channels of a unit: the first of each of its vectors, and how many vectors it
/// has (one where the last group reaches past the last block).
#[derive(Clone, Copy)]
struct Group {
    channels: [usize; TILE_VECTORS],
    vectors: usize,
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
        let shape = TileShape {
            input,
            kernel: conv.kernel,
            pixel_step: conv.stride[1] * input.pixel,
            compiled_step: match (conv.input, conv.stride[1]) {
                (Packing::Blocked, 1) => BLOCK,
                (Packing::Planes, 1) => 1,
                _ => 0,
            },
            blocked: conv.input == Packing::Blocked,
            row_step: conv.stride[0] * input.row,
            output_row: output.row,
            output_block: output.block,
            weights_per_block: conv.weights.len() / conv.out_channels.div_ceil(BLOCK),
            relu: conv.relu,
        };
        let [height, width] = [self.output_map.height, self.output_map.width];
        let interior = self.output_map.interior();
        // The last group reaches past the last block where the blocks are odd and a group
        // spans two (16 lanes): it runs with one vector.
        let padded_channels = conv.out_channels.div_ceil(BLOCK) * BLOCK;
        for unit in self.units.clone() {
            let (group, segment) = (unit / segments.count(), unit % segments.count());
            let first_channel = group * channels_per_group;
            // Only where a vector is a whole block can a group have one vector: with narrower
            // vectors, a group is whole blocks. Written so that the compiler sees it, and
            // compiles no one-vector tiles for those levels (the browser module's size).
            let vectors = if lanes >= BLOCK {
                ((padded_channels - first_channel) / lanes).min(TILE_VECTORS)
            } else {
                TILE_VECTORS
            };
            let group = Group {
                channels: std::array::from_fn(|v| first_channel + v.min(vectors - 1) * lanes),
                vectors,
            };
            match segments {
                Segments::Flat { .. } => {
                    let start = segment * Segments::FLAT_LENGTH;
                    let pixels = Segments::FLAT_LENGTH.min(height * width - start);
                    let (input, output) = (start * input.pixel, start * output.pixel);
                    self.row_tiles::<S, R>(simd, shape, group, pixels, input, output);
                }
                Segments::Rows { rows, .. } => {
                    let first = segment * rows;
                    let rows = rows.min(height - first);
                    let input = first * shape.row_step;
                    let output = interior + first * output.row;
                    if rows == 2 && 2 * width <= R && specialised::<S>() {
                        // `Segments::of` pairs rows only on blocked input without a stride
                        // across, the tiles of `STEP = BLOCK`.
                        debug_assert_eq!(shape.compiled_step, BLOCK);
                        // SAFETY: both rows' windows lie inside the padded input and their
                        // pixels inside the output (`run`'s contract), and the step is the
                        // compiled one.
                        unsafe {
                            let at = self.tile_at(shape, group, input, output);
                            if vectors == TILE_VECTORS {
                                tile_any::<S, 2, R, BLOCK, 2>(simd, &at, shape, 2 * width);
                            } else {
                                tile_any::<S, 1, R, BLOCK, 2>(simd, &at, shape, 2 * width);
                            }
                        }
                    } else {
                        for row in 0..rows {
                            let input = input + row * shape.row_step;
                            let output = output + row * shape.output_row;
                            self.row_tiles::<S, R>(simd, shape, group, width, input, output);
                        }
                    }
                }
            }
        }
    }

    /// `pixels` output pixels of one row (or of the flattened map) for the channels of
    /// `group`, from offsets `input` and `output` in the maps on, as tiles of at most `R`.
    #[inline(always)]
    fn row_tiles<S: Simd, const R: usize>(
        &self,
        simd: S,
        shape: TileShape,
        group: Group,
        pixels: usize,
        input: usize,
        output: usize,
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
                let input = input + done * shape.pixel_step;
                self.tile_at(shape, group, input, output + done * BLOCK)
            };
            // SAFETY: as above; `STEP` is the compiled step.
            unsafe {
                match (group.vectors == TILE_VECTORS, shape.compiled_step) {
                    (true, _) if !specialised::<S>() => {
                        tile_any::<S, 2, R, 0, 1>(simd, &at, shape, r)
                    }
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

    /// Where a tile of `group`'s channels starts, at offsets `input` and `output` in the maps.
    ///
    /// # Safety
    ///
    /// The offsets and channels must be inside the maps, the packed weights and the bias.
    #[inline(always)]
    unsafe fn tile_at(
        &self,
        shape: TileShape,
        group: Group,
        input: usize,
        output: usize,
    ) -> TileAt {
        let weights = self.conv.weights.as_ptr();
        // SAFETY: the caller's promise.
        unsafe {
            TileAt {
                input: self.input.as_ptr().add(input),
                weights: group
                    .channels
                    .map(|c| weights.add((c / BLOCK) * shape.weights_per_block + c % BLOCK)),
                bias: group.channels.map(|c| self.conv.bias.as_ptr().add(c)),
                output: group.channels.map(|c| {
                    self.output
                        .add((c / BLOCK) * shape.output_block + c % BLOCK + output)
                }),
            }
        }
    }
}

/// Whether level `S` compiles tiles for a pixel step known in advance and for pairs of rows:
/// every vector level, but not the portable one, which is there to check the others, and not
/// in WebAssembly, where the browser page classified more slowly with them and its module grew
/// close to its 4 MiB budget (docs/performance.md).
const fn specialised<S: Simd>() -> bool {
    S::F32_LANES > 1 && !cfg!(target_arch = "wasm32")
}

/// [`tile`] for `r ≤ R` pixels (a multiple of `ROWS`), each count compiled on its own so that
/// the accumulators stay in registers.
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

/// One tile: `N` output pixels (`ROWS` rows of `N / ROWS`) by `V` vectors of output channels,
/// each the bias plus the sum over input channels and taps, then the ReLU (which keeps NaN, so
/// that a diverging network shows).
///
/// # Safety
///
/// `at` must point at the first pixel's window in the input, the first of the tile's channels
/// in the packed weights and bias, and the first pixel's channels in the output, with every
/// value `shape` reaches from there inside its buffer: neighbouring pixels `shape.pixel_step`
/// apart in the input and [`BLOCK`] in the output, and with `ROWS = 2` the second row
/// `shape.row_step` and `shape.output_row` after the first. `STEP` must be 0 or
/// `shape.compiled_step`: [`BLOCK`] only on blocked input.
#[inline(always)]
unsafe fn tile<S: Simd, const V: usize, const N: usize, const STEP: usize, const ROWS: usize>(
    simd: S,
    at: &TileAt,
    shape: TileShape,
) {
    // On blocked input without a stride across (`STEP == BLOCK`) a block's channels are
    // `BLOCK` neighbouring values. With their count and distance constants, the channel loop
    // unrolls and every load is a fixed offset from the tap's pointers: no index arithmetic
    // between the multiply-adds, which at AVX2 would take turns on the two ports that run
    // 256-bit multiply-adds (docs/performance.md).
    let s = shape.input;
    let (channels, input_pixel) = if STEP == BLOCK {
        (BLOCK, BLOCK)
    } else {
        (s.channels_per_block, s.pixel)
    };
    // SAFETY (of every `load`): the caller's pointers have a whole vector behind them.
    let bias: [S::f32s; V] = std::array::from_fn(|v| unsafe { load::<S>(at.bias[v]) });
    let mut acc = [bias; N];
    let [kh, kw] = shape.kernel;
    for block in 0..s.blocks {
        if STEP == BLOCK {
            for ky in 0..kh {
                // SAFETY: inside the input window (the caller's promise).
                let row = unsafe { at.input.add(block * s.block + ky * s.row) };
                for kx in 0..kw {
                    let tap = (block * kh + ky) * kw + kx;
                    // SAFETY: inside the packed weights and the input window.
                    let (weights, x) = unsafe {
                        (
                            at.weights.map(|w| w.add(tap * channels * BLOCK)),
                            row.add(kx * input_pixel),
                        )
                    };
                    for first in (0..BLOCK).step_by(UNROLLED_CHANNELS) {
                        // SAFETY: the channels are in the block (the caller's promise).
                        let (weights, x) =
                            unsafe { (weights.map(|w| w.add(first * BLOCK)), x.add(first)) };
                        for channel in 0..UNROLLED_CHANNELS {
                            // SAFETY: as above.
                            unsafe {
                                multiply_add::<S, V, N, STEP, ROWS>(
                                    simd,
                                    &mut acc,
                                    weights.map(|w| w.add(channel * BLOCK)),
                                    x.add(channel),
                                    shape,
                                )
                            };
                        }
                    }
                }
            }
        } else if !specialised::<S>() || (STEP == 0 && shape.blocked) {
            // Blocked input with a stride across (`STEP = 1` is planes only), and every tile of
            // the levels that do not specialise them (the portable one and WebAssembly, whose
            // module keeps its size): each tap's channels innermost, as the weights lie.
            for ky in 0..kh {
                // SAFETY: inside the input window (the caller's promise).
                let row = unsafe { at.input.add(block * s.block + ky * s.row) };
                for kx in 0..kw {
                    let tap = (block * kh + ky) * kw + kx;
                    for channel in 0..channels {
                        // SAFETY: inside the packed weights and the input window.
                        unsafe {
                            multiply_add::<S, V, N, STEP, ROWS>(
                                simd,
                                &mut acc,
                                at.weights
                                    .map(|w| w.add((tap * channels + channel) * BLOCK)),
                                row.add(kx * input_pixel + channel * s.channel),
                                shape,
                            )
                        };
                    }
                }
            }
        } else {
            // Planes (the first layer: one or a few channels, many taps): the taps of one
            // channel innermost, each a fixed distance on from the last in the weights and the
            // input, rather than a channel loop of one or three rounds around each tap.
            for channel in 0..channels {
                for ky in 0..kh {
                    let first_tap = (block * kh + ky) * kw;
                    // SAFETY: inside the packed weights and the input window.
                    let (weights, row) = unsafe {
                        (
                            at.weights
                                .map(|w| w.add((first_tap * channels + channel) * BLOCK)),
                            at.input
                                .add(block * s.block + ky * s.row + channel * s.channel),
                        )
                    };
                    for kx in 0..kw {
                        // SAFETY: as above.
                        unsafe {
                            multiply_add::<S, V, N, STEP, ROWS>(
                                simd,
                                &mut acc,
                                weights.map(|w| w.add(kx * channels * BLOCK)),
                                row.add(kx * input_pixel),
                                shape,
                            )
                        };
                    }
                }
            }
        }
    }
    let zero = simd.splat_f32s(0.0);
    for (pixel, acc) in acc.iter().enumerate() {
        let (tile_row, column) = (pixel / (N / ROWS), pixel % (N / ROWS));
        let offset = tile_row * shape.output_row + column * BLOCK;
        for (&value, &output) in acc.iter().zip(&at.output) {
            let value = if !shape.relu {
                value
            } else if specialised::<S>() {
                // One instruction: x86's maximum gives its second operand where either is NaN,
                // and NEON's gives NaN, so NaN stays NaN (held by the tests at each level).
                simd.max_f32s(zero, value)
            } else {
                simd.select_f32s(simd.less_than_f32s(value, zero), zero, value)
            };
            // SAFETY: inside the output (the caller's promise).
            unsafe { (output.add(offset) as *mut S::f32s).write_unaligned(value) };
        }
    }
}

/// One input channel of one tap into a [`tile`]'s accumulators: its `V` weight vectors, at
/// `weights`, times each pixel's value, at the pixel's offset from `x`.
///
/// # Safety
///
/// As [`tile`], for the channel and tap whose weights and first pixel's value `weights` and `x`
/// point at.
#[inline(always)]
unsafe fn multiply_add<
    S: Simd,
    const V: usize,
    const N: usize,
    const STEP: usize,
    const ROWS: usize,
>(
    simd: S,
    acc: &mut [[S::f32s; V]; N],
    weights: [*const f32; TILE_VECTORS],
    x: *const f32,
    shape: TileShape,
) {
    // A step known at compile time (blocked input or planes, without a stride across) makes
    // each pixel's value a fixed offset from one pointer, instead of a pointer of its own held
    // in a register.
    let pixel_step = if STEP == 0 { shape.pixel_step } else { STEP };
    // SAFETY: inside the packed weights (the caller's promise).
    let w: [S::f32s; V] = std::array::from_fn(|v| unsafe { load::<S>(weights[v]) });
    for (pixel, acc) in acc.iter_mut().enumerate() {
        let (tile_row, column) = (pixel / (N / ROWS), pixel % (N / ROWS));
        let offset = tile_row * shape.row_step + column * pixel_step;
        // SAFETY: the pixel's value is inside the input window.
        let value = simd.splat_f32s(unsafe { *x.add(offset) });
        for (acc, &w) in acc.iter_mut().zip(&w) {
            *acc = simd.mul_add_e_f32s(w, value, *acc);
        }
    }
}

/// The vector of values at `p`.
///
/// # Safety
///
/// `p` must have a whole vector of values behind it.
#[inline(always)]
pub(super) unsafe fn load<S: Simd>(p: *const f32) -> S::f32s {
    // SAFETY: the caller's promise; the read is unaligned.
    unsafe { (p as *const S::f32s).read_unaligned() }
}
