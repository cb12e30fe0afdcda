//! The prior's architecture numbers, as stored in a bundle's `prior.toml`.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorConfig {
    /// Token vocabulary (the VQ-GAN's `n_embed`). A training configuration may leave it and the grid
    /// out (0): the latent set's manifest supplies them.
    #[serde(default)]
    pub vocab_size: usize,
    /// Training grid in tokens: rows and columns.
    #[serde(default)]
    pub grid_height: usize,
    #[serde(default)]
    pub grid_width: usize,
    /// Model width.
    pub dim: usize,
    pub heads: usize,
    #[serde(default = "default_dim_head")]
    pub dim_head: usize,
    /// Layers per stack, palindromic nesting: `[pre, valley, post]` is one hourglass;
    /// `[pre, pre2, valley, post2, post]` nests a second one in the valley, and so on.
    pub depth: Vec<usize>,
    /// Tokens merged per step down (a perfect square: s x s blocks with s = sqrt(k)).
    #[serde(default = "default_shorten")]
    pub shorten_factor: usize,
    #[serde(default = "default_ff_mult")]
    pub ff_mult: usize,
    /// Classes for class-conditional models (0 = unconditional).
    #[serde(default)]
    pub num_classes: usize,
    /// Learn a vector added to the input of every token the sampler must fill (inside an inpainting
    /// mask; inside a training block), so the model can tell those inputs carry no evidence. Our
    /// addition for inpainting, off in the reference; written to `prior.toml` only when on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fill_embedding: bool,
    /// Label sets the prior is conditioned on, each embedded by its own table summed into every
    /// token's input (as the reference's `class_emb`), with one extra row for the null value (the
    /// label left out). A training configuration may name a set without its size (`values = 0`):
    /// the latent set's manifest supplies it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<LabelSetSize>,
}

/// A label set as the prior sees it: its name and how many values it has (the null value not counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSetSize {
    pub name: String,
    #[serde(default)]
    pub values: usize,
}

fn default_dim_head() -> usize {
    64
}
fn default_shorten() -> usize {
    4
}
fn default_ff_mult() -> usize {
    4
}

impl PriorConfig {
    /// Side of the s x s blocks merged by one down step.
    pub fn block_side(&self) -> usize {
        (self.shorten_factor as f64).sqrt().round() as usize
    }

    /// Number of nested hourglass levels.
    pub fn levels(&self) -> usize {
        self.depth.len() / 2
    }

    /// Attention width: heads x dim_head.
    pub fn inner_dim(&self) -> usize {
        self.heads * self.dim_head
    }

    pub fn validate(&self) -> Result<()> {
        let s = self.block_side();
        if s * s != self.shorten_factor || s < 2 {
            bail!(
                "prior config: shorten_factor {} is not a perfect square of at least 4",
                self.shorten_factor
            );
        }
        if self.depth.len().is_multiple_of(2) || self.depth.len() < 3 {
            bail!(
                "prior config: depth {:?} must have an odd number (3, 5, ...) of entries: pre, valley, post",
                self.depth
            );
        }
        if self.vocab_size < 2 || self.dim == 0 || self.heads == 0 || self.dim_head < 4 {
            bail!(
                "prior config: vocab_size, dim, heads and dim_head must be positive (dim_head >= 4)"
            );
        }
        if !self.dim_head.is_multiple_of(4) {
            bail!(
                "prior config: dim_head {} must be a multiple of 4 for 2D rotary embeddings",
                self.dim_head
            );
        }
        self.check_grid(self.grid_height, self.grid_width)
    }

    /// A grid must be divisible by s at every level (Q3); names the size that is not.
    pub fn check_grid(&self, height: usize, width: usize) -> Result<()> {
        let s = self.block_side();
        let (mut h, mut w) = (height, width);
        for level in 0..self.levels() {
            if h % s != 0 || w % s != 0 {
                bail!(
                    "a {height}x{width} token grid cannot be shortened: at level {level} it is {h}x{w}, not divisible by {s}"
                );
            }
            h /= s;
            w /= s;
        }
        Ok(())
    }

    /// Parameters of the model this config builds (SPEC.md 4.6's formula, generalised to nesting
    /// and the feed-forward multiplier).
    pub fn parameter_count(&self) -> usize {
        let (d, v, inner, f) = (self.dim, self.vocab_size, self.inner_dim(), self.ff_mult);
        let layer = 4 * d * inner + d + 4 * d + 2 * f * d * d + f * d + d;
        let layers: usize = self.depth.iter().sum::<usize>() + 2 * self.levels();
        let k = self.shorten_factor;
        let resampling = self.levels() * (2 * k * d * d + d + k * d);
        2 * v * d
            + v
            + layers * layer
            + resampling
            + 2 * d
            + self.num_classes * d
            + self.fill_embedding as usize * d
            + self
                .labels
                .iter()
                .map(|l| (l.values + 1) * d)
                .sum::<usize>()
    }

    /// The reference FFHQ1024 prior `ffhq1024-hourglass-2102-4`.
    pub fn ffhq1024() -> Self {
        Self {
            vocab_size: 8192,
            grid_height: 32,
            grid_width: 32,
            dim: 2048,
            heads: 8,
            dim_head: 64,
            depth: vec![2, 10, 2],
            shorten_factor: 4,
            ff_mult: 4,
            num_classes: 0,
            fill_embedding: false,
            labels: Vec::new(),
        }
    }

    /// The reference FFHQ256 prior `ffhq256-2102-4`.
    pub fn ffhq256() -> Self {
        Self {
            vocab_size: 1024,
            grid_height: 16,
            grid_width: 16,
            dim: 1024,
            ..Self::ffhq1024()
        }
    }

    /// The emoji prior: 8x8 grids of 512 codes (configs/prior-emoji.toml).
    pub fn emoji() -> Self {
        Self {
            vocab_size: 512,
            grid_height: 8,
            grid_width: 8,
            dim: 256,
            heads: 4,
            dim_head: 64,
            depth: vec![2, 4, 2],
            shorten_factor: 4,
            ff_mult: 4,
            num_classes: 0,
            fill_embedding: false,
            labels: Vec::new(),
        }
    }

    /// A prior small enough for tests.
    pub fn tiny() -> Self {
        Self {
            vocab_size: 16,
            grid_height: 8,
            grid_width: 8,
            dim: 32,
            heads: 2,
            dim_head: 16,
            depth: vec![1, 1, 1],
            shorten_factor: 4,
            ff_mult: 2,
            num_classes: 0,
            fill_embedding: false,
            labels: Vec::new(),
        }
    }
}
