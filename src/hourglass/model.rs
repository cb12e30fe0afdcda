//! The hourglass stack and the prior on top of it (SPEC.md 4.1, 4.3).

use super::config::PriorConfig;
use super::layers::{Transformer, linear_rows};
use super::resample::{Projection, from_blocks, to_blocks};
use super::rotary::Rotary2d;
use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};

/// One level: a full-resolution stack before and after, and the way down and up around the valley.
#[derive(Module, Debug)]
pub struct HourglassLevel {
    pub pre_transformer: Transformer,
    pub downsample: Projection,
    pub attn_resampling_pre_valley: Transformer,
    pub upsample: Projection,
    pub attn_resampling_post_valley: Transformer,
    pub post_transformer: Transformer,
}

/// Nested levels around one valley stack; `levels[0]` is the outermost.
#[derive(Module, Debug)]
pub struct Hourglass {
    pub levels: Vec<HourglassLevel>,
    pub valley_transformer: Transformer,
    pub norm_out: LayerNorm,
}

#[derive(Module, Debug)]
pub struct Prior {
    pub token_emb: Embedding,
    pub class_emb: Option<Embedding>,
    /// Added, times `FILL_SCALE`, to the input of every token to fill (`PriorConfig::fill_embedding`),
    /// `[1, dim]`.
    pub fill_emb: Option<Param<Tensor<2>>>,
    /// One table per label set (`PriorConfig::labels`), its last row the null value.
    pub label_emb: Vec<Embedding>,
    pub transformer: Hourglass,
    pub to_logits: Linear,
    pub grid_height: usize,
    pub grid_width: usize,
    pub dim_head: usize,
    pub block_side: usize,
}

/// What a pass is told besides the tokens.
#[derive(Clone, Default)]
pub struct Conditions {
    /// `[B, H, W]`: true for the tokens to fill (inside an inpainting mask or a training block).
    pub fill: Option<Tensor<3, Bool>>,
    /// `[B, sets]`: each grid's index in every label set (the set's size = its null value).
    pub labels: Option<Tensor<2, Int>>,
}

/// The fill embedding is stored divided by this and multiplied back when used. Adam moves each
/// coordinate by about the learning rate per step whatever its size, so a vector started at zero would
/// need thousands of fine-tuning steps to reach the size of a token embedding (entries ~1); scaled, it
/// can within a few hundred.
pub const FILL_SCALE: f64 = 10.0;

/// The grid a stack runs on now and the grid it was trained on (for rotary positions).
#[derive(Clone, Copy)]
struct Grid {
    height: usize,
    width: usize,
    train_height: usize,
    train_width: usize,
}

impl Grid {
    fn shorter(self, s: usize) -> Self {
        Self {
            height: self.height / s,
            width: self.width / s,
            train_height: (self.train_height / s).max(1),
            train_width: (self.train_width / s).max(1),
        }
    }

    fn rotary(self, dim_head: usize, device: &Device) -> Rotary2d {
        Rotary2d::new(
            dim_head,
            self.height,
            self.width,
            self.train_height,
            self.train_width,
            device,
        )
    }
}

impl Prior {
    /// A randomly initialised prior (call `config.validate()` first).
    pub fn new(config: &PriorConfig, device: &Device) -> Self {
        let (dim, heads, dh, ff) = (config.dim, config.heads, config.dim_head, config.ff_mult);
        let stack = |depth: usize| Transformer::new(depth, dim, heads, dh, ff, device);
        let levels = config.levels();
        let k = config.shorten_factor;
        let levels = (0..levels)
            .map(|i| HourglassLevel {
                pre_transformer: stack(config.depth[i]),
                downsample: Projection::new(dim * k, dim, device),
                attn_resampling_pre_valley: stack(1),
                upsample: Projection::new(dim, dim * k, device),
                attn_resampling_post_valley: stack(1),
                post_transformer: stack(config.depth[config.depth.len() - 1 - i]),
            })
            .collect();
        Self {
            token_emb: EmbeddingConfig::new(config.vocab_size, dim).init(device),
            class_emb: (config.num_classes > 0)
                .then(|| EmbeddingConfig::new(config.num_classes, dim).init(device)),
            fill_emb: config
                .fill_embedding
                .then(|| Self::zero_fill_embedding(dim, device)),
            label_emb: config
                .labels
                .iter()
                .map(|set| EmbeddingConfig::new(set.values + 1, dim).init(device))
                .collect(),
            transformer: Hourglass {
                levels,
                valley_transformer: stack(config.depth[config.levels()]),
                norm_out: LayerNormConfig::new(dim).init(device),
            },
            to_logits: LinearConfig::new(dim, config.vocab_size).init(device),
            grid_height: config.grid_height,
            grid_width: config.grid_width,
            dim_head: dh,
            block_side: config.block_side(),
        }
    }

    /// Starts at zero, so a trained prior given one (`with_fill_embedding`) computes what it did.
    fn zero_fill_embedding(dim: usize, device: &Device) -> Param<Tensor<2>> {
        Param::from_tensor(Tensor::zeros([1, dim], device))
    }

    /// This prior with a zero fill embedding added, to fine-tune a trained prior for inpainting.
    pub fn with_fill_embedding(mut self) -> Self {
        if self.fill_emb.is_none() {
            let weight = &self.token_emb.weight;
            self.fill_emb = Some(Self::zero_fill_embedding(
                weight.dims()[1],
                &weight.device(),
            ));
        }
        self
    }

    /// Logits `[B, H*W, V]` for token grids `[B, H, W]` (any grid the levels can shorten) and,
    /// for a class-conditional model, class labels `[B]`.
    pub fn forward(&self, tokens: Tensor<3, Int>, classes: Option<Tensor<1, Int>>) -> Tensor<3> {
        self.forward_conditioned(tokens, classes, &Conditions::default())
    }

    /// As `forward`, told which tokens to fill and which labels the grids carry (see `Conditions`).
    /// A prior without a fill embedding ignores the fill flags; one without label sets, the labels.
    pub fn forward_conditioned(
        &self,
        tokens: Tensor<3, Int>,
        classes: Option<Tensor<1, Int>>,
        conditions: &Conditions,
    ) -> Tensor<3> {
        let [b, height, width] = tokens.dims();
        let mut x = self.token_emb.forward(tokens.reshape([b, height * width]));
        if let (Some(emb), Some(classes)) = (&self.class_emb, classes) {
            x = x + emb.forward(classes.reshape([b, 1]));
        }
        if let (Some(emb), Some(fill)) = (&self.fill_emb, conditions.fill.clone()) {
            let flags = fill.float().reshape([b, height * width, 1]);
            x = x + flags * emb.val().mul_scalar(FILL_SCALE).unsqueeze::<3>();
        }
        // A labelled prior always sees a label per set: without one, each set's null value.
        for (set, emb) in self.label_emb.iter().enumerate() {
            let column = match &conditions.labels {
                Some(labels) => labels.clone().narrow(1, set, 1),
                None => {
                    let null = emb.weight.dims()[0] as i64 - 1;
                    Tensor::<2, Int>::full([b, 1], null, &x.device())
                }
            };
            x = x + emb.forward(column);
        }
        let grid = Grid {
            height,
            width,
            train_height: self.grid_height,
            train_width: self.grid_width,
        };
        let x = self.hourglass(x, grid);
        let x = crate::cpu::layer_norm(&self.transformer.norm_out, x);
        linear_rows(&self.to_logits, x)
    }

    fn hourglass(&self, mut x: Tensor<3>, mut grid: Grid) -> Tensor<3> {
        let s = self.block_side;
        let k = s * s;
        let device = x.device();
        let mut way_down = Vec::with_capacity(self.transformer.levels.len());
        for level in &self.transformer.levels {
            let rotary = grid.rotary(self.dim_head, &device);
            x = level.pre_transformer.forward(x, None, Some(&rotary));
            let [b, _, d] = x.dims();
            let blocks = to_blocks(x.clone(), grid.height, grid.width, s);
            let m = blocks.dims()[1];
            let shortened = level.downsample.down(blocks.clone());
            // Each shortened token alone queries the k tokens of its block.
            let shortened = level
                .attn_resampling_pre_valley
                .forward(
                    shortened.reshape([b * m, 1, d]),
                    Some(blocks.reshape([b * m, k, d])),
                    None,
                )
                .reshape([b, m, d]);
            way_down.push((x, grid, rotary));
            grid = grid.shorter(s);
            x = shortened;
        }
        let rotary = grid.rotary(self.dim_head, &device);
        x = self
            .transformer
            .valley_transformer
            .forward(x, None, Some(&rotary));
        for level in self.transformer.levels.iter().rev() {
            let (residual, outer, rotary) = way_down.pop().expect("one entry per level");
            let [b, m, d] = x.dims();
            let up = from_blocks(
                level.upsample.up(x.clone(), k),
                outer.height,
                outer.width,
                s,
            ) + residual;
            // Each full-resolution token attends to the single valley token of its block.
            let queries = to_blocks(up, outer.height, outer.width, s).reshape([b * m, k, d]);
            let resampled = level
                .attn_resampling_post_valley
                .forward(queries, Some(x.reshape([b * m, 1, d])), None)
                .reshape([b, m, k, d]);
            let u = from_blocks(resampled, outer.height, outer.width, s);
            x = level.post_transformer.forward(u, None, Some(&rotary));
        }
        x
    }

    pub fn vocab_size(&self) -> usize {
        self.to_logits.weight.dims()[1]
    }
}
