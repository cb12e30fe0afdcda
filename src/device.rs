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

/// A `--device` whose float tensors (weights loaded from bundles included) default to `precision`.
/// Must run before any tensor is made on that device: burn fixes a device's default types at its
/// first tensor.
pub fn parse_with_precision(name: &str, precision: Precision) -> Result<Device> {
    let mut device = parse(name)?;
    if precision != Precision::F32 {
        device.configure(precision.float_dtype()).map_err(|e| {
            anyhow::anyhow!("device '{name}' cannot compute in {precision:?}: {e:?}")
        })?;
    }
    Ok(device)
}

/// The float type new tensors on `device` get.
pub fn float_dtype(device: &Device) -> DType {
    device.settings().float_dtype.into()
}

/// Turns a `--device` name into a burn device, or explains which names this build supports.
pub fn parse(name: &str) -> Result<Device> {
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
    gpu_or_cpu(&name)
}

fn gpu_or_cpu(name: &str) -> Result<Device> {
    match name {
        #[cfg(any(feature = "vulkan", feature = "wgpu", feature = "metal"))]
        "vulkan" | "wgpu" | "metal" => Ok(burn::backend::wgpu::WgpuDevice::default().into()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(burn::backend::cuda::CudaDevice::default().into()),
        _ => Ok(burn::backend::flex::FlexDevice.into()),
    }
}

/// The default CPU device (the flex backend).
pub fn cpu() -> Device {
    burn::backend::flex::FlexDevice.into()
}
