//! SUNDAE (SPEC.md 3, 5, 6): corruption, unrolled denoising training, and the parallel sampler.

pub mod corrupt;
pub mod evaluate;
pub mod mask;
pub mod sample;
pub mod train;
pub mod unroll;

pub use crate::hourglass::Conditions;
use crate::hourglass::Prior;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Rows `start..end` of per-grid label indices (`[count, sets]`, row-major) as a tensor `[end -
/// start, sets]`; None when there are no labels.
pub fn label_rows(
    labels: &[i64],
    count: usize,
    start: usize,
    end: usize,
    device: &Device,
) -> Option<Tensor<2, Int>> {
    if labels.is_empty() {
        return None;
    }
    let sets = labels.len() / count.max(1);
    Some(Tensor::from_data(
        TensorData::new(
            labels[start * sets..end * sets].to_vec(),
            [end - start, sets],
        ),
        device,
    ))
}

/// Anything that maps token grids `[B, H, W]` to logits `[B, H*W, V]`: the prior, or a test double.
pub trait Denoiser {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3>;

    /// As `logits`, told which tokens are to be filled and which labels the grids carry (see
    /// `Conditions`). A denoiser without use for them ignores them.
    fn logits_conditioned(&self, tokens: Tensor<3, Int>, conditions: &Conditions) -> Tensor<3> {
        let _ = conditions;
        self.logits(tokens)
    }
}

impl Denoiser for Prior {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        self.forward(tokens, None)
    }

    fn logits_conditioned(&self, tokens: Tensor<3, Int>, conditions: &Conditions) -> Tensor<3> {
        self.forward_conditioned(tokens, None, conditions)
    }
}
