//! Held-out figures of a prior: the training objective (corruption + unrolled loss) and token accuracy on
//! grids it never trained on, with fixed draws so two evaluations of one model agree.

use super::corrupt::corrupt;
use super::unroll::unrolled_loss;
use super::{Conditions, Denoiser, label_rows};
use crate::tokens::TokenGrids;
use crate::train::SplitMix;
use crate::train::rng::streams::{EVAL_BLOCKS, EVAL_CORRUPT, EVAL_RATE, EVAL_SEED, EVAL_UNROLL};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

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

/// Corrupts each grid at a rate from U(0, 1) (or, for a share `block_share` of them, in a random
/// rectangle) and scores `unroll_steps` passes, in batches of `batch_size`. `labels` (`[count, sets]`,
/// empty for none) are the grids' own labels, shown to the model.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<M: Denoiser>(
    model: &M,
    grids: &TokenGrids,
    labels: &[i64],
    vocab: usize,
    unroll_steps: usize,
    block_share: f64,
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
        let corruption = corrupt(
            &mut corrupted,
            [b, h, w],
            vocab,
            block_share,
            &mut SplitMix::keyed(EVAL_SEED, EVAL_CORRUPT, chunk as u64),
        );
        let to_tensor = |values: Vec<i64>| {
            Tensor::<3, Int>::from_data(TensorData::new(values, [b, h, w]), device)
        };
        let unrolled = unrolled_loss(
            model,
            to_tensor(clean),
            to_tensor(corrupted),
            Some(&corruption.fill),
            label_rows(labels, count, start, end, device),
            unroll_steps,
            &mut SplitMix::keyed(EVAL_SEED, EVAL_UNROLL, chunk as u64),
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

/// One denoising pass at a fixed corruption rate, split by what each position holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RateFigures {
    pub rate: f64,
    /// Share of untouched positions whose argmax is their (clean) token (None: there were none).
    pub clean_accuracy: Option<f64>,
    /// Share of replaced positions whose argmax is the clean token.
    pub corrupted_accuracy: Option<f64>,
    /// Mean cross-entropy of the clean token at replaced positions (ln V for a uniform guess).
    pub corrupted_loss: Option<f64>,
    /// Share of replaced positions whose argmax is the random token they now hold: how strongly the
    /// model prefers keeping its input over reading the context (the sampler's start, at rate 1).
    pub kept_noise: Option<f64>,
}

/// Replaces each token with probability `rate` by a uniformly random different one and scores one pass.
pub fn at_rate<M: Denoiser>(
    model: &M,
    grids: &TokenGrids,
    labels: &[i64],
    vocab: usize,
    rate: f64,
    batch_size: usize,
    device: &Device,
) -> RateFigures {
    let data = (grids, labels);
    one_pass(model, data, batch_size, device, rate, |chunk, clean, _| {
        let mut rng = SplitMix::keyed(EVAL_SEED, EVAL_RATE, chunk);
        let corrupted = clean
            .iter()
            .map(|&t| {
                if (rng.next_f32() as f64) < rate {
                    // A different token, uniformly: 1..vocab added to t, modulo vocab.
                    (t + 1 + rng.below(vocab.max(2) - 1) as i64) % vocab as i64
                } else {
                    t
                }
            })
            .collect();
        (corrupted, None)
    })
}

/// Replaces a random rectangle of every grid (as training's blocks) and scores one pass: how well the
/// prior fills a region from its context, the first step of an inpainting (the model is told the
/// blocks, as the sampler tells it the mask). Reported as rate 1, the rate inside the blocks.
pub fn in_blocks<M: Denoiser>(
    model: &M,
    grids: &TokenGrids,
    labels: &[i64],
    vocab: usize,
    batch_size: usize,
    device: &Device,
) -> RateFigures {
    one_pass(
        model,
        (grids, labels),
        batch_size,
        device,
        1.0,
        |chunk, clean, shape| {
            let mut corrupted = clean.to_vec();
            let corruption = corrupt(
                &mut corrupted,
                shape,
                vocab,
                1.0,
                &mut SplitMix::keyed(EVAL_SEED, EVAL_BLOCKS, chunk),
            );
            (corrupted, Some(corruption.fill))
        },
    )
}

/// Corrupts each batch with `corrupt(chunk index, clean tokens, shape)` (the tokens and, for blocks,
/// the fill flags) and scores one pass, split by whether a position still holds its clean token.
fn one_pass<M: Denoiser>(
    model: &M,
    (grids, labels): (&TokenGrids, &[i64]),
    batch_size: usize,
    device: &Device,
    rate: f64,
    mut corrupt: impl FnMut(u64, &[i64], [usize; 3]) -> (Vec<i64>, Option<Vec<bool>>),
) -> RateFigures {
    let [count, h, w] = grids.shape;
    let n = h * w;
    let batch_size = batch_size.max(1);
    let (mut clean_hits, mut clean_total) = (0usize, 0usize);
    let (mut corrupted_hits, mut kept, mut corrupted_total) = (0usize, 0usize, 0usize);
    let mut corrupted_nll = 0.0;
    for (chunk, start) in (0..count).step_by(batch_size).enumerate() {
        let end = (start + batch_size).min(count);
        let b = end - start;
        let clean = &grids.values[start * n..end * n];
        let (corrupted, fill) = corrupt(chunk as u64, clean, [b, h, w]);
        let input =
            Tensor::<3, Int>::from_data(TensorData::new(corrupted.clone(), [b, h, w]), device);
        let fill =
            fill.map(|f| Tensor::<3, Bool>::from_data(TensorData::new(f, [b, h, w]), device));
        let conditions = Conditions {
            fill,
            labels: label_rows(labels, count, start, end, device),
        };
        let logits = model.logits_conditioned(input, &conditions);
        let target =
            Tensor::<3, Int>::from_data(TensorData::new(clean.to_vec(), [b, n, 1]), device);
        let nll = log_softmax(logits.clone(), 2).gather(2, target).into_data();
        let argmax = logits.argmax(2).into_data();
        let positions = argmax.iter::<i64>().zip(nll.iter::<f64>());
        for (((pred, log_p), &truth), &held) in positions.zip(clean).zip(&corrupted) {
            if held == truth {
                clean_total += 1;
                clean_hits += (pred == truth) as usize;
            } else {
                corrupted_total += 1;
                corrupted_hits += (pred == truth) as usize;
                kept += (pred == held) as usize;
                corrupted_nll -= log_p;
            }
        }
    }
    let share = |hits: usize, total: usize| (total > 0).then(|| hits as f64 / total as f64);
    RateFigures {
        rate,
        clean_accuracy: share(clean_hits, clean_total),
        corrupted_accuracy: share(corrupted_hits, corrupted_total),
        corrupted_loss: (corrupted_total > 0).then(|| corrupted_nll / corrupted_total as f64),
        kept_noise: share(kept, corrupted_total),
    }
}
