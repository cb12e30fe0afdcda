//! Extra views of each image, encoded next to it to stretch a small data set for the prior:
//! its mirror image, and copies zoomed out to a random size and place on the white background.
//! The views of an image depend only on its index in the data set, so a rerun or a shared
//! encode (`--shard`) makes the same ones.

use crate::data::images::{to_chw, to_rgb8};
use crate::train::SplitMix;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

/// Smallest and largest side of a zoomed-out copy, as a share of the canvas.
pub const ZOOM_RANGE: (f32, f32) = (0.6, 0.95);

/// Which views of each image a latent data set holds besides the image itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Augment {
    /// The mirror image of every view.
    pub flip: bool,
    /// Zoomed-out copies per image.
    pub zooms: usize,
}

impl Augment {
    /// Views per source image, the image itself included.
    pub fn views_per_image(&self) -> usize {
        (1 + self.zooms) * if self.flip { 2 } else { 1 }
    }

    /// The views of image number `index` (CHW values in [-1, 1], `side` x `side`): the image, its
    /// zoomed-out copies, each followed by its mirror image when `flip` is set.
    pub fn views(&self, pixels: &[f32], side: usize, index: usize) -> Vec<Vec<f32>> {
        let mut rng = SplitMix::keyed(0x200A, index as u64, 0);
        let mut views = Vec::with_capacity(self.views_per_image());
        for zoom in 0..=self.zooms {
            let view = if zoom == 0 {
                pixels.to_vec()
            } else {
                let (lo, hi) = ZOOM_RANGE;
                let small = ((lo + (hi - lo) * rng.next_f32()) * side as f32).round() as usize;
                let x = rng.below(side - small + 1);
                let y = rng.below(side - small + 1);
                zoomed_out(pixels, side, small, x, y)
            };
            if self.flip {
                let mirror = mirrored(&view, side);
                views.push(view);
                views.push(mirror);
            } else {
                views.push(view);
            }
        }
        views
    }
}

/// Mirrors a CHW image left to right.
pub fn mirrored(pixels: &[f32], side: usize) -> Vec<f32> {
    pixels
        .chunks(side)
        .flat_map(|row| row.iter().rev().copied())
        .collect()
}

/// The image shrunk to `small` x `small` with its top-left corner at (`x`, `y`) on a white
/// `side` x `side` canvas.
pub fn zoomed_out(pixels: &[f32], side: usize, small: usize, x: usize, y: usize) -> Vec<f32> {
    let image = to_rgb8(pixels, side, side);
    let shrunk = imageops::resize(&image, small as u32, small as u32, FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(side as u32, side as u32, Rgb([255, 255, 255]));
    imageops::replace(&mut canvas, &shrunk, x as i64, y as i64);
    to_chw(&canvas)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A black `side` x `side` image.
    fn black(side: usize) -> Vec<f32> {
        vec![-1.0; 3 * side * side]
    }

    #[test]
    fn a_zoomed_out_flat_image_is_a_square_on_white() {
        let side = 16;
        let out = zoomed_out(&black(side), side, 8, 5, 2);
        for c in 0..3 {
            for row in 0..side {
                for col in 0..side {
                    let inside = (2..10).contains(&row) && (5..13).contains(&col);
                    let expected = if inside { -1.0 } else { 1.0 };
                    assert_eq!(
                        out[(c * side + row) * side + col],
                        expected,
                        "{c} {row} {col}"
                    );
                }
            }
        }
    }

    #[test]
    fn views_are_the_image_its_zooms_and_their_mirrors_the_same_on_every_run() {
        let side = 16;
        // Left half black, right half white: the mirror swaps them.
        let image: Vec<f32> = (0..3 * side * side)
            .map(|i| if i % side < side / 2 { -1.0 } else { 1.0 })
            .collect();
        let augment = Augment {
            flip: true,
            zooms: 2,
        };
        let views = augment.views(&image, side, 7);
        assert_eq!(views.len(), 6);
        assert_eq!(augment.views_per_image(), 6);
        assert_eq!(views[0], image);
        assert_eq!(views[1], mirrored(&image, side));
        for pair in views.chunks(2) {
            assert_eq!(pair[1], mirrored(&pair[0], side));
        }
        // Zoomed copies leave a white margin, so they hold more white than the image.
        let white = |v: &[f32]| v.iter().filter(|&&p| p > 0.99).count();
        assert!(white(&views[2]) > white(&image));
        assert!(white(&views[4]) > white(&image));
        assert_ne!(views[2], views[4]);
        assert_eq!(views, augment.views(&image, side, 7));
        assert_ne!(views, augment.views(&image, side, 8));
        let plain = Augment::default().views(&image, side, 7);
        assert_eq!(plain, vec![image]);
    }
}
