//! The crate's max-pool kernel (`nin::ops::max_pool2d` on flex) against burn's `MaxPool2d`: the
//! same output and the same input gradient (routed to the first maximum of each window).

use crate::common;

use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Distribution, Tensor};

fn pool(kernel: usize, stride: usize) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .init()
}

/// Output and input gradient of `forward` for a fixed upstream gradient.
fn pass(
    input: &Tensor<4>,
    upstream: &Tensor<4>,
    forward: impl Fn(Tensor<4>) -> Tensor<4>,
) -> (Vec<f32>, Vec<f32>) {
    let input = input.clone().require_grad();
    let output = forward(input.clone());
    let grads = (output.clone() * upstream.clone()).sum().backward();
    let input_grad = input.grad(&grads).expect("the input takes a gradient");
    (common::values(output), common::values(input_grad))
}

#[test]
fn kernel_matches_burn_max_pool() {
    let device: Device = nin::backend::device("flex")
        .expect("flex is a default feature")
        .autodiff();
    // NiN's 3×3/2 pools at the presets' sizes, odd and even sides, other windows and a view.
    let cases = [
        ("3x3/2 54x54", [2, 3, 54, 54], 3, 2, false),
        ("3x3/2 odd sides", [3, 2, 13, 9], 3, 2, false),
        ("3x3/2 smallest", [2, 2, 3, 3], 3, 2, false),
        ("2x2/2", [2, 3, 8, 7], 2, 2, false),
        ("3x3/1 overlapping", [1, 2, 6, 7], 3, 1, false),
        ("3x3/2 transposed view", [2, 3, 11, 8], 3, 2, true),
    ];
    for (name, shape, kernel, stride, view) in cases {
        device.seed(5);
        let [n, c, h, w] = shape;
        let input = if view {
            Tensor::<4>::random([n, c, w, h], Distribution::Normal(0.0, 1.0), &device)
                .swap_dims(2, 3)
        } else {
            Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
        };
        let pool = pool(kernel, stride);
        let out_dims = pool.forward(input.clone()).dims();
        let upstream = Tensor::<4>::random(out_dims, Distribution::Uniform(-1.0, 1.0), &device);
        let ours = pass(&input, &upstream, |x| nin::ops::max_pool2d(&pool, x));
        let burn = pass(&input, &upstream, |x| pool.forward(x));
        assert_eq!(ours.0, burn.0, "{name}: output");
        assert_eq!(ours.1, burn.1, "{name}: input gradient");
        println!("{name}: output and input gradient equal burn's");
    }
}

#[test]
fn ties_send_the_gradient_to_the_first_maximum_as_burn_does() {
    let device: Device = nin::backend::device("flex")
        .expect("flex is a default feature")
        .autodiff();
    // Integer values 0..3 make many ties in every window.
    let values: Vec<f32> = (0..2 * 2 * 9 * 9).map(|i| ((i * 7) % 4) as f32).collect();
    let input = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([2, 2, 9, 9]);
    let pool = pool(3, 2);
    let upstream = Tensor::<4>::ones([2, 2, 4, 4], &device);
    let ours = pass(&input, &upstream, |x| nin::ops::max_pool2d(&pool, x));
    let burn = pass(&input, &upstream, |x| pool.forward(x));
    assert_eq!(ours, burn);
}

#[test]
fn nan_propagates_through_the_pool() {
    let device = nin::backend::device("flex").expect("flex is a default feature");
    let mut values = vec![0.5f32; 9 * 9];
    values[40] = f32::NAN;
    let input = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 1, 9, 9]);
    let output = common::values(nin::ops::max_pool2d(&pool(3, 2), input));
    assert!(output.iter().any(|v| v.is_nan()), "{output:?}");
}
