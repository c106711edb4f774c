//! Using a trained model: accuracy and confusion over a dataset, and top-k predictions.

use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::data::{ImageBatcher, ImageItem, Split};
use crate::model::Nin;

use super::TrainError;

/// Counts from classifying a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// Sum of the per-image cross-entropy.
    pub loss_sum: f64,
    /// Predicted class index of each image, in dataset order.
    pub predictions: Vec<usize>,
    /// Seconds spent.
    pub seconds: f64,
}

impl Evaluation {
    /// Images evaluated.
    pub fn images(&self) -> u64 {
        self.confusion.iter().flatten().sum()
    }

    /// Fraction classified correctly.
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.confusion.len())
            .map(|c| self.confusion[c][c])
            .sum();
        correct as f64 / self.images().max(1) as f64
    }

    /// Mean cross-entropy.
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.images().max(1) as f64
    }

    /// Per class: fraction of its images classified correctly, and how many there were.
    pub fn per_class(&self) -> Vec<(f64, u64)> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let images: u64 = row.iter().sum();
                (row[c] as f64 / images.max(1) as f64, images)
            })
            .collect()
    }
}

/// Classifies every item of `dataset` with `model` (in evaluation mode) in batches of
/// `batch_size`, preparing images with `batcher`.
pub fn evaluate<D: Dataset<ImageItem> + ?Sized>(
    model: &Nin,
    dataset: &D,
    batcher: &ImageBatcher,
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    let model = model.valid();
    let classes = model.num_classes();
    let mut evaluation = Evaluation {
        confusion: vec![vec![0; classes]; classes],
        loss_sum: 0.0,
        predictions: Vec::with_capacity(dataset.len()),
        seconds: 0.0,
    };
    let started = Instant::now();
    let loss = CrossEntropyLossConfig::new().init(device);
    let indices: Vec<usize> = (0..dataset.len()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let items = chunk
            .iter()
            .map(|&index| {
                dataset.get(index).map_err(|source| TrainError::Item {
                    set: Split::Test,
                    index,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(item) = items.iter().find(|item| item.label >= classes) {
            return Err(TrainError::Data(format!(
                "label {} is outside the model's {classes} classes",
                item.label
            )));
        }
        let labels: Vec<usize> = items.iter().map(|item| item.label).collect();
        let batch = batcher.batch(items, device);
        let logits = model.try_forward(batch.images)?;
        let batch_loss = loss
            .forward(logits.clone(), batch.targets)
            .into_scalar::<f32>();
        evaluation.loss_sum += f64::from(batch_loss) * labels.len() as f64;
        let predicted = read_indices(logits.argmax(1).flatten::<1>(0, 1))?;
        for (label, predicted) in labels.into_iter().zip(predicted) {
            evaluation.confusion[label][predicted] += 1;
            evaluation.predictions.push(predicted);
        }
    }
    evaluation.seconds = started.elapsed().as_secs_f64();
    Ok(evaluation)
}

fn read_indices(tensor: Tensor<1, burn::tensor::Int>) -> Result<Vec<usize>, TrainError> {
    let data = tensor.into_data();
    data.convert::<i64>()
        .try_to_vec::<i64>()
        .map(|v| v.into_iter().map(|i| i.max(0) as usize).collect())
        .map_err(|e| TrainError::Data(format!("cannot read predictions: {e:?}")))
}

/// One image's most likely classes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// `(class index, probability)`, most likely first.
    pub top: Vec<(usize, f32)>,
}

/// The `k` most likely classes of each image of `images` (`[N, C, H, W]`, prepared as the
/// model was trained), with softmax probabilities.
pub fn predict(model: &Nin, images: Tensor<4>, k: usize) -> Result<Vec<Prediction>, TrainError> {
    let logits = model.valid().try_forward(images)?;
    let [n, classes] = logits.dims();
    let probabilities = softmax(logits, 1)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Data(format!("cannot read probabilities: {e:?}")))?;
    Ok((0..n)
        .map(|i| {
            let mut ranked: Vec<(usize, f32)> = probabilities[i * classes..(i + 1) * classes]
                .iter()
                .copied()
                .enumerate()
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            ranked.truncate(k);
            Prediction { top: ranked }
        })
        .collect())
}
