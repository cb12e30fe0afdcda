//! A tiny deterministic random number generator keyed by (seed, stream, step), so that any step's
//! randomness can be recomputed after a resume without saving generator state.

/// Every random stream of the project, by purpose. Generators keyed by one seed and two different
/// streams never correlate; two uses of one stream under one seed would, silently. So a new use gets
/// its own entry here, never a number at the call site.
pub mod streams {
    /// The order of the data in each epoch (`train::BatchStream`).
    pub const SHUFFLE: u64 = 1;
    /// The VQ-GAN trainer's dead-code restarts.
    pub const CODE_RESTART: u64 = 2;
    /// The sampler: which tokens a step updates, and the draws of their new values.
    pub const SAMPLER_KEEP: u64 = 11;
    pub const SAMPLER_DRAWS: u64 = 12;
    /// The sampler: the labels each sample draws for the sets asked to be random.
    pub const SAMPLER_LABELS: u64 = 13;
    /// The prior trainer: corruption, the draws between unroll passes, label dropout.
    pub const CORRUPT: u64 = 21;
    pub const UNROLL: u64 = 22;
    pub const LABEL_DROP: u64 = 23;
    /// The start tokens of the sample grids a prior run writes.
    pub const RUN_SAMPLES: u64 = 31;
    /// `sundae sample`/`inpaint`: the random start, each batch's sampler seed, the noise under a mask.
    pub const SAMPLE_START: u64 = 40;
    pub const BATCH_SEED: u64 = 42;
    pub const INPAINT_START: u64 = 43;
    /// `sundae evaluate`, under its own fixed seed (`EVAL_SEED`): corruption and unroll draws, the
    /// fixed-rate corruption, the blocks.
    pub const EVAL_SEED: u64 = 0x5EED;
    pub const EVAL_CORRUPT: u64 = 1;
    pub const EVAL_UNROLL: u64 = 2;
    pub const EVAL_RATE: u64 = 3;
    pub const EVAL_BLOCKS: u64 = 4;
    /// The extra views of `sundae encode --zooms/--shifts`, under their own fixed seed, one stream
    /// per image.
    pub const AUGMENT_SEED: u64 = 0x200A;
}

/// SplitMix64: fast, statistically sound for shuffling and sampling, and trivially seekable.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator for one purpose (`stream`) at one point of training (`step`).
    pub fn keyed(seed: u64, stream: u64, step: u64) -> Self {
        let mut mixer = Self(seed ^ stream.wrapping_mul(0x9E3779B97F4A7C15));
        let first = mixer.next_u64();
        Self(first ^ step.wrapping_mul(0xD1B54A32D192ED03))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A uniformly random permutation of 0..n (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }
}
