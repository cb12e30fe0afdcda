//! Benchmarks that print figures (never pass/fail): VQ-GAN decode time and peak memory.

use crate::commands::tokens_to_tensor;
use crate::tokens::TokenGrids;
use crate::vqgan::{VqGan, VqGanConfig};
use burn::tensor::Device;
use std::time::Instant;

/// Figures for one configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecodeFigures {
    pub config: String,
    pub resolution: usize,
    pub batch: usize,
    pub parameters: usize,
    pub decode_seconds: f64,
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
    let side = config.latent_side();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let values = (0..batch * side * side)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % config.n_embed as u64) as i64
        })
        .collect();
    let grids = TokenGrids {
        values,
        shape: [batch, side, side],
    };
    let mut decode_seconds = f64::INFINITY;
    let mut encode_seconds = f64::INFINITY;
    for pass in 0..=repeats {
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
            decode_seconds = decode_seconds.min(decoded);
            encode_seconds = encode_seconds.min(encoded);
        }
    }
    DecodeFigures {
        config: name.to_string(),
        resolution: config.resolution,
        batch,
        parameters: burn::module::Module::num_params(&model),
        decode_seconds,
        encode_seconds,
        peak_mib: peak_memory_mib(),
    }
}

/// Resets the kernel's peak-RSS counter so each configuration reports its own peak.
fn reset_peak_memory() {
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
