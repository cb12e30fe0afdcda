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

/// Writes an `.npy` of `shape` filled with `value` into the test folder.
fn npy_i64(t: &Setup, name: &str, shape: (usize, usize, usize), value: i64) -> String {
    let path = t.dir.path().join(name);
    Array3::<i64>::from_elem(shape, value)
        .write_npy(std::fs::File::create(&path).unwrap())
        .unwrap();
    s(&path).to_string()
}

#[test]
fn bad_input_gets_one_clear_line_and_a_failure_status() {
    let t = setup();
    let bundle = s(&t.bundle).to_string();
    let path = |name: &str| s(&t.dir.path().join(name)).to_string();
    let corrupt = path("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG but not really").unwrap();
    let floats = path("floats.npy");
    ndarray::Array3::<f32>::zeros((1, 8, 8))
        .write_npy(std::fs::File::create(&floats).unwrap())
        .unwrap();
    let good = npy_i64(&t, "good.npy", (1, 8, 8), 3);
    let out_of_vocabulary = npy_i64(&t, "big.npy", (1, 8, 8), 16);
    let wrong_size = npy_i64(&t, "wrong.npy", (1, 4, 8), 0);
    let image = s(&t.images[0]).to_string();
    let (tokens, png) = (path("tokens.npy"), path("x.png"));
    let encode = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["vqgan", "encode", "--vqgan", &bundle, "--out", &tokens];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    };
    let decode = |tokens: &str, out: &str| -> Vec<String> {
        [
            "vqgan", "decode", "--vqgan", &bundle, "--tokens", tokens, "--out", out,
        ]
        .map(String::from)
        .to_vec()
    };
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (encode(&[&path("absent.png")]), "absent.png"),
        (encode(&[&corrupt]), "corrupt.png"),
        (
            [
                "vqgan",
                "encode",
                "--vqgan",
                "/nonexistent",
                "--out",
                &tokens,
                &image,
            ]
            .map(String::from)
            .to_vec(),
            "/nonexistent",
        ),
        (
            decode(&out_of_vocabulary, &png),
            "outside the vocabulary 0..16",
        ),
        (
            decode(&wrong_size, &png),
            "token grids are 4x8, but this VQ-GAN makes 8x8",
        ),
        (decode(&floats, &png), "not an integer .npy array"),
        // A valid token file, so that only the extension can be wrong.
        (decode(&good, &path("x.jpg")), "must end in .png or .npy"),
        (encode(&["--device", "tpu", &image]), "unknown device 'tpu'"),
        (
            [
                "vqgan",
                "import",
                "--config",
                s(&fixture("tiny_vqmodel.yaml")),
                "--ckpt",
                &corrupt,
                "--out",
                &path("b2"),
            ]
            .map(String::from)
            .to_vec(),
            "corrupt.png",
        ),
    ];
    if !cfg!(feature = "vulkan") {
        cases.push((
            encode(&["--device", "vulkan", &image]),
            "not compiled into this build",
        ));
    }
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = fails(&args);
        assert!(
            err.contains(expected),
            "{args:?}: expected '{expected}' in {err}"
        );
    }
    // The valid file itself decodes: the extension case failed for its extension alone.
    ok(&decode(&good, &png)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
}

#[test]
fn grids_of_another_size_decode_when_asked_for() {
    let t = setup();
    let wrong_size = npy_i64(&t, "wrong.npy", (1, 4, 8), 0);
    let any = t.dir.path().join("any.npy");
    ok(&[
        "vqgan",
        "decode",
        "--vqgan",
        s(&t.bundle),
        "--tokens",
        &wrong_size,
        "--out",
        s(&any),
        "--any-size",
    ]);
    let decoded = ArrayD::<f32>::read_npy(std::fs::File::open(&any).unwrap()).unwrap();
    assert_eq!(decoded.shape(), &[1, 3, 8, 16]);
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

#[test]
fn vqgan_training_steps_are_timed_for_the_config_given() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/vqgan-tiny.toml");
    let out = ok(&[
        "bench",
        "vqgan-train",
        "--config",
        s(&config),
        "--batch",
        "2",
        "--steps",
        "2",
    ]);
    let json: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(json["network"], "VQ-GAN", "{out}");
    assert_eq!(json["batch"], 2, "{out}");
    assert_eq!(json["seconds"].as_array().unwrap().len(), 2, "{out}");
    assert!(json["unroll_steps"].is_null(), "{out}");
    let err = fails(&["bench", "vqgan-train", "--config", "no-such-config"]);
    assert!(
        err.contains("is neither emoji nor a readable VQ-GAN training config"),
        "{err}"
    );
}
