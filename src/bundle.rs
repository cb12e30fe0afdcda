//! Model bundles on disk: a directory with `vqgan.toml` + `vqgan.safetensors` (DECISIONS.md "Files and formats").
//! Tensor names are the PyTorch (taming) names; burn's own names are translated on the way in and out.

use crate::vqgan::{VqGan, VqGanConfig};
use anyhow::{Context, Result, bail};
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore,
};
use burn::tensor::Device;
use std::path::{Path, PathBuf};

pub const VQGAN_CONFIG: &str = "vqgan.toml";
pub const VQGAN_WEIGHTS: &str = "vqgan.safetensors";

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Saves a VQ-GAN bundle (config and weights) into `dir`, creating it if needed.
pub fn save_vqgan(dir: &Path, config: &VqGanConfig, model: &VqGan) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot serialise the VQ-GAN weights: {e}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the VQ-GAN weights: {e}"))?;
    write_atomic(&dir.join(VQGAN_WEIGHTS), &bytes)?;
    write_atomic(&dir.join(VQGAN_CONFIG), toml::to_string(config)?.as_bytes())
}

/// Reads `vqgan.toml` from a bundle directory.
pub fn read_vqgan_config(dir: &Path) -> Result<VqGanConfig> {
    if !dir.is_dir() {
        bail!("model bundle '{}' is not a directory", dir.display());
    }
    let path = dir.join(VQGAN_CONFIG);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let config: VqGanConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
    config.validate()?;
    Ok(config)
}

/// Loads a VQ-GAN bundle onto `device`: every tensor must be present with the right shape.
pub fn load_vqgan(dir: &Path, device: &Device) -> Result<(VqGanConfig, VqGan)> {
    let config = read_vqgan_config(dir)?;
    let weights = dir.join(VQGAN_WEIGHTS);
    if !weights.is_file() {
        bail!("missing weights file {}", weights.display());
    }
    let mut model = VqGan::new(&config, device);
    load_safetensors(&mut model, &weights)?;
    Ok((config, model))
}

/// Fills `model` from a safetensors file with PyTorch names; every tensor must match exactly.
pub fn load_safetensors<M: ModuleSnapshot>(model: &mut M, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .validate(false)
        .allow_partial(true);
    let result = model.load_from(&mut store).map_err(|e| {
        anyhow::anyhow!("{}: not a readable safetensors file ({e})", path.display())
    })?;
    check_applied(&result, path, true)
}

/// Turns an incomplete or mismatched load into one clear error naming the tensor.
/// `strict` also rejects tensors the model has no place for.
pub fn check_applied(result: &ApplyResult, source: &Path, strict: bool) -> Result<()> {
    if let Some(error) = result.errors.first() {
        match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => bail!(
                "{}: tensor '{}' has shape {:?}, but the model expects {:?}",
                source.display(),
                torch_name(path),
                found.as_slice(),
                expected.as_slice()
            ),
            other => bail!("{}: {}", source.display(), other),
        }
    }
    if let Some((path, _)) = result.missing.first() {
        bail!(
            "{}: tensor '{}' is missing ({} missing in all)",
            source.display(),
            torch_name(path),
            result.missing.len()
        );
    }
    if strict && let Some(path) = result.unused.first() {
        bail!(
            "{}: tensor '{}' does not belong to this model ({} unexpected in all)",
            source.display(),
            path,
            result.unused.len()
        );
    }
    Ok(())
}

/// burn calls a norm's affine parameters gamma/beta; users and files know them as weight/bias.
fn torch_name(path: &str) -> String {
    if let Some(stem) = path.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = path.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        path.to_string()
    }
}

/// The tensors of a module as they are named and shaped on disk (PyTorch names), in module order.
pub fn tensor_names<M: ModuleSnapshot>(model: &M) -> Vec<(String, Vec<usize>)> {
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), false)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.as_slice().to_vec()))
        .collect()
}
