//! The image sets `sundae score` compares: a folder of images (recursive), a data set with a split
//! (`emoji:train`, `emoji,iconify:DIR:validation`), or a generator bundle that draws its own images.

use crate::data::{self, Split, images};
use anyhow::{Context, Result, bail};
use image::RgbImage;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The side emoji sets are rendered at when `--resolution` is not given: the built-in model's.
pub const DATA_RESOLUTION: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSet {
    /// Every image file under a folder.
    Folder(PathBuf),
    /// A data source as `--data` takes it, and a part of it.
    Data { source: String, split: Split },
    /// A generator bundle: its images are drawn when scoring (`--generate N`).
    Generator(PathBuf),
}

impl ImageSet {
    /// `DIR` (a folder, or a generator bundle when it holds `prior.toml`), or a data source with an
    /// optional `:train`, `:validation` or `:all` suffix (all by default).
    pub fn parse(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(if path.join(crate::bundle::PRIOR_CONFIG).is_file() {
                Self::Generator(path.to_path_buf())
            } else {
                Self::Folder(path.to_path_buf())
            });
        }
        let (source, split) = data::source_and_split(spec, Split::All);
        if source.is_empty() || !data::has_splits(source) {
            bail!(
                "image set '{spec}' is neither a folder, a generator bundle, nor a data set such as emoji:train"
            );
        }
        Ok(Self::Data {
            source: source.to_string(),
            split,
        })
    }
}

/// Images of a set that exists on disk, and the text that identifies them for the feature cache.
pub struct Prepared {
    pub images: Vec<RgbImage>,
    pub identity: String,
}

/// An image file at its own size (`resolution` None, as pytorch-fid reads it) or prepared like training
/// data (shorter side resized, centre-cropped); transparency is composited on white either way.
fn read_image(path: &Path, resolution: Option<usize>) -> Result<RgbImage> {
    let decoded = images::read_rgba(path)?;
    Ok(match resolution {
        None => images::on_white(&decoded),
        Some(side) => images::to_rgb8(&images::prepare(&decoded, side), side, side),
    })
}

/// Loads a folder or data set (not a generator), at most `max` images evenly spread through it.
pub fn prepare(set: &ImageSet, resolution: Option<usize>, max: Option<usize>) -> Result<Prepared> {
    match set {
        ImageSet::Folder(dir) => {
            let files = images::list_images(dir);
            if files.is_empty() {
                bail!("{} holds no image (png, jpg, jpeg, webp)", dir.display());
            }
            let picked = data::evenly_spaced(files.len(), max.unwrap_or(usize::MAX));
            let mut identity = format!("folder resolution={resolution:?}\n");
            let mut out = Vec::with_capacity(picked.len());
            for i in picked {
                let path = &files[i];
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                identity.push_str(&format!(
                    "{} {:x}\n",
                    path.strip_prefix(dir).unwrap_or(path).display(),
                    Sha256::digest(&bytes)
                ));
                out.push(read_image(path, resolution)?);
            }
            Ok(Prepared {
                images: out,
                identity,
            })
        }
        ImageSet::Data { source, split } => {
            let side = resolution.unwrap_or(DATA_RESOLUTION);
            let loaded = data::load(source, side, *split)?;
            let picked = data::evenly_spaced(loaded.samples.len(), max.unwrap_or(usize::MAX));
            let mut identity = format!(
                "data {source} {split:?} resolution={side} sundae={}\n",
                env!("CARGO_PKG_VERSION")
            );
            for part in source.split(',') {
                if let Some(dir) = part.trim().strip_prefix("iconify:") {
                    identity.push_str(&iconify_identity(Path::new(dir))?);
                }
            }
            let out = picked
                .into_iter()
                .map(|i| {
                    let sample = &loaded.samples[i];
                    identity.push_str(&sample.name);
                    identity.push('\n');
                    images::to_rgb8(&sample.pixels, side, side)
                })
                .collect();
            Ok(Prepared {
                images: out,
                identity,
            })
        }
        ImageSet::Generator(dir) => bail!(
            "{} is a generator bundle: pass --generate N to draw N images from it",
            dir.display()
        ),
    }
}

/// The hashes of an Iconify folder's set files, so that features of another version are not reused.
fn iconify_identity(dir: &Path) -> Result<String> {
    let mut text = String::new();
    for style in crate::data::iconify::read_styles(dir)? {
        text.push_str(&format!("{} {}\n", style.prefix, style.drawings.len()));
        for drawing in &style.drawings {
            text.push_str(&format!("{:x}\n", Sha256::digest(drawing.svg.as_bytes())));
        }
    }
    Ok(text)
}
