//! Nearest neighbours in a data set, to see whether generated images copy their training images:
//! each query is compared pixel by pixel with every data image and its mirror image (the emoji
//! prior's latents hold both), scored by PSNR as `vqgan reconstruct` scores reconstructions.

use crate::data::augment::mirrored as mirror;
use crate::data::images;
use crate::data::images::psnr;
use crate::data::{Loaded, Sample, Split};
use anyhow::{Result, bail};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The data image closest to one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Index into the data set's samples.
    pub index: usize,
    /// The closest was the data image's mirror image.
    pub mirrored: bool,
    pub psnr: f64,
}

/// The data image, or mirror image of one, with the smallest squared error to `query` (the highest
/// PSNR); ties go to the first in data order, an image before its mirror image. Mirror images are
/// compared in place (row by row, reversed), so the search holds no copy of the data.
pub fn nearest(query: &[f32], data: &[Sample], side: usize) -> Match {
    let squared_error = |pixels: &[f32], mirrored: bool| -> f32 {
        query
            .chunks(side)
            .zip(pixels.chunks(side))
            .map(|(q, row)| {
                let pairs = q.iter().zip(row.iter());
                let pairs_mirrored = q.iter().zip(row.iter().rev());
                if mirrored {
                    pairs_mirrored.map(|(a, b)| (a - b) * (a - b)).sum::<f32>()
                } else {
                    pairs.map(|(a, b)| (a - b) * (a - b)).sum::<f32>()
                }
            })
            .sum()
    };
    let (_, index, mirrored) = data
        .iter()
        .enumerate()
        .flat_map(|(i, s)| [false, true].map(|m| (squared_error(&s.pixels, m), i, m)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .expect("a data set holds at least one image");
    let pixels = &data[index].pixels;
    let psnr = if mirrored {
        psnr(query, &mirror(pixels, side))
    } else {
        psnr(query, pixels)
    };
    Match {
        index,
        mirrored,
        psnr,
    }
}

/// The images to look up at `side` x `side`: each of `paths` (an image, or a folder of them), then the
/// first `held_out_emoji` validation emoji.
pub fn queries(paths: &[PathBuf], held_out_emoji: usize, side: usize) -> Result<Vec<Sample>> {
    let mut queries = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            images::list_images(path)
        } else {
            vec![path.clone()]
        };
        for file in files {
            queries.push(Sample {
                name: file.display().to_string(),
                pixels: images::load_image(&file, side)?,
                labels: Default::default(),
            });
        }
    }
    if held_out_emoji > 0 {
        let held_out = crate::data::load("emoji", side, Split::Validation)?;
        queries.extend(held_out.samples.into_iter().take(held_out_emoji));
    }
    if queries.is_empty() {
        bail!("no image to look up: name images or folders, or give --emoji N");
    }
    Ok(queries)
}

/// The nearest data image of every query (in parallel), and a grid PNG at `out` with one pair per
/// query: the query and its nearest data image (mirrored when that was closer), two pairs a row.
pub fn find(
    queries: &[Sample],
    data: &Loaded,
    side: usize,
    out: Option<&Path>,
) -> Result<Vec<Match>> {
    if queries.is_empty() {
        bail!("no image to look up");
    }
    let bar = crate::progress::bar(queries.len(), "searching");
    let matches: Vec<Match> = queries
        .par_iter()
        .map(|q| {
            let found = nearest(&q.pixels, &data.samples, side);
            bar.inc(1);
            found
        })
        .collect();
    bar.finish();
    if let Some(out) = out {
        let mut tiles = Vec::with_capacity(2 * queries.len());
        for (query, found) in queries.iter().zip(&matches) {
            let pixels = &data.samples[found.index].pixels;
            let shown = if found.mirrored {
                mirror(pixels, side)
            } else {
                pixels.clone()
            };
            tiles.push(images::to_rgb8(&query.pixels, side, side));
            tiles.push(images::to_rgb8(&shown, side, side));
        }
        images::save(&images::grid(&tiles, 4), out)?;
    }
    Ok(matches)
}

/// The median of `values` (the mean of the middle two for an even count; NaN for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median and the largest PSNR of the matches.
pub fn summary(matches: &[Match]) -> (f64, f64) {
    let values: Vec<f64> = matches.iter().map(|m| m.psnr).collect();
    let largest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(values), largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(side: usize, rgb: [f32; 3]) -> Vec<f32> {
        rgb.iter()
            .flat_map(|&c| std::iter::repeat_n(c, side * side))
            .collect()
    }

    fn sample(name: &str, pixels: Vec<f32>) -> Sample {
        Sample {
            name: name.into(),
            pixels,
            labels: Default::default(),
        }
    }

    #[test]
    fn black_is_nearest_to_red_not_yellow_at_the_hand_computed_psnr() {
        // Black (-1, -1, -1) against red (1, -1, -1): squared error 4 in one channel of three, so
        // MSE 4/3 and PSNR 10 log10(4 / (4/3)) = 10 log10 3; against yellow MSE 8/3.
        let data = [
            sample("yellow", constant(4, [1.0, 1.0, -1.0])),
            sample("red", constant(4, [1.0, -1.0, -1.0])),
        ];
        let found = nearest(&constant(4, [-1.0; 3]), &data, 4);
        assert_eq!((found.index, found.mirrored), (1, false));
        assert!((found.psnr - 10.0 * 3f64.log10()).abs() < 1e-6, "{found:?}");
    }

    #[test]
    fn a_mirrored_copy_is_found_as_the_mirror_image() {
        let side = 4;
        // A left-to-right ramp, different in every column, and its distractor: the same ramp darker.
        let ramp: Vec<f32> = (0..3 * side * side)
            .map(|i| (i % side) as f32 / side as f32)
            .collect();
        let darker: Vec<f32> = ramp.iter().map(|v| v - 0.5).collect();
        let data = [sample("darker", darker), sample("ramp", ramp.clone())];
        let found = nearest(&mirror(&ramp, side), &data, side);
        assert_eq!((found.index, found.mirrored), (1, true));
        assert!(found.psnr > 100.0, "an exact copy: {found:?}");
    }

    #[test]
    fn summary_is_the_median_and_the_largest() {
        let at = |psnr| Match {
            index: 0,
            mirrored: false,
            psnr,
        };
        assert_eq!(summary(&[at(3.0), at(1.0), at(2.0)]), (2.0, 3.0));
        assert_eq!(summary(&[at(4.0), at(1.0), at(2.0), at(3.0)]), (2.5, 4.0));
    }
}
