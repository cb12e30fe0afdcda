//! The SUNDAE corruption q(z'|z) (SPEC.md 3.1): per sequence a rate α ~ U(0, 1); each token is replaced
//! by a uniformly random token with probability α (which may draw the original token again).

use crate::train::SplitMix;

/// Corrupts `tokens` (`batch` sequences of equal length) in place and returns each sequence's rate.
pub fn corrupt(tokens: &mut [i64], batch: usize, vocab: usize, rng: &mut SplitMix) -> Vec<f32> {
    let len = tokens.len() / batch.max(1);
    let mut rates = Vec::with_capacity(batch);
    for sequence in tokens.chunks_mut(len.max(1)) {
        let rate = rng.next_f32();
        rates.push(rate);
        for token in sequence {
            if rng.next_f32() < rate {
                *token = rng.below(vocab) as i64;
            }
        }
    }
    rates
}
