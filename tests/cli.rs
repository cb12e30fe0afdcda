//! The `sundae` binary as a user runs it: import, encode, decode, reconstruct, and bad input.

mod common;

use common::{fails, fixture, ok, s};
use image::{Rgb, RgbImage};
use ndarray::{Array3, ArrayD};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::path::{Path, PathBuf};

struct Setup {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    images: Vec<PathBuf>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    ok(&[
        "vqgan",
        "import",
        "--config",
        s(&fixture("tiny_vqmodel.yaml")),
        "--ckpt",
        s(&fixture("tiny_vqmodel.ckpt")),
        "--out",
        s(&bundle),
    ]);
    let images: Vec<PathBuf> = (0..3)
        .map(|i| {
            let path = dir.path().join(format!("in{i}.png"));
            RgbImage::from_fn(16, 16, |x, y| {
                Rgb([(x * 16) as u8, (y * 16) as u8, (i * 100) as u8])
            })
            .save(&path)
            .unwrap();
            path
        })
        .collect();
    Setup {
        dir,
        bundle,
        images,
    }
}

fn read_tokens(path: &Path) -> ArrayD<i64> {
    ArrayD::<i64>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

#[test]
fn encode_then_decode_gives_images_of_the_model_resolution() {
    let t = setup();
    let tokens = t.dir.path().join("tokens.npy");
    let mut args = vec![
        "vqgan",
        "encode",
        "--vqgan",
        s(&t.bundle),
        "--out",
        s(&tokens),
    ];
    args.extend(t.images.iter().map(|p| s(p)));
    ok(&args);
    let grids = read_tokens(&tokens);
    assert_eq!(grids.shape(), &[3, 8, 8]);
    assert!(grids.iter().all(|&v| (0..16).contains(&v)));

    // Decoding to .npy gives float32 [B, 3, H, W] in [-1, 1].
    let decoded = t.dir.path().join("decoded.npy");
    ok(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        s(&tokens),
        "--out",
        s(&decoded),
    ]);
    let images = ArrayD::<f32>::read_npy(std::fs::File::open(&decoded).unwrap()).unwrap();
    assert_eq!(images.shape(), &[3, 3, 16, 16]);
    assert!(images.iter().all(|v| (-1.0..=1.0).contains(v)));

    // Decoding to .png writes one file per image, matching the .npy values.
    let png = t.dir.path().join("out.png");
    let stdout = ok(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        s(&tokens),
        "--out",
        s(&png),
    ]);
    assert!(stdout.contains("out-2.png"), "{stdout}");
    let second = image::open(t.dir.path().join("out-1.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(second.dimensions(), (16, 16));
    let expected = ((images[[1, 0, 5, 7]] + 1.0) * 127.5).round() as u8;
    assert_eq!(second.get_pixel(7, 5).0[0], expected);
}

#[test]
fn reconstruct_writes_input_and_output_side_by_side() {
    let t = setup();
    let out = t.dir.path().join("recon.png");
    let stdout = ok(&[
        "vqgan",
        "reconstruct",
        "--vqgan",
        s(&t.bundle),
        "--out",
        s(&out),
        "--emoji",
        "2",
        s(&t.images[0]),
    ]);
    assert!(stdout.contains("reconstructed 3 image(s)"), "{stdout}");
    let grid = image::open(&out).unwrap().to_rgb8();
    // Two 16-pixel columns and three rows with 2-pixel gutters.
    assert_eq!(grid.dimensions(), (34, 52));
    assert_eq!(grid.get_pixel(3, 2).0, [48, 32, 0]);
}

#[test]
fn bad_input_gets_one_clear_line_and_a_failure_status() {
    let t = setup();
    let tokens = t.dir.path().join("tokens.npy");

    let missing = t.dir.path().join("absent.png");
    let err = fails(&[
        "vqgan",
        "encode",
        "--vqgan",
        s(&t.bundle),
        "--out",
        s(&tokens),
        s(&missing),
    ]);
    assert!(err.contains("absent.png"), "{err}");

    let corrupt = t.dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG but not really").unwrap();
    let err = fails(&[
        "vqgan",
        "encode",
        "--vqgan",
        s(&t.bundle),
        "--out",
        s(&tokens),
        s(&corrupt),
    ]);
    assert!(err.contains("corrupt.png"), "{err}");

    let err = fails(&[
        "vqgan",
        "encode",
        "--vqgan",
        "/nonexistent",
        "--out",
        s(&tokens),
        s(&t.images[0]),
    ]);
    assert!(err.contains("/nonexistent"), "{err}");

    let out_of_vocabulary = t.dir.path().join("big.npy");
    Array3::<i64>::from_elem((1, 8, 8), 16)
        .write_npy(std::fs::File::create(&out_of_vocabulary).unwrap())
        .unwrap();
    let err = fails(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        s(&out_of_vocabulary),
        "--out",
        "x.png",
    ]);
    assert!(
        err.contains("token 16") && err.contains("vocabulary"),
        "{err}"
    );

    let wrong_size = t.dir.path().join("wrong.npy");
    Array3::<i64>::zeros((1, 4, 8))
        .write_npy(std::fs::File::create(&wrong_size).unwrap())
        .unwrap();
    let err = fails(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        s(&wrong_size),
        "--out",
        "x.png",
    ]);
    assert!(err.contains("4x8") && err.contains("8x8"), "{err}");
    // ...unless other sizes are asked for: the decoder is convolutional.
    let any = t.dir.path().join("any.npy");
    ok(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        s(&wrong_size),
        "--out",
        s(&any),
        "--any-size",
    ]);
    let decoded = ArrayD::<f32>::read_npy(std::fs::File::open(&any).unwrap()).unwrap();
    assert_eq!(decoded.shape(), &[1, 3, 8, 16]);

    let floats = t.dir.path().join("floats.npy");
    ndarray::Array3::<f32>::zeros((1, 8, 8))
        .write_npy(std::fs::File::create(&floats).unwrap())
        .unwrap();
    let err = fails(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        s(&floats),
        "--out",
        "x.png",
    ]);
    assert!(err.contains("integer"), "{err}");

    let err = fails(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        s(&wrong_size),
        "--out",
        "x.jpg",
    ]);
    assert!(err.contains(".png or .npy") || err.contains("8x8"), "{err}");

    let err = fails(&[
        "vqgan",
        "encode",
        "--vqgan",
        s(&t.bundle),
        "--out",
        s(&tokens),
        "--device",
        "tpu",
        s(&t.images[0]),
    ]);
    assert!(err.contains("unknown device 'tpu'"), "{err}");
    if !cfg!(feature = "vulkan") {
        let err = fails(&[
            "vqgan",
            "encode",
            "--vqgan",
            s(&t.bundle),
            "--out",
            s(&tokens),
            "--device",
            "vulkan",
            s(&t.images[0]),
        ]);
        assert!(err.contains("not compiled into this build"), "{err}");
    }

    let err = fails(&[
        "vqgan",
        "import",
        "--config",
        s(&fixture("tiny_vqmodel.yaml")),
        "--ckpt",
        s(&corrupt),
        "--out",
        s(&t.dir.path().join("b2")),
    ]);
    assert!(err.contains("corrupt.png"), "{err}");
}

#[test]
fn help_explains_every_command() {
    let help = ok(&["--help"]);
    assert!(help.contains("vqgan") && help.contains("bench"));
    let help = ok(&["vqgan", "--help"]);
    for command in ["import", "encode", "decode", "reconstruct"] {
        assert!(help.contains(command), "{help}");
    }
    assert!(ok(&["vqgan", "decode", "--help"]).contains("--any-size"));
}
