//! Picking a backend by name: the one place that maps `auto | flex | ndarray | wgpu | vulkan |
//! cuda` to a Burn [`Device`].
//!
//! Since Burn 0.22 the backend is chosen at run time by the `Device` a model and its tensors
//! live on, so one [`Nin`](crate::Nin) type serves every backend compiled into the program.

use core::fmt;
use core::str::FromStr;

use burn::tensor::Device;

/// A backend this crate can run on, named as on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendName {
    /// The best backend available: a CUDA GPU, else a hardware GPU through wgpu, else flex.
    Auto,
    /// Burn's pure-Rust CPU backend (feature `flex`, on by default).
    Flex,
    /// The ndarray CPU backend (feature `ndarray`); deprecated upstream and much slower than flex.
    NdArray,
    /// GPUs through wgpu: Vulkan, Metal or DirectX 12 (feature `wgpu`).
    Wgpu,
    /// GPUs through wgpu pinned to Vulkan, with Vulkan's SPIR-V compiler and its cooperative
    /// matrices (tensor cores for `f16`) where the driver offers them (feature `vulkan`).
    Vulkan,
    /// NVIDIA GPUs through CUDA (feature `cuda`).
    Cuda,
}

impl BackendName {
    /// Every name, in the order they are listed to users.
    pub const ALL: [BackendName; 6] = [
        BackendName::Auto,
        BackendName::Flex,
        BackendName::NdArray,
        BackendName::Wgpu,
        BackendName::Vulkan,
        BackendName::Cuda,
    ];

    /// The name as typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Auto => "auto",
            BackendName::Flex => "flex",
            BackendName::NdArray => "ndarray",
            BackendName::Wgpu => "wgpu",
            BackendName::Vulkan => "vulkan",
            BackendName::Cuda => "cuda",
        }
    }

    /// The cargo feature of this crate that compiles the backend in (`None` for `auto`).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            BackendName::Auto => None,
            other => Some(other.as_str()),
        }
    }

    /// Whether this build can use the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendName::Auto => true,
            BackendName::Flex => cfg!(feature = "flex"),
            BackendName::NdArray => cfg!(feature = "ndarray"),
            BackendName::Wgpu => cfg!(feature = "wgpu"),
            BackendName::Vulkan => cfg!(feature = "vulkan"),
            BackendName::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this build (without `auto`).
    pub fn compiled() -> Vec<BackendName> {
        Self::ALL
            .into_iter()
            .filter(|b| *b != BackendName::Auto && b.is_compiled())
            .collect()
    }

    /// Opens the backend's default device.
    ///
    /// `auto` tries a CUDA device, then a hardware GPU through wgpu (a software rasterizer such
    /// as lavapipe does not count), then flex, then ndarray. `wgpu` takes whatever adapter wgpu
    /// finds, software ones included, so CPU-only machines can still exercise the GPU path.
    pub fn device(self) -> Result<Device, BackendError> {
        if !self.is_compiled() {
            return Err(BackendError::NotCompiled(self));
        }
        match self {
            BackendName::Auto => auto_device(),
            BackendName::Flex => flex_device(),
            BackendName::NdArray => ndarray_device(),
            BackendName::Wgpu => wgpu_device(),
            BackendName::Vulkan => vulkan_device(),
            BackendName::Cuda => cuda_device(),
        }
    }
}

impl crate::names::Named for BackendName {
    const KIND: &'static str = "backend";

    fn all() -> &'static [Self] {
        &Self::ALL
    }

    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for BackendName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendName {
    type Err = BackendError;

    /// Parses a backend name, ignoring ASCII case and surrounding whitespace.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        crate::names::parse(name).map_err(|unknown| BackendError::Unknown(unknown.given))
    }
}

/// Opens the device for a backend name: `auto`, `flex`, `ndarray`, `wgpu`, `vulkan` or `cuda`.
///
/// ```
/// // `flex` is a default feature, so this works in every default build.
/// let device = nin::backend::device("flex").unwrap();
/// assert!(!device.is_autodiff());
///
/// let err = nin::backend::device("tpu").unwrap_err();
/// assert!(err.to_string().contains("auto, flex, ndarray, wgpu, vulkan, cuda"));
/// ```
pub fn device(name: &str) -> Result<Device, BackendError> {
    name.parse::<BackendName>()?.device()
}

/// Opens the devices of a comma-separated list, for data-parallel training. Each entry is a
/// backend name as [`device`] takes it, or one of:
///
/// - `wgpu:N` / `vulkan:N` / `cuda:N`: the N-th device the backend enumerates (from 0);
/// - `wgpu:all` / `vulkan:all` / `cuda:all`: every device it enumerates;
/// - `wgpu:default`, `wgpu:cpu`: wgpu's preferred adapter and its first CPU adapter. On a
///   machine whose only adapter is a software one (lavapipe), these two are distinct devices
///   of the same adapter.
///
/// The devices must be distinct: naming one twice (`flex,flex`, or `wgpu:cpu` and the `wgpu:N`
/// that is the same adapter) is an error.
///
/// ```
/// let err = nin::backend::devices("flex,flex").unwrap_err();
/// assert!(err.to_string().contains("twice"));
/// assert!(nin::backend::devices("").is_err());
/// ```
pub fn devices(spec: &str) -> Result<Vec<Device>, BackendError> {
    let bad = |reason: String| BackendError::Devices {
        spec: spec.to_string(),
        reason,
    };
    let mut devices: Vec<Device> = Vec::new();
    for entry in spec.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(bad(format!(
                "an empty entry; list devices separated by commas, each a backend ({}) or \
                 wgpu:N, wgpu:all, wgpu:default, wgpu:cpu, vulkan:N, vulkan:all, cuda:N, cuda:all",
                names_list()
            )));
        }
        for device in entry_devices(entry).map_err(|reason| bad(format!("{entry}: {reason}")))? {
            if devices.contains(&device) {
                return Err(bad(format!(
                    "{entry} names a device listed before ({device:?}) a second time; each \
                     device can be listed once (a device listed twice would only share its \
                     work with itself)"
                )));
            }
            devices.push(device);
        }
    }
    Ok(devices)
}

/// The devices of one entry of a [`devices`] list.
fn entry_devices(entry: &str) -> Result<Vec<Device>, String> {
    let (name, which) = match entry.split_once(':') {
        Some((name, which)) => (name, Some(which.trim().to_ascii_lowercase())),
        None => (entry, None),
    };
    let backend: BackendName = name.parse().map_err(|e: BackendError| e.to_string())?;
    let Some(which) = which else {
        return backend.device().map(|d| vec![d]).map_err(|e| e.to_string());
    };
    if !backend.is_compiled() {
        return Err(BackendError::NotCompiled(backend).to_string());
    }
    enumerated_devices(backend, &which)
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn enumerated_devices(backend: BackendName, which: &str) -> Result<Vec<Device>, String> {
    use burn::tensor::DeviceType;

    let device_type = match backend {
        #[cfg(feature = "wgpu")]
        BackendName::Wgpu => DeviceType::Wgpu,
        #[cfg(feature = "vulkan")]
        BackendName::Vulkan => DeviceType::Vulkan,
        #[cfg(feature = "cuda")]
        BackendName::Cuda => DeviceType::Cuda,
        other => return Err(format!("`{other}` has one device; name it without `:`")),
    };
    #[cfg(feature = "wgpu")]
    match (backend, which) {
        (BackendName::Wgpu, "default") => {
            return Ok(vec![Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)]);
        }
        (BackendName::Wgpu, "cpu") => return Ok(vec![Device::wgpu(burn::tensor::DeviceKind::Cpu)]),
        _ => {}
    }
    let found: Vec<Device> = Device::enumerate(device_type).into_iter().collect();
    if which == "all" {
        if found.is_empty() {
            return Err(format!("`{backend}` found no device"));
        }
        return Ok(found);
    }
    let index: usize = which
        .parse()
        .map_err(|_| format!("`{which}` is not a device number, `all`, `default` or `cpu`"))?;
    found
        .get(index)
        .cloned()
        .map(|d| vec![d])
        .ok_or_else(|| format!("`{backend}` has {} device(s), numbered from 0", found.len()))
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn enumerated_devices(backend: BackendName, _which: &str) -> Result<Vec<Device>, String> {
    Err(format!("`{backend}` has one device; name it without `:`"))
}

/// Why a backend name could not be turned into a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The name is not one of the known backends.
    #[error("unknown backend {0:?}; valid names are: {names}", names = names_list())]
    Unknown(String),
    /// The backend exists but this build does not include it.
    #[error(
        "backend `{name}` is not compiled into this build; rebuild with `--features {feature}` \
         (compiled in: {compiled})",
        name = .0,
        feature = .0.feature().unwrap_or_default(),
        compiled = compiled_list()
    )]
    NotCompiled(BackendName),
    /// The backend is compiled in but the machine has no device for it.
    #[error("backend `{backend}` has no usable device: {reason}")]
    NoDevice {
        /// The backend that was asked for.
        backend: BackendName,
        /// What was missing and how to get it.
        reason: String,
    },
    /// A list of devices that does not name distinct, existing devices.
    #[error("devices {spec:?}: {reason}")]
    Devices {
        /// The list as given.
        spec: String,
        /// What is wrong with it, and the syntax.
        reason: String,
    },
}

fn names_list() -> String {
    let names: Vec<_> = BackendName::ALL.iter().map(|b| b.as_str()).collect();
    names.join(", ")
}

fn compiled_list() -> String {
    let names: Vec<_> = BackendName::compiled().iter().map(|b| b.as_str()).collect();
    if names.is_empty() {
        "none; enable one of the backend features".to_string()
    } else {
        names.join(", ")
    }
}

fn auto_device() -> Result<Device, BackendError> {
    if let Some(device) = hardware_gpu() {
        return Ok(device);
    }
    if cfg!(feature = "flex") {
        return flex_device();
    }
    if cfg!(feature = "ndarray") {
        return ndarray_device();
    }
    Err(BackendError::NoDevice {
        backend: BackendName::Auto,
        reason: format!(
            "no GPU was found and no CPU backend is compiled in; enable the `flex` feature \
             (compiled in: {})",
            compiled_list()
        ),
    })
}

/// The first hardware GPU this build can use: a CUDA device, else a discrete, integrated or
/// virtual GPU through wgpu. Software adapters such as lavapipe are not GPUs here. This is
/// what `auto` picks when it finds one.
#[doc(hidden)] // for the tests: `device("auto")` is the way in
pub fn hardware_gpu() -> Option<Device> {
    #[cfg(feature = "cuda")]
    if let Ok(device) = cuda_device() {
        return Some(device);
    }
    #[cfg(feature = "wgpu")]
    if let Some(device) = hardware_wgpu_device() {
        return Some(device);
    }
    None
}

#[cfg(feature = "flex")]
fn flex_device() -> Result<Device, BackendError> {
    Ok(Device::flex())
}

#[cfg(not(feature = "flex"))]
fn flex_device() -> Result<Device, BackendError> {
    Err(BackendError::NotCompiled(BackendName::Flex))
}

#[cfg(feature = "ndarray")]
fn ndarray_device() -> Result<Device, BackendError> {
    // ndarray is deprecated upstream but kept for users who ask for it by name.
    #[allow(deprecated)]
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Result<Device, BackendError> {
    Err(BackendError::NotCompiled(BackendName::NdArray))
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, BackendError> {
    use burn::tensor::{DeviceKind, DeviceType};

    if Device::enumerate(DeviceType::Wgpu).is_empty() {
        return Err(BackendError::NoDevice {
            backend: BackendName::Wgpu,
            reason: "wgpu found no adapter; install a GPU driver with Vulkan, Metal or DirectX 12 \
                     support (on a CPU-only Debian or Ubuntu machine, `apt-get install \
                     mesa-vulkan-drivers` provides the lavapipe software adapter)"
                .to_string(),
        });
    }
    Ok(hardware_wgpu_device().unwrap_or_else(|| Device::wgpu(DeviceKind::DefaultDevice)))
}

/// A wgpu device on real GPU hardware, if the machine has one.
#[cfg(feature = "wgpu")]
fn hardware_wgpu_device() -> Option<Device> {
    use burn::tensor::{DeviceKind, DeviceType};

    let found = Device::enumerate(DeviceType::Wgpu);
    [
        DeviceKind::DiscreteGpu(0),
        DeviceKind::IntegratedGpu(0),
        DeviceKind::VirtualGpu(0),
    ]
    .into_iter()
    .map(Device::wgpu)
    .find(|device| found.contains(device))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device, BackendError> {
    Err(BackendError::NotCompiled(BackendName::Wgpu))
}

/// The first Vulkan adapter in wgpu's order of preference (a hardware GPU before a software
/// one such as lavapipe).
#[cfg(feature = "vulkan")]
fn vulkan_device() -> Result<Device, BackendError> {
    use burn::tensor::DeviceType;

    Device::enumerate(DeviceType::Vulkan)
        .into_iter()
        .next()
        .ok_or_else(|| BackendError::NoDevice {
            backend: BackendName::Vulkan,
            reason: "no Vulkan adapter was found; install the GPU's Vulkan driver (on a \
                     CPU-only Debian or Ubuntu machine, `apt-get install mesa-vulkan-drivers` \
                     provides the lavapipe software adapter)"
                .to_string(),
        })
}

#[cfg(not(feature = "vulkan"))]
fn vulkan_device() -> Result<Device, BackendError> {
    Err(BackendError::NotCompiled(BackendName::Vulkan))
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device, BackendError> {
    use burn::tensor::DeviceType;

    match Device::enumerate(DeviceType::Cuda).into_iter().next() {
        Some(device) => Ok(device),
        None => Err(BackendError::NoDevice {
            backend: BackendName::Cuda,
            reason: "no CUDA device was found; install the NVIDIA driver (libcuda) or pick \
                     another backend"
                .to_string(),
        }),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device, BackendError> {
    Err(BackendError::NotCompiled(BackendName::Cuda))
}
