//! `sundae train`, `sundae evaluate` and `sundae bundle`: the prior's training run, its held-out
//! figures, and the generator bundle that joins it to its VQ-GAN.

use super::Done;
use crate::bundle;
use crate::sundae::evaluate::{Evaluation, RateFigures, at_rate, evaluate, in_blocks};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use std::fmt;
use std::path::Path;

/// `sundae train`: trains (or resumes) a prior run; see `sundae::train::train`.
pub fn train(
    latents: &Path,
    config: Option<&Path>,
    run: &Path,
    resume: bool,
    init: Option<&Path>,
    vqgan: Option<&Path>,
    device: &Device,
) -> Result<Done> {
    crate::sundae::train::train(latents, config, run, resume, init, vqgan, device)?;
    Ok(Done(format!("trained the prior in {}", run.display())))
}

/// What `sundae evaluate` measures.
pub struct EvaluateRequest<'a> {
    pub model: &'a Path,
    pub latents: &'a Path,
    pub unroll_steps: usize,
    pub block_share: f64,
    pub blocks: bool,
    pub rates: &'a [f64],
    pub batch_size: usize,
}

/// The held-out figures: the training objective, then one pass at each asked rate (and in blocks).
pub struct EvaluateReport {
    pub evaluation: Evaluation,
    pub passes: Vec<(String, RateFigures)>,
}

impl fmt::Display for EvaluateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.evaluation;
        let steps: Vec<String> = e.step_losses.iter().map(|l| format!("{l:.4}")).collect();
        writeln!(
            f,
            "{} grids: loss {:.4} (per unroll step {}), token accuracy {:.4}, codebook usage {:.3}",
            e.grids,
            e.loss,
            steps.join(", "),
            e.accuracy,
            e.codebook_usage
        )?;
        write!(f, "{}", serde_json::to_string(e).map_err(|_| fmt::Error)?)?;
        for (name, r) in &self.passes {
            let show = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
            write!(
                f,
                "\n{name}: accuracy {} on untouched tokens, {} on replaced ones (loss {}); a replaced token kept at {}\n{}",
                show(r.clean_accuracy),
                show(r.corrupted_accuracy),
                show(r.corrupted_loss),
                show(r.kept_noise),
                serde_json::to_string(r).map_err(|_| fmt::Error)?
            )?;
        }
        Ok(())
    }
}

/// `sundae evaluate`: a generator's prior on a latent set (its labels shown to it, as in training).
pub fn evaluate_latents(request: &EvaluateRequest, device: &Device) -> Result<EvaluateReport> {
    let r = request;
    if !(0.0..=1.0).contains(&r.block_share) {
        bail!("--block-share: {} is not in [0, 1]", r.block_share);
    }
    if let Some(bad) = r.rates.iter().find(|x| !(0.0..=1.0).contains(*x)) {
        bail!("--rates: {bad} is not in [0, 1]");
    }
    let (_, _, prior_config, prior) = bundle::load_generator(r.model, device)?;
    let set = crate::data::latents::load(r.latents)?;
    set.manifest
        .check_prior(&prior_config)
        .with_context(|| r.latents.display().to_string())?;
    let labels = crate::sundae::train::model_labels(&prior_config, &set)
        .with_context(|| r.latents.display().to_string())?;
    let (grids, vocab) = (&set.grids, prior_config.vocab_size);
    let evaluation = evaluate(
        &prior,
        grids,
        &labels,
        vocab,
        r.unroll_steps.max(1),
        r.block_share,
        r.batch_size,
        device,
    );
    let mut passes: Vec<(String, RateFigures)> = r
        .rates
        .iter()
        .map(|&rate| {
            let figures = at_rate(&prior, grids, &labels, vocab, rate, r.batch_size, device);
            (format!("rate {rate:.2}"), figures)
        })
        .collect();
    if r.blocks {
        let figures = in_blocks(&prior, grids, &labels, vocab, r.batch_size, device);
        passes.push(("blocks".to_string(), figures));
    }
    Ok(EvaluateReport { evaluation, passes })
}

/// `sundae bundle`: a VQ-GAN bundle and a prior run's latest checkpoint, written whole as one
/// generator bundle at `out` (refused when it exists, unless `force`).
pub fn join(vqgan: &Path, prior: &Path, out: &Path, half: bool, force: bool) -> Result<Done> {
    crate::files::check_new_bundle(out, force)?;
    let storage = if half {
        bundle::Storage::F16
    } else {
        bundle::Storage::F32
    };
    let device = crate::device::cpu();
    let (vq_config, vq_model) = bundle::load_vqgan(vqgan, &device)?;
    let prior_config = crate::sundae::train::PriorTrainConfig::read(
        &crate::train::RunDir::at(prior).config_path(),
    )?
    .model;
    bundle::check_stages_agree(&vq_config, &prior_config)?;
    crate::files::write_dir_atomic(out, |dir| {
        bundle::save_vqgan(dir, &vq_config, &vq_model, storage)?;
        crate::sundae::train::export_prior(prior, dir, storage, &device).map(|_| ())
    })?;
    Ok(Done(format!(
        "wrote the generator bundle {}",
        out.display()
    )))
}
