//! Group norm (and the SiLU that follows it in taming's blocks) in one pass per group, the groups
//! in parallel: mean, then the biased variance of the centred values (burn's and PyTorch's
//! two-pass formula), then `(x - mean) / sqrt(var + eps) * gamma + beta`.

use super::exp::exp;
use super::{applies, tensor, values};
use burn::nn::GroupNorm;
use burn::tensor::Tensor;
use burn::tensor::activation::silu;
use rayon::prelude::*;

/// `norm.forward(x)`.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    if !applies(&x) {
        return norm.forward(x);
    }
    normalize(norm, x, |v| v)
}

/// `silu(norm.forward(x))`.
pub fn group_norm_silu(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    if !applies(&x) {
        return silu(norm.forward(x));
    }
    normalize(norm, x, |v| v / (1.0 + exp(-v)))
}

fn normalize(norm: &GroupNorm, x: Tensor<4>, activation: impl Fn(f32) -> f32 + Sync) -> Tensor<4> {
    let shape = x.dims();
    let [_, channels, h, w] = shape;
    let groups = norm.num_groups;
    let plane = h * w;
    let per_group = channels / groups * plane;
    let affine = |p: &Option<burn::module::Param<Tensor<1>>>, default: f32| match p {
        Some(p) if norm.affine => values(p.val()),
        _ => vec![default; channels],
    };
    let (gamma, beta) = (affine(&norm.gamma, 1.0), affine(&norm.beta, 0.0));
    let mut data = values(x);
    data.par_chunks_mut(per_group)
        .enumerate()
        .for_each(|(index, group)| {
            let n = group.len() as f64;
            let mean = (sum(group, |v| v) / n) as f32;
            let var = sum(group, |v| (v - mean) * (v - mean)) / n;
            let inv_std = (1.0 / (var + norm.epsilon).sqrt()) as f32;
            let first_channel = index % groups * (channels / groups);
            for (c, values) in group.chunks_mut(plane).enumerate() {
                let scale = inv_std * gamma[first_channel + c];
                let shift = beta[first_channel + c];
                for v in values {
                    *v = activation((*v - mean) * scale + shift);
                }
            }
        });
    tensor(data, shape)
}

/// The sum of `f(v)` over `values`: f32 within blocks of 1024 (16 lanes, which vectorise), the
/// blocks added in f64, so that a megapixel group loses no precision to one long f32 sum.
fn sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    values
        .chunks(1024)
        .map(|block| {
            let mut lanes = [0.0f32; 16];
            let mut chunks = block.chunks_exact(16);
            for chunk in &mut chunks {
                for (lane, &v) in lanes.iter_mut().zip(chunk) {
                    *lane += f(v);
                }
            }
            let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
            lanes.iter().sum::<f32>() as f64 + tail as f64
        })
        .sum()
}
