//! What both trainers' loops take (how long, how fast, how often), in one struct flattened into each
//! trainer's `[train]` table, with each trainer's own defaults.

use super::fit::Cadence;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// A trainer's defaults for the loop settings its configuration leaves out.
pub trait LoopDefaults {
    fn defaults() -> LoopSettings<Self>
    where
        Self: Sized;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct LoopSettings<D: LoopDefaults> {
    pub steps: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Linear warmup from 0 over this many steps (0 = none).
    pub warmup_steps: u64,
    /// Linear decay to 0 over the last this many of `steps` (0 = none): a cooldown that lowers the
    /// loss of a run trained at a constant rate; raise `steps` and this together to extend a run.
    pub decay_steps: u64,
    pub seed: u64,
    pub log_every: u64,
    pub checkpoint_every: u64,
    /// Checkpoints at multiples of this are kept; the others are replaced by the next.
    pub keep_every: u64,
    pub sample_every: u64,
    #[serde(skip)]
    pub defaults: PhantomData<D>,
}

impl<D: LoopDefaults> Default for LoopSettings<D> {
    fn default() -> Self {
        D::defaults()
    }
}

impl<D: LoopDefaults> LoopSettings<D> {
    /// The learning rate of the step after `done` steps: warmup, then constant, then the final decay.
    pub fn learning_rate_at(&self, done: u64) -> f64 {
        super::schedule::learning_rate(
            self.learning_rate,
            done,
            self.steps,
            self.warmup_steps,
            self.decay_steps,
        )
    }

    /// How often the loop logs, samples and checkpoints; `items_per_batch` for its throughput figure.
    pub fn cadence(&self, items_per_batch: usize) -> Cadence {
        Cadence {
            steps: self.steps,
            log_every: self.log_every,
            sample_every: self.sample_every,
            checkpoint_every: self.checkpoint_every,
            keep_every: self.keep_every,
            batch_items: items_per_batch,
        }
    }
}
