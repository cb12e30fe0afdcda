//! `--device` parsing: which compute devices this build can run on.

use anyhow::{Result, bail};
use burn::tensor::{DType, Device, FloatDType};

/// The device names the CLI accepts, whether or not this build has them.
pub const DEVICE_NAMES: [&str; 5] = ["cpu", "vulkan", "wgpu", "cuda", "metal"];

/// The device names compiled into this build.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["cpu"];
    if cfg!(feature = "vulkan") {
        names.push("vulkan");
    }
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    if cfg!(feature = "metal") {
        names.push("metal");
    }
    names
}

/// The float type a device computes in (`--precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl Precision {
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
            Precision::Bf16 => FloatDType::BF16,
        }
    }
}

/// Turns a `--device` name into a burn device, or explains which names this build supports.
pub fn parse(name: &str) -> Result<Device> {
    parse_with_precision(name, Precision::F32)
}

/// A `--device` whose float tensors (weights loaded from bundles included) default to `precision`.
pub fn parse_with_precision(name: &str, precision: Precision) -> Result<Device> {
    let name = name.to_ascii_lowercase();
    if !DEVICE_NAMES.contains(&name.as_str()) {
        bail!(
            "unknown device '{name}': expected one of {}",
            DEVICE_NAMES.join(", ")
        );
    }
    if !available().contains(&name.as_str()) {
        bail!(
            "device '{name}' is not compiled into this build (it has: {}); rebuild with `--features {name}`",
            available().join(", ")
        );
    }
    let mut device = gpu_or_cpu(&name);
    // Before any tensor: burn fixes a device's default types at its first tensor.
    if precision != Precision::F32 {
        device.configure(precision.float_dtype()).map_err(|e| {
            anyhow::anyhow!("device '{name}' cannot compute in {precision:?}: {e:?}")
        })?;
    }
    if name != "cpu" {
        probe(&name, &device)?;
    }
    Ok(device)
}

/// Runs one small operation so that a GPU backend that finds no adapter fails here with one line
/// instead of panicking in the middle of a job.
fn probe(name: &str, device: &Device) -> Result<()> {
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        burn::tensor::Tensor::<1>::ones([4], device)
            .sum()
            .into_scalar::<f64>()
    }));
    std::panic::set_hook(quiet);
    match outcome {
        Ok(4.0) => Ok(()),
        Ok(sum) => bail!("device '{name}' computed 1+1+1+1 = {sum}"),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown failure".into());
            bail!(
                "device '{name}' could not be started: {}",
                reason.replace('\n', " ")
            )
        }
    }
}

/// The float type new tensors on `device` get.
pub fn float_dtype(device: &Device) -> DType {
    device.settings().float_dtype.into()
}

fn gpu_or_cpu(name: &str) -> Device {
    match name {
        #[cfg(any(feature = "vulkan", feature = "wgpu", feature = "metal"))]
        "vulkan" | "wgpu" | "metal" => burn::backend::wgpu::WgpuDevice::default().into(),
        #[cfg(feature = "cuda")]
        "cuda" => burn::backend::cuda::CudaDevice::default().into(),
        _ => burn::backend::flex::FlexDevice.into(),
    }
}

/// The default CPU device (the flex backend).
pub fn cpu() -> Device {
    burn::backend::flex::FlexDevice.into()
}
