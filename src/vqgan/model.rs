//! The VQ-GAN: encoder, quant_conv, quantizer, post_quant_conv, decoder (taming's `VQModel`).

use super::blocks::conv1x1;
use super::config::VqGanConfig;
use super::decoder::Decoder;
use super::encoder::Encoder;
use super::quantize::VectorQuantizer;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Int, Tensor};

#[derive(Module, Debug)]
pub struct VqGan {
    pub encoder: Encoder,
    pub quant_conv: Conv2d,
    pub quantize: VectorQuantizer,
    pub post_quant_conv: Conv2d,
    pub decoder: Decoder,
}

impl VqGan {
    /// A randomly initialised model for `config` (call `config.validate()` first).
    pub fn new(config: &VqGanConfig, device: &Device) -> Self {
        Self {
            encoder: Encoder::new(config, device),
            quant_conv: conv1x1(config.z_channels, config.embed_dim, device),
            quantize: VectorQuantizer::new(
                config.n_embed,
                config.embed_dim,
                config.l2_normalize,
                device,
            ),
            post_quant_conv: conv1x1(config.embed_dim, config.z_channels, device),
            decoder: Decoder::new(config, device),
        }
    }

    /// Pre-quantisation latents `[B, embed_dim, h, w]` of images `[B, 3, H, W]` in [-1, 1].
    pub fn encode_latents(&self, images: Tensor<4>) -> Tensor<4> {
        crate::cpu::conv2d(&self.quant_conv, self.encoder.forward(images))
    }

    /// Token grids `[B, h, w]` of images `[B, 3, H, W]` in [-1, 1].
    pub fn encode(&self, images: Tensor<4>) -> Tensor<3, Int> {
        self.quantize.indices(self.encode_latents(images))
    }

    /// Images `[B, 3, H, W]` (unclamped) from quantised latents `[B, embed_dim, h, w]`.
    pub fn decode_latents(&self, latents: Tensor<4>) -> Tensor<4> {
        self.decoder
            .forward(crate::cpu::conv2d(&self.post_quant_conv, latents))
    }

    /// Images `[B, 3, H, W]` clamped to [-1, 1] from token grids `[B, h, w]`.
    pub fn decode(&self, tokens: Tensor<3, Int>) -> Tensor<4> {
        self.decode_latents(self.quantize.lookup(tokens))
            .clamp(-1.0, 1.0)
    }

    pub fn n_embed(&self) -> usize {
        self.quantize.n_embed()
    }
}
