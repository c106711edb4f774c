//! Which convolution runs each pass: burn's or the lowered one, timed on first use of each
//! shape as `cudnn.benchmark` does.
//!
//! Design notes: `docs/design.md`, "ops::cube_conv::choice".

use std::sync::Mutex;

use burn::backend::ops::{ActivationOps, ConvOptions, ModuleOps};
use burn::tensor::DType;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeTuneId};
use cubecl::AutotuneKey;
use cubecl::tune::{LocalTuner, Tunable, TunableSet};
use serde::{Deserialize, Serialize};

use super::lowered;
use crate::ops::conv_settings::{ConvChoice, ConvKernel, ConvPass, ConvSettings};
use crate::ops::geometry::ConvGeometry;

/// What the autotuner chose for one pass of one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct TunedChoice {
    /// The pass.
    pub pass: ConvPass,
    /// The layer, at the batch of the call that made or read the choice: batches that cubecl's
    /// autotune anchors round alike share a choice.
    pub geometry: ConvGeometry,
    /// The float type.
    pub dtype: DType,
    /// The kernel that was faster.
    pub kernel: ConvKernel,
}

/// The choices so far, by the key they were made for.
static TUNED: Mutex<Vec<(ConvKey, TunedChoice)>> = Mutex::new(Vec::new());

/// Every choice the autotuner made, or read back from its cache, in this process.
pub fn tuned_choices() -> Vec<TunedChoice> {
    let tuned = TUNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tuned.iter().map(|(_, choice)| choice.clone()).collect()
}

/// Records `choice` as the one for `key`, once.
fn record(key: ConvKey, choice: TunedChoice) {
    let mut tuned = TUNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let known = tuned
        .iter()
        .any(|(known, recorded)| *known == key && recorded.pass == choice.pass);
    if !known {
        tuned.push((key, choice));
    }
}

/// The autotune key of a layer: its shape and float type.
#[derive(Hash, Eq, PartialEq, Debug, Clone, Serialize, Deserialize, AutotuneKey)]
struct ConvKey {
    #[autotune(anchor)]
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    relu: bool,
    dtype: DType,
}

/// What a pass takes: the input and weights, and the bias (forward) or the output gradient
/// (the gradients).
#[derive(Clone)]
pub(super) struct PassInputs {
    pub x: CubeTensor,
    pub weight: CubeTensor,
    pub other: CubeTensor,
    pub geometry: ConvGeometry,
    pub relu: bool,
    /// The caller's: which kernel, the column budget, where runs are counted.
    pub settings: ConvSettings,
}

fn key(inputs: &PassInputs) -> ConvKey {
    let g = &inputs.geometry;
    ConvKey::new(
        g.batch,
        g.in_channels,
        g.out_channels,
        g.input,
        g.kernel,
        g.stride,
        g.padding,
        inputs.relu,
        inputs.x.dtype,
    )
}

/// Runs `pass` with `kernel`.
fn run(pass: ConvPass, kernel: ConvKernel, inputs: PassInputs) -> CubeTensor {
    inputs.settings.count(pass, kernel);
    let budget = inputs.settings.column_budget_bytes;
    let PassInputs {
        x,
        weight,
        other,
        geometry: g,
        relu,
        settings: _,
    } = inputs;
    let options = || ConvOptions::new(g.stride, g.padding, [1, 1], 1);
    type B = CubeBackend;
    match (pass, kernel) {
        (ConvPass::Forward, ConvKernel::Burn) => {
            let output = B::conv2d(x, weight, Some(other), options());
            if relu { B::relu(output) } else { output }
        }
        (ConvPass::Forward, ConvKernel::Im2col) => {
            lowered::forward(&x, &weight, &other, &g, relu, budget)
        }
        (ConvPass::WeightGrad, ConvKernel::Burn) => {
            B::conv2d_weight_backward(x, weight, other, options())
        }
        (ConvPass::WeightGrad, ConvKernel::Im2col) => lowered::weight_grad(&x, &other, &g, budget),
        (ConvPass::InputGrad, ConvKernel::Burn) => {
            B::conv2d_x_backward(x, weight, other, options())
        }
        (ConvPass::InputGrad, ConvKernel::Im2col) => {
            lowered::input_grad(&weight, &other, &g, budget)
        }
    }
}

/// One tuner per pass: a tuner's results are indices into its one set of candidates.
static TUNERS: [LocalTuner<ConvKey, CubeTuneId>; 3] = [
    LocalTuner::new("nin-conv2d-forward"),
    LocalTuner::new("nin-conv2d-weight-grad"),
    LocalTuner::new("nin-conv2d-input-grad"),
];

/// `pass` by the kernel its settings choose. In f16 and bf16 the autotuner's pick is always this
/// crate's kernel: its products accumulate in f32, where burn 0.22's direct and transposed
/// convolution kernels accumulate in the half type, which loses the long sums of a weight
/// gradient (tests/precision.rs).
pub(super) fn run_pass(pass: ConvPass, inputs: PassInputs) -> CubeTensor {
    match inputs.settings.choice {
        ConvChoice::Always(kernel) => return run(pass, kernel, inputs),
        ConvChoice::Autotune if inputs.x.dtype != DType::F32 => {
            return run(pass, ConvKernel::Im2col, inputs);
        }
        ConvChoice::Autotune => {}
    }
    let tuner = &TUNERS[pass.index()];
    let client = inputs.x.client.clone();
    let id = CubeTuneId::new(&client, &inputs.x.device);
    let candidates = tuner.init(&id, move || {
        let candidate = |kernel: ConvKernel| {
            Tunable::identified(kernel, move |inputs: PassInputs| {
                Ok::<_, String>(run(pass, kernel, inputs))
            })
        };
        TunableSet::new(key, |_: &ConvKey, inputs: &PassInputs| inputs.clone())
            .with(candidate(ConvKernel::Burn))
            .with(candidate(ConvKernel::Im2col))
    });
    let key = key(&inputs);
    let (geometry, dtype) = (inputs.geometry, inputs.x.dtype);
    let output = tuner.execute(&id, &client, candidates.clone(), inputs);
    if let Some(kernel) = tuner.fastest_identity(&id, &candidates, &key) {
        let choice = TunedChoice {
            pass,
            geometry,
            dtype,
            kernel,
        };
        record(key, choice);
    }
    output
}
