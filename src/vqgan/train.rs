//! VQ-GAN training (SPEC.md 2.3): the step, checkpoints with exact resume, and the loop.

use super::codebook::{CodebookUsage, restart_codes};
use super::discriminator::Discriminator;
use super::loss::{self, Reconstruction};
use super::lpips::Lpips;
use super::{VqGan, VqGanConfig};
use crate::data::{self, Split, images};
use crate::train::fit::{
    Checkpointed, StepOutcome, fit, load_module, load_optimizer, resume_latest, save_module,
    save_optimizer,
};
use crate::train::rng::streams;
use crate::train::settings::{LoopDefaults, LoopSettings};
use crate::train::{BatchStream, RunDir, SplitMix};
use crate::vqgan::batch::images_to_tensor;
use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

/// A training configuration file: the model and how to train it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqGanTrainConfig {
    pub model: VqGanConfig,
    #[serde(default)]
    pub train: VqGanTrainSettings,
}

/// Training hyper-parameters; defaults follow taming's reference where one exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VqGanTrainSettings {
    /// Steps, batch, Adam learning rate for both networks (betas 0.5, 0.9 as in taming) and its
    /// schedule (taming's is constant), seed and cadence.
    #[serde(flatten)]
    pub run: LoopSettings<VqGanLoop>,
    pub reconstruction: Reconstruction,
    /// VGG16 + LPIPS heads (safetensors, torchvision names): enables the perceptual term.
    pub vgg16: Option<std::path::PathBuf>,
    pub perceptual_weight: f64,
    /// Weight of the quantizer's loss; `beta` weighs its codebook term (taming's legacy order).
    pub codebook_weight: f64,
    pub beta: f64,
    /// The discriminator joins at this step; its generator term is scaled by the adaptive weight
    /// times `disc_weight`.
    pub disc_start: u64,
    pub disc_weight: f64,
    pub disc_layers: usize,
    pub disc_channels: usize,
    /// Batches over which codebook usage and perplexity are measured.
    pub usage_window: usize,
    /// Restart codes unused over a whole window with current encoder outputs, every `restart_every` steps.
    pub restart_dead_codes: bool,
    pub restart_every: u64,
    /// Train only post_quant_conv and the decoder: the encoder and codebook, and so the tokens a
    /// trained prior has learnt, stay fixed. For sharpening a finished model's decoder with the
    /// adversarial term (start the run from its bundle with `--init`).
    pub decoder_only: bool,
    pub validation_images: usize,
}

/// The VQ-GAN trainer's loop defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct VqGanLoop;

impl LoopDefaults for VqGanLoop {
    fn defaults() -> LoopSettings<Self> {
        LoopSettings {
            steps: 10_000,
            batch_size: 8,
            learning_rate: 1e-4,
            warmup_steps: 0,
            decay_steps: 0,
            seed: 0,
            log_every: 10,
            checkpoint_every: 500,
            keep_every: 5_000,
            sample_every: 500,
            defaults: PhantomData,
        }
    }
}

impl Default for VqGanTrainSettings {
    fn default() -> Self {
        Self {
            run: VqGanLoop::defaults(),
            reconstruction: Reconstruction::L1,
            vgg16: None,
            perceptual_weight: 1.0,
            codebook_weight: 1.0,
            beta: 0.25,
            disc_start: 10_000,
            disc_weight: 0.8,
            disc_layers: 3,
            disc_channels: 64,
            usage_window: 100,
            restart_dead_codes: false,
            restart_every: 200,
            decoder_only: false,
            validation_images: 8,
        }
    }
}

impl VqGanTrainConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let config: Self = crate::bundle::read_toml(path)?;
        config.model.validate()?;
        if config.train.run.batch_size == 0 {
            bail!("{}: batch_size must be at least 1", path.display());
        }
        if config.train.decoder_only && config.train.restart_dead_codes {
            bail!(
                "{}: decoder_only keeps the codebook fixed; set restart_dead_codes = false",
                path.display()
            );
        }
        Ok(config)
    }
}

/// Loss parts and figures of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: u64,
    pub reconstruction: f64,
    pub quantizer: f64,
    pub generator: f64,
    pub discriminator: f64,
    pub adaptive_weight: f64,
    pub psnr: f64,
    /// Share of codes used over the usage window, and the effective number of codes, both measured
    /// before any dead-code restart of this step.
    pub codebook_usage: f64,
    pub perplexity: f64,
    /// The rate both networks stepped with.
    pub learning_rate: f64,
}

impl StepReport {
    fn is_finite(&self) -> bool {
        [
            self.reconstruction,
            self.quantizer,
            self.generator,
            self.discriminator,
            self.adaptive_weight,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// Everything that training changes, so that a checkpoint holds all of it.
pub struct VqGanTrainer {
    pub settings: VqGanTrainSettings,
    pub model: VqGan,
    pub disc: Discriminator,
    ae_optim: ModuleOptimizer,
    disc_optim: ModuleOptimizer,
    /// Steps completed.
    pub step: u64,
    pub usage: CodebookUsage,
    /// The perceptual measure, when VGG16 weights were given.
    pub lpips: Option<Lpips>,
}

#[derive(Serialize, Deserialize)]
struct TrainerState {
    step: u64,
    usage: CodebookUsage,
}

/// Taming's Adam (betas 0.5, 0.9), shared with the render decoder's trainer.
pub(super) fn adam() -> ModuleOptimizer {
    // PyTorch's Adam epsilon; burn's default (1e-5) differs.
    AdamConfig::new()
        .with_beta_1(0.5)
        .with_beta_2(0.9)
        .with_epsilon(1e-8)
        .init()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f64>()
}

impl VqGanTrainer {
    /// A fresh trainer; `device` must be an autodiff device.
    pub fn new(config: &VqGanTrainConfig, device: &Device) -> Self {
        let settings = config.train.clone();
        let mut trainer = Self {
            model: VqGan::new(&config.model, device),
            disc: Discriminator::new(settings.disc_layers, settings.disc_channels, device),
            ae_optim: adam(),
            disc_optim: adam(),
            step: 0,
            usage: CodebookUsage::new(config.model.n_embed, settings.usage_window),
            lpips: None,
            settings,
        };
        trainer.apply_freezing();
        trainer
    }

    /// Stops gradients to the encoder, quant_conv and codebook when the settings ask for decoder-only
    /// training (a parameter without gradient is left alone by the optimiser).
    pub fn apply_freezing(&mut self) {
        if self.settings.decoder_only {
            let model = self.model.clone();
            self.model = VqGan {
                encoder: model.encoder.no_grad(),
                quant_conv: model.quant_conv.no_grad(),
                quantize: model.quantize.no_grad(),
                ..model
            };
        }
    }

    /// taming's nll: mean pixel distance plus, with LPIPS, the weighted mean perceptual distance.
    fn nll(&self, x: Tensor<4>, xrec: Tensor<4>) -> Tensor<1> {
        let pixels =
            loss::reconstruction(self.settings.reconstruction, x.clone(), xrec.clone()).mean();
        match &self.lpips {
            Some(lpips) => {
                pixels
                    + lpips
                        .forward(x, xrec)
                        .mean()
                        .mul_scalar(self.settings.perceptual_weight)
            }
            None => pixels,
        }
    }

    /// The rate of the coming step (both networks): warmup, then constant, then the final decay.
    pub fn learning_rate(&self) -> f64 {
        self.settings.run.learning_rate_at(self.step)
    }

    /// One optimisation step of the autoencoder and, once active, the discriminator, on images `x`.
    pub fn step(&mut self, x: Tensor<4>) -> Result<StepReport> {
        let s = &self.settings;
        let z = self.model.encode_latents(x.clone());
        let quantized = self.model.quantize.forward_train(z.clone(), s.beta);
        let features = self
            .model
            .decoder
            .features(self.model.post_quant_conv.forward(quantized.latents));
        let xrec = self.model.decoder.conv_out.forward(features.clone());
        let nll = self.nll(x.clone(), xrec.clone());
        let disc_active = self.step >= s.disc_start;

        let mut report = StepReport {
            step: self.step + 1,
            reconstruction: scalar(nll.clone()),
            quantizer: scalar(quantized.loss.clone()),
            generator: 0.0,
            discriminator: 0.0,
            adaptive_weight: 0.0,
            psnr: psnr_of(x.clone(), xrec.clone()),
            codebook_usage: 0.0,
            perplexity: 0.0,
            learning_rate: self.learning_rate(),
        };
        let learning_rate = report.learning_rate;
        let mut ae_loss = nll + quantized.loss.mul_scalar(s.codebook_weight);
        if disc_active {
            let weight = self.adaptive_weight(&x, &xrec, &features);
            let g = loss::generator(self.disc.forward(xrec.clone()));
            report.generator = scalar(g.clone());
            report.adaptive_weight = weight;
            ae_loss = ae_loss + g.mul_scalar(weight);
        }
        if !report.is_finite() {
            bail!("non-finite loss at step {}: {:?}", report.step, report);
        }
        let grads = GradientsParams::from_grads(ae_loss.backward(), &self.model);
        self.model = self.ae_optim.step(learning_rate, self.model.clone(), grads);

        if disc_active {
            let d_loss = loss::hinge_discriminator(
                self.disc.forward(x.detach()),
                self.disc.forward(xrec.detach()),
            );
            report.discriminator = scalar(d_loss.clone());
            if !report.discriminator.is_finite() {
                bail!("non-finite discriminator loss at step {}", report.step);
            }
            let grads = GradientsParams::from_grads(d_loss.backward(), &self.disc);
            self.disc = self
                .disc_optim
                .step(learning_rate, self.disc.clone(), grads);
        }

        let indices: Vec<i64> = quantized.indices.into_data().iter::<i64>().collect();
        self.usage.record(&indices);
        report.codebook_usage = self.usage.fraction_used();
        report.perplexity = self.usage.perplexity();
        self.step += 1;
        if s.restart_dead_codes && self.step.is_multiple_of(s.restart_every.max(1)) {
            self.restart_dead_codes(z);
        }
        Ok(report)
    }

    /// Taming's λ: gradient norms of the reconstruction and generator losses at the decoder's last
    /// layer. Each loss is differentiated on its own small graph from a detached copy of the output,
    /// then carried through the last convolution analytically.
    fn adaptive_weight(&self, x: &Tensor<4>, xrec: &Tensor<4>, features: &Tensor<4>) -> f64 {
        let s = &self.settings;
        let out_grad = |loss_of: &dyn Fn(Tensor<4>) -> Tensor<1>| {
            let leaf = xrec.clone().detach().require_grad();
            let grads = loss_of(leaf.clone()).backward();
            leaf.grad(&grads).expect("the loss depends on the output")
        };
        let nll_out =
            out_grad(&|y| loss::reconstruction(s.reconstruction, x.clone().detach(), y).mean());
        let g_out = out_grad(&|y| loss::generator(self.disc.forward(y)));
        let features = features.clone().detach().inner();
        let weight = self.model.decoder.conv_out.weight.val().detach().inner();
        let nll_grad = loss::last_layer_gradient(features.clone(), weight.clone(), nll_out);
        let g_grad = loss::last_layer_gradient(features, weight, g_out);
        loss::adaptive_weight(nll_grad, g_grad, s.disc_weight)
    }

    /// Replaces codes unused over the whole usage window with encoder outputs of this batch.
    pub fn restart_dead_codes(&mut self, z: Tensor<4>) -> usize {
        let dead = self.usage.dead_codes();
        if dead.is_empty() {
            return 0;
        }
        let [b, e, h, w] = z.dims();
        let candidates: Vec<f32> = z
            .detach()
            .permute([0, 2, 3, 1])
            .reshape([b * h * w, e])
            .into_data()
            .iter::<f32>()
            .collect();
        let weight = &mut self.model.quantize.embedding.weight;
        let device = weight.device();
        let mut codebook: Vec<f32> = weight.val().into_data().iter::<f32>().collect();
        let mut rng = SplitMix::keyed(self.settings.run.seed, streams::CODE_RESTART, self.step);
        restart_codes(&mut codebook, e, &dead, &candidates, |n| rng.below(n));
        let n_embed = codebook.len() / e;
        *weight = weight.clone().map(|_| {
            Tensor::<2>::from_data(TensorData::new(codebook, [n_embed, e]), &device).require_grad()
        });
        self.usage.clear();
        dead.len()
    }
}

impl Checkpointed for VqGanTrainer {
    fn steps_done(&self) -> u64 {
        self.step
    }

    fn save(&self, dir: &Path) -> Result<()> {
        save_module(&self.model, dir, "vqgan.bpk")?;
        save_module(&self.disc, dir, "discriminator.bpk")?;
        save_optimizer(&self.ae_optim, dir, "vqgan-optim.bpk")?;
        save_optimizer(&self.disc_optim, dir, "discriminator-optim.bpk")?;
        let state = TrainerState {
            step: self.step,
            usage: self.usage.clone(),
        };
        crate::train::checkpoint::write_state(dir, &state)
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        load_module(&mut self.model, dir, "vqgan.bpk")?;
        load_module(&mut self.disc, dir, "discriminator.bpk")?;
        self.ae_optim = load_optimizer(adam(), dir, "vqgan-optim.bpk")?;
        self.disc_optim = load_optimizer(adam(), dir, "discriminator-optim.bpk")?;
        let state: TrainerState = crate::train::checkpoint::read_state(dir)?;
        self.step = state.step;
        self.usage = state.usage;
        self.apply_freezing();
        Ok(())
    }
}

/// PSNR in dB of a batch, outputs clamped to the image range.
fn psnr_of(x: Tensor<4>, xrec: Tensor<4>) -> f64 {
    let mse = (x.detach() - xrec.detach().clamp(-1.0, 1.0))
        .square()
        .mean()
        .into_scalar::<f64>();
    10.0 * (4.0 / mse.max(1e-12)).log10()
}

/// `sundae vqgan train`: trains on `data` (a folder or `emoji`) into the run directory; a new run
/// starts from the weights of the VQ-GAN bundle `init` when one is given.
pub fn train(
    data_source: &str,
    config_path: Option<&Path>,
    run_path: &Path,
    resume: bool,
    init: Option<&Path>,
    device: &Device,
) -> Result<()> {
    let run = RunDir::open(run_path, resume)?;
    let config = crate::train::config::run_config(
        &run,
        config_path,
        resume,
        VqGanTrainConfig::read,
        |_| Ok(()),
    )?;
    let s = config.train.clone();
    let resolution = config.model.resolution;
    let train_set = data::load(data_source, resolution, Split::Train)?;
    let validation = validation_images(data_source, resolution, s.validation_images, &train_set)?;
    let autodiff = device.clone().autodiff();
    // Seeded so that a run is reproducible, including one killed before its first checkpoint.
    autodiff.seed(s.run.seed);
    let mut trainer = VqGanTrainer::new(&config, &autodiff);
    if let (false, Some(bundle)) = (resume, init) {
        let (bundle_config, model) = crate::bundle::load_vqgan(bundle, &autodiff)?;
        if bundle_config != config.model {
            bail!(
                "--init {}: its architecture differs from the configuration's [model]",
                bundle.display()
            );
        }
        trainer.model = model;
        trainer.apply_freezing();
    }
    eprintln!(
        "training on {} images at {resolution}x{resolution}",
        train_set.samples.len()
    );
    match &s.vgg16 {
        Some(path) => trainer.lpips = Some(Lpips::load(path, &autodiff)?),
        None => eprintln!(
            "no VGG16 weights given (train.vgg16): training without the perceptual (LPIPS) term"
        ),
    }
    resume_latest(&run, &mut trainer)?;
    let pixels: Arc<Vec<Vec<f32>>> =
        Arc::new(train_set.samples.into_iter().map(|s| s.pixels).collect());
    let batches = BatchStream::new(
        pixels.clone(),
        pixels.len(),
        s.run.batch_size,
        s.run.seed,
        trainer.step,
        |data: &Vec<Vec<f32>>, idx| idx.iter().map(|&i| data[i].clone()).collect::<Vec<_>>(),
    );
    let cadence = s.run.cadence(s.run.batch_size);
    let samples_dir = run.samples();
    fit(
        "vqgan",
        &run,
        &mut trainer,
        cadence,
        batches,
        |trainer, batch| {
            let report = trainer.step(images_to_tensor(&batch, resolution, &autodiff))?;
            let metrics = serde_json::to_value(&report)?;
            let status = format!("loss {:.4} psnr {:.2}", report.reconstruction, report.psnr);
            Ok(StepOutcome { metrics, status })
        },
        |trainer, step| {
            let path = samples_dir.join(format!("step-{step:08}.png"));
            let val_psnr = write_samples(&trainer.model, &validation, resolution, &path, device)?;
            Ok(serde_json::json!({ "val_psnr": val_psnr }))
        },
    )
}

/// Fixed images shown in the sample grids and measured for `val_psnr`: `count` images evenly spaced
/// through the validation split of the emoji sets (its first entries are all flags, the hardest to
/// reconstruct, so a prefix would misstate the split), or evenly spaced through a folder's images.
fn validation_images(
    source: &str,
    resolution: usize,
    count: usize,
    train: &data::Loaded,
) -> Result<Vec<Vec<f32>>> {
    let samples = if data::has_splits(source) {
        data::load(source, resolution, Split::Validation)?.samples
    } else {
        train.samples.clone()
    };
    let picked = data::evenly_spaced(samples.len(), count.max(1));
    Ok(picked
        .into_iter()
        .map(|i| samples[i].pixels.clone())
        .collect())
}

/// Reconstructs the validation images, writes input | reconstruction pairs, returns their PSNR.
fn write_samples(
    model: &VqGan,
    validation: &[Vec<f32>],
    resolution: usize,
    path: &Path,
    device: &Device,
) -> Result<f64> {
    let model = model.valid();
    let x = images_to_tensor(validation, resolution, device);
    let xrec = model.decode(model.encode(x.clone()));
    let psnr = psnr_of(x, xrec.clone());
    let values: Vec<f32> = xrec.into_data().iter::<f32>().collect();
    let plane = 3 * resolution * resolution;
    let mut tiles = Vec::new();
    for (i, input) in validation.iter().enumerate() {
        tiles.push(images::to_rgb8(input, resolution, resolution));
        tiles.push(images::to_rgb8(
            &values[i * plane..(i + 1) * plane],
            resolution,
            resolution,
        ));
    }
    images::save(&images::grid(&tiles, 4), path)?;
    Ok(psnr)
}

/// Writes the latest checkpoint's VQ-GAN of a run as an inference bundle.
pub fn export_bundle(run_path: &Path, out: &Path, device: &Device) -> Result<()> {
    let run = RunDir::at(run_path);
    let config = VqGanTrainConfig::read(&run.config_path())?;
    let mut trainer = VqGanTrainer::new(&config, &device.clone().autodiff());
    trainer.load(&run.latest_required()?)?;
    crate::bundle::save_vqgan(
        out,
        &config.model,
        &trainer.model.valid(),
        crate::bundle::Storage::F32,
    )
}
