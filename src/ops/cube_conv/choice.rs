//! Which convolution runs each pass: burn's or the lowered one, timed on first use of each
//! shape as `cudnn.benchmark` does.
//!
//! Design notes: `docs/design.md`, "ops::cube_conv::choice".

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use burn::backend::ops::{ActivationOps, ConvOptions, ModuleOps};
use burn::tensor::DType;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{CubeBackend, CubeTuneId};
use cubecl::AutotuneKey;
use cubecl::tune::{LocalTuner, Tunable, TunableSet};
use serde::{Deserialize, Serialize};

use super::lowered;
use crate::ops::geometry::ConvGeometry;

/// The two implementations of a convolution pass on a cube backend (wgpu, Vulkan, CUDA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvKernel {
    /// burn's convolution (`ModuleOps::conv2d` and its gradients), with its own autotuned
    /// kernels.
    Burn,
    /// This crate's: patch matrices and burn's matrix products (`lowered`).
    Im2col,
}

impl ConvKernel {
    /// Both kernels.
    pub const ALL: [ConvKernel; 2] = [ConvKernel::Burn, ConvKernel::Im2col];

    /// The kernel's name, as tables and the autotune log print it.
    pub fn name(self) -> &'static str {
        match self {
            ConvKernel::Burn => "burn",
            ConvKernel::Im2col => "im2col",
        }
    }
}

impl fmt::Display for ConvKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the kernel of each pass is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvChoice {
    /// Time both on first use of each shape and keep the faster (the default), in f32; in f16
    /// and bf16, this crate's kernel, whose products accumulate in f32.
    Autotune,
    /// Always this one: for measuring one against the other, or ruling one out.
    Always(ConvKernel),
}

/// One pass of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvPass {
    /// The output.
    Forward,
    /// The weights' gradient.
    WeightGrad,
    /// The input's gradient.
    InputGrad,
}

impl ConvPass {
    /// Every pass, in the order a training step runs them for one layer.
    pub const ALL: [ConvPass; 3] = [ConvPass::Forward, ConvPass::WeightGrad, ConvPass::InputGrad];

    fn index(self) -> usize {
        self as usize
    }
}

/// The environment variable that sets the process's initial [`ConvChoice`]: `autotune` (the
/// default), `burn` or `im2col`.
pub const CONV_KERNEL_VAR: &str = "NIN_CONV_KERNEL";

/// [`ConvChoice`] as a code; [`UNSET`] until the environment variable has been read or
/// [`set_conv_choice`] has been called.
static CHOICE: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = u8::MAX;

fn code(choice: ConvChoice) -> u8 {
    match choice {
        ConvChoice::Autotune => 0,
        ConvChoice::Always(ConvKernel::Burn) => 1,
        ConvChoice::Always(ConvKernel::Im2col) => 2,
    }
}

impl crate::names::Named for ConvChoice {
    const KIND: &'static str = "convolution kernel choice";

    fn all() -> &'static [Self] {
        &[
            ConvChoice::Autotune,
            ConvChoice::Always(ConvKernel::Burn),
            ConvChoice::Always(ConvKernel::Im2col),
        ]
    }

    fn name(self) -> &'static str {
        match self {
            ConvChoice::Autotune => "autotune",
            ConvChoice::Always(kernel) => kernel.name(),
        }
    }
}

crate::names::impl_named!(ConvChoice);

/// The choice [`CONV_KERNEL_VAR`] names, or the default. A value that names no choice is
/// reported on stderr, naming the variable and the valid values, and the default is kept:
/// this is read inside a convolution, which has no error to return.
fn choice_from_environment() -> ConvChoice {
    choice_from(std::env::var(CONV_KERNEL_VAR).ok().as_deref())
}

fn choice_from(value: Option<&str>) -> ConvChoice {
    match value {
        Some(value) => value.parse().unwrap_or_else(|err| {
            eprintln!("nin: ignoring {CONV_KERNEL_VAR}: {err}; autotuning instead");
            ConvChoice::Autotune
        }),
        None => ConvChoice::Autotune,
    }
}

/// How cube backends choose the kernel of each convolution pass from now on, for the whole
/// process; it replaces what [`CONV_KERNEL_VAR`] set. Choices already timed are kept for when
/// [`ConvChoice::Autotune`] is set again.
pub fn set_conv_choice(choice: ConvChoice) {
    CHOICE.store(code(choice), Ordering::Relaxed);
}

/// How cube backends choose the kernel of each convolution pass: what [`set_conv_choice`] set
/// last, else what [`CONV_KERNEL_VAR`] names, else [`ConvChoice::Autotune`].
pub fn conv_choice() -> ConvChoice {
    let mut stored = CHOICE.load(Ordering::Relaxed);
    if stored == UNSET {
        let initial = code(choice_from_environment());
        // A concurrent `set_conv_choice` wins over the environment.
        stored = match CHOICE.compare_exchange(UNSET, initial, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => initial,
            Err(current) => current,
        };
    }
    match stored {
        1 => ConvChoice::Always(ConvKernel::Burn),
        2 => ConvChoice::Always(ConvKernel::Im2col),
        _ => ConvChoice::Autotune,
    }
}

/// Calls of each kernel for each pass, timing runs included: `[pass][kernel]`.
static RUNS: [[AtomicU64; 2]; 3] = [const { [const { AtomicU64::new(0) }; 2] }; 3];

/// How many times `kernel` has run `pass` in this process, the autotuner's timing runs
/// included.
pub fn kernel_runs(pass: ConvPass, kernel: ConvKernel) -> u64 {
    RUNS[pass.index()][kernel as usize].load(Ordering::Relaxed)
}

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
    RUNS[pass.index()][kernel as usize].fetch_add(1, Ordering::Relaxed);
    let PassInputs {
        x,
        weight,
        other,
        geometry: g,
        relu,
    } = inputs;
    let options = || ConvOptions::new(g.stride, g.padding, [1, 1], 1);
    type B = CubeBackend;
    match (pass, kernel) {
        (ConvPass::Forward, ConvKernel::Burn) => {
            let output = B::conv2d(x, weight, Some(other), options());
            if relu { B::relu(output) } else { output }
        }
        (ConvPass::Forward, ConvKernel::Im2col) => lowered::forward(&x, &weight, &other, &g, relu),
        (ConvPass::WeightGrad, ConvKernel::Burn) => {
            B::conv2d_weight_backward(x, weight, other, options())
        }
        (ConvPass::WeightGrad, ConvKernel::Im2col) => lowered::weight_grad(&x, &other, &g),
        (ConvPass::InputGrad, ConvKernel::Burn) => {
            B::conv2d_x_backward(x, weight, other, options())
        }
        (ConvPass::InputGrad, ConvKernel::Im2col) => lowered::input_grad(&weight, &other, &g),
    }
}

/// One tuner per pass: a tuner's results are indices into its one set of candidates.
static TUNERS: [LocalTuner<ConvKey, CubeTuneId>; 3] = [
    LocalTuner::new("nin-conv2d-forward"),
    LocalTuner::new("nin-conv2d-weight-grad"),
    LocalTuner::new("nin-conv2d-input-grad"),
];

/// `pass` by the kernel [`conv_choice`] picks. In f16 and bf16 the autotuner's pick is always
/// this crate's kernel: its products accumulate in f32, where burn 0.22's direct and
/// transposed convolution kernels accumulate in the half type, which loses the long sums of a
/// weight gradient (tests/precision.rs).
pub(super) fn run_pass(pass: ConvPass, inputs: PassInputs) -> CubeTensor {
    match conv_choice() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_a_choice_and_anything_else_autotunes() {
        assert_eq!(choice_from(None), ConvChoice::Autotune);
        assert_eq!(choice_from(Some("autotune")), ConvChoice::Autotune);
        assert_eq!(
            choice_from(Some("burn")),
            ConvChoice::Always(ConvKernel::Burn)
        );
        assert_eq!(
            choice_from(Some(" IM2COL ")),
            ConvChoice::Always(ConvKernel::Im2col)
        );
        assert_eq!(choice_from(Some("fastest")), ConvChoice::Autotune);
        let err = "fastest".parse::<ConvChoice>().unwrap_err();
        assert!(err.to_string().contains("autotune, burn, im2col"), "{err}");
    }
}
