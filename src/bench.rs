//! Benchmarks that print figures (never pass/fail): VQ-GAN decode time and peak memory.

use crate::tokens::TokenGrids;
use crate::vqgan::batch::tokens_to_tensor;
use crate::vqgan::{VqGan, VqGanConfig};
use burn::tensor::Device;
use std::time::Instant;

/// Figures for one configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecodeFigures {
    pub config: String,
    pub resolution: usize,
    pub batch: usize,
    /// The float type the device computed in.
    pub precision: String,
    pub parameters: usize,
    /// The best of the timed decodes, and every one of them in order.
    pub decode_seconds: f64,
    pub decode_passes: Vec<f64>,
    pub encode_seconds: f64,
    /// Peak resident memory of the process during this configuration, in MiB (Linux; 0 elsewhere).
    pub peak_mib: f64,
}

/// Times encode and decode of `batch` random images with a randomly initialised model.
/// The first pass warms up; the figure is the best of `repeats` timed passes.
pub fn vqgan(
    name: &str,
    config: &VqGanConfig,
    batch: usize,
    repeats: usize,
    device: &Device,
) -> DecodeFigures {
    reset_peak_memory();
    let model = VqGan::new(config, device);
    let grids = random_grids(batch, config.latent_side(), config.n_embed);
    let mut decode_passes = Vec::with_capacity(repeats);
    let mut encode_seconds = f64::INFINITY;
    for pass in 0..=repeats {
        // Each pass can take minutes at megapixel sizes: say what is running.
        let which = if pass == 0 {
            "warm-up pass".to_string()
        } else {
            format!("timed pass {pass} of {repeats}")
        };
        eprintln!(
            "{name}: {which}, decode then encode of {batch} image(s) at {r}x{r}",
            r = config.resolution
        );
        let start = Instant::now();
        let images = model.decode(tokens_to_tensor(&grids, device));
        // Reading the data back forces the work to finish on any backend.
        let images_data = images.clone().into_data();
        let decoded = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let _ = model.encode(images).into_data();
        let encoded = start.elapsed().as_secs_f64();
        drop(images_data);
        if pass > 0 {
            decode_passes.push(decoded);
            encode_seconds = encode_seconds.min(encoded);
        }
    }
    DecodeFigures {
        config: name.to_string(),
        resolution: config.resolution,
        batch,
        precision: precision_name(device),
        parameters: burn::module::Module::num_params(&model),
        decode_seconds: best(&decode_passes),
        decode_passes,
        encode_seconds,
        peak_mib: peak_memory_mib(),
    }
}

/// Times the decode of `batch` random token grids by a bundle's render decoder (decoded in chunks
/// as `sample` decodes them, so large sizes go one image at a time). Encode time is not its to give: 0.
pub fn render_decoder(
    name: &str,
    tokenizer: &VqGan,
    decoder: &crate::vqgan::render::RenderDecoder,
    side: usize,
    batch: usize,
    repeats: usize,
    device: &Device,
) -> DecodeFigures {
    reset_peak_memory();
    let n_embed = tokenizer.n_embed();
    let grids = random_grids(batch, side, n_embed);
    let resolution = side * decoder.pixels_per_token();
    let mut decode_passes = Vec::with_capacity(repeats);
    for pass in 0..=repeats {
        eprintln!(
            "{name}: {}, decode of {batch} image(s) at {resolution}x{resolution}",
            if pass == 0 {
                "warm-up pass".to_string()
            } else {
                format!("timed pass {pass} of {repeats}")
            }
        );
        let start = Instant::now();
        let _ =
            crate::vqgan::batch::render_grids(&tokenizer.quantize, decoder, &grids, batch, device);
        if pass > 0 {
            decode_passes.push(start.elapsed().as_secs_f64());
        }
    }
    DecodeFigures {
        config: name.to_string(),
        resolution,
        batch,
        precision: precision_name(device),
        parameters: burn::module::Module::num_params(decoder),
        decode_seconds: best(&decode_passes),
        decode_passes,
        encode_seconds: 0.0,
        peak_mib: peak_memory_mib(),
    }
}

/// The smallest of `seconds` (infinite when there are none, as with no timed pass).
fn best(seconds: &[f64]) -> f64 {
    seconds.iter().copied().fold(f64::INFINITY, f64::min)
}

/// `batch` grids of `side` x `side` codes below `n_embed`, from a fixed xorshift stream.
fn random_grids(batch: usize, side: usize, n_embed: usize) -> TokenGrids {
    let mut seed = 0x2545F4914F6CDD1Du64;
    let values = (0..batch * side * side)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n_embed as u64) as i64
        })
        .collect();
    TokenGrids {
        values,
        shape: [batch, side, side],
    }
}

/// `f32`, `f16` or `bf16`: the float type new tensors on `device` get.
fn precision_name(device: &Device) -> String {
    format!("{:?}", crate::device::float_dtype(device)).to_lowercase()
}

/// Resets the kernel's peak-RSS counter so each configuration reports its own peak.
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size (VmHWM) in MiB, or 0 where /proc is unavailable.
pub fn peak_memory_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Figures of the whole generator for one configuration and batch size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratorFigures {
    pub config: String,
    pub batch: usize,
    pub resolution: usize,
    /// The float type the device computed in.
    pub precision: String,
    pub prior_parameters: usize,
    /// Seconds for one sampler step of the whole batch (prior forward + draws).
    pub prior_seconds_per_step: f64,
    pub decoder_seconds_per_image: f64,
    /// Default steps × step time / batch + decode time: seconds per image at the configuration's steps.
    pub end_to_end_seconds_per_image: f64,
    pub default_steps: usize,
    pub peak_mib: f64,
}

/// Times the sampler and decoder of a generator with batch `batch`. `timed_steps` sampler steps are
/// timed after one untimed step.
#[allow(clippy::too_many_arguments)]
pub fn generator(
    name: &str,
    vqgan: &crate::vqgan::VqGan,
    vq_config: &VqGanConfig,
    prior: &crate::hourglass::Prior,
    prior_config: &crate::hourglass::PriorConfig,
    batch: usize,
    timed_steps: usize,
    default_steps: usize,
    device: &Device,
) -> GeneratorFigures {
    use crate::sundae::sample::{SampleSettings, Schedule, sample};
    reset_peak_memory();
    let side = vq_config.latent_side();
    let start = TokenGrids::random(
        batch,
        side,
        side,
        prior_config.vocab_size,
        &mut crate::train::SplitMix::new(1),
    );
    let settings = SampleSettings {
        steps: timed_steps + 1,
        early_stop: false,
        proportion: Schedule::constant(0.5),
        ..SampleSettings::default()
    };
    let mut marks = Vec::new();
    // A step of a megapixel prior takes seconds: say what runs.
    eprintln!(
        "{name}: batch {batch}, one untimed sampler step then {timed_steps} timed, then a decode"
    );
    let sampled = sample(prior, start, None, &settings, device, |t, _| {
        marks.push(Instant::now());
        eprintln!("{name}: step {} of {} done", t + 1, timed_steps + 1);
    });
    let prior_seconds_per_step = if marks.len() > 1 {
        (marks[marks.len() - 1] - marks[0]).as_secs_f64() / (marks.len() - 1) as f64
    } else {
        f64::NAN
    };
    let timer = Instant::now();
    let _ = crate::vqgan::batch::decode_grids(vqgan, &sampled.grids, batch, device);
    let decoder_seconds_per_image = timer.elapsed().as_secs_f64() / batch as f64;
    GeneratorFigures {
        config: name.to_string(),
        batch,
        resolution: vq_config.resolution,
        precision: precision_name(device),
        prior_parameters: prior_config.parameter_count(),
        prior_seconds_per_step,
        decoder_seconds_per_image,
        end_to_end_seconds_per_image: default_steps as f64 * prior_seconds_per_step / batch as f64
            + decoder_seconds_per_image,
        default_steps,
        peak_mib: peak_memory_mib(),
    }
}
