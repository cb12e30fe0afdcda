//! Emoji sets in the Iconify JSON format: reading, naming across sets, the (name, style) split, and
//! the combined `emoji,iconify:DIR` source.

use std::path::Path;
use sundae::data::iconify::{self, is_validation};
use sundae::data::{Split, emoji, load};

/// Writes a tiny Iconify package: red square (grinning face), blue square (red heart, written with
/// FE0F as some sets do), and an extra in the private-use area that names no emoji.
fn write_package(dir: &Path, prefix: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let icons = serde_json::json!({
        "prefix": prefix,
        "width": 16, "height": 16,
        "icons": {
            "smile": {"body": "<rect width=\"16\" height=\"16\" fill=\"#ff0000\"/>"},
            "love": {"body": "<rect width=\"16\" height=\"16\" fill=\"#0000ff\"/>"},
            "logo": {"body": "<rect width=\"16\" height=\"16\" fill=\"#00ff00\"/>"}
        }
    });
    let chars = serde_json::json!({"1f600": "smile", "2764-fe0f": "love", "e000": "logo"});
    std::fs::write(dir.join("icons.json"), icons.to_string()).unwrap();
    std::fs::write(dir.join("chars.json"), chars.to_string()).unwrap();
}

#[test]
fn a_set_reads_its_emoji_by_code_with_names_and_groups_and_skips_extras() {
    let dir = tempfile::tempdir().unwrap();
    write_package(&dir.path().join("a/package"), "aaa");
    let styles = iconify::read_styles(dir.path()).unwrap();
    assert_eq!(styles.len(), 1);
    assert_eq!(styles[0].prefix, "aaa");
    let found: Vec<(&str, &str, &str)> = styles[0]
        .drawings
        .iter()
        .map(|d| (d.code.as_str(), d.name.as_str(), d.group))
        .collect();
    // Sorted by code; FE0F dropped; the private-use extra left out.
    assert_eq!(
        found,
        [
            ("1f600", "grinning-face", "smileys-and-emotion"),
            ("2764", "red-heart", "smileys-and-emotion")
        ]
    );
}

#[test]
fn drawings_render_at_any_size_on_white_with_their_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_package(&dir.path().join("aaa"), "aaa");
    for side in [8, 40] {
        let loaded = iconify::load(dir.path(), side, Split::All).unwrap();
        assert_eq!(loaded.samples.len(), 2);
        let red = &loaded.samples[0];
        assert_eq!(red.name, "aaa/1f600");
        assert_eq!(red.pixels.len(), 3 * side * side);
        let plane = side * side;
        let centre = plane / 2 + side / 2;
        assert_eq!(
            [
                red.pixels[centre],
                red.pixels[plane + centre],
                red.pixels[2 * plane + centre]
            ],
            [1.0, -1.0, -1.0]
        );
        assert_eq!(red.labels["style"], "aaa");
        assert_eq!(red.labels["name"], "grinning-face");
        assert_eq!(red.labels["group"], "smileys-and-emotion");
    }
}

#[test]
fn the_split_holds_out_name_style_pairs_and_keeps_skin_tones_together() {
    let codes: Vec<&str> = emoji::codes().collect();
    for style in ["noto", "openmoji"] {
        let held: Vec<&&str> = codes.iter().filter(|c| is_validation(c, style)).collect();
        let share = held.len() as f64 / codes.len() as f64;
        assert!((0.03..0.08).contains(&share), "{style}: {share}");
        for code in &codes {
            assert_eq!(
                is_validation(code, style),
                is_validation(&emoji::base_code(code), style)
            );
        }
    }
    // Chosen afresh per style: most emoji held out in one style are training data in another.
    let in_noto: Vec<&&str> = codes.iter().filter(|c| is_validation(c, "noto")).collect();
    let also_fluent = in_noto
        .iter()
        .filter(|c| is_validation(c, "fluent-emoji-flat"))
        .count();
    assert!(
        also_fluent * 5 < in_noto.len(),
        "{also_fluent} of {}",
        in_noto.len()
    );
}

#[test]
fn sources_join_with_commas_and_the_emoji_set_carries_twemoji_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_package(&dir.path().join("aaa"), "aaa");
    let source = format!("emoji,iconify:{}", dir.path().display());
    let all = load(&source, 8, Split::All).unwrap();
    let twemoji = emoji::codes().count();
    assert!(
        all.samples.len() >= twemoji - 10 + 2,
        "{}",
        all.samples.len()
    );
    let last = all.samples.last().unwrap();
    assert_eq!(last.labels["style"], "aaa");
    let grinning = all.samples.iter().find(|s| s.name == "1f600").unwrap();
    assert_eq!(grinning.labels["style"], "twemoji");
    assert_eq!(grinning.labels["name"], "grinning-face");
    // Both splits together are the whole set.
    let train = load(&source, 8, Split::Train).unwrap().samples.len();
    let validation = load(&source, 8, Split::Validation).unwrap().samples.len();
    assert_eq!(train + validation, all.samples.len());
}

#[test]
fn a_folder_without_a_set_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = iconify::load(dir.path(), 8, Split::All)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("holds no Iconify set"), "{error}");
    let error = load("iconify:/nonexistent/styles", 8, Split::All)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("/nonexistent/styles"), "{error}");
}
