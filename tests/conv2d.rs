//! The crate's convolution kernel (`nin::ops::conv2d` on flex) against burn's own `Conv2d`:
//! the output, the input gradient, and the weight and bias gradients agree within 1e-4 of each
//! tensor's scale, for every shape the NiN networks use and the awkward ones around them.

use crate::common;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use common::conv::{Case, assert_close, cases, check, conv_of, input_of};

#[test]
fn kernel_matches_burn_conv2d_in_values_and_gradients() {
    let device: Device = nin::backend::device("flex")
        .expect("flex is a default feature")
        .autodiff();
    for case in cases() {
        check(&case, &device);
        println!("{}: output and gradients match burn's conv2d", case.name);
    }
}

/// Inference (no autodiff) runs the same kernel; its output must match too.
#[test]
fn kernel_matches_burn_conv2d_in_inference() {
    let device = nin::backend::device("flex").expect("flex is a default feature");
    for case in cases() {
        device.seed(3);
        let conv = conv_of(&case, &device);
        let input = input_of(&case, &device);
        let ours = common::values(nin::ops::conv2d(&conv, input.clone(), case.relu));
        let reference = conv.forward(input);
        let reference = common::values(if case.relu {
            relu(reference)
        } else {
            reference
        });
        assert_close(&case, "inference output", &ours, &reference);
    }
}

/// A diverging run must stay visible: NaN in the input comes out as NaN, through the ReLU too.
#[test]
fn nan_propagates_through_the_kernel_and_its_relu() {
    let device = nin::backend::device("flex").expect("flex is a default feature");
    let case = Case {
        padding: 1,
        relu: true,
        ..Case::new("nan", [1, 2, 5, 5], 3, 3)
    };
    let conv = conv_of(&case, &device);
    let input = Tensor::<4>::full([1, 2, 5, 5], f32::NAN, &device);
    let output = common::values(nin::ops::conv2d(&conv, input, true));
    assert!(output.iter().all(|v| v.is_nan()), "{output:?}");
}

/// Configurations the kernel does not take go to burn's convolution and still compute it.
#[test]
fn other_convolutions_fall_back_to_burn() {
    let device = nin::backend::device("flex").expect("flex is a default feature");
    let input = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &device);
    let dilated = Conv2dConfig::new([4, 4], [3, 3])
        .with_dilation([2, 2])
        .init(&device);
    let grouped = Conv2dConfig::new([4, 4], [3, 3])
        .with_groups(2)
        .init(&device);
    let uneven = Conv2dConfig::new([4, 4], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 0, 0, 1))
        .init(&device);
    for conv in [dilated, grouped, uneven] {
        assert!(!nin::ops::conv2d_uses_kernel(&conv, &input));
        let ours = common::values(nin::ops::conv2d(&conv, input.clone(), false));
        let reference = common::values(conv.forward(input.clone()));
        assert_eq!(ours, reference);
    }
}
