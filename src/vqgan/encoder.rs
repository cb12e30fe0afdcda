//! Taming's `Encoder` (SPEC.md 2.1): image -> z_channels feature map at 1/f resolution.

use super::blocks::{AttnBlock, Downsample, ResnetBlock, conv3x3, normalize};
use super::config::VqGanConfig;
use crate::cpu::{conv2d, norm_silu_conv2d};
use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

/// One resolution level: residual blocks, each followed by attention where the level asks for it.
#[derive(Module, Debug)]
pub struct EncoderLevel {
    pub block: Vec<ResnetBlock>,
    pub attn: Vec<AttnBlock>,
    pub downsample: Option<Downsample>,
}

/// The middle of both encoder and decoder: Resnet, Attn, Resnet.
#[derive(Module, Debug)]
pub struct Mid {
    pub block_1: ResnetBlock,
    pub attn_1: AttnBlock,
    pub block_2: ResnetBlock,
}

impl Mid {
    pub fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            block_1: ResnetBlock::new(channels, channels, groups, device),
            attn_1: AttnBlock::new(channels, groups, device),
            block_2: ResnetBlock::new(channels, channels, groups, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.block_2
            .forward(self.attn_1.forward(self.block_1.forward(x)))
    }
}

/// Runs residual blocks, interleaving attention blocks when the level has them.
pub fn blocks_with_attention(
    blocks: &[ResnetBlock],
    attns: &[AttnBlock],
    mut x: Tensor<4>,
) -> Tensor<4> {
    for (i, block) in blocks.iter().enumerate() {
        x = block.forward(x);
        if let Some(attn) = attns.get(i) {
            x = attn.forward(x);
        }
    }
    x
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub conv_in: Conv2d,
    pub down: Vec<EncoderLevel>,
    pub mid: Mid,
    pub norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl Encoder {
    pub fn new(config: &VqGanConfig, device: &Device) -> Self {
        let widths = config.channel_widths();
        let levels = config.levels();
        let g = config.norm_groups;
        let mut resolution = config.resolution;
        let mut cin = config.ch;
        let mut down = Vec::with_capacity(levels);
        for (level, &cout) in widths.iter().enumerate() {
            let mut block = Vec::new();
            let mut attn = Vec::new();
            for _ in 0..config.num_res_blocks {
                block.push(ResnetBlock::new(cin, cout, g, device));
                cin = cout;
                if config.attn_resolutions.contains(&resolution) {
                    attn.push(AttnBlock::new(cout, g, device));
                }
            }
            let downsample = (level + 1 < levels).then(|| Downsample::new(cout, device));
            if downsample.is_some() {
                resolution /= 2;
            }
            down.push(EncoderLevel {
                block,
                attn,
                downsample,
            });
        }
        Self {
            conv_in: conv3x3(config.in_channels, config.ch, device),
            down,
            mid: Mid::new(cin, g, device),
            norm_out: normalize(cin, g, device),
            conv_out: conv3x3(cin, config.z_channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = conv2d(&self.conv_in, x);
        for level in &self.down {
            h = blocks_with_attention(&level.block, &level.attn, h);
            if let Some(downsample) = &level.downsample {
                h = downsample.forward(h);
            }
        }
        let h = self.mid.forward(h);
        norm_silu_conv2d(&self.norm_out, &self.conv_out, h)
    }
}
