//! `sundae score`: the Inception-v3 against pytorch-fid's own network on formula weights
//! (tests/fixtures/make_inception_fixture.py), and FD, precision and recall against independent NumPy
//! computations (tests/fixtures/make_score_fixture.py).

mod common;

use common::{fixture, max_abs_diff, read_f32};
use ndarray::Array3;
use ndarray_npy::ReadNpyExt;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;
use sundae::device;
use sundae::score::inception::FeatureNet;
use sundae::score::stats::{Features, Gaussian, check_size, frechet_distance, precision_recall};

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

/// The fixture script's formula for element `i` of tensor `index` named `name` of `shape`.
fn formula(index: u64, name: &str, shape: &[usize]) -> Vec<f32> {
    let count: usize = shape.iter().product();
    (0..count as u64)
        .map(|i| {
            let u = (splitmix((index << 32) | i) >> 11) as f64 / (1u64 << 53) as f64;
            let v = if name.ends_with("conv.weight") {
                let fan_in: usize = shape[1..].iter().product();
                (2.0 * u - 1.0) * 3f64.sqrt() * (2.0 / fan_in as f64).sqrt()
            } else if name.ends_with("bn.weight") {
                0.8 + 0.4 * u
            } else if name.ends_with("bn.bias") || name.ends_with("running_mean") {
                0.2 * (2.0 * u - 1.0)
            } else if name.ends_with("running_var") {
                0.5 + u
            } else {
                0.01 * (2.0 * u - 1.0)
            };
            v as f32
        })
        .collect()
}

/// pytorch-fid's state dict (names and shapes from the fixture) filled by the formula, as safetensors.
fn write_weights(path: &Path, metadata: Option<HashMap<String, String>>) {
    let keys = std::fs::read_to_string(fixture("inception_keys.txt")).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (index, line) in keys.lines().enumerate() {
        let parts: Vec<&str> = line.split(' ').collect();
        let shape: Vec<usize> = if parts[1].is_empty() {
            vec![]
        } else {
            parts[1].split(',').map(|d| d.parse().unwrap()).collect()
        };
        if parts[2] != "float32" {
            continue; // num_batches_tracked
        }
        let bytes = formula(index as u64, parts[0], &shape)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        tensors.push((parts[0].to_string(), shape, bytes));
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, metadata, path).unwrap();
}

fn fixture_images() -> Vec<image::RgbImage> {
    (0..2)
        .map(|i| {
            let file = std::fs::File::open(fixture(&format!("inception_input_{i}.npy"))).unwrap();
            let array = Array3::<u8>::read_npy(file).unwrap();
            let (h, w, _) = array.dim();
            image::RgbImage::from_raw(w as u32, h as u32, array.iter().copied().collect()).unwrap()
        })
        .collect()
}

#[test]
fn inception_features_equal_pytorch_fid_at_every_width() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("fid.safetensors");
    write_weights(&weights, None);
    let device = device::cpu();
    let net = FeatureNet::load(&weights, &device).unwrap();
    let images = fixture_images();
    for dims in [64, 192, 768, 2048] {
        let ours = net.features(&images, dims, &device);
        let (expected, shape) = read_f32(&format!("inception_features_{dims}.npy"));
        assert_eq!(shape, [2, dims]);
        let diff = max_abs_diff(&ours, &expected);
        eprintln!("{dims} dims: max |diff| against pytorch-fid {diff:.2e}");
        assert!(diff < 1e-4, "{dims} dims: max |diff| {diff}");
    }
}

#[test]
fn metadata_selects_keras_conventions_unit_inputs_and_an_average_last_pool() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("keras.safetensors");
    let metadata = HashMap::from([
        ("sundae.input".to_string(), "unit".to_string()),
        ("sundae.last_pool".to_string(), "avg".to_string()),
        ("sundae.name".to_string(), "test-net".to_string()),
    ]);
    write_weights(&weights, Some(metadata));
    let device = device::cpu();
    let net = FeatureNet::load(&weights, &device).unwrap();
    assert_eq!(net.name, "test-net");
    let ours = net.features(&fixture_images(), 2048, &device);
    let (expected, _) = read_f32("inception_features_2048_keras.npy");
    let diff = max_abs_diff(&ours, &expected);
    assert!(diff < 1e-4, "max |diff| {diff}");
    // And the FID conventions give other features for the same weights.
    let (fid, _) = read_f32("inception_features_2048.npy");
    assert!(max_abs_diff(&ours, &fid) > 1e-2);
}

#[test]
fn weights_of_another_network_are_refused_naming_a_tensor() {
    let device = device::cpu();
    let error = FeatureNet::load(&fixture("tiny-bundle/vqgan.safetensors"), &device)
        .err()
        .unwrap();
    let line = format!("{error:#}");
    assert!(line.contains("not Inception-v3 weights"), "{line}");
    assert!(line.contains("is missing"), "{line}");
    let error = FeatureNet::load(&fixture("tiny_vqmodel.ckpt"), &device)
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").contains("not Inception-v3"),
        "{error:#}"
    );
    let error = FeatureNet::load(Path::new("/nonexistent/pt_inception.pth"), &device)
        .err()
        .unwrap();
    assert!(error.to_string().contains("/nonexistent/pt_inception.pth"));
}

fn features(name: &str) -> Features {
    let (values, shape) = read_f32(name);
    Features::new(values, shape[1])
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("score_expected.json")).unwrap()).unwrap()
}

#[test]
fn frechet_distance_equals_pytorch_fid_on_fixed_vectors() {
    let expected = expected();
    for case in ["small", "wide"] {
        let a = Gaussian::of(&features(&format!("score_{case}_a.npy"))).unwrap();
        let b = Gaussian::of(&features(&format!("score_{case}_b.npy"))).unwrap();
        let fd = frechet_distance(&a, &b).unwrap();
        let want = expected[case]["fd"].as_f64().unwrap();
        assert!(((fd - want) / want).abs() < 1e-6, "{case}: {fd} vs {want}");
        // The distance is symmetric and zero from a set to itself.
        let back = frechet_distance(&b, &a).unwrap();
        assert!(((back - fd) / fd).abs() < 1e-9);
        assert!(frechet_distance(&a, &a).unwrap().abs() < 1e-6 * want);
    }
}

#[test]
fn precision_and_recall_equal_numpy_for_several_k() {
    let expected = expected();
    for case in ["small", "wide"] {
        let a = features(&format!("score_{case}_a.npy"));
        let b = features(&format!("score_{case}_b.npy"));
        for k in [1, 3, 5] {
            let (precision, recall) = precision_recall(&a, &b, k).unwrap();
            let want_p = expected[case][format!("precision_k{k}")].as_f64().unwrap();
            let want_r = expected[case][format!("recall_k{k}")].as_f64().unwrap();
            assert!(
                (precision - want_p).abs() <= 1e-6 * want_p,
                "{case} k={k}: {precision} vs {want_p}"
            );
            assert!(
                (recall - want_r).abs() <= 1e-6 * want_r,
                "{case} k={k}: {recall} vs {want_r}"
            );
        }
    }
}

#[test]
fn sets_too_small_for_k_are_refused_and_a_singular_covariance_is_said() {
    let a = features("score_small_a.npy"); // 60 vectors of 8 values
    let few = Features::new(a.values[..8 * 8].to_vec(), 8);
    let error = precision_recall(&few, &a, 8).err().unwrap().to_string();
    assert!(error.contains("need more than k = 8"), "{error}");
    let one = Features::new(a.values[..8].to_vec(), 8);
    let error = Gaussian::of(&one).err().unwrap().to_string();
    assert!(error.contains("has no covariance"), "{error}");
    let warning = check_size(8, 8, 3).unwrap().unwrap();
    assert!(warning.contains("singular"), "{warning}");
    assert_eq!(check_size(9, 8, 3).unwrap(), None);
    // A singular covariance still gives a finite, symmetric distance (no NaN from the square roots).
    let b = features("score_small_b.npy");
    let few_b = Features::new(b.values[..5 * 8].to_vec(), 8);
    let fd =
        frechet_distance(&Gaussian::of(&few).unwrap(), &Gaussian::of(&few_b).unwrap()).unwrap();
    let back =
        frechet_distance(&Gaussian::of(&few_b).unwrap(), &Gaussian::of(&few).unwrap()).unwrap();
    assert!(
        fd.is_finite() && fd > 0.0 && ((fd - back) / fd).abs() < 1e-6,
        "{fd} {back}"
    );
}

/// Writes `count` small PNGs of seeded noise (plus a coloured band, so sets differ in content) into `dir`.
fn noise_folder(dir: &Path, count: usize, seed: u64, band: [u8; 3]) {
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    for i in 0..count {
        let image = image::RgbImage::from_fn(12, 12, |x, y| {
            if y < 4 {
                return image::Rgb(band);
            }
            let v = splitmix(seed << 40 | (i as u64) << 16 | (y as u64) << 8 | x as u64);
            image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
        });
        let sub = if i % 2 == 0 {
            dir.to_path_buf()
        } else {
            dir.join("nested")
        };
        image.save(sub.join(format!("{i:03}.png"))).unwrap();
    }
}

/// Runs `sundae score ... --json` with formula weights and a cache inside `home`; returns the figures.
fn score_json(home: &Path, args: &[&str]) -> serde_json::Value {
    let weights = home.join("net.safetensors");
    if !weights.exists() {
        write_weights(&weights, None);
    }
    let mut all = vec!["score", "--features", common::s(&weights), "--json"];
    all.extend_from_slice(args);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sundae"))
        .args(&all)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("compare figures of equal image counts"));
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

#[test]
fn folders_score_zero_against_themselves_and_the_features_are_cached() {
    let temp = tempfile::tempdir().unwrap();
    let (a, b) = (temp.path().join("a"), temp.path().join("b"));
    noise_folder(&a, 70, 1, [255, 0, 0]);
    noise_folder(&b, 70, 2, [0, 0, 255]);
    let same = score_json(temp.path(), &[common::s(&a), common::s(&a), "--dims", "64"]);
    assert!(same["fd"].as_f64().unwrap().abs() < 1e-3, "{same}");
    assert_eq!(same["precision"], 1.0);
    assert_eq!(same["recall"], 1.0);
    assert_eq!(same["count_a"], 70);
    assert_eq!(same["standard_fid"], false); // 64 dims are not the FID's
    let cached: Vec<_> = std::fs::read_dir(temp.path().join("cache/sundae/features"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1, "one set, one cache file");
    let apart = score_json(temp.path(), &[common::s(&a), common::s(&b), "--dims", "64"]);
    assert!(apart["fd"].as_f64().unwrap() > 1.0, "{apart}");
    // Again, now from the cache: the same figures.
    let again = score_json(temp.path(), &[common::s(&a), common::s(&b), "--dims", "64"]);
    assert_eq!(apart, again);
    // --max takes an evenly spread subset of the first set; the reference stays whole.
    let fewer = score_json(
        temp.path(),
        &[common::s(&a), common::s(&b), "--dims", "64", "--max", "66"],
    );
    assert_eq!(fewer["count_a"], 66);
    assert_eq!(fewer["count_b"], 70);
}

#[test]
fn a_generator_set_scores_as_the_folder_sample_writes_for_the_same_seed() {
    let temp = tempfile::tempdir().unwrap();
    let model = common::generator(temp.path());
    let drawn = temp.path().join("drawn");
    common::ok(&[
        "sample",
        "--model",
        common::s(&model),
        "-n",
        "70",
        "--seed",
        "5",
        "--steps",
        "4",
        "--out",
        common::s(&temp.path().join("grid.png")),
        "--out-dir",
        common::s(&drawn),
    ]);
    let args = ["emoji:validation", "--dims", "64", "--resolution", "16"];
    let from_folder = score_json(temp.path(), &[&[common::s(&drawn)][..], &args[..]].concat());
    let generated = score_json(
        temp.path(),
        &[
            &[
                common::s(&model),
                "--generate",
                "70",
                "--seed",
                "5",
                "--steps",
                "4",
            ][..],
            &args[..],
        ]
        .concat(),
    );
    assert_eq!(from_folder, generated);
    assert_eq!(generated["count_b"], 177);
}

#[test]
fn bad_score_requests_are_one_line_each() {
    let temp = tempfile::tempdir().unwrap();
    let (a, b) = (temp.path().join("a"), temp.path().join("b"));
    let weights = temp.path().join("net.safetensors");
    noise_folder(&a, 10, 1, [255, 0, 0]);
    noise_folder(&b, 70, 1, [255, 0, 0]);
    write_weights(&weights, None);
    let base = |rest: &[&str]| -> String {
        let mut args = vec!["score"];
        args.extend_from_slice(rest);
        if !rest.contains(&"--features") {
            args.extend(["--features", common::s(&weights)]);
        }
        common::fails(&args)
    };
    let cases: [(&[&str], &str); 6] = [
        (
            &[common::s(&a), "emoji:train", "-k", "10"],
            "need more than k = 10",
        ),
        (
            &[common::s(&b), common::s(&b), "--dims", "64", "-k", "70"],
            "need more than k = 70",
        ),
        (
            &[common::s(&a), "nowhere:train"],
            "neither a folder, a generator bundle",
        ),
        (
            &[common::s(&a), common::s(&a), "--dims", "100"],
            "expected one of 64, 192, 768, 2048",
        ),
        (
            &[common::s(&a), common::s(&a), "--generate", "5"],
            "--generate needs a generator bundle",
        ),
        (
            &[
                common::s(&a),
                common::s(&a),
                "--features",
                "/nonexistent/w.pth",
            ],
            "/nonexistent/w.pth",
        ),
    ];
    for (args, expected) in cases {
        let error = base(args);
        assert!(error.contains(expected), "{args:?}: {error}");
    }
}
