//! `perf --layers` and `perf --gemm`: the convolution kernel layer by layer, and the matrix
//! products under it, on the shapes the NiN presets really run, against this machine's peak.

use std::time::Instant;

use nin::Nin;
use nin::Stage;
use nin::ops::ConvGeometry;
use nin::ops::flex_conv::{conv2d_backward, conv2d_forward};
use nin::ops::gemm::{MatRef, Threads};
use rayon::prelude::*;

/// Every convolution of `model` for a batch of `batch` images of `image` (`[C, H, W]`): a name
/// (`block.layer`) and its geometry.
pub fn conv_layers(model: &Nin, image: [usize; 3], batch: usize) -> Vec<(String, ConvGeometry)> {
    let [c, h, w] = image;
    let stages = model
        .stage_shapes([batch, c, h, w])
        .expect("a preset takes its own input size");
    let mut input = [batch, c, h, w];
    let mut layers = Vec::new();
    for (stage, shape) in stages {
        if let Stage::Block(index) = stage {
            let block = &model.blocks[index];
            let (stride, padding) = (block.stride(), block.padding());
            let mut x = input;
            // The k×k convolution, then the two 1×1 layers (stride 1, no padding).
            for (name, layer, stride, padding) in [
                ("conv", &block.conv, stride, padding),
                ("mlp1", &block.mlp1, 1, 0),
                ("mlp2", &block.mlp2, 1, 0),
            ] {
                let weight = layer.conv.weight.dims();
                let g = ConvGeometry::new(x, weight, [stride, stride], [padding, padding]);
                x = g.output_shape();
                layers.push((format!("{index}.{name}"), g));
            }
        }
        input = shape;
    }
    layers
}

/// Seconds of one call: the median of `reps` timed calls after `warmup` untimed ones.
pub fn median_seconds(warmup: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Seconds of the kernel's three passes over one layer: forward (with bias and ReLU), weight
/// and bias gradient, and input gradient (the backward pass with it, less the one without;
/// `None` when that difference is lost in the noise of the two timings).
pub struct LayerTimes {
    pub forward: f64,
    pub weight_grad: f64,
    pub input_grad: Option<f64>,
}

pub fn time_layer(g: &ConvGeometry, reps: usize) -> LayerTimes {
    let x = values(g.batch * g.input_image(), 1);
    let w = values(g.out_channels * g.patch_len(), 2);
    let b = values(g.out_channels, 3);
    let dy = values(g.batch * g.output_image(), 4);
    let forward = median_seconds(1, reps, || {
        std::hint::black_box(conv2d_forward(&x, &w, &b, g, true));
    });
    let weight_grad = median_seconds(1, reps, || {
        std::hint::black_box(conv2d_backward(&x, &w, &dy, g, false));
    });
    let both = median_seconds(1, reps, || {
        std::hint::black_box(conv2d_backward(&x, &w, &dy, g, true));
    });
    LayerTimes {
        forward,
        weight_grad,
        input_grad: (both > weight_grad).then_some(both - weight_grad),
    }
}

/// One matrix product `[m×k]·[k×n]` as the kernel runs it, over the patch matrices of `images`
/// images side by side; `rhs_transposed` when the right operand is read from transposed storage
/// (the weight gradient's `im2col(x)ᵀ`).
#[derive(Clone, Debug)]
pub struct Product {
    pub name: String,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub images: usize,
    pub rhs_transposed: bool,
}

impl Product {
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }
}

/// The three products of a layer as the kernel runs them on `threads` threads, each over as
/// many images side by side as the kernel puts in one product: forward `W·P(x)`, weight
/// gradient `dY·P(x)ᵀ` and input gradient `Wᵀ·dY` (before col2im); or, for a layer the kernel
/// runs through its mirror image (`ConvGeometry::preferred_mirror`), forward `W'ᵀ·x`
/// (before col2im), weight gradient `x·P'(dY)ᵀ` and input gradient `W'·P'(dY)`, with `W'` and
/// `P'` the mirror's weights and patch matrix.
pub fn layer_products(name: &str, g: &ConvGeometry, threads: usize) -> [Product; 3] {
    let images = g.images_per_product(g.batch.div_ceil(threads.max(1)));
    let product = |pass: &str, m, k, n, rhs_transposed| Product {
        name: format!("{name} {pass}"),
        m,
        k,
        n,
        images,
        rhs_transposed,
    };
    let (c, co) = (g.in_channels, g.out_channels);
    match g.preferred_mirror() {
        Some(mirror) => {
            let (k, p) = (mirror.patch_len(), images * mirror.output_plane());
            [
                product("fwd", k, c, p, false),
                product("dW", c, p, k, true),
                product("dX", c, k, p, false),
            ]
        }
        None => {
            let (k, p) = (g.patch_len(), images * g.output_plane());
            [
                product("fwd", co, k, p, false),
                product("dW", co, p, k, true),
                product("dX", k, co, p, false),
            ]
        }
    }
}

/// A matrix-product function with the signature of [`matmul`].
pub type Multiply = fn(&mut [f32], MatRef<'_>, MatRef<'_>, bool, Threads);

/// GFLOP/s of `product` through `multiply` run (a) as one product per thread on every thread
/// at once, the way the kernel splits a batch, summed over threads, and (b) as one product
/// spread over all threads.
pub fn time_product(product: &Product, multiply: Multiply, reps: usize) -> (f64, f64) {
    let threads = rayon::current_num_threads();
    let lhs = values(product.m * product.k, 5);
    let rhs = values(product.k * product.n, 6);
    let rhs_view = || {
        if product.rhs_transposed {
            MatRef::transposed(&rhs, product.k, product.n)
        } else {
            MatRef::row_major(&rhs, product.k, product.n)
        }
    };
    let lhs_view = MatRef::row_major(&lhs, product.m, product.k);
    // Enough repetitions inside one timing that a small product is not all overhead.
    let inner = (2e8 / product.flops()).ceil().clamp(1.0, 1000.0) as usize;
    let mut outputs = vec![vec![0f32; product.m * product.n]; threads];
    let split = median_seconds(1, reps, || {
        outputs.par_iter_mut().for_each(|out| {
            for _ in 0..inner {
                multiply(out, lhs_view, rhs_view(), false, Threads::One);
            }
        });
    });
    let mut out = vec![0f32; product.m * product.n];
    let threaded = median_seconds(1, reps, || {
        for _ in 0..inner {
            multiply(&mut out, lhs_view, rhs_view(), false, Threads::All);
        }
    });
    let flops = product.flops() * inner as f64;
    (flops * threads as f64 / split / 1e9, flops / threaded / 1e9)
}
