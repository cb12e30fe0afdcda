//! Data: image folders, the built-in emoji set, and image <-> tensor conversion.

pub mod augment;
pub mod emoji;
pub mod images;
pub mod latents;

use anyhow::{Result, bail};
use std::path::Path;

/// One prepared image: a name for messages and file names, and CHW values in [-1, 1].
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub pixels: Vec<f32>,
}

/// Which part of a data set to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
    All,
}

/// A loaded data set plus the files that could not be read (named, so the user can fix them).
#[derive(Debug, Default)]
pub struct Loaded {
    pub samples: Vec<Sample>,
    pub skipped: Vec<String>,
}

/// Loads `emoji` (the built-in set) or an image folder at `resolution`.
pub fn load(source: &str, resolution: usize, split: Split) -> Result<Loaded> {
    let loaded = if source == "emoji" {
        emoji::load(resolution, split)
    } else {
        let dir = Path::new(source);
        if !dir.is_dir() {
            bail!("data source '{source}' is neither 'emoji' nor a directory");
        }
        images::load_folder(dir, resolution)?
    };
    if loaded.samples.is_empty() {
        bail!(
            "no readable image in '{source}' ({} unreadable)",
            loaded.skipped.len()
        );
    }
    Ok(loaded)
}
