//! Render decoders: a second decoder for one tokenizer's codes that draws the same token grid at a
//! larger size (8x8 tokens -> 256x256 or 1024x1024 pixels). It is taming's `post_quant_conv` and
//! `Decoder` with more upsampling levels, so its config is a [`VqGanConfig`] whose `resolution` is the
//! render size and whose token grid, code width and vocabulary equal the tokenizer's.

use super::blocks::conv1x1;
use super::config::VqGanConfig;
use super::decoder::Decoder;
use super::model::VqGan;
use super::quantize::VectorQuantizer;
use anyhow::{Result, bail};
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Int, Tensor};
use std::collections::HashMap;

#[derive(Module, Debug)]
pub struct RenderDecoder {
    pub post_quant_conv: Conv2d,
    pub decoder: Decoder,
}

impl RenderDecoder {
    /// A randomly initialised decoder for `config` (validated and checked against its tokenizer first).
    pub fn new(config: &VqGanConfig, device: &Device) -> Self {
        Self {
            post_quant_conv: conv1x1(config.embed_dim, config.z_channels, device),
            decoder: Decoder::new(config, device),
        }
    }

    /// The tokenizer's own decoder (its native size), sharing its weights.
    pub fn native(vqgan: &VqGan) -> Self {
        Self {
            post_quant_conv: vqgan.post_quant_conv.clone(),
            decoder: vqgan.decoder.clone(),
        }
    }

    /// Pixels per token along each axis.
    pub fn pixels_per_token(&self) -> usize {
        1 << self
            .decoder
            .up
            .iter()
            .filter(|l| l.upsample.is_some())
            .count()
    }

    /// Images `[B, 3, H, W]` (unclamped) from quantised latents `[B, embed_dim, h, w]`.
    pub fn decode_latents(&self, latents: Tensor<4>) -> Tensor<4> {
        self.decoder
            .forward(crate::cpu::conv2d(&self.post_quant_conv, latents))
    }

    /// Images `[B, 3, H, W]` clamped to [-1, 1] from token grids, looked up in the tokenizer's codebook.
    pub fn decode(&self, codebook: &VectorQuantizer, tokens: Tensor<3, Int>) -> Tensor<4> {
        self.decode_latents(codebook.lookup(tokens))
            .clamp(-1.0, 1.0)
    }
}

/// Pixels per token of a render decoder, and a refusal when it cannot read the tokenizer's codes.
pub fn check_fits(render: &VqGanConfig, tokenizer: &VqGanConfig) -> Result<()> {
    render.validate()?;
    if render.latent_side() != tokenizer.latent_side()
        || render.embed_dim != tokenizer.embed_dim
        || render.n_embed != tokenizer.n_embed
    {
        bail!(
            "a {r}x{r} decoder reads {s}x{s} grids of {n} codes of width {e}, but the tokenizer makes {ts}x{ts} grids of {tn} codes of width {te}",
            r = render.resolution,
            s = render.latent_side(),
            n = render.n_embed,
            e = render.embed_dim,
            ts = tokenizer.latent_side(),
            tn = tokenizer.n_embed,
            te = tokenizer.embed_dim,
        );
    }
    if !render.resolution.is_multiple_of(tokenizer.resolution) {
        bail!(
            "a render size must be a multiple of the tokenizer's {} pixels, not {}",
            tokenizer.resolution,
            render.resolution
        );
    }
    Ok(())
}

/// How many levels a render decoder has above its tokenizer's decoder (2 for 64 -> 256).
pub fn extra_levels(render: &VqGanConfig, tokenizer: &VqGanConfig) -> usize {
    render.levels().saturating_sub(tokenizer.levels())
}

/// Weights that make the `shift` new top levels of a decoder grown from a smaller one pass the
/// smaller one's top features through, enlarged by nearest neighbour: every new upsampling
/// convolution's centre tap is the identity, and every new residual block adds nothing at first (its
/// last convolution zero; taming's blocks are `x + h`). With the output layers copied too, the new
/// decoder starts as the smaller one drawn on a finer grid, where random new levels start from random
/// colours (a 1024 decoder grown that way from the 256 one stayed at 15.5 dB after 400 steps).
/// Only when it can be exact: every new level as wide as the copied top level (no block changes
/// width), and `norm_out` and `conv_out` among `copied`; otherwise nothing (the new levels stay
/// random). `wanted` holds the new decoder's tensor names and shapes; returns (name, shape, values).
pub fn pass_through_levels(
    wanted: &HashMap<String, Vec<usize>>,
    shift: usize,
    copied: &[&str],
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let output_copied = ["decoder.norm_out.weight", "decoder.conv_out.weight"]
        .iter()
        .all(|name| copied.contains(name));
    let new_level = |name: &str| {
        up_level(name)
            .map(|(level, _)| level)
            .filter(|&level| level < shift)
    };
    let widens = wanted
        .keys()
        .any(|name| new_level(name).is_some() && name.contains(".nin_shortcut."));
    if shift == 0 || !output_copied || widens {
        return Vec::new();
    }
    let mut weights = Vec::new();
    for (name, shape) in wanted {
        let upsample_level = up_level(name)
            .filter(|&(level, rest)| level <= shift && rest.starts_with("upsample.conv."));
        let zeroed = new_level(name).is_some() && name.contains(".conv2.");
        let values = match (upsample_level, name.ends_with(".weight")) {
            (Some(_), true) => identity_kernel(shape),
            (Some(_), false) => vec![0.0; shape.iter().product()],
            (None, _) if zeroed => vec![0.0; shape.iter().product()],
            (None, _) => continue,
        };
        weights.push((name.clone(), shape.clone(), values));
    }
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

/// Zero weights for the blocks a deeper decoder adds to levels the smaller one has (its
/// `num_res_blocks` raised): each new residual block's last convolution and each new attention
/// block's output projection, so that both add nothing at first (taming's blocks are `x + h`) and
/// the deeper decoder starts drawing exactly what the smaller one draws. A new block that changes
/// width (a `nin_shortcut`) is no identity and keeps its random start. Levels below `shift` are new
/// levels, left to [`pass_through_levels`]. `wanted` holds the new decoder's tensor names and
/// shapes; returns (name, shape, values).
pub fn identity_blocks(
    wanted: &HashMap<String, Vec<usize>>,
    shift: usize,
    copied: &[&str],
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let copied_block = |level: usize, kind: &str, index: &str| {
        let prefix = format!("decoder.up.{level}.{kind}.{index}.");
        copied.iter().any(|name| name.starts_with(&prefix))
    };
    let mut weights = Vec::new();
    for (name, shape) in wanted {
        let Some((level, rest)) = up_level(name).filter(|&(level, _)| level >= shift) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        let [kind, index, layer, _] = parts[..] else {
            continue;
        };
        let zeroed = match (kind, layer) {
            ("block", "conv2") => !wanted.contains_key(&format!(
                "decoder.up.{level}.block.{index}.nin_shortcut.weight"
            )),
            ("attn", "proj_out") => true,
            _ => false,
        };
        if zeroed && !copied_block(level, kind, index) {
            weights.push((
                name.clone(),
                shape.clone(),
                vec![0.0; shape.iter().product()],
            ));
        }
    }
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

/// The level of a `decoder.up.N.…` tensor name, and the rest of the name after `N.`.
pub fn up_level(name: &str) -> Option<(usize, &str)> {
    let (level, rest) = name.strip_prefix("decoder.up.")?.split_once('.')?;
    Some((level.parse().ok()?, rest))
}

/// A `[C, C, kh, kw]` kernel whose centre tap passes each channel through.
fn identity_kernel(shape: &[usize]) -> Vec<f32> {
    let [c_out, c_in, kh, kw] = [shape[0], shape[1], shape[2], shape[3]];
    let mut values = vec![0.0; c_out * c_in * kh * kw];
    for c in 0..c_out.min(c_in) {
        values[((c * c_in + c) * kh + kh / 2) * kw + kw / 2] = 1.0;
    }
    values
}
