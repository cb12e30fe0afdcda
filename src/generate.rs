//! Generation with a generator bundle: the sampler request resolved against the bundle, canvases,
//! sampling and inpainting jobs, and the files they write.

use crate::bundle;
use crate::data::images;
use crate::hourglass::Prior;
use crate::sundae::mask::{keep_pixels, keep_tokens};
use crate::sundae::sample::{SampleSettings, sample};
use crate::tokens::TokenGrids;
use crate::train::SplitMix;
use crate::train::rng::streams;
use crate::vqgan::batch::{decode_grids, render_grids};
use crate::vqgan::render::RenderDecoder;
use crate::vqgan::{VqGan, VqGanConfig};
use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The sampler as a user asks for it: what is None falls back on the bundle's `sampling.toml`, then
/// on the built-in defaults (`sample::DEFAULT_*`). This is the one place the three meet.
#[derive(Debug, Clone)]
pub struct SamplerRequest {
    pub steps: Option<usize>,
    /// `A` or `A:B`.
    pub temperature: Option<String>,
    pub proportion: Option<String>,
    pub top_k: Option<usize>,
    pub min_steps: usize,
    pub early_stop: bool,
    pub exclude_noise: bool,
    pub seed: u64,
    /// `SET=VALUE` requests.
    pub labels: Vec<String>,
    /// Label sets whose value each image draws at random.
    pub random_labels: Vec<String>,
    /// With `random_labels` empty, draw the bundle's default random sets (`sampling.toml`'s
    /// `random_labels`, less those `labels` fix): `sample`'s behaviour; inpainting and `pairs` say
    /// what to draw themselves.
    pub bundle_random_labels: bool,
    pub guidance: f64,
}

impl SamplerRequest {
    /// The settings for the generator bundle in `model_dir`, every value checked.
    pub fn resolve(&self, model_dir: &Path) -> Result<SampleSettings> {
        use crate::sundae::sample::{
            DEFAULT_PROPORTION, DEFAULT_STEPS, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, Schedule,
        };
        let bundle = bundle::read_sampling_defaults(model_dir)?;
        let schedule = |flag: &Option<String>,
                        from_bundle: Option<String>,
                        default: Schedule,
                        name| {
            match flag.clone().or(from_bundle) {
                Some(text) => Schedule::parse(&text).map_err(|e| anyhow::anyhow!("--{name}: {e}")),
                None => Ok(default),
            }
        };
        let steps = self.steps.or(bundle.steps).unwrap_or(DEFAULT_STEPS);
        let temperature = schedule(
            &self.temperature,
            bundle.temperature,
            DEFAULT_TEMPERATURE,
            "temperature",
        )?;
        let proportion = schedule(
            &self.proportion,
            bundle.proportion,
            DEFAULT_PROPORTION,
            "proportion",
        )?;
        if temperature.start <= 0.0 || temperature.end <= 0.0 {
            bail!("--temperature must be positive");
        }
        if !(0.0..=1.0).contains(&proportion.start) || !(0.0..=1.0).contains(&proportion.end) {
            bail!("--proportion must lie in [0, 1]");
        }
        if proportion.start == 0.0 && proportion.end == 0.0 {
            bail!("--proportion 0 updates no token: the output would be the random start");
        }
        if steps == 0 {
            bail!("--steps must be at least 1");
        }
        if !self.guidance.is_finite() {
            bail!("--guidance must be a finite number");
        }
        let label_sets = crate::data::labels::LabelSets::read(model_dir)?;
        let labels = label_sets.parse_requests(&self.labels)?;
        let random_sets = match bundle.random_labels {
            Some(defaults) if self.bundle_random_labels && self.random_labels.is_empty() => {
                label_sets.default_random(&defaults, &labels).map_err(|e| {
                    let file = model_dir.join(bundle::SAMPLING);
                    anyhow::anyhow!("{}: random_labels: {e}", file.display())
                })?
            }
            _ => label_sets.parse_random(&self.random_labels, &labels)?,
        };
        Ok(SampleSettings {
            steps,
            temperature,
            proportion,
            min_steps: self.min_steps,
            early_stop: self.early_stop,
            exclude_noise: self.exclude_noise,
            top_k: self.top_k.or(bundle.top_k).unwrap_or(DEFAULT_TOP_K),
            seed: self.seed,
            random_sets,
            labels,
            null_labels: label_sets.nulls(),
            guidance: self.guidance,
        })
    }
}

/// Where and how to write generated images.
pub struct Outputs {
    /// One grid of all images.
    pub grid: PathBuf,
    /// Also one PNG per image here.
    pub dir: Option<PathBuf>,
    /// The decoded intermediate states of the first image, as a strip.
    pub steps_strip: Option<PathBuf>,
    /// The final token grids as an int64 `.npy` `[B, h, w]`.
    pub tokens: Option<PathBuf>,
    /// Replace files that exist.
    pub force: bool,
}

impl Outputs {
    /// No files: the images stay in memory (for `sundae score` and the server).
    pub fn in_memory() -> Self {
        Self {
            grid: PathBuf::new(),
            dir: None,
            steps_strip: None,
            tokens: None,
            force: false,
        }
    }

    /// Whether the job writes files at all (see [`Outputs::in_memory`]).
    fn writes_files(&self) -> bool {
        !self.grid.as_os_str().is_empty()
    }

    /// Checks every output before any work: each file new (unless `force`), in a folder that exists,
    /// of a format it can be; the per-image folder not a file and free of the `count` names (and of
    /// `LABELS_FILE` when `with_labels`).
    pub fn check(&self, count: usize, with_labels: bool) -> Result<()> {
        use crate::files::{check_new_file, check_output_folder};
        check_new_file(&self.grid, self.force, &["png"])?;
        if let Some(strip) = &self.steps_strip {
            check_new_file(strip, self.force, &["png"])?;
        }
        if let Some(tokens) = &self.tokens {
            check_new_file(tokens, self.force, &["npy"])?;
        }
        if let Some(dir) = &self.dir {
            let mut names: Vec<String> = (0..count).map(tile_name).collect();
            if with_labels {
                names.push(LABELS_FILE.to_string());
            }
            check_output_folder(dir, self.force, &names)?;
        }
        Ok(())
    }
}

/// The file name of generated image `i` in `--out-dir`.
fn tile_name(i: usize) -> String {
    format!("{i:04}.png")
}

/// The file in `--out-dir` that names each image's labels when some were drawn at random
/// (`--random-label`): which emoji and style an image was asked to be.
pub const LABELS_FILE: &str = "labels.json";

/// The grids of one batch after one sampler step, as a live view sees them.
pub struct StepView<'a> {
    /// Index of the batch's first image among all the job's images.
    pub first: usize,
    /// The step just done (0-based) and the steps asked for.
    pub step: usize,
    pub steps: usize,
    pub grids: &'a TokenGrids,
}

/// Sees every step of a generation; `Break` cancels it (the generation ends with `Cancelled`).
pub type Observer<'a> = &'a mut dyn FnMut(StepView) -> std::ops::ControlFlow<()>;

/// A generation stopped by its observer.
#[derive(Debug)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled")
    }
}

impl std::error::Error for Cancelled {}

/// What a generation made: the images (inpaintings with the original pasted back when asked), the
/// final token grids, and the report.
pub struct Generation {
    pub tiles: Vec<RgbImage>,
    pub tokens: TokenGrids,
    /// Each image's label indices, one per label set, when some were drawn at random
    /// (`SampleSettings::random_sets`); empty otherwise.
    pub labels: Vec<Vec<i64>>,
    pub report: Report,
}

/// An observer that watches nothing.
pub fn unobserved(_: StepView) -> std::ops::ControlFlow<()> {
    std::ops::ControlFlow::Continue(())
}

/// What a generation run reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub images: usize,
    /// Steps run, averaged over chunks (early exit makes it smaller than `steps`).
    pub steps_taken: f64,
    pub steps: usize,
    pub prior_seconds_per_image: f64,
    pub decoder_seconds_per_image: f64,
}

impl Report {
    pub fn line(&self) -> String {
        format!(
            "{} image{}, {:.1} of {} steps, {:.3} s/image (prior {:.3}, decoder {:.3})",
            self.images,
            if self.images == 1 { "" } else { "s" },
            self.steps_taken,
            self.steps,
            self.prior_seconds_per_image + self.decoder_seconds_per_image,
            self.prior_seconds_per_image,
            self.decoder_seconds_per_image
        )
    }
}

/// The canvas in pixels: the model's resolution unless `width`/`height` ask for another, which must
/// split into whole tokens that the prior's levels can shorten.
pub fn canvas(
    vq: &VqGanConfig,
    prior: &crate::hourglass::PriorConfig,
    width: Option<usize>,
    height: Option<usize>,
) -> Result<(usize, usize)> {
    let f = vq.downsampling();
    let (w, h) = (
        width.unwrap_or(vq.resolution),
        height.unwrap_or(vq.resolution),
    );
    if w == 0 || h == 0 {
        bail!("--width and --height must be positive (a {w}x{h} canvas was asked for)");
    }
    if w % f != 0 || h % f != 0 {
        bail!("a {w}x{h} canvas is not a multiple of the VQ-GAN's {f}-pixel tokens");
    }
    prior.check_grid(h / f, w / f)?;
    Ok((w, h))
}

/// What a generation request holds in memory at once, to refuse one the machine cannot hold before
/// allocating any of it.
pub struct MemoryNeed {
    pub images: usize,
    /// Images denoised at once.
    pub batch: usize,
    /// Tokens per image and pixels per image.
    pub tokens: usize,
    pub pixels: usize,
    pub vocab: usize,
    pub heads: usize,
}

impl MemoryNeed {
    /// A rough upper estimate in bytes: per image its tokens' host state and its 8-bit tiles; per
    /// batch the logits with the sampler's copies of them, full-resolution attention scores, and the
    /// decoder's float activations.
    pub fn bytes(&self) -> f64 {
        let (images, batch) = (self.images as f64, self.batch as f64);
        let (tokens, pixels) = (self.tokens as f64, self.pixels as f64);
        let per_image = tokens * 32.0 + pixels * 3.0;
        let per_batch = batch
            * (tokens * self.vocab as f64 * 4.0 * 8.0
                + self.heads as f64 * tokens * tokens * 4.0 * 3.0
                + pixels * 4.0 * 256.0);
        images * per_image + per_batch
    }
}

/// Memory the system can give (Linux: MemAvailable), or None where it is unknown.
fn available_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Refuses a request whose estimate exceeds the memory available, naming both.
pub fn check_memory(need: &MemoryNeed) -> Result<()> {
    let gib = |b: f64| b / (1u64 << 30) as f64;
    if let Some(available) = available_memory()
        && need.bytes() > available
    {
        bail!(
            "this request needs about {:.1} GiB, but {:.1} GiB are available: use fewer images (-n), a smaller \
             --batch-size or a smaller canvas",
            gib(need.bytes()),
            gib(available)
        );
    }
    Ok(())
}

/// Denoises `starts` in chunks of `batch_size`, then decodes; `keep` (optional) marks known tokens.
#[allow(clippy::too_many_arguments)]
fn generate(
    prior: &Prior,
    vqgan: &VqGan,
    render: &RenderDecoder,
    starts: TokenGrids,
    keep: Option<&[bool]>,
    settings: &SampleSettings,
    batch_size: usize,
    outputs: &Outputs,
    observe: Observer,
    device: &Device,
) -> Result<Generation> {
    let (n, count) = (starts.per_grid(), starts.batch());
    let batch_size = batch_size.max(1);
    let mut prior_seconds = 0.0;
    let mut decoder_seconds = 0.0;
    let mut steps_taken = 0.0;
    let mut tiles = Vec::with_capacity(count);
    let mut strip_states: Vec<TokenGrids> = Vec::new();
    let mut final_tokens: Vec<i64> = Vec::with_capacity(starts.values.len());
    let mut labels: Vec<Vec<i64>> = Vec::new();
    let chunks = count.div_ceil(batch_size);
    // Counted in sampler steps, so the bar moves within a batch; a batch that stops early skips
    // ahead by the steps it did not need.
    let bar = crate::progress::bar(chunks * settings.steps, "sampling steps");
    for chunk in 0..chunks {
        let range = chunk * batch_size..((chunk + 1) * batch_size).min(count);
        let grids = starts.slice(range.clone());
        let chunk_keep = keep.map(|k| &k[range.start * n..range.end * n]);
        let chunk_settings = SampleSettings {
            seed: SplitMix::keyed(settings.seed, streams::BATCH_SEED, chunk as u64).next_u64(),
            ..settings.clone()
        };
        if !settings.random_sets.is_empty() {
            labels.extend((0..range.len()).map(|i| chunk_settings.sample_labels(i)));
        }
        let timer = Instant::now();
        let record_strip = chunk == 0 && outputs.steps_strip.is_some();
        let sampled = sample(
            prior,
            grids,
            chunk_keep,
            &chunk_settings,
            device,
            |t, state| {
                bar.inc(1);
                if record_strip {
                    strip_states.push(state.slice(0..1));
                }
                observe(StepView {
                    first: range.start,
                    step: t,
                    steps: settings.steps,
                    grids: state,
                })
            },
        );
        if sampled.stopped {
            return Err(Cancelled.into());
        }
        if let Some(step) = sampled.non_finite_at {
            bail!(
                "the prior's logits held NaN or infinity at step {} (batch {}): its weights may be damaged, or --precision too low",
                step + 1,
                chunk + 1
            );
        }
        prior_seconds += timer.elapsed().as_secs_f64();
        steps_taken += sampled.steps_taken as f64 * range.len() as f64;
        let timer = Instant::now();
        let tokens = sampled.grids;
        let (values, [b, _, h, w]) =
            render_grids(&vqgan.quantize, render, &tokens, batch_size, device);
        final_tokens.extend(&tokens.values);
        decoder_seconds += timer.elapsed().as_secs_f64();
        tiles.extend(
            (0..b).map(|i| images::to_rgb8(&values[i * 3 * h * w..(i + 1) * 3 * h * w], h, w)),
        );
        bar.inc((settings.steps - sampled.steps_taken) as u64);
    }
    bar.finish();
    if let Some(path) = &outputs.steps_strip {
        write_strip(vqgan, &strip_states, path, device)?;
    }
    let tokens = TokenGrids {
        values: final_tokens,
        shape: starts.shape,
    };
    if let Some(path) = &outputs.tokens {
        crate::tokens::write_tokens(path, &tokens)?;
    }
    let images = count as f64;
    let report = Report {
        images: count,
        steps_taken: steps_taken / images,
        steps: settings.steps,
        prior_seconds_per_image: prior_seconds / images,
        decoder_seconds_per_image: decoder_seconds / images,
    };
    Ok(Generation {
        tiles,
        tokens,
        labels,
        report,
    })
}

/// Decodes up to 10 evenly spaced intermediate states of one sample side by side (the paper's Figure 2).
fn write_strip(vqgan: &VqGan, states: &[TokenGrids], path: &Path, device: &Device) -> Result<()> {
    if states.is_empty() {
        return Ok(());
    }
    let picks: Vec<usize> = if states.len() <= 10 {
        (0..states.len()).collect()
    } else {
        (0..10).map(|i| i * (states.len() - 1) / 9).collect()
    };
    let mut tiles = Vec::new();
    for i in picks {
        let (values, [_, _, h, w]) = decode_grids(vqgan, &states[i], 1, device);
        tiles.push(images::to_rgb8(&values, h, w));
    }
    let columns = tiles.len();
    images::save(&images::grid(&tiles, columns), path)
}

/// Writes the grid (`lead` tiles first, then all in one row; a square-ish grid without them) and,
/// when asked, one PNG per generated tile, with `LABELS_FILE` beside them when the generation drew
/// labels at random.
fn write_outputs(job: &Job, generation: &Generation, lead: &[RgbImage]) -> Result<()> {
    let (tiles, outputs) = (&generation.tiles, &job.outputs);
    if lead.is_empty() {
        let columns = (tiles.len() as f64).sqrt().ceil() as usize;
        images::save(&images::grid(tiles, columns), &outputs.grid)?;
    } else {
        let row: Vec<RgbImage> = lead.iter().chain(tiles).cloned().collect();
        images::save(&images::grid(&row, row.len()), &outputs.grid)?;
    }
    if let Some(dir) = &outputs.dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, tile) in tiles.iter().enumerate() {
            images::save(tile, &dir.join(tile_name(i)))?;
        }
        if !generation.labels.is_empty() {
            write_labels(&dir.join(LABELS_FILE), job.model_dir, &generation.labels)?;
        }
    }
    Ok(())
}

/// `LABELS_FILE`: each image's file name -> its labels by name (the sets it was drawn with; a set
/// left out is not listed).
fn write_labels(path: &Path, model_dir: &Path, labels: &[Vec<i64>]) -> Result<()> {
    let sets = crate::data::labels::LabelSets::read(model_dir)?;
    let named: std::collections::BTreeMap<String, crate::data::Labels> = labels
        .iter()
        .enumerate()
        .map(|(i, row)| (tile_name(i), sets.names(row)))
        .collect();
    bundle::write_atomic(path, serde_json::to_string_pretty(&named)?.as_bytes())
}

/// What `sample` and `inpaint` share: the model, how many images, how to sample, where to write.
pub struct Job<'a> {
    pub model_dir: &'a Path,
    /// The bundle of `model_dir` already in memory (a server keeps one); read from disk when None.
    pub preloaded: Option<&'a Generator>,
    pub count: usize,
    pub settings: SampleSettings,
    pub batch_size: usize,
    /// Canvas width and height in pixels; the model's resolution where None.
    pub size: (Option<usize>, Option<usize>),
    /// Draw the tokens with the bundle's decoder for this size (`decoders/<size>/`): the output is
    /// this many pixels per `resolution` of the canvas. The native decoder where None.
    pub render_size: Option<usize>,
    pub outputs: Outputs,
}

/// A loaded generator and the canvas a job asked for.
/// A generator bundle in memory: its two stages and their configurations.
#[derive(Clone)]
pub struct Generator {
    pub vq_config: VqGanConfig,
    pub vqgan: VqGan,
    pub prior_config: crate::hourglass::PriorConfig,
    pub prior: Prior,
}

impl Generator {
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let (vq_config, vqgan, prior_config, prior) = bundle::load_generator(dir, device)?;
        Ok(Self {
            vq_config,
            vqgan,
            prior_config,
            prior,
        })
    }
}

/// A job's generator, the decoder it draws with, and the canvas it asked for (in the tokenizer's
/// pixels; the output is `scale` times larger).
struct Loaded {
    vq_config: VqGanConfig,
    vqgan: VqGan,
    render: RenderDecoder,
    scale: usize,
    prior_config: crate::hourglass::PriorConfig,
    prior: Prior,
    width: usize,
    height: usize,
}

impl Job<'_> {
    fn load(&self, device: &Device) -> Result<Loaded> {
        if self.count == 0 {
            bail!("-n must be at least 1");
        }
        if self.outputs.writes_files() {
            self.outputs
                .check(self.count, !self.settings.random_sets.is_empty())?;
        }
        // Cloning shares the weights (burn's tensors are reference-counted).
        let Generator {
            vq_config,
            vqgan,
            prior_config,
            prior,
        } = match self.preloaded {
            Some(generator) => generator.clone(),
            None => Generator::load(self.model_dir, device)?,
        };
        let (width, height) = canvas(&vq_config, &prior_config, self.size.0, self.size.1)?;
        let render = bundle::load_render_decoder(
            self.model_dir,
            self.render_size,
            &vq_config,
            &vqgan,
            device,
        )?;
        let f = vq_config.downsampling();
        let scale = render.pixels_per_token() / f;
        check_memory(&MemoryNeed {
            images: self.count,
            batch: self.batch_size.min(self.count),
            tokens: (height / f) * (width / f),
            pixels: height * width * scale * scale,
            vocab: prior_config.vocab_size,
            heads: prior_config.heads,
        })?;
        Ok(Loaded {
            vq_config,
            vqgan,
            render,
            scale,
            prior_config,
            prior,
            width,
            height,
        })
    }
}

/// `count` images from uniformly random tokens, as tiles (and the strip and tokens `job.outputs` asks for).
fn sample_tiles(job: &Job, observe: Observer, device: &Device) -> Result<Generation> {
    let g = job.load(device)?;
    let f = g.vq_config.downsampling();
    let starts = TokenGrids::random(
        job.count,
        g.height / f,
        g.width / f,
        g.prior_config.vocab_size,
        &mut SplitMix::keyed(job.settings.seed, streams::SAMPLE_START, 0),
    );
    generate(
        &g.prior,
        &g.vqgan,
        &g.render,
        starts,
        None,
        &job.settings,
        job.batch_size,
        &job.outputs,
        observe,
        device,
    )
}

/// `sundae sample`: `count` images from uniformly random tokens, written where `job.outputs` says.
pub fn sample_images(job: &Job, device: &Device) -> Result<Report> {
    Ok(sample_live(job, &mut unobserved, device)?.report)
}

/// As `sample_images`, with every step shown to `observe` (which may cancel); the files are written
/// only when `job.outputs.grid` names one.
pub fn sample_live(job: &Job, observe: Observer, device: &Device) -> Result<Generation> {
    let generation = sample_tiles(job, observe, device)?;
    if job.outputs.writes_files() {
        write_outputs(job, &generation, &[])?;
    }
    Ok(generation)
}

/// The images `sundae sample` would write for these settings, in memory (for `sundae score`).
pub fn draw_images(
    model_dir: &Path,
    count: usize,
    settings: &SampleSettings,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<RgbImage>> {
    let job = Job {
        model_dir,
        preloaded: None,
        count,
        settings: settings.clone(),
        batch_size,
        size: (None, None),
        render_size: None,
        outputs: Outputs::in_memory(),
    };
    Ok(sample_tiles(&job, &mut unobserved, device)?.tiles)
}

/// What `sundae inpaint` starts from.
pub struct InpaintInput<'a> {
    pub image: &'a Path,
    pub mask: &'a Path,
    /// Resize the image (shorter side, center crop) and mask (nearest) to the canvas instead of refusing.
    pub resize: bool,
    /// Put the original pixels back outside the mask.
    pub paste: bool,
    /// Start the grid with the image and the image with its masked region greyed out.
    pub show_input: bool,
}

/// `sundae inpaint`: `count` completions of the regions a mask marks (non-white), keeping the rest.
pub fn inpaint(job: &Job, input: &InpaintInput, device: &Device) -> Result<Report> {
    Ok(inpaint_live(job, input, &mut unobserved, device)?.report)
}

/// As `inpaint`, with every step shown to `observe` (which may cancel); the files are written only
/// when `job.outputs.grid` names one.
pub fn inpaint_live(
    job: &Job,
    input: &InpaintInput,
    observe: Observer,
    device: &Device,
) -> Result<Generation> {
    // The inputs first: a bad file is refused before the model is read.
    let image = read_rgb(input.image)?;
    let mask = read_rgb(input.mask)?;
    if mask.dimensions() != image.dimensions() && !input.resize {
        bail!(
            "the mask is {}x{} but the image is {}x{} (pass --resize to scale both to the canvas)",
            mask.width(),
            mask.height(),
            image.width(),
            image.height()
        );
    }
    let g = job.load(device)?;
    // The image, the mask and the paste-back live at the output's size (the canvas times the render
    // decoder's scale); the encoder sees the image at the canvas size.
    let (count, settings, s) = (job.count, &job.settings, g.scale);
    let (w, h) = (g.width * s, g.height * s);
    let (iw, ih) = (image.width() as usize, image.height() as usize);
    let (image, mask) = if (iw, ih) == (w, h) {
        (image, mask)
    } else if input.resize {
        eprintln!("resizing {iw}x{ih} image and mask to {w}x{h}");
        (
            fit_to(&image, w, h, image::imageops::FilterType::CatmullRom),
            fit_to(&mask, w, h, image::imageops::FilterType::Nearest),
        )
    } else if iw <= w && ih <= h {
        eprintln!(
            "placing the {iw}x{ih} image at the centre of the {w}x{h} canvas: the border around it is generated"
        );
        pad_to(&image, &mask, w, h)
    } else {
        bail!(
            "the image is {iw}x{ih}, larger than the {w}x{h} canvas (pass --resize to scale it to the canvas, or a larger --width/--height)"
        );
    };
    let f = g.vq_config.downsampling();
    let keep_px = keep_pixels(&mask);
    let keep_tok = keep_tokens(&keep_px, h, w, f * s)?;
    if keep_tok.iter().all(|&k| k) {
        bail!(
            "the mask keeps every token: paint the region to regenerate in black (any non-white pixel)"
        );
    }

    let encoder_view = fit_to(
        &image,
        g.width,
        g.height,
        image::imageops::FilterType::Triangle,
    );
    let encoded = encode_canvas(
        &g.vqgan,
        images::to_chw(&encoder_view),
        g.width,
        g.height,
        device,
    );
    let n = keep_tok.len();
    let mut rng = SplitMix::keyed(settings.seed, streams::INPAINT_START, 0);
    let mut tokens = Vec::with_capacity(count * n);
    for _ in 0..count {
        tokens.extend(encoded.iter().zip(&keep_tok).map(|(&t, &k)| {
            if k {
                t
            } else {
                rng.below(g.prior_config.vocab_size) as i64
            }
        }));
    }
    let keep: Vec<bool> = keep_tok.iter().copied().cycle().take(count * n).collect();
    let starts = TokenGrids {
        values: tokens,
        shape: [count, g.height / f, g.width / f],
    };
    let mut generation = generate(
        &g.prior,
        &g.vqgan,
        &g.render,
        starts,
        Some(&keep),
        settings,
        job.batch_size,
        &job.outputs,
        observe,
        device,
    )?;
    if input.paste {
        for tile in &mut generation.tiles {
            for (i, pixel) in tile.pixels_mut().enumerate() {
                if keep_px[i] {
                    *pixel = *image.get_pixel((i % w) as u32, (i / w) as u32);
                }
            }
        }
    }
    let lead = if input.show_input {
        let mut masked = image.clone();
        for (i, pixel) in masked.pixels_mut().enumerate() {
            if !keep_px[i] {
                *pixel = image::Rgb([128, 128, 128]);
            }
        }
        vec![image, masked]
    } else {
        Vec::new()
    };
    if job.outputs.writes_files() {
        write_outputs(job, &generation, &lead)?;
    }
    Ok(generation)
}

fn read_rgb(path: &Path) -> Result<RgbImage> {
    // As in training data: transparency becomes white, not black.
    Ok(images::on_white(&images::read_rgba(path)?))
}

fn fit_to(image: &RgbImage, w: usize, h: usize, filter: image::imageops::FilterType) -> RgbImage {
    if image.dimensions() == (w as u32, h as u32) {
        image.clone()
    } else {
        image::imageops::resize(image, w as u32, h as u32, filter)
    }
}

/// The image centred on a white `w` x `h` canvas, and its mask on a canvas to regenerate (black)
/// around it: outpainting.
fn pad_to(image: &RgbImage, mask: &RgbImage, w: usize, h: usize) -> (RgbImage, RgbImage) {
    let (x, y) = (
        (w as i64 - image.width() as i64) / 2,
        (h as i64 - image.height() as i64) / 2,
    );
    let mut canvas = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([255, 255, 255]));
    let mut canvas_mask = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([0, 0, 0]));
    image::imageops::replace(&mut canvas, image, x, y);
    image::imageops::replace(&mut canvas_mask, mask, x, y);
    (canvas, canvas_mask)
}

/// Encodes one (possibly non-square) canvas into tokens.
fn encode_canvas(vqgan: &VqGan, pixels: Vec<f32>, w: usize, h: usize, device: &Device) -> Vec<i64> {
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [1, 3, h, w]), device);
    vqgan.encode(x).into_data().iter::<i64>().collect()
}
