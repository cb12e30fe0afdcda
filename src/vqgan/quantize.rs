//! Taming's `VectorQuantizer2` at inference: nearest codebook entry per spatial position.

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig};
use burn::tensor::{Device, Int, Tensor};

#[derive(Module, Debug)]
pub struct VectorQuantizer {
    /// The codebook, `[n_embed, embed_dim]`.
    pub embedding: Embedding,
}

impl VectorQuantizer {
    pub fn new(n_embed: usize, embed_dim: usize, device: &Device) -> Self {
        let mut embedding = EmbeddingConfig::new(n_embed, embed_dim).init(device);
        // Taming initialises the codebook U(-1/V, 1/V).
        let bound = 1.0 / n_embed as f64;
        embedding.weight = embedding.weight.map(|w| {
            Tensor::random(
                w.shape(),
                burn::tensor::Distribution::Uniform(-bound, bound),
                &w.device(),
            )
        });
        Self { embedding }
    }

    /// Indices `[B, h, w]` of the nearest code (squared Euclidean distance) for `z` `[B, e, h, w]`.
    pub fn indices(&self, z: Tensor<4>) -> Tensor<3, Int> {
        let [b, e, h, w] = z.dims();
        let flat = z.permute([0, 2, 3, 1]).reshape([b * h * w, e]);
        let codes = self.embedding.weight.val();
        // |z|^2 is the same for every code of one position, so it cannot change the argmin.
        let code_norms = codes.clone().square().sum_dim(1).reshape([1, -1]);
        let distances = code_norms - flat.matmul(codes.transpose()).mul_scalar(2.0);
        distances.argmin(1).reshape([b, h, w])
    }

    /// Codebook rows for `indices` `[B, h, w]`, channels first: `[B, e, h, w]`.
    pub fn lookup(&self, indices: Tensor<3, Int>) -> Tensor<4> {
        let [b, h, w] = indices.dims();
        let codes = self.embedding.weight.val();
        let e = codes.dims()[1];
        codes
            .select(0, indices.reshape([b * h * w]))
            .reshape([b, h, w, e])
            .permute([0, 3, 1, 2])
    }

    pub fn n_embed(&self) -> usize {
        self.embedding.weight.dims()[0]
    }
}
