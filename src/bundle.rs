//! Model bundles on disk: a directory with `vqgan.toml` + `vqgan.safetensors` (DECISIONS.md "Files and formats").
//! Tensor names are the PyTorch (taming) names; burn's own names are translated on the way in and out.

use crate::hourglass::{Prior, PriorConfig};
use crate::vqgan::render::{RenderDecoder, check_fits};
use crate::vqgan::{VqGan, VqGanConfig};
use anyhow::{Context, Result, bail};
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot,
    PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::DType;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

pub const VQGAN_CONFIG: &str = "vqgan.toml";
pub const VQGAN_WEIGHTS: &str = "vqgan.safetensors";
pub const PRIOR_CONFIG: &str = "prior.toml";
pub const PRIOR_WEIGHTS: &str = "prior.safetensors";
pub const SAMPLING: &str = "sampling.toml";
/// The list of a bundle's render decoders (`sizes = [256, 1024]`), each in `decoders/<size>/`.
pub const DECODERS: &str = "decoders.toml";
pub const DECODER_WEIGHTS: &str = "decoder.safetensors";

/// A generator bundle's own sampler defaults (optional `sampling.toml`): what its trainer found to work
/// best. Flags given on the command line win; where neither says, the CLI's documented defaults hold.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingDefaults {
    pub steps: Option<usize>,
    pub temperature: Option<String>,
    pub proportion: Option<String>,
    pub top_k: Option<usize>,
    /// Label sets `sample` draws at random per image when no `--label` or `--random-label` names them
    /// (a labelled model's samples are better with labels drawn than with none).
    pub random_labels: Option<Vec<String>>,
}

/// The bundle's `sampling.toml`, or no defaults when it has none.
pub fn read_sampling_defaults(dir: &Path) -> Result<SamplingDefaults> {
    let path = dir.join(SAMPLING);
    if path.is_file() {
        read_toml(&path)
    } else {
        Ok(SamplingDefaults::default())
    }
}

/// Our prior's tensor paths -> the reference's (SPEC.md 4.6). A one-level hourglass has no
/// `levels.0.` in the reference; nested levels keep their index.
const PRIOR_NAMES: [(&str, &str); 6] = [
    (r"^transformer\.levels\.0\.(.*)$", "transformer.$1"),
    (r"\.layers\.(\d+)\.attn_norm\.", ".layers.$1.0.norm."),
    (r"\.layers\.(\d+)\.attn\.", ".layers.$1.0.fn."),
    (r"\.layers\.(\d+)\.ff_norm\.", ".layers.$1.1.norm."),
    (r"\.layers\.(\d+)\.ff\.fc1\.", ".layers.$1.1.fn.0."),
    (r"\.layers\.(\d+)\.ff\.fc2\.", ".layers.$1.1.fn.3."),
];

/// The reference's names -> ours, for reading.
const PRIOR_NAMES_BACK: [(&str, &str); 6] = [
    (r"\.layers\.(\d+)\.0\.norm\.", ".layers.$1.attn_norm."),
    (r"\.layers\.(\d+)\.0\.fn\.", ".layers.$1.attn."),
    (r"\.layers\.(\d+)\.1\.norm\.", ".layers.$1.ff_norm."),
    (r"\.layers\.(\d+)\.1\.fn\.0\.", ".layers.$1.ff.fc1."),
    (r"\.layers\.(\d+)\.1\.fn\.3\.", ".layers.$1.ff.fc2."),
    (
        r"^transformer\.(pre_transformer|downsample|attn_resampling_pre_valley|upsample|attn_resampling_post_valley|post_transformer)\.",
        "transformer.levels.0.$1.",
    ),
];

/// Reads a TOML file into `T`, naming the file in any error.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half a file
/// (and a failed write leaves no temporary file behind).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_file_atomic(path, |tmp| {
        std::fs::write(tmp, bytes).with_context(|| format!("cannot write {}", path.display()))
    })
}

/// How float weights are stored in a bundle. Loading accepts either and computes in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    #[default]
    F32,
    /// Half the size; weights are rounded to f16.
    F16,
}

/// Weights as safetensors bytes under PyTorch names (after `renames`).
fn weights_bytes<M: ModuleSnapshot>(
    model: &M,
    renames: &[(&str, &str)],
    storage: Storage,
) -> Result<Vec<u8>> {
    let store = SafetensorsStore::from_bytes(None);
    let mut store = match storage {
        Storage::F32 => store.with_to_adapter(BurnToPyTorchAdapter),
        Storage::F16 => {
            store.with_to_adapter(BurnToPyTorchAdapter.chain(FloatCastAdapter::to(DType::F16)))
        }
    };
    for (from, to) in renames {
        store = store.with_key_remapping(*from, *to);
    }
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot serialise the weights: {e}"))?;
    store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the weights: {e}"))
}

/// Saves a VQ-GAN bundle (config and weights) into `dir`, creating it if needed.
pub fn save_vqgan(dir: &Path, config: &VqGanConfig, model: &VqGan, storage: Storage) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(
        &dir.join(VQGAN_WEIGHTS),
        &weights_bytes(model, &[], storage)?,
    )?;
    write_atomic(&dir.join(VQGAN_CONFIG), toml::to_string(config)?.as_bytes())
}

/// Saves a prior (config and weights, reference tensor names) into `dir`.
pub fn save_prior(dir: &Path, config: &PriorConfig, model: &Prior, storage: Storage) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(
        &dir.join(PRIOR_WEIGHTS),
        &weights_bytes(model, &PRIOR_NAMES, storage)?,
    )?;
    write_atomic(&dir.join(PRIOR_CONFIG), toml::to_string(config)?.as_bytes())
}

/// Loads a prior from a bundle directory onto `device`.
pub fn load_prior(dir: &Path, device: &Device) -> Result<(PriorConfig, Prior)> {
    let path = dir.join(PRIOR_CONFIG);
    let config: PriorConfig = read_toml(&path)?;
    config.validate()?;
    let mut model = Prior::new(&config, device);
    load_weights(
        &mut model,
        &dir.join(PRIOR_WEIGHTS),
        &PRIOR_NAMES_BACK,
        device,
    )?;
    Ok((config, model))
}

/// The prior's tensors as they are named on disk.
pub fn prior_tensor_names(model: &Prior) -> Vec<(String, Vec<usize>)> {
    let bytes = weights_bytes(model, &PRIOR_NAMES, Storage::F32).unwrap_or_default();
    let mut names: Vec<(String, Vec<usize>)> = safetensors::SafeTensors::deserialize(&bytes)
        .map(|t| {
            t.tensors()
                .into_iter()
                .map(|(n, v)| (n, v.shape().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Reads `vqgan.toml` from a bundle directory.
pub fn read_vqgan_config(dir: &Path) -> Result<VqGanConfig> {
    if !dir.is_dir() {
        bail!("model bundle '{}' is not a directory", dir.display());
    }
    let path = dir.join(VQGAN_CONFIG);
    let config: VqGanConfig = read_toml(&path)?;
    config.validate()?;
    Ok(config)
}

/// Loads a VQ-GAN bundle onto `device`: every tensor must be present with the right shape.
pub fn load_vqgan(dir: &Path, device: &Device) -> Result<(VqGanConfig, VqGan)> {
    let config = read_vqgan_config(dir)?;
    let mut model = VqGan::new(&config, device);
    load_weights(&mut model, &dir.join(VQGAN_WEIGHTS), &[], device)?;
    Ok((config, model))
}

/// Fills `model` from a safetensors file with PyTorch names; every tensor must match exactly.
pub fn load_safetensors<M: ModuleSnapshot>(model: &mut M, path: &Path) -> Result<()> {
    load_renamed(model, path, &[], DType::F32)
}

/// Fills `model` from a bundle's weights file (which must exist), in the device's float type.
fn load_weights<M: ModuleSnapshot>(
    model: &mut M,
    weights: &Path,
    renames: &[(&str, &str)],
    device: &Device,
) -> Result<()> {
    if !weights.is_file() {
        bail!("missing weights file {}", weights.display());
    }
    load_renamed(model, weights, renames, crate::device::float_dtype(device))
}

/// Loads with `renames` applied to the names on disk, casting every float tensor to `dtype`
/// (bundles may store f16; the device may compute in f16 or bf16).
fn load_renamed<M: ModuleSnapshot>(
    model: &mut M,
    path: &Path,
    renames: &[(&str, &str)],
    dtype: DType,
) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(dtype)))
        .validate(false)
        .allow_partial(true);
    for (from, to) in renames {
        store = store.with_key_remapping(*from, *to);
    }
    let result = model.load_from(&mut store).map_err(|e| {
        anyhow::anyhow!("{}: not a readable safetensors file ({e})", path.display())
    })?;
    check_applied(&result, path, true)?;
    check_finite(path)
}

/// Refuses weights that hold NaN or infinity (a diverged run, a damaged file), naming the first
/// such tensor: such a model would run and write blank images without a word.
pub fn check_finite(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow::anyhow!("{}: not a readable safetensors file ({e})", path.display())
    })?;
    for (name, view) in tensors.tensors() {
        let data = view.data();
        let finite = match view.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .all(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
            // f16 and bf16: the exponent bits all set means infinity or NaN.
            safetensors::Dtype::F16 => data
                .chunks_exact(2)
                .all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7c00 != 0x7c00),
            safetensors::Dtype::BF16 => data
                .chunks_exact(2)
                .all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7f80 != 0x7f80),
            _ => true,
        };
        if !finite {
            bail!(
                "{}: tensor '{name}' holds NaN or infinite values (the weights are damaged or their training diverged)",
                path.display()
            );
        }
    }
    Ok(())
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

/// Where the built-in generator lives: `$SUNDAE_MODEL`, else `models/emoji-styles` (the labelled
/// second generation) in the source tree.
pub fn default_model_dir() -> PathBuf {
    std::env::var_os("SUNDAE_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/emoji-styles"))
}

/// A full generator: both stages, checked to agree on vocabulary.
pub fn load_generator(
    dir: &Path,
    device: &Device,
) -> Result<(VqGanConfig, VqGan, PriorConfig, Prior)> {
    if !dir.join(PRIOR_CONFIG).is_file() {
        bail!(
            "{} is not a generator bundle (no {PRIOR_CONFIG}); join a VQ-GAN and a prior with `sundae bundle`",
            dir.display()
        );
    }
    let (vq_config, vqgan) = load_vqgan(dir, device)?;
    let (prior_config, prior) = load_prior(dir, device)?;
    check_stages_agree(&vq_config, &prior_config)?;
    Ok((vq_config, vqgan, prior_config, prior))
}

/// A prior only fits a VQ-GAN with the same vocabulary and token grid.
pub fn check_stages_agree(vq: &VqGanConfig, prior: &PriorConfig) -> Result<()> {
    let side = vq.latent_side();
    if prior.vocab_size != vq.n_embed || (prior.grid_height, prior.grid_width) != (side, side) {
        bail!(
            "the prior models {}x{} grids of {} codes, but the VQ-GAN makes {side}x{side} grids of {} codes",
            prior.grid_height,
            prior.grid_width,
            prior.vocab_size,
            vq.n_embed
        );
    }
    Ok(())
}

/// `decoders.toml`: which render sizes a bundle has.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecoderList {
    pub sizes: Vec<usize>,
}

/// The folder of a bundle's render decoder for `size` pixels.
pub fn decoder_dir(bundle: &Path, size: usize) -> PathBuf {
    bundle.join("decoders").join(size.to_string())
}

/// A bundle's `decoders.toml`, or an empty list when it has none.
fn read_decoder_list(bundle: &Path) -> Result<DecoderList> {
    let path = bundle.join(DECODERS);
    if path.is_file() {
        read_toml(&path)
    } else {
        Ok(DecoderList::default())
    }
}

/// The sizes a bundle can render at: its native size first, then those of `decoders.toml`, ascending.
pub fn render_sizes(bundle: &Path) -> Result<Vec<usize>> {
    let native = read_vqgan_config(bundle)?.resolution;
    let mut extra = read_decoder_list(bundle)?.sizes;
    extra.sort_unstable();
    extra.dedup();
    extra.retain(|&s| s != native);
    Ok(std::iter::once(native).chain(extra).collect())
}

/// "64 (native), 256 and 1024": the sizes, for messages and `--help`.
pub fn describe_sizes(sizes: &[usize]) -> String {
    let mut words: Vec<String> = sizes.iter().map(usize::to_string).collect();
    if let Some(first) = words.first_mut() {
        first.push_str(" (native)");
    }
    match words.len() {
        0 | 1 => words.concat(),
        n => format!("{} and {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

/// The decoder that draws a bundle's tokens at `size` pixels (the tokenizer's own at its native size,
/// or when `size` is None). An unknown size is refused naming the sizes the bundle has.
pub fn load_render_decoder(
    bundle: &Path,
    size: Option<usize>,
    tokenizer_config: &VqGanConfig,
    tokenizer: &VqGan,
    device: &Device,
) -> Result<RenderDecoder> {
    let native = tokenizer_config.resolution;
    let size = size.unwrap_or(native);
    if size == native {
        return Ok(RenderDecoder::native(tokenizer));
    }
    let sizes = render_sizes(bundle)?;
    if !sizes.contains(&size) {
        if sizes.len() == 1 {
            bail!(
                "{} renders only at its native {native}x{native} pixels (it has no other decoders), not at {size}",
                bundle.display()
            );
        }
        bail!(
            "{} has no {size}-pixel decoder; its render sizes are {}",
            bundle.display(),
            describe_sizes(&sizes)
        );
    }
    let dir = decoder_dir(bundle, size);
    let config: VqGanConfig = read_toml(&dir.join(VQGAN_CONFIG))?;
    check_fits(&config, tokenizer_config)?;
    if config.resolution != size {
        bail!(
            "{}: the decoder in the {size} folder renders at {} pixels",
            dir.display(),
            config.resolution
        );
    }
    load_render_decoder_dir(&dir, &config, device)
}

/// The render decoder of a decoder folder whose `vqgan.toml` was read into `config`.
pub fn load_render_decoder_dir(
    dir: &Path,
    config: &VqGanConfig,
    device: &Device,
) -> Result<RenderDecoder> {
    let mut model = RenderDecoder::new(config, device);
    load_weights(&mut model, &dir.join(DECODER_WEIGHTS), &[], device)?;
    Ok(model)
}

/// Writes a render decoder into `out` (a folder: `vqgan.toml` + `decoder.safetensors`).
pub fn save_render_decoder(
    out: &Path,
    config: &VqGanConfig,
    model: &RenderDecoder,
    storage: Storage,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(
        &out.join(DECODER_WEIGHTS),
        &weights_bytes(model, &[], storage)?,
    )?;
    write_atomic(&out.join(VQGAN_CONFIG), toml::to_string(config)?.as_bytes())
}

/// Adds (or, with `force`, replaces) the render decoder in `decoder` (a folder that
/// [`save_render_decoder`] wrote) to `bundle`, checked to read the bundle's codes. The decoder's
/// folder is written whole before it is moved in, and `decoders.toml` is rewritten atomically.
pub fn attach_render_decoder(
    bundle: &Path,
    decoder: &Path,
    force: bool,
    storage: Storage,
) -> Result<usize> {
    let tokenizer = read_vqgan_config(bundle)?;
    let config: VqGanConfig = read_toml(&decoder.join(VQGAN_CONFIG))?;
    check_fits(&config, &tokenizer)?;
    let size = config.resolution;
    if size == tokenizer.resolution {
        bail!("the bundle's own decoder already renders at {size} pixels");
    }
    let model = load_render_decoder_dir(decoder, &config, &crate::device::cpu())?;
    let mut list = read_decoder_list(bundle)?;
    if list.sizes.contains(&size) && !force {
        bail!(
            "{} already has a {size}-pixel decoder (pass --force to replace it)",
            bundle.display()
        );
    }
    let target = decoder_dir(bundle, size);
    std::fs::create_dir_all(target.parent().expect("decoders/<size> has a parent"))
        .with_context(|| format!("cannot create {}", target.display()))?;
    crate::files::write_dir_atomic(&target, |dir| {
        save_render_decoder(dir, &config, &model, storage)
    })?;
    if !list.sizes.contains(&size) {
        list.sizes.push(size);
        list.sizes.sort_unstable();
    }
    write_atomic(&bundle.join(DECODERS), toml::to_string(&list)?.as_bytes())?;
    Ok(size)
}

/// Starts a render decoder from a smaller decoder of the same codes (the tokenizer's own, or a
/// render decoder of a lower size): every tensor whose name and shape match once the smaller one's
/// levels are counted `shift` levels up (its level 0 is the new decoder's level `shift`: the same
/// features, now followed by more upsampling). Where the new levels keep the width of the smaller
/// one's top level, they start by passing its features through (see
/// [`crate::vqgan::render::pass_through_levels`]); blocks a deeper decoder adds to the levels both
/// have start as identities ([`crate::vqgan::render::identity_blocks`]). Returns (copied, total).
pub fn init_render_from(
    render: &mut RenderDecoder,
    source: &RenderDecoder,
    shift: usize,
) -> Result<(usize, usize)> {
    let bytes = weights_bytes(source, &[], Storage::F32)?;
    let tensors = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("cannot read the tokenizer's weights: {e}"))?;
    let wanted: std::collections::HashMap<String, Vec<usize>> =
        tensor_names(render).into_iter().collect();
    let mut chosen = Vec::new();
    for (name, view) in tensors.tensors() {
        if !(name.starts_with("decoder.") || name.starts_with("post_quant_conv.")) {
            continue;
        }
        let renamed = crate::vqgan::render::up_level(&name).map_or_else(
            || name.clone(),
            |(i, rest)| format!("decoder.up.{}.{rest}", i + shift),
        );
        if wanted.get(&renamed) == Some(&view.shape().to_vec()) {
            chosen.push((renamed, view));
        }
    }
    let copied = chosen.len();
    let copied_names: Vec<&str> = chosen.iter().map(|(name, _)| name.as_str()).collect();
    let mut through = crate::vqgan::render::pass_through_levels(&wanted, shift, &copied_names);
    through.extend(crate::vqgan::render::identity_blocks(
        &wanted,
        shift,
        &copied_names,
    ));
    let through_bytes: Vec<Vec<u8>> = through
        .iter()
        .map(|(_, _, values)| values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    for ((name, shape, _), bytes) in through.iter().zip(&through_bytes) {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map_err(|e| anyhow::anyhow!("cannot start the new levels: {e}"))?;
        chosen.push((name.clone(), view));
    }
    let subset = safetensors::serialize(chosen, None)
        .map_err(|e| anyhow::anyhow!("cannot copy the tokenizer's weights: {e}"))?;
    let mut store = SafetensorsStore::from_bytes(Some(subset))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true);
    render
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot copy the tokenizer's weights: {e}"))?;
    Ok((copied, wanted.len()))
}
