//! Codebook health: usage and perplexity over the last N batches, and the restart of dead codes
//! from current encoder outputs (SoundStream's remedy for codebook collapse).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Code counts of the most recent batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodebookUsage {
    n_embed: usize,
    window: usize,
    batches: VecDeque<Vec<u32>>,
}

impl CodebookUsage {
    pub fn new(n_embed: usize, window: usize) -> Self {
        Self {
            n_embed,
            window: window.max(1),
            batches: VecDeque::new(),
        }
    }

    /// Records the codes chosen in one batch.
    pub fn record(&mut self, indices: &[i64]) {
        let mut counts = vec![0u32; self.n_embed];
        for &i in indices {
            counts[i as usize] += 1;
        }
        self.batches.push_back(counts);
        while self.batches.len() > self.window {
            self.batches.pop_front();
        }
    }

    fn totals(&self) -> Vec<u64> {
        let mut totals = vec![0u64; self.n_embed];
        for counts in &self.batches {
            for (t, &c) in totals.iter_mut().zip(counts) {
                *t += c as u64;
            }
        }
        totals
    }

    /// Fraction of codes chosen at least once in the window.
    pub fn fraction_used(&self) -> f64 {
        self.totals().iter().filter(|&&c| c > 0).count() as f64 / self.n_embed as f64
    }

    /// exp(entropy) of the code distribution in the window: the effective number of codes.
    pub fn perplexity(&self) -> f64 {
        let totals = self.totals();
        let sum: u64 = totals.iter().sum();
        if sum == 0 {
            return 0.0;
        }
        let entropy: f64 = totals
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / sum as f64;
                -p * p.ln()
            })
            .sum();
        entropy.exp()
    }

    /// Codes unused over a full window (none until the window has filled).
    pub fn dead_codes(&self) -> Vec<usize> {
        if self.batches.len() < self.window {
            return Vec::new();
        }
        self.totals()
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == 0)
            .map(|(i, _)| i)
            .collect()
    }

    /// Forgets the history, e.g. after restarting codes, so they get a full window to be used.
    pub fn clear(&mut self) {
        self.batches.clear();
    }
}

/// Replaces the rows `dead` of a row-major codebook `[n_embed, dim]` with rows of `candidates`
/// `[m, dim]` chosen by `pick` (an index below m for each dead code).
pub fn restart_codes(
    codebook: &mut [f32],
    dim: usize,
    dead: &[usize],
    candidates: &[f32],
    mut pick: impl FnMut(usize) -> usize,
) {
    let available = candidates.len() / dim;
    if available == 0 {
        return;
    }
    for &code in dead {
        let source = pick(available);
        codebook[code * dim..(code + 1) * dim]
            .copy_from_slice(&candidates[source * dim..(source + 1) * dim]);
    }
}
