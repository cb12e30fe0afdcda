//! SUNDAE training of the prior (SPEC.md 3): corruption, unrolled loss, AdamW, exact resume.

use super::corrupt::corrupt;
use super::sample::{SampleSettings, sample};
use super::unroll::unrolled_loss;
use crate::data::labels::LabelSets;
use crate::data::latents;
use crate::hourglass::{Prior, PriorConfig};
use crate::tokens::TokenGrids;
use crate::train::fit::{
    Checkpointed, StepOutcome, fit, load_module, load_optimizer, resume_latest, save_module,
    save_optimizer,
};
use crate::train::rng::streams;
use crate::train::settings::{LoopDefaults, LoopSettings};
use crate::train::{BatchStream, RunDir, SplitMix};
use anyhow::{Context, Result, bail};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorTrainConfig {
    pub model: PriorConfig,
    #[serde(default)]
    pub train: PriorTrainSettings,
}

/// Defaults are the reference's (SPEC.md 3.4): AdamW(0.9, 0.999, eps 1e-8, weight decay 0.01),
/// constant learning rate, no clipping, T = 2.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorTrainSettings {
    /// Steps, batch, AdamW learning rate and its schedule, seed and cadence.
    #[serde(flatten)]
    pub run: LoopSettings<PriorLoop>,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value (0 = no clipping).
    pub grad_clip: f64,
    /// Unrolled denoising passes T.
    pub unroll_steps: usize,
    /// Share of grids corrupted by a block (a random rectangle, all replaced) instead of scattered
    /// tokens, to train for inpainting (0 = the reference's corruption only).
    pub block_share: f64,
    /// Keep an exponential moving average of the weights with this decay (0 = none, e.g. 0.999);
    /// `sundae bundle` ships the average when the run has one.
    pub ema_decay: f64,
    /// Chance that a grid's label in one set is replaced by that set's null value (each set on its
    /// own), so the prior learns to do without it.
    pub label_dropout: f64,
    /// Chance that all of a grid's labels are dropped at once: the unconditional model that
    /// classifier-free guidance steers away from.
    pub label_drop_all: f64,
    /// Images in each sample grid (needs `--vqgan`).
    pub samples: usize,
    pub sample_steps: usize,
}

/// The prior trainer's loop defaults (the reference's: SPEC.md 3.4).
#[derive(Debug, Clone, PartialEq)]
pub struct PriorLoop;

impl LoopDefaults for PriorLoop {
    fn defaults() -> LoopSettings<Self> {
        LoopSettings {
            steps: 100_000,
            batch_size: 16,
            learning_rate: 3e-5,
            warmup_steps: 0,
            decay_steps: 0,
            seed: 0,
            log_every: 10,
            checkpoint_every: 1000,
            keep_every: 10_000,
            sample_every: 1000,
            defaults: PhantomData,
        }
    }
}

impl Default for PriorTrainSettings {
    fn default() -> Self {
        Self {
            run: PriorLoop::defaults(),
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.01,
            grad_clip: 0.0,
            unroll_steps: 2,
            block_share: 0.0,
            ema_decay: 0.0,
            label_dropout: 0.0,
            label_drop_all: 0.0,
            samples: 8,
            sample_steps: 50,
        }
    }
}

impl PriorTrainConfig {
    /// Reads and checks a configuration; one that leaves the vocabulary or grid to the latents
    /// (0) is checked once they are filled in (`fill_from_latents`).
    pub fn read(path: &Path) -> Result<Self> {
        let config: Self = crate::bundle::read_toml(path)?;
        let m = &config.model;
        if m.vocab_size != 0 && m.grid_height != 0 && m.grid_width != 0 {
            config.model.validate()?;
        }
        if config.train.run.batch_size == 0 || config.train.unroll_steps == 0 {
            bail!(
                "{}: batch_size and unroll_steps must be at least 1",
                path.display()
            );
        }
        for (name, value) in [
            ("block_share", config.train.block_share),
            ("label_dropout", config.train.label_dropout),
            ("label_drop_all", config.train.label_drop_all),
        ] {
            if !(0.0..=1.0).contains(&value) {
                bail!("{}: {name} must be in [0, 1]", path.display());
            }
        }
        Ok(config)
    }
}

pub struct PriorTrainer {
    pub settings: PriorTrainSettings,
    pub model: Prior,
    /// The moving average of the weights (inner device, no autodiff), when `ema_decay` > 0.
    pub ema: Option<Prior>,
    optim: ModuleOptimizer,
    pub step: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriorStepReport {
    pub step: u64,
    pub loss: f64,
    pub step_losses: Vec<f64>,
    pub accuracy: f64,
    pub learning_rate: f64,
}

/// One training batch: clean grids and their labels (`[B, sets]` row-major; empty without labels).
pub struct LabelledBatch {
    pub grids: TokenGrids,
    pub labels: Vec<i64>,
}

impl From<TokenGrids> for LabelledBatch {
    /// Grids without labels (for a prior without label sets).
    fn from(grids: TokenGrids) -> Self {
        Self {
            grids,
            labels: Vec::new(),
        }
    }
}

/// Replaces labels by their set's null value: all of a grid's at once with chance `drop_all`, else
/// each on its own with chance `dropout`. `nulls` holds each set's null index.
pub fn drop_labels(
    labels: &mut [i64],
    nulls: &[i64],
    dropout: f64,
    drop_all: f64,
    rng: &mut SplitMix,
) {
    if nulls.is_empty() {
        return;
    }
    for row in labels.chunks_mut(nulls.len()) {
        if (rng.next_f32() as f64) < drop_all {
            row.copy_from_slice(nulls);
            continue;
        }
        for (value, &null) in row.iter_mut().zip(nulls) {
            if (rng.next_f32() as f64) < dropout {
                *value = null;
            }
        }
    }
}

fn adamw(s: &PriorTrainSettings) -> ModuleOptimizer {
    // Every value explicit: burn's AdamW defaults differ from PyTorch's (DECISIONS.md).
    let optim = AdamWConfig::new()
        .with_beta_1(s.beta1 as f32)
        .with_beta_2(s.beta2 as f32)
        .with_epsilon(s.epsilon as f32)
        .with_weight_decay(s.weight_decay as f32);
    if s.grad_clip > 0.0 {
        optim
            .with_grad_clipping(Some(GradientClippingConfig::Norm(s.grad_clip as f32)))
            .init()
    } else {
        optim.init()
    }
}

impl PriorTrainer {
    /// A fresh trainer on an autodiff `device`.
    pub fn new(config: &PriorTrainConfig, device: &Device) -> Self {
        let model = Prior::new(&config.model, device);
        Self {
            ema: (config.train.ema_decay > 0.0).then(|| model.valid()),
            model,
            optim: adamw(&config.train),
            step: 0,
            settings: config.train.clone(),
        }
    }

    /// The rate of the coming step: warmup, then constant, then the final decay.
    pub fn learning_rate(&self) -> f64 {
        self.settings.run.learning_rate_at(self.step)
    }

    /// One step on clean grids: corrupt, drop labels, unroll, average the losses, update.
    pub fn step(&mut self, batch: &LabelledBatch) -> Result<PriorStepReport> {
        let clean = &batch.grids;
        let device = self.model.token_emb.weight.device();
        let nulls: Vec<i64> = self
            .model
            .label_emb
            .iter()
            .map(|e| e.weight.dims()[0] as i64 - 1)
            .collect();
        let labels = (!nulls.is_empty()).then(|| {
            let mut labels = batch.labels.clone();
            drop_labels(
                &mut labels,
                &nulls,
                self.settings.label_dropout,
                self.settings.label_drop_all,
                &mut SplitMix::keyed(self.settings.run.seed, streams::LABEL_DROP, self.step),
            );
            Tensor::<2, Int>::from_data(
                TensorData::new(labels, [clean.shape[0], nulls.len()]),
                &device,
            )
        });
        let vocab = self.model.vocab_size();
        let mut corrupted = clean.values.clone();
        let mut rng = SplitMix::keyed(self.settings.run.seed, streams::CORRUPT, self.step);
        let corruption = corrupt(
            &mut corrupted,
            clean.shape,
            vocab,
            self.settings.block_share,
            &mut rng,
        );
        let to_tensor = |values: Vec<i64>| {
            Tensor::<3, Int>::from_data(TensorData::new(values, clean.shape), &device)
        };
        // Keyed by step, so a resumed run draws the same samples between unroll passes.
        let mut unroll_rng = SplitMix::keyed(self.settings.run.seed, streams::UNROLL, self.step);
        let unrolled = unrolled_loss(
            &self.model,
            to_tensor(clean.values.clone()),
            to_tensor(corrupted),
            Some(&corruption.fill),
            labels,
            self.settings.unroll_steps,
            &mut unroll_rng,
        );
        let loss = unrolled.loss.clone().into_scalar::<f64>();
        if !loss.is_finite() {
            bail!("non-finite loss at step {}", self.step + 1);
        }
        let learning_rate = self.learning_rate();
        let grads = GradientsParams::from_grads(unrolled.loss.backward(), &self.model);
        self.model = self.optim.step(learning_rate, self.model.clone(), grads);
        if let Some(average) = self.ema.take() {
            let decay = self.settings.ema_decay;
            self.ema = Some(crate::train::ema::update(
                average,
                &self.model.valid(),
                decay,
            ));
        }
        self.step += 1;
        Ok(PriorStepReport {
            step: self.step,
            loss,
            step_losses: unrolled.step_losses,
            accuracy: unrolled.accuracy,
            learning_rate,
        })
    }
}

/// What a prior checkpoint's `state.json` holds besides the weights and optimiser.
#[derive(Serialize, Deserialize)]
struct PriorState {
    step: u64,
}

impl Checkpointed for PriorTrainer {
    fn steps_done(&self) -> u64 {
        self.step
    }

    fn save(&self, dir: &Path) -> Result<()> {
        save_module(&self.model, dir, "prior.bpk")?;
        if let Some(average) = &self.ema {
            save_module(average, dir, "prior-ema.bpk")?;
        }
        save_optimizer(&self.optim, dir, "prior-optim.bpk")?;
        crate::train::checkpoint::write_state(dir, &PriorState { step: self.step })
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        load_module(&mut self.model, dir, "prior.bpk")?;
        if let Some(average) = &mut self.ema {
            load_module(average, dir, "prior-ema.bpk")?;
        }
        self.optim = load_optimizer(adamw(&self.settings), dir, "prior-optim.bpk")?;
        let state: PriorState = crate::train::checkpoint::read_state(dir)?;
        self.step = state.step;
        Ok(())
    }
}

/// Fills what a training configuration leaves at 0 from the latents' manifest (vocabulary, grid,
/// label-set sizes), then checks the whole model; values it states must match the manifest.
pub fn fill_from_latents(model: &mut PriorConfig, manifest: &latents::Manifest) -> Result<()> {
    for (value, from_latents) in [
        (&mut model.vocab_size, manifest.vocab_size),
        (&mut model.grid_height, manifest.grid_height),
        (&mut model.grid_width, manifest.grid_width),
    ] {
        if *value == 0 {
            *value = from_latents;
        }
    }
    fill_label_sizes(model, &manifest.labels)?;
    model.validate()?;
    manifest.check_prior(model)
}

/// Fills the sizes a training configuration leaves at 0 from the latents' label sets, and refuses a
/// set they lack or a size that differs.
pub fn fill_label_sizes(model: &mut PriorConfig, sets: &LabelSets) -> Result<()> {
    for wanted in &mut model.labels {
        let Some(found) = sets.sets.iter().find(|s| s.name == wanted.name) else {
            let names: Vec<&str> = sets.sets.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "label set '{}' is not in the latents (they have: {})",
                wanted.name,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        };
        if wanted.values == 0 {
            wanted.values = found.values.len();
        } else if wanted.values != found.values.len() {
            bail!(
                "label set '{}' has {} values in the latents, but the configuration says {}",
                wanted.name,
                found.values.len(),
                wanted.values
            );
        }
    }
    Ok(())
}

/// The latents' labels in the columns the prior reads (`[count, prior sets]`; empty without sets).
pub fn model_labels(model: &PriorConfig, set: &latents::LatentSet) -> Result<Vec<i64>> {
    let (columns, _) = label_columns(model, &set.manifest.labels)?;
    let width = set.manifest.labels.sets.len();
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    Ok(set
        .labels
        .chunks(width)
        .flat_map(|row| columns.iter().map(|&c| row[c]))
        .collect())
}

/// For each label set of the prior, its column in the latents' labels; and those sets (the
/// prior's `labels.json`).
fn label_columns(model: &PriorConfig, sets: &LabelSets) -> Result<(Vec<usize>, LabelSets)> {
    let mut columns = Vec::new();
    let mut used = LabelSets::default();
    for wanted in &model.labels {
        let at = sets
            .sets
            .iter()
            .position(|s| s.name == wanted.name && s.values.len() == wanted.values)
            .with_context(|| {
                format!(
                    "the prior's label set '{}' ({} values) is not in the latents",
                    wanted.name, wanted.values
                )
            })?;
        columns.push(at);
        used.sets.push(sets.sets[at].clone());
    }
    Ok((columns, used))
}

/// `sundae train`: trains a prior on a latent data set into a run directory. With `vqgan`, sample
/// grids are decoded into `samples/` (the VQ-GAN must be the one that made the latents). A new run
/// starts from the prior of the bundle `init` when one is given.
pub fn train(
    latents_dir: &Path,
    config_path: Option<&Path>,
    run_path: &Path,
    resume: bool,
    init: Option<&Path>,
    vqgan: Option<&Path>,
    device: &Device,
) -> Result<()> {
    let run = RunDir::open(run_path, resume)?;
    let set = latents::load(latents_dir)?;
    let config = crate::train::config::run_config(
        &run,
        config_path,
        resume,
        PriorTrainConfig::read,
        |config: &mut PriorTrainConfig| fill_from_latents(&mut config.model, &set.manifest),
    )?;
    let m = &config.model;
    let (manifest, grids) = (&set.manifest, &set.grids);
    manifest.check_prior(m)?;
    // The model's label sets as columns of the latents' labels (a prior may use some of them).
    let (columns, used_sets) = label_columns(m, &manifest.labels)?;
    if !used_sets.is_empty() {
        used_sets.write(&run.root)?;
    }
    let labels = model_labels(m, &set)?;
    let decoder = match vqgan {
        Some(dir) => {
            let hash = latents::file_hash(&dir.join(crate::bundle::VQGAN_WEIGHTS))?;
            if hash != manifest.vqgan_hash {
                bail!(
                    "{} was made by another VQ-GAN than {}",
                    latents_dir.display(),
                    dir.display()
                );
            }
            Some(crate::bundle::load_vqgan(dir, device)?.1)
        }
        None => None,
    };
    let s = config.train.clone();
    let autodiff = device.clone().autodiff();
    autodiff.seed(s.run.seed);
    let mut trainer = PriorTrainer::new(&config, &autodiff);
    if let (false, Some(bundle)) = (resume, init) {
        let (bundle_config, mut model) = crate::bundle::load_prior(bundle, &autodiff)?;
        // A prior without a fill embedding may start one that learns it (from zero); a prior with
        // one keeps it, so a configuration without one differs.
        let adds_fill = m.fill_embedding && !bundle_config.fill_embedding;
        if (PriorConfig {
            fill_embedding: bundle_config.fill_embedding || m.fill_embedding,
            ..bundle_config
        }) != *m
        {
            bail!(
                "--init {}: its prior differs from the configuration's [model]",
                bundle.display()
            );
        }
        if adds_fill {
            model = model.with_fill_embedding();
        }
        trainer.ema = trainer.ema.is_some().then(|| model.valid());
        trainer.model = model;
    }
    eprintln!(
        "training a {:.1}M-parameter prior on {} token grids",
        m.parameter_count() as f64 / 1e6,
        manifest.count
    );
    resume_latest(&run, &mut trainer)?;
    let per_grid = m.grid_height * m.grid_width;
    let shape = (m.grid_height, m.grid_width);
    let sets = columns.len();
    let data = Arc::new((grids.values.clone(), labels));
    let batches = BatchStream::new(
        data,
        grids.shape[0],
        s.run.batch_size,
        s.run.seed,
        trainer.step,
        move |(values, labels): &(Vec<i64>, Vec<i64>), idx| LabelledBatch {
            grids: TokenGrids {
                values: idx
                    .iter()
                    .flat_map(|&i| values[i * per_grid..(i + 1) * per_grid].iter().copied())
                    .collect(),
                shape: [idx.len(), shape.0, shape.1],
            },
            labels: idx
                .iter()
                .flat_map(|&i| labels[i * sets..(i + 1) * sets].iter().copied())
                .collect(),
        },
    );
    let cadence = s.run.cadence(s.run.batch_size * per_grid);
    let samples_dir = run.samples();
    fit(
        "prior",
        &run,
        &mut trainer,
        cadence,
        batches,
        |trainer, batch| {
            let report = trainer.step(&batch)?;
            let status = format!("loss {:.4} acc {:.3}", report.loss, report.accuracy);
            Ok(StepOutcome {
                metrics: serde_json::to_value(&report)?,
                status,
            })
        },
        |trainer, step| {
            let Some(vqgan) = &decoder else {
                return Ok(serde_json::json!({}));
            };
            let model = trainer.model.valid();
            let settings = SampleSettings {
                steps: s.sample_steps,
                seed: s.run.seed,
                ..SampleSettings::default()
            };
            let start = TokenGrids::random(
                s.samples.max(1),
                shape.0,
                shape.1,
                m.vocab_size,
                &mut SplitMix::keyed(s.run.seed, streams::RUN_SAMPLES, 0),
            );
            let sampled = sample(&model, start, None, &settings, device, |_, _| {});
            let (values, [b, _, h, w]) =
                crate::vqgan::batch::decode_grids(vqgan, &sampled.grids, 8, device);
            let tiles: Vec<_> = (0..b)
                .map(|i| {
                    crate::data::images::to_rgb8(&values[i * 3 * h * w..(i + 1) * 3 * h * w], h, w)
                })
                .collect();
            crate::data::images::save(
                &crate::data::images::grid(&tiles, 4),
                &samples_dir.join(format!("step-{step:08}.png")),
            )?;
            Ok(serde_json::json!({ "sample_steps_taken": sampled.steps_taken }))
        },
    )
}

/// Writes the latest checkpoint's prior of a run (its moving average when it kept one) into the
/// bundle folder `out`, with its label sets' values; returns its configuration.
pub fn export_prior(
    run_path: &Path,
    out: &Path,
    storage: crate::bundle::Storage,
    device: &Device,
) -> Result<PriorConfig> {
    let run = RunDir::at(run_path);
    let config = PriorTrainConfig::read(&run.config_path())?;
    let mut trainer = PriorTrainer::new(&config, &device.clone().autodiff());
    trainer.load(&run.latest_required()?)?;
    let weights = trainer.ema.take().unwrap_or_else(|| trainer.model.valid());
    crate::bundle::save_prior(out, &config.model, &weights, storage)?;
    // The label sets' values, so that `--label` can name them.
    if !config.model.labels.is_empty() {
        LabelSets::read(run_path)?.write(out)?;
    }
    Ok(config.model)
}
