//! VQ-GAN training: the adaptive weight, dead-code restarts, and exact resume after a kill.

mod common;

use burn::tensor::{Distribution, Tensor};
use common::fixture;
use std::path::Path;
use std::process::Command;
use sundae::data::{Split, load};
use sundae::device;
use sundae::train::batches::batch_indices;
use sundae::train::fit::Checkpointed;
use sundae::vqgan::batch::images_to_tensor;
use sundae::vqgan::codebook::CodebookUsage;
use sundae::vqgan::loss::{adaptive_weight, last_layer_gradient};
use sundae::vqgan::render_train::RenderTrainConfig;
use sundae::vqgan::train::{VqGanTrainConfig, VqGanTrainer};

fn tiny_config() -> VqGanTrainConfig {
    VqGanTrainConfig::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/vqgan-tiny.toml"))
        .unwrap()
}

/// The tiny model with the discriminator active from the first step, at the weights of the taming
/// fixture (tests/fixtures/step_*); `adjust` changes the settings first.
fn taming_step_trainer(
    device: &burn::tensor::Device,
    adjust: impl FnOnce(&mut VqGanTrainConfig),
) -> VqGanTrainer {
    use sundae::bundle::load_safetensors;
    let mut config = tiny_config();
    config.train.disc_start = 0;
    config.train.disc_layers = 2;
    config.train.disc_channels = 8;
    config.train.disc_weight = 0.8;
    config.train.run.learning_rate = 1e-3;
    config.train.restart_dead_codes = false;
    adjust(&mut config);
    let mut trainer = VqGanTrainer::new(&config, device);
    load_safetensors(&mut trainer.model, &fixture("step_vqgan.safetensors")).unwrap();
    load_safetensors(&mut trainer.disc, &fixture("step_disc.safetensors")).unwrap();
    trainer
}

/// The taming fixture's batch of four 16x16 images.
fn taming_step_input(device: &burn::tensor::Device) -> Tensor<4> {
    let input =
        ndarray_npy::read_npy::<_, ndarray::Array4<f32>>(fixture("step_input.npy")).unwrap();
    Tensor::<4>::from_data(
        burn::tensor::TensorData::new(input.iter().copied().collect::<Vec<_>>(), [4, 3, 16, 16]),
        device,
    )
}

#[test]
fn adaptive_weight_follows_tamings_formula() {
    // |∇nll| = sqrt(4 * 3^2) = 6, |∇g| = sqrt(4 * 4^2) = 8: 6 / (8 + 1e-4) * 0.5.
    let device = device::cpu();
    let nll = Tensor::<4>::full([1, 1, 2, 2], 3.0, &device);
    let g = Tensor::<4>::full([1, 1, 2, 2], 4.0, &device);
    let weight = adaptive_weight(nll, g.clone(), 0.5);
    assert!((weight - 6.0 / 8.0001 * 0.5).abs() < 1e-9, "{weight}");
    // Clamped at 1e4 when the generator gradient vanishes.
    let zero = Tensor::<4>::zeros([1, 1, 2, 2], &device);
    assert!((adaptive_weight(g, zero, 1.0) - 1e4).abs() < 1e-6);
}

#[test]
fn last_layer_gradient_equals_autodiff_through_the_convolution() {
    let device = device::cpu().autodiff();
    let conv = burn::nn::conv::Conv2dConfig::new([4, 3], [3, 3])
        .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device);
    let features = Tensor::<4>::random([2, 4, 5, 5], Distribution::Normal(0.0, 1.0), &device);
    let target = Tensor::<4>::random([2, 3, 5, 5], Distribution::Normal(0.0, 1.0), &device);
    let output = conv.forward(features.clone());
    let loss = (output.clone() - target.clone()).abs().mean();
    let grads = loss.backward();
    let expected: Vec<f32> = conv
        .weight
        .grad(&grads)
        .unwrap()
        .into_data()
        .iter::<f32>()
        .collect();
    // The same through a separate graph on the detached output, carried back analytically.
    let leaf = output.detach().require_grad();
    let leaf_grads = (leaf.clone() - target).abs().mean().backward();
    let out_grad = leaf.grad(&leaf_grads).unwrap();
    let ours: Vec<f32> = last_layer_gradient(
        features.detach().inner(),
        conv.weight.val().inner(),
        out_grad,
    )
    .into_data()
    .iter::<f32>()
    .collect();
    assert_eq!(ours.len(), 4 * 3 * 9);
    for (a, b) in ours.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn dead_codes_are_restarted_from_encoder_outputs_and_get_used() {
    let config = tiny_config();
    let device = device::cpu().autodiff();
    let mut trainer = VqGanTrainer::new(&config, &device);
    // A window in which only code 3 was ever chosen.
    trainer.usage = CodebookUsage::new(16, 2);
    trainer.usage.record(&[3; 10]);
    trainer.usage.record(&[3; 10]);
    assert_eq!(trainer.usage.dead_codes().len(), 15);
    assert!((trainer.usage.fraction_used() - 1.0 / 16.0).abs() < 1e-12);
    assert!((trainer.usage.perplexity() - 1.0).abs() < 1e-12);

    let z = Tensor::<4>::random([2, 8, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let before: Vec<f32> = trainer
        .model
        .quantize
        .embedding
        .weight
        .val()
        .into_data()
        .iter::<f32>()
        .collect();
    assert_eq!(trainer.restart_dead_codes(z.clone()), 15);
    let after: Vec<f32> = trainer
        .model
        .quantize
        .embedding
        .weight
        .val()
        .into_data()
        .iter::<f32>()
        .collect();
    // Code 3 is untouched; every restarted code is now one of the encoder outputs.
    assert_eq!(before[3 * 8..4 * 8], after[3 * 8..4 * 8]);
    let outputs: Vec<f32> = z
        .clone()
        .permute([0, 2, 3, 1])
        .reshape([128, 8])
        .into_data()
        .iter::<f32>()
        .collect();
    for code in (0..16).filter(|&c| c != 3) {
        let row = &after[code * 8..(code + 1) * 8];
        assert!(
            outputs.chunks(8).any(|o| o == row),
            "code {code} is not an encoder output"
        );
    }
    // Quantising those outputs now uses many codes instead of one.
    let indices: Vec<i64> = trainer
        .model
        .quantize
        .indices(z)
        .into_data()
        .iter::<i64>()
        .collect();
    let mut used: Vec<i64> = indices.clone();
    used.sort();
    used.dedup();
    assert!(used.len() >= 8, "only {} codes used", used.len());
    // The restarted parameter keeps training: it still receives gradients and moves.
    let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
    trainer.step(x).unwrap();
    let stepped: Vec<f32> = trainer
        .model
        .quantize
        .embedding
        .weight
        .val()
        .into_data()
        .iter::<f32>()
        .collect();
    assert_ne!(stepped, after);
}

/// Every float tensor of a module, by name, read back through a safetensors serialisation.
fn weights(model: &impl burn::store::ModuleSnapshot) -> Vec<(String, Vec<f32>)> {
    let mut store = burn::store::SafetensorsStore::from_bytes(None)
        .with_to_adapter(burn::store::BurnToPyTorchAdapter);
    model.save_into(&mut store).unwrap();
    let bytes = store.get_bytes().unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<f32>)> = tensors
        .tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == safetensors::Dtype::F32)
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!all.is_empty());
    all
}

fn assert_close(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)], what: &str) {
    assert_eq!(a.len(), b.len());
    for ((name, x), (other, y)) in a.iter().zip(b) {
        assert_eq!(name, other);
        let diff = x
            .iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{what}: {name} differs by {diff}");
    }
}

#[test]
fn k_steps_then_resume_then_k_steps_equals_2k_steps() {
    let config = tiny_config();
    let device = device::cpu().autodiff();
    let data = load("emoji", 16, Split::Validation).unwrap();
    let pixels: Vec<Vec<f32>> = data.samples.into_iter().map(|s| s.pixels).collect();
    let batch = |step: u64| {
        let idx = batch_indices(7, pixels.len(), 4, step);
        images_to_tensor(
            &idx.iter().map(|&i| pixels[i].clone()).collect::<Vec<_>>(),
            16,
            &device,
        )
    };
    // K = 6 with the discriminator joining at step 10, inside the second half.
    let k = 6;
    let mut straight = VqGanTrainer::new(&config, &device);
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..k {
        let step = straight.step;
        straight.step(batch(step)).unwrap();
    }
    straight.save(dir.path()).unwrap();
    for _ in 0..k {
        let step = straight.step;
        straight.step(batch(step)).unwrap();
    }

    let mut resumed = VqGanTrainer::new(&config, &device);
    resumed.load(dir.path()).unwrap();
    assert_eq!(resumed.step, k);
    for _ in 0..k {
        let step = resumed.step;
        resumed.step(batch(step)).unwrap();
    }
    assert_eq!(resumed.step, 2 * k);
    assert_close(&weights(&straight.model), &weights(&resumed.model), "vqgan");
    assert_close(
        &weights(&straight.disc),
        &weights(&resumed.disc),
        "discriminator",
    );
}

#[test]
fn a_killed_run_resumes_to_the_same_weights() {
    let exe = env!("CARGO_BIN_EXE_sundae");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/vqgan-tiny.toml");
    let dir = tempfile::tempdir().unwrap();
    let train = |run: &str, resume: bool, bundle: &str| {
        let mut cmd = Command::new(exe);
        cmd.args(["vqgan", "train", "--data", "emoji", "--run"])
            .arg(dir.path().join(run));
        cmd.args(["--bundle"]).arg(dir.path().join(bundle));
        if resume {
            cmd.arg("--resume");
        } else {
            cmd.arg("--config").arg(&config);
        }
        cmd
    };
    let status = train("straight", false, "straight-bundle")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    // Kill the second run with SIGKILL as soon as its first checkpoint exists.
    let mut child = train("killed", false, "unused")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let latest = dir.path().join("killed/checkpoint/latest");
    while !latest.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before its first checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed_at = std::fs::read_to_string(&latest).unwrap();
    assert!(killed_at.starts_with("step-"));
    // A fresh run into the same directory is refused; --resume continues.
    let refused = train("killed", false, "unused").output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    let resumed = train("killed", true, "resumed-bundle").output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );

    let (_, a) =
        sundae::bundle::load_vqgan(&dir.path().join("straight-bundle"), &device::cpu()).unwrap();
    let (_, b) =
        sundae::bundle::load_vqgan(&dir.path().join("resumed-bundle"), &device::cpu()).unwrap();
    assert_close(
        &weights(&a),
        &weights(&b),
        &format!("killed at {killed_at}"),
    );
    // Metrics hold each logged step once.
    let metrics = std::fs::read_to_string(dir.path().join("killed/metrics.jsonl")).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut unique = steps.clone();
    unique.dedup();
    assert_eq!(steps, unique);
    assert_eq!(steps.last(), Some(&20));
}

#[test]
fn one_training_step_matches_tamings_losses_and_updates() {
    let device = device::cpu().autodiff();
    let mut trainer = taming_step_trainer(&device, |_| {});
    let x = taming_step_input(&device);
    let report = trainer.step(x).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("step_expected.json")).unwrap())
            .unwrap();
    for (name, ours) in [
        ("reconstruction", report.reconstruction),
        ("quantizer", report.quantizer),
        ("generator", report.generator),
        ("adaptive_weight", report.adaptive_weight),
        ("discriminator", report.discriminator),
    ] {
        let theirs = expected[name].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
            "{name}: {ours} vs taming {theirs}"
        );
    }

    let after_bytes = std::fs::read(fixture("step_after.safetensors")).unwrap();
    let after = safetensors::SafeTensors::deserialize(&after_bytes).unwrap();
    let ours: std::collections::HashMap<String, Vec<f32>> = weights(&trainer.model)
        .into_iter()
        .chain(
            weights(&trainer.disc)
                .into_iter()
                .map(|(n, v)| (format!("disc.{n}"), v)),
        )
        .collect();
    for (name, view) in after.tensors() {
        let theirs: Vec<f32> = view
            .data()
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let mine = &ours[&name];
        let diff = mine
            .iter()
            .zip(&theirs)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff < 2e-5,
            "{name} after the step differs from taming by {diff}"
        );
    }
}

#[test]
fn decoder_only_training_from_a_bundle_keeps_the_encoder_and_codebook() {
    let exe = env!("CARGO_BIN_EXE_sundae");
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/vqgan-tiny.toml");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&std::ffi::OsStr]| Command::new(exe).args(args).output().unwrap();
    let start = dir.path().join("start");
    let model = tiny_config().model;
    let random = sundae::vqgan::VqGan::new(&model, &device::cpu());
    sundae::bundle::save_vqgan(&start, &model, &random, sundae::bundle::Storage::F32).unwrap();
    // The tiny recipe, decoder only, with the discriminator from the first step.
    let text = std::fs::read_to_string(&tiny)
        .unwrap()
        .replace("restart_dead_codes = true", "restart_dead_codes = false")
        .replace("disc_start = 10", "disc_start = 0\ndecoder_only = true");
    let config = dir.path().join("decoder.toml");
    std::fs::write(&config, text).unwrap();
    let sharpened = dir.path().join("sharpened");
    let trained = run(&[
        "vqgan".as_ref(),
        "train".as_ref(),
        "--data".as_ref(),
        "emoji".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--run".as_ref(),
        dir.path().join("run").as_os_str(),
        "--init".as_ref(),
        start.as_os_str(),
        "--bundle".as_ref(),
        sharpened.as_os_str(),
    ]);
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );

    let (_, before) = sundae::bundle::load_vqgan(&start, &device::cpu()).unwrap();
    let (_, after) = sundae::bundle::load_vqgan(&sharpened, &device::cpu()).unwrap();
    let (before, after) = (weights(&before), weights(&after));
    let mut moved = Vec::new();
    for ((name, x), (_, y)) in before.iter().zip(&after) {
        let frozen = ["encoder.", "quant_conv.", "quantize."]
            .iter()
            .any(|p| name.starts_with(p));
        if frozen {
            assert_eq!(x, y, "{name} changed in decoder-only training");
        } else if x != y {
            moved.push(name.clone());
        }
    }
    assert!(moved.iter().any(|n| n.starts_with("decoder.")), "{moved:?}");
    assert!(moved.iter().any(|n| n.starts_with("post_quant_conv.")));

    // A bundle of another architecture is refused with a clear error.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("n_embed = 16", "n_embed = 32"),
    )
    .unwrap();
    let refused = run(&[
        "vqgan".as_ref(),
        "train".as_ref(),
        "--data".as_ref(),
        "emoji".as_ref(),
        "--config".as_ref(),
        other.as_os_str(),
        "--run".as_ref(),
        dir.path().join("refused").as_os_str(),
        "--init".as_ref(),
        start.as_os_str(),
    ]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("architecture differs"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn warmup_and_decay_scale_each_steps_update() {
    let device = device::cpu().autodiff();
    // One step from the taming fixture's weights, with the discriminator active: returns every
    // weight's change.
    let step_change = |warmup_steps: u64, decay_steps: u64| {
        let mut trainer = taming_step_trainer(&device, |config| {
            config.train.run.steps = 10;
            config.train.run.warmup_steps = warmup_steps;
            config.train.run.decay_steps = decay_steps;
        });
        let all = |t: &VqGanTrainer| {
            let mut w = weights(&t.model);
            w.extend(weights(&t.disc));
            w
        };
        let before = all(&trainer);
        let x = taming_step_input(&device);
        // The rate the step reports using (and logs to metrics.jsonl).
        let rate = trainer.step(x).unwrap().learning_rate;
        let changes: Vec<(String, Vec<f32>)> = before
            .into_iter()
            .zip(all(&trainer))
            .map(|((name, b), (_, a))| (name, a.iter().zip(&b).map(|(a, b)| a - b).collect()))
            .collect();
        (rate, changes)
    };
    let (full_rate, full) = step_change(0, 0);
    // Step 1 of 10: warmup over 4 steps gives 1/4 of the rate; a decay over the last 20 (longer
    // than the run) gives 10/20 of it.
    let (warm_rate, warm) = step_change(4, 0);
    let (decay_rate, decayed) = step_change(0, 20);
    assert_eq!(full_rate, 1e-3);
    assert!((warm_rate - 2.5e-4).abs() < 1e-15, "{warm_rate}");
    assert!((decay_rate - 5e-4).abs() < 1e-15, "{decay_rate}");
    // Adam's first update is the rate times g / (|g| + eps): the rate scales every change.
    for (scale, scaled) in [(0.25f32, &warm), (0.5, &decayed)] {
        let mut compared = 0;
        for ((name, d), (_, s)) in full.iter().zip(scaled) {
            // Batch-norm running statistics are averaged, not optimised.
            if name.contains("running_") {
                continue;
            }
            for (d, s) in d.iter().zip(s) {
                // Weights whose gradient is near zero move by less than the rate; skip them.
                if d.abs() > 0.9e-3 {
                    assert!((s - scale * d).abs() < 1e-6, "{name}: {s} vs {scale} * {d}");
                    compared += 1;
                }
            }
        }
        assert!(compared > 1000, "only {compared} weights compared");
    }
}

#[test]
fn every_shipped_vqgan_config_reads() {
    let configs = common::read_every_config("vqgan-", 4, VqGanTrainConfig::read);
    // The built-in decoder's second stage: decoder alone, a falling rate, no discriminator.
    let polish = &configs["vqgan-emoji-polish.toml"];
    assert!(polish.train.decoder_only);
    assert_eq!(polish.train.run.decay_steps, polish.train.run.steps);
    assert!(polish.train.disc_start > polish.train.run.steps);
}

#[test]
fn every_shipped_decoder_config_reads() {
    common::read_every_config("decoder-", 4, RenderTrainConfig::read);
}
