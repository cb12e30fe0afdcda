//! Image files <-> CHW float pixels in [-1, 1] (SPEC.md 1.1, DECISIONS.md "Data").

use super::{Loaded, Sample};
use anyhow::{Context, Result, bail};
use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage, RgbaImage};
use std::path::{Path, PathBuf};

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// Reads an image file of any format `image` knows (by its content, not its name) as RGBA; every
/// failure names the file.
pub fn read_rgba(path: &Path) -> Result<RgbaImage> {
    if path.is_dir() {
        bail!("{} is a folder, not an image", path.display());
    }
    let image = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("{} is not a readable image", path.display()))?;
    Ok(image.to_rgba8())
}

/// Reads an image file and prepares it at `resolution` (see [`prepare`]).
pub fn load_image(path: &Path, resolution: usize) -> Result<Vec<f32>> {
    Ok(prepare(&read_rgba(path)?, resolution))
}

/// Composites on white, resizes the shorter side to `resolution`, center-crops to a square,
/// and returns CHW values scaled from [0, 255] to [-1, 1].
pub fn prepare(image: &RgbaImage, resolution: usize) -> Vec<f32> {
    let rgb = on_white(image);
    let (w, h) = rgb.dimensions();
    let scale = resolution as f64 / w.min(h) as f64;
    let (sw, sh) = (
        ((w as f64 * scale).round() as u32).max(resolution as u32),
        ((h as f64 * scale).round() as u32).max(resolution as u32),
    );
    let resized = if (sw, sh) == (w, h) {
        rgb
    } else {
        image::imageops::resize(&rgb, sw, sh, FilterType::CatmullRom)
    };
    let (x0, y0) = ((sw - resolution as u32) / 2, (sh - resolution as u32) / 2);
    let cropped = image::imageops::crop_imm(&resized, x0, y0, resolution as u32, resolution as u32)
        .to_image();
    to_chw(&cropped)
}

/// Composites an image with alpha on a white background (transparent = white).
pub fn on_white(image: &RgbaImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b, a] = image.get_pixel(x, y).0;
        let alpha = a as f32 / 255.0;
        let blend = |c: u8| (c as f32 * alpha + 255.0 * (1.0 - alpha)).round() as u8;
        Rgb([blend(r), blend(g), blend(b)])
    })
}

/// An 8-bit RGB image as CHW values in [-1, 1].
pub fn to_chw(image: &RgbImage) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0.0; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = pixel.0[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

/// CHW values in [-1, 1] (clamped) to an 8-bit RGB image.
pub fn to_rgb8(chw: &[f32], height: usize, width: usize) -> RgbImage {
    let plane = height * width;
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let i = y as usize * width + x as usize;
        let channel =
            |c: usize| ((chw[c * plane + i].clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
        Rgb([channel(0), channel(1), channel(2)])
    })
}

/// Lays equally sized images out in rows of `columns`, with a 2-pixel white gutter.
pub fn grid(images: &[RgbImage], columns: usize) -> RgbImage {
    const GAP: u32 = 2;
    let Some(first) = images.first() else {
        return RgbImage::new(1, 1);
    };
    let (w, h) = first.dimensions();
    let columns = columns.clamp(1, images.len()) as u32;
    let rows = (images.len() as u32).div_ceil(columns);
    let mut out = RgbImage::from_pixel(
        columns * (w + GAP) - GAP,
        rows * (h + GAP) - GAP,
        Rgb([255, 255, 255]),
    );
    for (i, image) in images.iter().enumerate() {
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        image::imageops::replace(
            &mut out,
            image,
            (col * (w + GAP)) as i64,
            (row * (h + GAP)) as i64,
        );
    }
    out
}

/// Saves an image, choosing the format from the extension, through a temporary file and a rename.
pub fn save(image: &RgbImage, path: &Path) -> Result<()> {
    let format = image::ImageFormat::from_path(path)
        .with_context(|| format!("cannot write {}: unknown image format", path.display()))?;
    crate::files::write_file_atomic(path, |tmp| {
        DynamicImage::ImageRgb8(image.clone())
            .save_with_format(tmp, format)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}

/// Every image file under `dir` (recursive), sorted so that runs are reproducible.
pub fn list_images(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Loads every image under `dir`; unreadable files are reported on stderr and skipped.
pub fn load_folder(dir: &Path, resolution: usize) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for path in list_images(dir) {
        match load_image(&path, resolution) {
            Ok(pixels) => loaded.samples.push(Sample {
                name: path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
                pixels,
                labels: Default::default(),
            }),
            Err(error) => {
                eprintln!("skipping {}: {:#}", path.display(), error);
                loaded.skipped.push(path.display().to_string());
            }
        }
    }
    if !loaded.skipped.is_empty() {
        eprintln!("skipped {} unreadable file(s)", loaded.skipped.len());
    }
    Ok(loaded)
}

/// Peak signal-to-noise ratio in dB of two images in [-1, 1] (peak-to-peak range 2).
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (4.0 / mse.max(1e-12)).log10()
}
