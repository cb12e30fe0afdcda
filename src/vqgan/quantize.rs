//! Taming's `VectorQuantizer2`: nearest codebook entry per spatial position, with the
//! straight-through estimator and the codebook/commitment loss for training.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::{Device, Int, Tensor};

#[derive(Module, Debug)]
pub struct VectorQuantizer {
    /// The codebook, `[n_embed, embed_dim]`.
    pub embedding: Embedding,
    /// Compare and return l2-normalised vectors (ViT-VQGAN).
    pub l2_normalize: bool,
}

/// What a training forward of the quantizer gives.
pub struct Quantized {
    /// Straight-through quantised latents `[B, e, h, w]`: values of the codes, gradients of z.
    pub latents: Tensor<4>,
    /// Legacy taming loss: |sg[z_q] - z|^2 + beta |z_q - sg[z]|^2 (means).
    pub loss: Tensor<1>,
    pub indices: Tensor<3, Int>,
}

fn unit_rows(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

impl VectorQuantizer {
    pub fn new(n_embed: usize, embed_dim: usize, l2_normalize: bool, device: &Device) -> Self {
        // Taming initialises the codebook U(-1/V, 1/V).
        let bound = 1.0 / n_embed as f64;
        let embedding = EmbeddingConfig::new(n_embed, embed_dim)
            .with_initializer(Initializer::Uniform {
                min: -bound,
                max: bound,
            })
            .init(device);
        Self {
            embedding,
            l2_normalize,
        }
    }

    /// The codebook as used for lookups: raw, or with unit rows when l2-normalised.
    pub fn codes(&self) -> Tensor<2> {
        let codes = self.embedding.weight.val();
        if self.l2_normalize {
            unit_rows(codes)
        } else {
            codes
        }
    }

    /// Flattens `[B, e, h, w]` into `[B*h*w, e]` (normalised when asked).
    fn flatten(&self, z: Tensor<4>) -> Tensor<2> {
        let [b, e, h, w] = z.dims();
        let flat = z.permute([0, 2, 3, 1]).reshape([b * h * w, e]);
        if self.l2_normalize {
            unit_rows(flat)
        } else {
            flat
        }
    }

    fn nearest(&self, flat: Tensor<2>, codes: Tensor<2>) -> Tensor<1, Int> {
        // |z|^2 is the same for every code of one position, so it cannot change the argmin.
        let code_norms = codes.clone().square().sum_dim(1).reshape([1, -1]);
        let distances = code_norms - flat.matmul(codes.transpose()).mul_scalar(2.0);
        distances.argmin(1).reshape([-1])
    }

    /// Indices `[B, h, w]` of the nearest code (squared Euclidean distance) for `z` `[B, e, h, w]`.
    pub fn indices(&self, z: Tensor<4>) -> Tensor<3, Int> {
        let [b, _, h, w] = z.dims();
        let flat = self.flatten(z.detach());
        self.nearest(flat, self.codes().detach()).reshape([b, h, w])
    }

    /// Codebook rows for `indices` `[B, h, w]`, channels first: `[B, e, h, w]`.
    pub fn lookup(&self, indices: Tensor<3, Int>) -> Tensor<4> {
        let [b, h, w] = indices.dims();
        let codes = self.codes();
        let e = codes.dims()[1];
        codes
            .select(0, indices.reshape([b * h * w]))
            .reshape([b, h, w, e])
            .permute([0, 3, 1, 2])
    }

    /// Training forward: quantise with the straight-through estimator and compute the VQ loss.
    pub fn forward_train(&self, z: Tensor<4>, beta: f64) -> Quantized {
        let [b, e, h, w] = z.dims();
        let flat = self.flatten(z);
        let codes = self.codes();
        let indices = self.nearest(flat.clone().detach(), codes.clone().detach());
        let chosen = codes.select(0, indices.clone());
        let commitment = (chosen.clone().detach() - flat.clone()).square().mean();
        let codebook = (chosen.clone() - flat.clone().detach()).square().mean();
        let straight_through = flat.clone() + (chosen - flat).detach();
        Quantized {
            latents: straight_through.reshape([b, h, w, e]).permute([0, 3, 1, 2]),
            loss: commitment + codebook.mul_scalar(beta),
            indices: indices.reshape([b, h, w]),
        }
    }

    pub fn n_embed(&self) -> usize {
        self.embedding.weight.dims()[0]
    }
}
