//! What each CLI command does, as library functions: files in, files out.
//! The CLI (`main.rs`) parses arguments and calls these; these call the model code.

use crate::bundle;
use crate::data::images::{self, psnr};
use crate::tokens::{self, TokenGrids};
use crate::vqgan::VqGanConfig;
use crate::vqgan::batch::{decode_grids, encode_images};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// `sundae vqgan import`: taming YAML + Lightning checkpoint -> bundle.
pub fn vqgan_import(
    yaml: &Path,
    ckpt: &Path,
    out: &Path,
    force: bool,
    device: &Device,
) -> Result<VqGanConfig> {
    crate::files::check_new_bundle(out, force)?;
    let (config, model) = crate::vqgan::import::import_taming(yaml, ckpt, device)?;
    crate::files::write_dir_atomic(out, |dir| {
        bundle::save_vqgan(dir, &config, &model, bundle::Storage::F32)
    })?;
    Ok(config)
}

/// Reads the named image files at the model's resolution; any unreadable file is an error here,
/// because the user asked for it by name.
fn read_images(paths: &[PathBuf], resolution: usize, more_follow: bool) -> Result<Vec<Vec<f32>>> {
    if paths.is_empty() && !more_follow {
        bail!("no input image given");
    }
    paths
        .iter()
        .map(|p| images::load_image(p, resolution))
        .collect()
}

/// `sundae vqgan encode`: images -> `.npy` token grids.
pub fn vqgan_encode(
    bundle_dir: &Path,
    inputs: &[PathBuf],
    out: &Path,
    force: bool,
    batch_size: usize,
    device: &Device,
) -> Result<TokenGrids> {
    crate::files::check_new_file(out, force, &["npy"])?;
    let (config, model) = bundle::load_vqgan(bundle_dir, device)?;
    let pixels = read_images(inputs, config.resolution, false)?;
    let grids = encode_images(&model, &pixels, config.resolution, batch_size, device);
    tokens::write_tokens(out, &grids)?;
    Ok(grids)
}

/// Checks a token file against the model: vocabulary, and grid size unless any size is allowed.
pub fn check_grids(grids: &TokenGrids, config: &VqGanConfig, any_size: bool) -> Result<()> {
    grids.check_vocabulary(config.n_embed)?;
    let [b, h, w] = grids.shape;
    let side = config.latent_side();
    if b == 0 || h == 0 || w == 0 {
        bail!("the token file holds no grid (shape {:?})", grids.shape);
    }
    if !any_size && (h != side || w != side) {
        bail!(
            "token grids are {h}x{w}, but this VQ-GAN makes {side}x{side} grids (pass --any-size to decode other sizes)"
        );
    }
    Ok(())
}

/// `sundae vqgan decode`: `.npy` token grids -> `.png` image(s) or a float32 `.npy`.
#[allow(clippy::too_many_arguments)]
pub fn vqgan_decode(
    bundle_dir: &Path,
    tokens_path: &Path,
    out: &Path,
    any_size: bool,
    force: bool,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<PathBuf>> {
    let format = output_format(out)?;
    let (config, model) = bundle::load_vqgan(bundle_dir, device)?;
    let grids = tokens::read_tokens(tokens_path)?;
    check_grids(&grids, &config, any_size)?;
    let targets = match format {
        OutputFormat::Npy => vec![out.to_path_buf()],
        OutputFormat::Png => png_paths(out, grids.shape[0]),
    };
    for target in &targets {
        crate::files::check_new_file(target, force, &[])?;
    }
    let (values, shape) = decode_grids(&model, &grids, batch_size, device);
    match format {
        OutputFormat::Npy => {
            tokens::write_images_npy(out, values, shape)?;
            Ok(vec![out.to_path_buf()])
        }
        OutputFormat::Png => write_pngs(&values, shape, out),
    }
}

enum OutputFormat {
    Png,
    Npy,
}

fn output_format(out: &Path) -> Result<OutputFormat> {
    match out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => Ok(OutputFormat::Png),
        Some("npy") => Ok(OutputFormat::Npy),
        _ => bail!("output '{}' must end in .png or .npy", out.display()),
    }
}

/// One image: `out` itself. Several: `out` with `-0`, `-1`, ... before the extension.
fn png_paths(out: &Path, count: usize) -> Vec<PathBuf> {
    if count == 1 {
        return vec![out.to_path_buf()];
    }
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    (0..count)
        .map(|i| out.with_file_name(format!("{stem}-{i}.png")))
        .collect()
}

fn write_pngs(values: &[f32], shape: [usize; 4], out: &Path) -> Result<Vec<PathBuf>> {
    let [b, c, h, w] = shape;
    let mut written = Vec::with_capacity(b);
    for (i, path) in png_paths(out, b).into_iter().enumerate() {
        images::save(
            &images::to_rgb8(&values[i * c * h * w..(i + 1) * c * h * w], h, w),
            &path,
        )?;
        written.push(path);
    }
    Ok(written)
}

/// What `sundae vqgan reconstruct` reconstructs: image files, and part of a data set.
pub struct ReconstructInputs<'a> {
    pub files: &'a [PathBuf],
    /// A data source (`emoji`, `iconify:DIR`, ...) and its split, at most `max` images of it evenly
    /// spread through it.
    pub data: Option<(&'a str, crate::data::Split, Option<usize>)>,
}

/// `sundae vqgan reconstruct`: images -> side-by-side grid (input | reconstruction), one row each,
/// and each reconstruction as its own PNG in `out_dir` (named after its input) when given.
/// Returns the mean PSNR in dB over the images and how many there were.
pub fn vqgan_reconstruct(
    bundle_dir: &Path,
    inputs: &ReconstructInputs,
    out: &Path,
    out_dir: Option<&Path>,
    force: bool,
    batch_size: usize,
    device: &Device,
) -> Result<(f64, usize)> {
    crate::files::check_new_file(out, force, &["png"])?;
    let resolution = bundle::read_vqgan_config(bundle_dir)?.resolution;
    let mut names: Vec<String> = inputs
        .files
        .iter()
        .map(|i| {
            i.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut pixels = read_images(inputs.files, resolution, inputs.data.is_some())?;
    if let Some((source, split, max)) = inputs.data {
        let data = crate::data::load(source, resolution, split)?;
        for i in crate::data::evenly_spaced(data.samples.len(), max.unwrap_or(usize::MAX)) {
            names.push(data.samples[i].name.replace('/', "_"));
            pixels.push(data.samples[i].pixels.clone());
        }
    }
    if let Some(dir) = out_dir {
        let files: Vec<String> = names.iter().map(|n| format!("{n}.png")).collect();
        crate::files::check_output_folder(dir, force, &files)?;
    }
    let (config, model) = bundle::load_vqgan(bundle_dir, device)?;
    let grids = encode_images(&model, &pixels, config.resolution, batch_size, device);
    let (values, [b, _, h, w]) = decode_grids(&model, &grids, batch_size, device);
    let r = config.resolution;
    let mut tiles = Vec::with_capacity(2 * b);
    let mut psnr_sum = 0.0;
    for (i, input) in pixels.iter().enumerate() {
        let output = &values[i * 3 * h * w..(i + 1) * 3 * h * w];
        psnr_sum += psnr(input, output);
        tiles.push(images::to_rgb8(input, r, r));
        tiles.push(images::to_rgb8(output, h, w));
    }
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, name) in names.iter().enumerate() {
            images::save(&tiles[2 * i + 1], &dir.join(format!("{name}.png")))?;
        }
    }
    images::save(&images::grid(&tiles, 2), out).context("cannot write the reconstruction grid")?;
    Ok((psnr_sum / b as f64, b))
}

/// `sundae encode`: a whole data set -> latent shards + manifest (see `data::latents`).
#[allow(clippy::too_many_arguments)]
pub fn encode_dataset(
    bundle_dir: &Path,
    source: &str,
    split: crate::data::Split,
    out: &Path,
    augment: crate::data::augment::Augment,
    part: Option<(usize, usize)>,
    batch_size: usize,
    device: &Device,
) -> Result<crate::data::latents::Manifest> {
    use crate::data::latents;
    let (config, model) = bundle::load_vqgan(bundle_dir, device)?;
    if config.n_embed > i16::MAX as usize {
        bail!(
            "vocabularies above {} codes are not supported in latent shards",
            i16::MAX
        );
    }
    let vqgan_hash = latents::file_hash(&bundle_dir.join(bundle::VQGAN_WEIGHTS))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if let Ok(existing) = latents::read_manifest(out) {
        if existing.vqgan_hash != vqgan_hash {
            bail!(
                "{} holds latents of another VQ-GAN; use a new directory",
                out.display()
            );
        }
        if (existing.flip, existing.zooms, existing.shifts)
            != (augment.flip, augment.zooms, augment.shifts)
        {
            bail!(
                "{} holds latents made with other --flip/--zooms/--shifts settings; use a new directory",
                out.display()
            );
        }
    }
    let data = crate::data::load(source, config.resolution, split)?;
    // The label vocabulary comes from the whole source (both splits), so every shard, and a
    // validation set encoded apart, index the same values.
    let label_sets = crate::data::labels::LabelSets::from_labels(
        crate::data::load(source, config.resolution, crate::data::Split::All)
            .map(|all| {
                all.samples
                    .into_iter()
                    .map(|s| s.labels)
                    .collect::<Vec<_>>()
            })?
            .iter(),
    );
    if let Ok(existing) = latents::read_manifest(out)
        && existing.labels != label_sets
    {
        bail!(
            "{} holds latents with other label sets; use a new directory",
            out.display()
        );
    }
    let r = config.resolution;
    let total = data.samples.len().div_ceil(latents::SHARD_IMAGES);
    let todo: Vec<usize> = latents::my_shards(total, part)
        .into_iter()
        .filter(|&s| !out.join(latents::shard_name(s)).exists())
        .collect();
    let bar = crate::progress::bar(todo.len(), "encoding shards");
    for shard in todo {
        let first = shard * latents::SHARD_IMAGES;
        let images = &data.samples[first..(first + latents::SHARD_IMAGES).min(data.samples.len())];
        let mut pixels = Vec::with_capacity(images.len() * augment.views_per_image());
        let mut labels = Vec::new();
        for (i, image) in images.iter().enumerate() {
            let views = augment.views(&image.pixels, r, first + i);
            if !label_sets.is_empty() {
                let indices = label_sets.indices(&image.labels);
                for _ in 0..views.len() {
                    labels.extend(&indices);
                }
            }
            pixels.extend(views);
        }
        let grids = encode_images(&model, &pixels, r, batch_size, device);
        latents::write_shard(out, shard, &grids, &labels)?;
        bar.inc(1);
    }
    bar.finish();
    let side = config.latent_side();
    latents::write_manifest(
        out,
        latents::Manifest {
            grid_height: side,
            grid_width: side,
            vocab_size: config.n_embed,
            count: 0,
            source: source.to_string(),
            flip: augment.flip,
            zooms: augment.zooms,
            shifts: augment.shifts,
            vqgan_hash,
            shards: Vec::new(),
            labels: label_sets,
        },
    )
}

/// The first `count` validation emoji, written as PNGs into a temporary folder so they go
/// through the same reading path as the user's own images.
pub struct EmojiInputs {
    _dir: tempfile::TempDir,
    pub paths: Vec<PathBuf>,
}

pub fn emoji_inputs(vqgan: &Path, count: usize) -> Result<EmojiInputs> {
    let resolution = bundle::read_vqgan_config(vqgan)?.resolution;
    let dir = tempfile::tempdir()?;
    let mut paths = Vec::new();
    for code in crate::data::emoji::codes()
        .filter(|c| crate::data::emoji::is_validation(c))
        .take(count)
    {
        let Some(image) = crate::data::emoji::render(code, resolution) else {
            continue;
        };
        let path = dir.path().join(format!("{code}.png"));
        image.save(&path)?;
        paths.push(path);
    }
    if paths.is_empty() {
        bail!("no emoji could be rendered");
    }
    Ok(EmojiInputs { _dir: dir, paths })
}
