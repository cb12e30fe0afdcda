//! The built-in `emoji` data set: Twemoji (CC-BY 4.0) from the `twemoji-assets` crate.
//! 72x72 PNGs up to that size; above it the SVGs are rasterised, so any resolution works.

use super::images::prepare;
use super::{Labels, Loaded, Sample, Split};
use image::RgbaImage;
use std::collections::BTreeMap;
use twemoji_assets::png::PngTwemojiAsset;
use twemoji_assets::svg::SvgTwemojiAsset;

/// File stems (code points in hex, dash-separated) of every asset in the crate,
/// extracted once from its source because the crate offers no way to list them.
const CODES: &str = include_str!("emoji_codes.txt");
const PNG_SIDE: usize = 72;
/// The `style` label of this set's drawings.
pub const STYLE: &str = "twemoji";
/// One base emoji in this many goes to the validation split.
const VALIDATION_EVERY: u64 = 20;

/// Every emoji code in the set, e.g. `1f44d-1f3fb`.
pub fn codes() -> impl Iterator<Item = &'static str> {
    CODES.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// The emoji string of a code: `1f44d-1f3fb` -> "👍🏻".
pub fn emoji_string(code: &str) -> Option<String> {
    code.split('-')
        .map(|hex| u32::from_str_radix(hex, 16).ok().and_then(char::from_u32))
        .collect()
}

/// The code without skin-tone modifiers, so that all variants of one emoji share a split.
pub fn base_code(code: &str) -> String {
    const SKIN_TONES: [&str; 5] = ["1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"];
    code.split('-')
        .filter(|part| !SKIN_TONES.contains(part))
        .collect::<Vec<_>>()
        .join("-")
}

/// Deterministic split by base emoji (FNV-1a hash, stable across platforms and versions).
pub fn is_validation(code: &str) -> bool {
    let hash = base_code(code).bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    hash % VALIDATION_EVERY == 0
}

/// The SVG document of one emoji (None if the crate lacks it).
pub fn svg(code: &str) -> Option<&'static str> {
    SvgTwemojiAsset::from_emoji(&emoji_string(code)?).map(|s| -> &'static str { s })
}

/// Renders one emoji as RGBA at `resolution` (None if the crate lacks it).
pub fn render(code: &str, resolution: usize) -> Option<RgbaImage> {
    let emoji = emoji_string(code)?;
    if resolution <= PNG_SIDE {
        let png: &[u8] = PngTwemojiAsset::from_emoji(&emoji)?;
        return image::load_from_memory(png).ok().map(|i| i.to_rgba8());
    }
    let svg: &str = SvgTwemojiAsset::from_emoji(&emoji)?;
    super::svg::render(svg, resolution)
}

/// The labels of a Twemoji drawing: style `twemoji`, and the emoji's name and group (the code itself
/// names an emoji newer than the naming table).
pub fn labels(code: &str) -> Labels {
    let info = super::emoji_names::lookup(code);
    BTreeMap::from([
        ("style".to_string(), STYLE.to_string()),
        (
            "name".to_string(),
            info.as_ref()
                .map_or_else(|| code.to_string(), |i| i.name.clone()),
        ),
        (
            "group".to_string(),
            info.map_or("unknown", |i| i.group).to_string(),
        ),
    ])
}

/// Loads the chosen split at `resolution`, composited on white, in a fixed order.
pub fn load(resolution: usize, split: Split) -> Loaded {
    let mut loaded = Loaded::default();
    for code in codes() {
        let wanted = match split {
            Split::All => true,
            Split::Validation => is_validation(code),
            Split::Train => !is_validation(code),
        };
        if !wanted {
            continue;
        }
        match render(code, resolution) {
            Some(image) => loaded.samples.push(Sample {
                name: code.to_string(),
                pixels: prepare(&image, resolution),
                labels: labels(code),
            }),
            None => loaded.skipped.push(code.to_string()),
        }
    }
    loaded
}
