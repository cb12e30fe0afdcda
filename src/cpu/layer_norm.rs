//! Layer normalisation over the last dimension, forward and backward, one parallel pass each:
//! burn composes it from seven element-wise and reducing steps (each one more under autodiff),
//! every one a single-threaded pass over memory.

use super::{lane_dot, lane_sum};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::Tensor;
use multiversion::multiversion;
use rayon::prelude::*;

/// Values per parallel task (whole rows).
const CHUNK: usize = 1 << 14;

/// `norm.forward(x)`: these kernels on the CPU device (with their backward pass where gradients
/// are tracked), burn's op elsewhere. The prior's norms are all built with `LayerNormConfig`'s
/// default epsilon (the module keeps its own private), which this uses.
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let Some(beta) = &norm.beta else {
        return norm.forward(x);
    };
    if !super::on_cpu(&x) {
        return norm.forward(x);
    }
    let epsilon = LayerNormConfig::new(1).epsilon as f32;
    super::extension::layer_norm(x, norm.gamma.val(), beta.val(), epsilon)
}

/// Rows per task for rows of `d` values.
fn rows_per_task(d: usize) -> usize {
    (CHUNK / d.max(1)).max(1)
}

/// The normalised rows `x_hat = (x - mean) / sqrt(var + eps)` (biased variance) and each row's
/// `1 / sqrt(var + eps)`.
pub fn normalise(x: &[f32], d: usize, epsilon: f32) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / d;
    let mut x_hat = vec![0.0f32; x.len()];
    let mut inv_std = vec![0.0f32; rows];
    let per = rows_per_task(d);
    x_hat
        .par_chunks_mut(per * d)
        .zip(inv_std.par_chunks_mut(per))
        .zip(x.par_chunks(per * d))
        .for_each(|((out, inv), x)| normalise_rows(x, out, inv, d, epsilon));
    (x_hat, inv_std)
}

/// `normalise` of the rows of one task.
#[multiversion(targets = "simd")]
fn normalise_rows(x: &[f32], out: &mut [f32], inv_std: &mut [f32], d: usize, epsilon: f32) {
    for ((out, inv), x) in out.chunks_mut(d).zip(inv_std).zip(x.chunks(d)) {
        let mean = lane_sum(x, |v| v) / d as f32;
        let var = lane_sum(x, |v| (v - mean) * (v - mean)) / d as f32;
        *inv = 1.0 / (var + epsilon).sqrt();
        for (o, v) in out.iter_mut().zip(x) {
            *o = (v - mean) * *inv;
        }
    }
}

/// `x_hat * gamma + beta`.
pub fn scale_shift(x_hat: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<f32> {
    let d = gamma.len();
    let mut out = vec![0.0f32; x_hat.len()];
    out.par_chunks_mut(rows_per_task(d) * d)
        .zip(x_hat.par_chunks(rows_per_task(d) * d))
        .for_each(|(out, x_hat)| scale_shift_rows(x_hat, out, gamma, beta));
    out
}

/// `scale_shift` of the rows of one task.
#[multiversion(targets = "simd")]
fn scale_shift_rows(x_hat: &[f32], out: &mut [f32], gamma: &[f32], beta: &[f32]) {
    for (out, x_hat) in out.chunks_mut(gamma.len()).zip(x_hat.chunks(gamma.len())) {
        for (((o, x), g), b) in out.iter_mut().zip(x_hat).zip(gamma).zip(beta) {
            *o = x * g + b;
        }
    }
}

/// The gradients in the input, gamma and beta from the output's `grad`:
/// dx = inv_std (dx_hat - mean(dx_hat) - x_hat mean(dx_hat x_hat)) with dx_hat = grad gamma,
/// dgamma = sum over rows of grad x_hat, dbeta = sum over rows of grad.
pub fn backward(
    grad: &[f32],
    x_hat: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let per = rows_per_task(d);
    let mut dx = vec![0.0f32; grad.len()];
    let (dgamma, dbeta) = dx
        .par_chunks_mut(per * d)
        .zip(grad.par_chunks(per * d))
        .zip(x_hat.par_chunks(per * d))
        .zip(inv_std.par_chunks(per))
        .map(|(((dx, grad), x_hat), inv_std)| backward_rows(dx, grad, x_hat, inv_std, gamma))
        .reduce(
            || (vec![0.0f32; d], vec![0.0f32; d]),
            |(mut ga, mut ba), (gb, bb)| {
                ga.iter_mut().zip(gb).for_each(|(a, b)| *a += b);
                ba.iter_mut().zip(bb).for_each(|(a, b)| *a += b);
                (ga, ba)
            },
        );
    (dx, dgamma, dbeta)
}

/// `backward` of the rows of one task, `dx` written; its rows' share of (dgamma, dbeta).
#[multiversion(targets = "simd")]
fn backward_rows(
    dx: &mut [f32],
    grad: &[f32],
    x_hat: &[f32],
    inv_std: &[f32],
    gamma: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let mut dgamma = vec![0.0f32; d];
    let mut dbeta = vec![0.0f32; d];
    for (((dx, g), xh), inv) in dx
        .chunks_mut(d)
        .zip(grad.chunks(d))
        .zip(x_hat.chunks(d))
        .zip(inv_std)
    {
        for i in 0..d {
            dgamma[i] += g[i] * xh[i];
            dbeta[i] += g[i];
        }
        // mean(dx_hat) and mean(dx_hat x_hat), dx_hat = g gamma, summed in lanes (vectorised).
        let mean_dxh = lane_dot(g, gamma) / d as f32;
        let (mut lanes, mut i) = ([0.0f32; 16], 0);
        while i + 16 <= d {
            for (j, lane) in lanes.iter_mut().enumerate() {
                *lane += g[i + j] * gamma[i + j] * xh[i + j];
            }
            i += 16;
        }
        let tail: f32 = (i..d).map(|i| g[i] * gamma[i] * xh[i]).sum();
        let mean_dxh_xh = (lanes.iter().sum::<f32>() + tail) / d as f32;
        for i in 0..d {
            dx[i] = inv * (g[i] * gamma[i] - mean_dxh - xh[i] * mean_dxh_xh);
        }
    }
    (dgamma, dbeta)
}
