//! How a cube backend (wgpu, Vulkan, CUDA) runs a k×k convolution, given with each call: the
//! kernel of each pass, the memory its patch matrices may take, and where to count the
//! kernels' runs. Nothing here is a process-wide setting: two callers with different settings
//! do not see each other's, and the environment is read once for the defaults.
//!
//! Design notes: `docs/design.md`, "ops::cube_conv::choice".

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The two implementations of a convolution pass on a cube backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvKernel {
    /// burn's convolution (`ModuleOps::conv2d` and its gradients), with its own autotuned
    /// kernels.
    Burn,
    /// This crate's: patch matrices and burn's matrix products (`cube_conv`).
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

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The environment variable that sets the default [`ConvChoice`]: `autotune` (the default),
/// `burn` or `im2col`. Read once, on the first convolution with default settings.
pub(crate) const CONV_KERNEL_VAR: &str = "NIN_CONV_KERNEL";

/// Default of [`ConvSettings::column_budget_bytes`]: large enough that a run of d2l's widest
/// layer at batch 128 (`[2400, 39·676]` patches) makes a product the tiles fill, small enough
/// beside a training step's activations on an 8 GB card.
pub(crate) const DEFAULT_COLUMN_BUDGET_BYTES: usize = 256 << 20;

/// How a cube backend runs a k×k convolution: passed with each call
/// ([`conv2d_with`](super::conv2d_with), [`conv2d_gradients`](super::conv2d_gradients)); the
/// modules' `forward` use [`ConvSettings::default`]. Flex ignores them.
///
/// ```
/// use nin::ops::{ConvChoice, ConvKernel, ConvPass, ConvSettings, KernelRuns};
///
/// let runs = KernelRuns::new();
/// let settings = ConvSettings::new(ConvChoice::Always(ConvKernel::Im2col))
///     .with_column_budget_bytes(64 << 20)
///     .counting_in(&runs);
/// assert_eq!(runs.get(ConvPass::Forward, ConvKernel::Im2col), 0);
/// # let _ = settings;
/// ```
#[derive(Clone, Debug)]
pub struct ConvSettings {
    /// How the kernel of each pass is chosen.
    pub choice: ConvChoice,
    /// The most bytes the patch matrix (or its gradient) of one run of images may take in this
    /// crate's kernel: smaller trades product width for memory. A run has at least one image
    /// whatever the budget.
    pub column_budget_bytes: usize,
    runs: Option<KernelRuns>,
}

impl ConvSettings {
    /// `choice`, with the default column budget, counting nowhere.
    pub fn new(choice: ConvChoice) -> Self {
        Self {
            choice,
            column_budget_bytes: DEFAULT_COLUMN_BUDGET_BYTES,
            runs: None,
        }
    }

    /// The same settings with another [`column_budget_bytes`](Self::column_budget_bytes).
    pub fn with_column_budget_bytes(mut self, bytes: usize) -> Self {
        self.column_budget_bytes = bytes;
        self
    }

    /// The same settings, counting every kernel run made with them (timing runs of the
    /// autotuner included) in `runs`.
    pub fn counting_in(mut self, runs: &KernelRuns) -> Self {
        self.runs = Some(runs.clone());
        self
    }

    /// Counts one run of `kernel` for `pass`, where these settings count.
    #[cfg_attr(not(feature = "cube"), allow(dead_code))]
    pub(crate) fn count(&self, pass: ConvPass, kernel: ConvKernel) {
        if let Some(runs) = &self.runs {
            runs.counts[pass.index()][kernel as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The choice [`CONV_KERNEL_VAR`] names (read once), the default budget, counting nowhere.
impl Default for ConvSettings {
    fn default() -> Self {
        static CHOICE: OnceLock<ConvChoice> = OnceLock::new();
        let choice = *CHOICE.get_or_init(|| choice_from(std::env::var(CONV_KERNEL_VAR).ok()));
        Self::new(choice)
    }
}

/// The choice `value` (of [`CONV_KERNEL_VAR`]) names, or the default
/// ([`crate::names::from_environment`]).
fn choice_from(value: Option<String>) -> ConvChoice {
    crate::names::from_environment(CONV_KERNEL_VAR, value).unwrap_or(ConvChoice::Autotune)
}

/// Counts of each kernel's runs for each pass, shared by the settings that count in it
/// ([`ConvSettings::counting_in`]) and their copies.
#[derive(Clone, Debug, Default)]
pub struct KernelRuns {
    counts: Arc<[[AtomicU64; 2]; 3]>,
}

impl KernelRuns {
    /// Counts at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times `kernel` has run `pass` with settings counting here.
    pub fn get(&self, pass: ConvPass, kernel: ConvKernel) -> u64 {
        self.counts[pass.index()][kernel as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_a_choice_and_anything_else_autotunes() {
        let named = |value: &str| choice_from(Some(value.to_string()));
        assert_eq!(choice_from(None), ConvChoice::Autotune);
        assert_eq!(named("autotune"), ConvChoice::Autotune);
        assert_eq!(named("burn"), ConvChoice::Always(ConvKernel::Burn));
        assert_eq!(named(" IM2COL "), ConvChoice::Always(ConvKernel::Im2col));
        assert_eq!(named("fastest"), ConvChoice::Autotune);
        let err = "fastest".parse::<ConvChoice>().unwrap_err();
        assert!(err.to_string().contains("autotune, burn, im2col"), "{err}");
    }

    #[test]
    fn copies_of_counting_settings_count_in_one_place_and_others_do_not() {
        let runs = KernelRuns::new();
        let settings = ConvSettings::new(ConvChoice::Autotune).counting_in(&runs);
        settings.count(ConvPass::Forward, ConvKernel::Burn);
        settings.clone().count(ConvPass::Forward, ConvKernel::Burn);
        ConvSettings::new(ConvChoice::Autotune).count(ConvPass::Forward, ConvKernel::Burn);
        assert_eq!(runs.get(ConvPass::Forward, ConvKernel::Burn), 2);
        assert_eq!(runs.get(ConvPass::Forward, ConvKernel::Im2col), 0);
        assert_eq!(runs.get(ConvPass::InputGrad, ConvKernel::Burn), 0);
    }
}
