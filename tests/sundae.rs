//! SUNDAE: corruption statistics, overfitting, exact resume, and the sampler's rules.

mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::max_abs_diff;
use std::path::Path;
use sundae::device;
use sundae::hourglass::PriorConfig;
use sundae::sundae::corrupt::corrupt;
use sundae::sundae::evaluate::{at_rate, evaluate, in_blocks};
use sundae::sundae::sample::{SampleSettings, Schedule, sample};
use sundae::sundae::train::{PriorTrainConfig, PriorTrainer};
use sundae::sundae::unroll::unrolled_loss;
use sundae::sundae::{Conditions, Denoiser};
use sundae::tokens::TokenGrids;
use sundae::train::SplitMix;
use sundae::train::fit::Checkpointed;

#[test]
fn corruption_rates_are_uniform_and_set_the_share_of_replaced_tokens() {
    let (batch, len, vocab) = (4000, 256, 8);
    let mut tokens = vec![0i64; batch * len];
    let rates = corrupt(
        &mut tokens,
        [batch, 16, 16],
        vocab,
        0.0,
        &mut SplitMix::new(5),
    )
    .rates;
    let mean = rates.iter().map(|&r| r as f64).sum::<f64>() / batch as f64;
    let var = rates
        .iter()
        .map(|&r| (r as f64 - mean).powi(2))
        .sum::<f64>()
        / batch as f64;
    assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    assert!((var - 1.0 / 12.0).abs() < 0.005, "variance {var}");
    // Deciles hold a tenth each (within 4 standard errors).
    for decile in 0..10 {
        let share = rates
            .iter()
            .filter(|&&r| (r * 10.0) as usize == decile)
            .count() as f64
            / batch as f64;
        assert!(
            (share - 0.1).abs() < 4.0 * (0.09f64 / batch as f64).sqrt(),
            "decile {decile}: {share}"
        );
    }
    // A replaced token is uniform over the vocabulary, so it changes with probability (V-1)/V.
    for (sequence, &rate) in tokens.chunks(len).zip(&rates).take(200) {
        let changed = sequence.iter().filter(|&&t| t != 0).count() as f64 / len as f64;
        let expected = rate as f64 * (vocab - 1) as f64 / vocab as f64;
        assert!(
            (changed - expected).abs() < 0.15,
            "rate {rate}: {changed} changed"
        );
    }
    assert!(tokens.iter().all(|&t| (0..vocab as i64).contains(&t)));
}

#[test]
fn block_corruption_replaces_one_rectangle_of_every_size_and_place() {
    // Marked tokens (1000 + position) and a vocabulary below 1000: a replaced token is always seen.
    let (batch, h, w, vocab) = (3000, 4, 6, 8);
    let mut tokens: Vec<i64> = (0..batch * h * w)
        .map(|i| 1000 + (i % (h * w)) as i64)
        .collect();
    let corruption = corrupt(
        &mut tokens,
        [batch, h, w],
        vocab,
        0.5,
        &mut SplitMix::new(9),
    );
    let (mut blocks, mut heights, mut widths) = (0, [0usize; 4], [0usize; 6]);
    let (mut tops, mut lefts) = ([0usize; 4], [0usize; 6]);
    let grids = tokens.chunks(h * w).zip(corruption.fill.chunks(h * w));
    for ((grid, fill), &rate) in grids.zip(&corruption.rates) {
        let replaced: Vec<(usize, usize)> = (0..h * w)
            .filter(|&i| grid[i] < 1000)
            .map(|i| (i / w, i % w))
            .collect();
        let (top, bottom) = (
            replaced.iter().map(|p| p.0).min(),
            replaced.iter().map(|p| p.0).max(),
        );
        let (left, right) = (
            replaced.iter().map(|p| p.1).min(),
            replaced.iter().map(|p| p.1).max(),
        );
        let (Some(top), Some(bottom), Some(left), Some(right)) = (top, bottom, left, right) else {
            assert!(!fill.contains(&true));
            continue;
        };
        let area = (bottom - top + 1) * (right - left + 1);
        // A block: the replaced positions fill their bounding box and the rate is its share.
        if replaced.len() == area && (rate - area as f32 / (h * w) as f32).abs() < 1e-6 {
            blocks += 1;
            heights[bottom - top] += 1;
            widths[right - left] += 1;
            tops[top] += 1;
            lefts[left] += 1;
            // Flagged to fill: exactly the positions inside the block.
            assert!((0..h * w).all(|i| fill[i] == (grid[i] < 1000)));
        } else {
            assert!(
                !fill.contains(&true),
                "a scattered grid has nothing to fill"
            );
        }
    }
    // Half the grids hold a block (a scattered grid rarely passes as one); sizes and places are spread.
    let share = blocks as f64 / batch as f64;
    assert!((0.46..0.54).contains(&share), "{share}");
    assert!(heights.iter().all(|&n| n > blocks / 8), "{heights:?}");
    assert!(widths.iter().all(|&n| n > blocks / 12), "{widths:?}");
    // Every row and column starts some block (the last ones only blocks of height or width 1).
    assert!(
        tops.iter().chain(&lefts).all(|&n| n > blocks / 50),
        "{tops:?} {lefts:?}"
    );
    assert!(
        tokens
            .iter()
            .all(|&t| (0..vocab as i64).contains(&t) || t >= 1000)
    );
    // Without blocks no draw decides between the two, so a grid's rate is the generator's first number
    // (the reference's draws, unchanged).
    let mut plain = vec![0i64; 16];
    let plain = corrupt(&mut plain, [1, 4, 4], vocab, 0.0, &mut SplitMix::new(3));
    assert_eq!(plain.rates, vec![SplitMix::new(3).next_f32()]);
}

/// Predicts each input token plus one (modulo the vocabulary), and records every input it is given.
struct ShiftRecorder {
    vocab: usize,
    inputs: std::cell::RefCell<Vec<Vec<i64>>>,
}

impl Denoiser for ShiftRecorder {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        let input: Vec<i64> = tokens.clone().into_data().iter::<i64>().collect();
        let shifted: Vec<i64> = input.iter().map(|t| (t + 1) % self.vocab as i64).collect();
        self.inputs.borrow_mut().push(input);
        Tensor::<2, Int>::from_data(TensorData::new(shifted, [b, h * w]), &tokens.device())
            .one_hot(self.vocab)
            .float()
            .mul_scalar(1000.0)
    }
}

#[test]
fn unrolled_passes_keep_positions_around_blocks_clean_and_redraw_the_rest() {
    let (shape, vocab) = ([6, 3, 4], 7);
    let clean: Vec<i64> = (0..6 * 12).map(|i| (i * 5 % 7) as i64).collect();
    let mut corrupted = clean.clone();
    let corruption = corrupt(&mut corrupted, shape, vocab, 0.5, &mut SplitMix::new(4));
    let fill = &corruption.fill;
    let has_block: Vec<bool> = fill.chunks(12).map(|grid| grid.contains(&true)).collect();
    assert!(has_block.contains(&true) && has_block.contains(&false));
    let device = device::cpu();
    let tensor = |values: &[i64]| {
        Tensor::<3, Int>::from_data(TensorData::new(values.to_vec(), shape), &device)
    };
    let passes = |fill: Option<&[bool]>| {
        let model = FillRecorder {
            inner: ShiftRecorder {
                vocab,
                inputs: Default::default(),
            },
            fills: Default::default(),
        };
        let rng = &mut SplitMix::new(1);
        unrolled_loss(
            &model,
            tensor(&clean),
            tensor(&corrupted),
            fill,
            None,
            3,
            rng,
        );
        (model.inner.inputs.into_inner(), model.fills.into_inner())
    };
    let shift = |values: &[i64]| -> Vec<i64> { values.iter().map(|t| (t + 1) % 7).collect() };
    // Without blocks each pass samples the previous pass's (certain) prediction everywhere.
    let (free, no_flags) = passes(None);
    assert_eq!(no_flags, vec![None; 3]);
    assert_eq!(free.len(), 3);
    assert_eq!(free[0], corrupted);
    assert_eq!(free[1], shift(&free[0]));
    assert_eq!(free[2], shift(&free[1]));
    // With them, every pass is told the blocks, and in a grid with a block the positions outside it
    // hold the clean token in every pass; scattered grids are redrawn everywhere.
    let (pinned, flags) = passes(Some(fill));
    assert_eq!(flags, vec![Some(fill.clone()); 3]);
    assert_eq!(pinned[0], corrupted);
    for pass in 1..3 {
        let previous = shift(&pinned[pass - 1]);
        for i in 0..clean.len() {
            let expected = if has_block[i / 12] && !fill[i] {
                clean[i]
            } else {
                previous[i]
            };
            assert_eq!(pinned[pass][i], expected, "pass {pass}, position {i}");
        }
    }
}

#[test]
fn a_block_share_outside_zero_to_one_is_refused() {
    let tiny = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/prior-tiny.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let read = |share: &str| {
        let path = dir.path().join("prior.toml");
        let text = tiny.replace("[train]\n", &format!("[train]\nblock_share = {share}\n"));
        std::fs::write(&path, text).unwrap();
        PriorTrainConfig::read(&path)
    };
    assert_eq!(read("0.25").unwrap().train.block_share, 0.25);
    let err = read("1.5").err().unwrap().to_string();
    assert!(err.contains("block_share must be in [0, 1]"), "{err}");
}

#[test]
fn every_shipped_prior_config_reads() {
    let configs = common::read_every_config("prior-", 5, PriorTrainConfig::read);
    let blocks = &configs["prior-emoji-blocks.toml"];
    assert_eq!(blocks.train.block_share, 0.5);
}

fn tiny_config() -> PriorTrainConfig {
    PriorTrainConfig::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/prior-tiny.toml"))
        .unwrap()
}

/// Four 8x8 grids that differ at every position.
fn four_grids() -> TokenGrids {
    let values = (0..4)
        .flat_map(|g| (0..64).map(move |i| ((i * 3 + g * 4 + i / 8) % 16) as i64))
        .collect();
    TokenGrids {
        values,
        shape: [4, 8, 8],
    }
}

fn argmax_accuracy(trainer: &PriorTrainer, clean: &TokenGrids, rate_seed: u64) -> f64 {
    let device = device::cpu();
    let model = burn::module::Module::valid(&trainer.model);
    let mut rng = SplitMix::new(rate_seed);
    let corrupted: Vec<i64> = clean
        .values
        .iter()
        .map(|&t| {
            if rng.next_f32() < 0.5 {
                rng.below(16) as i64
            } else {
                t
            }
        })
        .collect();
    let input = Tensor::<3, Int>::from_data(TensorData::new(corrupted, clean.shape), &device);
    let predicted: Vec<i64> = model
        .logits(input)
        .argmax(2)
        .into_data()
        .iter::<i64>()
        .collect();
    predicted
        .iter()
        .zip(&clean.values)
        .filter(|(a, b)| a == b)
        .count() as f64
        / clean.values.len() as f64
}

#[test]
fn a_tiny_prior_overfits_four_grids() {
    let mut config = tiny_config();
    config.model = PriorConfig {
        dim: 64,
        heads: 4,
        ff_mult: 4,
        ..config.model
    };
    config.train.run.learning_rate = 2e-3;
    let device = device::cpu().autodiff();
    device.seed(3);
    let mut trainer = PriorTrainer::new(&config, &device);
    let grids = four_grids();
    let before = argmax_accuracy(&trainer, &grids, 9);
    for _ in 0..800 {
        trainer.step(&grids.clone().into()).unwrap();
    }
    let after = argmax_accuracy(&trainer, &grids, 9);
    assert!(before < 0.3, "untrained accuracy {before}");
    assert!(after > 0.99, "accuracy after training {after}");
}

#[test]
fn k_prior_steps_then_resume_then_k_steps_equals_2k_steps() {
    let mut config = tiny_config();
    // With blocks as well: their draws, like the scattered ones, are keyed by the step.
    config.train.block_share = 0.5;
    let device = device::cpu().autodiff();
    let batch = |step: u64| {
        let mut rng = SplitMix::keyed(1, 1, step);
        TokenGrids {
            values: (0..4 * 64).map(|_| rng.below(16) as i64).collect(),
            shape: [4, 8, 8],
        }
    };
    let mut straight = PriorTrainer::new(&config, &device);
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..4 {
        let step = straight.step;
        straight.step(&batch(step).into()).unwrap();
    }
    straight.save(dir.path()).unwrap();
    let mut resumed = PriorTrainer::new(&config, &device);
    resumed.load(dir.path()).unwrap();
    let mut reports = Vec::new();
    for _ in 0..4 {
        let step = straight.step;
        let a = straight.step(&batch(step).into()).unwrap();
        let b = resumed.step(&batch(step).into()).unwrap();
        reports.push((a.loss, b.loss));
    }
    for (a, b) in &reports {
        assert!((a - b).abs() < 1e-6, "losses {a} vs {b}");
    }
    let grid =
        Tensor::<3, Int>::from_data(TensorData::new(batch(99).values, [4, 8, 8]), &device::cpu());
    let a: Vec<f32> = burn::module::Module::valid(&straight.model)
        .logits(grid.clone())
        .into_data()
        .iter::<f32>()
        .collect();
    let b: Vec<f32> = burn::module::Module::valid(&resumed.model)
        .logits(grid)
        .into_data()
        .iter::<f32>()
        .collect();
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "models differ by {diff}");
}

/// Puts all probability on the input token: its output is its input.
struct Identity {
    vocab: usize,
}

impl Denoiser for Identity {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        tokens
            .reshape([b, h * w])
            .one_hot(self.vocab)
            .float()
            .mul_scalar(1000.0)
    }
}

/// Identity for samples whose first token is 0; uniform logits (random proposals) for the others.
struct HalfSettled {
    vocab: usize,
}

impl Denoiser for HalfSettled {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        let first: Vec<i64> = tokens
            .clone()
            .narrow(1, 0, 1)
            .narrow(2, 0, 1)
            .into_data()
            .iter::<i64>()
            .collect();
        let settled = tokens
            .clone()
            .reshape([b, h * w])
            .one_hot(self.vocab)
            .float()
            .mul_scalar(1000.0);
        let rows: Vec<Tensor<3>> = (0..b)
            .map(|i| {
                let row = settled.clone().narrow(0, i, 1);
                if first[i] == 0 { row } else { row.zeros_like() }
            })
            .collect();
        Tensor::cat(rows, 0)
    }
}

/// Passes every call on to `inner`, recording the fill flags that came with it.
struct FillRecorder<M> {
    inner: M,
    fills: std::cell::RefCell<Vec<Option<Vec<bool>>>>,
}

impl<M: Denoiser> Denoiser for FillRecorder<M> {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        self.logits_conditioned(tokens, &Conditions::default())
    }

    fn logits_conditioned(&self, tokens: Tensor<3, Int>, conditions: &Conditions) -> Tensor<3> {
        let flags = conditions
            .fill
            .clone()
            .map(|f| f.into_data().iter::<bool>().collect());
        self.fills.borrow_mut().push(flags);
        self.inner.logits(tokens)
    }
}

fn start(batch: usize, vocab: usize, seed: u64) -> TokenGrids {
    TokenGrids::random(batch, 4, 4, vocab, &mut SplitMix::new(seed))
}

#[test]
fn the_same_seed_gives_the_same_tokens_and_another_seed_others() {
    let model = sundae::hourglass::Prior::new(
        &PriorConfig {
            grid_height: 4,
            grid_width: 4,
            ..PriorConfig::tiny()
        },
        &device::cpu(),
    );
    let settings = SampleSettings {
        steps: 6,
        seed: 7,
        ..SampleSettings::default()
    };
    let run = |settings: &SampleSettings| {
        sample(
            &model,
            start(3, 16, 1),
            None,
            settings,
            &device::cpu(),
            |_, _| {},
        )
        .grids
    };
    assert_eq!(run(&settings), run(&settings));
    assert_ne!(
        run(&settings),
        run(&SampleSettings {
            seed: 8,
            ..settings.clone()
        })
    );
}

/// Logit t for token t everywhere: code V-1 the most likely, then V-2, and so on.
struct Ramp {
    vocab: usize,
}

impl Denoiser for Ramp {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        let ramp = Tensor::<1, Int>::arange(0..self.vocab as i64, &tokens.device()).float();
        ramp.reshape([1, 1, self.vocab])
            .expand([b, h * w, self.vocab])
    }
}

#[test]
fn top_k_draws_only_the_k_most_likely_codes() {
    let vocab = 8;
    let draw = |top_k: usize| {
        let settings = SampleSettings {
            steps: 1,
            proportion: Schedule::constant(1.0),
            temperature: Schedule::constant(1.0),
            exclude_noise: false,
            top_k,
            ..SampleSettings::default()
        };
        let start = start(16, vocab, 3);
        let sampled = sample(
            &Ramp { vocab },
            start,
            None,
            &settings,
            &device::cpu(),
            |_, _| {},
        );
        let mut counts = vec![0usize; vocab];
        for &t in &sampled.grids.values {
            counts[t as usize] += 1;
        }
        counts
    };
    // 256 draws. Top 2: codes 7 and 6 only, in the ratio e : 1 (p(6) = 0.27).
    let two = draw(2);
    assert_eq!(two[..6].iter().sum::<usize>(), 0, "{two:?}");
    assert!((40..100).contains(&two[6]), "{two:?}");
    // All codes (0, or k at least the vocabulary): the lower six hold (e^6 - 1) / (e^8 - 1) = 13.5 %.
    for k in [0, vocab, 100] {
        let all = draw(k);
        assert!(
            (15..60).contains(&all[..6].iter().sum::<usize>()),
            "top {k}: {all:?}"
        );
    }
    // Top 1 is the argmax.
    assert_eq!(draw(1)[7], 256);
}

#[test]
fn with_proportion_zero_nothing_changes() {
    let model = HalfSettled { vocab: 8 };
    let settings = SampleSettings {
        steps: 12,
        proportion: Schedule::constant(0.0),
        min_steps: 3,
        ..SampleSettings::default()
    };
    let initial = start(4, 8, 2);
    let sampled = sample(
        &model,
        initial.clone(),
        None,
        &settings,
        &device::cpu(),
        |_, _| {},
    );
    assert_eq!(sampled.grids, initial);
    assert_eq!(
        sampled.steps_taken, 4,
        "all samples freeze at the first step allowed"
    );
}

#[test]
fn an_identity_model_freezes_right_after_min_steps_and_stops_early() {
    let settings = SampleSettings {
        steps: 50,
        min_steps: 10,
        proportion: Schedule::constant(1.0),
        // The reference rule: the identity may keep its random start.
        exclude_noise: false,
        ..SampleSettings::default()
    };
    let mut seen = 0;
    let initial = start(5, 16, 3);
    let sampled = sample(
        &Identity { vocab: 16 },
        initial.clone(),
        None,
        &settings,
        &device::cpu(),
        |_, _| seen += 1,
    );
    assert_eq!(sampled.steps_taken, 11);
    assert_eq!(seen, 11);
    assert_eq!(sampled.grids, initial);
    // Without early stopping every step runs.
    let all = SampleSettings {
        early_stop: false,
        ..settings
    };
    assert_eq!(
        sample(
            &Identity { vocab: 16 },
            initial,
            None,
            &all,
            &device::cpu(),
            |_, _| {}
        )
        .steps_taken,
        50
    );
}

#[test]
fn known_tokens_never_change_even_when_some_samples_freeze_early_and_the_rest_is_flagged_to_fill() {
    let vocab = 8;
    let mut initial = start(4, vocab, 4);
    // Samples 0 and 2 start with token 0 (they settle and freeze); 1 and 3 keep changing.
    for (i, first) in [0, 5, 0, 6].into_iter().enumerate() {
        initial.values[i * 16] = first;
    }
    // Different masks per sample, so a mask applied to the wrong sample would show; every first token
    // known, so samples 1 and 3 never settle.
    let keep: Vec<bool> = (0..4 * 16)
        .map(|i| (i * 7 + i / 16) % 5 == 0 || i % 16 == 0)
        .collect();
    let settings = SampleSettings {
        steps: 30,
        min_steps: 2,
        proportion: Schedule::constant(1.0),
        exclude_noise: false,
        ..SampleSettings::default()
    };
    let mut frozen_rows_seen = false;
    let model = FillRecorder {
        inner: HalfSettled { vocab },
        fills: Default::default(),
    };
    let sampled = sample(
        &model,
        initial.clone(),
        Some(&keep),
        &settings,
        &device::cpu(),
        |_, grids| {
            frozen_rows_seen |= grids.values[..16] == initial.values[..16];
        },
    );
    assert_eq!(sampled.steps_taken, 30, "two samples never settle");
    assert!(frozen_rows_seen);
    for (i, (&known, (&after, &before))) in keep
        .iter()
        .zip(sampled.grids.values.iter().zip(&initial.values))
        .enumerate()
    {
        if known {
            assert_eq!(after, before, "known token {i} changed");
        }
    }
    // The unsettled samples did change where allowed.
    let changed = (16..32)
        .filter(|&i| !keep[i] && sampled.grids.values[i] != initial.values[i])
        .count();
    assert!(changed > 0);
    // Every step tells the model what it must fill: the unknown tokens of the samples it is given.
    let to_fill = |samples: &[usize]| -> Option<Vec<bool>> {
        Some(
            samples
                .iter()
                .flat_map(|&s| keep[s * 16..(s + 1) * 16].iter().map(|&k| !k))
                .collect(),
        )
    };
    let fills = model.fills.into_inner();
    assert_eq!(fills.len(), 30);
    assert_eq!(fills[0], to_fill(&[0, 1, 2, 3]));
    // Later steps see only the samples still changing, in order, each with its own mask.
    let subsets: Vec<Vec<usize>> = fills
        .iter()
        .map(|flags| {
            let flags = flags.as_ref().expect("inpainting flags every step");
            let samples: Vec<usize> = flags
                .chunks(16)
                .map(|chunk| (0..4).find(|&s| to_fill(&[s]).unwrap() == chunk).unwrap())
                .collect();
            assert_eq!(Some(flags.clone()), to_fill(&samples));
            samples
        })
        .collect();
    assert_eq!(subsets[29], vec![1, 3], "samples 0 and 2 froze");
    // Plain sampling flags nothing.
    let model = FillRecorder {
        inner: HalfSettled { vocab },
        fills: Default::default(),
    };
    sample(&model, initial, None, &settings, &device::cpu(), |_, _| {});
    assert!(model.fills.into_inner().iter().all(Option::is_none));
}

/// Logit 10 on the input token (the bump for keeping it) and 5 on token 0, 0 elsewhere.
struct CopyOrZero {
    vocab: usize,
}

impl Denoiser for CopyOrZero {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        let copy = tokens
            .reshape([b, h * w])
            .one_hot(self.vocab)
            .float()
            .mul_scalar(10.0);
        let mut zero = vec![0.0f32; self.vocab];
        zero[0] = 5.0;
        let zero =
            Tensor::<1>::from_floats(zero.as_slice(), &copy.device()).reshape([1, 1, self.vocab]);
        copy + zero
    }
}

#[test]
fn tokens_still_holding_their_random_start_are_always_redrawn() {
    let vocab = 8;
    // Starts without token 0, so its only competitor at each noise position is the copy bump.
    let mut initial = start(3, vocab, 9);
    for token in &mut initial.values {
        *token = 1 + *token % (vocab as i64 - 1);
    }
    let keep: Vec<bool> = (0..3 * 16).map(|i| i % 5 == 0).collect();
    let settings = SampleSettings {
        steps: 40,
        temperature: Schedule::constant(0.01),
        // Half the tokens per step: a token left alone stays noise until a later step redraws it.
        proportion: Schedule::constant(0.5),
        early_stop: false,
        ..SampleSettings::default()
    };
    let run = |settings: &SampleSettings| {
        sample(
            &CopyOrZero { vocab },
            initial.clone(),
            Some(&keep),
            settings,
            &device::cpu(),
            |_, _| {},
        )
        .grids
        .values
    };
    // With the bump on the noise removed, token 0 wins everywhere the mask allows.
    let expected: Vec<i64> = (0..3 * 16)
        .map(|i| if keep[i] { initial.values[i] } else { 0 })
        .collect();
    assert_eq!(run(&settings), expected);
    // The reference rule keeps the noise: the copy bump (10) beats token 0 (5).
    let reference = SampleSettings {
        exclude_noise: false,
        ..settings
    };
    assert_eq!(run(&reference), initial.values);
}

#[test]
fn schedules_anneal_linearly_with_inclusive_ends() {
    let s = Schedule::parse("1.0:0.7").unwrap();
    assert_eq!(s.at(0, 4), 1.0);
    assert!((s.at(3, 4) - 0.7).abs() < 1e-12);
    assert!((s.at(1, 4) - 0.9).abs() < 1e-12);
    assert_eq!(Schedule::parse("0.5").unwrap(), Schedule::constant(0.5));
    assert!(Schedule::parse("a:b").is_err());
}

/// Logits of zero everywhere: a uniform prediction whatever the input.
struct Uniform {
    vocab: usize,
}

impl Denoiser for Uniform {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        Tensor::zeros([b, h * w, self.vocab], &tokens.device())
    }
}

/// 40 grids of 4x4 using tokens 0, 3 and 5; a quarter of all tokens are 0.
fn quarter_zero_grids() -> TokenGrids {
    TokenGrids {
        values: (0..40 * 16).map(|i| [0, 3, 5, 3][i % 4]).collect(),
        shape: [40, 4, 4],
    }
}

#[test]
fn evaluation_scores_a_uniform_and_an_identity_denoiser_as_computed_by_hand() {
    let vocab = 8;
    let grids = quarter_zero_grids();
    let device = device::cpu();
    let uniform = evaluate(&Uniform { vocab }, &grids, &[], vocab, 2, 0.0, 16, &device);
    let ln_v = (vocab as f64).ln();
    assert!((uniform.loss - ln_v).abs() < 1e-5, "{uniform:?}");
    assert!(uniform.step_losses.iter().all(|l| (l - ln_v).abs() < 1e-5));
    // All logits tie, so argmax is token 0: right exactly where the clean token is 0.
    assert!((uniform.accuracy - 0.25).abs() < 1e-9, "{uniform:?}");
    assert_eq!(uniform.codebook_usage, 3.0 / 8.0);
    assert_eq!(uniform.grids, 40);

    // The identity predicts its (corrupted) input with logit 1000: loss 1000 on each changed token,
    // 0 on the others, so loss / 1000 + accuracy = 1; corruption at U(0,1) rates changes about
    // E[α] (1 - 1/V) = 0.44 of the tokens.
    let identity = evaluate(&Identity { vocab }, &grids, &[], vocab, 2, 0.0, 16, &device);
    assert!(
        (identity.loss / 1000.0 + identity.accuracy - 1.0).abs() < 1e-3,
        "{identity:?}"
    );
    assert!((0.35..0.8).contains(&identity.accuracy), "{identity:?}");
    // Fixed draws: the same model scores the same.
    let again = evaluate(&Identity { vocab }, &grids, &[], vocab, 2, 0.0, 16, &device);
    assert_eq!(identity.loss, again.loss);
}

#[test]
fn ema_weights_average_each_step_and_survive_a_checkpoint() {
    let mut config = tiny_config();
    config.train.ema_decay = 0.5;
    let device = device::cpu().autodiff();
    device.seed(5);
    let mut trainer = PriorTrainer::new(&config, &device);
    let values = |t: Tensor<2>| t.into_data().iter::<f32>().collect::<Vec<f32>>();
    let weights = |trainer: &PriorTrainer| values(trainer.model.token_emb.weight.val());
    let average =
        |trainer: &PriorTrainer| values(trainer.ema.as_ref().unwrap().token_emb.weight.val());
    let initial = weights(&trainer);
    assert_eq!(average(&trainer), initial);
    let grids = four_grids();
    trainer.step(&grids.clone().into()).unwrap();
    let first = weights(&trainer);
    assert!(
        max_abs_diff(&first, &initial) > 1e-5,
        "the step moved nothing"
    );
    // decay 0.5: the average is the midpoint of the old average and the new weights.
    let midpoint = |a: &[f32], b: &[f32]| -> Vec<f32> {
        a.iter().zip(b).map(|(a, b)| 0.5 * a + 0.5 * b).collect()
    };
    let expected = midpoint(&initial, &first);
    assert!(max_abs_diff(&average(&trainer), &expected) < 1e-6);
    trainer.step(&grids.clone().into()).unwrap();
    let second = weights(&trainer);
    let expected = midpoint(&expected, &second);
    assert!(max_abs_diff(&average(&trainer), &expected) < 1e-6);

    let dir = tempfile::tempdir().unwrap();
    trainer.save(dir.path()).unwrap();
    let mut resumed = PriorTrainer::new(&config, &device);
    resumed.load(dir.path()).unwrap();
    assert_eq!(average(&resumed), average(&trainer));
}

#[test]
fn a_fill_embedding_learns_from_block_grids_only() {
    let device = device::cpu().autodiff();
    let fill_embedding = |block_share: f64| {
        let mut config = tiny_config();
        config.model.fill_embedding = true;
        config.train.block_share = block_share;
        device.seed(5);
        let mut trainer = PriorTrainer::new(&config, &device);
        trainer.step(&four_grids().into()).unwrap();
        let fill = trainer.model.fill_emb.as_ref().unwrap().val();
        fill.into_data().iter::<f32>().collect::<Vec<f32>>()
    };
    // Scattered grids flag nothing, so the embedding gets no gradient and stays at zero.
    assert!(fill_embedding(0.0).iter().all(|&v| v == 0.0));
    assert!(fill_embedding(1.0).iter().any(|&v| v.abs() > 1e-5));
}

#[test]
fn the_learning_rate_warms_up_holds_and_decays_to_zero() {
    let mut config = tiny_config();
    config.train.run.learning_rate = 1e-3;
    config.train.run.steps = 100;
    config.train.run.warmup_steps = 10;
    config.train.run.decay_steps = 20;
    let device = device::cpu().autodiff();
    let mut trainer = PriorTrainer::new(&config, &device);
    // By hand: step s (0-based) uses lr * min(1, (s+1)/10) * min(1, (100-s)/20).
    for (step, expected) in [
        (0, 1e-4),
        (4, 5e-4),
        (9, 1e-3),
        (50, 1e-3),
        (80, 1e-3),
        (85, 7.5e-4),
        (99, 5e-5),
    ] {
        trainer.step = step;
        let lr = trainer.learning_rate();
        assert!(
            (lr - expected).abs() < 1e-12,
            "step {step}: {lr} vs {expected}"
        );
    }
}

#[test]
fn fixed_rate_figures_separate_untouched_from_replaced_tokens() {
    let vocab = 8;
    let grids = quarter_zero_grids();
    let device = device::cpu();
    // The identity keeps whatever it holds: right on every untouched token, wrong on every replaced
    // one (a replacement always differs from the clean token), and it keeps all the noise.
    let identity = at_rate(&Identity { vocab }, &grids, &[], vocab, 0.5, 16, &device);
    assert_eq!(identity.clean_accuracy, Some(1.0), "{identity:?}");
    assert_eq!(identity.corrupted_accuracy, Some(0.0), "{identity:?}");
    assert_eq!(identity.kept_noise, Some(1.0), "{identity:?}");
    // Logit 1000 on the wrong (held) token: -log p(clean) = 1000 + ln(1 + 7 e^-1000) = 1000.
    let loss = identity.corrupted_loss.unwrap();
    assert!((loss - 1000.0).abs() < 1e-2, "{identity:?}");
    let all = at_rate(&Identity { vocab }, &grids, &[], vocab, 1.0, 16, &device);
    assert_eq!(
        all.clean_accuracy, None,
        "no token is left untouched at rate 1"
    );
    assert_eq!(
        (all.corrupted_accuracy, all.kept_noise),
        (Some(0.0), Some(1.0))
    );
    // Uniform logits: argmax is token 0, the clean token at a quarter of the positions.
    let untouched = at_rate(&Uniform { vocab }, &grids, &[], vocab, 0.0, 16, &device);
    assert_eq!(untouched.clean_accuracy, Some(0.25), "{untouched:?}");
    let replaced = at_rate(&Uniform { vocab }, &grids, &[], vocab, 1.0, 16, &device);
    assert_eq!(replaced.corrupted_accuracy, Some(0.25), "{replaced:?}");
    let loss = replaced.corrupted_loss.unwrap();
    assert!((loss - (vocab as f64).ln()).abs() < 1e-5, "{replaced:?}");
    // Kept noise = replaced tokens that came out as 0: about 1/7 of the 3/4 whose clean token is not 0.
    let kept = replaced.kept_noise.unwrap();
    assert!((kept - 0.75 / 7.0).abs() < 0.04, "{replaced:?}");
    // Blocks leave context: the identity is right on all of it, wrong on every changed block token.
    let blocks = in_blocks(&Identity { vocab }, &grids, &[], vocab, 16, &device);
    assert_eq!(
        (
            blocks.clean_accuracy,
            blocks.corrupted_accuracy,
            blocks.kept_noise
        ),
        (Some(1.0), Some(0.0), Some(1.0)),
        "{blocks:?}"
    );
    // Uniform logits score a quarter of the context (its zeros) as at rate 0.
    let blocks = in_blocks(&Uniform { vocab }, &grids, &[], vocab, 16, &device);
    let context = blocks.clean_accuracy.unwrap();
    assert!((context - 0.25).abs() < 0.08, "{blocks:?}");
}

/// Logits that turn NaN from step `from` on (a model whose numbers overflow).
struct TurnsNan {
    vocab: usize,
    from: usize,
    calls: std::cell::Cell<usize>,
}

impl Denoiser for TurnsNan {
    fn logits(&self, tokens: Tensor<3, Int>) -> Tensor<3> {
        let [b, h, w] = tokens.dims();
        let call = self.calls.get();
        self.calls.set(call + 1);
        let value = if call >= self.from { f32::NAN } else { 0.0 };
        Tensor::full([b, h * w, self.vocab], value, &tokens.device())
    }
}

#[test]
fn the_sampler_stops_at_the_first_step_whose_logits_are_not_finite() {
    let model = TurnsNan {
        vocab: 6,
        from: 3,
        calls: std::cell::Cell::new(0),
    };
    let settings = SampleSettings {
        steps: 10,
        early_stop: false,
        ..SampleSettings::default()
    };
    let sampled = sample(
        &model,
        start(2, 6, 1),
        None,
        &settings,
        &device::cpu(),
        |_, _| {},
    );
    assert_eq!(sampled.non_finite_at, Some(3));
    assert_eq!(sampled.steps_taken, 3);
    let healthy = Uniform { vocab: 6 };
    let sampled = sample(
        &healthy,
        start(2, 6, 1),
        None,
        &settings,
        &device::cpu(),
        |_, _| {},
    );
    assert_eq!(sampled.non_finite_at, None);
}
