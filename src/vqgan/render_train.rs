//! Training a render decoder (see `render.rs`): the tokenizer (encoder and codebook) stays fixed, so
//! the tokens a trained prior makes keep their meaning. Inputs are the token grids of the training
//! drawings encoded at the tokenizer's size; targets are the same drawings rendered from their SVG at
//! the decoder's size, drawn afresh for every batch (a data set at 1024 pixels would not fit in memory).

use super::batch::{decode_grids, encode_images, tokens_to_tensor};
use super::loss::{self, Reconstruction};
use super::render::{RenderDecoder, check_fits, extra_levels};
use super::train::adam;
use super::{VqGan, VqGanConfig};
use crate::data::{self, Split, images};
use crate::tokens::TokenGrids;
use crate::train::fit::{
    Checkpointed, StepOutcome, fit, load_module, load_optimizer, resume_latest, save_module,
    save_optimizer,
};
use crate::train::settings::{LoopDefaults, LoopSettings};
use crate::train::{BatchStream, RunDir};
use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

/// A render decoder's training configuration: its architecture (`resolution` = the render size) and
/// how to train it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderTrainConfig {
    pub model: VqGanConfig,
    #[serde(default)]
    pub train: RenderTrainSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderTrainSettings {
    #[serde(flatten)]
    pub run: LoopSettings<RenderLoop>,
    pub reconstruction: Reconstruction,
    /// Held-out drawings shown in the sample grids and measured for `val_psnr`.
    pub validation_images: usize,
    /// Train only the levels below this one (the largest, newest ones) and the output layers: the
    /// levels from it up, `mid`, `conv_in` and `post_quant_conv` stay as `--init` gave them. For a
    /// 1024 decoder grown from a 256 one: the forward pass through the frozen part records no
    /// gradients, so a step costs little more than the new levels do.
    pub freeze_levels_from: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RenderLoop;

impl LoopDefaults for RenderLoop {
    fn defaults() -> LoopSettings<Self> {
        LoopSettings {
            steps: 2_000,
            batch_size: 8,
            learning_rate: 5e-4,
            warmup_steps: 50,
            decay_steps: 500,
            seed: 0,
            log_every: 10,
            checkpoint_every: 100,
            keep_every: 1_000,
            sample_every: 250,
            defaults: PhantomData,
        }
    }
}

impl Default for RenderTrainSettings {
    fn default() -> Self {
        Self {
            run: RenderLoop::defaults(),
            reconstruction: Reconstruction::L1,
            validation_images: 8,
            freeze_levels_from: None,
        }
    }
}

impl RenderTrainConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let config: Self = crate::bundle::read_toml(path)?;
        config.model.validate()?;
        if let Some(from) = config.train.freeze_levels_from
            && (from == 0 || from >= config.model.levels())
        {
            bail!(
                "{}: freeze_levels_from must lie in 1..{} (the decoder's levels)",
                path.display(),
                config.model.levels()
            );
        }
        if config.train.run.batch_size == 0 {
            bail!("{}: batch_size must be at least 1", path.display());
        }
        Ok(config)
    }
}

pub struct RenderTrainer {
    pub settings: RenderTrainSettings,
    pub model: RenderDecoder,
    optim: ModuleOptimizer,
    pub step: u64,
}

#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: u64,
}

/// One batch: the codes' latents `[B, e, h, w]` (from the fixed codebook) and the targets' CHW pixels.
pub struct Batch {
    latents: Vec<f32>,
    latent_shape: [usize; 4],
    targets: Vec<f32>,
}

impl RenderTrainer {
    pub fn new(config: &RenderTrainConfig, device: &Device) -> Self {
        let mut trainer = Self {
            settings: config.train.clone(),
            model: RenderDecoder::new(&config.model, device),
            optim: adam(),
            step: 0,
        };
        trainer.apply_freezing();
        trainer
    }

    /// Stops gradients to the frozen part (`freeze_levels_from`); an optimiser leaves a parameter
    /// without gradient alone.
    pub fn apply_freezing(&mut self) {
        let Some(from) = self.settings.freeze_levels_from else {
            return;
        };
        let model = self.model.clone();
        let mut decoder = model.decoder;
        decoder.conv_in = decoder.conv_in.no_grad();
        decoder.mid = decoder.mid.no_grad();
        decoder.up = decoder
            .up
            .into_iter()
            .enumerate()
            .map(|(i, level)| if i >= from { level.no_grad() } else { level })
            .collect();
        self.model = RenderDecoder {
            post_quant_conv: model.post_quant_conv.no_grad(),
            decoder,
        };
    }

    /// One optimisation step; returns (loss, PSNR in dB of the batch).
    pub fn step(&mut self, batch: Batch, resolution: usize, device: &Device) -> Result<(f64, f64)> {
        let b = batch.latent_shape[0];
        let latents =
            Tensor::<4>::from_data(TensorData::new(batch.latents, batch.latent_shape), device);
        let target = Tensor::<4>::from_data(
            TensorData::new(batch.targets, [b, 3, resolution, resolution]),
            device,
        );
        let output = self.model.decode_latents(latents);
        let loss =
            loss::reconstruction(self.settings.reconstruction, target.clone(), output.clone())
                .mean();
        let value = loss.clone().into_scalar::<f64>();
        if !value.is_finite() {
            bail!("non-finite loss at step {}", self.step + 1);
        }
        let mse = (target.detach() - output.detach().clamp(-1.0, 1.0))
            .square()
            .mean()
            .into_scalar::<f64>();
        let rate = self.settings.run.learning_rate_at(self.step);
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(rate, self.model.clone(), grads);
        self.step += 1;
        Ok((value, 10.0 * (4.0 / mse.max(1e-12)).log10()))
    }
}

impl Checkpointed for RenderTrainer {
    fn steps_done(&self) -> u64 {
        self.step
    }

    fn save(&self, dir: &Path) -> Result<()> {
        save_module(&self.model, dir, "decoder.bpk")?;
        save_optimizer(&self.optim, dir, "decoder-optim.bpk")?;
        crate::train::checkpoint::write_state(dir, &TrainerState { step: self.step })
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        load_module(&mut self.model, dir, "decoder.bpk")?;
        self.optim = load_optimizer(adam(), dir, "decoder-optim.bpk")?;
        self.step = crate::train::checkpoint::read_state::<TrainerState>(dir)?.step;
        self.apply_freezing();
        Ok(())
    }
}

/// Drawings as the decoder sees them: token grids of the tokenizer-size images, and the SVG to draw
/// each target from.
pub struct RenderSet {
    pub names: Vec<String>,
    pub tokens: TokenGrids,
    pub svgs: Vec<Arc<str>>,
}

impl RenderSet {
    /// Encodes the `split` of `source` with the tokenizer; `max` spreads a subset evenly through it.
    pub fn encode(
        source: &str,
        split: Split,
        max: Option<usize>,
        tokenizer_config: &VqGanConfig,
        tokenizer: &VqGan,
        device: &Device,
    ) -> Result<Self> {
        let r = tokenizer_config.resolution;
        let drawings = data::drawings(source, split)?;
        let loaded = data::load(source, r, split)?;
        let picked = data::evenly_spaced(loaded.samples.len(), max.unwrap_or(usize::MAX));
        let mut names = Vec::with_capacity(picked.len());
        let mut pixels = Vec::with_capacity(picked.len());
        let mut svgs = Vec::with_capacity(picked.len());
        for i in picked {
            let sample = &loaded.samples[i];
            let Some(svg) = drawings.get(&sample.name) else {
                continue;
            };
            names.push(sample.name.clone());
            pixels.push(sample.pixels.clone());
            svgs.push(svg.clone());
        }
        if names.is_empty() {
            bail!("no drawing of '{source}' could be read");
        }
        let tokens = encode_images(tokenizer, &pixels, r, 32, device);
        Ok(Self {
            names,
            tokens,
            svgs,
        })
    }

    /// As [`RenderSet::encode`] for the whole split, reusing the grids a run stored in `cache` (the
    /// drawings' names and their token grids) when they are there, storing them when not: encoding
    /// some 14,000 drawings takes minutes, and a resumed run sees the same grids. `tokenizer_id`
    /// (the hash of its weights) is stored with them: grids of another tokenizer are refused, since
    /// a decoder trained on one tokenizer's codes cannot continue on another's.
    pub fn encode_cached(
        source: &str,
        split: Split,
        cache: &Path,
        tokenizer_id: &str,
        tokenizer_config: &VqGanConfig,
        tokenizer: &VqGan,
        device: &Device,
    ) -> Result<Self> {
        let (names_path, tokens_path) = (cache.join("drawings.txt"), cache.join("tokens.npy"));
        let id_path = cache.join(TOKENIZER_ID);
        check_tokenizer(cache, tokenizer_id)?;
        if names_path.is_file() && tokens_path.is_file() {
            let names: Vec<String> = std::fs::read_to_string(&names_path)?
                .lines()
                .map(str::to_string)
                .collect();
            let tokens = crate::tokens::read_tokens(&tokens_path)?;
            let drawings = data::drawings(source, split)?;
            let svgs: Option<Vec<Arc<str>>> =
                names.iter().map(|n| drawings.get(n).cloned()).collect();
            if let Some(svgs) = svgs.filter(|_| tokens.batch() == names.len()) {
                crate::bundle::write_atomic(&id_path, tokenizer_id.as_bytes())?;
                return Ok(Self {
                    names,
                    tokens,
                    svgs,
                });
            }
            eprintln!("the stored grids do not match '{source}': encoding again");
        }
        let set = Self::encode(source, split, None, tokenizer_config, tokenizer, device)?;
        std::fs::create_dir_all(cache)?;
        crate::tokens::write_tokens(&tokens_path, &set.tokens)?;
        crate::bundle::write_atomic(&names_path, set.names.join("\n").as_bytes())?;
        crate::bundle::write_atomic(&id_path, tokenizer_id.as_bytes())?;
        Ok(set)
    }

    /// Drawing `i` at `resolution` as CHW pixels in [-1, 1] (white where it cannot be drawn).
    pub fn target(&self, i: usize, resolution: usize) -> Vec<f32> {
        match data::svg::render(&self.svgs[i], resolution) {
            Some(image) => images::prepare(&image, resolution),
            None => vec![1.0; 3 * resolution * resolution],
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Where a run's stored grids name the tokenizer that made them.
const TOKENIZER_ID: &str = "tokenizer.sha256";

/// Refuses a tokenizer other than the one whose grids `cache` holds (none stored: any).
fn check_tokenizer(cache: &Path, tokenizer_id: &str) -> Result<()> {
    if let Ok(stored) = std::fs::read_to_string(cache.join(TOKENIZER_ID))
        && stored.trim() != tokenizer_id
    {
        bail!(
            "this run was trained on the codes of another tokenizer than --vqgan gives (its weights differ); resume it with that one"
        );
    }
    Ok(())
}

/// The quantised latents of `grids`, as host values, from the fixed codebook.
fn latents_of(tokenizer: &VqGan, grids: &TokenGrids, device: &Device) -> (Vec<f32>, [usize; 4]) {
    let latents = tokenizer.quantize.lookup(tokens_to_tensor(grids, device));
    let shape = latents.dims();
    (latents.into_data().iter::<f32>().collect(), shape)
}

/// What `sundae vqgan train-decoder` is asked.
pub struct RenderTrainRequest<'a> {
    pub data: &'a str,
    pub tokenizer: &'a Path,
    pub config: Option<&'a Path>,
    pub run: &'a Path,
    pub resume: bool,
    /// A decoder folder (`decoders/<size>` of a bundle) to start a new run from; the tokenizer's
    /// own decoder when None. Tensors are matched level by level from the top.
    pub init: Option<&'a Path>,
}

/// `sundae vqgan train-decoder`: trains a render decoder for the tokenizer of `r.tokenizer`.
pub fn train(r: &RenderTrainRequest, device: &Device) -> Result<()> {
    let run = RunDir::open(r.run, r.resume)?;
    let config = crate::train::config::run_config(
        &run,
        r.config,
        r.resume,
        RenderTrainConfig::read,
        |_| Ok(()),
    )?;
    let (tokenizer_config, tokenizer) = crate::bundle::load_vqgan(r.tokenizer, device)?;
    check_fits(&config.model, &tokenizer_config)?;
    let tokenizer_id =
        crate::data::latents::file_hash(&r.tokenizer.join(crate::bundle::VQGAN_WEIGHTS))?;
    let grids_cache = r.run.join("train-grids");
    check_tokenizer(&grids_cache, &tokenizer_id)?;
    let s = config.train.clone();
    let resolution = config.model.resolution;
    let autodiff = device.clone().autodiff();
    autodiff.seed(s.run.seed);
    let mut trainer = RenderTrainer::new(&config, &autodiff);
    if !r.resume {
        let (source, shift) = match r.init {
            Some(dir) => {
                let other: VqGanConfig =
                    crate::bundle::read_toml(&dir.join(crate::bundle::VQGAN_CONFIG))?;
                check_fits(&other, &tokenizer_config)?;
                let model = crate::bundle::load_render_decoder_dir(dir, &other, device)?;
                (model, extra_levels(&config.model, &other))
            }
            None => (
                RenderDecoder::native(&tokenizer),
                extra_levels(&config.model, &tokenizer_config),
            ),
        };
        let (copied, total) = crate::bundle::init_render_from(&mut trainer.model, &source, shift)?;
        eprintln!("started from {copied} of the decoder's {total} tensors");
        trainer.apply_freezing();
    }
    resume_latest(&run, &mut trainer)?;
    let train_set = RenderSet::encode_cached(
        r.data,
        Split::Train,
        &grids_cache,
        &tokenizer_id,
        &tokenizer_config,
        &tokenizer,
        device,
    )?;
    let validation = RenderSet::encode(
        r.data,
        Split::Validation,
        Some(s.validation_images.max(1)),
        &tokenizer_config,
        &tokenizer,
        device,
    )?;
    eprintln!(
        "training a {resolution}x{resolution} decoder on {} drawings",
        train_set.len()
    );
    let data = Arc::new((train_set, tokenizer.clone(), device.clone()));
    let batches = BatchStream::new(
        data.clone(),
        data.0.len(),
        s.run.batch_size,
        s.run.seed,
        trainer.step,
        move |data: &(RenderSet, VqGan, Device), idx| {
            use rayon::prelude::*;
            let (set, tokenizer, device) = data;
            let grids = TokenGrids::from_picks(&set.tokens, idx);
            let (latents, latent_shape) = latents_of(tokenizer, &grids, device);
            let targets: Vec<Vec<f32>> =
                idx.par_iter().map(|&i| set.target(i, resolution)).collect();
            Batch {
                latents,
                latent_shape,
                targets: targets.concat(),
            }
        },
    );
    let cadence = s.run.cadence(s.run.batch_size);
    let samples_dir = run.samples();
    fit(
        "decoder",
        &run,
        &mut trainer,
        cadence,
        batches,
        |trainer, batch| {
            let (loss, psnr) = trainer.step(batch, resolution, &autodiff)?;
            Ok(StepOutcome {
                metrics: serde_json::json!({
                    "step": trainer.step,
                    "loss": loss,
                    "psnr": psnr,
                    "learning_rate": trainer.settings.run.learning_rate_at(trainer.step - 1),
                }),
                status: format!("loss {loss:.4} psnr {psnr:.2}"),
            })
        },
        |trainer, step| {
            let path = samples_dir.join(format!("step-{step:08}.png"));
            let figures = compare(
                &trainer.model.valid(),
                &tokenizer,
                &validation,
                resolution,
                Some(&path),
                device,
            )?;
            Ok(serde_json::json!({
                "val_psnr": figures.decoder_psnr,
                "val_psnr_bicubic": figures.bicubic_psnr,
            }))
        },
    )
}

/// How a render decoder compares with enlarging the tokenizer's own decode, on drawings whose true
/// rendering at the render size is known.
pub struct Comparison {
    pub decoder_psnr: f64,
    pub bicubic_psnr: f64,
    /// The true drawing at the tokenizer's size, enlarged the same way: what resolution alone costs,
    /// with no token error (a bound for the baseline, not for a decoder).
    pub truth_bicubic_psnr: f64,
    pub images: usize,
}

/// Decodes `set` at the render size and, as the baseline, at the tokenizer's size enlarged by
/// bicubic (Catmull-Rom) interpolation; PSNR of each against the true rendering. With `grid`, writes
/// rows of truth | render decoder | enlarged native decode.
pub fn compare(
    decoder: &RenderDecoder,
    tokenizer: &VqGan,
    set: &RenderSet,
    resolution: usize,
    grid: Option<&Path>,
    device: &Device,
) -> Result<Comparison> {
    let (rendered, [_, _, h, w]) =
        super::batch::render_grids(&tokenizer.quantize, decoder, &set.tokens, 8, device);
    let (native, [_, _, nh, nw]) = decode_grids(tokenizer, &set.tokens, 32, device);
    let (mut decoder_sum, mut bicubic_sum, mut truth_sum) = (0.0, 0.0, 0.0);
    let enlarge = |small: &image::RgbImage| {
        image::imageops::resize(
            small,
            w as u32,
            h as u32,
            image::imageops::FilterType::CatmullRom,
        )
    };
    let mut tiles = Vec::new();
    for i in 0..set.len() {
        let truth = set.target(i, resolution);
        let out = &rendered[i * 3 * h * w..(i + 1) * 3 * h * w];
        let small = images::to_rgb8(&native[i * 3 * nh * nw..(i + 1) * 3 * nh * nw], nh, nw);
        let enlarged = enlarge(&small);
        decoder_sum += images::psnr(&truth, out);
        bicubic_sum += images::psnr(&truth, &images::to_chw(&enlarged));
        let small_truth = images::to_rgb8(&set.target(i, nh), nh, nw);
        truth_sum += images::psnr(&truth, &images::to_chw(&enlarge(&small_truth)));
        if grid.is_some() {
            tiles.push(images::to_rgb8(&truth, h, w));
            tiles.push(images::to_rgb8(out, h, w));
            tiles.push(enlarged);
        }
    }
    if let Some(path) = grid {
        images::save(&images::grid(&tiles, 3), path)?;
    }
    let n = set.len() as f64;
    Ok(Comparison {
        decoder_psnr: decoder_sum / n,
        bicubic_psnr: bicubic_sum / n,
        truth_bicubic_psnr: truth_sum / n,
        images: set.len(),
    })
}

/// The latest checkpoint's decoder of a run, as a decoder folder (`vqgan.toml` + `decoder.safetensors`).
pub fn export_decoder(run_path: &Path, out: &Path, device: &Device) -> Result<VqGanConfig> {
    let run = RunDir::at(run_path);
    let config = RenderTrainConfig::read(&run.config_path())?;
    let mut trainer = RenderTrainer::new(&config, &device.clone().autodiff());
    trainer.load(&run.latest_required()?)?;
    crate::bundle::save_render_decoder(
        out,
        &config.model,
        &trainer.model.valid(),
        crate::bundle::Storage::F32,
    )?;
    Ok(config.model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    #[test]
    fn a_step_moves_only_the_levels_below_the_frozen_ones() {
        let model = VqGanConfig {
            resolution: 32,
            ch_mult: vec![1, 1, 2],
            ..VqGanConfig::tiny()
        };
        let mut train = RenderTrainSettings::default();
        train.run.warmup_steps = 0;
        train.freeze_levels_from = Some(1);
        let config = RenderTrainConfig { model, train };
        let device = crate::device::cpu().autodiff();
        let mut trainer = RenderTrainer::new(&config, &device);
        let frozen = values(trainer.model.decoder.up[1].block[0].conv1.weight.val());
        let mid = values(trainer.model.decoder.mid.block_1.conv1.weight.val());
        let trained = values(trainer.model.decoder.up[0].block[0].conv1.weight.val());
        let batch = Batch {
            latents: (0..2 * 8 * 64)
                .map(|i| (i % 7) as f32 / 7.0 - 0.5)
                .collect(),
            latent_shape: [2, 8, 8, 8],
            targets: (0..2 * 3 * 32 * 32).map(|i| (i % 5) as f32 / 5.0).collect(),
        };
        trainer.step(batch, 32, &device).unwrap();
        let m = &trainer.model.decoder;
        assert_eq!(values(m.up[1].block[0].conv1.weight.val()), frozen);
        assert_eq!(values(m.mid.block_1.conv1.weight.val()), mid);
        assert_ne!(values(m.up[0].block[0].conv1.weight.val()), trained);
    }
}
