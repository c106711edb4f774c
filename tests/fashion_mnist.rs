//! Fashion-MNIST from the Debian/Ubuntu package `dataset-fashion-mnist` (or `NIN_DATA_DIR`):
//! sizes, class balance, first labels and exact pixels. Skips with a reason when the files are
//! absent; fails instead when `NIN_REQUIRE_DATA=1`.
#![cfg(feature = "dataset")]

use crate::common;

use std::io::Read;

use burn::data::dataset::Dataset;
use common::fashion_mnist_dir as data_dir;
use nin::data::{FashionMnist, Split};

#[test]
fn both_splits_have_the_published_sizes_and_balance() {
    let Some(dir) = data_dir("fashion_mnist_sizes") else {
        return;
    };
    for (split, len, per_class) in [(Split::Train, 60_000, 6_000), (Split::Test, 10_000, 1_000)] {
        let data = FashionMnist::from_dir(&dir, split).unwrap();
        assert_eq!(data.len(), len);
        assert_eq!(data.image_size(), [28, 28]);
        let mut counts = [0usize; 10];
        for label in data.labels() {
            counts[usize::from(*label)] += 1;
        }
        assert_eq!(counts, [per_class; 10], "{split:?}");
        // Both splits start with an ankle boot.
        let first = data.get(0).unwrap();
        assert_eq!(first.label, 9);
        assert_eq!(data.classes()[first.label], "Ankle boot");
        assert!(data.get(len).is_err());
    }
}

#[test]
fn pixels_round_trip_exactly() {
    let Some(dir) = data_dir("fashion_mnist_pixels") else {
        return;
    };
    let data = FashionMnist::from_dir(&dir, Split::Test).unwrap();
    // Decode the file independently and compare image 1234 byte for byte.
    let path = ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"]
        .map(|name| dir.join(name))
        .into_iter()
        .find(|p| p.is_file())
        .unwrap();
    let raw = std::fs::read(&path).unwrap();
    let mut bytes = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut bytes)
            .unwrap();
    } else {
        bytes = raw;
    }
    let start = 16 + 1234 * 784;
    let item = data.get(1234).unwrap();
    assert_eq!(item.pixels, bytes[start..start + 784]);
    assert!(item.pixels.iter().any(|p| *p > 0));
}
