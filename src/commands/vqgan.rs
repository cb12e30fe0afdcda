//! `sundae vqgan ...`: import, encode, decode, reconstruct, init and train a VQ-GAN bundle.

use super::Done;
use crate::bundle;
use crate::data::images::{self, psnr};
use crate::tokens::{self, TokenGrids};
use crate::vqgan::VqGanConfig;
use crate::vqgan::batch::{decode_grids, encode_images, render_grids};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// `sundae vqgan import`: taming YAML + Lightning checkpoint -> bundle.
pub fn import(yaml: &Path, ckpt: &Path, out: &Path, force: bool, device: &Device) -> Result<Done> {
    crate::files::check_new_bundle(out, force)?;
    let (config, model) = crate::vqgan::import::import_taming(yaml, ckpt, device)?;
    crate::files::write_dir_atomic(out, |dir| {
        bundle::save_vqgan(dir, &config, &model, bundle::Storage::F32)
    })?;
    Ok(Done(format!(
        "imported a {r}x{r} VQ-GAN ({} codes, {s}x{s} token grids) into {}",
        config.n_embed,
        out.display(),
        r = config.resolution,
        s = config.latent_side()
    )))
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
pub fn encode(
    bundle_dir: &Path,
    inputs: &[PathBuf],
    out: &Path,
    force: bool,
    batch_size: usize,
    device: &Device,
) -> Result<Done> {
    crate::files::check_new_file(out, force, &["npy"])?;
    let (config, model) = bundle::load_vqgan(bundle_dir, device)?;
    let pixels = read_images(inputs, config.resolution, false)?;
    let grids = encode_images(&model, &pixels, config.resolution, batch_size, device);
    tokens::write_tokens(out, &grids)?;
    let [n, h, w] = grids.shape;
    Ok(Done(format!(
        "wrote {n} token grid(s) of {h}x{w} to {}",
        out.display()
    )))
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
pub fn decode(
    bundle_dir: &Path,
    tokens_path: &Path,
    out: &Path,
    any_size: bool,
    render_size: Option<usize>,
    force: bool,
    batch_size: usize,
    device: &Device,
) -> Result<Done> {
    let format = output_format(out)?;
    let (config, model) = bundle::load_vqgan(bundle_dir, device)?;
    let render = bundle::load_render_decoder(bundle_dir, render_size, &config, &model, device)?;
    let grids = tokens::read_tokens(tokens_path)?;
    check_grids(&grids, &config, any_size)?;
    let targets = match format {
        OutputFormat::Npy => vec![out.to_path_buf()],
        OutputFormat::Png => png_paths(out, grids.shape[0]),
    };
    for target in &targets {
        crate::files::check_new_file(target, force, &[])?;
    }
    let (values, shape) = render_grids(&model.quantize, &render, &grids, batch_size, device);
    let written = match format {
        OutputFormat::Npy => {
            tokens::write_images_npy(out, values, shape)?;
            vec![out.to_path_buf()]
        }
        OutputFormat::Png => write_pngs(&values, shape, out)?,
    };
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    Ok(Done(format!("wrote {}", names.join(", "))))
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

/// What `sundae vqgan reconstruct` reconstructs: image files, the first `emoji` held-out emoji, and
/// part of a data set.
pub struct ReconstructInputs<'a> {
    pub files: &'a [PathBuf],
    pub emoji: usize,
    /// A data source (`emoji`, `iconify:DIR`, ...) and its split, at most `max` images of it evenly
    /// spread through it.
    pub data: Option<(&'a str, crate::data::Split, Option<usize>)>,
}

/// `sundae vqgan reconstruct`: images -> side-by-side grid (input | reconstruction), one row each,
/// and each reconstruction as its own PNG in `out_dir` (named after its input) when given.
pub fn reconstruct(
    bundle_dir: &Path,
    inputs: &ReconstructInputs,
    out: &Path,
    out_dir: Option<&Path>,
    force: bool,
    batch_size: usize,
    device: &Device,
) -> Result<Done> {
    crate::files::check_new_file(out, force, &["png"])?;
    let resolution = bundle::read_vqgan_config(bundle_dir)?.resolution;
    let scratch = (inputs.emoji > 0)
        .then(|| emoji_inputs(bundle_dir, inputs.emoji))
        .transpose()?;
    let files: Vec<PathBuf> = inputs
        .files
        .iter()
        .chain(scratch.iter().flat_map(|s| s.paths.iter()))
        .cloned()
        .collect();
    let mut names: Vec<String> = files
        .iter()
        .map(|i| {
            i.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut pixels = read_images(&files, resolution, inputs.data.is_some())?;
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
    Ok(Done(format!(
        "reconstructed {b} image(s), mean PSNR {:.2} dB, grid written to {}",
        psnr_sum / b as f64,
        out.display()
    )))
}

/// The first `count` validation emoji, written as PNGs into a temporary folder so they go
/// through the same reading path as the user's own images.
struct EmojiInputs {
    _dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
}

fn emoji_inputs(vqgan: &Path, count: usize) -> Result<EmojiInputs> {
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

/// `sundae vqgan init`: a randomly initialised bundle from a preset or a `vqgan.toml`.
pub fn init(config: &str, out: &Path, force: bool) -> Result<super::Done> {
    crate::files::check_new_bundle(out, force)?;
    let config = super::bench::vqgan_config(config)?;
    let model = crate::vqgan::VqGan::new(&config, &crate::device::cpu());
    crate::files::write_dir_atomic(out, |dir| {
        bundle::save_vqgan(dir, &config, &model, bundle::Storage::F32)
    })?;
    Ok(super::Done(format!(
        "wrote a randomly initialised VQ-GAN to {}",
        out.display()
    )))
}

/// What `sundae vqgan train` runs.
pub struct TrainRequest<'a> {
    pub data: &'a str,
    pub config: Option<&'a Path>,
    pub run: &'a Path,
    pub resume: bool,
    pub init: Option<&'a Path>,
    /// Write the trained model here at the end (checked before training starts).
    pub bundle: Option<&'a Path>,
    pub force: bool,
}

/// `sundae vqgan train`: trains (or resumes) a run, then writes its bundle when asked.
pub fn train(r: &TrainRequest, device: &Device) -> Result<super::Done> {
    if let Some(out) = r.bundle {
        crate::files::check_new_bundle(out, r.force)?;
    }
    crate::vqgan::train::train(r.data, r.config, r.run, r.resume, r.init, device)?;
    Ok(super::Done(match r.bundle {
        Some(out) => {
            crate::files::write_dir_atomic(out, |dir| {
                crate::vqgan::train::export_bundle(r.run, dir, device)
            })?;
            format!("wrote the trained VQ-GAN to {}", out.display())
        }
        None => format!("trained the VQ-GAN in {}", r.run.display()),
    }))
}

/// `sundae vqgan train-decoder`: trains (or resumes) a render decoder run, then adds it to the
/// tokenizer's bundle when asked (checked before training starts).
pub fn train_decoder(
    r: &crate::vqgan::render_train::RenderTrainRequest,
    attach: bool,
    force: bool,
    storage: bundle::Storage,
    device: &Device,
) -> Result<super::Done> {
    if attach && !force {
        check_decoder_slot(r.tokenizer, r.run, r.config, r.resume)?;
    }
    crate::vqgan::render_train::train(r, device)?;
    Ok(super::Done(if attach {
        let size = add_decoder(r.run, r.tokenizer, force, storage, device)?;
        format!(
            "trained the decoder in {} and added it to {} as its {size}-pixel decoder",
            r.run.display(),
            r.tokenizer.display()
        )
    } else {
        format!("trained the decoder in {}", r.run.display())
    }))
}

/// Refuses, before any training, to add a decoder whose size the bundle already has.
fn check_decoder_slot(
    bundle_dir: &Path,
    run: &Path,
    config: Option<&Path>,
    resume: bool,
) -> Result<()> {
    let path = match (resume, config) {
        (false, Some(path)) => path.to_path_buf(),
        _ => crate::train::RunDir::at(run).config_path(),
    };
    let size = crate::vqgan::render_train::RenderTrainConfig::read(&path)?
        .model
        .resolution;
    if bundle::render_sizes(bundle_dir)?[1..].contains(&size) {
        bail!(
            "{} already has a {size}-pixel decoder (pass --force to replace it)",
            bundle_dir.display()
        );
    }
    Ok(())
}

/// Adds the latest decoder of a render decoder run to a bundle; returns its size.
pub fn add_decoder(
    run: &Path,
    bundle_dir: &Path,
    force: bool,
    storage: bundle::Storage,
    device: &Device,
) -> Result<usize> {
    let scratch = tempfile::tempdir()?;
    crate::vqgan::render_train::export_decoder(run, scratch.path(), device)?;
    bundle::attach_render_decoder(bundle_dir, scratch.path(), force, storage)
}

/// `sundae vqgan reconstruct --render-size`: held-out drawings encoded at the bundle's size, drawn
/// by its decoder for `size`, against their true rendering at `size`, beside the bicubic enlargement
/// of the native decode (the figure a render decoder has to beat).
pub fn compare_decoder(
    bundle_dir: &Path,
    data: (&str, crate::data::Split, Option<usize>),
    size: usize,
    out: &Path,
    force: bool,
    device: &Device,
) -> Result<Done> {
    crate::files::check_new_file(out, force, &["png"])?;
    let (config, model) = bundle::load_vqgan(bundle_dir, device)?;
    let render = bundle::load_render_decoder(bundle_dir, Some(size), &config, &model, device)?;
    let (source, split, max) = data;
    let set =
        crate::vqgan::render_train::RenderSet::encode(source, split, max, &config, &model, device)?;
    let c = crate::vqgan::render_train::compare(&render, &model, &set, size, Some(out), device)?;
    Ok(Done(format!(
        "{} drawing(s) at {size}x{size}: decoder PSNR {:.2} dB, bicubic enlargement of the {r}x{r} decode {:.2} dB ({:+.2} dB), of the true {r}x{r} drawing {:.2} dB; grid (truth | decoder | enlargement) written to {}",
        c.images,
        c.decoder_psnr,
        c.bicubic_psnr,
        c.decoder_psnr - c.bicubic_psnr,
        c.truth_bicubic_psnr,
        out.display(),
        r = config.resolution,
    )))
}
