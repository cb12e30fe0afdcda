//! Bilinear resizing as PyTorch's `F.interpolate(mode="bilinear", align_corners=False)` does it (no
//! antialiasing), which is how pytorch-fid brings every image to the network's 299x299.

use image::RgbImage;

/// For each output index: the two source indices and the weight of the second.
fn taps(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|o| {
            let source = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (source.floor() as usize).min(input - 1);
            let i1 = (i0 + 1).min(input - 1);
            (i0, i1, source - i0 as f32)
        })
        .collect()
}

/// An 8-bit RGB image resized to `height` x `width`, as CHW floats on the 0..255 scale.
pub fn bilinear_chw(image: &RgbImage, height: usize, width: usize) -> Vec<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let raw = image.as_raw();
    let rows = taps(h, height);
    let cols = taps(w, width);
    let mut out = vec![0.0f32; 3 * height * width];
    for (y, &(y0, y1, fy)) in rows.iter().enumerate() {
        for (x, &(x0, x1, fx)) in cols.iter().enumerate() {
            for c in 0..3 {
                let at = |yy: usize, xx: usize| raw[(yy * w + xx) * 3 + c] as f32;
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                out[(c * height + y) * width + x] = top * (1.0 - fy) + bottom * fy;
            }
        }
    }
    out
}
