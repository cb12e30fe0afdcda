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
use sundae::score::stats::{Features, Gaussian, frechet_distance, precision_recall};

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
    assert!(format!("{error:#}").contains("not Inception-v3"), "{error:#}");
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
            assert!((precision - want_p).abs() <= 1e-6 * want_p, "{case} k={k}: {precision} vs {want_p}");
            assert!((recall - want_r).abs() <= 1e-6 * want_r, "{case} k={k}: {recall} vs {want_r}");
        }
    }
}

#[test]
fn sets_too_small_for_the_features_or_for_k_are_refused_in_one_line() {
    let a = features("score_small_a.npy"); // 60 vectors of 8 values
    let few = Features::new(a.values[..8 * 8].to_vec(), 8);
    let error = Gaussian::of(&few).err().unwrap().to_string();
    assert!(error.contains("8 images is too small for 8-dimensional"), "{error}");
    let error = precision_recall(&few, &a, 8).err().unwrap().to_string();
    assert!(error.contains("need more than k = 8"), "{error}");
}
