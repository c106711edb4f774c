//! The float type a network computes in.

use burn::tensor::{DType, Device, FloatDType};
use serde::{Deserialize, Serialize};

/// The float type a [`Nin`](crate::Nin) computes its layers in.
///
/// Mixed precision as PyTorch's autocast does it: the parameters, the optimiser's state,
/// batch-norm statistics and the loss stay `f32`; images are cast on the way into the network
/// and each convolution's weights on the way into it, and the last block's maps are cast back
/// to `f32` before the global average pool. `f16` and `bf16` halve the memory traffic of every
/// activation and, where the device has them (`--features vulkan` on a card whose driver
/// offers cooperative matrices, or CUDA), run the matrix products on tensor cores.
///
/// ```
/// use nin::Precision;
///
/// let precision: Precision = "bf16".parse().unwrap();
/// assert_eq!(precision, Precision::Bf16);
/// assert!("f8".parse::<Precision>().unwrap_err().to_string().contains("f32, f16, bf16"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Precision {
    /// Everything in `f32`.
    #[default]
    F32,
    /// Layers in IEEE half precision; training scales the loss so that small gradients do not
    /// vanish below its range (a dynamic loss scale, as PyTorch's `GradScaler` keeps it).
    F16,
    /// Layers in bfloat16: `f32`'s range with a shorter mantissa, so no loss scaling.
    Bf16,
}

impl Precision {
    /// Every precision, for help texts.
    pub const ALL: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Bf16];

    /// The name used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    /// The float type of the layers.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }

    /// Checks that `device` computes in this precision; the error names the device and what
    /// to use instead.
    ///
    /// ```
    /// use nin::Precision;
    ///
    /// let device = nin::backend::device("flex").unwrap();
    /// assert!(Precision::F32.check(&device).is_ok());
    /// ```
    pub fn check(self, device: &Device) -> Result<(), PrecisionError> {
        let float = match self {
            Precision::F32 => return Ok(()),
            Precision::F16 => FloatDType::F16,
            Precision::Bf16 => FloatDType::BF16,
        };
        if device.supports_dtype(float) {
            Ok(())
        } else {
            Err(PrecisionError::Unsupported {
                precision: self,
                device: format!("{device:?}"),
            })
        }
    }
}

impl crate::names::Named for Precision {
    const KIND: &'static str = "precision";

    fn all() -> &'static [Self] {
        &Self::ALL
    }

    fn name(self) -> &'static str {
        Precision::name(self)
    }
}

crate::names::impl_named!(Precision);

/// Why a network cannot compute in a precision on a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrecisionError {
    /// The device has no arithmetic in that float type.
    #[error(
        "{device} cannot compute in {precision}; use --precision f32, or f16 on a GPU whose \
         wgpu/Vulkan driver has shader-f16 (bf16 needs CUDA: wgpu and Vulkan have no bf16 \
         arithmetic)"
    )]
    Unsupported {
        /// The precision asked for.
        precision: Precision,
        /// The device, as it prints.
        device: String,
    },
}
