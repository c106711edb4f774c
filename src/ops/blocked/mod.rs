//! Inference on flex in a blocked channel layout: the whole network in one call, image by image.
//!
//! Activations after the first layer are `[⌈C/16⌉][H][W][16]` and stay so up to the logits:
//! every convolution is direct (`conv`), with the batch norm folded into its weights once per
//! model and its bias and ReLU applied in registers; the max pools and the global average work
//! on the same layout (`pool`). [`InferenceCache`] keeps a model's packed plan and rebuilds it
//! only when a parameter changes. Tested against burn's modules (tests/blocked.rs) and, at each
//! SIMD level the CPU has, against the portable level (below).

mod conv;
mod layout;
mod plan;
mod pool;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};

use burn::backend::Flex;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::{Tensor, TensorData};
use burn_flex::FlexTensor;

use self::conv::{ConvParameters, PackedConv};
use self::layout::Packing;
use self::plan::{Plan, Step, Unsupported};
use self::pool::MaxPool;
use super::composed::symmetric_padding;
use super::flex::f32_values;
use super::simd::SimdLevel;

/// One stage of a network, as the blocked path takes it.
pub(crate) enum NetworkStage<'a> {
    /// A convolution, the batch norm after it (applied with its running statistics) if any,
    /// and a ReLU if `relu`.
    Conv {
        conv: &'a Conv2d,
        norm: Option<&'a BatchNorm>,
        relu: bool,
    },
    MaxPool(&'a MaxPool2d),
    /// The mean of each map; the last stage.
    GlobalAvgPool,
}

/// A model's packed plans, kept between calls and rebuilt when a parameter tensor is another
/// one than a plan was packed from (after an optimiser step or a load). Copies of a model
/// (`clone`, `valid`, `to_device`) share them: they hold the same parameter tensors, so a plan
/// fits them all until one of them changes a parameter and packs its own.
#[derive(Clone, Default)]
pub(crate) struct InferenceCache {
    /// The plans used last, oldest first: at most [`KEPT_PLANS`].
    cached: Arc<Mutex<Vec<Arc<Cached>>>>,
}

/// Plans a cache keeps: a network's logits and its pooled features, or two copies of a model
/// whose parameters have diverged, without packing again on every call.
const KEPT_PLANS: usize = 2;

#[cfg(test)]
thread_local! {
    /// Plans packed on this thread: what the tests of the cache count.
    pub(crate) static PACKINGS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl std::fmt::Debug for InferenceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InferenceCache")
    }
}

/// A plan with what it was packed from.
struct Cached {
    key: Vec<Source>,
    plan: Result<Plan, Unsupported>,
}

/// What a plan depends on: a parameter tensor (held, so that its storage is neither freed nor
/// written in place while the plan refers to it) or a number of a layer's geometry.
enum Source {
    Tensor(FlexTensor),
    Number(usize),
    Value(f64),
}

impl Source {
    fn same(&self, other: &Source) -> bool {
        match (self, other) {
            (Source::Tensor(a), Source::Tensor(b)) => {
                let (a_values, b_values) = (a.storage::<f32>(), b.storage::<f32>());
                std::ptr::eq(a_values, b_values) && a.layout() == b.layout()
            }
            (Source::Number(a), Source::Number(b)) => a == b,
            (Source::Value(a), Source::Value(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl InferenceCache {
    /// Logits `[N, classes]` of `images` through `stages`, on the blocked path; `None` where
    /// it does not take them: not `f32` images on flex without autodiff, or a stage it has no
    /// kernel for (padding that differs between sides, a pool with padding, dilation or
    /// groups).
    pub(crate) fn forward(
        &self,
        stages: &[NetworkStage<'_>],
        images: &Tensor<4>,
    ) -> Option<Tensor<2>> {
        let device = images.device();
        if device.is_autodiff() || !super::flex::runs_on_flex(&device, images.dtype()) {
            return None;
        }
        let cached = self.plan_for(key_of(stages)?, stages);
        let plan = cached.plan.as_ref().ok()?;
        let shape = images.dims();
        let flex = images.clone().try_into_primitive::<Flex>().ok()?;
        let logits = plan.forward(SimdLevel::active(), &f32_values(&flex), shape)?;
        let classes = logits.len() / shape[0];
        Some(Tensor::from_data(
            TensorData::new(logits, [shape[0], classes]),
            &device,
        ))
    }

    /// The plan packed from `stages`, whose sources are `key`: a kept one if it was packed
    /// from the same, else a new one, kept for the next calls in place of the oldest.
    fn plan_for(&self, key: Vec<Source>, stages: &[NetworkStage<'_>]) -> Arc<Cached> {
        let lock = || self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut cached = lock();
            let same = |kept: &Cached| {
                kept.key.len() == key.len() && kept.key.iter().zip(&key).all(|(a, b)| a.same(b))
            };
            if let Some(index) = cached.iter().position(|kept| same(kept)) {
                let kept = cached.remove(index);
                cached.push(Arc::clone(&kept));
                return kept;
            }
        }
        // Packed without the lock: copies of the model on other threads keep using their plans
        // meanwhile.
        #[cfg(test)]
        PACKINGS.with(|packings| packings.set(packings.get() + 1));
        let fresh = Arc::new(Cached {
            key,
            plan: pack(stages),
        });
        let mut cached = lock();
        if cached.len() == KEPT_PLANS {
            cached.remove(0);
        }
        cached.push(Arc::clone(&fresh));
        fresh
    }
}

/// The flex tensor behind `tensor`, or `None` when it lives elsewhere.
fn flex_of<const D: usize>(tensor: Tensor<D>) -> Option<FlexTensor> {
    tensor.try_into_primitive::<Flex>().ok()
}

/// Everything a plan of `stages` is packed from, or `None` when a parameter is not on flex.
fn key_of(stages: &[NetworkStage<'_>]) -> Option<Vec<Source>> {
    let mut key = Vec::new();
    for stage in stages {
        match stage {
            NetworkStage::Conv { conv, norm, relu } => {
                key.push(Source::Tensor(flex_of(conv.weight.val())?));
                if let Some(bias) = &conv.bias {
                    key.push(Source::Tensor(flex_of(bias.val())?));
                }
                if let Some(norm) = norm {
                    for tensor in [
                        norm.gamma.val(),
                        norm.beta.val(),
                        norm.running_mean.value(),
                        norm.running_var.value(),
                    ] {
                        key.push(Source::Tensor(flex_of(tensor)?));
                    }
                    key.push(Source::Value(norm.epsilon));
                }
                let numbers = [
                    conv.stride[0],
                    conv.stride[1],
                    conv.dilation[0],
                    conv.dilation[1],
                    conv.groups,
                    usize::from(*relu),
                ];
                key.extend(numbers.map(Source::Number));
                let padding = symmetric_padding(conv).map_or([usize::MAX; 2], |p| p);
                key.extend(padding.map(Source::Number));
            }
            NetworkStage::MaxPool(pool) => {
                let numbers = [
                    pool.kernel_size[0],
                    pool.kernel_size[1],
                    pool.stride[0],
                    pool.stride[1],
                    pool.dilation[0],
                    pool.dilation[1],
                    usize::from(pool.ceil_mode),
                ];
                key.extend(numbers.map(Source::Number));
                let unpadded = matches!(
                    pool.padding,
                    burn::nn::PaddingConfig2d::Valid
                        | burn::nn::PaddingConfig2d::Explicit(0, 0, 0, 0)
                );
                key.push(Source::Number(usize::from(unpadded)));
            }
            NetworkStage::GlobalAvgPool => key.push(Source::Number(usize::MAX)),
        }
    }
    Some(key)
}

/// The plan of `stages`: weights packed with each batch norm folded in.
fn pack(stages: &[NetworkStage<'_>]) -> Result<Plan, Unsupported> {
    let mut steps = Vec::with_capacity(stages.len());
    for stage in stages {
        steps.push(match stage {
            NetworkStage::Conv { conv, norm, relu } => {
                let input = if steps.is_empty() {
                    Packing::Planes
                } else {
                    Packing::Blocked
                };
                Step::Conv(pack_conv(conv, *norm, *relu, input)?)
            }
            NetworkStage::MaxPool(pool) => {
                let plain = matches!(
                    pool.padding,
                    burn::nn::PaddingConfig2d::Valid
                        | burn::nn::PaddingConfig2d::Explicit(0, 0, 0, 0)
                ) && pool.dilation == [1, 1]
                    && !pool.ceil_mode
                    && pool.stride.iter().chain(&pool.kernel_size).all(|&s| s > 0);
                if !plain {
                    return Err(Unsupported);
                }
                Step::MaxPool(MaxPool {
                    kernel: pool.kernel_size,
                    stride: pool.stride,
                })
            }
            NetworkStage::GlobalAvgPool => Step::GlobalAverage,
        });
    }
    Plan::new(steps)
}

fn pack_conv(
    conv: &Conv2d,
    norm: Option<&BatchNorm>,
    relu: bool,
    input: Packing,
) -> Result<PackedConv, Unsupported> {
    let padding = symmetric_padding(conv).ok_or(Unsupported)?;
    if conv.dilation != [1, 1] || conv.groups != 1 || conv.stride.contains(&0) {
        return Err(Unsupported);
    }
    let values = |tensor: Tensor<1>| -> Result<Vec<f32>, Unsupported> {
        let flex = flex_of(tensor).ok_or(Unsupported)?;
        Ok(f32_values(&flex).into_owned())
    };
    let weight = conv.weight.val();
    let weight_shape = weight.dims();
    let weight = flex_of(weight).ok_or(Unsupported)?;
    let bias = conv
        .bias
        .as_ref()
        .map(|bias| values(bias.val()))
        .transpose()?;
    let norm = match norm {
        Some(norm) => {
            let gamma = values(norm.gamma.val())?;
            let beta = values(norm.beta.val())?;
            let mean = values(norm.running_mean.value())?;
            let variance = values(norm.running_var.value())?;
            let epsilon = norm.epsilon as f32;
            let scale: Vec<f32> = gamma
                .iter()
                .zip(&variance)
                .map(|(g, v)| g / (v + epsilon).sqrt())
                .collect();
            let shift = beta
                .iter()
                .zip(&mean)
                .zip(&scale)
                .map(|((b, m), s)| b - m * s)
                .collect();
            Some((scale, shift))
        }
        None => None,
    };
    let parameters = ConvParameters {
        weight: &f32_values(&weight),
        weight_shape,
        bias: bias.as_deref(),
        norm,
    };
    Ok(PackedConv::new(
        parameters,
        conv.stride,
        padding,
        relu,
        input,
    ))
}

/// One convolution of the blocked inference path on its own, with random parameters and
/// inputs, for timing it beside the im2col kernel (`perf --layers`). Not a stable API.
#[doc(hidden)]
pub struct DirectConvLayer {
    conv: PackedConv,
    from: layout::Map,
    to: layout::Map,
    batch: usize,
    input: Vec<f32>,
}

impl DirectConvLayer {
    /// The layer of `g` with a ReLU; it reads planes where `g` has fewer than 16 input
    /// channels (a network's first layer), else blocked maps.
    pub fn new(g: &crate::ops::ConvGeometry) -> Self {
        let input = if g.in_channels < layout::BLOCK {
            Packing::Planes
        } else {
            Packing::Blocked
        };
        let [kh, kw] = g.kernel;
        let weight: Vec<f32> = (0..g.out_channels * g.in_channels * kh * kw)
            .map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        let parameters = ConvParameters {
            weight: &weight,
            weight_shape: [g.out_channels, g.in_channels, kh, kw],
            bias: None,
            norm: None,
        };
        let conv = PackedConv::new(parameters, g.stride, g.padding, true, input);
        let from = layout::Map {
            packing: input,
            channels: g.in_channels,
            height: g.input[0],
            width: g.input[1],
            border: g.padding,
        };
        let to = layout::Map {
            packing: Packing::Blocked,
            channels: g.out_channels,
            height: g.output[0],
            width: g.output[1],
            border: [0, 0],
        };
        let input: Vec<f32> = (0..g.batch * from.len())
            .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0)
            .collect();
        Self {
            conv,
            from,
            to,
            batch: g.batch,
            input,
        }
    }

    /// Convolves every image of the batch, an image per thread as inference does, and returns
    /// a sum of the outputs (so that nothing is optimised away).
    pub fn run(&self) -> f32 {
        let level = SimdLevel::active();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let total = Mutex::new(0f32);
        let threads = rayon::current_num_threads().max(1);
        super::team::run(threads, &|| {
            let mut output = super::scratch::Scratch::new(self.to.len());
            let mut sum = 0f32;
            loop {
                let image = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if image >= self.batch {
                    break;
                }
                let input = &self.input[image * self.from.len()..(image + 1) * self.from.len()];
                let units = 0..self.conv.units(level, &self.to);
                // SAFETY: `input` and `output` hold the maps, and this thread alone writes
                // `output`.
                #[allow(unsafe_code)]
                unsafe {
                    self.conv.run(
                        level,
                        input,
                        &self.from,
                        output.as_mut_ptr(),
                        &self.to,
                        units,
                    )
                };
                sum += output[0];
            }
            *total.lock().unwrap_or_else(PoisonError::into_inner) += sum;
        });
        total.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}
