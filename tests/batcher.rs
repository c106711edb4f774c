//! The batcher: scaling, layout, labels, bilinear resize as PyTorch does it, normalisation.
#![cfg(feature = "dataset")]

use crate::common;

use burn::data::dataloader::batcher::Batcher;
use nin::data::{Augment, ImageBatcher, ImageItem};

fn item(pixels: Vec<u8>, side: usize, label: usize) -> ImageItem {
    ImageItem::grayscale(pixels, side, side, label)
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

/// A `[3, side, side]` item: channel `c` holds `planes[c]` everywhere.
fn colour(planes: [u8; 3], side: usize, label: usize) -> ImageItem {
    ImageItem {
        pixels: planes
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, side * side))
            .collect(),
        channels: 3,
        height: side,
        width: side,
        label,
    }
}

#[test]
fn colour_images_keep_their_channels_and_normalise_per_channel() {
    let device = nin::backend::device("flex").unwrap();
    let items = vec![colour([0, 51, 255], 2, 1), colour([255, 0, 102], 2, 2)];
    let batch = ImageBatcher::new().batch(items.clone(), &device);
    assert_eq!(batch.images.dims(), [2, 3, 2, 2]);
    let plain = common::values(batch.images);
    let planes: Vec<f32> = plain.chunks(4).map(|plane| plane[0]).collect();
    assert_eq!(planes, [0.0, 0.2, 1.0, 1.0, 0.0, 0.4]);
    assert!(
        plain
            .chunks(4)
            .all(|plane| plane.iter().all(|v| *v == plane[0]))
    );

    // Channel c becomes (x − mean[c]) / std[c].
    let normalised = ImageBatcher::new()
        .with_channel_normalize(&[(0.0, 1.0), (0.2, 0.5), (0.5, 0.25)])
        .batch(items.clone(), &device);
    let planes: Vec<f32> = common::values(normalised.images)
        .chunks(4)
        .map(|plane| plane[0])
        .collect();
    let expected = [0.0, 0.0, 2.0, 1.0, -0.4, -0.4];
    assert!(
        common::max_abs_diff(&planes, &expected) < 1e-6,
        "{planes:?}"
    );

    // One pair normalises every channel alike.
    let one = ImageBatcher::new()
        .with_normalize(0.5, 0.5)
        .batch(items, &device);
    let planes: Vec<f32> = common::values(one.images)
        .chunks(4)
        .map(|plane| plane[0])
        .collect();
    let expected = [-1.0, -0.6, 1.0, 1.0, -1.0, -0.2];
    assert!(
        common::max_abs_diff(&planes, &expected) < 1e-6,
        "{planes:?}"
    );
}

#[test]
#[should_panic(expected = "normalises 2 channels, the images have 3")]
fn a_normalisation_for_another_channel_count_is_refused() {
    let device = nin::backend::device("flex").unwrap();
    ImageBatcher::new()
        .with_channel_normalize(&[(0.0, 1.0), (0.0, 1.0)])
        .batch(vec![colour([1, 2, 3], 2, 0)], &device);
}

#[test]
fn augmentation_moves_every_channel_of_an_image_alike() {
    let device = nin::backend::device("flex").unwrap();
    // Channel c of each 5×5 image holds 1..=25 plus 50·c, so the channels of an augmented
    // image must still differ by exactly 50/255 wherever the shift kept a pixel.
    let pixels: Vec<u8> = (0..3u8)
        .flat_map(|c| (1..=25).map(move |v| v + 50 * c))
        .collect();
    let items: Vec<ImageItem> = (0..16)
        .map(|label| ImageItem {
            pixels: pixels.clone(),
            channels: 3,
            height: 5,
            width: 5,
            label,
        })
        .collect();
    let batcher = ImageBatcher::new().with_augment(Augment {
        crop_padding: 1,
        horizontal_flip: true,
        seed: 7,
    });
    let values = common::values(batcher.batch(items, &device).images);
    let original: Vec<f32> = pixels[..25].iter().map(|&v| v as f32 / 255.0).collect();
    let mut moved = 0;
    for image in values.chunks(75) {
        let planes: Vec<&[f32]> = image.chunks(25).collect();
        for i in 0..25 {
            if planes[0][i] == 0.0 {
                assert!(planes.iter().all(|p| p[i] == 0.0), "filled alike");
                continue;
            }
            for c in 1..3 {
                let step = planes[c][i] - planes[c - 1][i];
                assert!((step - 50.0 / 255.0).abs() < 1e-6, "channel {c}, pixel {i}");
            }
        }
        if planes[0] != original.as_slice() {
            moved += 1;
        }
    }
    assert!(moved > 0, "no image was augmented");
}
