//! The learning-rate schedule both trainers share: linear warmup, constant, then a linear cooldown.

/// The rate of step `step + 1` of `steps` (so `step` steps are done): `base` times a warmup factor
/// rising linearly over the first `warmup` steps and a decay factor falling linearly to zero over the
/// last `decay` steps (0 turns either off).
pub fn learning_rate(base: f64, step: u64, steps: u64, warmup: u64, decay: u64) -> f64 {
    let warmup = if warmup == 0 {
        1.0
    } else {
        ((step + 1) as f64 / warmup as f64).min(1.0)
    };
    let decay = if decay == 0 {
        1.0
    } else {
        (steps.saturating_sub(step) as f64 / decay as f64).min(1.0)
    };
    base * warmup * decay
}
