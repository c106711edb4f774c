//! The k×k convolution on cube backends (wgpu, Vulkan, CUDA), in any float type the device
//! computes in.
//!
//! Design notes: `docs/design.md`, "ops::cube_conv".

mod choice;
mod kernels;
mod lowered;

pub use choice::{TunedChoice, tuned_choices};

use burn::backend::TensorMetadata;
use burn::backend::ops::FloatTensorOps;
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;

use choice::{PassInputs, run_pass};

use super::conv_extension::{Conv2dGradients, Conv2dOps, geometry};
use super::conv_settings::{ConvPass, ConvSettings};

impl Conv2dOps for CubeBackend {
    fn conv2d_relu(
        x: CubeTensor,
        weight: CubeTensor,
        bias: CubeTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
        settings: ConvSettings,
    ) -> CubeTensor {
        let geometry = geometry(&x.shape(), &weight.shape(), stride, padding);
        run_pass(
            ConvPass::Forward,
            PassInputs {
                x,
                weight,
                other: bias,
                geometry,
                relu,
                settings,
            },
        )
    }

    fn conv2d_backward(
        x: CubeTensor,
        weight: CubeTensor,
        output_grad: CubeTensor,
        stride: [usize; 2],
        padding: [usize; 2],
        input_grad: bool,
        settings: ConvSettings,
    ) -> Conv2dGradients<Self> {
        let geometry = geometry(&x.shape(), &weight.shape(), stride, padding);
        // The bias gradient is the same sum whichever kernel takes the weights'.
        let bias_grad = Self::float_sum_dim(
            Self::float_sum_dim(Self::float_sum_dim(output_grad.clone(), 3), 2),
            0,
        );
        let bias_grad = Self::float_reshape(bias_grad, [geometry.out_channels].into());
        let inputs = PassInputs {
            x,
            weight,
            other: output_grad,
            geometry,
            relu: false,
            settings,
        };
        let input = input_grad.then(|| run_pass(ConvPass::InputGrad, inputs.clone()));
        let weight = run_pass(ConvPass::WeightGrad, inputs);
        Conv2dGradients::from_parts(input, weight, bias_grad)
    }
}

/// Whether the cube kernel runs on tensors of `device` in `dtype`: a cube backend (with or
/// without autodiff) and a float type.
pub(crate) fn runs_on_cube(device: &burn::tensor::Device, dtype: burn::tensor::DType) -> bool {
    use burn::backend::DispatchDevice;
    use burn::tensor::DType;

    matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::Cube(_)
        )
}

/// What a cube device is and what it offers the convolution kernels.
#[derive(Clone, Debug, PartialEq)]
pub struct CubeDeviceReport {
    /// The device as its driver names it.
    pub name: String,
    /// The runtime and the compiler its kernels go through (`wgpu<wgsl>`, `wgpu<spirv>`,
    /// `cuda`, ...).
    pub compiler: String,
    /// The float types the device computes in, of f32, f16 and bf16.
    pub float_types: Vec<burn::tensor::DType>,
    /// The cooperative-matrix (tensor-core) tiles the runtime offers burn's matrix products:
    /// `a×b→accumulator m×n×k`. Empty where there are none, as with WGSL.
    pub tensor_core_tiles: Vec<String>,
}

/// What `device` offers the convolution kernels, or `None` for a device of another backend.
///
/// ```no_run
/// let device = nin::backend::device("wgpu").unwrap();
/// let report = nin::ops::cube_conv::device_report(&device).unwrap();
/// println!("{} through {}: {} tensor-core tiles", report.name, report.compiler,
///     report.tensor_core_tiles.len());
/// ```
pub fn device_report(device: &burn::tensor::Device) -> Option<CubeDeviceReport> {
    use burn::backend::DispatchDevice;
    use burn::tensor::DType;

    let inner = device.clone().inner();
    let DispatchDevice::Cube(cube) = inner.as_dispatch() else {
        return None;
    };
    let client = cube.client();
    let properties = client.properties();
    let float_types = [DType::F32, DType::F16, DType::BF16]
        .into_iter()
        .filter(|&dtype| device.supports_dtype(dtype))
        .collect();
    let tensor_core_tiles = properties
        .features
        .matmul
        .cmma
        .iter()
        .map(|tile| {
            format!(
                "{}×{}→{} {}×{}×{}",
                tile.a_type, tile.b_type, tile.cd_type, tile.m, tile.n, tile.k
            )
        })
        .collect();
    Some(CubeDeviceReport {
        name: properties.identity.name.clone(),
        compiler: client.name().to_string(),
        float_types,
        tensor_core_tiles,
    })
}
