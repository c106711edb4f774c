//! Convolutions to compare this crate's kernel against burn's `Conv2d` on: every shape the NiN
//! networks use and the awkward ones around them, and the comparison of outputs and gradients.

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Gradients, Tensor};

/// Largest difference allowed, relative to the largest value of the tensor compared.
pub const TOLERANCE: f32 = 1e-4;

/// One convolution to compare.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub name: &'static str,
    pub input: [usize; 4],
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
    /// Feed the kernel a transposed view instead of a contiguous tensor.
    pub strided_view: bool,
    /// Whether the input takes a gradient (the first layer's images do not).
    pub input_grad: bool,
    pub relu: bool,
}

impl Case {
    pub const fn new(
        name: &'static str,
        input: [usize; 4],
        out_channels: usize,
        kernel: usize,
    ) -> Self {
        Self {
            name,
            input,
            out_channels,
            kernel,
            stride: 1,
            padding: 0,
            bias: true,
            strided_view: false,
            input_grad: true,
            relu: false,
        }
    }
}

pub fn cases() -> Vec<Case> {
    let base = Case::new;
    vec![
        // d2l's layers, on smaller images.
        Case {
            stride: 4,
            input_grad: false,
            ..base("11x11 stride 4, no padding", [2, 1, 35, 35], 8, 11)
        },
        Case {
            stride: 4,
            ..base("11x11 stride 4, input gradient", [2, 2, 31, 27], 4, 11)
        },
        Case {
            padding: 2,
            ..base("5x5 padding 2", [3, 6, 13, 13], 10, 5)
        },
        Case {
            padding: 1,
            ..base("3x3 padding 1", [4, 5, 9, 9], 7, 3)
        },
        base("1x1", [3, 12, 7, 7], 9, 1),
        // Enough images that each thread's share is several products' worth, whatever the core
        // count, so that images are grouped into one product side by side.
        Case {
            padding: 1,
            ..base("3x3 on many small images", [48, 3, 6, 5], 4, 3)
        },
        base("1x1 on many small images", [48, 5, 3, 3], 4, 1),
        // Batch 1 (products spread over threads), odd sizes.
        Case {
            padding: 1,
            ..base("batch 1, odd sizes", [1, 3, 11, 7], 5, 3)
        },
        Case {
            stride: 2,
            padding: 2,
            ..base("5x5 stride 2, odd sizes", [5, 3, 15, 9], 4, 5)
        },
        base("1x1 batch 1", [1, 16, 5, 3], 8, 1),
        // Views, no bias, the ReLU folded in.
        Case {
            padding: 1,
            strided_view: true,
            ..base("3x3 on a transposed view", [2, 4, 8, 6], 6, 3)
        },
        Case {
            strided_view: true,
            ..base("1x1 on a transposed view", [3, 4, 6, 5], 6, 1)
        },
        Case {
            padding: 1,
            bias: false,
            ..base("3x3 without bias", [2, 4, 8, 8], 6, 3)
        },
        Case {
            padding: 2,
            relu: true,
            ..base("5x5 with ReLU", [3, 4, 10, 10], 6, 5)
        },
        Case {
            relu: true,
            bias: false,
            ..base("1x1 with ReLU, no bias", [2, 8, 6, 6], 5, 1)
        },
        // Layers that narrow (fewer output channels than input, like the last block's ten
        // classes) run through the convolution's mirror image instead.
        Case {
            padding: 1,
            ..base("3x3 narrowing", [3, 12, 5, 5], 4, 3)
        },
        Case {
            padding: 1,
            relu: true,
            ..base("3x3 narrowing on many small images", [48, 12, 2, 2], 3, 3)
        },
        base("3x3 narrowing, batch 1, no padding", [1, 9, 7, 6], 2, 3),
        Case {
            padding: 1,
            input_grad: false,
            bias: false,
            ..base("3x3 narrowing, no input gradient", [4, 6, 5, 5], 2, 3)
        },
        Case {
            padding: 2,
            strided_view: true,
            ..base("5x5 narrowing on a transposed view", [2, 8, 7, 9], 3, 5)
        },
        // A window larger than the image, reaching into the padding on every side.
        Case {
            padding: 2,
            ..base("5x5 over a 2x2 image", [2, 3, 2, 2], 4, 5)
        },
    ]
}

pub fn conv_of(case: &Case, device: &Device) -> Conv2d {
    let [_, channels, _, _] = case.input;
    let p = case.padding;
    Conv2dConfig::new([channels, case.out_channels], [case.kernel, case.kernel])
        .with_stride([case.stride, case.stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(case.bias)
        .init(device)
}

/// The output shape of `case`'s convolution.
fn case_output_dims(case: &Case) -> [usize; 4] {
    let [_, channels, _, _] = case.input;
    nin::ops::ConvGeometry::new(
        case.input,
        [case.out_channels, channels, case.kernel, case.kernel],
        [case.stride; 2],
        [case.padding; 2],
    )
    .output_shape()
}

/// Output and gradients of one path.
struct Pass {
    output: Vec<f32>,
    input_grad: Option<Vec<f32>>,
    weight_grad: Vec<f32>,
    bias_grad: Option<Vec<f32>>,
}

fn grad_of<const D: usize>(tensor: Tensor<D>, grads: &Gradients) -> Option<Vec<f32>> {
    tensor.grad(grads).map(super::values)
}

/// The input for `case`: contiguous, or a transposed view of a tensor stored the other way.
pub fn input_of(case: &Case, device: &Device) -> Tensor<4> {
    let [n, c, h, w] = case.input;
    if case.strided_view {
        Tensor::<4>::random([n, c, w, h], Distribution::Normal(0.0, 1.0), device).swap_dims(2, 3)
    } else {
        Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), device)
    }
}

fn pass(
    case: &Case,
    conv: &Conv2d,
    input: &Tensor<4>,
    upstream: &Tensor<4>,
    forward: impl Fn(&Conv2d, Tensor<4>) -> Tensor<4>,
) -> Pass {
    // Fresh parameter nodes, so the two passes' gradients stay apart.
    let conv = Conv2d {
        weight: Param::from_tensor(conv.weight.val().detach().require_grad()),
        bias: conv
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().detach().require_grad())),
        ..conv.clone()
    };
    let input = if case.input_grad {
        input.clone().require_grad()
    } else {
        input.clone()
    };
    let output = forward(&conv, input.clone());
    let grads = (output.clone() * upstream.clone()).sum().backward();
    Pass {
        output: super::values(output),
        input_grad: grad_of(input, &grads),
        weight_grad: grad_of(conv.weight.val(), &grads).expect("the weight takes a gradient"),
        bias_grad: conv.bias.as_ref().and_then(|b| grad_of(b.val(), &grads)),
    }
}

pub fn assert_close(case: &Case, what: &str, ours: &[f32], burn: &[f32]) {
    assert_eq!(
        ours.len(),
        burn.len(),
        "{}: {what}: lengths differ",
        case.name
    );
    let scale = burn.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let diff = super::max_abs_diff(ours, burn);
    assert!(
        diff <= TOLERANCE * scale,
        "{}: {what}: the kernel differs from burn by {diff:.2e} (values up to {scale:.2e})",
        case.name
    );
}

pub fn check(case: &Case, device: &Device) {
    check_with(case, device, &nin::ops::ConvSettings::default());
}

/// [`check`] with the cube backends' kernel run as `settings` say.
pub fn check_with(case: &Case, device: &Device, settings: &nin::ops::ConvSettings) {
    device.seed(7);
    let conv = conv_of(case, device);
    let input = input_of(case, device);
    assert!(
        nin::ops::conv2d_uses_kernel(&conv, &input),
        "{}: the kernel does not take this convolution",
        case.name
    );
    let upstream = Tensor::<4>::random(
        case_output_dims(case),
        Distribution::Uniform(-1.0, 1.0),
        device,
    );

    let ours = pass(case, &conv, &input, &upstream, |conv, x| {
        nin::ops::conv2d_with(conv, x, case.relu, settings)
    });
    // burn's convolution runs on flex whatever `device` is: on a cube backend it would autotune
    // its kernels for every case's shape (minutes on lavapipe) to give the values flex gives.
    let reference = Device::flex().autodiff();
    let copy = |tensor: &Tensor<4>| Tensor::<4>::from_data(tensor.to_data(), &reference);
    let burn = pass(
        case,
        &conv.clone().to_device(&reference),
        &copy(&input),
        &copy(&upstream),
        |conv, x| {
            let y = conv.forward(x);
            if case.relu { relu(y) } else { y }
        },
    );

    assert!(
        ours.output.iter().any(|v| *v != 0.0),
        "{}: degenerate output",
        case.name
    );
    assert_close(case, "output", &ours.output, &burn.output);
    assert_close(
        case,
        "weight gradient",
        &ours.weight_grad,
        &burn.weight_grad,
    );
    match (&ours.bias_grad, &burn.bias_grad) {
        (Some(o), Some(b)) => assert_close(case, "bias gradient", o, b),
        (None, None) => assert!(!case.bias),
        _ => panic!("{}: only one path has a bias gradient", case.name),
    }
    match (&ours.input_grad, &burn.input_grad) {
        (Some(o), Some(b)) => assert_close(case, "input gradient", o, b),
        (None, None) => assert!(!case.input_grad),
        _ => panic!("{}: only one path has an input gradient", case.name),
    }
}
