//! One training or evaluation step of [`Nin`] on a batch of labelled images, as burn-train's
//! `Learner` calls it, through [`TrainingNin`]: the network with the state its steps carry from
//! one to the next (under `f16`, the dynamic loss scale, [`LossScale`]).

use std::fmt;

use burn::module::{Devices, Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::{Device, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use super::LossScale;
use crate::data::ImageBatch;
use crate::model::{Nin, Precision};

impl Nin {
    /// Logits, cross-entropy loss and targets of one batch.
    pub fn classification(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

/// A [`Nin`] as burn-train's `Learner` trains it: the network and what its training steps
/// carry from one step to the next, the dynamic loss scale of `f16` steps (as PyTorch's
/// `GradScaler`). [`train`](super::train) builds one; use it for a `Learner` or a loop of your
/// own that should train as `train` does.
///
/// Its parameters are the network's, under the same names, so its checkpoints and records are
/// the network's own.
///
/// ```
/// use burn::module::Module;
/// use nin::NinConfig;
/// use nin::train::TrainingNin;
///
/// let device = nin::backend::device("flex").unwrap().autodiff();
/// let training = TrainingNin::new(NinConfig::compact(10).init(&device));
/// assert_eq!(training.num_params(), training.model().num_params());
/// let model = training.into_model();
/// ```
#[derive(Clone, Debug)]
pub struct TrainingNin {
    model: Nin,
    loss_scale: LossScale,
}

impl TrainingNin {
    /// `model`, with a fresh loss scale.
    pub fn new(model: Nin) -> Self {
        Self {
            model,
            loss_scale: LossScale::new(),
        }
    }

    /// The network.
    pub fn model(&self) -> &Nin {
        &self.model
    }

    /// The network, without the training state.
    pub fn into_model(self) -> Nin {
        self.model
    }

    /// The loss scale of a training step: `f16`'s, none for `f32` and `bf16`.
    fn loss_scale(&self) -> Option<LossScale> {
        (self.model.precision == Precision::F16).then_some(self.loss_scale)
    }

    fn with_model(self, map: impl FnOnce(Nin) -> Nin) -> Self {
        Self {
            model: map(self.model),
            loss_scale: self.loss_scale,
        }
    }
}

/// Every call goes to the network, with no name of its own around it: the parameters'
/// paths, and so records and checkpoints, are those of a [`Nin`].
impl Module for TrainingNin {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.model.collect_devices(devices)
    }

    fn fork(self, device: &Device) -> Self {
        self.with_model(|model| model.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        self.with_model(|model| model.to_device(device))
    }

    fn train(self) -> Self {
        self.with_model(Module::train)
    }

    fn valid(&self) -> Self {
        Self {
            model: self.model.valid(),
            loss_scale: self.loss_scale,
        }
    }

    fn materialize(self) -> Self {
        self.with_model(Module::materialize)
    }

    fn visit<Visitor: ModuleVisitor>(&self, visitor: &mut Visitor) {
        self.model.visit(visitor)
    }

    fn map<Mapper: ModuleMapper>(self, mapper: &mut Mapper) -> Self {
        self.with_model(|model| model.map(mapper))
    }
}

impl fmt::Display for TrainingNin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.model, f)
    }
}

impl TrainStep for TrainingNin {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.model.classification(batch);
        let grads = match self.loss_scale() {
            Some(scale) => (output.loss.clone() * scale.factor()).backward(),
            None => output.loss.backward(),
        };
        TrainOutput::new(self, grads, output)
    }

    fn optimize(
        mut self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        mut grads: GradientsParams,
    ) -> Self {
        if let Some(scale) = self.loss_scale() {
            let finite = unscale(&self.model, &mut grads, scale.factor());
            self.loss_scale = scale.after_step(finite);
            if !finite {
                return self;
            }
        }
        optim.step(lr, self, grads)
    }

    fn optimize_multi(
        mut self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        mut grads: MultiGradientsParams,
    ) -> Self {
        if let Some(scale) = self.loss_scale() {
            // Every device's gradients are unscaled, then one verdict skips the step on all.
            let mut finite = true;
            for (grads, _) in &mut grads.grads {
                finite &= unscale(&self.model, grads, scale.factor());
            }
            self.loss_scale = scale.after_step(finite);
            if !finite {
                return self;
            }
        }
        optim.step_multi(lr, self, grads)
    }
}

/// Divides every parameter's gradient in `grads` by `factor`; whether they are all finite
/// (one read from the device for all of them).
fn unscale(model: &Nin, grads: &mut GradientsParams, factor: f32) -> bool {
    struct Unscale<'a> {
        grads: &'a mut GradientsParams,
        inverse: f32,
        magnitude: Option<Tensor<1>>,
    }

    impl ModuleVisitor for Unscale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some(grad) = self.grads.remove::<D>(param.id) else {
                return;
            };
            let grad = grad.mul_scalar(self.inverse);
            // Sums of magnitudes: an infinity or NaN anywhere makes the total one too.
            let magnitude = grad.clone().abs().sum();
            self.magnitude = Some(match self.magnitude.take() {
                Some(total) => total + magnitude,
                None => magnitude,
            });
            self.grads.register(param.id, grad);
        }
    }

    let mut visitor = Unscale {
        grads,
        inverse: 1.0 / factor,
        magnitude: None,
    };
    model.visit(&mut visitor);
    visitor
        .magnitude
        .is_none_or(|total| total.into_scalar::<f32>().is_finite())
}

impl InferenceStep for TrainingNin {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.model.classification(batch)
    }
}
