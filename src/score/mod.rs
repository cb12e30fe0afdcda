//! `sundae score`: how close two image sets are, in the feature space of an Inception-v3: the Frechet
//! distance of the feature statistics (FID with pytorch-fid's weights, "FID-like" with any other) and
//! k-NN precision and recall. The second set is the reference: precision is the share of the first
//! set's images that fall inside the second set's feature manifold, recall the share of the second
//! set's images that the first covers.

pub mod inception;
pub mod resize;
pub mod sets;
pub mod stats;

use crate::sundae::sample::SampleSettings;
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use image::RgbImage;
use inception::FeatureNet;
use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use serde::Serialize;
use sets::ImageSet;
use sha2::{Digest, Sha256};
use stats::{Features, Gaussian};
use std::path::{Path, PathBuf};

/// What to compare and how.
pub struct ScoreOptions {
    /// Inception-v3 weights (`FeatureNet::load`).
    pub features: PathBuf,
    /// Feature width: 2048 (the standard), or 768, 192, 64 (earlier blocks, for small sets).
    pub dims: usize,
    /// Neighbours per k-NN ball.
    pub k: usize,
    /// Side images are prepared at before the network's resize (None: folders as they are, data sets
    /// at 64).
    pub resolution: Option<usize>,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Where features of sets on disk are kept between runs (None: not kept).
    pub cache: Option<PathBuf>,
    /// At most this many images of the first set (if it is on disk), evenly spread through it: to
    /// score part of a set at the count of another; the reference set is always whole.
    pub max: Option<usize>,
}

/// How a generator set draws its images.
pub struct Draw {
    pub count: usize,
    pub settings: SampleSettings,
    pub batch_size: usize,
}

/// The figures, with what they were computed on.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    pub fd: f64,
    pub precision: f64,
    pub recall: f64,
    pub k: usize,
    pub count_a: usize,
    pub count_b: usize,
    pub dims: usize,
    /// The feature network (its weights' name) and whether the figure is the standard FID.
    pub network: String,
    pub standard_fid: bool,
}

impl std::fmt::Display for ScoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.standard_fid { "FID" } else { "FD" };
        write!(
            f,
            "{name} {:.2}  precision {:.3}  recall {:.3}  (k = {}; {} vs {} images; {}-d features of {})",
            self.fd,
            self.precision,
            self.recall,
            self.k,
            self.count_a,
            self.count_b,
            self.dims,
            self.network
        )
    }
}

/// Printed with every score.
pub const CAVEAT: &str = "compare figures of equal image counts only (FD falls as N grows), and read precision \
    with care: blurred or random images can score high";

/// The default feature cache: `$XDG_CACHE_HOME/sundae/features` or `~/.cache/sundae/features`.
pub fn default_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("sundae").join("features"))
}

/// Scores set `a` against reference set `b`. A generator set draws `draw.count` images.
pub fn score(
    a: &str,
    b: &str,
    options: &ScoreOptions,
    draw: Option<&Draw>,
    device: &Device,
) -> Result<ScoreReport> {
    if !inception::DIMS.contains(&options.dims) {
        bail!(
            "--dims {}: expected one of 64, 192, 768, 2048",
            options.dims
        );
    }
    if options.k == 0 {
        bail!("-k must be at least 1");
    }
    let sets = [ImageSet::parse(a)?, ImageSet::parse(b)?];
    let generators = sets
        .iter()
        .filter(|s| matches!(s, ImageSet::Generator(_)))
        .count();
    if draw.is_some() && generators == 0 {
        bail!("--generate needs a generator bundle among the two sets");
    }
    let net = FeatureNet::load(&options.features, device)?;
    // Load what is on disk first and check both sizes, so that a set too small is refused before
    // minutes of feature extraction or sampling.
    let prepared: Vec<Option<sets::Prepared>> = sets
        .iter()
        .enumerate()
        .map(|(i, set)| match set {
            ImageSet::Generator(_) => Ok(None),
            other => {
                let max = if i == 0 { options.max } else { None };
                sets::prepare(other, options.resolution, max).map(Some)
            }
        })
        .collect::<Result<_>>()?;
    for (which, (set, prepared)) in ["first", "second"].iter().zip(sets.iter().zip(&prepared)) {
        let count = match (set, prepared) {
            (_, Some(p)) => p.images.len(),
            (_, None) => draw.map(|d| d.count).with_context(|| {
                format!("the {which} set is a generator bundle: pass --generate N")
            })?,
        };
        stats::check_size(count, options.dims, options.k)
            .with_context(|| format!("{which} set"))?;
    }
    let mut features = Vec::new();
    for (set, prepared) in sets.iter().zip(prepared) {
        features.push(match prepared {
            Some(prepared) => features_on_disk(prepared, &net, options, device)?,
            None => drawn_features(set, &net, options, draw.expect("checked above"), device)?,
        });
    }
    let (fa, fb) = (&features[0], &features[1]);
    let fd = stats::frechet_distance(
        &Gaussian::of(fa).context("first set")?,
        &Gaussian::of(fb).context("second set")?,
    )?;
    let (precision, recall) = stats::precision_recall(fa, fb, options.k)?;
    Ok(ScoreReport {
        fd,
        precision,
        recall,
        k: options.k,
        count_a: fa.count,
        count_b: fb.count,
        dims: options.dims,
        standard_fid: net.conventions == inception::Conventions::FID && options.dims == 2048,
        network: net.name.clone(),
    })
}

/// Features of a generator's images, drawn afresh.
fn drawn_features(
    set: &ImageSet,
    net: &FeatureNet,
    options: &ScoreOptions,
    draw: &Draw,
    device: &Device,
) -> Result<Features> {
    let ImageSet::Generator(dir) = set else {
        unreachable!("only generator sets are drawn")
    };
    let mut images =
        crate::generate::draw_images(dir, draw.count, &draw.settings, draw.batch_size, device)?;
    if let Some(side) = options.resolution {
        images = images.iter().map(|i| resized(i, side)).collect();
    }
    Ok(compute(&images, net, options, device))
}

/// Features of a set on disk: from the cache when they are there, else computed and cached.
fn features_on_disk(
    prepared: sets::Prepared,
    net: &FeatureNet,
    options: &ScoreOptions,
    device: &Device,
) -> Result<Features> {
    let key = format!(
        "{:x}",
        Sha256::digest(format!("{}\n{}\n{}", net.hash, options.dims, prepared.identity).as_bytes())
    );
    let cached = options
        .cache
        .as_ref()
        .map(|dir| dir.join(format!("{key}.npy")));
    if let Some(path) = &cached
        && let Some(features) = read_cached(path, options.dims)
    {
        return Ok(features);
    }
    let features = compute(&prepared.images, net, options, device);
    if let Some(path) = &cached {
        write_cached(path, &features)?;
    }
    Ok(features)
}

fn resized(image: &RgbImage, side: usize) -> RgbImage {
    if image.width() as usize == side && image.height() as usize == side {
        return image.clone();
    }
    let rgba = image::DynamicImage::ImageRgb8(image.clone()).to_rgba8();
    crate::data::images::to_rgb8(&crate::data::images::prepare(&rgba, side), side, side)
}

fn compute(
    images: &[RgbImage],
    net: &FeatureNet,
    options: &ScoreOptions,
    device: &Device,
) -> Features {
    let bar = crate::progress::bar(images.len(), "computing features of images");
    let mut values = Vec::with_capacity(images.len() * options.dims);
    for chunk in images.chunks(options.batch_size.max(1)) {
        values.extend(net.features(chunk, options.dims, device));
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    Features::new(values, options.dims)
}

fn read_cached(path: &Path, dims: usize) -> Option<Features> {
    let file = std::fs::File::open(path).ok()?;
    let array = Array2::<f32>::read_npy(file).ok()?;
    (array.ncols() == dims).then(|| Features::new(array.iter().copied().collect(), dims))
}

fn write_cached(path: &Path, features: &Features) -> Result<()> {
    let dir = path.parent().expect("a file in the cache folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let array = Array2::from_shape_vec((features.count, features.dims), features.values.clone())?;
    let mut bytes = Vec::new();
    array.write_npy(&mut bytes)?;
    crate::bundle::write_atomic(path, &bytes)
}
