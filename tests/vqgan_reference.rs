//! The VQ-GAN against taming-transformers' own outputs (fixtures made by tests/fixtures/make_vqgan_fixture.py).

mod common;

use burn::tensor::{Tensor, TensorData};
use common::{fixture, max_abs_diff, read_f32, read_i64};
use sundae::device;
use sundae::tokens::TokenGrids;
use sundae::vqgan::batch::tokens_to_tensor;
use sundae::vqgan::import::{import_taming, read_taming_yaml};
use sundae::vqgan::{VqGan, VqGanConfig};

fn imported(yaml: &str, ckpt: &str) -> (VqGanConfig, VqGan) {
    import_taming(&fixture(yaml), &fixture(ckpt), &device::cpu()).expect("import")
}

fn inputs() -> Tensor<4> {
    let (values, shape) = read_f32("tiny_inputs.npy");
    Tensor::from_data(TensorData::new(values, shape), &device::cpu())
}

#[test]
fn yaml_configs_of_both_layouts_are_read() {
    let (plain, prefixed) = read_taming_yaml(&fixture("tiny_vqmodel.yaml")).unwrap();
    assert!(!prefixed);
    assert_eq!(plain, VqGanConfig::tiny());
    let (n2n, prefixed) = read_taming_yaml(&fixture("tiny_net2net.yaml")).unwrap();
    assert!(prefixed);
    assert_eq!(n2n, plain);
}

#[test]
fn encoder_matches_taming() {
    let (_, model) = imported("tiny_vqmodel.yaml", "tiny_vqmodel.ckpt");
    let latents: Vec<f32> = model
        .encode_latents(inputs())
        .into_data()
        .iter::<f32>()
        .collect();
    let (expected, shape) = read_f32("tiny_latents.npy");
    assert_eq!(shape, vec![2, 8, 8, 8]);
    let diff = max_abs_diff(&latents, &expected);
    assert!(diff < 1e-4, "encoder differs from taming by {diff}");
}

#[test]
fn quantizer_picks_tamings_codes() {
    let (_, model) = imported("tiny_vqmodel.yaml", "tiny_vqmodel.ckpt");
    let indices: Vec<i64> = model.encode(inputs()).into_data().iter::<i64>().collect();
    let (expected, shape) = read_i64("tiny_indices.npy");
    assert_eq!(shape, vec![2, 8, 8]);
    assert_eq!(indices, expected);
}

#[test]
fn decoder_matches_taming() {
    let (_, model) = imported("tiny_vqmodel.yaml", "tiny_vqmodel.ckpt");
    let (indices, shape) = read_i64("tiny_indices.npy");
    let grids = TokenGrids {
        values: indices,
        shape: [shape[0], shape[1], shape[2]],
    };
    let tokens = tokens_to_tensor(&grids, &device::cpu());
    let decoded: Vec<f32> = model
        .decode_latents(model.quantize.lookup(tokens.clone()))
        .into_data()
        .iter::<f32>()
        .collect();
    let (expected, shape) = read_f32("tiny_decoded.npy");
    assert_eq!(shape, vec![2, 3, 16, 16]);
    let diff = max_abs_diff(&decoded, &expected);
    assert!(diff < 1e-4, "decoder differs from taming by {diff}");
    // `decode` is the same, clamped to the image range.
    let clamped: Vec<f32> = model.decode(tokens).into_data().iter::<f32>().collect();
    let expected_clamped: Vec<f32> = expected.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
    assert!(max_abs_diff(&clamped, &expected_clamped) < 1e-4);
}

#[test]
fn net2net_layout_imports_the_same_weights() {
    let (_, plain) = imported("tiny_vqmodel.yaml", "tiny_vqmodel.ckpt");
    let (_, n2n) = imported("tiny_net2net.yaml", "tiny_net2net.ckpt");
    let a: Vec<f32> = plain
        .encode_latents(inputs())
        .into_data()
        .iter::<f32>()
        .collect();
    let b: Vec<f32> = n2n
        .encode_latents(inputs())
        .into_data()
        .iter::<f32>()
        .collect();
    assert_eq!(a, b);
    let (expected, _) = read_f32("tiny_latents.npy");
    assert!(max_abs_diff(&b, &expected) < 1e-4);
}
