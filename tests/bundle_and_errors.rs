//! Bundles round-trip exactly; broken files and wrong shapes give clear errors naming the tensor.

mod common;

use common::fixture;
use std::path::Path;
use sundae::bundle::{VQGAN_CONFIG, VQGAN_WEIGHTS, load_vqgan, save_vqgan};
use sundae::device;
use sundae::vqgan::import::import_taming;
use sundae::vqgan::{VqGan, VqGanConfig};

fn tiny_bundle(dir: &Path) -> VqGan {
    let (config, model) = import_taming(
        &fixture("tiny_vqmodel.yaml"),
        &fixture("tiny_vqmodel.ckpt"),
        &device::cpu(),
    )
    .unwrap();
    save_vqgan(dir, &config, &model, sundae::bundle::Storage::F32).unwrap();
    model
}

fn error_of<T>(result: anyhow::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn bundle_round_trip_keeps_every_weight() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_bundle(dir.path());
    let (config, loaded) = load_vqgan(dir.path(), &device::cpu()).unwrap();
    assert_eq!(config, VqGanConfig::tiny());
    let before = sundae::bundle::tensor_names(&model);
    assert_eq!(before, sundae::bundle::tensor_names(&loaded));
    let a = model.quantize.embedding.weight.val().into_data();
    let b = loaded.quantize.embedding.weight.val().into_data();
    assert_eq!(a, b);
    let a = model
        .decoder
        .norm_out
        .gamma
        .as_ref()
        .unwrap()
        .val()
        .into_data();
    let b = loaded
        .decoder
        .norm_out
        .gamma
        .as_ref()
        .unwrap()
        .val()
        .into_data();
    assert_eq!(a, b);
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_config_that_does_not_match_the_weights_names_the_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bundle(dir.path());
    let wrong = VqGanConfig {
        n_embed: 32,
        ..VqGanConfig::tiny()
    };
    std::fs::write(
        dir.path().join(VQGAN_CONFIG),
        toml::to_string(&wrong).unwrap(),
    )
    .unwrap();
    let message = error_of(load_vqgan(dir.path(), &device::cpu()));
    assert!(message.contains("quantize.embedding.weight"), "{message}");
    assert!(
        message.contains("[16, 8]") && message.contains("[32, 8]"),
        "{message}"
    );
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bundle(dir.path());
    let path = dir.path().join(VQGAN_WEIGHTS);
    let bytes = std::fs::read(&path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "decoder.conv_out.bias")
        .collect();
    let rewritten = safetensors::serialize(kept, None).unwrap();
    std::fs::write(&path, rewritten).unwrap();
    let message = error_of(load_vqgan(dir.path(), &device::cpu()));
    assert!(
        message.contains("decoder.conv_out.bias") && message.contains("missing"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.ckpt");
    std::fs::write(&junk, b"this is not a checkpoint").unwrap();
    let message = error_of(import_taming(
        &fixture("tiny_vqmodel.yaml"),
        &junk,
        &device::cpu(),
    ));
    assert!(message.contains("junk.ckpt"), "{message}");
    let message = error_of(import_taming(
        &fixture("tiny_vqmodel.yaml"),
        &dir.path().join("absent.ckpt"),
        &device::cpu(),
    ));
    assert!(message.contains("does not exist"), "{message}");
}

#[test]
fn a_checkpoint_of_another_architecture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("wider.yaml");
    let text = std::fs::read_to_string(fixture("tiny_vqmodel.yaml")).unwrap();
    std::fs::write(&yaml, text.replace("ch: 32", "ch: 64")).unwrap();
    let message = error_of(import_taming(
        &yaml,
        &fixture("tiny_vqmodel.ckpt"),
        &device::cpu(),
    ));
    assert!(
        message.contains("encoder.conv_in.weight") && message.contains("[32, 3, 3, 3]"),
        "{message}"
    );
}

#[test]
fn a_corrupt_weights_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    tiny_bundle(dir.path());
    std::fs::write(dir.path().join(VQGAN_WEIGHTS), b"garbage").unwrap();
    let message = error_of(load_vqgan(dir.path(), &device::cpu()));
    assert!(message.contains(VQGAN_WEIGHTS), "{message}");
}

#[test]
fn half_precision_bundles_are_half_the_size_and_load_as_f32() {
    use burn::tensor::{Int, Tensor, TensorData};
    use sundae::bundle::{PRIOR_WEIGHTS, Storage, load_prior, save_prior};
    use sundae::hourglass::{Prior, PriorConfig};
    let config = PriorConfig::tiny();
    let model = Prior::new(&config, &device::cpu());
    let full = tempfile::tempdir().unwrap();
    let half = tempfile::tempdir().unwrap();
    save_prior(full.path(), &config, &model, Storage::F32).unwrap();
    save_prior(half.path(), &config, &model, Storage::F16).unwrap();
    let size = |dir: &Path| std::fs::metadata(dir.join(PRIOR_WEIGHTS)).unwrap().len() as f64;
    let ratio = size(half.path()) / size(full.path());
    assert!(
        (0.45..0.6).contains(&ratio),
        "f16 file is {ratio} of the f32 one"
    );
    let bytes = std::fs::read(half.path().join(PRIOR_WEIGHTS)).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(
        tensors
            .tensors()
            .iter()
            .all(|(_, v)| v.dtype() == safetensors::Dtype::F16)
    );

    let (_, loaded) = load_prior(half.path(), &device::cpu()).unwrap();
    let grid = Tensor::<3, Int>::from_data(
        TensorData::new((0..64).map(|i| i % 16).collect::<Vec<i64>>(), [1, 8, 8]),
        &device::cpu(),
    );
    let a: Vec<f32> = model
        .forward(grid.clone(), None)
        .into_data()
        .iter::<f32>()
        .collect();
    let b = loaded.forward(grid, None);
    assert_eq!(b.dtype(), burn::tensor::DType::F32);
    let b: Vec<f32> = b.into_data().iter::<f32>().collect();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff > 0.0 && diff < 0.05,
        "f16 rounding changed logits by {diff}"
    );
}
