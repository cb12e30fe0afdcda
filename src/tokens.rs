//! Token grids and decoded images as `.npy` files (DECISIONS.md "Files and formats").

use anyhow::{Context, Result, bail};
use ndarray::{Array3, Array4, ArrayD, IxDyn};
use ndarray_npy::{ReadNpyExt, ReadableElement, WriteNpyExt};
use std::io::BufWriter;
use std::path::Path;

/// A batch of token grids, row-major `[batch, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenGrids {
    pub values: Vec<i64>,
    pub shape: [usize; 3],
}

impl TokenGrids {
    /// `batch` grids of uniformly random tokens in `0..vocab` (the sampler's start).
    pub fn random(
        batch: usize,
        height: usize,
        width: usize,
        vocab: usize,
        rng: &mut crate::train::SplitMix,
    ) -> Self {
        Self {
            values: (0..batch * height * width)
                .map(|_| rng.below(vocab) as i64)
                .collect(),
            shape: [batch, height, width],
        }
    }

    /// Grids in the batch.
    pub fn batch(&self) -> usize {
        self.shape[0]
    }

    /// Tokens per grid.
    pub fn per_grid(&self) -> usize {
        self.shape[1] * self.shape[2]
    }

    /// The grids at `picks`, in that order.
    pub fn from_picks(&self, picks: &[usize]) -> Self {
        let n = self.per_grid();
        Self {
            values: picks
                .iter()
                .flat_map(|&i| self.values[i * n..(i + 1) * n].iter().copied())
                .collect(),
            shape: [picks.len(), self.shape[1], self.shape[2]],
        }
    }

    /// Grids `range` of the batch, as a batch of their own.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        let n = self.per_grid();
        Self {
            values: self.values[range.start * n..range.end * n].to_vec(),
            shape: [range.len(), self.shape[1], self.shape[2]],
        }
    }

    /// Checks every token lies in `0..vocabulary`, naming the first one that does not.
    pub fn check_vocabulary(&self, vocabulary: usize) -> Result<()> {
        if let Some((i, &v)) = self
            .values
            .iter()
            .enumerate()
            .find(|&(_, &v)| v < 0 || v as usize >= vocabulary)
        {
            let [_, h, w] = self.shape;
            bail!(
                "token {v} at (image {}, row {}, column {}) is outside the vocabulary 0..{}",
                i / (h * w),
                (i / w) % h,
                i % w,
                vocabulary
            );
        }
        Ok(())
    }
}

/// How many positions of two token-grid files of the same shape hold the same token, of how many.
pub fn agreement(a: &Path, b: &Path) -> Result<(usize, usize)> {
    let (a_grids, b_grids) = (read_tokens(a)?, read_tokens(b)?);
    if a_grids.shape != b_grids.shape {
        bail!(
            "{} holds grids of shape {:?} but {} holds {:?}",
            a.display(),
            a_grids.shape,
            b.display(),
            b_grids.shape
        );
    }
    let equal = a_grids
        .values
        .iter()
        .zip(&b_grids.values)
        .filter(|(x, y)| x == y)
        .count();
    Ok((equal, a_grids.values.len()))
}

/// Reads an integer `.npy` of shape `[B, h, w]` (or `[h, w]`, taken as a batch of one).
pub fn read_tokens(path: &Path) -> Result<TokenGrids> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let array = read_integer_npy(&bytes)
        .with_context(|| format!("{}: not an integer .npy array", path.display()))?;
    let shape = match *array.shape() {
        [b, h, w] => [b, h, w],
        [h, w] => [1, h, w],
        ref other => bail!(
            "{}: token grids must have shape [B, h, w], found {:?}",
            path.display(),
            other
        ),
    };
    Ok(TokenGrids {
        values: array.iter().copied().collect(),
        shape,
    })
}

fn read_integer_npy(bytes: &[u8]) -> Result<ArrayD<i64>> {
    fn as_i64<T: ReadableElement + Copy + TryInto<i64>>(bytes: &[u8]) -> Option<ArrayD<i64>> {
        let array = ArrayD::<T>::read_npy(bytes).ok()?;
        let values: Option<Vec<i64>> = array.iter().map(|&v| v.try_into().ok()).collect();
        ArrayD::from_shape_vec(IxDyn(array.shape()), values?).ok()
    }
    as_i64::<i64>(bytes)
        .or_else(|| as_i64::<i32>(bytes))
        .or_else(|| as_i64::<i16>(bytes))
        .or_else(|| as_i64::<u16>(bytes))
        .or_else(|| as_i64::<u8>(bytes))
        .or_else(|| as_i64::<u32>(bytes))
        .or_else(|| as_i64::<u64>(bytes))
        .or_else(|| as_i64::<i8>(bytes))
        .context("expected a NumPy array of integers")
}

/// Writes token grids as an int64 `.npy` `[B, h, w]`.
pub fn write_tokens(path: &Path, grids: &TokenGrids) -> Result<()> {
    let array = Array3::from_shape_vec(grids.shape, grids.values.clone())?;
    write_npy(path, |w| array.write_npy(w))
}

/// Token grids as the bytes of an int64 `.npy` `[B, h, w]` (a download).
pub fn npy_bytes(grids: &TokenGrids) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    Array3::from_shape_vec(grids.shape, grids.values.clone())?.write_npy(&mut bytes)?;
    Ok(bytes)
}

/// Writes images as a float32 `.npy` `[B, 3, H, W]`.
pub fn write_images_npy(path: &Path, values: Vec<f32>, shape: [usize; 4]) -> Result<()> {
    let array = Array4::from_shape_vec(shape, values)?;
    write_npy(path, |w| array.write_npy(w))
}

/// Writes float32 logits `[B, N, V]` as a `.npy`.
pub fn write_logits_npy(path: &Path, values: Vec<f32>, shape: [usize; 3]) -> Result<()> {
    let array = ndarray::Array3::from_shape_vec(shape, values)?;
    write_npy(path, |w| array.write_npy(w))
}

/// Writes through a temporary file and a rename (see `files::write_file_atomic`).
fn write_npy(
    path: &Path,
    write: impl FnOnce(BufWriter<std::fs::File>) -> Result<(), ndarray_npy::WriteNpyError>,
) -> Result<()> {
    crate::files::write_file_atomic(path, |tmp| {
        let file = std::fs::File::create(tmp)
            .with_context(|| format!("cannot create {}", path.display()))?;
        write(BufWriter::new(file)).with_context(|| format!("cannot write {}", path.display()))
    })
}
