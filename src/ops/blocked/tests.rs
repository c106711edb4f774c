//! The blocked kernels at every SIMD level the CPU has, against plain loops over `[C, H, W]`
//! planes and against the portable level.

use super::conv::{ConvParameters, PackedConv};
use super::layout::{BLOCK, Map, Packing, planes_with_border};
use super::plan::{Plan, Step};
use super::pool::{MaxPool, global_average};
use crate::ops::simd::SimdLevel;

/// Deterministic values in [-1, 1) with some exact zeros.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state.is_multiple_of(13) {
                0.0
            } else {
                (state % 2000) as f32 / 1000.0 - 1.0
            }
        })
        .collect()
}

/// A convolution's geometry and parameters in burn's layout.
struct Case {
    in_channels: usize,
    out_channels: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    input: [usize; 2],
    relu: bool,
    norm: bool,
}

impl Case {
    fn output(&self) -> [usize; 2] {
        [0, 1].map(|axis| {
            (self.input[axis] + 2 * self.padding[axis] - self.kernel[axis]) / self.stride[axis] + 1
        })
    }

    fn weight(&self) -> Vec<f32> {
        let [kh, kw] = self.kernel;
        values(self.out_channels * self.in_channels * kh * kw, 1)
    }

    fn bias(&self) -> Vec<f32> {
        values(self.out_channels, 2)
    }

    fn norm(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        self.norm.then(|| {
            let scale = values(self.out_channels, 3)
                .iter()
                .map(|v| 1.5 + v)
                .collect();
            (scale, values(self.out_channels, 4))
        })
    }

    fn packed(&self, input: Packing) -> PackedConv {
        let [kh, kw] = self.kernel;
        let (weight, bias) = (self.weight(), self.bias());
        let parameters = ConvParameters {
            weight: &weight,
            weight_shape: [self.out_channels, self.in_channels, kh, kw],
            bias: Some(&bias),
            norm: self.norm(),
        };
        PackedConv::new(parameters, self.stride, self.padding, self.relu, input)
    }

    /// The convolution by its definition, over `[C, H, W]` planes.
    fn reference(&self, image: &[f32]) -> Vec<f32> {
        let ([h, w], [oh, ow], [kh, kw]) = (self.input, self.output(), self.kernel);
        let (weight, bias, norm) = (self.weight(), self.bias(), self.norm());
        let mut out = vec![0f32; self.out_channels * oh * ow];
        for o in 0..self.out_channels {
            for y in 0..oh {
                for x in 0..ow {
                    let mut sum = bias[o];
                    for c in 0..self.in_channels {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy =
                                    (y * self.stride[0] + ky) as isize - self.padding[0] as isize;
                                let ix =
                                    (x * self.stride[1] + kx) as isize - self.padding[1] as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    sum += weight[((o * self.in_channels + c) * kh + ky) * kw + kx]
                                        * image[(c * h + iy as usize) * w + ix as usize];
                                }
                            }
                        }
                    }
                    if let Some((scale, shift)) = &norm {
                        sum = sum * scale[o] + shift[o];
                    }
                    // The ReLU keeps NaN, as the kernels' does.
                    out[(o * oh + y) * ow + x] = if self.relu && sum < 0.0 { 0.0 } else { sum };
                }
            }
        }
        out
    }
}

/// `[C, H, W]` planes into the interior of a blocked map.
fn to_blocked(planes: &[f32], map: &Map) -> Vec<f32> {
    let mut data = vec![0f32; map.len()];
    let s = map.strides();
    for c in 0..map.channels {
        for y in 0..map.height {
            for x in 0..map.width {
                let at =
                    (c / BLOCK) * s.block + map.interior() + y * s.row + x * s.pixel + c % BLOCK;
                data[at] = planes[(c * map.height + y) * map.width + x];
            }
        }
    }
    data
}

/// The interior of a blocked map as `[C, H, W]` planes; checks the border and the channels
/// past `C` hold zeros.
fn from_blocked(data: &[f32], map: &Map) -> Vec<f32> {
    let s = map.strides();
    let [rows, columns] = map.padded();
    let mut planes = vec![0f32; map.channels * map.height * map.width];
    for block in 0..s.blocks {
        for y in 0..rows {
            for x in 0..columns {
                for lane in 0..BLOCK {
                    let value = data[block * s.block + y * s.row + x * s.pixel + lane];
                    let c = block * BLOCK + lane;
                    let (iy, ix) = (y.wrapping_sub(map.border[0]), x.wrapping_sub(map.border[1]));
                    if c < map.channels && iy < map.height && ix < map.width {
                        planes[(c * map.height + iy) * map.width + ix] = value;
                    } else {
                        assert_eq!(
                            value, 0.0,
                            "border or padding channel at {block} {y} {x} {lane}"
                        );
                    }
                }
            }
        }
    }
    planes
}

/// `got` within 1e-4 of `expected` (relative above 1), NaN where it is NaN.
fn assert_close(what: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (index, (g, e)) in got.iter().zip(expected).enumerate() {
        if e.is_nan() {
            assert!(g.is_nan(), "{what}[{index}]: {g} where NaN was due");
            continue;
        }
        assert!(
            (g - e).abs() <= 1e-4 * e.abs().max(1.0),
            "{what}[{index}]: {g} against {e}"
        );
    }
}

/// Runs `conv` over `case`'s image at `level`, writing a map with `border`, its units in
/// `chunks` ranges in reverse order (as threads might take them).
fn run_conv(
    case: &Case,
    input: Packing,
    level: SimdLevel,
    border: [usize; 2],
    chunks: usize,
) -> Vec<f32> {
    let image = values(case.in_channels * case.input[0] * case.input[1], 5);
    run_conv_on(case, &image, input, level, border, chunks)
}

/// [`run_conv`] over `image`, checked against the definition.
fn run_conv_on(
    case: &Case,
    image: &[f32],
    input: Packing,
    level: SimdLevel,
    border: [usize; 2],
    chunks: usize,
) -> Vec<f32> {
    let conv = case.packed(input);
    let from = Map {
        packing: input,
        channels: case.in_channels,
        height: case.input[0],
        width: case.input[1],
        border: case.padding,
    };
    let data = match input {
        Packing::Planes => {
            let mut data = vec![0f32; from.len()];
            planes_with_border(image, &from, &mut data);
            data
        }
        Packing::Blocked => to_blocked(image, &from),
    };
    let [oh, ow] = case.output();
    let to = Map {
        packing: Packing::Blocked,
        channels: case.out_channels,
        height: oh,
        width: ow,
        border,
    };
    let mut output = vec![0f32; to.len()];
    let units = conv.units(level, &to);
    for part in (0..chunks).rev() {
        let range = part * units / chunks..(part + 1) * units / chunks;
        // SAFETY: the buffers hold the maps, and the ranges are run one after the other.
        #[allow(unsafe_code)]
        unsafe {
            conv.run(level, &data, &from, output.as_mut_ptr(), &to, range)
        };
    }
    let got = from_blocked(&output, &to);
    assert_close(
        &format!("{level:?} against the definition"),
        &got,
        &case.reference(image),
    );
    got
}

fn cases() -> Vec<(Case, Packing)> {
    let case = |c, o, k, s, p, input, relu, norm| Case {
        relu,
        norm,
        ..case_of(c, o, k, s, p, input)
    };
    vec![
        // d2l's first layer, smaller; compact's; three colour planes with stride 2.
        (
            case(1, 96, 11, 4, 0, [43, 47], true, false),
            Packing::Planes,
        ),
        (case(1, 32, 5, 1, 2, [28, 28], true, true), Packing::Planes),
        (case(3, 7, 3, 2, 1, [13, 10], false, false), Packing::Planes),
        // Several planes without a stride: the taps of each innermost, one plane after another.
        (case(3, 16, 3, 1, 1, [8, 9], true, false), Packing::Planes),
        // 1×1 layers: whole blocks, a part of one, more than one with a rest.
        (
            case(32, 32, 1, 1, 0, [9, 11], true, false),
            Packing::Blocked,
        ),
        (case(5, 33, 1, 1, 0, [7, 7], true, true), Packing::Blocked),
        (case(48, 10, 1, 1, 0, [2, 2], true, false), Packing::Blocked),
        // k×k layers with padding, a stride, a window as wide as the input.
        (
            case(17, 48, 3, 1, 1, [6, 13], true, false),
            Packing::Blocked,
        ),
        (case(16, 16, 5, 1, 2, [5, 5], false, true), Packing::Blocked),
        // Short rows in pairs: an odd one left over and a last group of one vector; a 6×6 map
        // (a pair is a whole AVX-512 tile); rows of one pixel; two rows apart in the input.
        (case(40, 40, 3, 1, 1, [7, 3], true, false), Packing::Blocked),
        (case(24, 40, 3, 1, 1, [6, 6], true, true), Packing::Blocked),
        (case(16, 16, 3, 1, 1, [5, 1], true, false), Packing::Blocked),
        (
            Case {
                stride: [2, 1],
                ..case(16, 32, 3, 1, 1, [9, 4], true, false)
            },
            Packing::Blocked,
        ),
        (case(20, 3, 2, 2, 0, [9, 8], true, false), Packing::Blocked),
        (case(128, 10, 3, 1, 1, [2, 2], true, true), Packing::Blocked),
    ]
}

#[test]
fn every_level_convolves_as_defined_and_as_the_portable_level() {
    for (case, input) in cases() {
        let portable = run_conv(&case, input, SimdLevel::Portable, [0, 0], 1);
        for level in SimdLevel::available() {
            for (border, chunks) in [([0, 0], 1), ([1, 2], 3), ([0, 0], 7)] {
                let got = run_conv(&case, input, level, border, chunks);
                assert_close(&format!("{level:?} against portable"), &got, &portable);
            }
        }
    }
}

#[test]
fn convolutions_and_their_relu_keep_nan() {
    // A diverging network must show as one: a NaN input reaches every output whose window
    // holds it, through the ReLU, at every level and on each path of the tile (planes, a k×k
    // layer on blocked input, a 1×1 layer).
    let cases = [
        (case_of(1, 32, 5, 1, 2, [12, 12]), Packing::Planes),
        (case_of(17, 48, 3, 1, 1, [6, 13]), Packing::Blocked),
        (case_of(32, 32, 1, 1, 0, [9, 11]), Packing::Blocked),
    ];
    for (case, input) in cases {
        let mut image = values(case.in_channels * case.input[0] * case.input[1], 5);
        image[case.input[1] * 3 + 4] = f32::NAN;
        for level in SimdLevel::available() {
            let got = run_conv_on(&case, &image, input, level, [0, 0], 1);
            assert!(got.iter().any(|v| v.is_nan()), "{level:?}: no NaN came out");
        }
    }
}

/// A convolution with a bias and a ReLU: `c` channels in, `o` out, a `k`×`k` kernel, stride `s`
/// and padding `p` on both axes.
fn case_of(c: usize, o: usize, k: usize, s: usize, p: usize, input: [usize; 2]) -> Case {
    Case {
        in_channels: c,
        out_channels: o,
        kernel: [k, k],
        stride: [s, s],
        padding: [p, p],
        input,
        relu: true,
        norm: false,
    }
}

#[test]
fn pools_take_the_maximum_and_keep_nan() {
    let (channels, height, width) = (20, 9, 8);
    let mut planes = values(channels * height * width, 9);
    // A NaN inside a window and one at a window's first value (row 2, column 4: the window at
    // output row 1, column 2); infinities that must stay themselves.
    planes[3] = f32::NAN;
    planes[2 * width + 4] = f32::NAN;
    planes[height * width + 5] = f32::INFINITY;
    // Channel 2's first window (rows 0–2, columns 0–1) all −∞.
    for (row, column) in (0..3).flat_map(|row| (0..2).map(move |column| (row, column))) {
        planes[(2 * height + row) * width + column] = f32::NEG_INFINITY;
    }
    let from = Map {
        packing: Packing::Blocked,
        channels,
        height,
        width,
        border: [0, 0],
    };
    let data = to_blocked(&planes, &from);
    let pool = MaxPool {
        kernel: [3, 2],
        stride: [2, 2],
    };
    let [oh, ow] = pool.output_size([height, width]).expect("fits");
    let to = Map {
        packing: Packing::Blocked,
        channels,
        height: oh,
        width: ow,
        border: [1, 1],
    };
    for level in SimdLevel::available() {
        let mut output = vec![0f32; to.len()];
        // SAFETY: the buffers hold the maps.
        #[allow(unsafe_code)]
        unsafe {
            pool.run(
                level,
                &data,
                &from,
                output.as_mut_ptr(),
                &to,
                0..pool.units(&to),
            )
        };
        let got = from_blocked(&output, &to);
        for c in 0..channels {
            for y in 0..oh {
                for x in 0..ow {
                    let window = (0..3).flat_map(|ky| (0..2).map(move |kx| (ky, kx)));
                    let values: Vec<f32> = window
                        .map(|(ky, kx)| planes[(c * height + 2 * y + ky) * width + 2 * x + kx])
                        .collect();
                    let value = got[(c * oh + y) * ow + x];
                    if values.iter().any(|v| v.is_nan()) {
                        assert!(value.is_nan(), "{level:?}: NaN lost at {c} {y} {x}");
                    } else {
                        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        assert_eq!(value, max, "{level:?} at {c} {y} {x}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_global_average_is_each_maps_mean() {
    let (channels, height, width) = (21, 3, 5);
    let planes = values(channels * height * width, 13);
    let map = Map {
        packing: Packing::Blocked,
        channels,
        height,
        width,
        border: [0, 0],
    };
    let data = to_blocked(&planes, &map);
    for level in SimdLevel::available() {
        let mut means = vec![0f32; channels];
        global_average(level, &data, &map, &mut means);
        let expected: Vec<f32> = planes
            .chunks_exact(height * width)
            .map(|plane| plane.iter().sum::<f32>() / (height * width) as f32)
            .collect();
        assert_close(&format!("{level:?}"), &means, &expected);
    }
}

/// A whole plan at every level gives what the portable level gives, for one image (the threads
/// share its steps) and several (an image per thread).
#[test]
fn every_level_runs_a_plan_as_the_portable_level() {
    let conv = |c, o, k, p, input| Case {
        in_channels: c,
        out_channels: o,
        kernel: [k, k],
        stride: [1, 1],
        padding: [p, p],
        input,
        relu: true,
        norm: true,
    };
    let pool = MaxPool {
        kernel: [3, 3],
        stride: [2, 2],
    };
    let plan = Plan::new(vec![
        Step::Conv(conv(3, 24, 5, 2, [0, 0]).packed(Packing::Planes)),
        Step::Conv(conv(24, 24, 1, 0, [0, 0]).packed(Packing::Blocked)),
        Step::MaxPool(pool),
        Step::Conv(conv(24, 40, 3, 1, [0, 0]).packed(Packing::Blocked)),
        Step::MaxPool(pool),
        Step::Conv(conv(40, 9, 3, 1, [0, 0]).packed(Packing::Blocked)),
        Step::GlobalAverage,
    ])
    .expect("a plan of the path's shape");
    for batch in [1, 5] {
        let shape = [batch, 3, 21, 19];
        let images = values(shape.iter().product(), 17);
        let portable = plan
            .forward(SimdLevel::Portable, &images, shape)
            .expect("fits");
        assert!(portable.iter().any(|&v| v != portable[0]));
        for level in SimdLevel::available() {
            let got = plan.forward(level, &images, shape).expect("fits");
            assert_close(&format!("{level:?}, batch {batch}"), &got, &portable);
        }
    }
    assert!(
        plan.forward(SimdLevel::Portable, &[0.0; 3 * 4 * 4], [1, 3, 4, 4])
            .is_none()
    );
}
