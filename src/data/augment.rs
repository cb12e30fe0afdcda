//! Extra views of each image, encoded next to it to stretch a small data set for the prior:
//! its mirror image, copies zoomed out to a random size and place on the white background, and
//! copies moved by a few pixels (a new token grid of the same picture, as the VQ-GAN's token blocks
//! fall elsewhere on it).
//! The views of an image depend only on its index in the data set, so a rerun or a shared
//! encode (`--shard`) makes the same ones.

use crate::data::images::{to_chw, to_rgb8};
use crate::train::SplitMix;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

/// Smallest and largest side of a zoomed-out copy, as a share of the canvas.
pub const ZOOM_RANGE: (f32, f32) = (0.6, 0.95);
/// Largest move of a shifted copy along each axis, as a share of the side (4 pixels at 64).
pub const SHIFT_SHARE: usize = 16;

/// Which views of each image a latent data set holds besides the image itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Augment {
    /// The mirror image of every view.
    pub flip: bool,
    /// Zoomed-out copies per image.
    pub zooms: usize,
    /// Shifted copies per image.
    pub shifts: usize,
}

impl Augment {
    /// Views per source image, the image itself included.
    pub fn views_per_image(&self) -> usize {
        (1 + self.zooms + self.shifts) * if self.flip { 2 } else { 1 }
    }

    /// The views of image number `index` (CHW values in [-1, 1], `side` x `side`): the image, its
    /// zoomed-out copies, its shifted copies, each followed by its mirror image when `flip` is set.
    pub fn views(&self, pixels: &[f32], side: usize, index: usize) -> Vec<Vec<f32>> {
        let mut rng = SplitMix::keyed(crate::train::rng::streams::AUGMENT_SEED, index as u64, 0);
        let mut views = Vec::with_capacity(self.views_per_image());
        for copy in 0..=self.zooms + self.shifts {
            let view = if copy == 0 {
                pixels.to_vec()
            } else if copy <= self.zooms {
                let (lo, hi) = ZOOM_RANGE;
                let small = ((lo + (hi - lo) * rng.next_f32()) * side as f32).round() as usize;
                let x = rng.below(side - small + 1);
                let y = rng.below(side - small + 1);
                zoomed_out(pixels, side, small, x, y)
            } else {
                let reach = (side / SHIFT_SHARE).max(1) as i64;
                let (dx, dy) = loop {
                    let dx = rng.below(2 * reach as usize + 1) as i64 - reach;
                    let dy = rng.below(2 * reach as usize + 1) as i64 - reach;
                    if (dx, dy) != (0, 0) {
                        break (dx, dy);
                    }
                };
                shifted(pixels, side, dx, dy)
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

/// The image moved `dx` pixels right and `dy` down, white where it uncovers the canvas.
pub fn shifted(pixels: &[f32], side: usize, dx: i64, dy: i64) -> Vec<f32> {
    let mut out = vec![1.0; pixels.len()];
    for (plane, source) in out.chunks_mut(side * side).zip(pixels.chunks(side * side)) {
        for y in 0..side as i64 {
            for x in 0..side as i64 {
                let (from_x, from_y) = (x - dx, y - dy);
                if (0..side as i64).contains(&from_x) && (0..side as i64).contains(&from_y) {
                    plane[(y * side as i64 + x) as usize] =
                        source[(from_y * side as i64 + from_x) as usize];
                }
            }
        }
    }
    out
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
    fn a_shift_moves_every_pixel_and_fills_the_uncovered_edge_white() {
        let side = 4;
        // One plane numbered 0..16 in reading order, the others negative copies.
        let image: Vec<f32> = (0..3 * side * side)
            .map(|i| {
                let v = (i % (side * side)) as f32 / 100.0;
                if i < side * side { v } else { -v }
            })
            .collect();
        let out = shifted(&image, side, 1, -2);
        // Pixel (x, y) comes from (x - 1, y + 2): row 0 from row 2, row 1 from row 3, rows 2-3 and
        // column 0 uncovered.
        let expected_plane: Vec<f32> = (0..side * side)
            .map(|i| {
                let (x, y) = (i % side, i / side);
                if x == 0 || y >= 2 {
                    1.0
                } else {
                    ((y + 2) * side + x - 1) as f32 / 100.0
                }
            })
            .collect();
        assert_eq!(out[..side * side], expected_plane[..]);
        assert_eq!(
            out[side * side + 1],
            -0.08,
            "(1, 0) from (0, 2) = 8 in the second plane"
        );
        assert_eq!(out[2 * side * side], 1.0);
        assert_eq!(shifted(&image, side, 0, 0), image);
    }

    #[test]
    fn views_are_the_image_its_zooms_shifts_and_their_mirrors_the_same_on_every_run() {
        let side = 16;
        // Left half black, right half white: the mirror swaps them.
        let image: Vec<f32> = (0..3 * side * side)
            .map(|i| if i % side < side / 2 { -1.0 } else { 1.0 })
            .collect();
        let augment = Augment {
            flip: true,
            zooms: 2,
            shifts: 1,
        };
        let views = augment.views(&image, side, 7);
        assert_eq!(views.len(), 8);
        assert_eq!(augment.views_per_image(), 8);
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
        // The shifted copy is the image moved by at most 1 pixel (16 / 16) along each axis, not 0.
        let moved: Vec<Vec<f32>> = (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
            .filter(|&d| d != (0, 0))
            .map(|(dx, dy)| shifted(&image, side, dx, dy))
            .collect();
        assert!(moved.contains(&views[6]), "a shifted copy");
        // Zooms come first, so adding shifts leaves a data set's zoomed copies as they were.
        let zooms_only = Augment {
            shifts: 0,
            ..augment
        };
        assert_eq!(views[..6], zooms_only.views(&image, side, 7)[..]);
        assert_eq!(views, augment.views(&image, side, 7));
        assert_ne!(views, augment.views(&image, side, 8));
        let plain = Augment::default().views(&image, side, 7);
        assert_eq!(plain, vec![image]);
    }
}
