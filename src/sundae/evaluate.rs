//! Held-out figures of a prior: the training objective (corruption + unrolled loss) and token accuracy on
//! grids it never trained on, with fixed draws so two evaluations of one model agree.

use super::Denoiser;
use super::corrupt::corrupt;
use super::unroll::unrolled_loss;
use crate::tokens::TokenGrids;
use crate::train::SplitMix;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Averages over all grids of a set, weighted by batch size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evaluation {
    pub grids: usize,
    /// Cross-entropy averaged over unroll steps and tokens (the training loss).
    pub loss: f64,
    /// Cross-entropy of each unroll step.
    pub step_losses: Vec<f64>,
    /// Share of tokens whose argmax is the clean token, over all steps.
    pub accuracy: f64,
    /// Share of the vocabulary that occurs in the grids (the VQ-GAN's codebook usage on this set).
    pub codebook_usage: f64,
}

const EVAL_SEED: u64 = 0x5EED;

/// Corrupts each grid at a rate from U(0, 1) and scores `unroll_steps` passes, in batches of `batch_size`.
pub fn evaluate<M: Denoiser>(
    model: &M,
    grids: &TokenGrids,
    vocab: usize,
    unroll_steps: usize,
    batch_size: usize,
    device: &Device,
) -> Evaluation {
    let [count, h, w] = grids.shape;
    let n = h * w;
    let batch_size = batch_size.max(1);
    let mut loss = 0.0;
    let mut accuracy = 0.0;
    let mut step_losses = vec![0.0; unroll_steps];
    for (chunk, start) in (0..count).step_by(batch_size).enumerate() {
        let end = (start + batch_size).min(count);
        let b = end - start;
        let clean = grids.values[start * n..end * n].to_vec();
        let mut corrupted = clean.clone();
        corrupt(
            &mut corrupted,
            b,
            vocab,
            &mut SplitMix::keyed(EVAL_SEED, 1, chunk as u64),
        );
        let to_tensor = |values: Vec<i64>| {
            Tensor::<3, Int>::from_data(TensorData::new(values, [b, h, w]), device)
        };
        let unrolled = unrolled_loss(
            model,
            to_tensor(clean),
            to_tensor(corrupted),
            unroll_steps,
            &mut SplitMix::keyed(EVAL_SEED, 2, chunk as u64),
        );
        let weight = b as f64 / count as f64;
        loss += unrolled.loss.into_scalar::<f64>() * weight;
        accuracy += unrolled.accuracy * weight;
        for (sum, step) in step_losses.iter_mut().zip(&unrolled.step_losses) {
            *sum += step * weight;
        }
    }
    let mut used = vec![false; vocab];
    for &token in &grids.values {
        if let Some(slot) = used.get_mut(token as usize) {
            *slot = true;
        }
    }
    Evaluation {
        grids: count,
        loss,
        step_losses,
        accuracy,
        codebook_usage: used.iter().filter(|&&u| u).count() as f64 / vocab.max(1) as f64,
    }
}
