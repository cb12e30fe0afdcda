//! Inpainting masks (SPEC.md 6): pixels -> tokens by the AND over each f x f block.

use anyhow::{Result, bail};
use image::RgbImage;

/// Per pixel, true = keep (white, 255 in every channel); anything else is to be regenerated.
pub fn keep_pixels(mask: &RgbImage) -> Vec<bool> {
    mask.pixels().map(|p| p.0 == [255, 255, 255]).collect()
}

/// A token is known only if every pixel of its f x f block is kept. `pixels` is row-major
/// `height x width`; returns a row-major `(height/f) x (width/f)` grid.
pub fn keep_tokens(pixels: &[bool], height: usize, width: usize, f: usize) -> Result<Vec<bool>> {
    if !height.is_multiple_of(f) || !width.is_multiple_of(f) {
        bail!("a {width}x{height} mask does not split into {f}x{f} blocks");
    }
    let (h, w) = (height / f, width / f);
    Ok((0..h * w)
        .map(|t| {
            let (row, col) = (t / w, t % w);
            (row * f..(row + 1) * f)
                .all(|y| (col * f..(col + 1) * f).all(|x| pixels[y * width + x]))
        })
        .collect())
}
