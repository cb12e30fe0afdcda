//! The backward pass of a stride-1 convolution (`super::conv`, of an enlarged input or not). The
//! input's gradient is itself a convolution: of the output's gradient by the kernel transposed and
//! flipped, padded k - 1 - p, then summed over the copies of each enlarged pixel. The weight's is,
//! per kernel tap, one product of the output's gradient (laid out on the padded input's wide rows,
//! as the forward pass computes it) with that tap's shifted view of the padded input, summed over
//! the batch. The bias's is the output's gradient summed per channel.

use super::conv::{Geometry, forward, padded_input};
use super::matrix::{Matrix, multiply};
use super::sum;
use rayon::prelude::*;

/// Whether the backward pass here covers a convolution: stride 1, and no side padded by a whole
/// kernel or more (the transposed convolution's padding k - 1 - p must not be negative).
pub fn covers(kernel: [usize; 2], stride: [usize; 2], padding: [(usize, usize); 2]) -> bool {
    stride == [1, 1]
        && padding[0].0.max(padding[0].1) < kernel[0]
        && padding[1].0.max(padding[1].1) < kernel[1]
}

/// Bottom and right padding of `g` (it stores top and left).
fn far_padding(g: &Geometry) -> (usize, usize) {
    (
        g.h_out + g.kh - 1 - g.h - g.top,
        g.w_out + g.kw - 1 - g.w - g.left,
    )
}

/// The input's gradient `[batch, C_in, H_in, W_in]` from the output's `grad` and the weight
/// `[C_out, C_in, kh, kw]`.
pub fn input_grad(grad: &[f32], batch: usize, weight: &[f32], g: &Geometry) -> Vec<f32> {
    let taps = g.kh * g.kw;
    let c_out = weight.len() / (g.c_in * taps);
    let mut flipped = vec![0.0f32; weight.len()];
    for (i, &w) in weight.iter().enumerate() {
        let (co, ci, tap) = (i / (g.c_in * taps), i / taps % g.c_in, i % taps);
        flipped[(ci * c_out + co) * taps + taps - 1 - tap] = w;
    }
    let (bottom, right) = far_padding(g);
    let padding = [
        (g.kh - 1 - g.top, g.kh - 1 - bottom),
        (g.kw - 1 - g.left, g.kw - 1 - right),
    ];
    let back = Geometry::new([c_out, g.h_out, g.w_out], 1, [g.kh, g.kw], [1, 1], padding);
    let enlarged = forward(grad, batch, &flipped, None, &back, None);
    let up = g.upsample;
    if up == 1 {
        return enlarged;
    }
    // Each input pixel was copied into up x up pixels: its gradient is their sum.
    let w_in = g.w / up;
    let mut out = vec![0.0f32; enlarged.len() / (up * up)];
    out.par_chunks_mut(g.h / up * w_in)
        .zip(enlarged.par_chunks(g.h * g.w))
        .for_each(|(dst, src)| {
            for (y, row) in src.chunks(g.w).enumerate() {
                let dst = &mut dst[y / up * w_in..][..w_in];
                for (d, pixels) in dst.iter_mut().zip(row.chunks(up)) {
                    *d += pixels.iter().sum::<f32>();
                }
            }
        });
    out
}

/// The weight's gradient `[C_out, C_in, kh, kw]` from the input `[batch, C_in, H_in, W_in]` and
/// the output's `grad` `[batch, C_out, H_out, W_out]`.
pub fn weight_grad(
    input: &[f32],
    grad: &[f32],
    batch: usize,
    c_out: usize,
    g: &Geometry,
) -> Vec<f32> {
    let (hp, wp) = g.padded_size();
    let taps = g.kh * g.kw;
    let plane_out = g.h_out * g.w_out;
    let wide_plane = g.h_out * wp;
    let image_in = input.len() / batch;
    let mut per_tap = vec![vec![0.0f32; c_out * g.c_in]; taps];
    for (x, dy) in input.chunks(image_in).zip(grad.chunks(c_out * plane_out)) {
        let padded = padded_input(x, g, None, true);
        // Zero in the wasted columns, so that the taps' reads past each row's end add nothing.
        let mut wide = vec![0.0f32; c_out * wide_plane];
        wide.par_chunks_mut(wide_plane)
            .zip(dy.par_chunks(plane_out))
            .for_each(|(dst, src)| {
                for (d, s) in dst.chunks_mut(wp).zip(src.chunks(g.w_out)) {
                    d[..g.w_out].copy_from_slice(s);
                }
            });
        let tap_product = |(tap, acc): (usize, &mut Vec<f32>), parallel: bool| {
            let (ky, kx) = (tap / g.kw, tap % g.kw);
            // [wide pixels, C_in]: pixel p of channel c at c * Hp * Wp + p, from the tap's offset.
            let shifted = Matrix {
                data: &padded[ky * wp + kx..],
                row_stride: 1,
                col_stride: hp * wp,
            };
            let dy = Matrix::dense(&wide, wide_plane);
            multiply(
                dy, shifted, acc, g.c_in, c_out, wide_plane, g.c_in, parallel,
            );
        };
        if taps >= rayon::current_num_threads() {
            let tasks = per_tap.par_iter_mut().enumerate();
            tasks.for_each(|task| tap_product(task, false));
        } else {
            per_tap
                .iter_mut()
                .enumerate()
                .for_each(|task| tap_product(task, true));
        }
    }
    let mut dw = vec![0.0f32; c_out * g.c_in * taps];
    for (tap, acc) in per_tap.iter().enumerate() {
        for (i, &v) in acc.iter().enumerate() {
            dw[i * taps + tap] = v;
        }
    }
    dw
}

/// The bias's gradient `[C_out]`: the output's gradient `[batch, C_out, H_out, W_out]` summed
/// over the batch and the pixels, the channels in parallel.
pub fn bias_grad(grad: &[f32], c_out: usize, g: &Geometry) -> Vec<f32> {
    let plane = g.h_out * g.w_out;
    let batch = grad.len() / (c_out * plane);
    (0..c_out)
        .into_par_iter()
        .map(|c| {
            let planes = (0..batch).map(|b| &grad[(b * c_out + c) * plane..][..plane]);
            planes.map(|p| sum(p, |v| v)).sum::<f64>() as f32
        })
        .collect()
}
