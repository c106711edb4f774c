//! Inference on flex runs the whole network through the crate's blocked-layout kernels
//! (`Nin::try_forward`); it must give the logits of burn's own modules
//! (`common::reference::network`) for the presets, batch 1 (the threads share each layer) and larger
//! batches (an image per thread), odd sizes and channel counts, batch norms with their running
//! statistics, and after a parameter changes.

use crate::common;

use burn::module::{Module, Param};
use burn::tensor::{Device, Distribution, Tensor};
use nin::{Nin, NinBlockConfig, NinConfig};

fn flex() -> Device {
    nin::backend::device("flex").expect("flex is a default feature")
}

/// `|fast − reference| ≤ 1e-4 · max(|reference|, 1)` for every logit.
fn assert_close(what: &str, fast: &[f32], reference: &[f32]) {
    assert_eq!(fast.len(), reference.len(), "{what}: logit counts");
    for (index, (f, r)) in fast.iter().zip(reference).enumerate() {
        assert!(
            (f - r).abs() <= 1e-4 * r.abs().max(1.0),
            "{what}: logit {index}: {f} against {r}"
        );
    }
}

/// Held while a test seeds flex's random numbers and draws from them: the tests of this file
/// run in threads of one process, which share that generator, and a draw of one test between
/// another's seed and its draws would make that test's network depend on the timing.
static RANDOM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn random_numbers() -> std::sync::MutexGuard<'static, ()> {
    RANDOM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `config`'s network with its batch norms' running statistics moved away from 0 and 1 by two
/// training passes over other images, in evaluation mode on flex; the same for the same `seed`.
fn network(config: &NinConfig, image: [usize; 3], seed: u64) -> Nin {
    let _random = random_numbers();
    let device = flex().autodiff();
    device.seed(seed);
    let model = config.init(&device);
    let [c, h, w] = image;
    for _ in 0..2 {
        let images = Tensor::<4>::random([4, c, h, w], Distribution::Uniform(0.0, 2.0), &device);
        let _ = model.forward(images);
    }
    model.valid()
}

/// Compares the blocked path with burn's modules on `model` for each batch size.
fn check(name: &str, model: &Nin, image: [usize; 3], batches: &[usize]) {
    let [c, h, w] = image;
    for &batch in batches {
        let images = common::pattern_images([batch, c, h, w], &flex());
        let fast = common::values(model.forward(images.clone()));
        let reference = common::values(
            common::reference::network(model, images).expect("the test's images fit the network"),
        );
        assert!(
            fast.iter().any(|&v| v != fast[0]),
            "{name}: the logits are all alike"
        );
        assert_close(&format!("{name}, batch {batch}"), &fast, &reference);
        println!(
            "blocked: {name}, batch {batch}: {} logits match",
            fast.len()
        );
    }
}

#[test]
fn the_presets_match_burns_modules() {
    let presets = [
        ("d2l", NinConfig::d2l(10), [1, 224, 224], vec![1, 3]),
        (
            "compact + batch norm",
            NinConfig::compact(10).with_batch_norm(true),
            [1, 28, 28],
            vec![1, 2, 5],
        ),
        ("compact", NinConfig::compact(10), [1, 28, 28], vec![1, 4]),
        ("cifar10", NinConfig::cifar10(), [3, 32, 32], vec![1, 3]),
    ];
    for (name, config, image, batches) in presets {
        check(name, &network(&config, image, 7), image, &batches);
    }
}

#[cfg(feature = "pretrained")]
#[test]
fn the_shipped_weights_match_burns_modules() {
    let model = nin::pretrained::fashion_mnist(&flex());
    check("pretrained", &model, [1, 28, 28], &[1, 7, 64]);
}

/// Channel counts that fill no block of 16 evenly, or exactly one, rectangular images of odd
/// sides, strides and paddings of each kind, and a class count below one block.
#[test]
fn odd_networks_match_burns_modules() {
    let blocks = vec![
        NinBlockConfig::new(3, 5, 3)
            .with_stride(2)
            .with_padding(1)
            .with_mlp_channels(Some([17, 16])),
        NinBlockConfig::new(16, 33, 5).with_padding(2),
        NinBlockConfig::new(33, 48, 2),
        NinBlockConfig::new(48, 7, 3).with_padding(1),
    ];
    for batch_norm in [false, true] {
        let config = NinConfig::new(blocks.clone())
            .with_pool_size(2)
            .with_batch_norm(batch_norm);
        let name = format!("odd network, batch norm {batch_norm}");
        check(
            &name,
            &network(&config, [3, 45, 39], 11),
            [3, 45, 39],
            &[1, 3],
        );
    }
    let wide_first = NinConfig::new(vec![
        NinBlockConfig::new(20, 32, 1),
        NinBlockConfig::new(32, 3, 3).with_padding(1),
    ]);
    check(
        "20 input channels, 1×1 first layer",
        &network(&wide_first, [20, 9, 9], 5),
        [20, 9, 9],
        &[2],
    );
}

/// The packed weights are kept between calls, so a parameter replaced in place must be noticed
/// and packed again.
#[test]
fn a_replaced_parameter_is_packed_again() {
    let image = [1, 28, 28];
    let mut model = network(&NinConfig::compact(10).with_batch_norm(true), image, 3);
    let images = common::pattern_images([2, 1, 28, 28], &flex());
    let before = common::values(model.forward(images.clone()));

    let weight = model.blocks[1].conv.conv.weight.val();
    let shape = weight.dims();
    let noise = {
        let _random = random_numbers();
        Tensor::<4>::random(shape, Distribution::Normal(0.0, 0.5), &flex())
    };
    let changed = weight + noise;
    model.blocks[1].conv.conv.weight = Param::from_tensor(changed);
    let norm = model.blocks[2].mlp1.norm.as_ref().expect("a batch norm");
    norm.running_mean.update(norm.running_mean.value() + 0.25);

    let after = common::values(model.forward(images.clone()));
    let reference = common::values(common::reference::network(&model, images).expect("fits"));
    assert!(
        common::max_abs_diff(&before, &after) > 1e-3,
        "the change moved no logit"
    );
    assert_close("after the change", &after, &reference);
}

/// A shape that does not fit is still the same error, not a panic in the kernels.
#[test]
fn a_wrong_shape_is_refused_before_the_kernels() {
    let model = NinConfig::compact(10).init(&flex());
    let err = model
        .try_forward(Tensor::<4>::zeros([1, 3, 28, 28], &flex()))
        .unwrap_err();
    assert!(err.to_string().contains("channel"), "{err}");
    let err = model
        .try_forward(Tensor::<4>::zeros([1, 1, 8, 8], &flex()))
        .unwrap_err();
    assert!(err.to_string().contains("resize"), "{err}");
}
