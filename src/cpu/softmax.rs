//! Softmax over the last dimension of `scale * x`, as attention takes it, forward and backward, one
//! parallel pass each (burn composes it from a maximum, a subtraction, an exponential, a sum and a
//! division, each single-threaded, and the scale is one more pass each way).

use super::exp::exp;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use rayon::prelude::*;

/// Values per parallel task (whole rows).
const CHUNK: usize = 1 << 14;

/// `softmax(x * scale, D - 1)`: these kernels on the CPU device (with their backward pass where
/// gradients are tracked), burn's ops elsewhere.
pub fn scaled_softmax<const D: usize>(x: Tensor<D>, scale: f32) -> Tensor<D> {
    if !super::on_cpu(&x) {
        return softmax(x.mul_scalar(scale), D - 1);
    }
    super::extension::scaled_softmax(x, scale)
}

fn rows_per_task(d: usize) -> usize {
    (CHUNK / d.max(1)).max(1)
}

/// Each row of `d` values: `exp(s x - max) / sum`.
pub fn forward(x: &[f32], d: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    let per = rows_per_task(d) * d;
    out.par_chunks_mut(per)
        .zip(x.par_chunks(per))
        .for_each(|(out, x)| {
            for (out, x) in out.chunks_mut(d).zip(x.chunks(d)) {
                let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale));
                let mut sum = 0.0f32;
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = exp(v * scale - max);
                    sum += *o;
                }
                let inv = 1.0 / sum;
                out.iter_mut().for_each(|o| *o *= inv);
            }
        });
    out
}

/// The gradient in `x` from the output `y` and its gradient: `scale * y (grad - sum(grad y))`.
pub fn backward(y: &[f32], grad: &[f32], d: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; y.len()];
    let per = rows_per_task(d) * d;
    out.par_chunks_mut(per)
        .zip(y.par_chunks(per).zip(grad.par_chunks(per)))
        .for_each(|(out, (y, grad))| {
            for ((out, y), g) in out.chunks_mut(d).zip(y.chunks(d)).zip(grad.chunks(d)) {
                let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                for ((o, y), g) in out.iter_mut().zip(y).zip(g) {
                    *o = scale * y * (g - dot);
                }
            }
        });
    out
}
