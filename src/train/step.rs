//! One training or evaluation step of [`Nin`] on a batch of labelled images, as burn-train's
//! `Learner` calls it; under `f16`, with a dynamic loss scale ([`LossScale`]).

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::Tensor;
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

impl TrainStep for Nin {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.classification(batch);
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
            let finite = unscale(&self, &mut grads, scale.factor());
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
                finite &= unscale(&self, grads, scale.factor());
            }
            self.loss_scale = scale.after_step(finite);
            if !finite {
                return self;
            }
        }
        optim.step_multi(lr, self, grads)
    }
}

impl Nin {
    /// The loss scale of a training step: `f16`'s, none for `f32` and `bf16`.
    fn loss_scale(&self) -> Option<LossScale> {
        (self.precision == Precision::F16).then_some(self.loss_scale)
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

impl InferenceStep for Nin {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.classification(batch)
    }
}
