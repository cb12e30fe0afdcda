//! Emoji sets in the Iconify JSON format (`@iconify-json/noto`, `@iconify-json/fluent-emoji-flat`, ...:
//! `icons.json` holds SVG bodies by icon name, `chars.json` maps code points to icon names), read from a
//! folder that `scripts/fetch-emoji-styles.sh` fills, and rendered with resvg at any resolution.
//!
//! Every drawing carries three labels: `style` (the set's prefix), `name` and `group` (from its code
//! points, so one emoji has one name in every set). The split holds out (name, style) pairs: one emoji
//! in twenty, chosen afresh for each style, is validation in that style and training data in the
//! others, so a model can be asked for a drawing it has only seen in other styles.

use super::emoji_names::{self, normalize_code};
use super::images::prepare;
use super::{Labels, Loaded, Sample, Split};
use anyhow::{Context, Result, bail};
use image::RgbaImage;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One (name, style) pair in this many is held out.
const VALIDATION_EVERY: u64 = 20;

#[derive(Deserialize)]
struct IconSet {
    prefix: String,
    icons: HashMap<String, Icon>,
    #[serde(default = "default_side")]
    width: f32,
    #[serde(default = "default_side")]
    height: f32,
    #[serde(default)]
    left: f32,
    #[serde(default)]
    top: f32,
}

fn default_side() -> f32 {
    16.0
}

#[derive(Deserialize)]
struct Icon {
    body: String,
    width: Option<f32>,
    height: Option<f32>,
    left: Option<f32>,
    top: Option<f32>,
}

/// One emoji set: its prefix and, per code (normalised, see `emoji_names`), the SVG document.
pub struct Style {
    pub prefix: String,
    /// (code, emoji name, group, SVG), sorted by code.
    pub drawings: Vec<Drawing>,
}

pub struct Drawing {
    pub code: String,
    pub name: String,
    pub group: &'static str,
    pub svg: String,
}

impl Drawing {
    pub fn render(&self, resolution: usize) -> Option<RgbaImage> {
        super::svg::render(&self.svg, resolution)
    }

    pub fn labels(&self, style: &str) -> Labels {
        BTreeMap::from([
            ("style".to_string(), style.to_string()),
            ("name".to_string(), self.name.clone()),
            ("group".to_string(), self.group.to_string()),
        ])
    }
}

/// The package folders under `dir`: `dir` itself when it holds `icons.json`, else each subfolder
/// (one level down, or in npm's `package/` folder) that does.
fn package_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("iconify folder {} does not exist", dir.display());
    }
    if dir.join("icons.json").is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
    {
        let path = entry.path();
        for candidate in [path.clone(), path.join("package")] {
            if candidate.join("icons.json").is_file() {
                found.push(candidate);
                break;
            }
        }
    }
    found.sort();
    if found.is_empty() {
        bail!(
            "{} holds no Iconify set (no icons.json in it or its subfolders; see scripts/fetch-emoji-styles.sh)",
            dir.display()
        );
    }
    Ok(found)
}

/// Reads one Iconify package: the standard emoji among its icons (extras without a Unicode code are
/// left out, as are codes that name no emoji).
pub fn read_style(dir: &Path) -> Result<Style> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let set: IconSet = serde_json::from_str(&read("icons.json")?).with_context(|| {
        format!(
            "{}: not an Iconify icon set",
            dir.join("icons.json").display()
        )
    })?;
    let chars: HashMap<String, String> =
        serde_json::from_str(&read("chars.json")?).with_context(|| {
            format!(
                "{}: not an Iconify chars map",
                dir.join("chars.json").display()
            )
        })?;
    let mut by_code: BTreeMap<String, Drawing> = BTreeMap::new();
    for (code, icon_name) in chars {
        let code = normalize_code(&code);
        let (Some(icon), Some(info)) = (set.icons.get(&icon_name), emoji_names::lookup(&code))
        else {
            continue;
        };
        let (left, top) = (icon.left.unwrap_or(set.left), icon.top.unwrap_or(set.top));
        let (width, height) = (
            icon.width.unwrap_or(set.width),
            icon.height.unwrap_or(set.height),
        );
        let svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" \
             width=\"{width}\" height=\"{height}\" viewBox=\"{left} {top} {width} {height}\">{}</svg>",
            icon.body
        );
        by_code.entry(code.clone()).or_insert(Drawing {
            code,
            name: info.name,
            group: info.group,
            svg,
        });
    }
    Ok(Style {
        prefix: set.prefix,
        drawings: by_code.into_values().collect(),
    })
}

/// Every set in `dir` (see [`package_dirs`]), in a fixed order.
pub fn read_styles(dir: &Path) -> Result<Vec<Style>> {
    package_dirs(dir)?.iter().map(|d| read_style(d)).collect()
}

/// Whether the drawing of `code` in `style` is held out. Skin-tone variants of one emoji share the
/// decision (as in the Twemoji split), so a held-out emoji is not learnt from its variants.
pub fn is_validation(code: &str, style: &str) -> bool {
    let key = format!("{}|{style}", super::emoji::base_code(&normalize_code(code)));
    let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    hash % VALIDATION_EVERY == 0
}

/// Loads the chosen split of every set in `dir` at `resolution`, composited on white (rendered in
/// parallel: a few thousand SVGs per set).
pub fn load(dir: &Path, resolution: usize, split: Split) -> Result<Loaded> {
    use rayon::prelude::*;
    let styles = read_styles(dir)?;
    let wanted: Vec<(&Style, &Drawing)> = styles
        .iter()
        .flat_map(|style| style.drawings.iter().map(move |d| (style, d)))
        .filter(|(style, d)| match split {
            Split::All => true,
            Split::Validation => is_validation(&d.code, &style.prefix),
            Split::Train => !is_validation(&d.code, &style.prefix),
        })
        .collect();
    let rendered: Vec<(String, Option<Sample>)> = wanted
        .par_iter()
        .map(|(style, drawing)| {
            let name = format!("{}/{}", style.prefix, drawing.code);
            let sample = drawing.render(resolution).map(|image| Sample {
                name: name.clone(),
                pixels: prepare(&image, resolution),
                labels: drawing.labels(&style.prefix),
            });
            (name, sample)
        })
        .collect();
    let mut loaded = Loaded::default();
    for (name, sample) in rendered {
        match sample {
            Some(sample) => loaded.samples.push(sample),
            None => loaded.skipped.push(name),
        }
    }
    Ok(loaded)
}
