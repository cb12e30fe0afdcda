//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Reads every shipped config `configs/<prefix>*.toml` with `read`, panicking with the file's name on
/// the first that fails, and checks that there are at least `at_least` of them; returns them by file
/// name.
pub fn read_every_config<T, E: std::fmt::Display>(
    prefix: &str,
    at_least: usize,
    read: impl Fn(&Path) -> Result<T, E>,
) -> BTreeMap<String, T> {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let read: BTreeMap<String, T> = std::fs::read_dir(&configs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .filter(|(name, _)| name.starts_with(prefix) && name.ends_with(".toml"))
        .map(|(name, path)| {
            let config = read(&path).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            (name, config)
        })
        .collect();
    assert!(
        read.len() >= at_least,
        "only {} {prefix}* configs found",
        read.len()
    );
    read
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

/// Runs the `sundae` binary.
pub fn sundae(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sundae"))
        .args(args)
        .output()
        .expect("runs")
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = sundae(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail; returns its stderr, checked to be a single `error:` line.
pub fn fails(args: &[&str]) -> String {
    let out = sundae(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

pub fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

pub fn root(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `sundae bundle`: a VQ-GAN bundle and a prior run joined into a generator bundle at `out`.
pub fn join(vqgan: &Path, run: &Path, out: &Path) {
    ok(&[
        "bundle",
        "--vqgan",
        s(vqgan),
        "--prior",
        s(run),
        "--out",
        s(out),
    ]);
}

/// `dir/latents`: the validation emoji encoded by the fixture VQ-GAN (8x8 grids of 16 codes),
/// made once per folder.
pub fn tiny_latents(dir: &Path) -> PathBuf {
    let latents = dir.join("latents");
    if !latents.exists() {
        ok(&[
            "encode",
            "--vqgan",
            s(&root("tests/fixtures/tiny-bundle")),
            "--data",
            "emoji",
            "--split",
            "validation",
            "--out",
            s(&latents),
        ]);
    }
    latents
}

/// A tiny generator: the fixture VQ-GAN joined with a briefly trained tiny prior.
pub fn generator(dir: &Path) -> PathBuf {
    let latents = tiny_latents(dir);
    let run = dir.join("prior-run");
    let model = dir.join("model");
    let vqgan = root("tests/fixtures/tiny-bundle");
    ok(&[
        "train",
        "--latents",
        s(&latents),
        "--config",
        s(&root("configs/prior-tiny.toml")),
        "--run",
        s(&run),
        "--vqgan",
        s(&vqgan),
    ]);
    join(&vqgan, &run, &model);
    model
}

/// A `side` x `side` gradient image and a mask that keeps its left half, as files in `dir`.
pub fn left_half_inputs(dir: &Path, side: u32) -> (image::RgbImage, PathBuf, PathBuf) {
    use image::{Rgb, RgbImage};
    let image_path = dir.join("image.png");
    let mask_path = dir.join("mask.png");
    let step = 240 / side;
    let original = RgbImage::from_fn(side, side, |x, y| {
        Rgb([(x * step) as u8, (y * step) as u8, 90])
    });
    original.save(&image_path).unwrap();
    RgbImage::from_fn(side, side, |x, _| {
        if x < side / 2 {
            Rgb([255, 255, 255])
        } else {
            Rgb([0, 0, 0])
        }
    })
    .save(&mask_path)
    .unwrap();
    (original, image_path, mask_path)
}
