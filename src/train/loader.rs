//! The batches of a run in an order that depends on nothing but the seed and the epoch.
//!
//! burn's data loader draws each epoch's shuffle from one generator that runs on across epochs
//! (so epoch 3's order depends on epochs 1 and 2 having been drawn in the same process), and with
//! worker threads it yields batches in the order the threads finish them. Neither allows a
//! resumed run to continue as the unbroken one would have, nor one seed to give one model. Here
//! an epoch's order is a permutation drawn from `(seed, epoch)` alone, an image's augmentation
//! from `(seed, epoch, index)`, the device's generator (dropout) is reseeded from
//! `(seed, epoch)` when the epoch starts, and the worker threads' batches are handed out in
//! order.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::Device;

use crate::data::{Augment, ImageBatch, ImageBatcher, ImageItem, SplitMix64};

/// How a loader orders its images in each epoch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Order {
    /// The data set's own order (evaluation).
    Sequential,
    /// A permutation drawn from the seed and the epoch, with the images augmented (when
    /// `augment` is set) and the device's generator reseeded when each epoch starts.
    Shuffled { seed: u64, augment: Option<Augment> },
}

/// Batches from positions `range` of each epoch's order of `dataset`.
pub(super) struct EpochLoader {
    dataset: Arc<dyn Dataset<ImageItem>>,
    batcher: ImageBatcher,
    batch_size: usize,
    workers: usize,
    order: Order,
    range: Range<usize>,
    device: Device,
    /// The number of the epoch the next `iter` serves, from 1.
    next_epoch: AtomicUsize,
}

impl EpochLoader {
    /// A loader over the whole of `dataset` whose first `iter` serves epoch `first_epoch`.
    /// `batcher` must not augment: augmentation is the loader's, per image.
    pub(super) fn new(
        dataset: Arc<dyn Dataset<ImageItem>>,
        batcher: ImageBatcher,
        batch_size: usize,
        workers: usize,
        order: Order,
        first_epoch: usize,
        device: Device,
    ) -> Self {
        debug_assert!(batcher.augment.is_none(), "the loader augments, per image");
        let range = 0..dataset.len();
        Self {
            dataset,
            batcher,
            batch_size: batch_size.max(1),
            workers,
            order,
            range,
            device,
            next_epoch: AtomicUsize::new(first_epoch),
        }
    }

    fn derived(&self, range: Range<usize>, device: Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            dataset: Arc::clone(&self.dataset),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            workers: self.workers,
            order: self.order,
            range,
            device,
            next_epoch: AtomicUsize::new(self.next_epoch.load(Ordering::Relaxed)),
        })
    }

    /// The data set indices of this loader's positions in `epoch`'s order.
    fn indices(&self, epoch: usize) -> Vec<usize> {
        match self.order {
            Order::Sequential => self.range.clone().collect(),
            Order::Shuffled { seed, .. } => {
                let mut order = permutation(self.dataset.len(), seed, epoch);
                order.truncate(self.range.end);
                order.drain(..self.range.start);
                order
            }
        }
    }
}

/// `0..len` shuffled (Fisher–Yates) with draws from `(seed, epoch)` alone.
fn permutation(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = SplitMix64(SplitMix64::derive(&[seed, epoch as u64]));
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// What a batch is made of: the data set indices of its images, and the epoch's settings.
#[derive(Clone)]
struct BatchSource {
    dataset: Arc<dyn Dataset<ImageItem>>,
    batcher: ImageBatcher,
    augment: Option<(Augment, u64)>,
    device: Device,
}

impl BatchSource {
    fn batch(&self, indices: &[usize]) -> Result<ImageBatch, DatasetError> {
        let mut items = Vec::with_capacity(indices.len());
        for &index in indices {
            let mut item = self.dataset.get(index)?;
            if let Some((augment, epoch_seed)) = &self.augment {
                augment.apply_to_item(&mut item, SplitMix64::derive(&[*epoch_seed, index as u64]));
            }
            items.push(item);
        }
        Ok(self.batcher.batch(items, &self.device))
    }
}

impl DataLoader<ImageBatch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        let augment = match self.order {
            Order::Sequential => None,
            Order::Shuffled { seed, augment } => {
                // Dropout draws from the device's generator: from the same state in this epoch
                // of every run of this seed, resumed or not. Each part of a multi-device run
                // starts its own device from a state of its own.
                let start = self.range.start as u64;
                self.device
                    .seed(SplitMix64::derive(&[seed, epoch as u64, start, 1]));
                augment.map(|augment| {
                    let seed = SplitMix64::derive(&[augment.seed, epoch as u64, 2]);
                    (augment, seed)
                })
            }
        };
        let indices = self.indices(epoch);
        let batches: Vec<Vec<usize>> = indices
            .chunks(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let source = BatchSource {
            dataset: Arc::clone(&self.dataset),
            batcher: self.batcher.clone(),
            augment,
            device: self.device.clone(),
        };
        Box::new(EpochIter::start(source, batches, self.workers))
    }

    fn num_items(&self) -> usize {
        self.range.len()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        self.derived(self.range.clone(), device.clone())
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let end = (self.range.start + end).min(self.range.end);
        let start = (self.range.start + start).min(end);
        self.derived(start..end, self.device.clone())
    }
}

/// One epoch's batches, in order: built on the calling thread, or by `workers` threads of which
/// thread `w` builds batches `w`, `w + workers`, … and hands them over through a channel of its
/// own, so that batch `i` is always taken from the thread that built it.
struct EpochIter {
    batches: Vec<Vec<usize>>,
    next: usize,
    items_done: usize,
    items_total: usize,
    built: Built,
}

enum Built {
    Here(BatchSource),
    ByWorkers(Vec<Receiver<Result<ImageBatch, DatasetError>>>),
}

/// Batches a worker may build ahead of the one being trained on.
const AHEAD_PER_WORKER: usize = 2;

impl EpochIter {
    fn start(source: BatchSource, batches: Vec<Vec<usize>>, workers: usize) -> Self {
        let items_total = batches.iter().map(Vec::len).sum();
        let workers = workers.min(batches.len());
        let built = if workers == 0 {
            Built::Here(source)
        } else {
            let receivers = (0..workers)
                .map(|worker| {
                    let (sender, receiver) = sync_channel(AHEAD_PER_WORKER);
                    let mine: Vec<Vec<usize>> = batches
                        .iter()
                        .skip(worker)
                        .step_by(workers)
                        .cloned()
                        .collect();
                    let source = source.clone();
                    std::thread::spawn(move || build_batches(&source, &mine, &sender));
                    receiver
                })
                .collect();
            Built::ByWorkers(receivers)
        };
        Self {
            batches,
            next: 0,
            items_done: 0,
            items_total,
            built,
        }
    }
}

/// A worker's loop: it ends early when the iterator is dropped (the send fails).
fn build_batches(
    source: &BatchSource,
    batches: &[Vec<usize>],
    sender: &SyncSender<Result<ImageBatch, DatasetError>>,
) {
    for indices in batches {
        if sender.send(source.batch(indices)).is_err() {
            return;
        }
    }
}

impl Iterator for EpochIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let indices = self.batches.get(self.next)?;
        let batch = match &self.built {
            Built::Here(source) => source.batch(indices),
            Built::ByWorkers(receivers) => receivers[self.next % receivers.len()]
                .recv()
                .unwrap_or_else(|_| {
                    Err(DatasetError::new(std::io::Error::other(
                        "a thread building training batches stopped before its batches were done",
                    )))
                }),
        };
        self.items_done += indices.len();
        self.next += 1;
        Some(batch)
    }
}

impl DataLoaderIterator<ImageBatch> for EpochIter {
    fn progress(&self) -> Progress {
        Progress::new(self.items_done, self.items_total, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(len: usize) -> Arc<dyn Dataset<ImageItem>> {
        let items: Vec<ImageItem> = (0..len)
            .map(|i| ImageItem::grayscale(vec![i as u8; 4], 2, 2, i % 3))
            .collect();
        Arc::new(burn::data::dataset::InMemDataset::new(items))
    }

    fn loader(len: usize, workers: usize, first_epoch: usize) -> EpochLoader {
        EpochLoader::new(
            dataset(len),
            ImageBatcher::new(),
            4,
            workers,
            Order::Shuffled {
                seed: 7,
                augment: Some(Augment {
                    crop_padding: 1,
                    horizontal_flip: true,
                    seed: 3,
                }),
            },
            first_epoch,
            Device::flex(),
        )
    }

    /// Every batch's pixels, in order.
    fn epoch(loader: &dyn DataLoader<ImageBatch>) -> Vec<Vec<f32>> {
        loader
            .iter()
            .map(|batch| {
                batch
                    .unwrap()
                    .images
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn an_epoch_is_a_permutation_fixed_by_seed_and_epoch() {
        let first = permutation(100, 7, 1);
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(first, permutation(100, 7, 1));
        assert_ne!(first, permutation(100, 7, 2));
        assert_ne!(first, permutation(100, 8, 1));
    }

    #[test]
    fn a_loader_started_at_a_later_epoch_serves_what_the_first_serves_there() {
        let whole = loader(23, 0, 1);
        let _ = epoch(&whole);
        let second = epoch(&whole);
        let resumed = loader(23, 0, 2);
        assert_eq!(epoch(&resumed), second);
    }

    #[test]
    fn workers_hand_out_the_batches_the_calling_thread_would_build() {
        let alone = epoch(&loader(23, 0, 1));
        assert_eq!(alone.len(), 6, "23 images in batches of 4");
        for workers in [1, 2, 3, 8] {
            assert_eq!(epoch(&loader(23, workers, 1)), alone, "{workers} workers");
        }
    }

    #[test]
    fn slices_split_one_epoch_order_between_them() {
        let whole = loader(23, 0, 1);
        let whole_batches = epoch(&loader(23, 0, 1)).concat();
        let parts = [whole.slice(0, 12), whole.slice(12, 23)];
        assert_eq!([parts[0].num_items(), parts[1].num_items()], [12, 11]);
        let joined = [epoch(&*parts[0]).concat(), epoch(&*parts[1]).concat()].concat();
        assert_eq!(
            joined, whole_batches,
            "the parts' images are the whole's, in its order"
        );
    }
}
