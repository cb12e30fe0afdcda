//! Multi-head attention as one operation, forward and backward: for each (batch element, head)
//! in parallel, `softmax(scale * Q Kᵀ) V` by two matrix products and a softmax over one block that
//! stays in cache. burn composes it from a batched product (one single-threaded product per block,
//! after copying the heads out of their rows), a softmax and another batched product, and merges
//! the heads back into rows with one more copy. Here the heads are read where they lie (strided
//! views of `[B, N, heads * dim_head]` rows or of any `[B, heads, N, dim_head]` layout) and the
//! output is written straight into `[B, N, heads * dim_head]` rows.
//!
//! Backward, per block, from the weights `P` kept by the forward pass and the output's gradient
//! `dO`: `dV = Pᵀ dO`, `dS = softmax'(P, dO Vᵀ)`, `dQ = dS K`, `dK = dSᵀ Q`.

use super::matrix::{Matrix, gemm_into, overwrite};
use super::softmax::{backward_in_place, forward_in_place};
use burn::tensor::Tensor;
use rayon::prelude::*;

/// `softmax(scale * q kᵀ) v` for `q` `[B, heads, N, dim_head]` and `k`, `v` `[B, heads, M,
/// dim_head]` (f32 on the CPU device, with or without autodiff, any strides): `[B, N, heads *
/// dim_head]`, the heads merged back into rows.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, scale: f32) -> Tensor<3> {
    super::extension::attention(q, k, v, scale)
}

/// A `[B, heads, rows, cols]` view of a slice: block (b, h) is a `rows x cols` matrix.
#[derive(Clone, Copy)]
pub struct Heads<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    /// Element strides of the four dimensions.
    pub strides: [usize; 4],
    pub shape: [usize; 4],
}

impl<'a> Heads<'a> {
    /// `[B, N, heads * cols]` rows read as `[B, heads, N, cols]`.
    pub fn merged_rows(data: &'a [f32], shape: [usize; 4]) -> Self {
        let [_, h, n, c] = shape;
        Self {
            data,
            offset: 0,
            strides: [n * h * c, c, h * c, 1],
            shape,
        }
    }

    fn blocks(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    /// Block `i` (batch element `i / heads`, head `i % heads`).
    fn block(&self, i: usize) -> Matrix<'a> {
        let (b, h) = (i / self.shape[1], i % self.shape[1]);
        let start = self.offset + b * self.strides[0] + h * self.strides[1];
        Matrix {
            data: &self.data[start..],
            row_stride: self.strides[2],
            col_stride: self.strides[3],
        }
    }
}

/// A pointer that tasks share to write disjoint blocks of one output.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: every task writes only its own block (see `forward`).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer `offset` elements on (a method, so that closures capture the whole `Shared`).
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// The attention output `[B, N, heads * dim_head]` and the weights `P` `[B, heads, N, M]`.
pub fn forward(q: Heads, k: Heads, v: Heads, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let [batch, heads, n, dh] = q.shape;
    let m = k.shape[2];
    assert_eq!(k.shape, [batch, heads, m, dh]);
    assert_eq!(v.shape, k.shape);
    let inner = heads * dh;
    let mut weights = vec![0.0f32; q.blocks() * n * m];
    let mut out = vec![0.0f32; batch * n * inner];
    let shared = Shared(out.as_mut_ptr());
    weights
        .par_chunks_mut((n * m).max(1))
        .enumerate()
        .for_each(|(i, p)| {
            overwrite(q.block(i), k.block(i).transposed(), p, m, n, dh, m, false);
            forward_in_place(p, m, scale);
            let (b, h) = (i / heads, i % heads);
            let start = b * n * inner + h * dh;
            // SAFETY: block (b, h) of the output is rows b * N .. (b + 1) * N, columns h * dh ..
            // (h + 1) * dh of the `[B * N, inner]` matrix: inside `out` and no other task's.
            unsafe {
                gemm_into(
                    Matrix::dense(p, m),
                    v.block(i),
                    shared.at(start),
                    inner,
                    n,
                    m,
                    dh,
                    false,
                    false,
                )
            };
        });
    (out, weights)
}

/// The gradients in `q`, `k` and `v`, each dense `[B, heads, rows, dim_head]`, from the weights of
/// `forward` and the gradient of its output `grad` (`[B, N, heads * dim_head]` rows).
pub fn backward(
    q: Heads,
    k: Heads,
    v: Heads,
    weights: &[f32],
    grad: Heads,
    scale: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [_, _, n, dh] = q.shape;
    let m = k.shape[2];
    let blocks = q.blocks();
    let (mut dq, mut dk, mut dv) = (
        vec![0.0f32; blocks * n * dh],
        vec![0.0f32; blocks * m * dh],
        vec![0.0f32; blocks * m * dh],
    );
    dq.par_chunks_mut((n * dh).max(1))
        .zip(dk.par_chunks_mut((m * dh).max(1)))
        .zip(dv.par_chunks_mut((m * dh).max(1)))
        .enumerate()
        .for_each(|(i, ((dq, dk), dv))| {
            let p = &weights[i * n * m..(i + 1) * n * m];
            let d_out = grad.block(i);
            overwrite(
                Matrix::dense(p, m).transposed(),
                d_out,
                dv,
                dh,
                m,
                n,
                dh,
                false,
            );
            let mut ds = vec![0.0f32; n * m];
            overwrite(d_out, v.block(i).transposed(), &mut ds, m, n, dh, m, false);
            backward_in_place(&mut ds, p, m, scale);
            overwrite(Matrix::dense(&ds, m), k.block(i), dq, dh, n, m, dh, false);
            let ds_t = Matrix::dense(&ds, m).transposed();
            overwrite(ds_t, q.block(i), dk, dh, m, n, dh, false);
        });
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::softmax;
    use burn::tensor::{Distribution, Tensor};

    fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
        let device = crate::device::cpu().autodiff();
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device)
    }

    /// burn's own ops: the independent reference.
    fn composed(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, scale: f32) -> Tensor<3> {
        let [b, h, n, d] = q.dims();
        let weights = softmax(q.matmul(k.swap_dims(2, 3)).mul_scalar(scale), 3);
        weights.matmul(v).swap_dims(1, 2).reshape([b, n, h * d])
    }

    #[test]
    fn attention_and_its_gradients_equal_burns_ops() {
        // More keys than queries (attention resampling), queries a strided view of rows as the
        // projections leave them, keys and values dense.
        let (b, h, n, m, d) = (2, 3, 5, 7, 4);
        let q = random([b, n, h, d]).mul_scalar(2.0).swap_dims(1, 2);
        let (k, v) = (random([b, h, m, d]), random([b, h, m, d]));
        let w = random([b, n, h * d]);
        let scale = 0.6;
        let run = |ours: bool| {
            let (q, k, v) = (
                q.clone().require_grad(),
                k.clone().require_grad(),
                v.clone().require_grad(),
            );
            let out = if ours {
                super::attention(q.clone(), k.clone(), v.clone(), scale)
            } else {
                composed(q.clone(), k.clone(), v.clone(), scale)
            };
            let grads = (out.clone() * w.clone()).sum().backward();
            let grad = |x: &Tensor<4>| x.grad(&grads).expect("tracked");
            (out.inner(), [grad(&q), grad(&k), grad(&v)])
        };
        let ((ours, our_grads), (theirs, their_grads)) = (run(true), run(false));
        let diff: f32 = (ours.clone() - theirs).abs().max().into_scalar();
        assert!(diff < 1e-5, "output max |diff| {diff}");
        for (name, (a, b)) in ["q", "k", "v"]
            .iter()
            .zip(our_grads.into_iter().zip(their_grads))
        {
            assert_eq!(a.dims(), b.dims());
            let diff: f32 = (a - b).abs().max().into_scalar();
            assert!(diff < 1e-5, "gradient in {name}: max |diff| {diff}");
        }
        // Without autodiff, the same kernel.
        let plain = super::attention(q.inner(), k.inner(), v.inner(), scale);
        assert!((plain - ours).abs().max().into_scalar::<f32>() < 1e-6);
    }
}
