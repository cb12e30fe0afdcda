//! Generation through the binary: sampling, inpainting, bundles, canvases, and bad input.

mod common;

use common::{fails, generator, join, left_half_inputs, ok, root, s};
use image::{GenericImageView, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use sundae::bundle::check_stages_agree;
use sundae::hourglass::PriorConfig;
use sundae::sundae::mask::keep_tokens;
use sundae::vqgan::VqGanConfig;

/// A bundle's prior tensors by name, as stored.
fn prior_tensors(bundle: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(bundle.join("prior.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect()
}

#[test]
fn a_prior_run_can_start_from_a_bundles_prior() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let model = generator(dir);
    let vqgan = root("tests/fixtures/tiny-bundle");
    // A zero learning rate keeps the starting weights, so the result shows where the run began.
    let tiny = std::fs::read_to_string(root("configs/prior-tiny.toml")).unwrap();
    let still = dir.join("still.toml");
    std::fs::write(
        &still,
        tiny.replace("learning_rate = 1e-3", "learning_rate = 0.0")
            .replace("steps = 20", "steps = 3"),
    )
    .unwrap();
    let latents = dir.join("latents");
    let run_from = |config: &Path, init: Option<&Path>, name: &str| {
        let run = dir.join(name);
        let mut args = vec!["train", "--latents", s(&latents), "--config", s(config)];
        args.extend(["--run", s(&run)]);
        if let Some(init) = init {
            args.extend(["--init", s(init)]);
        }
        ok(&args);
        let out = dir.join(format!("{name}-bundle"));
        join(&vqgan, &run, &out);
        prior_tensors(&out)
    };
    let started = prior_tensors(&model);
    assert!(run_from(&still, Some(&model), "from-bundle") == started);
    assert!(run_from(&still, None, "from-scratch") != started);
    // A run that learns a fill embedding may start from a prior without one: it starts at zero.
    let filling = dir.join("filling.toml");
    let with_fill = std::fs::read_to_string(&still).unwrap();
    std::fs::write(
        &filling,
        with_fill.replace("[model]\n", "[model]\nfill_embedding = true\n"),
    )
    .unwrap();
    let mut grown = run_from(&filling, Some(&model), "with-fill");
    let fill = grown
        .remove("fill_emb")
        .expect("the bundle stores the fill embedding");
    assert_eq!(fill.len(), 32 * 4, "one f32 vector of the model's width");
    assert!(fill.iter().all(|&byte| byte == 0));
    assert!(grown == started);
    // The other way round it is refused: the embedding would be lost.
    let err = fails(&[
        "train",
        "--latents",
        s(&latents),
        "--config",
        s(&still),
        "--run",
        s(&dir.join("drops-fill")),
        "--init",
        s(&dir.join("with-fill-bundle")),
    ]);
    assert!(err.contains("differs"), "{err}");

    let wider = dir.join("wider.toml");
    std::fs::write(&wider, tiny.replace("dim = 32", "dim = 64")).unwrap();
    let err = fails(&[
        "train",
        "--latents",
        s(&latents),
        "--config",
        s(&wider),
        "--run",
        s(&dir.join("refused")),
        "--init",
        s(&model),
    ]);
    assert!(err.contains("differs"), "{err}");
}

#[test]
fn the_pixel_mask_becomes_a_token_mask_by_and_over_each_block() {
    // 4x4 pixels, 2x2 blocks: one black pixel in the top-right block only.
    let mut pixels = vec![true; 16];
    pixels[3] = false;
    assert_eq!(
        keep_tokens(&pixels, 4, 4, 2).unwrap(),
        vec![true, false, true, true]
    );
    pixels[9] = false;
    assert_eq!(
        keep_tokens(&pixels, 4, 4, 2).unwrap(),
        vec![true, false, false, true]
    );
    assert!(keep_tokens(&pixels, 4, 4, 3).is_err());
}

#[test]
fn stages_that_disagree_are_refused() {
    let vq = VqGanConfig::tiny();
    assert!(check_stages_agree(&vq, &PriorConfig::tiny()).is_ok());
    let err = check_stages_agree(
        &vq,
        &PriorConfig {
            vocab_size: 32,
            ..PriorConfig::tiny()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("32 codes") && err.contains("16 codes"),
        "{err}"
    );
    assert!(
        check_stages_agree(
            &vq,
            &PriorConfig {
                grid_height: 4,
                ..PriorConfig::tiny()
            }
        )
        .is_err()
    );
}

/// A 32x16 image whose left half is `original` and a mask that keeps that half, as files in `dir`.
fn wide_inputs(dir: &Path, original: &RgbImage) -> (PathBuf, PathBuf) {
    let wide_image = dir.join("wide-image.png");
    let wide_mask = dir.join("wide-mask.png");
    RgbImage::from_fn(32, 16, |x, y| {
        if x < 16 {
            *original.get_pixel(x, y)
        } else {
            Rgb([0, 0, 0])
        }
    })
    .save(&wide_image)
    .unwrap();
    RgbImage::from_fn(32, 16, |x, _| {
        if x < 16 {
            Rgb([255, 255, 255])
        } else {
            Rgb([0, 0, 0])
        }
    })
    .save(&wide_mask)
    .unwrap();
    (wide_image, wide_mask)
}

#[test]
fn sampling_writes_its_grid_images_and_strip_and_repeats_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let model = generator(dir.path());
    let grid = dir.path().join("samples.png");
    let each = dir.path().join("each");
    let strip = dir.path().join("strip.png");
    let line = ok(&[
        "sample",
        "--model",
        s(&model),
        "-n",
        "5",
        "--steps",
        "12",
        "--batch-size",
        "2",
        "--seed",
        "3",
        "--out",
        s(&grid),
        "--out-dir",
        s(&each),
        "--save-steps",
        s(&strip),
    ]);
    assert!(
        line.contains("5 images") && line.contains("of 12 steps") && line.contains("s/image"),
        "{line}"
    );
    assert_eq!(std::fs::read_dir(&each).unwrap().count(), 5);
    assert_eq!(
        image::open(each.join("0004.png")).unwrap().dimensions(),
        (16, 16)
    );
    assert_eq!(image::open(&strip).unwrap().height(), 16);
    // The same seed gives the same images; chunking is part of the seed's recipe, not the result's shape.
    let again = dir.path().join("again.png");
    ok(&[
        "sample",
        "--model",
        s(&model),
        "-n",
        "5",
        "--steps",
        "12",
        "--batch-size",
        "2",
        "--seed",
        "3",
        "--out",
        s(&again),
    ]);
    assert_eq!(
        std::fs::read(&grid).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn a_canvas_of_another_size_runs_through_prior_and_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let model = generator(dir.path());
    // A wider canvas than the training one runs through prior and decoder.
    let wide = dir.path().join("wide.png");
    ok(&[
        "sample",
        "--model",
        s(&model),
        "-n",
        "1",
        "--steps",
        "4",
        "--width",
        "32",
        "--height",
        "16",
        "--out",
        s(&wide),
    ]);
    assert_eq!(image::open(&wide).unwrap().dimensions(), (32, 16));
    let err = fails(&[
        "sample",
        "--model",
        s(&model),
        "--width",
        "17",
        "--out",
        s(&dir.path().join("refused.png")),
    ]);
    assert!(err.contains("17x16"), "{err}");
    let err = fails(&[
        "sample",
        "--model",
        s(&model),
        "--width",
        "18",
        "--out",
        s(&dir.path().join("refused.png")),
    ]);
    assert!(err.contains("8x9"), "{err}");
}

#[test]
fn inpainting_keeps_the_unmasked_pixels_and_shows_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = generator(dir.path());
    // Inpainting: the left half is kept; with --paste its pixels come back exactly.
    let (original, image_path, mask_path) = left_half_inputs(dir.path(), 16);
    let out = dir.path().join("inpainted.png");
    let variations = dir.path().join("variations");
    let line = ok(&[
        "inpaint",
        "--model",
        s(&model),
        "--image",
        s(&image_path),
        "--mask",
        s(&mask_path),
        "-n",
        "3",
        "--steps",
        "10",
        "--paste",
        "--show-input",
        "--out",
        s(&out),
        "--out-dir",
        s(&variations),
    ]);
    assert!(line.contains("3 images"), "{line}");
    // --show-input: one row of the image, the image with the mask in grey, then the variations.
    let row = image::open(&out).unwrap().to_rgb8();
    assert_eq!(row.dimensions(), (5 * 18 - 2, 16));
    let first_variation = image::open(variations.join("0000.png")).unwrap().to_rgb8();
    for y in 0..16 {
        for x in 0..16 {
            assert_eq!(row.get_pixel(x, y), original.get_pixel(x, y));
            let greyed = if x < 8 {
                *original.get_pixel(x, y)
            } else {
                Rgb([128, 128, 128])
            };
            assert_eq!(*row.get_pixel(18 + x, y), greyed, "({x}, {y})");
            assert_eq!(row.get_pixel(36 + x, y), first_variation.get_pixel(x, y));
        }
    }
    for i in 0..3 {
        let result = image::open(variations.join(format!("{i:04}.png")))
            .unwrap()
            .to_rgb8();
        for y in 0..16 {
            for x in 0..8 {
                assert_eq!(result.get_pixel(x, y), original.get_pixel(x, y));
            }
        }
    }
}

#[test]
fn outpainting_fills_a_wider_canvas_from_a_mask() {
    let dir = tempfile::tempdir().unwrap();
    let model = generator(dir.path());
    let (original, _, _) = left_half_inputs(dir.path(), 16);
    // Outpainting: a 32-wide canvas whose right half is to be made up.
    let (wide_image, wide_mask) = wide_inputs(dir.path(), &original);
    let outpainted = dir.path().join("outpainted.png");
    ok(&[
        "inpaint",
        "--model",
        s(&model),
        "--image",
        s(&wide_image),
        "--mask",
        s(&wide_mask),
        "-n",
        "1",
        "--steps",
        "6",
        "--width",
        "32",
        "--height",
        "16",
        "--out",
        s(&outpainted),
    ]);
    assert_eq!(image::open(&outpainted).unwrap().dimensions(), (32, 16));
}

#[test]
fn bad_generation_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = generator(dir.path());
    let (original, image_path, _) = left_half_inputs(dir.path(), 16);
    let (wide_image, wide_mask) = wide_inputs(dir.path(), &original);
    let out = dir.path().join("inpainted.png");
    // Bad input: a mask of another size, an image of another size, a model that is not a generator.
    let small_mask = dir.path().join("small-mask.png");
    RgbImage::from_pixel(8, 8, Rgb([0, 0, 0]))
        .save(&small_mask)
        .unwrap();
    let err = fails(&[
        "inpaint",
        "--model",
        s(&model),
        "--image",
        s(&image_path),
        "--mask",
        s(&small_mask),
        "--out",
        s(&out),
        "--force",
    ]);
    assert!(err.contains("8x8") && err.contains("16x16"), "{err}");
    let err = fails(&[
        "inpaint",
        "--model",
        s(&model),
        "--image",
        s(&wide_image),
        "--mask",
        s(&wide_mask),
        "--out",
        s(&out),
        "--force",
    ]);
    assert!(err.contains("32x16") && err.contains("--resize"), "{err}");
    ok(&[
        "inpaint",
        "--model",
        s(&model),
        "--image",
        s(&wide_image),
        "--mask",
        s(&wide_mask),
        "--resize",
        "--steps",
        "3",
        "--out",
        s(&out),
        "--force",
    ]);
    let err = fails(&[
        "sample",
        "--model",
        s(&root("tests/fixtures/tiny-bundle")),
        "--out",
        s(&out),
        "--force",
    ]);
    assert!(err.contains("not a generator bundle"), "{err}");
    let err = fails(&[
        "sample",
        "--model",
        s(&model),
        "--temperature",
        "hot",
        "--out",
        s(&out),
        "--force",
    ]);
    assert!(err.contains("--temperature"), "{err}");
}

/// The positions where two token files agree, as a share, from `sundae bench agreement`'s line.
fn agreement(a: &Path, b: &Path) -> f64 {
    let line = ok(&["bench", "agreement", s(a), s(b)]);
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn evaluation_runs_reduced_precision_agrees_with_f32_and_the_device_check_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = generator(dir.path());
    let tokens = |precision: &str| {
        let path = dir.path().join(format!("tokens-{precision}.npy"));
        ok(&[
            "sample",
            "--model",
            s(&model),
            "-n",
            "16",
            "--steps",
            "30",
            "--seed",
            "3",
            "--precision",
            precision,
            "--out",
            s(&dir.path().join(format!("{precision}.png"))),
            "--tokens",
            s(&path),
        ]);
        path
    };
    let evaluated = ok(&[
        "evaluate",
        "--model",
        s(&model),
        "--latents",
        s(&dir.path().join("latents")),
        "--blocks",
    ]);
    assert!(evaluated.contains(r#""step_losses":["#), "{evaluated}");
    assert!(evaluated.contains("blocks: accuracy"), "{evaluated}");
    assert!(evaluated.contains(r#""corrupted_loss":"#), "{evaluated}");

    // A bundle's sampling.toml sets the defaults; flags win over it.
    std::fs::write(
        model.join("sampling.toml"),
        "steps = 3\ntemperature = \"0.9:0.3\"\n",
    )
    .unwrap();
    let quick = dir.path().join("quick.png");
    let line = ok(&[
        "sample",
        "--model",
        s(&model),
        "-n",
        "2",
        "--no-early-stop",
        "--out",
        s(&quick),
    ]);
    assert!(line.contains("3.0 of 3 steps"), "{line}");
    let line = ok(&[
        "sample",
        "--model",
        s(&model),
        "-n",
        "2",
        "--no-early-stop",
        "--steps",
        "5",
        "--out",
        s(&quick),
        "--force",
    ]);
    assert!(line.contains("5.0 of 5 steps"), "{line}");
    std::fs::write(model.join("sampling.toml"), "stepz = 3\n").unwrap();
    let err = fails(&[
        "sample",
        "--model",
        s(&model),
        "--out",
        s(&quick),
        "--force",
    ]);
    assert!(
        err.contains("sampling.toml") && err.contains("stepz"),
        "{err}"
    );
    std::fs::remove_file(model.join("sampling.toml")).unwrap();
    let f32_tokens = tokens("f32");
    // Same seed, same draws: only rounding in the model can move a draw across a category boundary,
    // and a moved token changes the context of later steps.
    let f16 = agreement(&tokens("f16"), &f32_tokens);
    let bf16 = agreement(&tokens("bf16"), &f32_tokens);
    assert!(f16 >= 0.97, "f16 agrees on {f16}");
    assert!(bf16 >= 0.9, "bf16 agrees on {bf16}");
    // The flag reaches the device: the benchmark reports the type it computed in.
    let bench = ok(&[
        "bench",
        "generator",
        "--config",
        s(&model),
        "--batch",
        "1",
        "--timed-steps",
        "1",
        "--precision",
        "bf16",
    ]);
    assert!(bench.contains(r#""precision":"bf16""#), "{bench}");

    let script = std::process::Command::new(root("scripts/device-check.sh"))
        .arg("cpu")
        .env("SUNDAE", env!("CARGO_BIN_EXE_sundae"))
        .env("CONFIG", "tiny")
        .env("BATCHES", "1,2")
        .env("TRAIN_CONFIGS", "tiny")
        .env("MODEL", &model)
        .env("OUT", dir.path().join("device-check"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&script.stdout);
    assert!(
        script.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&script.stderr)
    );
    for expected in [
        r#""config":"tiny","batch":2,"resolution":16,"precision":"f32""#,
        r#""config":"tiny","batch":2,"resolution":16,"precision":"f16""#,
        "prior training step tiny: batch 4, T = 2",
        "tiny           16     1   f32",
        "agreement 1.000000",
        "device check: done",
    ] {
        assert!(printed.contains(expected), "missing {expected}:\n{printed}");
    }
}

#[test]
fn the_built_in_model_samples_without_flags() {
    // models/emoji-styles ships with the repository (f16 weights): `sample` without --model must find
    // and load it, and draw each image's style and name at random (its sampling.toml).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("samples.png");
    let tokens = dir.path().join("tokens.npy");
    let images = dir.path().join("images");
    let line = ok(&[
        "sample",
        "-n",
        "2",
        "--steps",
        "4",
        "--out",
        s(&out),
        "--out-dir",
        s(&images),
        "--tokens",
        s(&tokens),
    ]);
    assert!(line.contains("2 images"), "{line}");
    // Two 64x64 emoji side by side with a 2-pixel gap.
    assert_eq!(image::open(&out).unwrap().dimensions(), (130, 64));
    let grids = sundae::tokens::read_tokens(&tokens).unwrap();
    assert_eq!(grids.shape, [2, 8, 8]);
    grids.check_vocabulary(512).unwrap();
    let drawn: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(images.join("labels.json")).unwrap())
            .unwrap();
    assert_eq!(drawn.as_object().unwrap().len(), 2, "{drawn}");
    for labels in drawn.as_object().unwrap().values() {
        let styles = ["fluent-emoji-flat", "noto", "openmoji", "twemoji"];
        assert!(
            styles.contains(&labels["style"].as_str().unwrap()),
            "{labels}"
        );
        assert!(labels["name"].is_string(), "{labels}");
    }
}

#[test]
fn an_image_smaller_than_the_canvas_is_centred_and_its_border_generated() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let model = generator(dir);
    let original = RgbImage::from_fn(16, 16, |x, y| Rgb([(x * 15) as u8, (y * 15) as u8, 90]));
    let image = dir.join("small.png");
    let mask = dir.join("keep-all.png");
    original.save(&image).unwrap();
    RgbImage::from_pixel(16, 16, Rgb([255, 255, 255]))
        .save(&mask)
        .unwrap();
    let out = dir.join("outpainted.png");
    let out_dir = dir.join("variations");
    let args = [
        "inpaint",
        "--model",
        s(&model),
        "--image",
        s(&image),
        "--mask",
        s(&mask),
        "-n",
        "1",
        "--steps",
        "4",
        "--width",
        "32",
        "--height",
        "16",
        "--paste",
        "--out",
        s(&out),
        "--out-dir",
        s(&out_dir),
    ];
    let output = common::sundae(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("centre of the 32x16 canvas"));
    let result = image::open(out_dir.join("0000.png")).unwrap().to_rgb8();
    assert_eq!(result.dimensions(), (32, 16));
    // Pasted back: the image sits in the middle (columns 8..24), pixel for pixel.
    for y in 0..16 {
        for x in 0..16 {
            assert_eq!(result.get_pixel(x + 8, y), original.get_pixel(x, y));
        }
    }
}
