//! Checks made before a run writes anything: the devices, the labels and the channels.

use burn::data::dataset::Dataset;
use burn::tensor::Device;

use crate::data::{ImageItem, Split};

use super::options::{Strategy, TrainOptions};
use super::{TrainError, TrainingConfig};

/// There must be a device; the devices must be distinct, compute in the configuration's
/// precision, and suit the strategy.
pub(super) fn check_devices(
    config: &TrainingConfig,
    options: &TrainOptions,
    devices: &[Device],
) -> Result<(), TrainError> {
    let refuse = |reason: String| Err(TrainError::Config(format!("devices: {reason}")));
    if devices.is_empty() {
        return refuse(
            "the list passed to train is empty; pass the device to train on (`&[device]`)".into(),
        );
    }
    for (index, later) in devices.iter().enumerate().skip(1) {
        if devices[..index].contains(later) {
            return refuse(format!("{later:?} is listed twice"));
        }
    }
    for device in devices {
        config.precision.check(device)?;
    }
    if options.strategy == Strategy::Ddp {
        #[cfg(feature = "cuda")]
        let cuda = Device::enumerate(burn::tensor::DeviceType::Cuda);
        #[cfg(feature = "cuda")]
        let on_cuda = |d: &Device| cuda.contains(d);
        #[cfg(not(feature = "cuda"))]
        let on_cuda = |_: &Device| false;
        if let Some(other) = devices.iter().find(|d| !on_cuda(d)) {
            return refuse(format!(
                "the ddp strategy needs collective operations between devices, which burn 0.22 \
                 implements on CUDA devices only (NCCL), and {other:?} is not one; use the \
                 multi strategy"
            ));
        }
    }
    Ok(())
}

pub(super) fn limit(len: usize, limit: Option<usize>) -> usize {
    limit.map_or(len, |l| l.min(len))
}

/// Every label must name one of the model's classes (cross-entropy would otherwise index past
/// the logits), and every image must have the channels the model takes.
pub(super) fn check_items<D: Dataset<ImageItem> + ?Sized>(
    dataset: &D,
    classes: usize,
    channels: usize,
    which: Split,
) -> Result<(), TrainError> {
    if dataset.is_empty() {
        return Err(TrainError::Data(format!("the {which} set is empty")));
    }
    for index in 0..dataset.len() {
        let item = dataset.get(index).map_err(|source| TrainError::Item {
            set: which,
            index,
            source,
        })?;
        if item.label >= classes {
            return Err(TrainError::Data(format!(
                "{which} item {index} has label {}, but the model has {classes} classes",
                item.label
            )));
        }
        check_channels(&item, channels, which, index)?;
    }
    Ok(())
}

pub(super) fn check_channels(
    item: &ImageItem,
    channels: usize,
    which: Split,
    index: usize,
) -> Result<(), TrainError> {
    if item.channels() == channels {
        return Ok(());
    }
    Err(TrainError::ChannelMismatch {
        set: which,
        index,
        model: channels,
        data: item.channels(),
    })
}
