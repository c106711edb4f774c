//! One preset's network with its optimiser and a random batch, ready to time a training step
//! or an inference pass. Shared by the criterion benches and the `perf` example so both time
//! exactly the same work.

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::{Device, Distribution, Int, Tensor};
use burn::train::TrainStep;
use nin::data::ImageBatch;
use nin::train::{Preset, TrainingConfig, TrainingNin};
use nin::{Nin, Precision};

/// A preset's model and recipe, on random images of its input size.
pub struct Workload {
    model: Option<TrainingNin>,
    eval_model: Nin,
    optimizer: ModuleOptimizer,
    lr: f64,
    batch: ImageBatch,
}

/// `[channels, height, width]` of the images a preset's model takes.
pub fn image_shape(config: &TrainingConfig) -> [usize; 3] {
    let [height, width] = config
        .model
        .input_size
        .expect("presets name their input size");
    [config.model.blocks[0].in_channels, height, width]
}

impl Workload {
    /// The preset's model (built as its training recipe builds it) computing in `precision`,
    /// its optimiser and learning rate, and `batch_size` random images and labels on
    /// `device`'s autodiff device.
    pub fn new(preset: Preset, batch_size: usize, device: &Device, precision: Precision) -> Self {
        let config = TrainingConfig::preset(preset);
        let [channels, height, width] = image_shape(&config);
        let classes = config.model.num_classes() as i64;
        let device = device.clone().autodiff();
        let batch = ImageBatch {
            images: Tensor::random(
                [batch_size, channels, height, width],
                Distribution::Default,
                &device,
            ),
            targets: Tensor::<1, Int>::random(
                [batch_size],
                Distribution::Uniform(0.0, classes as f64),
                &device,
            ),
        };
        let model = config.model.init(&device).with_precision(precision);
        Self {
            eval_model: model.valid(),
            model: Some(TrainingNin::new(model)),
            optimizer: config.optimizer.init(),
            lr: config.optimizer.lr(),
            batch,
        }
    }

    /// Forward, backward and optimiser update on the batch, as the trainer runs them (the loss
    /// scaling of `f16` included); returns the loss, which waits for the backend to finish.
    pub fn train_step(&mut self) -> f32 {
        let model = self.model.take().expect("a model between steps");
        let output = TrainStep::step(&model, self.batch.clone());
        let loss = output.item.loss.clone();
        let lr = ModuleLearningRate::from(self.lr);
        self.model = Some(model.optimize(&mut self.optimizer, lr, output.grads));
        loss.into_scalar::<f32>()
    }

    /// Logits of the batch in evaluation mode (no autodiff, no dropout), read back to the host.
    pub fn infer(&self) -> Vec<f32> {
        let images = self.batch.images.clone().inner();
        self.eval_model
            .forward(images)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 logits")
    }
}
