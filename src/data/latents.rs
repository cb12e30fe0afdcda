//! Latent data sets: token grids of a whole image set, in `.npy` shards plus `manifest.json`
//! (DECISIONS.md "Files and formats"). Shards are written atomically and skipped when present, so an
//! interrupted run continues; `--shard I/N` encodes every N-th shard so machines can share the work,
//! and the manifest lists every shard found in the directory, so later runs merge the parts.

use crate::bundle::write_atomic;
use crate::tokens::{TokenGrids, read_tokens};
use anyhow::{Context, Result, bail};
use ndarray::Array3;
use ndarray_npy::WriteNpyExt;
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

/// Writes one shard of grids `[n, h, w]` atomically, in the smallest integer type that holds the vocabulary.
pub fn write_shard(dir: &Path, index: usize, grids: &TokenGrids) -> Result<()> {
    let path = dir.join(shard_name(index));
    let tmp = dir.join(format!("{}.tmp", shard_name(index)));
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let values: Vec<i16> = grids.values.iter().map(|&v| v as i16).collect();
    Array3::from_shape_vec(grids.shape, values)?
        .write_npy(std::io::BufWriter::new(file))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// Lists the shards present and writes the manifest for them.
pub fn write_manifest(dir: &Path, mut template: Manifest) -> Result<Manifest> {
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".npy"))
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

/// Every grid of a latent data set, checked against its manifest.
pub fn load(dir: &Path) -> Result<(Manifest, TokenGrids)> {
    let manifest = read_manifest(dir)?;
    let mut values = Vec::new();
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
        count += grids.shape[0];
        values.extend(grids.values);
    }
    if count == 0 {
        bail!("latent data set {} holds no grid", dir.display());
    }
    Ok((
        manifest.clone(),
        TokenGrids {
            values,
            shape: [count, manifest.grid_height, manifest.grid_width],
        },
    ))
}
