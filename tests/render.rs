//! Render decoders: extra decoders in a bundle that draw its tokens at larger sizes.

mod common;

use common::{fails, generator, max_abs_diff, ok, root, s};
use image::RgbImage;
use std::path::{Path, PathBuf};
use sundae::bundle;
use sundae::tokens::TokenGrids;
use sundae::vqgan::VqGanConfig;
use sundae::vqgan::batch::render_grids;
use sundae::vqgan::render::RenderDecoder;

/// A decoder for the fixture tokenizer's codes (16 px, 8x8 tokens) at `size` pixels.
fn render_config(size: usize) -> VqGanConfig {
    let ch_mult = match size {
        32 => vec![1, 1, 2],
        64 => vec![1, 1, 1, 2],
        _ => unreachable!(),
    };
    VqGanConfig {
        resolution: size,
        ch_mult,
        ..VqGanConfig::tiny()
    }
}

/// Copies a bundle's files into `to`.
fn copy_bundle(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Adds randomly initialised 32- and 64-pixel decoders to `bundle_dir`; returns them.
fn add_decoders(bundle_dir: &Path, scratch: &Path) -> Vec<(usize, RenderDecoder)> {
    let device = sundae::device::cpu();
    [32, 64]
        .into_iter()
        .map(|size| {
            let config = render_config(size);
            let model = RenderDecoder::new(&config, &device);
            let folder = scratch.join(format!("decoder-{size}"));
            bundle::save_render_decoder(&folder, &config, &model, bundle::Storage::F32).unwrap();
            assert_eq!(
                bundle::attach_render_decoder(bundle_dir, &folder, false, bundle::Storage::F32)
                    .unwrap(),
                size
            );
            (size, model)
        })
        .collect()
}

fn tokenizer_with_decoders(dir: &Path) -> (PathBuf, Vec<(usize, RenderDecoder)>) {
    let bundle_dir = dir.join("bundle");
    copy_bundle(&root("tests/fixtures/tiny-bundle"), &bundle_dir);
    let decoders = add_decoders(&bundle_dir, dir);
    (bundle_dir, decoders)
}

/// Two 8x8 grids of every code in turn.
fn known_grids() -> TokenGrids {
    TokenGrids {
        values: (0..128).map(|i| (i * 7 % 16) as i64).collect(),
        shape: [2, 8, 8],
    }
}

fn to_png_pixels(values: &[f32], side: usize) -> RgbImage {
    sundae::data::images::to_rgb8(values, side, side)
}

#[test]
fn decoders_at_two_sizes_round_trip_through_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle_dir, decoders) = tokenizer_with_decoders(dir.path());
    assert_eq!(bundle::render_sizes(&bundle_dir).unwrap(), vec![16, 32, 64]);
    let device = sundae::device::cpu();
    let (config, tokenizer) = bundle::load_vqgan(&bundle_dir, &device).unwrap();
    let grids = known_grids();
    for (size, model) in &decoders {
        let loaded =
            bundle::load_render_decoder(&bundle_dir, Some(*size), &config, &tokenizer, &device)
                .unwrap();
        assert_eq!(loaded.pixels_per_token(), size / 8);
        let (a, shape) = render_grids(&tokenizer.quantize, model, &grids, 2, &device);
        let (b, _) = render_grids(&tokenizer.quantize, &loaded, &grids, 1, &device);
        assert_eq!(shape, [2, 3, *size, *size]);
        assert_eq!(
            a, b,
            "the {size}-pixel decoder changed on its way through the bundle"
        );
    }
    // No size, or the native one: the tokenizer's own decoder.
    let native =
        bundle::load_render_decoder(&bundle_dir, None, &config, &tokenizer, &device).unwrap();
    let (a, shape) = render_grids(&tokenizer.quantize, &native, &grids, 2, &device);
    let (b, _) = sundae::vqgan::batch::decode_grids(&tokenizer, &grids, 2, &device);
    assert_eq!(shape, [2, 3, 16, 16]);
    assert_eq!(a, b);
    // A second decoder of one size is refused unless forced.
    let error = bundle::attach_render_decoder(
        &bundle_dir,
        &dir.path().join("decoder-32"),
        false,
        bundle::Storage::F32,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("already has a 32-pixel decoder"), "{error}");
}

#[test]
fn a_render_decoder_starts_from_its_tokenizers_levels() {
    let device = sundae::device::cpu();
    let (_, tokenizer) = bundle::load_vqgan(&root("tests/fixtures/tiny-bundle"), &device).unwrap();
    let mut render = RenderDecoder::new(&render_config(32), &device);
    let before = render.decoder.up[2].block[0].conv1.weight.val();
    let (copied, total) =
        bundle::init_render_from(&mut render, &RenderDecoder::native(&tokenizer), 1).unwrap();
    assert!(copied > 0 && copied < total, "{copied} of {total}");
    // The tokenizer's level 1 (the 8-pixel level) is the render decoder's level 2.
    let copied_level = values(render.decoder.up[2].block[0].conv1.weight.val());
    assert_eq!(
        copied_level,
        values(tokenizer.decoder.up[1].block[0].conv1.weight.val())
    );
    assert_ne!(copied_level, values(before));
    assert_eq!(
        values(render.decoder.conv_in.weight.val()),
        values(tokenizer.decoder.conv_in.weight.val())
    );
    // The new level's upsampling has no counterpart: as wide as the tokenizer's top level, it
    // starts passing its input through (the next test).
    assert!(render.decoder.up[1].upsample.is_some());
}

/// A tensor's values, in order.
fn values<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// A decoder's last features (`norm_out` and SiLU, before `conv_out`) of quantised latents.
fn features(decoder: &RenderDecoder, latents: &burn::tensor::Tensor<4>) -> burn::tensor::Tensor<4> {
    let z = decoder.post_quant_conv.forward(latents.clone());
    decoder.decoder.features(z)
}

#[test]
fn new_levels_as_wide_as_the_source_start_as_its_nearest_enlargement() {
    use burn::tensor::{Distribution, Tensor};
    use sundae::vqgan::blocks::nearest_x2;
    let device = sundae::device::cpu();
    let (_, tokenizer) = bundle::load_vqgan(&root("tests/fixtures/tiny-bundle"), &device).unwrap();
    let native = RenderDecoder::native(&tokenizer);
    let latents = Tensor::<4>::random([1, 8, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    // 16 -> 64 px: two new levels of the tokenizer's top width (32 channels).
    let mut grown = RenderDecoder::new(&render_config(64), &device);
    bundle::init_render_from(&mut grown, &native, 2).unwrap();
    let enlarged = values(nearest_x2(nearest_x2(features(&native, &latents))));
    let drawn = values(features(&grown, &latents));
    let worst = max_abs_diff(&drawn, &enlarged);
    assert!(worst < 1e-5, "max |diff| {worst}");
    // The output layers were copied, so the picture is the source's drawn on a finer grid.
    assert_eq!(
        values(grown.decoder.conv_out.weight.val()),
        values(native.decoder.conv_out.weight.val())
    );

    // A new level narrower than the source's top one (a block changes width): nothing passes
    // through, the new levels keep their random start.
    let narrow = VqGanConfig {
        resolution: 32,
        ch: 16,
        ch_mult: vec![1, 2, 4],
        norm_groups: 16,
        ..VqGanConfig::tiny()
    };
    let mut random = RenderDecoder::new(&narrow, &device);
    let (copied, _) = bundle::init_render_from(&mut random, &native, 1).unwrap();
    assert!(copied > 0);
    let upsample = values(
        random.decoder.up[1]
            .upsample
            .as_ref()
            .unwrap()
            .conv
            .weight
            .val(),
    );
    let centre_identity = (0..32).all(|c| upsample[((c * 32 + c) * 3 + 1) * 3 + 1] == 1.0);
    assert!(!centre_identity);
    assert!(
        random.decoder.up[0].block[1]
            .conv2
            .weight
            .val()
            .abs()
            .sum()
            .into_scalar::<f32>()
            > 0.0
    );
}

#[test]
fn a_deeper_decoder_starts_drawing_what_the_shallower_one_draws() {
    use burn::tensor::{Distribution, Tensor};
    let device = sundae::device::cpu();
    // Random weights: every copied block does something, so a wrong copy or a new block that is not
    // an identity shows in the picture. The 8-pixel level has attention, so new attention blocks
    // are covered too.
    let shallow = RenderDecoder::new(&render_config(32), &device);
    let deep_config = VqGanConfig {
        num_res_blocks: 2,
        ..render_config(32)
    };
    let mut deep = RenderDecoder::new(&deep_config, &device);
    let (copied, total) = bundle::init_render_from(&mut deep, &shallow, 0).unwrap();
    let source_tensors = bundle::tensor_names(&shallow).len();
    assert_eq!(copied, source_tensors);
    assert!(total > copied, "{copied} of {total}");
    assert_eq!(deep.decoder.up[0].block.len(), 3);
    assert_eq!(deep.decoder.up[2].attn.len(), 3);
    let latents = Tensor::<4>::random([2, 8, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let expected = values(shallow.decode_latents(latents.clone()));
    let drawn = values(deep.decode_latents(latents));
    let worst = max_abs_diff(&drawn, &expected);
    assert!(worst < 1e-5, "max |diff| {worst}");
    // Only the new blocks' output layers are zero: their first convolutions keep a random start,
    // so training moves them once the output layer has.
    let new_block = &deep.decoder.up[1].block[2];
    let abs_sum = |t: Tensor<4>| t.abs().sum().into_scalar::<f32>();
    assert_eq!(abs_sum(new_block.conv2.weight.val()), 0.0);
    assert!(abs_sum(new_block.conv1.weight.val()) > 0.0);
    assert_eq!(
        abs_sum(deep.decoder.up[2].attn[2].proj_out.weight.val()),
        0.0
    );
}

#[test]
fn render_size_picks_the_decoder_and_unknown_sizes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle_dir, decoders) = tokenizer_with_decoders(dir.path());
    let device = sundae::device::cpu();
    let (_, tokenizer) = bundle::load_vqgan(&bundle_dir, &device).unwrap();
    let grids = known_grids();
    let tokens = dir.path().join("tokens.npy");
    sundae::tokens::write_tokens(&tokens, &grids).unwrap();
    for (size, model) in &decoders {
        let out = dir.path().join(format!("decoded-{size}.png"));
        let size_arg = size.to_string();
        ok(&[
            "vqgan",
            "decode",
            "--vqgan",
            s(&bundle_dir),
            "--tokens",
            s(&tokens),
            "--render-size",
            &size_arg,
            "--out",
            s(&out),
        ]);
        let (expected, _) = render_grids(&tokenizer.quantize, model, &grids, 2, &device);
        for i in 0..2 {
            let written = image::open(dir.path().join(format!("decoded-{size}-{i}.png")))
                .unwrap()
                .to_rgb8();
            let plane = 3 * size * size;
            assert_eq!(written.dimensions(), (*size as u32, *size as u32));
            assert_eq!(
                written,
                to_png_pixels(&expected[i * plane..(i + 1) * plane], *size)
            );
        }
    }
    let decode = |bundle_dir: &Path, size: &str| {
        fails(&[
            "vqgan",
            "decode",
            "--vqgan",
            s(bundle_dir),
            "--tokens",
            s(&tokens),
            "--render-size",
            size,
            "--out",
            s(&dir.path().join("never.png")),
        ])
    };
    let line = decode(&bundle_dir, "48");
    assert!(
        line.contains("no 48-pixel decoder") && line.contains("16 (native), 32 and 64"),
        "{line}"
    );
    let line = decode(&root("tests/fixtures/tiny-bundle"), "32");
    assert!(line.contains("renders only at its native 16x16"), "{line}");
    assert!(!dir.path().join("never.png").exists());
}

#[test]
fn sampling_and_inpainting_at_a_render_size() {
    let dir = tempfile::tempdir().unwrap();
    let model = generator(dir.path());
    let decoders = add_decoders(&model, dir.path());
    let device = sundae::device::cpu();
    let (_, tokenizer) = bundle::load_vqgan(&model, &device).unwrap();

    // sample: 64-pixel images, the decoder's drawing of the tokens the prior made.
    let tiles = dir.path().join("tiles");
    let tokens = dir.path().join("tokens.npy");
    ok(&[
        "sample",
        "--model",
        s(&model),
        "-n",
        "2",
        "--steps",
        "4",
        "--render-size",
        "64",
        "--out",
        s(&dir.path().join("grid.png")),
        "--out-dir",
        s(&tiles),
        "--tokens",
        s(&tokens),
    ]);
    let grids = sundae::tokens::read_tokens(&tokens).unwrap();
    let (expected, _) = render_grids(&tokenizer.quantize, &decoders[1].1, &grids, 2, &device);
    for i in 0..2 {
        let tile = image::open(tiles.join(format!("{i:04}.png")))
            .unwrap()
            .to_rgb8();
        let plane = 3 * 64 * 64;
        assert_eq!(
            tile,
            to_png_pixels(&expected[i * plane..(i + 1) * plane], 64)
        );
    }

    // inpaint at 32 pixels: image and mask at 32x32, the left half kept exactly.
    let (original, image_path, mask_path) = common::left_half_inputs(dir.path(), 32);
    let variations = dir.path().join("variations");
    ok(&[
        "inpaint",
        "--model",
        s(&model),
        "--image",
        s(&image_path),
        "--mask",
        s(&mask_path),
        "-n",
        "2",
        "--steps",
        "4",
        "--render-size",
        "32",
        "--paste",
        "--out",
        s(&dir.path().join("inpainted.png")),
        "--out-dir",
        s(&variations),
    ]);
    for i in 0..2 {
        let result = image::open(variations.join(format!("{i:04}.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!(result.dimensions(), (32, 32));
        for y in 0..32 {
            for x in 0..16 {
                assert_eq!(
                    result.get_pixel(x, y),
                    original.get_pixel(x, y),
                    "({x}, {y})"
                );
            }
        }
    }
    // An unknown size is refused before sampling, naming the sizes the bundle has.
    let line = fails(&[
        "sample",
        "--model",
        s(&model),
        "--render-size",
        "128",
        "--out",
        s(&dir.path().join("never.png")),
    ]);
    assert!(line.contains("16 (native), 32 and 64"), "{line}");
}

#[test]
fn a_decoder_run_trains_resumes_and_joins_its_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle_dir = dir.path().join("bundle");
    copy_bundle(&root("tests/fixtures/tiny-bundle"), &bundle_dir);
    let config = dir.path().join("decoder.toml");
    let model = toml::to_string(&render_config(32)).unwrap();
    let train = "steps = 2\nbatch_size = 2\nlearning_rate = 1e-3\nwarmup_steps = 0\n\
                 decay_steps = 0\ncheckpoint_every = 1\nsample_every = 2\nvalidation_images = 2\n";
    std::fs::write(&config, format!("[model]\n{model}\n[train]\n{train}")).unwrap();
    let run = dir.path().join("run");
    let args = |extra: &[&str]| {
        let mut args = vec![
            "vqgan",
            "train-decoder",
            "--data",
            "emoji",
            "--vqgan",
            s(&bundle_dir),
            "--run",
            s(&run),
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let first = args(&["--config", s(&config)]);
    ok(&first.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run.join("samples/step-00000002.png").is_file());
    assert!(run.join("train-grids/tokens.npy").is_file());
    // Extended by one step, then added to the bundle.
    let longer = dir.path().join("longer.toml");
    std::fs::write(
        &longer,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("steps = 2", "steps = 3"),
    )
    .unwrap();
    let second = args(&["--resume", "--config", s(&longer), "--attach"]);
    let output = common::sundae(&second.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("resumed from step 2"), "{stderr}");
    assert_eq!(bundle::render_sizes(&bundle_dir).unwrap(), vec![16, 32]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"val_psnr_bicubic\""), "{metrics}");
    // Resumed against another tokenizer (other weights, same shape): refused before training.
    let other = dir.path().join("other");
    common::ok(&["vqgan", "init", "--config", "tiny", "--out", s(&other)]);
    let mut third: Vec<String> = args(&["--resume", "--config", s(&longer)]);
    let at = third.iter().position(|a| a == "--vqgan").unwrap();
    third[at + 1] = s(&other).to_string();
    let line = fails(&third.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(line.contains("another tokenizer"), "{line}");
}
