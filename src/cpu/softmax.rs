//! Softmax over the last dimension of `scale * x`, as attention takes it, forward and backward, one
//! parallel pass each (burn composes it from a maximum, a subtraction, an exponential, a sum and a
//! division, each single-threaded, and the scale is one more pass each way).

use super::exp::exp;
use super::{lane_dot, lane_max, lane_sum};
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use multiversion::multiversion;
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
    let mut out = x.to_vec();
    out.par_chunks_mut(rows_per_task(d) * d)
        .for_each(|rows| forward_in_place(rows, d, scale));
    out
}

/// The gradient in `x` from the output `y` and its gradient: `scale * y (grad - sum(grad y))`.
pub fn backward(y: &[f32], grad: &[f32], d: usize, scale: f32) -> Vec<f32> {
    let mut out = grad.to_vec();
    let per = rows_per_task(d) * d;
    out.par_chunks_mut(per)
        .zip(y.par_chunks(per))
        .for_each(|(grad, y)| backward_in_place(grad, y, d, scale));
    out
}

/// `forward` of the rows of `x` (`d` values each) in place, on the calling thread.
#[multiversion(targets = "simd")]
pub fn forward_in_place(x: &mut [f32], d: usize, scale: f32) {
    for row in x.chunks_mut(d) {
        let max = lane_max(row, |v| v * scale);
        for v in row.iter_mut() {
            *v = exp(*v * scale - max);
        }
        let inv = 1.0 / lane_sum(row, |v| v);
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// `backward` in place: each row of `grad` becomes the gradient in `x`, on the calling thread.
#[multiversion(targets = "simd")]
pub fn backward_in_place(grad: &mut [f32], y: &[f32], d: usize, scale: f32) {
    for (g, y) in grad.chunks_mut(d).zip(y.chunks(d)) {
        let dot = lane_dot(y, g);
        for (g, y) in g.iter_mut().zip(y) {
            *g = scale * y * (*g - dot);
        }
    }
}
