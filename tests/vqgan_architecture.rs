//! The VQ-GAN's structure: tensor names and shapes as taming lays them out, and output shapes.

mod common;

use burn::tensor::{Distribution, Tensor};
use common::fixture;
use std::collections::BTreeMap;
use sundae::bundle::tensor_names;
use sundae::device;
use sundae::vqgan::{VqGan, VqGanConfig};

fn parse_key_list(text: &str) -> BTreeMap<String, Vec<usize>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, shape) = line.split_once(' ').expect("name and shape");
            let dims = shape
                .trim_matches(|c| c == '[' || c == ']' || c == ' ')
                .split(',')
                .map(|d| d.trim().parse().unwrap())
                .collect();
            (name.to_string(), dims)
        })
        .collect()
}

#[test]
fn ffhq1024_has_exactly_the_published_keys_and_shapes() {
    let expected =
        parse_key_list(&std::fs::read_to_string(fixture("ffhq1024_vqgan_keys.txt")).unwrap());
    assert_eq!(expected.len(), 271);
    let model = VqGan::new(&VqGanConfig::ffhq1024(), &device::cpu());
    let ours: BTreeMap<String, Vec<usize>> = tensor_names(&model).into_iter().collect();
    let missing: Vec<_> = expected.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (name, shape) in &expected {
        assert_eq!(&ours[name], shape, "shape of {name}");
    }
}

#[test]
fn taming_f16_has_the_published_parameter_count() {
    // SPEC.md 2.2: the taming f16 model has 72.1M parameters.
    let model = VqGan::new(&VqGanConfig::taming_f16(), &device::cpu());
    let params = burn::module::Module::num_params(&model) as f64 / 1e6;
    assert!((params - 72.1).abs() < 0.1, "{params}M parameters");
    let names = tensor_names(&model);
    assert!(
        names
            .iter()
            .any(|(n, _)| n == "encoder.down.4.attn.1.proj_out.weight")
    );
    assert!(
        names
            .iter()
            .any(|(n, _)| n == "decoder.up.4.attn.2.q.weight")
    );
    assert!(
        names
            .iter()
            .all(|(n, _)| !n.contains("gamma") && !n.contains("beta"))
    );
}

#[test]
fn encode_and_decode_shapes_follow_the_downsampling_factor() {
    let config = VqGanConfig {
        resolution: 32,
        ch_mult: vec![1, 1, 2],
        ..VqGanConfig::tiny()
    };
    assert_eq!(config.downsampling(), 4);
    let device = device::cpu();
    let model = VqGan::new(&config, &device);
    let images = Tensor::<4>::random([3, 3, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
    let tokens = model.encode(images);
    assert_eq!(tokens.dims(), [3, 8, 8]);
    let decoded = model.decode(tokens);
    assert_eq!(decoded.dims(), [3, 3, 32, 32]);
    let values: Vec<f32> = decoded.into_data().iter::<f32>().collect();
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn invalid_configs_are_rejected_with_a_reason() {
    let odd = VqGanConfig {
        ch: 48,
        ..VqGanConfig::tiny()
    };
    assert!(
        odd.validate()
            .unwrap_err()
            .to_string()
            .contains("GroupNorm")
    );
    let zero_groups = VqGanConfig {
        norm_groups: 0,
        ..VqGanConfig::tiny()
    };
    assert!(zero_groups.validate().is_err());
    let fewer_groups = VqGanConfig {
        ch: 48,
        norm_groups: 16,
        ..VqGanConfig::tiny()
    };
    assert!(fewer_groups.validate().is_ok());
    let model = VqGan::new(&fewer_groups, &device::cpu());
    assert_eq!(model.encoder.norm_out.num_groups, 16);
    let indivisible = VqGanConfig {
        resolution: 17,
        ..VqGanConfig::tiny()
    };
    assert!(
        indivisible
            .validate()
            .unwrap_err()
            .to_string()
            .contains("divisible")
    );
    assert!(VqGanConfig::ffhq1024().validate().is_ok());
    assert_eq!(VqGanConfig::ffhq1024().downsampling(), 32);
    assert_eq!(VqGanConfig::ffhq1024().latent_side(), 32);
}
