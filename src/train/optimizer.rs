//! The optimiser, its usual settings, and the learning-rate schedule of a run.

use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig, decay::WeightDecayConfig};
use serde::{Deserialize, Serialize};

/// The optimiser and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Optimizer {
    /// Stochastic gradient descent; d2l trains NiN with plain SGD (no momentum, no decay).
    Sgd {
        /// Peak learning rate.
        lr: f64,
        /// Momentum (Nesterov off), if any.
        momentum: Option<f64>,
        /// L2 weight decay, if any.
        weight_decay: Option<f64>,
    },
    /// Adam with decoupled weight decay.
    AdamW {
        /// Peak learning rate.
        lr: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
}

/// Which optimiser, without its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// [`Optimizer::Sgd`].
    Sgd,
    /// [`Optimizer::AdamW`].
    AdamW,
}

impl OptimizerKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::AdamW => "adamw",
        }
    }

    /// The optimiser with its usual settings: plain SGD at learning rate 0.1 (d2l's), or AdamW
    /// at 1e-3 with weight decay 1e-4.
    ///
    /// ```
    /// use nin::train::OptimizerKind;
    ///
    /// let adamw = OptimizerKind::AdamW.usual();
    /// assert_eq!((adamw.kind(), adamw.lr()), (OptimizerKind::AdamW, 1e-3));
    /// ```
    pub fn usual(self) -> Optimizer {
        match self {
            OptimizerKind::Sgd => Optimizer::Sgd {
                lr: 0.1,
                momentum: None,
                weight_decay: None,
            },
            OptimizerKind::AdamW => Optimizer::AdamW {
                lr: 1e-3,
                weight_decay: 1e-4,
            },
        }
    }
}

impl crate::names::Named for OptimizerKind {
    const KIND: &'static str = "optimizer";

    fn all() -> &'static [Self] {
        &[OptimizerKind::Sgd, OptimizerKind::AdamW]
    }

    fn name(self) -> &'static str {
        OptimizerKind::name(self)
    }
}

crate::names::impl_named!(OptimizerKind);

impl Optimizer {
    /// Which optimiser this is.
    pub fn kind(&self) -> OptimizerKind {
        match self {
            Optimizer::Sgd { .. } => OptimizerKind::Sgd,
            Optimizer::AdamW { .. } => OptimizerKind::AdamW,
        }
    }

    /// The peak learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. } | Optimizer::AdamW { lr, .. } => lr,
        }
    }

    /// The same optimiser with another peak learning rate.
    pub fn with_lr(self, new_lr: f64) -> Self {
        match self {
            Optimizer::Sgd {
                momentum,
                weight_decay,
                ..
            } => Optimizer::Sgd {
                lr: new_lr,
                momentum,
                weight_decay,
            },
            Optimizer::AdamW { weight_decay, .. } => Optimizer::AdamW {
                lr: new_lr,
                weight_decay,
            },
        }
    }

    /// The optimiser that takes the same steps from the sum of `devices` gradients (each the
    /// mean over one device's batch, as burn-train's multi-device strategy adds them) as this
    /// one takes from their mean, the gradient of the global batch.
    ///
    /// SGD's step is linear in the gradient: its learning rate is divided by `devices`, and its
    /// L2 weight decay, which is added to the gradient before that rate, multiplied by it, so
    /// every update (momentum included) is the same. Adam's step is invariant to the scale of
    /// the gradient (but for its ε), and its decay is decoupled: AdamW is unchanged.
    pub fn for_summed_gradients(self, devices: usize) -> Self {
        let n = devices.max(1) as f64;
        match self {
            Optimizer::Sgd {
                lr,
                momentum,
                weight_decay,
            } => Optimizer::Sgd {
                lr: lr / n,
                momentum,
                weight_decay: weight_decay.map(|d| d * n),
            },
            adamw @ Optimizer::AdamW { .. } => adamw,
        }
    }

    /// Builds the optimiser; the learning rate is passed at each step (see [`lr`](Self::lr)).
    pub fn init(&self) -> ModuleOptimizer {
        match *self {
            Optimizer::Sgd {
                momentum,
                weight_decay,
                ..
            } => SgdConfig::new()
                .with_momentum(momentum.map(|m| MomentumConfig::new().with_momentum(m)))
                .with_weight_decay(weight_decay.map(|d| WeightDecayConfig::new(d as f32)))
                .init(),
            Optimizer::AdamW { weight_decay, .. } => AdamWConfig::new()
                .with_weight_decay(weight_decay as f32)
                .init(),
        }
    }
}

/// How the learning rate moves over the run, step by step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    /// The peak rate throughout (d2l's recipe).
    Constant,
    /// A linear warm-up from a tenth of the peak over `warmup_steps` (at most a fifth of the
    /// run, so a short run still reaches the peak), then cosine annealing to zero at the last
    /// step.
    Cosine {
        /// Steps of linear warm-up (0 for none).
        warmup_steps: usize,
    },
}

impl Schedule {
    pub(crate) fn init(&self, lr: f64, total_steps: usize) -> Result<ModuleLrScheduler, String> {
        match *self {
            Schedule::Constant => {
                Ok(burn::optim::lr_scheduler::constant::ConstantLr::new(lr).into())
            }
            Schedule::Cosine { warmup_steps } => {
                let warmup_steps = warmup_steps.min(total_steps / 5);
                let decay_steps = total_steps.saturating_sub(warmup_steps).max(1);
                let cosine = CosineAnnealingLrSchedulerConfig::new(lr, decay_steps);
                if warmup_steps == 0 {
                    return cosine.init();
                }
                SequentialLrSchedulerConfig::new(
                    vec![
                        LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(
                            lr / 10.0,
                            lr,
                            warmup_steps,
                        )),
                        LrSchedulerConfig::Cosine(cosine),
                    ],
                    vec![warmup_steps],
                )
                .init()
            }
        }
    }
}
