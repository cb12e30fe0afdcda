//! The VQ-GAN architecture numbers (SPEC.md 2.1-2.2), as stored in a bundle's `vqgan.toml`.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Every number needed to rebuild a taming-style VQ-GAN. Field names follow taming's `ddconfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqGanConfig {
    /// Side of the (square) training images in pixels.
    pub resolution: usize,
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub out_ch: usize,
    /// Base channel width; level i has `ch * ch_mult[i]` channels.
    pub ch: usize,
    pub ch_mult: Vec<usize>,
    pub num_res_blocks: usize,
    /// Feature-map sides (in pixels of that level) at which attention blocks are inserted.
    #[serde(default)]
    pub attn_resolutions: Vec<usize>,
    pub z_channels: usize,
    pub embed_dim: usize,
    pub n_embed: usize,
    #[serde(default)]
    pub dropout: f64,
    /// GroupNorm groups. Taming always uses 32; with few channels per level fewer groups keep
    /// several channels per group, so that normalising does not erase each channel's mean (colour).
    #[serde(default = "thirty_two", skip_serializing_if = "is_thirty_two")]
    pub norm_groups: usize,
    /// ViT-VQGAN's remedy for codebook collapse: compare and quantise l2-normalised vectors.
    #[serde(default, skip_serializing_if = "is_false")]
    pub l2_normalize: bool,
}

fn thirty_two() -> usize {
    32
}

fn is_thirty_two(value: &usize) -> bool {
    *value == 32
}

fn is_false(value: &bool) -> bool {
    !value
}

fn three() -> usize {
    3
}

impl VqGanConfig {
    /// Number of resolution levels.
    pub fn levels(&self) -> usize {
        self.ch_mult.len()
    }

    /// Pixels per token along each axis: 2^(levels-1).
    pub fn downsampling(&self) -> usize {
        1 << (self.levels() - 1)
    }

    /// Token grid side for the training resolution.
    pub fn latent_side(&self) -> usize {
        self.resolution / self.downsampling()
    }

    /// Rejects configurations the architecture cannot build.
    pub fn validate(&self) -> Result<()> {
        if self.ch_mult.is_empty() {
            bail!("vqgan config: ch_mult must have at least one level");
        }
        if self.ch_mult.contains(&0) || self.ch == 0 || self.z_channels == 0 || self.embed_dim == 0
        {
            bail!("vqgan config: channel counts must be positive");
        }
        if self.norm_groups == 0 {
            bail!("vqgan config: norm_groups must be at least 1");
        }
        let groups = self.norm_groups;
        for (i, width) in self.channel_widths().iter().enumerate() {
            if !width.is_multiple_of(groups) {
                bail!(
                    "vqgan config: level {i} has {width} channels, which GroupNorm({groups}) cannot split; use multiples of {groups}"
                );
            }
        }
        if self.n_embed < 2 {
            bail!("vqgan config: n_embed must be at least 2");
        }
        if !self.resolution.is_multiple_of(self.downsampling()) {
            bail!(
                "vqgan config: resolution {} is not divisible by the downsampling factor {}",
                self.resolution,
                self.downsampling()
            );
        }
        Ok(())
    }

    /// Channels at each level: `ch * ch_mult[i]`.
    pub fn channel_widths(&self) -> Vec<usize> {
        self.ch_mult.iter().map(|m| self.ch * m).collect()
    }

    /// Taming's f16 VQ-GAN (ImageNet / FFHQ256 / CelebA256 first stage, 1024 codes).
    pub fn taming_f16() -> Self {
        Self {
            resolution: 256,
            in_channels: 3,
            out_ch: 3,
            ch: 128,
            ch_mult: vec![1, 1, 2, 2, 4],
            num_res_blocks: 2,
            attn_resolutions: vec![16],
            z_channels: 256,
            embed_dim: 256,
            n_embed: 1024,
            dropout: 0.0,
            norm_groups: 32,
            l2_normalize: false,
        }
    }

    /// The paper's FFHQ1024 VQ-GAN: f=32, 8192 codes.
    pub fn ffhq1024() -> Self {
        Self {
            resolution: 1024,
            ch_mult: vec![1, 1, 2, 2, 4, 4],
            num_res_blocks: 1,
            attn_resolutions: vec![64],
            n_embed: 8192,
            ..Self::taming_f16()
        }
    }

    /// A model small enough for tests: 2 levels, 32 channels, 16x16 images.
    pub fn tiny() -> Self {
        Self {
            resolution: 16,
            in_channels: 3,
            out_ch: 3,
            ch: 32,
            ch_mult: vec![1, 2],
            num_res_blocks: 1,
            attn_resolutions: vec![8],
            z_channels: 32,
            embed_dim: 8,
            n_embed: 16,
            dropout: 0.0,
            norm_groups: 32,
            l2_normalize: false,
        }
    }

    /// The emoji VQ-GAN of configs/vqgan-emoji.toml: 64x64, f=8 (8x8 token grids), 512 codes.
    pub fn emoji64() -> Self {
        Self {
            resolution: 64,
            in_channels: 3,
            out_ch: 3,
            ch: 32,
            ch_mult: vec![1, 2, 2, 4],
            num_res_blocks: 1,
            attn_resolutions: vec![8],
            z_channels: 64,
            embed_dim: 32,
            n_embed: 512,
            dropout: 0.0,
            norm_groups: 8,
            l2_normalize: false,
        }
    }

    /// A named preset, for the benchmark and `--config` shortcuts.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "f16" | "taming-f16" | "ffhq256" | "imagenet" => Some(Self::taming_f16()),
            "ffhq1024" => Some(Self::ffhq1024()),
            "tiny" => Some(Self::tiny()),
            "emoji64" => Some(Self::emoji64()),
            _ => None,
        }
    }
}
