//! Taming's `Decoder` (SPEC.md 2.1): z_channels feature map -> image (no final tanh).

use super::blocks::{AttnBlock, ResnetBlock, Upsample, conv3x3, normalize};
use super::config::VqGanConfig;
use super::encoder::{Mid, blocks_with_attention};
use crate::cpu::{conv2d, group_norm_silu, norm_silu_conv2d};
use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// One resolution level: `num_res_blocks + 1` residual blocks, attention where asked, then upsample.
#[derive(Module, Debug)]
pub struct DecoderLevel {
    pub block: Vec<ResnetBlock>,
    pub attn: Vec<AttnBlock>,
    pub upsample: Option<Upsample>,
}

#[derive(Module, Debug)]
pub struct Decoder {
    pub conv_in: Conv2d,
    pub mid: Mid,
    /// Indexed by level (0 = full resolution) although it runs from the last level down, as in taming.
    pub up: Vec<DecoderLevel>,
    pub norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl Decoder {
    pub fn new(config: &VqGanConfig, device: &Device) -> Self {
        let widths = config.channel_widths();
        let levels = config.levels();
        let g = config.norm_groups;
        let mut cin = widths[levels - 1];
        let mut resolution = config.latent_side();
        let mut up: Vec<DecoderLevel> = Vec::with_capacity(levels);
        for level in (0..levels).rev() {
            let cout = widths[level];
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for _ in 0..=config.num_res_blocks {
                block.push(ResnetBlock::new(cin, cout, g, device));
                cin = cout;
                if config.attn_resolutions.contains(&resolution) {
                    attn.push(AttnBlock::new(cout, g, device));
                }
            }
            let upsample = (level != 0).then(|| Upsample::new(cout, device));
            if upsample.is_some() {
                resolution *= 2;
            }
            up.push(DecoderLevel {
                block,
                attn,
                upsample,
            });
        }
        up.reverse();
        let top = widths[levels - 1];
        Self {
            conv_in: conv3x3(config.z_channels, top, device),
            mid: Mid::new(top, g, device),
            up,
            norm_out: normalize(cin, g, device),
            conv_out: conv3x3(cin, config.out_ch, device),
        }
    }

    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        norm_silu_conv2d(&self.norm_out, &self.conv_out, self.trunk(z))
    }

    /// Everything before `conv_out`: its input, which training needs for the adaptive GAN weight.
    pub fn features(&self, z: Tensor<4>) -> Tensor<4> {
        group_norm_silu(&self.norm_out, self.trunk(z))
    }

    /// Everything before `norm_out`.
    fn trunk(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = self.mid.forward(conv2d(&self.conv_in, z));
        for level in self.up.iter().rev() {
            h = blocks_with_attention(&level.block, &level.attn, h);
            if let Some(upsample) = &level.upsample {
                h = upsample.forward(h);
            }
        }
        h
    }
}
