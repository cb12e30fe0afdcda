//! The SUNDAE sampler (SPEC.md 5, DECISIONS.md Q4-Q5): all tokens denoised in parallel for a fixed
//! number of steps, temperature and update proportion annealed linearly, a random subset updated per
//! step, a sample frozen once a step changes none of its tokens, and an early exit when all are frozen.
//! Inpainting passes a keep-mask: kept tokens never change, and the model is told the rest are to fill.
//! Unlike the reference, a token still holding its random start is never kept as it is
//! (`exclude_noise`); `--keep-start-noise` restores the reference.

use super::unroll::{sample_tokens, uniforms};
use super::{Conditions, Denoiser};
use crate::tokens::TokenGrids;
use crate::train::SplitMix;
use crate::train::rng::streams;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

/// A value annealed linearly from `start` to `end` over the steps (inclusive), or constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub start: f64,
    pub end: f64,
}

impl Schedule {
    pub fn constant(value: f64) -> Self {
        Self {
            start: value,
            end: value,
        }
    }

    /// Parses `A` or `A:B`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |s: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("'{text}' is not a finite number or A:B"))
        };
        match text.split_once(':') {
            Some((a, b)) => Ok(Self {
                start: number(a)?,
                end: number(b)?,
            }),
            None => Ok(Self::constant(number(text)?)),
        }
    }

    /// linspace(start, end, steps)[t].
    pub fn at(&self, t: usize, steps: usize) -> f64 {
        if steps <= 1 {
            self.start
        } else {
            self.start + (self.end - self.start) * t as f64 / (steps - 1) as f64
        }
    }
}

#[derive(Debug, Clone)]
pub struct SampleSettings {
    pub steps: usize,
    pub temperature: Schedule,
    pub proportion: Schedule,
    /// No sample freezes before this step.
    pub min_steps: usize,
    pub early_stop: bool,
    pub seed: u64,
    /// Never propose a token's random start value while it still holds it (see `exclude_noise`).
    pub exclude_noise: bool,
    /// Draw from the `top_k` most likely codes only (0 = all).
    pub top_k: usize,
    /// The label every sample is drawn with, one index per label set of the prior (a set's null
    /// index leaves it out); empty for a prior without label sets, or to leave all out.
    pub labels: Vec<i64>,
    /// Label sets (indices into `labels`) whose value each sample draws for itself, uniformly from the
    /// set's real values, keyed by the seed and the sample's index: a sheet spread across emoji and
    /// styles, as the training data is, where one fixed label or none gives one kind of image.
    pub random_sets: Vec<usize>,
    /// Each set's null index, as many as `labels`: the unconditional pass of guidance (and the size
    /// of the set, from which `random_sets` draw).
    pub null_labels: Vec<i64>,
    /// Classifier-free guidance weight W: logits = cond + W (cond - uncond), where uncond sees every
    /// label left out (0 = the plain conditional model).
    pub guidance: f64,
}

/// The built-in sampler defaults (the reference's FFHQ1024 settings), used where neither a flag nor a
/// bundle's `sampling.toml` says otherwise.
pub const DEFAULT_STEPS: usize = 100;
pub const DEFAULT_TEMPERATURE: Schedule = Schedule {
    start: 1.0,
    end: 0.7,
};
pub const DEFAULT_PROPORTION: Schedule = Schedule {
    start: 0.5,
    end: 0.5,
};
pub const DEFAULT_TOP_K: usize = 0;
pub const DEFAULT_MIN_STEPS: usize = 10;

impl Default for SampleSettings {
    fn default() -> Self {
        Self {
            steps: DEFAULT_STEPS,
            temperature: DEFAULT_TEMPERATURE,
            proportion: DEFAULT_PROPORTION,
            min_steps: DEFAULT_MIN_STEPS,
            early_stop: true,
            seed: 0,
            exclude_noise: true,
            top_k: DEFAULT_TOP_K,
            labels: Vec::new(),
            random_sets: Vec::new(),
            null_labels: Vec::new(),
            guidance: 0.0,
        }
    }
}

impl SampleSettings {
    /// Whether any label is asked for (else the sampler is unconditional and guidance moot).
    fn conditional(&self) -> bool {
        !self.random_sets.is_empty() || (!self.labels.is_empty() && self.labels != self.null_labels)
    }

    /// The label indices sample `sample` is drawn with: `labels` (every set null where empty), with
    /// each of `random_sets` drawn for this sample.
    pub fn sample_labels(&self, sample: usize) -> Vec<i64> {
        let mut row = if self.labels.is_empty() {
            self.null_labels.clone()
        } else {
            self.labels.clone()
        };
        for &set in &self.random_sets {
            let mut rng = SplitMix::keyed(
                self.seed ^ sample as u64,
                streams::SAMPLER_LABELS,
                set as u64,
            );
            row[set] = (rng.next_u64() % self.null_labels[set] as u64) as i64;
        }
        row
    }
}

/// The model's logits for `input` `[A, H, W]`, whose rows are the samples `samples` (indices within
/// the batch, for their labels), under the settings' labels: one pass, or with guidance one pass over
/// the conditional and unconditional copies side by side in one batch, combined as
/// cond + W (cond - uncond).
pub fn guided_logits<M: Denoiser>(
    model: &M,
    input: Tensor<3, Int>,
    fill: Option<Tensor<3, Bool>>,
    settings: &SampleSettings,
    samples: &[usize],
) -> Tensor<3> {
    let [a, _, _] = input.dims();
    assert_eq!(a, samples.len(), "one sample index per input row");
    let device = input.device();
    let sets = settings.null_labels.len();
    let tensor =
        |values: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(values, [a, sets]), &device);
    if !settings.conditional() {
        return model.logits_conditioned(input, &Conditions { fill, labels: None });
    }
    let cond = tensor(
        samples
            .iter()
            .flat_map(|&i| settings.sample_labels(i))
            .collect(),
    );
    if settings.guidance == 0.0 {
        let labels = Some(cond);
        return model.logits_conditioned(input, &Conditions { fill, labels });
    }
    let uncond = tensor((0..a).flat_map(|_| settings.null_labels.clone()).collect());
    let both = Conditions {
        fill: fill.map(|f| Tensor::cat(vec![f.clone(), f], 0)),
        labels: Some(Tensor::cat(vec![cond, uncond], 0)),
    };
    let logits = model.logits_conditioned(Tensor::cat(vec![input.clone(), input], 0), &both);
    let cond = logits.clone().narrow(0, 0, a);
    let uncond = logits.narrow(0, a, a);
    cond.clone() + (cond - uncond).mul_scalar(settings.guidance)
}

/// What a step callback says: `()` (carry on), or `ControlFlow::Break(())` to stop the sampler
/// there (a cancelled request).
pub trait StepReply {
    fn stops(self) -> bool;
}

impl StepReply for () {
    fn stops(self) -> bool {
        false
    }
}

impl StepReply for std::ops::ControlFlow<()> {
    fn stops(self) -> bool {
        self.is_break()
    }
}

pub struct Sampled {
    pub grids: TokenGrids,
    /// Steps run before every sample froze (or all of them).
    pub steps_taken: usize,
    /// The step callback asked to stop before the end.
    pub stopped: bool,
    /// The first step (0-based) whose logits held NaN or infinity, when one did: the sampler stops
    /// there, since every draw after it is noise (damaged weights, an overflow in low precision).
    pub non_finite_at: Option<usize>,
}

/// Denoises `start` for `settings.steps` steps. `keep` (one flag per token, true = known) marks tokens
/// that must not change. `on_step` sees the grids after each step (for progress, figure strips and
/// live views) and may stop the sampler there (see `StepReply`).
pub fn sample<M: Denoiser, R: StepReply>(
    model: &M,
    start: TokenGrids,
    keep: Option<&[bool]>,
    settings: &SampleSettings,
    device: &Device,
    mut on_step: impl FnMut(usize, &TokenGrids) -> R,
) -> Sampled {
    let n = start.per_grid();
    let mut x = start;
    let mut frozen = vec![false; x.shape[0]];
    // Tokens that still hold their uniformly random start (never updated, not known).
    let mut noise: Vec<bool> = (0..x.shape[0] * n)
        .map(|i| !keep.is_some_and(|k| k[i]))
        .collect();
    let min_steps = if settings.early_stop {
        settings.min_steps
    } else {
        settings.steps
    };
    let mut steps_taken = 0;
    for t in 0..settings.steps {
        steps_taken = t + 1;
        // Indices of samples still changing: the model only sees those (Q4: masks follow them).
        let active: Vec<usize> = (0..x.shape[0]).filter(|&i| !frozen[i]).collect();
        let rows = active_rows(&x.values, &active, n);
        let input = Tensor::<3, Int>::from_data(
            TensorData::new(rows.clone(), [active.len(), x.shape[1], x.shape[2]]),
            device,
        );
        let temperature = settings.temperature.at(t, settings.steps);
        // Draws are keyed by sample, so a sample's chain does not depend on which others froze.
        let draws: Vec<f32> = active
            .iter()
            .flat_map(|&i| {
                uniforms(
                    &mut SplitMix::keyed(
                        settings.seed ^ i as u64,
                        streams::SAMPLER_DRAWS,
                        t as u64,
                    ),
                    n,
                )
            })
            .collect();
        // The region to fill: everything not kept (the model ignores this unless it learned a fill
        // embedding). Plain sampling flags nothing, as training flags nothing in scattered grids.
        let fill = keep.map(|keep| {
            let flags = active_rows(keep, &active, n).iter().map(|&k| !k).collect();
            Tensor::<3, Bool>::from_data(
                TensorData::new(flags, [active.len(), x.shape[1], x.shape[2]]),
                device,
            )
        });
        let mut logits = guided_logits(model, input, fill, settings, &active);
        // One reduction per step: a model that turns non-finite would otherwise write noise silently.
        if !logits.clone().is_finite().all().into_scalar::<bool>() {
            return Sampled {
                grids: x,
                steps_taken: t,
                stopped: false,
                non_finite_at: Some(t),
            };
        }
        if settings.exclude_noise {
            logits = exclude_noise(logits, &rows, &active_rows(&noise, &active, n));
        }
        if settings.top_k > 0 {
            logits = keep_top_k(logits, settings.top_k);
        }
        let proposal: Vec<i64> = sample_tokens(logits, temperature, &draws)
            .into_data()
            .iter::<i64>()
            .collect();
        let proportion = settings.proportion.at(t, settings.steps);
        let mut all_frozen = true;
        for (slot, &sample_index) in active.iter().enumerate() {
            let mut rng = SplitMix::keyed(
                settings.seed ^ sample_index as u64,
                streams::SAMPLER_KEEP,
                t as u64,
            );
            let old = &rows[slot * n..(slot + 1) * n];
            let mut new = proposal[slot * n..(slot + 1) * n].to_vec();
            for (i, token) in new.iter_mut().enumerate() {
                // Each token is updated with probability p_t; known tokens never are.
                let known = keep.is_some_and(|k| k[sample_index * n + i]);
                if known || rng.next_f32() as f64 >= proportion {
                    *token = old[i];
                } else {
                    noise[sample_index * n + i] = false;
                }
            }
            if t >= min_steps && new == old {
                frozen[sample_index] = true;
            } else {
                all_frozen = false;
            }
            x.values[sample_index * n..(sample_index + 1) * n].copy_from_slice(&new);
        }
        if on_step(t, &x).stops() {
            return Sampled {
                grids: x,
                steps_taken,
                stopped: true,
                non_finite_at: None,
            };
        }
        if all_frozen {
            break;
        }
    }
    Sampled {
        grids: x,
        steps_taken,
        stopped: false,
        non_finite_at: None,
    }
}

/// The `n` values of each of the `active` samples, in order: what the model sees of per-token state.
fn active_rows<T: Copy>(values: &[T], active: &[usize], n: usize) -> Vec<T> {
    active
        .iter()
        .flat_map(|&i| values[i * n..(i + 1) * n].iter().copied())
        .collect()
}

/// Sets every logit below a position's `k`-th largest to -inf (ties with it stay), so a draw comes from
/// the `k` most likely codes; `k` at or above the vocabulary changes nothing.
fn keep_top_k(logits: Tensor<3>, k: usize) -> Tensor<3> {
    let [b, n, v] = logits.dims();
    if k >= v {
        return logits;
    }
    let kth = logits.clone().topk(k, 2).narrow(2, k - 1, 1);
    let below = logits.clone().lower(kth.expand([b, n, v]));
    logits.mask_fill(below, f32::NEG_INFINITY)
}

/// A token that still holds its uniformly random start carries no evidence about the clean token,
/// but the model cannot know that: trained on grids where any token may be clean, it puts a bump of
/// probability on keeping every input token, and under noise that bump often outweighs the spread of
/// plausible replacements, so a low temperature keeps the noise. Since the sampler knows which tokens
/// are still noise, it sets their current value's logit to -inf: the rest renormalise to the model's
/// belief about the token given everything else. `tokens` are the inputs `[B*N]`, `noise` flags them.
fn exclude_noise(logits: Tensor<3>, tokens: &[i64], noise: &[bool]) -> Tensor<3> {
    let [b, n, v] = logits.dims();
    let device = logits.device();
    // The current token where it is noise; `v`, which matches no category, elsewhere.
    let current: Vec<i64> = tokens
        .iter()
        .zip(noise)
        .map(|(&t, &is_noise)| if is_noise { t } else { v as i64 })
        .collect();
    let current = Tensor::<3, Int>::from_data(TensorData::new(current, [b, n, 1]), &device);
    let categories = Tensor::<1, Int>::arange(0..v as i64, &device).reshape([1, 1, v]);
    let hit = current
        .expand([b, n, v])
        .equal(categories.expand([b, n, v]));
    logits.mask_fill(hit, f32::NEG_INFINITY)
}
