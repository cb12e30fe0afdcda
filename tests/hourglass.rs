//! The 2D hourglass transformer: rotary geometry, block resampling, non-causality, shapes,
//! parameter counts, tensor names and the fill embedding.

mod common;

use burn::module::{Module, Param};
use burn::tensor::{Bool, Distribution, Int, Tensor, TensorData};
use common::max_abs_diff;
use sundae::bundle::{load_prior, prior_tensor_names, save_prior};
use sundae::device;
use sundae::hourglass::model::FILL_SCALE;
use sundae::hourglass::resample::{Projection, from_blocks, to_blocks};
use sundae::hourglass::rotary::Rotary2d;
use sundae::hourglass::{Conditions, Prior, PriorConfig};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// Scores q·k between every pair of positions when every position holds the same q and k.
fn scores(rotary: &Rotary2d, heads: usize, n: usize, dh: usize, head: usize) -> Vec<Vec<f32>> {
    let device = device::cpu();
    let q = Tensor::<1>::random([dh], Distribution::Normal(0.0, 1.0), &device);
    let k = Tensor::<1>::random([dh], Distribution::Normal(0.0, 1.0), &device);
    let spread = |v: Tensor<1>| v.reshape([1, 1, 1, dh]).expand([1, heads, n, dh]);
    let q = rotary.apply(spread(q));
    let k = rotary.apply(spread(k));
    let s = values(q.matmul(k.swap_dims(2, 3)).narrow(1, head, 1));
    s.chunks(n).map(|r| r.to_vec()).collect()
}

#[test]
fn rotary_scores_depend_only_on_the_2d_offset() {
    let (h, w, dh, heads) = (5, 6, 16, 3);
    let rotary = Rotary2d::new(dh, h, w, 5, 6, &device::cpu());
    for head in 0..heads {
        let s = scores(&rotary, heads, h * w, dh, head);
        let at = |r: usize, c: usize| r * w + c;
        for (r1, c1, r2, c2) in [(0, 0, 1, 2), (2, 3, 0, 1), (1, 5, 3, 0), (4, 4, 4, 0)] {
            for (dr, dc) in [(0, 0), (1, 0), (0, 1)] {
                if r1.max(r2) + dr < h && c1.max(c2) + dc < w {
                    let base = s[at(r1, c1)][at(r2, c2)];
                    let moved = s[at(r1 + dr, c1 + dc)][at(r2 + dr, c2 + dc)];
                    assert!(
                        (base - moved).abs() < 1e-4,
                        "head {head}: {base} vs {moved}"
                    );
                }
            }
        }
        // Positions matter in every head: offsets along rows and along columns give other scores.
        let same = s[at(0, 0)][at(0, 0)];
        assert!(
            (same - s[at(0, 0)][at(0, 1)]).abs() > 1e-4,
            "head {head} ignores columns"
        );
        assert!(
            (same - s[at(0, 0)][at(1, 0)]).abs() > 1e-4,
            "head {head} ignores rows"
        );
    }
}

#[test]
fn a_larger_canvas_extends_the_training_coordinates() {
    // The 4x4 top-left corner of an 8x8 canvas has exactly the angles of the 4x4 training grid.
    let dh = 8;
    let trained = Rotary2d::new(dh, 4, 4, 4, 4, &device::cpu());
    let larger = Rotary2d::new(dh, 8, 8, 4, 4, &device::cpu());
    let x = Tensor::<4>::random(
        [1, 1, 64, dh],
        Distribution::Normal(0.0, 1.0),
        &device::cpu(),
    );
    let big = values(larger.apply(x.clone()));
    let corner: Vec<f32> = (0..4)
        .flat_map(|r| big[r * 8 * dh..(r * 8 + 4) * dh].to_vec())
        .collect();
    let x_corner = Tensor::cat((0..4).map(|r| x.clone().narrow(2, r * 8, 4)).collect(), 2);
    let small = values(trained.apply(x_corner));
    for (a, b) in corner.iter().zip(&small) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn blocks_group_exactly_the_s_by_s_block_and_back() {
    let device = device::cpu();
    let (h, w, s) = (4, 6, 2);
    let x = Tensor::<1, Int>::arange(0..(h * w) as i64, &device)
        .float()
        .reshape([1, h * w, 1]);
    let blocks = to_blocks(x.clone(), h, w, s);
    assert_eq!(blocks.dims(), [1, 6, 4, 1]);
    let got = values(blocks.clone());
    // Block (1, 2) is output token 1 * 3 + 2 = 5: rows 2-3, columns 4-5.
    assert_eq!(got[5 * 4..6 * 4], [16.0, 17.0, 22.0, 23.0]);
    assert_eq!(got[0..4], [0.0, 1.0, 6.0, 7.0]);
    assert_eq!(values(from_blocks(blocks, h, w, s)), values(x));
}

#[test]
fn linear_down_orders_channel_slowest_and_up_scatters_into_the_block() {
    let device = device::cpu();
    // Two channels, one 2x2 block: the down projection sees (d, sh, sw) with d slowest.
    let x = Tensor::<3>::from_data(
        TensorData::new(
            vec![0.0f32, 10.0, 1.0, 11.0, 2.0, 12.0, 3.0, 13.0],
            [1, 4, 2],
        ),
        &device,
    );
    let mut identity = Projection::new(8, 8, &device);
    identity.proj.weight = Param::from_tensor(Tensor::eye(8, &device));
    identity.proj.bias = None;
    let flat = values(identity.down(to_blocks(x, 2, 2, 2)));
    assert_eq!(flat, vec![0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]);
    // Up: one channel, weights 1..4 for the four block positions of each valley token.
    let mut up = Projection::new(1, 4, &device);
    up.proj.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 4]),
        &device,
    ));
    up.proj.bias = None;
    let valley = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 10.0], [1, 2, 1]), &device);
    let grid = values(from_blocks(up.up(valley, 4), 2, 4, 2));
    // A 2x4 grid: left block from valley token 0, right block from token 1.
    assert_eq!(grid, vec![1.0, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0]);
}

fn tokens(values: Vec<i64>, h: usize, w: usize) -> Tensor<3, Int> {
    Tensor::from_data(TensorData::new(values, [1, h, w]), &device::cpu())
}

#[test]
fn the_model_is_non_causal() {
    let config = PriorConfig::tiny();
    let model = Prior::new(&config, &device::cpu());
    let base: Vec<i64> = (0..64).map(|i| (i * 7 % 16) as i64).collect();
    let mut changed = base.clone();
    changed[27] = (changed[27] + 5) % 16;
    let a = values(model.forward(tokens(base, 8, 8), None));
    let b = values(model.forward(tokens(changed, 8, 8), None));
    let position_changed = |p: usize| {
        a[p * 16..(p + 1) * 16]
            .iter()
            .zip(&b[p * 16..(p + 1) * 16])
            .any(|(x, y)| (x - y).abs() > 1e-6)
    };
    assert!(
        position_changed(0),
        "an earlier position ignores a later token"
    );
    assert!(
        position_changed(63),
        "a later position ignores an earlier token"
    );
    assert!(position_changed(20) && position_changed(40));
}

/// Conditions that flag `fill` and carry no labels.
fn filling(fill: &Tensor<3, Bool>) -> Conditions {
    Conditions {
        fill: Some(fill.clone()),
        labels: None,
    }
}

/// A grid whose first eight codes sit exactly where it is flagged to fill.
fn grid_and_fill() -> (Vec<i64>, Tensor<3, Bool>) {
    let grid: Vec<i64> = (0..64).map(|i| (i * 5 % 16) as i64).collect();
    let flags = grid.iter().map(|&t| t < 8).collect();
    let fill = Tensor::from_data(TensorData::new(flags, [1, 8, 8]), &device::cpu());
    (grid, fill)
}

#[test]
fn the_fill_embedding_shifts_the_input_of_flagged_tokens_only() {
    let device = device::cpu();
    let (grid, fill) = grid_and_fill();
    let plain_model = Prior::new(&PriorConfig::tiny(), &device);
    let plain = values(plain_model.forward(tokens(grid.clone(), 8, 8), None));
    let flagged =
        plain_model.forward_conditioned(tokens(grid.clone(), 8, 8), None, &filling(&fill));
    assert_eq!(
        values(flagged),
        plain,
        "a prior without one ignores the flags"
    );

    // Added to a trained prior, it starts at zero: the model computes what it did.
    let mut model = plain_model.with_fill_embedding();
    let filled = |model: &Prior| {
        values(model.forward_conditioned(tokens(grid.clone(), 8, 8), None, &filling(&fill)))
    };
    assert_eq!(filled(&model), plain);

    // Once learned, it acts as if added (times FILL_SCALE) to the embedding of each flagged token:
    // here the codes 0-7, which sit exactly on the flagged positions.
    let stored = Tensor::<2>::random([1, 32], Distribution::Normal(0.0, 1.0), &device);
    model.fill_emb = Some(Param::from_tensor(stored.clone()));
    let shift = stored.mul_scalar(FILL_SCALE);
    let mut shifted_codes = model.clone();
    let rows = Tensor::cat(
        vec![shift.repeat_dim(0, 8), Tensor::zeros([8, 32], &device)],
        0,
    );
    shifted_codes.token_emb.weight =
        Param::from_tensor(shifted_codes.token_emb.weight.val() + rows);
    let expected = values(shifted_codes.forward(tokens(grid.clone(), 8, 8), None));
    assert!(max_abs_diff(&filled(&model), &expected) < 1e-5);
    assert!(
        max_abs_diff(&filled(&model), &plain) > 1e-3,
        "the flags changed nothing"
    );
}

#[test]
fn rectangular_and_larger_grids_run_and_bad_grids_are_named() {
    let config = PriorConfig {
        depth: vec![1, 1, 1, 1, 1],
        ..PriorConfig::tiny()
    };
    config.validate().unwrap();
    let model = Prior::new(&config, &device::cpu());
    let logits = model.forward(tokens(vec![3; 8 * 12], 8, 12), None);
    assert_eq!(logits.dims(), [1, 96, 16]);
    let logits = model.forward(tokens(vec![3; 16 * 16], 16, 16), None);
    assert_eq!(logits.dims(), [1, 256, 16]);
    let err = config.check_grid(8, 10).unwrap_err().to_string();
    assert!(err.contains("8x10") && err.contains("4x5"), "{err}");
    assert!(
        PriorConfig {
            shorten_factor: 2,
            ..PriorConfig::tiny()
        }
        .validate()
        .is_err()
    );
    assert!(
        PriorConfig {
            depth: vec![1, 1],
            ..PriorConfig::tiny()
        }
        .validate()
        .is_err()
    );
}

#[test]
fn parameter_formula_matches_the_built_models() {
    let device = device::cpu();
    for config in [
        PriorConfig::tiny(),
        PriorConfig {
            depth: vec![2, 1, 3, 1, 2],
            num_classes: 5,
            fill_embedding: true,
            ..PriorConfig::tiny()
        },
        PriorConfig {
            dim: 64,
            heads: 3,
            dim_head: 8,
            ff_mult: 4,
            ..PriorConfig::tiny()
        },
    ] {
        assert_eq!(
            Prior::new(&config, &device).num_params(),
            config.parameter_count(),
            "{config:?}"
        );
    }
    // SPEC.md 3.1: dim 2048, (2,10,2), V 8192 -> 671.4M; dim 1024, (2,10,2), V 1024 -> 178.4M.
    let ffhq1024 = PriorConfig::ffhq1024().parameter_count() as f64 / 1e6;
    assert!((ffhq1024 - 671.4).abs() < 0.1, "{ffhq1024}");
    let ffhq256 = PriorConfig::ffhq256().parameter_count() as f64 / 1e6;
    assert!((ffhq256 - 178.4).abs() < 0.1, "{ffhq256}");
}

#[test]
fn tensor_names_follow_the_reference_and_round_trip() {
    let config = PriorConfig {
        num_classes: 3,
        fill_embedding: true,
        ..PriorConfig::tiny()
    };
    let mut model = Prior::new(&config, &device::cpu());
    // Not zero, so the round trip shows it is stored.
    let shift = Tensor::<2>::random([1, 32], Distribution::Normal(0.0, 1.0), &device::cpu());
    model.fill_emb = Some(Param::from_tensor(shift));
    let names: Vec<String> = prior_tensor_names(&model)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for expected in [
        "token_emb.weight",
        "class_emb.weight",
        "fill_emb",
        "to_logits.weight",
        "transformer.norm_out.weight",
        "transformer.pre_transformer.layers.0.0.norm.weight",
        "transformer.pre_transformer.layers.0.0.fn.to_q.weight",
        "transformer.pre_transformer.layers.0.0.fn.to_kv.weight",
        "transformer.pre_transformer.layers.0.0.fn.to_out.bias",
        "transformer.valley_transformer.layers.0.1.fn.0.weight",
        "transformer.post_transformer.layers.0.1.fn.3.bias",
        "transformer.attn_resampling_pre_valley.layers.0.1.norm.bias",
        "transformer.downsample.proj.weight",
        "transformer.upsample.proj.bias",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing {expected} in {names:?}"
        );
    }
    let shapes: std::collections::HashMap<String, Vec<usize>> =
        prior_tensor_names(&model).into_iter().collect();
    // PyTorch layouts: Linear weights are [out, in].
    assert_eq!(
        shapes["transformer.pre_transformer.layers.0.0.fn.to_kv.weight"],
        vec![64, 32]
    );
    assert_eq!(shapes["transformer.downsample.proj.weight"], vec![32, 128]);

    let dir = tempfile::tempdir().unwrap();
    save_prior(dir.path(), &config, &model, sundae::bundle::Storage::F32).unwrap();
    let (loaded_config, loaded) = load_prior(dir.path(), &device::cpu()).unwrap();
    assert_eq!(loaded_config, config);
    let (grid, fill) = grid_and_fill();
    let grid = tokens(grid, 8, 8);
    let classes = Tensor::<1, Int>::from_data(TensorData::new(vec![2i64], [1]), &device::cpu());
    let conditions = filling(&fill);
    assert_eq!(
        values(model.forward_conditioned(grid.clone(), Some(classes.clone()), &conditions)),
        values(loaded.forward_conditioned(grid, Some(classes), &conditions))
    );
}
