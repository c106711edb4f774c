//! The convolution on cube backends (`nin::ops::cube_conv`, run here on wgpu: lavapipe on a
//! CPU-only machine) against burn's own `Conv2d` on the same device: the output, the input
//! gradient, and the weight and bias gradients agree within 1e-4 of each tensor's scale with
//! either kernel forced and with the autotuned choice; the choice is made once per shape and
//! then reused.
#![cfg(feature = "wgpu")]

use crate::common;

use burn::tensor::Device;
use common::conv::{Case, assert_close, cases, check_with, conv_of, input_of};
use nin::ops::cube_conv::tuned_choices;
use nin::ops::{ConvChoice, ConvKernel, ConvPass, ConvSettings, KernelRuns};

/// The cases the cube kernel takes: every one but the 1×1 layers, which stay matrix products.
fn cube_cases(device: &Device) -> Vec<Case> {
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|case| {
            nin::ops::conv2d_uses_kernel(&conv_of(case, device), &input_of(case, device))
        })
        .collect();
    assert!(
        cases.len() >= 10,
        "the kernel takes only {} cases",
        cases.len()
    );
    cases
}

const CHOICES: [ConvChoice; 3] = [
    ConvChoice::Always(ConvKernel::Im2col),
    ConvChoice::Always(ConvKernel::Burn),
    ConvChoice::Autotune,
];

/// The cases each choice is checked on: every one for this crate's kernel; for burn's, which
/// the reference runs too, and for the tuned choice, which is one of the two, d2l's three
/// window sizes and a strided view (each case costs an autotuning of burn's kernels here).
fn cases_for(choice: ConvChoice, device: &Device) -> Vec<Case> {
    let all = cube_cases(device);
    if choice == ConvChoice::Always(ConvKernel::Im2col) {
        return all;
    }
    let some = [
        "11x11 stride 4, input gradient",
        "5x5 padding 2",
        "3x3 padding 1",
        "3x3 on a transposed view",
    ];
    all.into_iter()
        .filter(|case| some.contains(&case.name))
        .collect()
}

/// Training first, then inference, in one test: inference's forward kernels and tuned choices
/// are then the ones training compiled and tuned. As two tests side by side, each compiled and
/// tuned them (inference took 192 s from cold on lavapipe, docs/ci.md).
#[test]
fn both_kernels_and_the_tuned_choice_match_burn_conv2d_in_training_and_inference() {
    let Some(device) = common::wgpu("cube_conv") else {
        return;
    };
    in_training(&device.clone().autodiff());
    in_inference(&device);
}

fn in_training(device: &Device) {
    for choice in CHOICES {
        let settings = ConvSettings::new(choice);
        for case in cases_for(choice, device) {
            let started = std::time::Instant::now();
            check_with(&case, device, &settings);
            println!(
                "{choice:?}: {}: output and gradients match ({:.1} s)",
                case.name,
                started.elapsed().as_secs_f64()
            );
        }
    }
}

fn in_inference(device: &Device) {
    for choice in CHOICES {
        let settings = ConvSettings::new(choice);
        for case in cases_for(choice, device) {
            device.seed(3);
            let conv = conv_of(&case, device);
            let input = input_of(&case, device);
            let ours = nin::ops::conv2d_with(&conv, input.clone(), case.relu, &settings);
            let reference = conv.forward(input);
            let reference = if case.relu {
                burn::tensor::activation::relu(reference)
            } else {
                reference
            };
            let (ours, reference) = (common::values(ours), common::values(reference));
            assert_close(&case, "inference output", &ours, &reference);
        }
    }
}

#[test]
fn the_tuned_choice_is_made_once_per_shape_and_reused() {
    let Some(device) = common::wgpu("cube_conv") else {
        return;
    };
    let device = device.autodiff();
    // A shape no other test uses, so that its key is this test's alone; the runs are counted
    // for this test's calls only.
    let case = Case {
        padding: 1,
        ..Case::new("tuned once", [3, 5, 11, 13], 7, 3)
    };
    let counts = KernelRuns::new();
    let settings = ConvSettings::new(ConvChoice::Autotune).counting_in(&counts);
    let runs = |pass: ConvPass| ConvKernel::ALL.map(|kernel| counts.get(pass, kernel));
    let conv = conv_of(&case, &device);
    let images = input_of(&case, &device);
    let step = || {
        let input = images.clone().require_grad();
        let output = nin::ops::conv2d_with(&conv, input.clone(), true, &settings);
        let grads = output.sum().backward();
        // Reading the gradient waits for the backward pass to run.
        common::values(input.grad(&grads).expect("the input takes a gradient"))
    };
    let first = step();
    let after_first = ConvPass::ALL.map(runs);
    let second = step();
    let after_second = ConvPass::ALL.map(runs);

    for (index, pass) in ConvPass::ALL.into_iter().enumerate() {
        let chosen = tuned_choices()
            .into_iter()
            .find(|tuned| {
                tuned.pass == pass
                    && tuned.geometry.input == [11, 13]
                    && tuned.geometry.in_channels == 5
            })
            .unwrap_or_else(|| panic!("{pass:?}: no choice recorded for the shape"))
            .kernel;
        let k = chosen as usize;
        assert!(
            after_first[index][k] > 0,
            "{pass:?}: the chosen kernel ({chosen}) did not run on first use"
        );
        let second_runs: Vec<u64> = (0..2)
            .map(|kernel| after_second[index][kernel] - after_first[index][kernel])
            .collect();
        let mut expected = vec![0, 0];
        expected[k] = 1;
        assert_eq!(
            second_runs, expected,
            "{pass:?}: the second step must run the chosen kernel ({chosen}) once and the \
             other not at all"
        );
        println!("{pass:?}: {chosen} chosen, reused on the second step");
    }
    assert_eq!(first.len(), second.len());
    assert_close(&case, "input gradient of two steps", &second, &first);
}

#[test]
fn the_column_budget_splits_a_batch_into_runs_with_the_same_result() {
    let Some(device) = common::wgpu("cube_conv") else {
        return;
    };
    let case = Case {
        padding: 2,
        ..Case::new("runs of images", [7, 3, 9, 8], 5, 5)
    };
    let device = device.autodiff();
    let ours = ConvSettings::new(ConvChoice::Always(ConvKernel::Im2col));
    // Each run one or two images' patches: four runs, the last shorter; then one image a run.
    let one_image = 3 * 5 * 5 * 9 * 8 * 4;
    for budget in [2 * one_image, 1] {
        check_with(
            &case,
            &device,
            &ours.clone().with_column_budget_bytes(budget),
        );
    }
}
