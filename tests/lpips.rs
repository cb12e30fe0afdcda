//! LPIPS against taming's own LPIPS class (tests/fixtures/make_lpips_fixture.py), with weights both
//! sides generate from the same SplitMix64 formula.

mod common;

use burn::tensor::{Tensor, TensorData};
use common::read_f32;
use std::path::Path;
use sundae::device;
use sundae::train::SplitMix;
use sundae::vqgan::lpips::Lpips;

const CONVS: [(usize, usize, usize); 13] = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (17, 256, 512),
    (19, 512, 512),
    (21, 512, 512),
    (24, 512, 512),
    (26, 512, 512),
    (28, 512, 512),
];
const HEADS: [usize; 5] = [64, 128, 256, 512, 512];

fn symmetric(seed: u64, count: usize, bound: f64) -> Vec<f32> {
    let mut rng = SplitMix::new(seed);
    (0..count)
        .map(|_| (rng.next_f32() * 2.0 - 1.0) * bound as f32)
        .collect()
}

/// The fixture's weights, written as a safetensors file with torchvision and LPIPS names.
fn lpips_weights(path: &Path) {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (i, &(index, cin, cout)) in CONVS.iter().enumerate() {
        let fan_in = cin * 9;
        let i = i as u64;
        tensors.push((
            format!("features.{index}.weight"),
            vec![cout, cin, 3, 3],
            symmetric(1000 + 2 * i, cout * fan_in, (6.0 / fan_in as f64).sqrt()),
        ));
        tensors.push((
            format!("features.{index}.bias"),
            vec![cout],
            symmetric(1001 + 2 * i, cout, 0.01),
        ));
    }
    for (k, &c) in HEADS.iter().enumerate() {
        let mut rng = SplitMix::new(2000 + k as u64);
        tensors.push((
            format!("lin{k}.model.1.weight"),
            vec![1, c, 1, 1],
            (0..c).map(|_| rng.next_f32() * 0.1).collect(),
        ));
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn lpips_matches_tamings_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("vgg16-lpips.safetensors");
    lpips_weights(&weights);
    let device = device::cpu();
    let lpips = Lpips::load(&weights, &device).unwrap();
    let (inputs, shape) = read_f32("lpips_inputs.npy");
    assert_eq!(shape, vec![2, 2, 3, 32, 32]);
    let half = inputs.len() / 2;
    let image = |values: &[f32]| {
        Tensor::<4>::from_data(TensorData::new(values.to_vec(), [2, 3, 32, 32]), &device)
    };
    let ours: Vec<f32> = lpips
        .forward(image(&inputs[..half]), image(&inputs[half..]))
        .into_data()
        .iter::<f32>()
        .collect();
    let (expected, _) = read_f32("lpips_expected.npy");
    for (a, b) in ours.iter().zip(&expected) {
        assert!(
            (a - b).abs() < 1e-4 * b.abs().max(1e-3),
            "ours {a} vs taming {b}"
        );
    }
    // Identical images are at distance zero.
    let same: Vec<f32> = lpips
        .forward(image(&inputs[..half]), image(&inputs[..half]))
        .into_data()
        .iter::<f32>()
        .collect();
    assert!(same.iter().all(|d| d.abs() < 1e-7));
}

#[test]
fn a_missing_weights_file_is_named() {
    let err = Lpips::load(Path::new("/nonexistent/vgg.safetensors"), &device::cpu())
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/vgg.safetensors"), "{err}");
}

#[test]
fn the_perceptual_term_enters_the_vqgan_loss() {
    use sundae::train::fit::Checkpointed;
    use sundae::vqgan::train::{VqGanTrainConfig, VqGanTrainer};
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("vgg16-lpips.safetensors");
    lpips_weights(&weights);
    let config = VqGanTrainConfig::read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/vqgan-tiny.toml"),
    )
    .unwrap();
    let device = device::cpu().autodiff();
    let plain = VqGanTrainer::new(&config, &device);
    plain.save(dir.path()).unwrap();
    let mut perceptual = VqGanTrainer::new(&config, &device);
    perceptual.load(dir.path()).unwrap();
    perceptual.settings.perceptual_weight = 0.5;
    let lpips = Lpips::load(&weights, &device).unwrap();
    let x = Tensor::<4>::random(
        [2, 3, 16, 16],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let model = &plain.model;
    let xrec = model.decode_latents(model.quantize.lookup(model.encode(x.clone())));
    let distance = lpips.forward(x.clone(), xrec).mean().into_scalar::<f64>();
    perceptual.lpips = Some(lpips);
    let mut plain = plain;
    let without = plain.step(x.clone()).unwrap().reconstruction;
    let with = perceptual.step(x).unwrap().reconstruction;
    assert!(distance > 0.0);
    assert!(
        (with - without - 0.5 * distance).abs() < 1e-4 * distance.max(1e-3),
        "{with} - {without} vs {distance}"
    );
}
