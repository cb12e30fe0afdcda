//! SUNDAE (SPEC.md 3, 5, 6): corruption, unrolled denoising training, and the parallel sampler.

pub mod corrupt;
pub mod evaluate;
pub mod mask;
pub mod sample;
pub mod train;
pub mod unroll;

use crate::hourglass::Prior;
use burn::tensor::{Int, Tensor};

/// Anything that maps token grids `[B, H, W]` to logits `[B, H*W, V]`: the prior, or a test double.
pub trait Denoiser {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3>;
}

impl Denoiser for Prior {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        self.forward(tokens, None)
    }
}
