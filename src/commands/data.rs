//! `sundae encode`: a data set -> a latent data set (token-grid shards, their labels, a manifest).

use super::Done;
use crate::data::augment::Augment;
use crate::data::{Split, latents};
use anyhow::Result;
use burn::tensor::Device;
use std::path::Path;

/// Encodes `source` (its `split`, with `augment`'s views) with the VQ-GAN bundle into `out`;
/// `shard` (`I/N`) encodes only every N-th shard, so machines can share the work.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    vqgan: &Path,
    source: &str,
    split: Split,
    out: &Path,
    augment: Augment,
    shard: Option<&str>,
    batch_size: usize,
    device: &Device,
) -> Result<Done> {
    let part = shard.map(latents::parse_part).transpose()?;
    let manifest =
        latents::encode_dataset(vqgan, source, split, out, augment, part, batch_size, device)?;
    Ok(Done(format!(
        "{} holds {} token grids of {}x{} in {} shard(s)",
        out.display(),
        manifest.count,
        manifest.grid_height,
        manifest.grid_width,
        manifest.shards.len()
    )))
}
