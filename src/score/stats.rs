//! The figures of `sundae score` on feature vectors: the Frechet distance between two sets' Gaussian
//! statistics (as pytorch-fid computes FID), and k-NN precision and recall (Kynkaanniemi et al. 2019,
//! "Improved Precision and Recall Metric for Assessing Generative Models").

use anyhow::{Result, bail};
use faer::{Mat, Side};

/// Feature vectors of one set: `count` rows of `dims` values.
#[derive(Debug, Clone)]
pub struct Features {
    pub values: Vec<f32>,
    pub count: usize,
    pub dims: usize,
}

impl Features {
    pub fn new(values: Vec<f32>, dims: usize) -> Self {
        let count = values.len().checked_div(dims).unwrap_or(0);
        Self {
            values,
            count,
            dims,
        }
    }

    fn matrix(&self) -> Mat<f64> {
        Mat::from_fn(self.count, self.dims, |i, j| {
            self.values[i * self.dims + j] as f64
        })
    }
}

/// Refuses a set of `count` images too small for any statistics (fewer than 2) or for k-NN balls of
/// `k` neighbours; for a set no larger than the feature width, returns the warning to print: its
/// covariance is singular, so its FD is computable (as pytorch-fid computes it) but biased high, and
/// comparable only with figures of the same N and width.
pub fn check_size(count: usize, dims: usize, k: usize) -> Result<Option<String>> {
    if count < 2 {
        bail!("a set of {count} image(s) has no covariance: score at least 2 images");
    }
    if count <= k {
        bail!("a set of {count} images is too small: precision and recall need more than k = {k}");
    }
    Ok((count <= dims).then(|| {
        format!(
            "{count} images for {dims}-dimensional features: the covariance is singular, so FD is biased high; \
             compare it only with figures of the same N and --dims"
        )
    }))
}

/// Mean and covariance (normalised by N - 1, as `np.cov`) of a set's features.
pub struct Gaussian {
    pub mean: Vec<f64>,
    pub covariance: Mat<f64>,
}

impl Gaussian {
    pub fn of(features: &Features) -> Result<Self> {
        let (n, d) = (features.count, features.dims);
        check_size(n, d, 0)?;
        let x = features.matrix();
        let mean: Vec<f64> = (0..d)
            .map(|j| (0..n).map(|i| x[(i, j)]).sum::<f64>() / n as f64)
            .collect();
        let centred = Mat::from_fn(n, d, |i, j| x[(i, j)] - mean[j]);
        let covariance = centred.transpose() * &centred * faer::Scale(1.0 / (n as f64 - 1.0));
        Ok(Self { mean, covariance })
    }
}

/// The symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding count as zero).
fn symmetric_sqrt(m: &Mat<f64>) -> Result<Mat<f64>> {
    let eigen = m
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| anyhow::anyhow!("eigendecomposition failed: {e:?}"))?;
    let (u, s) = (eigen.U(), eigen.S().column_vector());
    let d = m.nrows();
    let scaled = Mat::from_fn(d, d, |i, j| u[(i, j)] * s[j].max(0.0).sqrt());
    Ok(&scaled * u.transpose())
}

/// ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)). The trace of the square root of
/// S_a S_b equals that of (S_a^(1/2) S_b S_a^(1/2))^(1/2), a symmetric matrix, so it is computed from
/// the eigenvalues of that one (pytorch-fid takes scipy's general `sqrtm` of the product).
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let root_a = symmetric_sqrt(&a.covariance)?;
    let inner = &root_a * &b.covariance * &root_a;
    // Symmetrise against rounding before the symmetric solver reads one triangle.
    let inner = Mat::from_fn(inner.nrows(), inner.ncols(), |i, j| {
        0.5 * (inner[(i, j)] + inner[(j, i)])
    });
    let eigen = inner
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| anyhow::anyhow!("eigendecomposition failed: {e:?}"))?;
    let trace_root: f64 = eigen
        .S()
        .column_vector()
        .iter()
        .map(|&v| v.max(0.0).sqrt())
        .sum();
    let trace = |m: &Mat<f64>| (0..m.nrows()).map(|i| m[(i, i)]).sum::<f64>();
    Ok(mean_term + trace(&a.covariance) + trace(&b.covariance) - 2.0 * trace_root)
}

/// Squared Euclidean distances between every row of `a` and every row of `b`, `[a.count, b.count]`.
fn squared_distances(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    let norms = |m: &Mat<f64>| -> Vec<f64> {
        (0..m.nrows())
            .map(|i| (0..m.ncols()).map(|j| m[(i, j)] * m[(i, j)]).sum())
            .collect()
    };
    let (na, nb) = (norms(a), norms(b));
    let dot = a * b.transpose();
    Mat::from_fn(a.nrows(), b.nrows(), |i, j| {
        (na[i] + nb[j] - 2.0 * dot[(i, j)]).max(0.0)
    })
}

/// Rows compared at once: bounds the distance matrix held in memory to ROWS x N values.
const ROWS: usize = 1024;

/// Each row's squared distance to its k-th nearest other row of the same set (the radius of its
/// k-NN ball; the row itself, at distance 0, is the 0-th).
fn knn_radii(x: &Mat<f64>, k: usize) -> Vec<f64> {
    let n = x.nrows();
    let mut radii = Vec::with_capacity(n);
    for start in (0..n).step_by(ROWS) {
        let end = (start + ROWS).min(n);
        let block = squared_distances(&x.subrows(start, end - start).to_owned(), x);
        for i in 0..end - start {
            let mut row: Vec<f64> = (0..n).map(|j| block[(i, j)]).collect();
            row.select_nth_unstable_by(k, f64::total_cmp);
            radii.push(row[k]);
        }
    }
    radii
}

/// Share of `queries` rows that fall inside at least one k-NN ball of `manifold`.
fn coverage(queries: &Mat<f64>, manifold: &Mat<f64>, radii: &[f64]) -> f64 {
    let n = queries.nrows();
    let mut inside = 0usize;
    for start in (0..n).step_by(ROWS) {
        let end = (start + ROWS).min(n);
        let block = squared_distances(&queries.subrows(start, end - start).to_owned(), manifold);
        inside += (0..end - start)
            .filter(|&i| (0..manifold.nrows()).any(|j| block[(i, j)] <= radii[j]))
            .count();
    }
    inside as f64 / n as f64
}

/// Precision (share of `candidate` inside the reference set's k-NN manifold: how much of what is
/// made looks real) and recall (share of `reference` inside the candidate set's manifold: how much of
/// the real variety is made).
pub fn precision_recall(
    candidate: &Features,
    reference: &Features,
    k: usize,
) -> Result<(f64, f64)> {
    for (name, set) in [("first", candidate), ("second", reference)] {
        if set.count <= k {
            bail!(
                "the {name} set has {} images: precision and recall need more than k = {k}",
                set.count
            );
        }
    }
    let (c, r) = (candidate.matrix(), reference.matrix());
    let reference_radii = knn_radii(&r, k);
    let candidate_radii = knn_radii(&c, k);
    Ok((
        coverage(&c, &r, &reference_radii),
        coverage(&r, &c, &candidate_radii),
    ))
}
