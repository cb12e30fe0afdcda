//! Latent data sets: token grids of a whole image set, in `.npy` shards plus `manifest.json`
//! (DECISIONS.md "Files and formats"). Shards are written atomically and skipped when present, so an
//! interrupted run continues; `--shard I/N` encodes every N-th shard so machines can share the work,
//! and the manifest lists every shard found in the directory, so later runs merge the parts.

use super::labels::LabelSets;
use crate::bundle::write_atomic;
use crate::tokens::{TokenGrids, read_tokens};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use ndarray::Array3;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
/// Source images per shard (each adds one grid per view: see `augment::Augment`).
pub const SHARD_IMAGES: usize = 512;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub grid_height: usize,
    pub grid_width: usize,
    pub vocab_size: usize,
    /// Token grids in all shards.
    pub count: usize,
    pub source: String,
    pub flip: bool,
    /// Zoomed-out copies of each image (`sundae encode --zooms`).
    #[serde(default)]
    pub zooms: usize,
    /// Shifted copies of each image (`sundae encode --shifts`).
    #[serde(default)]
    pub shifts: usize,
    /// SHA-256 of the VQ-GAN's weights file: a prior trained on these tokens needs that VQ-GAN.
    pub vqgan_hash: String,
    pub shards: Vec<ShardEntry>,
    /// The label sets of the images and their values (none for an unlabelled folder); each shard's
    /// labels lie beside it (`shard-NNNNN.labels.npy`, one index per set and grid).
    #[serde(default, skip_serializing_if = "LabelSets::is_empty")]
    pub labels: LabelSets,
}

impl Manifest {
    /// Refuses a prior that models another grid or vocabulary than these tokens.
    pub fn check_prior(&self, prior: &crate::hourglass::PriorConfig) -> Result<()> {
        let ours = (self.grid_height, self.grid_width, self.vocab_size);
        let theirs = (prior.grid_height, prior.grid_width, prior.vocab_size);
        if ours != theirs {
            bail!(
                "the latents are {}x{} grids of {} codes, but the prior models {}x{} grids of {}",
                ours.0,
                ours.1,
                ours.2,
                theirs.0,
                theirs.1,
                theirs.2
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    pub count: usize,
}

/// SHA-256 (hex) of a file.
pub fn file_hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

pub fn shard_name(index: usize) -> String {
    format!("shard-{index:05}.npy")
}

/// The labels file beside a shard: `shard-00003.npy` -> `shard-00003.labels.npy`.
fn labels_name(shard_file: &str) -> String {
    format!("{}.labels.npy", shard_file.trim_end_matches(".npy"))
}

/// Which shards of `total` this run encodes: all, or those with index ≡ I (mod N).
pub fn my_shards(total: usize, part: Option<(usize, usize)>) -> Vec<usize> {
    (0..total)
        .filter(|s| part.is_none_or(|(i, n)| s % n == i))
        .collect()
}

/// Parses `I/N` (0 <= I < N).
pub fn parse_part(text: &str) -> Result<(usize, usize)> {
    let (i, n) = text
        .split_once('/')
        .with_context(|| format!("--shard '{text}' is not I/N"))?;
    let (i, n): (usize, usize) = (
        i.trim()
            .parse()
            .with_context(|| format!("--shard '{text}' is not I/N"))?,
        n.trim()
            .parse()
            .with_context(|| format!("--shard '{text}' is not I/N"))?,
    );
    if n == 0 || i >= n {
        bail!("--shard {i}/{n}: I must be below N");
    }
    Ok((i, n))
}

/// Writes an array atomically as `.npy` (temporary file, then rename).
fn write_npy_atomic<A: WriteNpyExt>(path: &Path, array: &A) -> Result<()> {
    let tmp = path.with_extension("npy.tmp");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    array
        .write_npy(std::io::BufWriter::new(file))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// Writes one shard of grids `[n, h, w]` atomically, in the smallest integer type that holds the
/// vocabulary, with its labels `[n, sets]` (row-major, one index per set) when there are any. The
/// labels go first: a shard counts as done once its grids exist.
pub fn write_shard(dir: &Path, index: usize, grids: &TokenGrids, labels: &[i64]) -> Result<()> {
    let name = shard_name(index);
    let n = grids.shape[0];
    if !labels.is_empty() {
        let sets = labels.len() / n.max(1);
        let values: Vec<i32> = labels.iter().map(|&v| v as i32).collect();
        write_npy_atomic(
            &dir.join(labels_name(&name)),
            &ndarray::Array2::from_shape_vec((n, sets), values)?,
        )?;
    }
    let values: Vec<i16> = grids.values.iter().map(|&v| v as i16).collect();
    write_npy_atomic(
        &dir.join(name),
        &Array3::from_shape_vec(grids.shape, values)?,
    )
}

/// Lists the shards present and writes the manifest for them.
pub fn write_manifest(dir: &Path, mut template: Manifest) -> Result<Manifest> {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("shard-") && n.ends_with(".npy") && !n.ends_with(".labels.npy")
            })
        })
        .collect();
    shards.sort();
    template.shards.clear();
    template.count = 0;
    for path in shards {
        let grids = read_tokens(&path)?;
        template.count += grids.shape[0];
        template.shards.push(ShardEntry {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            count: grids.shape[0],
        });
    }
    write_atomic(
        &dir.join(MANIFEST),
        serde_json::to_string_pretty(&template)?.as_bytes(),
    )?;
    Ok(template)
}

pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is this a latent data set?)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A whole latent data set in memory.
pub struct LatentSet {
    pub manifest: Manifest,
    pub grids: TokenGrids,
    /// One index per label set and grid (`[count, sets]`, row-major); empty without label sets.
    pub labels: Vec<i64>,
}

/// Every grid of a latent data set (and its labels), checked against its manifest.
pub fn load(dir: &Path) -> Result<LatentSet> {
    let manifest = read_manifest(dir)?;
    let sets = manifest.labels.sets.len();
    let mut values = Vec::new();
    let mut labels = Vec::new();
    let mut count = 0;
    for shard in &manifest.shards {
        let grids = read_tokens(&dir.join(&shard.file))?;
        if grids.shape[1..] != [manifest.grid_height, manifest.grid_width] {
            bail!(
                "{}: grids are {}x{}, the manifest says {}x{}",
                shard.file,
                grids.shape[1],
                grids.shape[2],
                manifest.grid_height,
                manifest.grid_width
            );
        }
        grids.check_vocabulary(manifest.vocab_size)?;
        if sets > 0 {
            labels.extend(read_labels(
                dir,
                &shard.file,
                grids.shape[0],
                &manifest.labels,
            )?);
        }
        count += grids.shape[0];
        values.extend(grids.values);
    }
    if count == 0 {
        bail!("latent data set {} holds no grid", dir.display());
    }
    Ok(LatentSet {
        grids: TokenGrids {
            values,
            shape: [count, manifest.grid_height, manifest.grid_width],
        },
        manifest,
        labels,
    })
}

/// A shard's labels, checked: one row per grid, one index per set, each within its set (null included).
fn read_labels(dir: &Path, shard_file: &str, grids: usize, sets: &LabelSets) -> Result<Vec<i64>> {
    let path = dir.join(labels_name(shard_file));
    let file = std::fs::File::open(&path).with_context(|| {
        format!(
            "cannot open {} (the manifest names label sets)",
            path.display()
        )
    })?;
    let array = ndarray::Array2::<i32>::read_npy(file).map_err(|e| {
        anyhow::anyhow!("{}: not an int32 [grids, sets] array ({e})", path.display())
    })?;
    if array.dim() != (grids, sets.sets.len()) {
        bail!(
            "{}: shape {:?}, expected [{grids}, {}]",
            path.display(),
            array.dim(),
            sets.sets.len()
        );
    }
    for row in array.rows() {
        for (value, set) in row.iter().zip(&sets.sets) {
            if *value < 0 || *value as i64 > set.null() {
                bail!(
                    "{}: {} index {value} is out of range",
                    path.display(),
                    set.name
                );
            }
        }
    }
    Ok(array.iter().map(|&v| v as i64).collect())
}

/// Encodes a whole data set (a source and split, with `augment`'s extra views) with the VQ-GAN
/// bundle into latent shards + manifest at `out`; shards already there are skipped, so a rerun
/// continues, and `part` (I, N) encodes only every N-th shard from I.
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
) -> Result<Manifest> {
    let (config, model) = crate::bundle::load_vqgan(bundle_dir, device)?;
    if config.n_embed > i16::MAX as usize {
        bail!(
            "vocabularies above {} codes are not supported in latent shards",
            i16::MAX
        );
    }
    let vqgan_hash = file_hash(&bundle_dir.join(crate::bundle::VQGAN_WEIGHTS))?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    if let Ok(existing) = read_manifest(out) {
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
    if let Ok(existing) = read_manifest(out)
        && existing.labels != label_sets
    {
        bail!(
            "{} holds latents with other label sets; use a new directory",
            out.display()
        );
    }
    let r = config.resolution;
    let total = data.samples.len().div_ceil(SHARD_IMAGES);
    let todo: Vec<usize> = my_shards(total, part)
        .into_iter()
        .filter(|&s| !out.join(shard_name(s)).exists())
        .collect();
    let bar = crate::progress::bar(todo.len(), "encoding shards");
    for shard in todo {
        let first = shard * SHARD_IMAGES;
        let images = &data.samples[first..(first + SHARD_IMAGES).min(data.samples.len())];
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
        let grids = crate::vqgan::batch::encode_images(&model, &pixels, r, batch_size, device);
        write_shard(out, shard, &grids, &labels)?;
        bar.inc(1);
    }
    bar.finish();
    let side = config.latent_side();
    write_manifest(
        out,
        Manifest {
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
