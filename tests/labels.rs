//! Labels and classifier-free guidance: labels from the data through encode, training and the bundle
//! to `--label`; label dropout at its rate; guided logits as the formula says.

mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::{fails, ok, root, s};
use std::path::{Path, PathBuf};
use sundae::data::labels::LabelSets;
use sundae::device;
use sundae::hourglass::config::LabelSetSize;
use sundae::hourglass::{Conditions, Prior, PriorConfig};
use sundae::sundae::Denoiser;
use sundae::sundae::sample::{SampleSettings, guided_logits};
use sundae::sundae::train::drop_labels;
use sundae::train::SplitMix;

/// The four emoji the tiny sets draw unless a test asks for others.
const CODES: [&str; 4] = ["1f600", "2764", "1f355", "1f436"];

/// Two tiny Iconify sets drawing the same four emoji in different colours.
fn write_styles(dir: &Path, codes: [&str; 4]) {
    for (prefix, colours) in [
        ("alpha", ["#ff0000", "#00ff00", "#0000ff", "#ffff00"]),
        ("beta", ["#00ffff", "#ff00ff", "#000000", "#808080"]),
    ] {
        let package = dir.join(prefix);
        std::fs::create_dir_all(&package).unwrap();
        let mut icons = serde_json::Map::new();
        let mut chars = serde_json::Map::new();
        for (code, colour) in codes.iter().zip(colours) {
            icons.insert(
                format!("icon-{code}"),
                serde_json::json!({"body": format!("<circle cx=\"8\" cy=\"8\" r=\"6\" fill=\"{colour}\"/>")}),
            );
            chars.insert(code.to_string(), serde_json::json!(format!("icon-{code}")));
        }
        let set = serde_json::json!({"prefix": prefix, "width": 16, "height": 16, "icons": icons});
        std::fs::write(package.join("icons.json"), set.to_string()).unwrap();
        std::fs::write(
            package.join("chars.json"),
            serde_json::Value::Object(chars).to_string(),
        )
        .unwrap();
    }
}

/// Encodes the two styles with the fixture VQ-GAN, trains a tiny labelled prior and bundles it.
fn labelled_generator(dir: &Path, codes: [&str; 4]) -> PathBuf {
    let styles = dir.join("styles");
    write_styles(&styles, codes);
    let vqgan = root("tests/fixtures/tiny-bundle");
    let latents = dir.join("latents");
    let source = format!("iconify:{}", styles.display());
    ok(&[
        "encode",
        "--vqgan",
        s(&vqgan),
        "--data",
        &source,
        "--split",
        "all",
        "--flip",
        "--out",
        s(&latents),
    ]);
    let config = dir.join("prior.toml");
    let tiny = std::fs::read_to_string(root("configs/prior-tiny.toml")).unwrap();
    let labelled = tiny
        .replace(
            "ff_mult = 2\n",
            "ff_mult = 2\nlabels = [{ name = \"style\" }, { name = \"name\" }]\n",
        )
        .replace(
            "[train]\n",
            "[train]\nlabel_dropout = 0.2\nlabel_drop_all = 0.1\n",
        );
    std::fs::write(&config, labelled).unwrap();
    let run = dir.join("run");
    ok(&[
        "train",
        "--latents",
        s(&latents),
        "--config",
        s(&config),
        "--run",
        s(&run),
    ]);
    let model = dir.join("model");
    common::join(&vqgan, &run, &model);
    model
}

#[test]
fn labels_travel_from_the_data_through_encode_training_and_the_bundle_to_label_flags() {
    let temp = tempfile::tempdir().unwrap();
    let model = labelled_generator(temp.path(), CODES);
    let dir = temp.path();

    // The manifest names every set and value; each shard's labels lie beside it, one row per grid
    // (two views per image with --flip).
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("latents/manifest.json")).unwrap())
            .unwrap();
    let sets = &manifest["labels"]["sets"];
    assert_eq!(sets[0]["name"], "group");
    assert_eq!(sets[1]["name"], "name");
    assert_eq!(
        sets[1]["values"],
        serde_json::json!(["dog-face", "grinning-face", "pizza", "red-heart"])
    );
    assert_eq!(sets[2]["values"], serde_json::json!(["alpha", "beta"]));
    let set = sundae::data::latents::load(&dir.join("latents")).unwrap();
    assert_eq!(set.grids.shape[0], 16);
    assert_eq!(set.labels.len(), 16 * 3);
    // Image order: style alpha's four emoji by code, then beta's; each image twice (mirror).
    // Row 0 is alpha's 1f355 (pizza): group food-and-drink, name pizza (2), style alpha (0).
    let groups = sets[0]["values"].as_array().unwrap();
    let food = groups.iter().position(|g| g == "food-and-drink").unwrap() as i64;
    assert_eq!(&set.labels[0..3], &[food, 2, 0]);
    assert_eq!(
        &set.labels[3..6],
        &[food, 2, 0],
        "the mirror image keeps its labels"
    );
    assert_eq!(set.labels[8 * 3 + 2], 1, "the second half is style beta");

    // The prior took the sizes of the two sets it names from the manifest, and the bundle keeps
    // their values in its order.
    let prior: PriorConfig =
        toml::from_str(&std::fs::read_to_string(model.join("prior.toml")).unwrap()).unwrap();
    assert_eq!(
        prior.labels,
        [
            LabelSetSize {
                name: "style".into(),
                values: 2
            },
            LabelSetSize {
                name: "name".into(),
                values: 4
            }
        ]
    );
    let known = LabelSets::read(&model).unwrap();
    assert_eq!(known.sets[0].name, "style");
    assert_eq!(
        known.parse_requests(&["name=pizza".into()]).unwrap(),
        [2, 2]
    );
    assert_eq!(known.nulls(), [2, 4]);
    assert_eq!(
        known.names(&[1, 2]),
        sundae::data::Labels::from([
            ("style".to_string(), "beta".to_string()),
            ("name".to_string(), "pizza".to_string())
        ])
    );
    assert_eq!(known.names(&[2, 0]).len(), 1, "a null index is left out");

    let listed = ok(&["labels", "--model", s(&model)]);
    assert!(listed.contains("style (2 values): alpha, beta"), "{listed}");
    assert!(
        listed.contains("name (4 values): dog-face, grinning-face, pizza, red-heart"),
        "{listed}"
    );
    assert_eq!(
        ok(&["labels", "--model", s(&model), "--set", "name"])
            .lines()
            .count(),
        4
    );

    // Sampling with labels and guidance writes images; the same seed and labels repeat them.
    let sample = |out: &str, extra: &[&str]| -> Vec<u8> {
        let path = dir.join(out);
        let mut args = vec![
            "sample",
            "--model",
            s(&model),
            "-n",
            "2",
            "--steps",
            "3",
            "--out",
            s(&path),
            "--force",
        ];
        args.extend_from_slice(extra);
        ok(&args);
        std::fs::read(path).unwrap()
    };
    let guided = [
        "--label",
        "style=beta",
        "--label",
        "name=pizza",
        "--guidance",
        "2",
    ];
    assert_eq!(sample("a.png", &guided), sample("b.png", &guided));
    assert_ne!(sample("a.png", &guided), sample("c.png", &[]));
    // Random names per image: repeatable under one seed, not the sheet of the style alone.
    let random = ["--label", "style=beta", "--random-label", "name"];
    assert_eq!(sample("d.png", &random), sample("e.png", &random));
    assert_ne!(
        sample("d.png", &random),
        sample("f.png", &["--label", "style=beta"])
    );
    // With --out-dir, labels.json names what each image was drawn as.
    let images = dir.join("random-images");
    let mut args = vec!["sample", "--model", s(&model), "-n", "6", "--steps", "3"];
    args.extend(random);
    let grid = dir.join("g.png");
    args.extend(["--out", s(&grid), "--out-dir", s(&images)]);
    ok(&args);
    let drawn: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(images.join("labels.json")).unwrap())
            .unwrap();
    let drawn = drawn.as_object().unwrap();
    assert_eq!(drawn.len(), 6, "{drawn:?}");
    let names = ["dog-face", "grinning-face", "pizza", "red-heart"];
    for (file, labels) in drawn {
        assert!(images.join(file).is_file(), "{file}");
        assert_eq!(labels["style"], "beta");
        assert!(
            names.contains(&labels["name"].as_str().unwrap()),
            "{labels}"
        );
    }
    let distinct: std::collections::BTreeSet<&str> = drawn
        .values()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(
        distinct.len() > 1,
        "six draws over four names: {distinct:?}"
    );
}

#[test]
fn a_bundle_s_default_random_labels_apply_to_sample_unless_fixed_or_switched_off() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let model = labelled_generator(dir, CODES);
    let sampling = model.join("sampling.toml");
    let image = dir.join("input.png");
    let mask = dir.join("mask.png");
    image::RgbImage::from_fn(16, 16, |x, y| {
        image::Rgb([(x * 15) as u8, (y * 15) as u8, 60])
    })
    .save(&image)
    .unwrap();
    image::RgbImage::from_fn(16, 16, |_, y| {
        image::Rgb(if y < 8 { [255; 3] } else { [0; 3] })
    })
    .save(&mask)
    .unwrap();
    let run = |command: &str, out: &str, extra: &[&str]| -> Vec<u8> {
        let path = dir.join(out);
        let mut args = vec![command, "--model", s(&model), "-n", "4", "--steps", "3"];
        if command == "inpaint" {
            args.extend(["--image", s(&image), "--mask", s(&mask)]);
        }
        args.extend_from_slice(extra);
        args.extend(["--out", s(&path), "--force"]);
        ok(&args);
        std::fs::read(path).unwrap()
    };
    // Without the file: no label drawn; recorded for the comparisons below.
    let unconditional = run("sample", "none.png", &[]);
    let inpainted = run("inpaint", "inpainted.png", &[]);
    let beta = run("sample", "beta.png", &["--label", "style=beta"]);
    let name_only = run("sample", "name-only.png", &["--random-label", "name"]);

    std::fs::write(&sampling, "random_labels = [\"style\", \"name\"]\n").unwrap();
    let both = ["--random-label", "style", "--random-label", "name"];
    // `sample` alone now draws style and name per image, as the flags would.
    let drawn = run("sample", "default.png", &[]);
    assert_eq!(drawn, run("sample", "flags.png", &both));
    assert_ne!(drawn, unconditional);
    // A set fixed by --label is not drawn; the other still is.
    let fixed = run("sample", "fixed.png", &["--label", "style=beta"]);
    assert_eq!(
        fixed,
        run(
            "sample",
            "fixed-flags.png",
            &["--label", "style=beta", "--random-label", "name"]
        )
    );
    assert_ne!(fixed, beta);
    // --no-random-labels gives what the bundle gave without the file.
    assert_eq!(
        run("sample", "off.png", &["--no-random-labels"]),
        unconditional
    );
    assert_eq!(
        run(
            "sample",
            "off-beta.png",
            &["--label", "style=beta", "--no-random-labels"]
        ),
        beta
    );
    // Inpainting draws no label the flags do not ask for.
    assert_eq!(run("inpaint", "inpainted-default.png", &[]), inpainted);
    // An explicit --random-label replaces the bundle's list.
    assert_eq!(
        run("sample", "name-again.png", &["--random-label", "name"]),
        name_only
    );
    // --no-random-labels and --random-label contradict each other.
    let both_ways = fails(&[
        "sample",
        "--model",
        s(&model),
        "--no-random-labels",
        "--random-label",
        "name",
        "--out",
        s(&dir.join("x.png")),
    ]);
    assert!(both_ways.contains("cannot be used with"), "{both_ways}");
    // A set the model lacks in the file is one line naming the file.
    std::fs::write(&sampling, "random_labels = [\"colour\"]\n").unwrap();
    let error = fails(&[
        "sample",
        "--model",
        s(&model),
        "--out",
        s(&dir.join("y.png")),
    ]);
    assert!(
        error.contains("sampling.toml: random_labels: unknown label set 'colour'"),
        "{error}"
    );
}

#[test]
fn bad_labels_and_a_model_without_labels_are_one_line_each() {
    let temp = tempfile::tempdir().unwrap();
    let model = labelled_generator(temp.path(), CODES);
    let out = temp.path().join("out.png");
    let cases: [(&[&str], &str); 7] = [
        (
            &["--label", "colour=red"],
            "unknown label set 'colour': this model knows style, name",
        ),
        (
            &["--label", "name=piza"],
            "unknown name 'piza': the nearest known are pizza",
        ),
        (&["--label", "style"], "is not SET=VALUE"),
        (&["--guidance", "nan"], "--guidance must be a finite number"),
        (
            &["--random-label", "colour"],
            "unknown label set 'colour': this model knows style, name",
        ),
        (
            &["--label", "style=alpha", "--random-label", "style"],
            "label set 'style' is given both by --label and by --random-label",
        ),
        (
            &["--random-label", "name", "--random-label", "name"],
            "--random-label names 'name' twice",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["sample", "--model", s(&model), "--out", s(&out)];
        args.extend_from_slice(extra);
        let error = fails(&args);
        assert!(error.contains(expected), "{extra:?}: {error}");
    }
    // A model without label sets.
    let plain_dir = temp.path().join("plain");
    std::fs::create_dir(&plain_dir).unwrap();
    let plain = common::generator(&plain_dir);
    let error = fails(&[
        "sample",
        "--model",
        s(&plain),
        "--label",
        "style=noto",
        "--out",
        s(&out),
    ]);
    assert!(error.contains("has no label sets"), "{error}");
    let error = fails(&[
        "sample",
        "--model",
        s(&plain),
        "--random-label",
        "style",
        "--out",
        s(&out),
    ]);
    assert!(error.contains("has no label sets"), "{error}");
    let listed = ok(&["labels", "--model", s(&plain)]);
    assert!(listed.contains("no label sets"), "{listed}");
}

/// Four emoji for the pairs test: the first held out in style alpha only, the rest in neither
/// style, so the split holds exactly one (name, style) pair.
fn one_held_out_pair() -> [&'static str; 4] {
    use sundae::data::iconify::is_validation;
    let named = || {
        sundae::data::emoji::codes()
            .filter(|c| sundae::data::emoji_names::lookup(c).is_some() && !c.contains('-'))
    };
    let held = named()
        .find(|c| is_validation(c, "alpha") && !is_validation(c, "beta"))
        .unwrap();
    let kept: Vec<&str> = named()
        .filter(|c| !is_validation(c, "alpha") && !is_validation(c, "beta"))
        .take(3)
        .collect();
    [held, kept[0], kept[1], kept[2]]
}

#[test]
fn pairs_draws_each_held_out_drawing_from_its_labels_and_compares_the_other_style() {
    use sundae::data::{Split, images::psnr, load};
    let temp = tempfile::tempdir().unwrap();
    let codes = one_held_out_pair();
    let model = labelled_generator(temp.path(), codes);
    let styles = temp.path().join("styles");
    let source = format!("iconify:{}", styles.display());
    let sheet = temp.path().join("pairs.png");
    let line = ok(&[
        "pairs",
        "--model",
        s(&model),
        "--data",
        &source,
        "--steps",
        "3",
        "--json",
        "--out",
        s(&sheet),
    ]);
    let report: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
    assert_eq!(report["pairs"], 1, "{report}");
    assert_eq!(report["unpaired"], 0, "{report}");
    // The one pair: alpha's drawing of the held-out emoji, against beta's drawing of it, computed
    // here from the data set itself at the model's 16 pixels.
    let all = load(&source, 16, Split::All).unwrap().samples;
    let drawing = |style: &str| {
        all.iter()
            .find(|d| d.name == format!("{style}/{}", codes[0]))
            .unwrap()
    };
    let other = psnr(&drawing("beta").pixels, &drawing("alpha").pixels);
    let reported = report["median_best_other_db"].as_f64().unwrap();
    assert!((reported - other).abs() < 1e-9, "{reported} vs {other}");
    assert_eq!(
        report["median_mean_other_db"],
        report["median_best_other_db"]
    );
    assert!(report["median_generated_db"].as_f64().unwrap().is_finite());
    let share = report["beats_best_share"].as_f64().unwrap();
    assert!(share == 0.0 || share == 1.0, "{report}");
    // The sheet: one row of the true drawing, the generated one and four slots for other styles.
    let image = image::open(&sheet).unwrap();
    assert_eq!((image.width(), image.height()), (6 * 18 - 2, 16));

    // A model without name and style labels, a --label flag and an image folder: one line each.
    let plain_dir = temp.path().join("plain");
    std::fs::create_dir(&plain_dir).unwrap();
    let plain = common::generator(&plain_dir);
    let without = fails(&["pairs", "--model", s(&plain), "--data", &source]);
    assert!(
        without.contains("has no 'name' and 'style' label sets"),
        "{without}"
    );
    let labelled = fails(&[
        "pairs",
        "--model",
        s(&model),
        "--data",
        &source,
        "--label",
        "style=beta",
    ]);
    assert!(labelled.contains("leave out --label"), "{labelled}");
    let random = fails(&[
        "pairs",
        "--model",
        s(&model),
        "--data",
        &source,
        "--random-label",
        "name",
    ]);
    assert!(random.contains("--random-label"), "{random}");
    let folder = fails(&["pairs", "--model", s(&model), "--data", s(&styles)]);
    assert!(folder.contains("has no held-out split"), "{folder}");
}

#[test]
fn dropped_labels_are_the_null_value_at_the_configured_rates() {
    let rows = 20_000;
    let nulls = [4i64, 9];
    let mut labels: Vec<i64> = (0..rows)
        .flat_map(|i| [i as i64 % 4, i as i64 % 9])
        .collect();
    drop_labels(&mut labels, &nulls, 0.2, 0.1, &mut SplitMix::new(7));
    let both = labels.chunks(2).filter(|r| r == &nulls).count() as f64 / rows as f64;
    let first = labels.chunks(2).filter(|r| r[0] == 4).count() as f64 / rows as f64;
    // All dropped together 10 % of the time, plus both dropped on their own 0.9 x 0.2 x 0.2.
    assert!((both - (0.1 + 0.9 * 0.04)).abs() < 0.01, "{both}");
    // One set dropped: 0.1 + 0.9 x 0.2.
    assert!((first - 0.28).abs() < 0.012, "{first}");
    // A kept label is untouched.
    let kept_ok = labels
        .chunks(2)
        .enumerate()
        .all(|(i, r)| r[0] == 4 || r[0] == i as i64 % 4);
    assert!(kept_ok);
    // Seeded: the same draws again.
    let mut again: Vec<i64> = (0..rows)
        .flat_map(|i| [i as i64 % 4, i as i64 % 9])
        .collect();
    drop_labels(&mut again, &nulls, 0.2, 0.1, &mut SplitMix::new(7));
    assert_eq!(labels, again);
}

/// Logits that read the labels: position p's logit for code c is 10 x label[0] + label[1] + c + p.
struct LabelReader;

impl Denoiser for LabelReader {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let b = tokens.dims()[0];
        let labels = Tensor::from_data(TensorData::new(vec![0i64; 2 * b], [b, 2]), &device::cpu());
        self.logits_conditioned(
            tokens,
            &Conditions {
                fill: None,
                labels: Some(labels),
            },
        )
    }

    fn logits_conditioned(&self, tokens: Tensor<3, Int>, conditions: &Conditions) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        let labels: Vec<i64> = conditions
            .labels
            .clone()
            .unwrap()
            .into_data()
            .iter::<i64>()
            .collect();
        let values: Vec<f32> = (0..b)
            .flat_map(|i| {
                let base = (10 * labels[2 * i] + labels[2 * i + 1]) as f32;
                (0..h * w).flat_map(move |p| (0..3).map(move |c| base + c as f32 + p as f32))
            })
            .collect();
        Tensor::from_data(TensorData::new(values, [b, h * w, 3]), &device::cpu())
    }
}

#[test]
fn guided_logits_equal_cond_plus_w_times_cond_minus_uncond() {
    let device = device::cpu();
    let input = Tensor::<3, Int>::from_data(TensorData::new(vec![0i64; 2 * 4], [2, 2, 2]), &device);
    let settings = |guidance| SampleSettings {
        labels: vec![3, 5],
        null_labels: vec![7, 8],
        guidance,
        ..SampleSettings::default()
    };
    // By hand: cond = 35 + c + p, uncond = 78 + c + p, so cond + 2 (cond - uncond) = 35 - 86 + c + p.
    let guided: Vec<f32> =
        guided_logits(&LabelReader, input.clone(), None, &settings(2.0), &[0, 1])
            .into_data()
            .iter::<f32>()
            .collect();
    for (i, value) in guided.iter().enumerate() {
        let (p, c) = ((i / 3) % 4, i % 3);
        assert_eq!(
            *value,
            (35 - 86 + c as i64 + p as i64) as f32,
            "position {p} code {c}"
        );
    }
    // W = 0 is the conditional model alone.
    let plain: Vec<f32> = guided_logits(&LabelReader, input, None, &settings(0.0), &[0, 1])
        .into_data()
        .iter::<f32>()
        .collect();
    assert!(
        plain
            .iter()
            .enumerate()
            .all(|(i, &v)| v == (35 + (i / 3) % 4 + i % 3) as f32)
    );
}

#[test]
fn random_label_sets_draw_each_sample_its_own_value_and_keep_the_fixed_ones() {
    // Sets of 7 and 8 values (null 7 and 8): the first fixed at 3, the second drawn per sample.
    let settings = SampleSettings {
        labels: vec![3, 8],
        random_sets: vec![1],
        null_labels: vec![7, 8],
        seed: 9,
        ..SampleSettings::default()
    };
    let rows: Vec<Vec<i64>> = (0..200).map(|i| settings.sample_labels(i)).collect();
    assert!(rows.iter().all(|r| r[0] == 3), "the fixed set stays");
    let mut seen = [0usize; 8];
    for row in &rows {
        assert!(
            (0..8).contains(&row[1]),
            "a real value, never the null: {row:?}"
        );
        seen[row[1] as usize] += 1;
    }
    // Uniform: 200 draws over 8 values, 25 expected each; every value comes up, none dominates.
    assert!(seen.iter().all(|&c| (8..=50).contains(&c)), "{seen:?}");
    assert_eq!(rows[17], settings.sample_labels(17), "keyed, repeatable");
    let reseeded = SampleSettings {
        seed: 10,
        ..settings.clone()
    };
    assert_ne!(
        rows,
        (0..200)
            .map(|i| reseeded.sample_labels(i))
            .collect::<Vec<_>>()
    );
    // With no fixed label the other sets are null.
    let only_random = SampleSettings {
        labels: Vec::new(),
        ..settings.clone()
    };
    assert_eq!(only_random.sample_labels(5), vec![7, rows[5][1]]);

    // Each input row is denoised under its own sample's labels (LabelReader's logits spell them),
    // also when the rows are a subset of the batch (samples that froze drop out).
    let device = device::cpu();
    let input = Tensor::<3, Int>::from_data(TensorData::new(vec![0i64; 3 * 4], [3, 2, 2]), &device);
    let samples = [2, 5, 11];
    for guidance in [0.0, 2.0] {
        let settings = SampleSettings {
            guidance,
            ..settings.clone()
        };
        let logits: Vec<f32> =
            guided_logits(&LabelReader, input.clone(), None, &settings, &samples)
                .into_data()
                .iter::<f32>()
                .collect();
        for (slot, &sample) in samples.iter().enumerate() {
            let row = settings.sample_labels(sample);
            let cond = (10 * row[0] + row[1]) as f32;
            // uncond = 78; cond + W (cond - uncond) at position 0, code 0.
            let expected = cond + guidance as f32 * (cond - 78.0);
            assert_eq!(
                logits[slot * 12],
                expected,
                "sample {sample} under W = {guidance}"
            );
        }
    }
}

#[test]
fn a_labelled_prior_guides_in_one_shared_batch_as_two_separate_passes_would() {
    let device = device::cpu();
    let config = PriorConfig {
        labels: vec![
            LabelSetSize {
                name: "style".into(),
                values: 3,
            },
            LabelSetSize {
                name: "name".into(),
                values: 5,
            },
        ],
        ..PriorConfig::tiny()
    };
    let prior = Prior::new(&config, &device);
    let tokens: Vec<i64> = (0..2 * 64).map(|i| (i * 7 % 16) as i64).collect();
    let input = Tensor::<3, Int>::from_data(TensorData::new(tokens, [2, 8, 8]), &device);
    let labels =
        |values: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(values, [2, 2]), &device);
    let pass = |l: Vec<i64>| -> Vec<f32> {
        prior
            .forward_conditioned(
                input.clone(),
                None,
                &Conditions {
                    fill: None,
                    labels: Some(labels(l)),
                },
            )
            .into_data()
            .iter::<f32>()
            .collect()
    };
    let cond = pass(vec![1, 4, 1, 4]);
    let uncond = pass(vec![3, 5, 3, 5]);
    let settings = SampleSettings {
        labels: vec![1, 4],
        null_labels: vec![3, 5],
        guidance: 1.5,
        ..SampleSettings::default()
    };
    let guided: Vec<f32> = guided_logits(&prior, input.clone(), None, &settings, &[0, 1])
        .into_data()
        .iter::<f32>()
        .collect();
    let expected: Vec<f32> = cond
        .iter()
        .zip(&uncond)
        .map(|(c, u)| c + 1.5 * (c - u))
        .collect();
    assert!(common::max_abs_diff(&guided, &expected) < 1e-4);
    // Without labels a labelled prior sees every set's null value.
    let none: Vec<f32> = prior
        .forward(input, None)
        .into_data()
        .iter::<f32>()
        .collect();
    assert!(common::max_abs_diff(&none, &uncond) < 1e-6);
    assert!(
        common::max_abs_diff(&cond, &uncond) > 1e-3,
        "labels change the logits"
    );
}
