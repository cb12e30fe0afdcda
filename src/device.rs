//! `--device` parsing: which compute devices this build can run on.

use anyhow::{Result, bail};
use burn::tensor::Device;

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
