//! Data preparation: compositing, resizing, cropping, the emoji set and its split.

mod common;

use common::{fails, fixture, ok, s};
use image::{Rgba, RgbaImage};
use ndarray::Array3;
use ndarray_npy::ReadNpyExt;
use sundae::data::emoji;
use sundae::data::images::{prepare, to_rgb8};
use sundae::data::{Split, load};

#[test]
fn transparent_pixels_become_white_and_values_span_minus_one_to_one() {
    let mut image = RgbaImage::from_pixel(4, 4, Rgba([0, 0, 0, 0]));
    image.put_pixel(0, 0, Rgba([0, 0, 0, 255]));
    image.put_pixel(1, 0, Rgba([255, 0, 0, 128]));
    let chw = prepare(&image, 4);
    assert_eq!(chw.len(), 3 * 16);
    // Fully transparent: white (1.0) in every channel.
    assert_eq!([chw[5], chw[16 + 5], chw[32 + 5]], [1.0, 1.0, 1.0]);
    // Opaque black: -1.
    assert_eq!([chw[0], chw[16], chw[32]], [-1.0, -1.0, -1.0]);
    // Half-transparent red on white: red stays 255, green and blue are 255 * (1 - 128/255) = 127.
    assert_eq!(chw[1], 1.0);
    assert!((chw[16 + 1] - (127.0 / 127.5 - 1.0)).abs() < 1e-6);
}

#[test]
fn shorter_side_is_resized_then_center_cropped() {
    // 8 wide, 4 high: left half black, right half white, with a red column at x = 3 and 4.
    let image = RgbaImage::from_fn(8, 4, |x, _| match x {
        3 | 4 => Rgba([255, 0, 0, 255]),
        x if x < 4 => Rgba([0, 0, 0, 255]),
        _ => Rgba([255, 255, 255, 255]),
    });
    let chw = prepare(&image, 4);
    let rgb = to_rgb8(&chw, 4, 4);
    assert_eq!(rgb.dimensions(), (4, 4));
    // The crop keeps the middle 4 columns (2..6): black, red, red, white.
    assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
    assert_eq!(rgb.get_pixel(1, 2).0, [255, 0, 0]);
    assert_eq!(rgb.get_pixel(3, 3).0, [255, 255, 255]);
}

#[test]
fn pixels_round_trip_through_the_float_range() {
    let image = RgbaImage::from_fn(3, 3, |x, y| Rgba([(x * 80) as u8, (y * 100) as u8, 7, 255]));
    let rgb = to_rgb8(&prepare(&image, 3), 3, 3);
    for (x, y, p) in rgb.enumerate_pixels() {
        assert_eq!(p.0, [(x * 80) as u8, (y * 100) as u8, 7]);
    }
}

#[test]
fn skin_tone_variants_share_their_base_and_split() {
    assert_eq!(emoji::base_code("1f44d-1f3fb"), "1f44d");
    assert_eq!(
        emoji::base_code("1f9d1-1f3fd-200d-1f52c"),
        "1f9d1-200d-1f52c"
    );
    let codes: Vec<&str> = emoji::codes().collect();
    for code in &codes {
        assert_eq!(
            emoji::is_validation(code),
            emoji::is_validation(&emoji::base_code(code))
        );
    }
    let validation = codes.iter().filter(|c| emoji::is_validation(c)).count();
    let share = validation as f64 / codes.len() as f64;
    assert!((0.02..0.10).contains(&share), "validation share {share}");
}

#[test]
fn the_emoji_set_is_complete_and_renders_at_any_size() {
    assert!(emoji::codes().count() > 4000);
    let missing: Vec<&str> = emoji::codes()
        .filter(|c| emoji::emoji_string(c).is_none())
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
    let small = emoji::render("1f600", 72).expect("grinning face as PNG");
    assert_eq!(small.dimensions(), (72, 72));
    let large = emoji::render("1f600", 256).expect("grinning face from SVG");
    assert_eq!(large.dimensions(), (256, 256));
    // The face is yellow in the middle and transparent in the corner.
    assert_eq!(large.get_pixel(0, 0).0[3], 0);
    let centre = large.get_pixel(128, 90).0;
    assert!(
        centre[0] > 200 && centre[1] > 150 && centre[2] < 100 && centre[3] == 255,
        "{centre:?}"
    );
}

#[test]
fn the_validation_split_loads_with_nothing_skipped() {
    let loaded = load("emoji", 16, Split::Validation).unwrap();
    assert!(loaded.samples.len() > 80, "{}", loaded.samples.len());
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    assert!(loaded.samples.iter().all(|s| s.pixels.len() == 3 * 16 * 16));
}

#[test]
fn a_folder_with_broken_files_skips_them_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    RgbaImage::from_pixel(5, 5, Rgba([10, 20, 30, 255]))
        .save(dir.path().join("sub/good.png"))
        .unwrap();
    std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
    let loaded = load(dir.path().to_str().unwrap(), 4, Split::All).unwrap();
    assert_eq!(loaded.samples.len(), 1);
    assert_eq!(loaded.samples[0].name, "sub/good.png");
    assert_eq!(loaded.skipped.len(), 1);
    assert!(loaded.skipped[0].ends_with("broken.png"));
    let empty = tempfile::tempdir().unwrap();
    assert!(load(empty.path().to_str().unwrap(), 4, Split::All).is_err());
}

#[test]
fn encoding_with_views_writes_every_view_after_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for i in 0..3u8 {
        RgbaImage::from_fn(16, 16, |x, y| {
            Rgba([x as u8 * 16, y as u8 * 16, i * 100, 255])
        })
        .save(images.join(format!("{i}.png")))
        .unwrap();
    }
    let bundle = fixture("tiny-bundle");
    let encode_args = |out: &std::path::Path, views: &[&'static str]| {
        let mut args = vec!["encode", "--vqgan", s(&bundle), "--data", s(&images)];
        args.extend(["--out", s(out)]);
        args.extend(views);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let encode = |out: &std::path::Path, views: &[&'static str]| {
        let args = encode_args(out, views);
        ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let read = |out: &std::path::Path| {
        Array3::<i16>::read_npy(std::fs::File::open(out.join("shard-00000.npy")).unwrap()).unwrap()
    };

    let (plain, viewed) = (dir.path().join("plain"), dir.path().join("viewed"));
    encode(&plain, &[]);
    let stdout = encode(&viewed, &["--flip", "--zooms", "2", "--shifts", "1"]);
    assert!(stdout.contains("24 token grids"), "{stdout}");
    let (plain_grids, viewed_grids) = (read(&plain), read(&viewed));
    assert_eq!(plain_grids.shape(), &[3, 8, 8]);
    assert_eq!(viewed_grids.shape(), &[24, 8, 8]);
    // Each image's eight views start with the image itself.
    for i in 0..3 {
        assert_eq!(
            viewed_grids.slice(ndarray::s![8 * i, .., ..]),
            plain_grids.slice(ndarray::s![i, .., ..])
        );
    }

    // A rerun into the same directory with other views is refused.
    let args = encode_args(&viewed, &["--zooms", "1"]);
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("--zooms"), "{err}");
}
