//! Batched passes of the VQ-GAN over host buffers: image pixels and token grids to tensors, and
//! encode/decode in chunks (what the commands, the trainers' sample grids and the benchmarks share).

use super::VqGan;
use super::quantize::VectorQuantizer;
use super::render::RenderDecoder;
use crate::tokens::TokenGrids;
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Images `[B, 3, R, R]` from prepared CHW pixel buffers.
pub fn images_to_tensor(pixels: &[Vec<f32>], resolution: usize, device: &Device) -> Tensor<4> {
    let flat: Vec<f32> = pixels.iter().flatten().copied().collect();
    Tensor::from_data(
        TensorData::new(flat, [pixels.len(), 3, resolution, resolution]),
        device,
    )
}

/// Token grids as an integer tensor `[B, h, w]`.
pub fn tokens_to_tensor(grids: &TokenGrids, device: &Device) -> Tensor<3, Int> {
    Tensor::from_data(TensorData::new(grids.values.clone(), grids.shape), device)
}

/// Encodes images in chunks of `batch_size`, returning token grids `[B, h, w]`.
pub fn encode_images(
    model: &VqGan,
    pixels: &[Vec<f32>],
    resolution: usize,
    batch_size: usize,
    device: &Device,
) -> TokenGrids {
    let bar = crate::progress::bar(pixels.len(), "encoding images");
    let mut values = Vec::new();
    let mut shape = [0, 0, 0];
    for chunk in pixels.chunks(batch_size.max(1)) {
        let grid = model.encode(images_to_tensor(chunk, resolution, device));
        let [_, h, w] = grid.dims();
        shape = [shape[0] + chunk.len(), h, w];
        values.extend(grid.into_data().iter::<i64>());
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    TokenGrids { values, shape }
}

/// Decodes token grids in chunks of `batch_size` into CHW images in [-1, 1] `[B, 3, H, W]`.
pub fn decode_grids(
    model: &VqGan,
    grids: &TokenGrids,
    batch_size: usize,
    device: &Device,
) -> (Vec<f32>, [usize; 4]) {
    render_grids(
        &model.quantize,
        &RenderDecoder::native(model),
        grids,
        batch_size,
        device,
    )
}

/// Output pixels decoded at once: large images go one (or a few) at a time, so that a 1024x1024
/// decode stays within a bounded memory.
const PIXELS_PER_CHUNK: usize = 1 << 20;

/// As [`decode_grids`], drawn by `decoder` (a render decoder of the tokenizer whose codebook is given).
pub fn render_grids(
    codebook: &VectorQuantizer,
    decoder: &RenderDecoder,
    grids: &TokenGrids,
    batch_size: usize,
    device: &Device,
) -> (Vec<f32>, [usize; 4]) {
    let [b, h, w] = grids.shape;
    let per_grid = h * w;
    let scale = decoder.pixels_per_token();
    let batch_size = batch_size.min((PIXELS_PER_CHUNK / (per_grid * scale * scale)).max(1));
    // A bar only when there is more than one batch (sampling decodes one batch at a time).
    let bar = (b > batch_size.max(1)).then(|| crate::progress::bar(b, "decoding grids"));
    let mut values = Vec::new();
    let mut shape = [0, 3, 0, 0];
    for start in (0..b).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(b);
        let chunk = TokenGrids {
            values: grids.values[start * per_grid..end * per_grid].to_vec(),
            shape: [end - start, h, w],
        };
        let decoded = decoder.decode(codebook, tokens_to_tensor(&chunk, device));
        let [_, c, hh, ww] = decoded.dims();
        shape = [end, c, hh, ww];
        values.extend(decoded.into_data().iter::<f32>());
        if let Some(bar) = &bar {
            bar.inc((end - start) as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    (values, shape)
}
