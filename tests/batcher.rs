//! The batcher: scaling, layout, labels, bilinear resize as PyTorch does it, normalisation.
#![cfg(feature = "dataset")]

mod common;

use burn::data::dataloader::batcher::Batcher;
use nin::data::{Augment, ImageBatcher, ImageItem};

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

#[test]
fn augmentation_shifts_and_flips_reproducibly() {
    let device = nin::backend::device("flex").unwrap();
    // A 5×5 image with distinct values 1..=25, so every shift and flip is visible.
    let image: Vec<u8> = (1..=25).collect();
    let items: Vec<_> = (0..32).map(|i| item(image.clone(), 5, i % 10)).collect();
    let augment = Augment {
        crop_padding: 1,
        horizontal_flip: true,
        seed: 42,
    };
    let run = || {
        let batcher = ImageBatcher::new().with_augment(augment);
        [0, 1].map(|_| common::values(batcher.batch(items.clone(), &device).images))
    };
    let first = run();
    // Same seed, same sequence of batches: the same pixels.
    assert_eq!(first, run());
    // Consecutive batches differ, and so do images within a batch.
    assert_ne!(first[0], first[1]);
    let images: Vec<&[f32]> = first[0].chunks(25).collect();
    assert!(images.iter().any(|im| *im != images[0]));

    // Every augmented image is the original shifted by at most one pixel (zero fill), maybe
    // mirrored: check each against all 18 possibilities.
    let original: Vec<f32> = image.iter().map(|p| *p as f32 / 255.0).collect();
    let transform = |dx: i64, dy: i64, flip: bool| -> Vec<f32> {
        (0..25)
            .map(|i| {
                let (x, y) = (i % 5, i / 5);
                let sx = if flip { 4 - x } else { x } + dx;
                let sy = y + dy;
                if (0..5).contains(&sx) && (0..5).contains(&sy) {
                    original[(sy * 5 + sx) as usize]
                } else {
                    0.0
                }
            })
            .collect()
    };
    let mut seen_flip = false;
    for im in &images {
        let matched = (-1..=1)
            .flat_map(|dx| (-1..=1).flat_map(move |dy| [(dx, dy, false), (dx, dy, true)]))
            .find(|&(dx, dy, flip)| transform(dx, dy, flip) == *im);
        let (_, _, flip) = matched.expect("augmented image is a shift/flip of the original");
        seen_flip |= flip;
    }
    assert!(seen_flip, "no image was flipped in 32 draws");
    // Labels are untouched.
    let targets = ImageBatcher::new()
        .with_augment(augment)
        .batch(items.clone(), &device)
        .targets;
    let labels = targets
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(labels, (0..32).map(|i| (i % 10) as i64).collect::<Vec<_>>());
}
