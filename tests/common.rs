//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use std::path::PathBuf;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn read_f32(name: &str) -> (Vec<f32>, Vec<usize>) {
    let array = ArrayD::<f32>::read_npy(std::fs::File::open(fixture(name)).unwrap()).unwrap();
    (array.iter().copied().collect(), array.shape().to_vec())
}

pub fn read_i64(name: &str) -> (Vec<i64>, Vec<usize>) {
    let array = ArrayD::<i64>::read_npy(std::fs::File::open(fixture(name)).unwrap()).unwrap();
    (array.iter().copied().collect(), array.shape().to_vec())
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
