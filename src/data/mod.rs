//! Data: image folders, the built-in emoji set, and image <-> tensor conversion.

pub mod augment;
pub mod emoji;
pub mod emoji_names;
pub mod iconify;
pub mod images;
pub mod labels;
pub mod latents;
pub mod svg;

use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// An image's labels: label set -> value (`style` -> `noto`, `name` -> `red-heart`). Empty for
/// plain image folders.
pub type Labels = BTreeMap<String, String>;

/// One prepared image: a name for messages and file names, CHW values in [-1, 1], and its labels.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub pixels: Vec<f32>,
    pub labels: Labels,
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

/// Whether every part of a data source has a held-out split (`emoji`, `iconify:DIR`); a plain image
/// folder has none: all of it is training data.
pub fn has_splits(source: &str) -> bool {
    source
        .split(',')
        .map(str::trim)
        .all(|part| part == "emoji" || part.starts_with("iconify:"))
}

/// Loads a data source at `resolution`: `emoji` (the built-in Twemoji set), `iconify:DIR` (the
/// Iconify emoji sets in DIR), an image folder, or several of these joined by commas
/// (`emoji,iconify:DIR`), in that order.
pub fn load(source: &str, resolution: usize, split: Split) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for part in source.split(',').map(str::trim) {
        let one = if part == "emoji" {
            emoji::load(resolution, split)
        } else if let Some(dir) = part.strip_prefix("iconify:") {
            iconify::load(Path::new(dir), resolution, split)?
        } else {
            let dir = Path::new(part);
            if !dir.is_dir() {
                bail!("data source '{part}' is neither 'emoji', 'iconify:DIR' nor a directory");
            }
            images::load_folder(dir, resolution)?
        };
        loaded.samples.extend(one.samples);
        loaded.skipped.extend(one.skipped);
    }
    if loaded.samples.is_empty() {
        bail!(
            "no readable image in '{source}' ({} unreadable)",
            loaded.skipped.len()
        );
    }
    Ok(loaded)
}
