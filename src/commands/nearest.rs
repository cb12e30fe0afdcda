//! `sundae nearest`: each image's nearest data image (or mirror image of one) by PSNR.

use crate::data::{self, Split};
use anyhow::{Result, bail};
use std::fmt;
use std::path::{Path, PathBuf};

pub struct NearestRequest<'a> {
    pub images: &'a [PathBuf],
    /// Also look up the first N held-out emoji.
    pub emoji: usize,
    pub data: &'a str,
    pub split: Split,
    pub resolution: usize,
    /// A grid of the pairs.
    pub out: Option<&'a Path>,
    pub force: bool,
}

/// One line per image, then the summary.
pub struct NearestReport {
    lines: Vec<String>,
}

impl fmt::Display for NearestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

pub fn nearest(r: &NearestRequest) -> Result<NearestReport> {
    if r.resolution == 0 {
        bail!("--resolution must be at least 1");
    }
    if let Some(out) = r.out {
        crate::files::check_new_file(out, r.force, &["png"])?;
    }
    let queries = crate::nearest::queries(r.images, r.emoji, r.resolution)?;
    let data = data::load(r.data, r.resolution, r.split)?;
    let matches = crate::nearest::find(&queries, &data, r.resolution, r.out)?;
    let mut lines: Vec<String> = queries
        .iter()
        .zip(&matches)
        .map(|(query, found)| {
            format!(
                "{}: {:.2} dB, nearest {}{}",
                query.name,
                found.psnr,
                data.samples[found.index].name,
                if found.mirrored { " (mirrored)" } else { "" }
            )
        })
        .collect();
    let (median, largest) = crate::nearest::summary(&matches);
    lines.push(format!(
        "{} image(s) against {} data images and their mirror images: nearest at median {median:.2} dB, at most {largest:.2} dB",
        matches.len(),
        data.samples.len()
    ));
    if let Some(out) = r.out {
        lines.push(format!("pairs written to {}", out.display()));
    }
    Ok(NearestReport { lines })
}
