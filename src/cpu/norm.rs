//! Group norm (and the SiLU that follows it in taming's blocks) in one pass per group, the groups
//! in parallel: mean, then the biased variance of the centred values (burn's and PyTorch's
//! two-pass formula), then `(x - mean) / sqrt(var + eps) * gamma + beta`.
//! Under autodiff on the CPU (training) it runs as a backend-extension operation whose backward pass
//! (`backward`) is two vectorisable passes per group, instead of burn's chain of element-wise steps.

use super::exp::exp;
use super::{applies, lane_sum_of_pairs, on_cpu, sum, tensor, values};
use burn::nn::GroupNorm;
use burn::tensor::Tensor;
use burn::tensor::activation::silu;
use multiversion::multiversion;
use rayon::prelude::*;

/// `norm.forward(x)`.
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    if let Some((gamma, beta)) = affine_on_cpu(norm, &x) {
        super::extension::group_norm(x, gamma, beta, norm.num_groups, norm.epsilon, false)
    } else if applies(&x) {
        normalize(norm, x, |v| v)
    } else {
        norm.forward(x)
    }
}

/// `silu(norm.forward(x))`.
pub fn group_norm_silu(norm: &GroupNorm, x: Tensor<4>) -> Tensor<4> {
    if let Some((gamma, beta)) = affine_on_cpu(norm, &x) {
        super::extension::group_norm(x, gamma, beta, norm.num_groups, norm.epsilon, true)
    } else if applies(&x) {
        normalize(norm, x, silu_value)
    } else {
        silu(norm.forward(x))
    }
}

/// Gamma and beta where the extension's kernel applies (an affine norm in f32 on the CPU, with or
/// without autodiff): it reads its input where it lies, so a shared input (a residual) is not
/// copied first, and it has its own backward pass.
pub(super) fn affine_on_cpu(norm: &GroupNorm, x: &Tensor<4>) -> Option<(Tensor<1>, Tensor<1>)> {
    let (gamma, beta) = (norm.gamma.as_ref()?.val(), norm.beta.as_ref()?.val());
    (norm.affine && on_cpu(x) && on_cpu(&gamma) && on_cpu(&beta)).then_some((gamma, beta))
}

fn normalize(norm: &GroupNorm, x: Tensor<4>, activation: impl Fn(f32) -> f32 + Sync) -> Tensor<4> {
    let shape = x.dims();
    let channels = shape[1];
    let affine = |p: &Option<burn::module::Param<Tensor<1>>>, default: f32| match p {
        Some(p) if norm.affine => values(p.val()),
        _ => vec![default; channels],
    };
    let (gamma, beta) = (affine(&norm.gamma, 1.0), affine(&norm.beta, 0.0));
    let mut data = values(x);
    let g = Groups::new(&shape, norm.num_groups, norm.epsilon);
    normalize_values(&mut data, &gamma, &beta, &g, activation);
    tensor(data, shape)
}

/// How a `[B, C, H, W]` tensor splits into groups.
pub(super) struct Groups {
    pub(super) groups: usize,
    pub(super) channels: usize,
    pub(super) plane: usize,
    pub(super) epsilon: f64,
}

impl Groups {
    pub(super) fn new(shape: &[usize], groups: usize, epsilon: f64) -> Self {
        Self {
            groups,
            channels: shape[1],
            plane: shape[2] * shape[3],
            epsilon,
        }
    }

    /// Values of one group of one image.
    fn size(&self) -> usize {
        self.channels / self.groups * self.plane
    }

    /// The first channel of the group that is chunk `index` of the tensor.
    fn first_channel(&self, index: usize) -> usize {
        index % self.groups * (self.channels / self.groups)
    }

    /// The group's mean and 1 / std (biased variance, two passes).
    fn statistics(&self, group: &[f32]) -> (f32, f32) {
        let n = group.len() as f64;
        let mean = (sum(group, |v| v) / n) as f32;
        let var = sum(group, |v| (v - mean) * (v - mean)) / n;
        (mean, (1.0 / (var + self.epsilon).sqrt()) as f32)
    }
}

/// `activation((x - mean) / std * gamma + beta)` of every value, in place.
pub(super) fn normalize_values(
    data: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    g: &Groups,
    activation: impl Fn(f32) -> f32 + Sync,
) {
    data.par_chunks_mut(g.size())
        .enumerate()
        .for_each(|(index, group)| {
            let (mean, inv_std) = g.statistics(group);
            let first_channel = g.first_channel(index);
            let (gamma, beta) = (&gamma[first_channel..], &beta[first_channel..]);
            normalize_group(group, mean, inv_std, gamma, beta, g.plane, &activation);
        });
}

/// One group's channels (`plane` values each) in place, from its statistics.
#[multiversion(targets = "simd")]
fn normalize_group(
    group: &mut [f32],
    mean: f32,
    inv_std: f32,
    gamma: &[f32],
    beta: &[f32],
    plane: usize,
    activation: &impl Fn(f32) -> f32,
) {
    for ((values, &gamma), &shift) in group.chunks_mut(plane).zip(gamma).zip(beta) {
        let scale = inv_std * gamma;
        for v in values {
            *v = activation((*v - mean) * scale + shift);
        }
    }
}

/// The same of `input` written to `out`: for an input that is still needed (a residual, or kept
/// for the backward pass), in one pass instead of a copy and a pass.
pub(super) fn normalize_into(
    input: &[f32],
    out: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    g: &Groups,
    activation: impl Fn(f32) -> f32 + Sync,
) {
    out.par_chunks_mut(g.size())
        .zip(input.par_chunks(g.size()))
        .enumerate()
        .for_each(|(index, (out, group))| {
            let (mean, inv_std) = g.statistics(group);
            let first_channel = g.first_channel(index);
            let (gamma, beta) = (&gamma[first_channel..], &beta[first_channel..]);
            normalize_group_into(
                group,
                out,
                mean,
                inv_std,
                (gamma, beta),
                g.plane,
                &activation,
            );
        });
}

/// `normalize_group` of `group` written to `out`.
#[multiversion(targets = "simd")]
fn normalize_group_into(
    group: &[f32],
    out: &mut [f32],
    mean: f32,
    inv_std: f32,
    (gamma, beta): (&[f32], &[f32]),
    plane: usize,
    activation: &impl Fn(f32) -> f32,
) {
    let channels = out.chunks_mut(plane).zip(group.chunks(plane));
    for (((out, values), &gamma), &shift) in channels.zip(gamma).zip(beta) {
        let scale = inv_std * gamma;
        for (o, &v) in out.iter_mut().zip(values) {
            *o = activation((v - mean) * scale + shift);
        }
    }
}

/// Per image and channel, the group norm's `[mean, inv_std * gamma, beta]` (image-major), for a
/// kernel that applies it as it reads its input (`normalized_silu`) instead of reading a
/// normalised copy.
pub(super) fn channel_transforms(
    input: &[f32],
    gamma: &[f32],
    beta: &[f32],
    g: &Groups,
) -> Vec<[f32; 3]> {
    input
        .par_chunks(g.size())
        .enumerate()
        .flat_map_iter(|(index, group)| {
            let (mean, inv_std) = g.statistics(group);
            let first_channel = g.first_channel(index);
            (first_channel..first_channel + g.channels / g.groups)
                .map(move |c| [mean, inv_std * gamma[c], beta[c]])
        })
        .collect()
}

/// `silu((v - mean) * scale + shift)`: `normalize_values`' arithmetic, with its SiLU.
#[inline(always)]
pub(super) fn normalized_silu(v: f32, [mean, scale, shift]: [f32; 3]) -> f32 {
    silu_value((v - mean) * scale + shift)
}

/// SiLU, `v sigmoid(v)`.
#[inline(always)]
pub(super) fn silu_value(v: f32) -> f32 {
    v / (1.0 + exp(-v))
}

/// The gradients of the group norm (followed by a SiLU when `with_silu`) in its input, gamma and
/// beta, from the input `x` and the output's `grad`. With `dy` the gradient at the norm's output
/// and `x̂` the normalised input, per group of n values: `dx = (dŷ - mean(dŷ) - x̂ mean(dŷ x̂)) /
/// std` for `dŷ = dy gamma`; per channel `dgamma = sum(dy x̂)`, `dbeta = sum(dy)`.
pub(super) fn backward(
    x: &[f32],
    grad: &[f32],
    gamma: &[f32],
    beta: &[f32],
    g: &Groups,
    with_silu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let per_channel = g.channels / g.groups;
    let mut dx = grad.to_vec();
    // Per group of each image: its channels' (sum of dy x̂, sum of dy).
    let partials: Vec<Vec<(f64, f64)>> = dx
        .par_chunks_mut(g.size())
        .zip(x.par_chunks(g.size()))
        .enumerate()
        .map(|(index, (dx, x))| {
            let (mean, inv_std) = g.statistics(x);
            let first_channel = g.first_channel(index);
            let mut sums = Vec::with_capacity(per_channel);
            // dx holds the output's gradient; it becomes dy, then the input's gradient.
            let (mut sum_d, mut sum_d_hat) = (0.0f64, 0.0f64);
            for (c, (dx, x)) in dx.chunks_mut(g.plane).zip(x.chunks(g.plane)).enumerate() {
                let (gamma, beta) = (gamma[first_channel + c], beta[first_channel + c]);
                if with_silu {
                    for (d, &v) in dx.iter_mut().zip(x) {
                        let y = (v - mean) * inv_std * gamma + beta;
                        let s = 1.0 / (1.0 + exp(-y));
                        *d *= s * (1.0 + y * (1.0 - s));
                    }
                }
                // sum(dy x̂) = sum(dy (x - mean)) / std.
                let dbeta = sum(dx, |d| d);
                let dgamma = f64::from(inv_std) * centred_dot(dx, x, mean);
                sums.push((dgamma, dbeta));
                sum_d += dbeta * f64::from(gamma);
                sum_d_hat += dgamma * f64::from(gamma);
            }
            let n = x.len() as f64;
            let (mean_d, mean_d_hat) = ((sum_d / n) as f32, (sum_d_hat / n) as f32);
            for (c, (dx, x)) in dx.chunks_mut(g.plane).zip(x.chunks(g.plane)).enumerate() {
                let gamma = gamma[first_channel + c];
                for (d, &v) in dx.iter_mut().zip(x) {
                    let x_hat = (v - mean) * inv_std;
                    *d = (*d * gamma - mean_d - x_hat * mean_d_hat) * inv_std;
                }
            }
            sums
        })
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f64; g.channels], vec![0.0f64; g.channels]);
    for (index, sums) in partials.iter().enumerate() {
        for (c, (dg, db)) in sums.iter().enumerate() {
            dgamma[g.first_channel(index) + c] += dg;
            dbeta[g.first_channel(index) + c] += db;
        }
    }
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (dx, to_f32(dgamma), to_f32(dbeta))
}

/// `sum(a (b - shift))`, in blocks as `sum` adds.
#[multiversion(targets = "simd")]
fn centred_dot(a: &[f32], b: &[f32], shift: f32) -> f64 {
    a.chunks(1024)
        .zip(b.chunks(1024))
        .map(|(a, b)| f64::from(lane_sum_of_pairs(a, b, |a, b| a * (b - shift))))
        .sum()
}
