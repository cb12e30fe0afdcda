//! `sundae bench ...`: speed and memory figures, as tables with one JSON line per row.

use crate::bench::{DecodeFigures, GeneratorFigures};
use crate::bundle;
use crate::hourglass::{Prior, PriorConfig};
use crate::sundae::train::PriorTrainConfig;
use crate::vqgan::{VqGan, VqGanConfig};
use anyhow::{Context, Result};
use burn::tensor::Device;
use std::fmt;
use std::path::{Path, PathBuf};

/// A preset (tiny, emoji64, f16, ffhq1024) or a `vqgan.toml` path, checked.
pub fn vqgan_config(name: &str) -> Result<VqGanConfig> {
    let config = match VqGanConfig::preset(name) {
        Some(config) => config,
        None => {
            let text = std::fs::read_to_string(name).map_err(|e| {
                anyhow::anyhow!(
                    "'{name}' is neither a preset (tiny, emoji64, f16, ffhq1024) nor a readable file: {e}"
                )
            })?;
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{name}: {}", e.message()))?
        }
    };
    config.validate()?;
    Ok(config)
}

/// A generator to time: a named configuration with random weights (or the built-in model for
/// `emoji` when it exists), or a bundle directory; with the steps it samples with by default.
struct Generator {
    vq_config: VqGanConfig,
    vqgan: VqGan,
    prior_config: PriorConfig,
    prior: Prior,
    default_steps: usize,
}

fn generator(name: &str, device: &Device) -> Result<Generator> {
    let random = |vq_config: VqGanConfig, prior_config: PriorConfig, default_steps| Generator {
        vqgan: VqGan::new(&vq_config, device),
        prior: Prior::new(&prior_config, device),
        vq_config,
        prior_config,
        default_steps,
    };
    let built_in = bundle::default_model_dir();
    Ok(match name {
        "ffhq1024" => random(VqGanConfig::ffhq1024(), PriorConfig::ffhq1024(), 100),
        "ffhq256" => random(VqGanConfig::taming_f16(), PriorConfig::ffhq256(), 100),
        "tiny" => random(VqGanConfig::tiny(), PriorConfig::tiny(), 20),
        "emoji" if !built_in.join(bundle::PRIOR_CONFIG).is_file() => {
            eprintln!("no built-in model yet: random weights in the emoji shape");
            random(VqGanConfig::emoji64(), PriorConfig::emoji(), 50)
        }
        other => {
            let dir = if other == "emoji" {
                built_in
            } else {
                PathBuf::from(other)
            };
            let (vq_config, vqgan, prior_config, prior) = bundle::load_generator(&dir, device)?;
            // The steps the bundle samples with (its sampling.toml), else the built-in default.
            let default_steps = bundle::read_sampling_defaults(&dir)?
                .steps
                .unwrap_or(crate::sundae::sample::DEFAULT_STEPS);
            Generator {
                vq_config,
                vqgan,
                prior_config,
                prior,
                default_steps,
            }
        }
    })
}

/// Rows of `sundae bench generator`.
pub struct GeneratorTable(pub Vec<GeneratorFigures>);

impl fmt::Display for GeneratorTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<10} {:>5} {:>6} {:>5} {:>9} {:>12} {:>12} {:>14} {:>9}",
            "config",
            "batch",
            "res",
            "float",
            "prior",
            "prior s/step",
            "decode s/img",
            "end-to-end s/img",
            "peak MiB"
        )?;
        for r in &self.0 {
            write!(
                f,
                "\n{:<10} {:>5} {:>6} {:>5} {:>8.1}M {:>12.3} {:>12.3} {:>14.3} {:>9.0}   ({} steps)\n{}",
                r.config,
                r.batch,
                r.resolution,
                r.precision,
                r.prior_parameters as f64 / 1e6,
                r.prior_seconds_per_step,
                r.decoder_seconds_per_image,
                r.end_to_end_seconds_per_image,
                r.peak_mib,
                r.default_steps,
                serde_json::to_string(r).map_err(|_| fmt::Error)?
            )?;
        }
        Ok(())
    }
}

/// `sundae bench generator`: the prior's seconds per step and the decoder's per image, per batch size
/// (`batches`: comma-separated whole numbers from 1 up).
pub fn bench_generator(
    config: &str,
    batches: &str,
    timed_steps: usize,
    device: &Device,
) -> Result<GeneratorTable> {
    let batches: Vec<usize> = batches
        .split(',')
        .map(|b| b.trim().parse::<usize>().ok().filter(|&b| b > 0))
        .collect::<Option<_>>()
        .context("--batch takes comma-separated whole numbers from 1 up")?;
    let g = generator(config, device)?;
    let rows = batches
        .into_iter()
        .map(|batch| {
            crate::bench::generator(
                config,
                &g.vqgan,
                &g.vq_config,
                &g.prior,
                &g.prior_config,
                batch,
                timed_steps,
                g.default_steps,
                device,
            )
        })
        .collect();
    Ok(GeneratorTable(rows))
}

/// Rows of `sundae bench vqgan`.
pub struct VqganTable(pub Vec<DecodeFigures>);

impl fmt::Display for VqganTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<10} {:>6} {:>5} {:>5} {:>8} {:>10} {:>10} {:>10}",
            "config", "res", "batch", "float", "params", "decode s", "encode s", "peak MiB"
        )?;
        for r in &self.0 {
            write!(
                f,
                "\n{:<10} {:>6} {:>5} {:>5} {:>7.1}M {:>10.3} {:>10.3} {:>10.0}\n{}",
                r.config,
                r.resolution,
                r.batch,
                r.precision,
                r.parameters as f64 / 1e6,
                r.decode_seconds,
                r.encode_seconds,
                r.peak_mib,
                serde_json::to_string(r).map_err(|_| fmt::Error)?
            )?;
        }
        Ok(())
    }
}

/// `sundae bench vqgan`: encode and decode time of each configuration (comma-separated names).
pub fn bench_vqgan(
    configs: &str,
    batch: usize,
    repeats: usize,
    device: &Device,
) -> Result<VqganTable> {
    let mut rows = Vec::new();
    for name in configs.split(',').map(str::trim) {
        let dir = Path::new(name);
        if dir.join(bundle::VQGAN_CONFIG).is_file() {
            rows.extend(bench_bundle_decoders(dir, batch, repeats, device)?);
            continue;
        }
        rows.push(crate::bench::vqgan(
            name,
            &vqgan_config(name)?,
            batch,
            repeats,
            device,
        ));
    }
    Ok(VqganTable(rows))
}

/// A bundle's own decoder and each of its render decoders, with its trained weights.
fn bench_bundle_decoders(
    dir: &Path,
    batch: usize,
    repeats: usize,
    device: &Device,
) -> Result<Vec<DecodeFigures>> {
    let (config, tokenizer) = bundle::load_vqgan(dir, device)?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let mut rows = Vec::new();
    for size in bundle::render_sizes(dir)? {
        let decoder = bundle::load_render_decoder(dir, Some(size), &config, &tokenizer, device)?;
        rows.push(crate::bench::render_decoder(
            &format!("{name}@{size}"),
            &tokenizer,
            &decoder,
            config.latent_side(),
            batch,
            repeats,
            device,
        ));
    }
    Ok(rows)
}

/// `sundae bench agreement`: the share of positions where two token files agree.
pub fn agreement(a: &Path, b: &Path) -> Result<super::Done> {
    let (equal, total) = crate::tokens::agreement(a, b)?;
    Ok(super::Done(format!(
        "agreement {:.6} ({equal} of {total} positions equal)",
        equal as f64 / total.max(1) as f64
    )))
}

/// The smallest and the median of timed runs (NaN when there are none).
fn best_and_median(seconds: &[f64]) -> (f64, f64) {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |i: usize| sorted.get(i).copied().unwrap_or(f64::NAN);
    (at(0), at(sorted.len() / 2))
}

/// What `sundae bench prior` reports: seconds per forward pass of one batch.
pub struct PriorForward {
    pub config: String,
    pub batch: usize,
    pub parameters: usize,
    /// Every timed pass, in order.
    pub seconds: Vec<f64>,
    pub peak_mib: f64,
}

impl fmt::Display for PriorForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (best, median) = best_and_median(&self.seconds);
        write!(
            f,
            "prior forward {}: batch {}, {:.1}M parameters, best {:.4} s, median {:.4} s over {} passes, peak {:.0} MiB\n{}",
            self.config,
            self.batch,
            self.parameters as f64 / 1e6,
            best,
            median,
            self.seconds.len(),
            self.peak_mib,
            serde_json::json!({
                "config": self.config, "batch": self.batch, "seconds": self.seconds,
                "best": best, "median": median, "peak_mib": self.peak_mib,
            })
        )
    }
}

/// `sundae bench prior`: times the prior's forward pass on `tokens` (an int64 .npy `[B, h, w]`) or on
/// `batch` random grids, after one untimed pass; writes the logits `[B, h*w, V]` when asked (for
/// comparing with another implementation on the same weights), and the weights as a bundle.
pub fn bench_prior(
    config: &str,
    batch: usize,
    repeats: usize,
    tokens: Option<&Path>,
    logits: Option<&Path>,
    save_bundle: Option<&Path>,
    device: &Device,
) -> Result<PriorForward> {
    use crate::vqgan::batch::tokens_to_tensor;
    if let Some(out) = logits {
        crate::files::check_new_file(out, true, &["npy"])?;
    }
    if let Some(dir) = save_bundle {
        crate::files::check_new_bundle(dir, false)?;
    }
    let g = generator(config, device)?;
    if let Some(dir) = save_bundle {
        crate::files::write_dir_atomic(dir, |dir| {
            bundle::save_vqgan(dir, &g.vq_config, &g.vqgan, bundle::Storage::F32)?;
            bundle::save_prior(dir, &g.prior_config, &g.prior, bundle::Storage::F32)
        })?;
    }
    let grids = match tokens {
        Some(path) => {
            let grids = crate::tokens::read_tokens(path)?;
            grids.check_vocabulary(g.prior_config.vocab_size)?;
            grids
        }
        None => crate::tokens::TokenGrids::random(
            batch,
            g.prior_config.grid_height,
            g.prior_config.grid_width,
            g.prior_config.vocab_size,
            &mut crate::train::SplitMix::new(7),
        ),
    };
    crate::bench::reset_peak_memory();
    let mut seconds = Vec::with_capacity(repeats);
    let mut first = None;
    for pass in 0..=repeats {
        let start = std::time::Instant::now();
        let out = g.prior.forward(tokens_to_tensor(&grids, device), None);
        let shape = out.dims();
        let values: Vec<f32> = out.into_data().iter::<f32>().collect();
        if pass == 0 {
            first = Some((values, shape));
        } else {
            seconds.push(start.elapsed().as_secs_f64());
        }
    }
    if let (Some(out), Some((values, shape))) = (logits, first) {
        crate::tokens::write_logits_npy(out, values, shape)?;
    }
    Ok(PriorForward {
        config: config.to_string(),
        batch: grids.batch(),
        parameters: g.prior_config.parameter_count(),
        seconds,
        peak_mib: crate::bench::peak_memory_mib(),
    })
}

/// A prior training configuration by name (the shipped `emoji`, `ffhq1024` and `tiny` ones, built in)
/// or path. Grid and vocabulary that a configuration leaves to its latents are the emoji model's 8x8
/// of 512 codes.
fn train_config(name: &str) -> Result<PriorTrainConfig> {
    let built_in = match name {
        "emoji" => Some(include_str!("../../configs/prior-emoji.toml")),
        "ffhq1024" => Some(include_str!("../../configs/prior-ffhq1024-2102-4.toml")),
        "tiny" => Some(include_str!("../../configs/prior-tiny.toml")),
        _ => None,
    };
    let mut config: PriorTrainConfig = match built_in {
        Some(text) => toml::from_str(text).expect("the shipped configurations parse"),
        None => PriorTrainConfig::read(Path::new(name)).with_context(|| {
            format!("'{name}' is neither emoji, ffhq1024, tiny nor a readable prior config")
        })?,
    };
    let m = &mut config.model;
    for (value, emoji) in [
        (&mut m.vocab_size, 512),
        (&mut m.grid_height, 8),
        (&mut m.grid_width, 8),
    ] {
        if *value == 0 {
            *value = emoji;
        }
    }
    if let Some(set) = m.labels.iter().find(|s| s.values == 0) {
        anyhow::bail!(
            "{name}: label set '{}' has no size (its latents give it one): write values = N for the bench",
            set.name
        );
    }
    m.validate()?;
    Ok(config)
}

/// What `sundae bench train` and `sundae bench vqgan-train` report: seconds per training step.
pub struct TrainSteps {
    /// The network trained: "prior" or "VQ-GAN".
    pub network: &'static str,
    pub config: String,
    pub batch: usize,
    /// The prior's unrolled passes per step (none for the VQ-GAN).
    pub unroll_steps: Option<usize>,
    pub parameters: usize,
    /// Every timed step, in order.
    pub seconds: Vec<f64>,
    pub peak_mib: f64,
}

impl fmt::Display for TrainSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (best, median) = best_and_median(&self.seconds);
        let unroll = self
            .unroll_steps
            .map(|t| format!(", T = {t}"))
            .unwrap_or_default();
        write!(
            f,
            "{} training step {}: batch {}{unroll}, {:.1}M parameters, best {:.4} s, median {:.4} s over {} steps ({:.1} items/s), peak {:.0} MiB\n{}",
            self.network,
            self.config,
            self.batch,
            self.parameters as f64 / 1e6,
            best,
            median,
            self.seconds.len(),
            self.batch as f64 / median,
            self.peak_mib,
            serde_json::json!({
                "network": self.network, "config": self.config, "batch": self.batch,
                "unroll_steps": self.unroll_steps, "seconds": self.seconds, "best": best,
                "median": median, "peak_mib": self.peak_mib,
            })
        )
    }
}

/// Times `steps` calls of `step` after one untimed call, from a reset memory peak.
fn time_steps(steps: usize, mut step: impl FnMut() -> Result<()>) -> Result<(Vec<f64>, f64)> {
    crate::bench::reset_peak_memory();
    let mut seconds = Vec::with_capacity(steps);
    for i in 0..=steps {
        let start = std::time::Instant::now();
        step()?;
        if i > 0 {
            seconds.push(start.elapsed().as_secs_f64());
        }
    }
    Ok((seconds, crate::bench::peak_memory_mib()))
}

/// `sundae bench train`: times SUNDAE training steps (corruption, the unrolled passes, backward,
/// AdamW) of a configuration on random grids and labels, after one untimed step.
pub fn bench_train(
    config: &str,
    batch: Option<usize>,
    steps: usize,
    device: &Device,
) -> Result<TrainSteps> {
    use crate::sundae::train::{LabelledBatch, PriorTrainer};
    let mut train = train_config(config)?;
    if let Some(batch) = batch {
        train.train.run.batch_size = batch;
    }
    let (m, b) = (&train.model, train.train.run.batch_size);
    let mut rng = crate::train::SplitMix::new(7);
    let grids =
        crate::tokens::TokenGrids::random(b, m.grid_height, m.grid_width, m.vocab_size, &mut rng);
    let labels = (0..b)
        .flat_map(|_| m.labels.iter().map(|s| s.values))
        .map(|values| rng.below(values) as i64)
        .collect();
    let batch = LabelledBatch { grids, labels };
    let autodiff = device.clone().autodiff();
    let mut trainer = PriorTrainer::new(&train, &autodiff);
    let (seconds, peak_mib) = time_steps(steps, || trainer.step(&batch).map(drop))?;
    Ok(TrainSteps {
        network: "prior",
        config: config.to_string(),
        batch: b,
        unroll_steps: Some(train.train.unroll_steps),
        parameters: train.model.parameter_count(),
        seconds,
        peak_mib,
    })
}

/// `sundae bench vqgan-train`: times VQ-GAN training steps (encode, quantise, decode, the losses its
/// configuration turns on at step 0, backward, Adam) of a configuration (`emoji`, the shipped
/// configs/vqgan-emoji.toml, built in, or a path) on random images, after one untimed step.
pub fn bench_vqgan_train(
    config: &str,
    batch: Option<usize>,
    steps: usize,
    device: &Device,
) -> Result<TrainSteps> {
    use crate::vqgan::train::{VqGanTrainConfig, VqGanTrainer};
    use burn::tensor::{Tensor, TensorData};
    let mut train: VqGanTrainConfig = match config {
        "emoji" => toml::from_str(include_str!("../../configs/vqgan-emoji.toml"))
            .expect("the shipped configuration parses"),
        path => VqGanTrainConfig::read(Path::new(path)).with_context(|| {
            format!("'{path}' is neither emoji nor a readable VQ-GAN training config")
        })?,
    };
    if let Some(batch) = batch {
        train.train.run.batch_size = batch;
    }
    let (m, b) = (&train.model, train.train.run.batch_size);
    let shape = [b, m.in_channels, m.resolution, m.resolution];
    let mut rng = crate::train::SplitMix::new(7);
    let pixels = (0..shape.iter().product::<usize>())
        .map(|_| rng.next_f32() * 2.0 - 1.0)
        .collect::<Vec<f32>>();
    let autodiff = device.clone().autodiff();
    let images = Tensor::<4>::from_data(TensorData::new(pixels, shape), &autodiff);
    let mut trainer = VqGanTrainer::new(&train, &autodiff);
    let parameters = burn::module::Module::num_params(&trainer.model);
    let (seconds, peak_mib) = time_steps(steps, || trainer.step(images.clone()).map(drop))?;
    Ok(TrainSteps {
        network: "VQ-GAN",
        config: config.to_string(),
        batch: b,
        unroll_steps: None,
        parameters,
        seconds,
        peak_mib,
    })
}
