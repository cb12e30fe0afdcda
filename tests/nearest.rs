//! `sundae nearest`: each image's closest data image by PSNR, mirror images included.
mod common;
use common::{fails, ok, s};
use image::{Rgb, RgbImage};
use std::path::Path;

const SIDE: u32 = 8;

fn save(dir: &Path, name: &str, pixel: impl Fn(u32, u32) -> [u8; 3]) {
    RgbImage::from_fn(SIDE, SIDE, |x, y| Rgb(pixel(x, y)))
        .save(dir.join(name))
        .unwrap();
}

#[test]
fn finds_the_nearest_data_image_and_mirrored_copies() {
    let root = tempfile::tempdir().unwrap();
    let (data, queries) = (root.path().join("data"), root.path().join("queries"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&queries).unwrap();
    save(&data, "red.png", |_, _| [255, 0, 0]);
    save(&data, "yellow.png", |_, _| [255, 255, 0]);
    // Black on the left, white on the right; the query is its mirror image.
    let half = |x: u32, flip: bool| {
        if (x < SIDE / 2) != flip {
            [0; 3]
        } else {
            [255; 3]
        }
    };
    save(&data, "split.png", |x, _| half(x, false));
    save(&queries, "a-black.png", |_, _| [0, 0, 0]);
    save(&queries, "b-mirrored-split.png", |x, _| half(x, true));
    let pairs = root.path().join("pairs.png");
    let out = ok(&[
        "nearest",
        s(&queries),
        "--data",
        s(&data),
        "--resolution",
        "8",
        "--out",
        s(&pairs),
    ]);
    let lines: Vec<&str> = out.lines().collect();
    // Black (-1) against red (1, -1, -1): MSE 4/3 over the three channels, PSNR 10 log10(4 / (4/3))
    // = 4.77 dB; against yellow MSE 8/3 (1.76 dB), against the half-white image MSE 2 (3.01 dB).
    assert!(
        lines[0].ends_with("a-black.png: 4.77 dB, nearest red.png"),
        "{out}"
    );
    assert!(
        lines[1].ends_with("b-mirrored-split.png: 126.02 dB, nearest split.png (mirrored)"),
        "an exact copy scores the PSNR of the smallest error: {out}"
    );
    assert!(
        lines[2].starts_with(
            "2 image(s) against 3 data images and their mirror images: nearest at median 65.40 dB, at most 126.02 dB"
        ),
        "{out}"
    );
    // Two pairs in one row, 2-pixel gutters: query | match | query | match.
    let grid = image::open(&pairs).unwrap().to_rgb8();
    assert_eq!(grid.dimensions(), (4 * SIDE + 3 * 2, SIDE));
    assert_eq!(
        grid.get_pixel(SIDE + 2, 0),
        &Rgb([255, 0, 0]),
        "red beside black"
    );
    // The match of the mirrored query is shown mirrored: white on the left, as the query.
    assert_eq!(grid.get_pixel(3 * (SIDE + 2), 0), &Rgb([255; 3]));
    assert_eq!(grid.get_pixel(4 * SIDE + 3 * 2 - 1, 0), &Rgb([0; 3]));
}

#[test]
fn bad_input_is_one_error_line() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    save(&data, "red.png", |_, _| [255, 0, 0]);
    let missing = root.path().join("missing.png");
    let error = fails(&["nearest", s(&missing), "--data", s(&data)]);
    assert!(error.contains("missing.png"), "{error}");
    let corrupt = root.path().join("corrupt.png");
    std::fs::write(&corrupt, b"not a png").unwrap();
    let error = fails(&["nearest", s(&corrupt), "--data", s(&data)]);
    assert!(error.contains("corrupt.png"), "{error}");
    let error = fails(&["nearest", "--data", s(&data)]);
    assert!(error.contains("no image to look up"), "{error}");
}

#[test]
fn held_out_emoji_are_looked_up_in_the_training_split() {
    let out = ok(&["nearest", "--emoji", "3", "--resolution", "8"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in &lines[..3] {
        assert!(line.contains(" dB, nearest "), "{out}");
    }
    // The training split: every emoji outside the validation split.
    let train = sundae::data::emoji::codes()
        .filter(|c| !sundae::data::emoji::is_validation(c))
        .count();
    assert!(
        lines[3].starts_with(&format!("3 image(s) against {train} data images")),
        "{out}"
    );
}
