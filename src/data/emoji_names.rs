//! Names and Unicode groups of emoji, keyed by code point sequence, so that the same emoji drawn by
//! two sets carries one name (the CLDR short name as a slug: `grinning-face`, `red-heart`).

use std::collections::HashMap;
use std::sync::LazyLock;

/// What a code point sequence is, whatever set draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmojiInfo {
    /// CLDR short name as a slug, e.g. `thumbs-up-light-skin-tone`.
    pub name: String,
    /// Unicode group as a slug, e.g. `smileys-and-emotion`.
    pub group: &'static str,
}

/// A code in the form the emoji sets use for file names (`1f44d-1f3fb`), lower case and without the
/// emoji presentation selector FE0F, which some sets write and others leave out.
pub fn normalize_code(code: &str) -> String {
    code.split('-')
        .map(|part| part.trim().to_ascii_lowercase())
        .filter(|part| !part.is_empty() && part != "fe0f")
        .collect::<Vec<_>>()
        .join("-")
}

fn code_of(emoji: &str) -> String {
    emoji
        .chars()
        .map(|c| format!("{:x}", c as u32))
        .filter(|hex| hex != "fe0f")
        .collect::<Vec<_>>()
        .join("-")
}

static TABLE: LazyLock<HashMap<String, &'static emojis::Emoji>> = LazyLock::new(|| {
    let mut table = HashMap::new();
    for emoji in emojis::iter() {
        let tones = emoji.skin_tones().into_iter().flatten();
        for variant in std::iter::once(emoji).chain(tones) {
            table.entry(code_of(variant.as_str())).or_insert(variant);
        }
    }
    table
});

/// The name and group of a code (`1f600` -> grinning-face, smileys-and-emotion), or None when the
/// sequence is no standard emoji (a set's own extras).
pub fn lookup(code: &str) -> Option<EmojiInfo> {
    let emoji = TABLE.get(&normalize_code(code))?;
    Some(EmojiInfo {
        name: slug(emoji.name()),
        group: group_slug(emoji.group()),
    })
}

/// Lower case, runs of anything but letters and digits turned into one '-'.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn group_slug(group: emojis::Group) -> &'static str {
    use emojis::Group::*;
    match group {
        SmileysAndEmotion => "smileys-and-emotion",
        PeopleAndBody => "people-and-body",
        AnimalsAndNature => "animals-and-nature",
        FoodAndDrink => "food-and-drink",
        TravelAndPlaces => "travel-and-places",
        Activities => "activities",
        Objects => "objects",
        Symbols => "symbols",
        Flags => "flags",
    }
}
