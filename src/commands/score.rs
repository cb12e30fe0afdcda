//! `sundae score`: FD, precision and recall of one image set against another (see `crate::score`).

use crate::generate::SamplerRequest;
use crate::score::{Draw, ScoreOptions, ScoreReport, default_cache};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use std::fmt;
use std::path::{Path, PathBuf};

pub struct ScoreRequest<'a> {
    pub set_a: &'a str,
    pub set_b: &'a str,
    /// None: the project's network, where `scripts/fetch-feature-net.sh` puts it.
    pub features: Option<PathBuf>,
    pub dims: usize,
    pub k: usize,
    pub resolution: Option<usize>,
    pub max: Option<usize>,
    /// Images to draw from the generator bundle among the sets.
    pub generate: Option<usize>,
    pub sampler: SamplerRequest,
    pub json: bool,
    pub no_cache: bool,
    pub batch_size: usize,
}

/// The figures as a line, or as one JSON line.
pub struct ScoreLine {
    pub report: ScoreReport,
    pub json: bool,
}

impl fmt::Display for ScoreLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.json {
            f.write_str(&serde_json::to_string(&self.report).map_err(|_| fmt::Error)?)
        } else {
            write!(f, "{}", self.report)
        }
    }
}

/// The samples `sundae sample` draws with: its batch, so that one seed gives the same images.
const DRAW_BATCH: usize = 16;

pub fn score(r: &ScoreRequest, device: &Device) -> Result<ScoreLine> {
    let features = match &r.features {
        Some(path) => path.clone(),
        None => default_cache()
            .map(|c| c.with_file_name("nsfwjs-inception-v3.safetensors"))
            .filter(|p| p.is_file())
            .context(
                "no feature weights: pass --features (pytorch-fid's pt_inception-2015-12-05-6726825d.pth \
                 for the standard FID) or run scripts/fetch-feature-net.sh",
            )?,
    };
    let options = ScoreOptions {
        features,
        dims: r.dims,
        k: r.k,
        resolution: r.resolution,
        max: r.max,
        batch_size: r.batch_size,
        cache: if r.no_cache { None } else { default_cache() },
    };
    let draw = match r.generate {
        Some(count) => {
            let bundle = [r.set_a, r.set_b]
                .into_iter()
                .map(Path::new)
                .find(|p| p.join(crate::bundle::PRIOR_CONFIG).is_file())
                .context("--generate needs a generator bundle among the two sets")?;
            if count == 0 {
                bail!("--generate must be at least 1");
            }
            Some(Draw {
                count,
                settings: r.sampler.resolve(bundle)?,
                batch_size: DRAW_BATCH,
            })
        }
        None => None,
    };
    let report = crate::score::score(r.set_a, r.set_b, &options, draw.as_ref(), device)?;
    eprintln!("note: {}", crate::score::CAVEAT);
    Ok(ScoreLine {
        report,
        json: r.json,
    })
}
