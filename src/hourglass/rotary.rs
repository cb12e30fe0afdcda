//! 2D rotary position embedding (SPEC.md 4.4 with DECISIONS.md Q2): applied to every head, on its
//! first 64 channels (or the whole head when narrower): half the rotary channels turn with the row,
//! half with the column. Positions are in units of the *training* grid of the stack
//! (linspace(-1, 1, side) there), so a larger canvas extends the coordinates instead of squeezing them.

use burn::tensor::{Device, Tensor, TensorData};
use std::f64::consts::PI;

/// Cosines and sines of the rotation angles of one grid, `[N, rot_dim]` each; the sines with the
/// sign of the first channel of every pair flipped (see `apply`).
pub struct Rotary2d {
    cos: Tensor<2>,
    signed_sin: Tensor<2>,
    rot_dim: usize,
    /// `[rot_dim, rot_dim]`: the permutation that swaps each pair (`pair_swap`).
    swap: Tensor<2>,
}

/// Rotary channels of a head: at most 64.
pub fn rotary_dim(dim_head: usize) -> usize {
    dim_head.min(64)
}

/// The reference "pixel" frequencies π·linspace(1, M/2, F) for a grid of side M.
pub fn frequencies(count: usize, side: usize) -> Vec<f64> {
    let top = (side as f64 / 2.0).max(1.0);
    (0..count)
        .map(|f| {
            let t = if count > 1 {
                f as f64 / (count - 1) as f64
            } else {
                0.0
            };
            PI * (1.0 + t * (top - 1.0))
        })
        .collect()
}

/// Position of row/column `index` on an axis whose training length is `train_len`.
fn position(index: usize, train_len: usize) -> f64 {
    if train_len <= 1 {
        0.0
    } else {
        -1.0 + 2.0 * index as f64 / (train_len - 1) as f64
    }
}

impl Rotary2d {
    /// Angles for a `height x width` grid whose stack was trained on `train_height x train_width`.
    pub fn new(
        dim_head: usize,
        height: usize,
        width: usize,
        train_height: usize,
        train_width: usize,
        device: &Device,
    ) -> Self {
        let rot_dim = rotary_dim(dim_head);
        let per_axis = rot_dim / 2;
        let freqs = frequencies(per_axis / 2, train_height.max(train_width));
        let mut cos = Vec::with_capacity(height * width * rot_dim);
        let mut sin = Vec::with_capacity(height * width * rot_dim);
        for row in 0..height {
            for col in 0..width {
                let (pr, pc) = (position(row, train_height), position(col, train_width));
                for p in [pr, pc] {
                    for &w in &freqs {
                        let angle = p * w;
                        // Each frequency covers one interleaved pair of channels.
                        cos.extend([angle.cos() as f32; 2]);
                        sin.extend([-angle.sin() as f32, angle.sin() as f32]);
                    }
                }
            }
        }
        let shape = [height * width, rot_dim];
        Self {
            cos: Tensor::from_data(TensorData::new(cos, shape), device),
            signed_sin: Tensor::from_data(TensorData::new(sin, shape), device),
            rot_dim,
            swap: Tensor::from_data(TensorData::new(pair_swap(rot_dim), [rot_dim; 2]), device),
        }
    }

    /// Rotates `x` `[B, heads, N, dim_head]`: pairs (2m, 2m+1) of the first `rot_dim` channels,
    /// (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin): `x cos + swap(x) signed_sin`. On the CPU
    /// one pass of `crate::cpu::rotate_pairs` (one more for the gradient); elsewhere burn's ops.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        if crate::cpu::on_cpu(&x) {
            let (cos, sin) = (self.cos.clone(), self.signed_sin.clone());
            return crate::cpu::rotate_pairs(x, cos, sin);
        }
        self.apply_with_ops(x)
    }

    /// `apply` by burn's tensor ops, for every device.
    pub fn apply_with_ops(&self, x: Tensor<4>) -> Tensor<4> {
        let r = self.rot_dim;
        let [b, h, n, d] = x.dims();
        let rotated = x.clone().narrow(3, 0, r);
        let cos = self.cos.clone().reshape([1, 1, n, r]);
        let signed_sin = self.signed_sin.clone().reshape([1, 1, n, r]);
        // Each pair swapped by a product with the 0/1 matrix that swaps them: exact, parallel, and
        // a product again in the backward pass (a flipped view is walked value by value).
        let swap = self.swap.clone().reshape([1, 1, r, r]).expand([b, h, r, r]);
        let swapped = rotated.clone().matmul(swap);
        let out = rotated * cos + swapped * signed_sin;
        if r == d {
            out
        } else {
            Tensor::cat(vec![out, x.narrow(3, r, d - r)], 3)
        }
    }
}

/// The `[r, r]` permutation matrix that swaps channels 2m and 2m + 1.
fn pair_swap(r: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; r * r];
    for i in 0..r {
        m[i * r + (i ^ 1)] = 1.0;
    }
    m
}
