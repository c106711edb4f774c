//! The batcher: scaling, layout, labels, bilinear resize as PyTorch does it, normalisation.
#![cfg(feature = "dataset")]

mod common;

use burn::data::dataloader::batcher::Batcher;
use nin::data::{ImageBatcher, ImageItem};

fn item(pixels: Vec<u8>, side: usize, label: usize) -> ImageItem {
    ImageItem {
        pixels,
        height: side,
        width: side,
        label,
    }
}

#[test]
fn pixels_become_unit_floats_in_nchw_order() {
    let device = nin::backend::device("flex").unwrap();
    let items = vec![
        item(vec![0, 51, 102, 255], 2, 3),
        item(vec![255, 0, 0, 0], 2, 7),
    ];
    let batch = ImageBatcher::new().batch(items, &device);
    assert_eq!(batch.images.dims(), [2, 1, 2, 2]);
    assert_eq!(
        common::values(batch.images),
        [0.0, 0.2, 0.4, 1.0, 1.0, 0.0, 0.0, 0.0]
    );
    let targets = batch
        .targets
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(targets, [3, 7]);
}

#[test]
fn resize_is_bilinear_with_half_pixel_centres_like_pytorch() {
    let device = nin::backend::device("flex").unwrap();
    // torch.nn.functional.interpolate(x, size=4, mode="bilinear", align_corners=False) for
    // x = [[0, 1], [2, 3]] / 255.
    let expected = [
        0.0, 0.25, 0.75, 1.0, //
        0.5, 0.75, 1.25, 1.5, //
        1.5, 1.75, 2.25, 2.5, //
        2.0, 2.25, 2.75, 3.0,
    ];
    let batch = ImageBatcher::new()
        .with_resize([4, 4])
        .batch(vec![item(vec![0, 1, 2, 3], 2, 0)], &device);
    assert_eq!(batch.images.dims(), [1, 1, 4, 4]);
    let got: Vec<f32> = common::values(batch.images)
        .iter()
        .map(|v| v * 255.0)
        .collect();
    assert!(common::max_abs_diff(&got, &expected) < 1e-4, "{got:?}");

    // 28 → 224 as d2l does: a constant image stays constant.
    let batch = ImageBatcher::new()
        .with_resize([224, 224])
        .batch(vec![item(vec![128; 784], 28, 1)], &device);
    assert_eq!(batch.images.dims(), [1, 1, 224, 224]);
    assert!(
        common::values(batch.images)
            .iter()
            .all(|v| (v - 128.0 / 255.0).abs() < 1e-6)
    );
}

#[test]
fn normalisation_applies_after_scaling() {
    let device = nin::backend::device("flex").unwrap();
    let batch = ImageBatcher::new()
        .with_normalize(0.5, 0.25)
        .batch(vec![item(vec![0, 255, 0, 255], 2, 0)], &device);
    assert_eq!(common::values(batch.images), [-2.0, 2.0, -2.0, 2.0]);
}
