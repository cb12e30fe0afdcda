//! The unrolled denoising loss (SPEC.md 3.2-3.3): T passes of the model, each from a sample of the
//! previous pass's output (drawn without gradient), all scored against the clean tokens.

use super::{Conditions, Denoiser};
use crate::train::SplitMix;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, FloatDType, Int, Tensor, TensorData};

pub struct Unrolled {
    /// Mean cross-entropy over unroll steps and tokens (the training loss).
    pub loss: Tensor<1>,
    /// Cross-entropy of each unroll step.
    pub step_losses: Vec<f64>,
    /// Share of tokens whose argmax is the clean token, over all steps.
    pub accuracy: f64,
}

/// Draws one token per position from `softmax(logits / temperature)` `[B, N, V]` by inverting the
/// cumulative distribution at `uniforms` (one number in [0, 1) per position). The numbers come from
/// the caller's seeded generator, so draws repeat exactly whatever else uses the device's generator.
pub fn sample_tokens(logits: Tensor<3>, temperature: f64, uniforms: &[f32]) -> Tensor<2, Int> {
    let [b, n, v] = logits.dims();
    let device = logits.device();
    let u = Tensor::<3>::from_data(
        TensorData::new(uniforms.to_vec(), [b, n, 1]),
        (&device, DType::F32),
    );
    // In f32 whatever the model computed in: a cumulative sum over thousands of categories needs
    // more than f16's 11 bits.
    let logits = logits.cast(FloatDType::F32);
    let cdf = softmax(logits.div_scalar(temperature.max(1e-6)), 2).cumsum(2);
    // The token is the number of categories whose cumulative probability stays below u.
    cdf.lower(u)
        .int()
        .sum_dim(2)
        .squeeze_dim::<2>(2)
        .clamp_max(v as i64 - 1)
}

/// `count` uniform numbers in [0, 1).
pub fn uniforms(rng: &mut SplitMix, count: usize) -> Vec<f32> {
    (0..count).map(|_| rng.next_f32()).collect()
}

/// Runs `unroll_steps` passes from `corrupted` `[B, H, W]` towards `clean`; `rng` draws the samples
/// between passes. `fill` (one flag per token) marks the blocks left to fill: the model is told them in
/// every pass, and in a grid with a block every other position holds its clean token in the passes
/// after the first, as the inpainting sampler never redraws unmasked tokens. `labels` `[B, sets]` are
/// the grids' labels (with dropped ones at their null value), shown to every pass.
pub fn unrolled_loss<M: Denoiser>(
    model: &M,
    clean: Tensor<3, Int>,
    corrupted: Tensor<3, Int>,
    fill: Option<&[bool]>,
    labels: Option<Tensor<2, Int>>,
    unroll_steps: usize,
    rng: &mut SplitMix,
) -> Unrolled {
    let [b, h, w] = clean.dims();
    let device = clean.device();
    let flags = |values: Vec<bool>| {
        Tensor::<3, Bool>::from_data(TensorData::new(values, [b, h, w]), &device)
    };
    let fill = fill.filter(|f| f.contains(&true));
    let known = fill.map(|f| flags(known_around_blocks(f, h * w)));
    let conditions = Conditions {
        fill: fill.map(|f| flags(f.to_vec())),
        labels,
    };
    let target = clean.clone().reshape([b, h * w, 1]);
    let target_classes: Vec<u32> = clean
        .clone()
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("token grids read back as integers")
        .into_iter()
        .map(|t| t as u32)
        .collect();
    let mut x = corrupted;
    let mut total: Option<Tensor<1>> = None;
    let mut step_losses = Vec::with_capacity(unroll_steps);
    let mut correct = 0.0;
    for t in 0..unroll_steps {
        let logits = model.logits_conditioned(x.clone(), &conditions);
        let nll = crate::cpu::mean_nll(logits.clone(), &target_classes);
        step_losses.push(nll.clone().into_scalar::<f64>());
        let hits = logits
            .clone()
            .detach()
            .argmax(2)
            .equal(target.clone())
            .int()
            .sum()
            .into_scalar::<i64>();
        correct += hits as f64 / (b * h * w) as f64;
        total = Some(match total {
            Some(sum) => sum + nll,
            None => nll,
        });
        if t + 1 < unroll_steps {
            x = sample_tokens(logits.detach(), 1.0, &uniforms(rng, b * h * w)).reshape([b, h, w]);
            if let Some(known) = &known {
                x = x.mask_where(known.clone(), clean.clone());
            }
        }
    }
    let steps = unroll_steps.max(1) as f64;
    Unrolled {
        loss: total.expect("at least one unroll step").div_scalar(steps),
        step_losses,
        accuracy: correct / steps,
    }
}

/// Outside the block of a grid that has one: the positions the unrolled passes hold clean.
fn known_around_blocks(fill: &[bool], per_grid: usize) -> Vec<bool> {
    fill.chunks(per_grid.max(1))
        .flat_map(|grid| {
            let has_block = grid.contains(&true);
            grid.iter().map(move |&inside| has_block && !inside)
        })
        .collect()
}
