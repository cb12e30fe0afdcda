//! Import of taming-transformers VQ-GANs: a YAML config plus a Lightning `.ckpt` (SPEC.md 2.4).

use super::{VqGan, VqGanConfig};
use crate::bundle::check_applied;
use anyhow::{Context, Result, bail};
use burn::store::{ModuleSnapshot, PytorchStore};
use burn::tensor::Device;
use serde_yaml::Value;
use std::path::Path;

const VQMODEL_TARGET: &str = "taming.models.vqgan.VQModel";

/// Reads a taming YAML: a plain `VQModel`, or a `Net2NetTransformer` whose VQ-GAN is its
/// `first_stage_config`. Returns the config and whether weights carry the `first_stage_model.` prefix.
pub fn read_taming_yaml(path: &Path) -> Result<(VqGanConfig, bool)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let root: Value = serde_yaml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not valid YAML ({e})", path.display()))?;
    let model = root
        .get("model")
        .with_context(|| format!("{}: no `model` section", path.display()))?;
    let target = model.get("target").and_then(Value::as_str).unwrap_or("");
    let (vq, prefixed) = if target == VQMODEL_TARGET {
        (model, false)
    } else if let Some(first) = model
        .get("params")
        .and_then(|p| p.get("first_stage_config"))
    {
        let first_target = first.get("target").and_then(Value::as_str).unwrap_or("");
        if first_target != VQMODEL_TARGET {
            bail!(
                "{}: first stage is '{first_target}', only '{VQMODEL_TARGET}' is supported",
                path.display()
            );
        }
        (first, true)
    } else {
        bail!(
            "{}: model target '{target}' is neither '{VQMODEL_TARGET}' nor a model with a first_stage_config",
            path.display()
        );
    };
    let config = vqgan_config_from(vq).with_context(|| format!("{}", path.display()))?;
    config.validate()?;
    Ok((config, prefixed))
}

fn vqgan_config_from(vq: &Value) -> Result<VqGanConfig> {
    let params = vq.get("params").context("VQModel has no `params`")?;
    let dd = params
        .get("ddconfig")
        .context("VQModel params have no `ddconfig`")?;
    let int = |v: &Value, key: &str| -> Result<usize> {
        v.get(key)
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .with_context(|| format!("`{key}` is missing or not a whole number"))
    };
    let list = |key: &str| -> Result<Vec<usize>> {
        dd.get(key)
            .and_then(Value::as_sequence)
            .with_context(|| format!("`ddconfig.{key}` is missing or not a list"))?
            .iter()
            .map(|x| {
                x.as_u64()
                    .map(|n| n as usize)
                    .context("list entries must be whole numbers")
            })
            .collect()
    };
    if dd.get("double_z").and_then(Value::as_bool) == Some(true) {
        bail!("`double_z: true` belongs to a KL autoencoder, not a VQ-GAN");
    }
    Ok(VqGanConfig {
        resolution: int(dd, "resolution")?,
        in_channels: int(dd, "in_channels")?,
        out_ch: int(dd, "out_ch")?,
        ch: int(dd, "ch")?,
        ch_mult: list("ch_mult")?,
        num_res_blocks: int(dd, "num_res_blocks")?,
        attn_resolutions: list("attn_resolutions")?,
        z_channels: int(dd, "z_channels")?,
        embed_dim: int(params, "embed_dim")?,
        n_embed: int(params, "n_embed")?,
        dropout: dd.get("dropout").and_then(Value::as_f64).unwrap_or(0.0),
        norm_groups: 32,
        l2_normalize: false,
    })
}

/// Builds the VQ-GAN of a taming YAML and fills it from a Lightning checkpoint's `state_dict`.
/// Training-only tensors (`loss.*`) and other stages' tensors are ignored.
pub fn import_taming(yaml: &Path, ckpt: &Path, device: &Device) -> Result<(VqGanConfig, VqGan)> {
    let (config, prefixed) = read_taming_yaml(yaml)?;
    if !ckpt.is_file() {
        bail!("checkpoint {} does not exist", ckpt.display());
    }
    let mut model = VqGan::new(&config, device);
    let mut store = PytorchStore::from_file(ckpt)
        .with_top_level_key("state_dict")
        .map_indices_contiguous(false)
        .validate(false)
        .allow_partial(true);
    if prefixed {
        store = store.with_key_remapping(r"^first_stage_model\.", "");
    }
    let result = model.load_from(&mut store).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a readable PyTorch checkpoint with a state_dict ({})",
            ckpt.display(),
            first_line(&e.to_string())
        )
    })?;
    check_applied(&result, ckpt, false)?;
    Ok((config, model))
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}
