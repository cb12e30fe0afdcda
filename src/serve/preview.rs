//! What the page shows while the sampler runs. Decoding every image at every step would cost the
//! CPU several times the sampler's own work, so intermediate states are drawn from a table of each
//! code's own picture: the decoder's output for a 1x1 grid of that code (an f x f patch), tiled by
//! the current tokens. Final images are decoded in full, exactly as `sundae sample` decodes them.

use crate::generate::Generator;
use crate::tokens::TokenGrids;
use base64::Engine;
use burn::tensor::{Device, Int, Tensor, TensorData};
use image::RgbImage;

pub struct Patches {
    /// `f` x `f` RGB patches, one per code.
    patches: Vec<RgbImage>,
    side: usize,
}

impl Patches {
    /// Decodes every code of the generator's VQ-GAN alone (in batches, to bound memory).
    pub fn new(generator: &Generator, device: &Device) -> Self {
        let vocab = generator.vq_config.n_embed;
        let side = generator.vq_config.downsampling();
        let mut patches = Vec::with_capacity(vocab);
        for start in (0..vocab).step_by(256) {
            let end = (start + 256).min(vocab);
            let codes: Vec<i64> = (start as i64..end as i64).collect();
            let tokens =
                Tensor::<3, Int>::from_data(TensorData::new(codes, [end - start, 1, 1]), device);
            let values: Vec<f32> = generator.vqgan.decode(tokens).into_data().iter().collect();
            let plane = 3 * side * side;
            for i in 0..end - start {
                patches.push(crate::data::images::to_rgb8(
                    &values[i * plane..(i + 1) * plane],
                    side,
                    side,
                ));
            }
        }
        Self { patches, side }
    }

    /// Grid `i` of `grids` drawn from the patches.
    pub fn draw(&self, grids: &TokenGrids, i: usize) -> RgbImage {
        let [_, h, w] = grids.shape;
        let n = h * w;
        let tokens = &grids.values[i * n..(i + 1) * n];
        let mut out = RgbImage::new((w * self.side) as u32, (h * self.side) as u32);
        for (at, &code) in tokens.iter().enumerate() {
            let patch = &self.patches[(code as usize).min(self.patches.len() - 1)];
            let (x, y) = ((at % w * self.side) as i64, (at / w * self.side) as i64);
            image::imageops::replace(&mut out, patch, x, y);
        }
        out
    }
}

/// An image as a `data:image/png;base64,...` URL for the page.
pub fn data_url(image: &RgbImage) -> String {
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("PNG encoding into memory");
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}
