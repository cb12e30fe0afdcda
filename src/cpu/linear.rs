//! A linear layer's forward and backward passes over `[rows, d_in]` inputs and burn's `[d_in,
//! d_out]` weights, each a parallel matrix product into memory allocated here: burn's CPU
//! product allocates its output zeroed and then copies it once more for alignment, on one thread,
//! and adds the bias in another pass.

use super::matrix::{Matrix, multiply};
use burn::nn::Linear;
use burn::tensor::Tensor;

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
    let mut out = match bias {
        Some(bias) => bias.repeat(rows),
        None => vec![0.0; rows * d_out],
    };
    multiply(
        Matrix::dense(x, d_in),
        Matrix::dense(weight, d_out),
        &mut out,
        d_out,
        rows,
        d_in,
        d_out,
        true,
    );
    out
}

/// The gradient in the input: `grad W^T` `[rows, d_in]`.
pub fn input_grad(grad: &[f32], weight: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let rows = grad.len() / d_out;
    let mut out = vec![0.0; rows * d_in];
    let weight_t = Matrix::dense(weight, d_out).transposed();
    multiply(
        Matrix::dense(grad, d_out),
        weight_t,
        &mut out,
        d_in,
        rows,
        d_out,
        d_in,
        true,
    );
    out
}

/// The gradient in the weight: `x^T grad` `[d_in, d_out]`.
pub fn weight_grad(x: &[f32], grad: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let rows = x.len() / d_in;
    let mut out = vec![0.0; d_in * d_out];
    let x_t = Matrix::dense(x, d_in).transposed();
    multiply(
        x_t,
        Matrix::dense(grad, d_out),
        &mut out,
        d_out,
        d_in,
        rows,
        d_out,
        true,
    );
    out
}

/// The gradient in the bias: the column sums of `grad` `[d_out]`, as a product with a row of ones.
pub fn bias_grad(grad: &[f32], d_out: usize) -> Vec<f32> {
    let rows = grad.len() / d_out;
    let ones = vec![1.0; rows];
    let mut out = vec![0.0; d_out];
    multiply(
        Matrix::dense(&ones, rows),
        Matrix::dense(grad, d_out),
        &mut out,
        d_out,
        1,
        rows,
        d_out,
        true,
    );
    out
}
