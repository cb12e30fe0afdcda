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

/// Which part of a data set to load (a command-line value: train, validation, all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

/// `count` indices spread evenly over `0..len` (all of them when `count >= len`): a subset that
/// samples the whole of an ordered set (the emoji sets are ordered by code, so a prefix would be all
/// flags).
pub fn evenly_spaced(len: usize, count: usize) -> Vec<usize> {
    let count = count.min(len);
    (0..count).map(|i| i * len / count).collect()
}

/// A data source with an optional `:train`, `:validation` or `:all` suffix (`emoji:train`,
/// `emoji,iconify:DIR:validation`): the source and the split (`default` without a suffix).
pub fn source_and_split(spec: &str, default: Split) -> (&str, Split) {
    match spec.rsplit_once(':') {
        Some((rest, "train")) => (rest, Split::Train),
        Some((rest, "validation")) => (rest, Split::Validation),
        Some((rest, "all")) => (rest, Split::All),
        _ => (spec, default),
    }
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

/// The SVG documents of a vector data source's chosen split, by the names [`load`] gives their
/// samples (`emoji`: the code; `iconify:DIR`: `prefix/code`), so that any sample can be drawn again at
/// another size. Image folders have no drawings: refused.
pub fn drawings(source: &str, split: Split) -> Result<BTreeMap<String, std::sync::Arc<str>>> {
    let mut found = BTreeMap::new();
    for part in source.split(',').map(str::trim) {
        if part == "emoji" {
            for code in emoji::codes().filter(|c| split.holds(emoji::is_validation(c))) {
                if let Some(svg) = emoji::svg(code) {
                    found.insert(code.to_string(), std::sync::Arc::from(svg));
                }
            }
        } else if let Some(dir) = part.strip_prefix("iconify:") {
            for style in iconify::read_styles(Path::new(dir))? {
                for d in &style.drawings {
                    if split.holds(iconify::is_validation(&d.code, &style.prefix)) {
                        let name = format!("{}/{}", style.prefix, d.code);
                        found.insert(name, std::sync::Arc::from(d.svg.as_str()));
                    }
                }
            }
        } else {
            bail!(
                "'{part}' is an image folder: drawing at other sizes needs vector drawings (emoji, iconify:DIR)"
            );
        }
    }
    Ok(found)
}

impl Split {
    /// Whether this split holds an item that is (or is not) held out.
    pub fn holds(self, held_out: bool) -> bool {
        match self {
            Split::All => true,
            Split::Validation => held_out,
            Split::Train => !held_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Split, evenly_spaced, source_and_split};

    #[test]
    fn evenly_spaced_indices_cover_the_whole_range() {
        assert_eq!(evenly_spaced(177, 4), vec![0, 44, 88, 132]);
        assert_eq!(evenly_spaced(10, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(evenly_spaced(3, 8), vec![0, 1, 2]);
    }

    #[test]
    fn a_split_suffix_is_read_off_the_source() {
        assert_eq!(source_and_split("emoji", Split::All), ("emoji", Split::All));
        assert_eq!(
            source_and_split("emoji:train", Split::All),
            ("emoji", Split::Train)
        );
        assert_eq!(
            source_and_split("emoji,iconify:/x/y:validation", Split::All),
            ("emoji,iconify:/x/y", Split::Validation)
        );
        assert_eq!(
            source_and_split("iconify:/x/y", Split::Train),
            ("iconify:/x/y", Split::Train)
        );
    }
}
