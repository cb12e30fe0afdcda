//! The SUNDAE corruption q(z'|z) (SPEC.md 3.1): per sequence a rate α ~ U(0, 1); each token is replaced
//! by a uniformly random token with probability α (which may draw the original token again).
//!
//! Our addition, not in the reference and off by default (`[train] block_share`): a share of the grids
//! may instead get a block, a random rectangle whose every token is replaced, as an inpainting mask
//! leaves a region to the sampler. Scattered corruption almost always leaves clean neighbours next to
//! a replaced token; a block teaches the prior to fill a whole region from the context around it.

use crate::train::SplitMix;

pub struct Corruption {
    /// Each grid's share of replaced positions.
    pub rates: Vec<f32>,
    /// One flag per position: true inside a grid's block, the region left to fill; all false in
    /// scattered grids.
    pub fill: Vec<bool>,
}

/// Corrupts `tokens` (`[batch, height, width]` grids, row-major) in place. Each grid gets a block with
/// probability `block_share`, else scattered corruption. With `block_share` 0 the draws are those of
/// scattered corruption alone.
pub fn corrupt(
    tokens: &mut [i64],
    shape: [usize; 3],
    vocab: usize,
    block_share: f64,
    rng: &mut SplitMix,
) -> Corruption {
    let [_, height, width] = shape;
    let len = (height * width).max(1);
    let mut rates = Vec::with_capacity(shape[0]);
    let mut fill = vec![false; tokens.len()];
    for (grid, fill) in tokens.chunks_mut(len).zip(fill.chunks_mut(len)) {
        let block = block_share > 0.0 && (rng.next_f32() as f64) < block_share;
        rates.push(if block {
            corrupt_block(grid, fill, [height, width], vocab, rng)
        } else {
            corrupt_scattered(grid, vocab, rng)
        });
    }
    Corruption { rates, fill }
}

/// Replaces each token with probability α ~ U(0, 1) and returns α.
fn corrupt_scattered(sequence: &mut [i64], vocab: usize, rng: &mut SplitMix) -> f32 {
    let rate = rng.next_f32();
    for token in sequence {
        if rng.next_f32() < rate {
            *token = rng.below(vocab) as i64;
        }
    }
    rate
}

/// Replaces every token of a rectangle (height and width each uniform from 1 to the grid's, placed
/// uniformly), flags it in `fill`, and returns the share of the grid it covers.
fn corrupt_block(
    grid: &mut [i64],
    fill: &mut [bool],
    [height, width]: [usize; 2],
    vocab: usize,
    rng: &mut SplitMix,
) -> f32 {
    let rows = 1 + rng.below(height);
    let cols = 1 + rng.below(width);
    let top = rng.below(height - rows + 1);
    let left = rng.below(width - cols + 1);
    for row in top..top + rows {
        let span = row * width + left..row * width + left + cols;
        fill[span.clone()].fill(true);
        for token in &mut grid[span] {
            *token = rng.below(vocab) as i64;
        }
    }
    (rows * cols) as f32 / (height * width) as f32
}
