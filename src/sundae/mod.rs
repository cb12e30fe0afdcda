//! SUNDAE (SPEC.md 3, 5, 6): corruption, unrolled denoising training, and the parallel sampler.

pub mod corrupt;
pub mod evaluate;
pub mod mask;
pub mod sample;
pub mod train;
pub mod unroll;

use crate::hourglass::Prior;
use burn::tensor::{Bool, Int, Tensor};

/// Anything that maps token grids `[B, H, W]` to logits `[B, H*W, V]`: the prior, or a test double.
pub trait Denoiser {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3>;

    /// As `logits`, told which tokens are to be filled (`[B, H, W]`, true inside an inpainting mask
    /// or a training block). A denoiser without use for the flags ignores them.
    fn logits_filling(&self, tokens: Tensor<3, Int>, fill: Option<Tensor<3, Bool>>) -> Tensor<3> {
        let _ = fill;
        self.logits(tokens)
    }
}

impl Denoiser for Prior {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        self.forward(tokens, None)
    }

    fn logits_filling(&self, tokens: Tensor<3, Int>, fill: Option<Tensor<3, Bool>>) -> Tensor<3> {
        self.forward_filling(tokens, None, fill)
    }
}
