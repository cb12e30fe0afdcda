//! The taming building blocks (SPEC.md 2.1): ResnetBlock, AttnBlock, Downsample, Upsample.
//! Field names mirror taming's state-dict paths so that weights map one to one.

use crate::cpu::{conv2d, group_norm, norm_silu_conv2d};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

/// GroupNorm(eps 1e-6, affine), as taming's `Normalize` (which always uses 32 groups).
pub fn normalize(channels: usize, groups: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels)
        .with_epsilon(1e-6)
        .init(device)
}

/// 3x3 convolution, stride 1, padding 1, with bias.
pub fn conv3x3(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// 1x1 convolution with bias.
pub fn conv1x1(cin: usize, cout: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [1, 1]).init(device)
}

/// Pre-activation residual block; a 1x1 `nin_shortcut` when the width changes.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    pub norm1: GroupNorm,
    pub conv1: Conv2d,
    pub norm2: GroupNorm,
    pub conv2: Conv2d,
    pub nin_shortcut: Option<Conv2d>,
}

impl ResnetBlock {
    pub fn new(cin: usize, cout: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm1: normalize(cin, groups, device),
            conv1: conv3x3(cin, cout, device),
            norm2: normalize(cout, groups, device),
            conv2: conv3x3(cout, cout, device),
            nin_shortcut: (cin != cout).then(|| conv1x1(cin, cout, device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = norm_silu_conv2d(&self.norm1, &self.conv1, x.clone());
        // Dropout is 0 in every published config and we only train with it off.
        let h = norm_silu_conv2d(&self.norm2, &self.conv2, h);
        let skip = match &self.nin_shortcut {
            Some(conv) => conv2d(conv, x),
            None => x,
        };
        skip + h
    }
}

/// Single-head self-attention over all spatial positions, with a residual.
#[derive(Module, Debug)]
pub struct AttnBlock {
    pub norm: GroupNorm,
    pub q: Conv2d,
    pub k: Conv2d,
    pub v: Conv2d,
    pub proj_out: Conv2d,
}

impl AttnBlock {
    pub fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: normalize(channels, groups, device),
            q: conv1x1(channels, channels, device),
            k: conv1x1(channels, channels, device),
            v: conv1x1(channels, channels, device),
            proj_out: conv1x1(channels, channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let hn = group_norm(&self.norm, x.clone());
        // [B, HW, C] queries and values, [B, C, HW] keys.
        let q = conv2d(&self.q, hn.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let k = conv2d(&self.k, hn.clone()).reshape([b, c, h * w]);
        let v = conv2d(&self.v, hn).reshape([b, c, h * w]).swap_dims(1, 2);
        let weights = softmax(q.matmul(k).mul_scalar((c as f64).powf(-0.5)), 2);
        let out = weights.matmul(v).swap_dims(1, 2).reshape([b, c, h, w]);
        x + conv2d(&self.proj_out, out)
    }
}

/// Halves the resolution: zero-pad right and bottom by one, then a 3x3 stride-2 convolution.
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
}

impl Downsample {
    pub fn new(channels: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([channels, channels], [3, 3])
            .with_stride([2, 2])
            .init(device);
        Self { conv }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // Taming pads (0, 1, 0, 1): nothing on top/left, one on bottom/right.
        crate::cpu::conv::conv2d_padded(&self.conv, x, [(0, 1), (0, 1)])
    }
}

/// Doubles the resolution: nearest-neighbour x2, then a 3x3 convolution.
#[derive(Module, Debug)]
pub struct Upsample {
    pub conv: Conv2d,
}

impl Upsample {
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            conv: conv3x3(channels, channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::cpu::conv::conv2d_nearest_x2(&self.conv, x)
    }
}

/// Nearest-neighbour upsampling by exactly 2: every pixel becomes a 2x2 block.
pub fn nearest_x2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}
