//! `sundae pairs`: a labelled generator on the held-out (name, style) pairs of a data set (see
//! `crate::pairs`): each drawn from its labels, compared by PSNR with the true drawing and with the
//! same emoji in the other styles.

use crate::data::images::{self, to_chw, to_rgb8};
use crate::data::labels::LabelSets;
use crate::data::{self, Split, evenly_spaced};
use crate::generate::{self, Generator, Job, Outputs, SamplerRequest};
use crate::pairs::{self, PairScore, find_pairs};
use crate::sundae::sample::SampleSettings;
use anyhow::{Result, bail};
use burn::tensor::Device;
use image::RgbImage;
use std::fmt;
use std::path::Path;

pub struct PairsRequest<'a> {
    pub model: &'a Path,
    /// A data source with held-out drawings (`emoji,iconify:DIR`).
    pub data: &'a str,
    /// Score at most this many pairs, evenly spread through them.
    pub max: Option<usize>,
    /// The sampler for every pair (its seed is every pair's seed); labels come from the pairs.
    pub sampler: SamplerRequest,
    /// A sheet of the first pairs: truth, generated, then the other styles.
    pub out: Option<&'a Path>,
    pub force: bool,
    pub json: bool,
}

/// Rows on the sheet, and drawings of other styles shown per row.
const SHEET_ROWS: usize = 16;
const SHEET_OTHERS: usize = 4;

#[derive(serde::Serialize)]
pub struct PairsReport {
    pairs: usize,
    /// Held-out drawings that make no pair (their emoji drawn in no other style, or a name or style the
    /// model does not know).
    unpaired: usize,
    guidance: f64,
    seed: u64,
    beats_best_share: f64,
    beats_mean_share: f64,
    median_generated_db: f64,
    median_best_other_db: f64,
    median_mean_other_db: f64,
    #[serde(skip)]
    json: bool,
    #[serde(skip)]
    sheet: Option<String>,
}

impl fmt::Display for PairsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.json {
            return f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?);
        }
        writeln!(
            f,
            "{} held-out (name, style) pairs ({} held-out drawings unpaired), guidance {}, seed {}",
            self.pairs, self.unpaired, self.guidance, self.seed
        )?;
        writeln!(
            f,
            "generated closer to the true drawing than every other style: {:.1} %; than the other styles on average: {:.1} %",
            100.0 * self.beats_best_share,
            100.0 * self.beats_mean_share
        )?;
        write!(
            f,
            "median PSNR to the true drawing: generated {:.2} dB, best other style {:.2} dB, other styles' mean {:.2} dB",
            self.median_generated_db, self.median_best_other_db, self.median_mean_other_db
        )?;
        if let Some(sheet) = &self.sheet {
            write!(
                f,
                "\nsheet (true, generated, other styles) written to {sheet}"
            )?;
        }
        Ok(())
    }
}

pub fn pairs(r: &PairsRequest, device: &Device) -> Result<PairsReport> {
    if let Some(out) = r.out {
        crate::files::check_new_file(out, r.force, &["png"])?;
    }
    if !r.sampler.labels.is_empty() || !r.sampler.random_labels.is_empty() {
        bail!("pairs draws each pair from its own labels: leave out --label and --random-label");
    }
    if !data::has_splits(r.data) {
        bail!(
            "'{}' has no held-out split: pairs needs emoji or iconify:DIR sources",
            r.data
        );
    }
    let known = LabelSets::read(r.model)?;
    if known
        .sets
        .iter()
        .filter(|s| pairs::PAIR_SETS.contains(&s.name.as_str()))
        .count()
        < pairs::PAIR_SETS.len()
    {
        bail!(
            "{} has no 'name' and 'style' label sets: pairs needs a model trained with them",
            r.model.display()
        );
    }
    // Checked before any work: a bad sampler flag fails here, not after the data is drawn.
    let base = r.sampler.resolve(r.model)?;
    let generator = Generator::load(r.model, device)?;
    let side = generator.vq_config.resolution;
    let held_out = data::load(r.data, side, Split::Validation)?.samples;
    let all = data::load(r.data, side, Split::All)?.samples;
    let mut found = find_pairs(&held_out, &all, &known);
    let unpaired = held_out.len() - found.len();
    if let Some(max) = r.max {
        found = evenly_spaced(found.len(), max)
            .into_iter()
            .map(|i| found[i].clone())
            .collect();
    }
    if found.is_empty() {
        bail!("no held-out drawing in '{}' makes a pair", r.data);
    }
    let bar = crate::progress::bar(found.len(), "pairs");
    let mut scores: Vec<PairScore> = Vec::with_capacity(found.len());
    let mut drawn: Vec<RgbImage> = Vec::new();
    let sheet_rows = evenly_spaced(found.len(), SHEET_ROWS);
    let blank = RgbImage::from_pixel(side as u32, side as u32, image::Rgb([255; 3]));
    for (i, pair) in found.iter().enumerate() {
        let truth = &held_out[pair.truth];
        let settings = SampleSettings {
            labels: known.parse_requests(&pairs::requests(truth))?,
            ..base.clone()
        };
        let job = Job {
            model_dir: r.model,
            preloaded: Some(&generator),
            count: 1,
            settings,
            batch_size: 1,
            size: (None, None),
            render_size: None,
            outputs: Outputs::in_memory(),
        };
        let image = generate::sample_live(&job, &mut generate::unobserved, device)?
            .tiles
            .remove(0);
        let others: Vec<&data::Sample> = pair.others.iter().map(|&o| &all[o]).collect();
        scores.push(pairs::score(&to_chw(&image), truth, &others));
        if r.out.is_some() && sheet_rows.contains(&i) {
            drawn.push(to_rgb8(&truth.pixels, side, side));
            drawn.push(image);
            for k in 0..SHEET_OTHERS {
                drawn.push(
                    others
                        .get(k)
                        .map_or_else(|| blank.clone(), |o| to_rgb8(&o.pixels, side, side)),
                );
            }
        }
        bar.inc(1);
    }
    bar.finish();
    if let Some(out) = r.out {
        images::save(&images::grid(&drawn, 2 + SHEET_OTHERS), out)?;
    }
    let summary = pairs::summarize(&scores);
    Ok(PairsReport {
        pairs: summary.pairs,
        unpaired,
        guidance: base.guidance,
        seed: base.seed,
        beats_best_share: summary.beats_best,
        beats_mean_share: summary.beats_mean,
        median_generated_db: summary.median_generated,
        median_best_other_db: summary.median_best_other,
        median_mean_other_db: summary.median_mean_other,
        json: r.json,
        sheet: r.out.map(|o| o.display().to_string()),
    })
}
