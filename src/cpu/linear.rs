//! A linear layer's forward and backward passes over `[rows, d_in]` inputs and burn's `[d_in,
//! d_out]` weights, each a parallel matrix product into memory allocated here: burn's CPU
//! product allocates its output zeroed and then copies it once more for alignment, on one thread,
//! and adds the bias in another pass, single-threaded.

use super::matrix::{Matrix, product};
use burn::nn::Linear;
use burn::tensor::Tensor;
use rayon::prelude::*;

/// Values per parallel task of the bias pass.
const CHUNK: usize = 1 << 14;

/// `linear.forward(x)` for `x` `[rows, d_in]`: the kernels below on the CPU device (with their
/// backward pass where gradients are tracked), burn's op elsewhere.
pub fn linear(linear: &Linear, x: Tensor<2>) -> Tensor<2> {
    if !super::on_cpu(&x) {
        return linear.forward(x);
    }
    super::extension::linear(linear, x)
}

/// `x W + b` `[rows, d_out]`.
pub fn forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    d_in: usize,
    d_out: usize,
) -> Vec<f32> {
    let rows = x.len() / d_in;
    let mut out = product(
        Matrix::dense(x, d_in),
        Matrix::dense(weight, d_out),
        rows,
        d_in,
        d_out,
    );
    if let Some(bias) = bias {
        out.par_chunks_mut(d_out * (CHUNK / d_out).max(1))
            .for_each(|rows| {
                for row in rows.chunks_mut(d_out) {
                    row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                }
            });
    }
    out
}

/// The gradient in the input: `grad W^T` `[rows, d_in]`.
pub fn input_grad(grad: &[f32], weight: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let rows = grad.len() / d_out;
    let weight_t = Matrix::dense(weight, d_out).transposed();
    product(Matrix::dense(grad, d_out), weight_t, rows, d_out, d_in)
}

/// The gradient in the weight: `x^T grad` `[d_in, d_out]`.
pub fn weight_grad(x: &[f32], grad: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let rows = x.len() / d_in;
    let x_t = Matrix::dense(x, d_in).transposed();
    product(x_t, Matrix::dense(grad, d_out), d_in, rows, d_out)
}

/// The gradient in the bias: the column sums of `grad` `[d_out]`, as a product with a row of ones.
pub fn bias_grad(grad: &[f32], d_out: usize) -> Vec<f32> {
    let rows = grad.len() / d_out;
    let ones = vec![1.0; rows];
    product(
        Matrix::dense(&ones, rows),
        Matrix::dense(grad, d_out),
        1,
        rows,
        d_out,
    )
}
