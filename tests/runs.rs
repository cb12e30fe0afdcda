//! Run directories: one process at a time (a lock with its PID, taken over when stale), and a finished
//! run extended by resuming with a configuration that changes only its schedule.

mod common;

use common::{fails, root, s};
use std::path::{Path, PathBuf};

/// Tiny latents (the fixture VQ-GAN on the validation emoji) and a tiny prior config of `steps`.
fn tiny_setup(dir: &Path, steps: u64) -> (PathBuf, PathBuf) {
    let latents = common::tiny_latents(dir);
    let config = dir.join(format!("prior-{steps}.toml"));
    let tiny = std::fs::read_to_string(root("configs/prior-tiny.toml")).unwrap();
    std::fs::write(
        &config,
        tiny.replace("steps = 20", &format!("steps = {steps}")),
    )
    .unwrap();
    (latents, config)
}

fn train(latents: &Path, config: &Path, run: &Path, resume: bool) -> std::process::Output {
    let mut args = vec![
        "train",
        "--latents",
        s(latents),
        "--config",
        s(config),
        "--run",
        s(run),
    ];
    if resume {
        args.push("--resume");
    }
    common::sundae(&args)
}

fn latest_step(run: &Path) -> String {
    std::fs::read_to_string(run.join("checkpoint/latest"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_run_directory_held_by_a_running_process_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let (latents, config) = tiny_setup(temp.path(), 20);
    let run = temp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    // This test's own process is alive: it holds the lock.
    std::fs::write(run.join("run.lock"), std::process::id().to_string()).unwrap();
    let out = train(&latents, &config, &run, false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("is in use by process {}", std::process::id())),
        "{stderr}"
    );
    assert!(!run.join("config.toml").exists(), "nothing written");
    assert!(run.join("run.lock").exists(), "the holder's lock stays");
}

#[test]
fn a_stale_lock_from_a_process_that_died_is_taken_over_and_released_at_the_end() {
    let temp = tempfile::tempdir().unwrap();
    let (latents, config) = tiny_setup(temp.path(), 10);
    let run = temp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(run.join("run.lock"), dead.to_string()).unwrap();
    let out = train(&latents, &config, &run, false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("its holder (process {dead}) is no longer running")),
        "{stderr}"
    );
    assert!(
        !run.join("run.lock").exists(),
        "released when training ends"
    );
    assert_eq!(latest_step(&run), "step-00000010");
}

#[test]
fn a_finished_run_extends_with_a_longer_schedule_and_refuses_other_changes() {
    let temp = tempfile::tempdir().unwrap();
    let (latents, short) = tiny_setup(temp.path(), 10);
    let run = temp.path().join("run");
    assert!(train(&latents, &short, &run, false).status.success());
    assert_eq!(latest_step(&run), "step-00000010");

    // More steps: accepted, printed, and trained to the new end.
    let (_, long) = tiny_setup(temp.path(), 15);
    let out = train(&latents, &long, &run, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming with train.steps = 15 (was 10)")
    );
    assert_eq!(latest_step(&run), "step-00000015");
    assert!(
        std::fs::read_to_string(run.join("config.toml"))
            .unwrap()
            .contains("steps = 15")
    );

    // Another learning rate is no schedule change: refused in one line naming the field.
    let other = temp.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&long)
            .unwrap()
            .replace("learning_rate = 1e-3", "learning_rate = 5e-4"),
    )
    .unwrap();
    let error = fails(&[
        "train",
        "--latents",
        s(&latents),
        "--config",
        s(&other),
        "--run",
        s(&run),
        "--resume",
    ]);
    assert!(
        error.contains("train.learning_rate differs from the run's (0.001 -> 0.0005)"),
        "{error}"
    );
    // Without --config the run resumes with its own configuration, and a finished run stays finished.
    let out = common::sundae(&[
        "train",
        "--latents",
        s(&latents),
        "--run",
        s(&run),
        "--resume",
    ]);
    assert!(out.status.success());
    assert_eq!(latest_step(&run), "step-00000015");
}

#[test]
fn a_prior_config_may_leave_the_grid_and_vocabulary_to_the_latents_but_not_contradict_them() {
    let temp = tempfile::tempdir().unwrap();
    let (latents, config) = tiny_setup(temp.path(), 5);
    let text = std::fs::read_to_string(&config).unwrap();
    let bare = temp.path().join("bare.toml");
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("vocab_size") && !l.starts_with("grid_"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&bare, &without).unwrap();
    let run = temp.path().join("run");
    assert!(train(&latents, &bare, &run, false).status.success());
    let used = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        used.contains("vocab_size = 16") && used.contains("grid_height = 8"),
        "{used}"
    );

    let wrong = temp.path().join("wrong.toml");
    std::fs::write(&wrong, text.replace("vocab_size = 16", "vocab_size = 32")).unwrap();
    let error = fails(&[
        "train",
        "--latents",
        s(&latents),
        "--config",
        s(&wrong),
        "--run",
        s(&temp.path().join("run2")),
    ]);
    assert!(
        error.contains("grids of 16 codes, but the prior models 8x8 grids of 32"),
        "{error}"
    );
}
