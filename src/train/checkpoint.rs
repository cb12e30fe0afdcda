//! The run directory (ARCHITECTURE.md): `config.toml`, `checkpoint/`, `metrics.jsonl`, `samples/`.
//! A checkpoint is a directory written under a temporary name and renamed into place, and
//! `checkpoint/latest` names the newest one, so a kill at any moment leaves a readable checkpoint.

use crate::bundle::write_atomic;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};

const LATEST: &str = "latest";
/// The file in a checkpoint that holds the trainer's own state (its step, and what else it keeps).
pub const STATE: &str = "state.json";

/// Writes a trainer's typed state into checkpoint directory `dir`.
pub fn write_state<T: serde::Serialize>(dir: &Path, state: &T) -> Result<()> {
    write_atomic(&dir.join(STATE), serde_json::to_string(state)?.as_bytes())
}

/// Reads the typed state a trainer wrote into checkpoint directory `dir`.
pub fn read_state<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T> {
    let path = dir.join(STATE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
/// Held by the process training in a run directory; holds its PID.
pub const LOCK: &str = "run.lock";

pub struct RunDir {
    pub root: PathBuf,
    /// Held while a trainer writes here (see `open`); None for a run only read.
    _lock: Option<RunLock>,
}

/// A run directory's lock file, removed when dropped (the trainer's end, or an error).
pub struct RunLock {
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a process with this PID is running (Linux: /proc; elsewhere assumed running).
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl RunLock {
    /// Takes `dir`'s lock: refused while a running process holds it; a lock left by a process that
    /// no longer runs (a crash, a kill) is taken over with a message.
    pub fn take(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    match holder.trim().parse::<u32>() {
                        Ok(pid) if process_alive(pid) => bail!(
                            "{} is in use by process {pid} (its {LOCK}); wait for it to finish or stop it",
                            dir.display()
                        ),
                        _ => {
                            eprintln!(
                                "taking over {}: its holder (process {}) is no longer running",
                                path.display(),
                                holder.trim()
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        bail!(
            "cannot take {}: another process keeps taking it",
            path.display()
        )
    }
}

impl RunDir {
    /// A run directory to read (its config and checkpoints), without taking its lock.
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            _lock: None,
        }
    }

    /// Opens a run directory to train in, holding its lock (`RunLock`) until dropped. A fresh run
    /// refuses a directory that already holds a checkpoint; `resume` requires one.
    pub fn open(root: &Path, resume: bool) -> Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let run = Self {
            root: root.to_path_buf(),
            _lock: Some(RunLock::take(root)?),
        };
        let latest = run.latest()?;
        match (resume, latest) {
            (true, None) => bail!(
                "--resume: {} holds no checkpoint to resume from",
                root.display()
            ),
            (false, Some(_)) => bail!(
                "{} already holds a training run; pass --resume to continue it or choose a new directory",
                root.display()
            ),
            _ => {}
        }
        for dir in [run.checkpoints(), run.samples()] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(run)
    }

    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// The newest complete checkpoint's directory; a run without one is an error naming the run.
    pub fn latest_required(&self) -> Result<PathBuf> {
        Ok(self
            .latest()?
            .with_context(|| format!("{} holds no checkpoint", self.root.display()))?
            .1)
    }

    /// The newest complete checkpoint: its step and directory.
    pub fn latest(&self) -> Result<Option<(u64, PathBuf)>> {
        let pointer = self.checkpoints().join(LATEST);
        let Ok(name) = std::fs::read_to_string(&pointer) else {
            return Ok(None);
        };
        let name = name.trim();
        let step = name
            .strip_prefix("step-")
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{}: unexpected content '{name}'", pointer.display()))?;
        let dir = self.checkpoints().join(name);
        if !dir.is_dir() {
            bail!(
                "{} names {}, which does not exist",
                pointer.display(),
                dir.display()
            );
        }
        Ok(Some((step, dir)))
    }

    /// Writes a checkpoint for `step` with `write` (which fills the directory it is given),
    /// points `latest` at it, and removes older ones that are not multiples of `keep_every`.
    pub fn save_checkpoint(
        &self,
        step: u64,
        keep_every: u64,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let name = format!("step-{step:08}");
        let final_dir = self.checkpoints().join(&name);
        let tmp_dir = self.checkpoints().join(format!("{name}.tmp"));
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir)?;
        }
        std::fs::create_dir_all(&tmp_dir)?;
        write(&tmp_dir)?;
        sync_dir(&tmp_dir);
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir)?;
        }
        std::fs::rename(&tmp_dir, &final_dir)
            .with_context(|| format!("cannot move the checkpoint into {}", final_dir.display()))?;
        write_atomic(&self.checkpoints().join(LATEST), name.as_bytes())?;
        self.prune(step, keep_every)
    }

    fn prune(&self, latest: u64, keep_every: u64) -> Result<()> {
        for entry in std::fs::read_dir(self.checkpoints())?.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(step) = name.strip_prefix("step-") else {
                continue;
            };
            let stale_tmp = step.ends_with(".tmp");
            let old = step
                .parse::<u64>()
                .is_ok_and(|s| s != latest && (keep_every == 0 || s % keep_every != 0));
            if stale_tmp || old {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    /// Keeps only the metric lines up to `step`, so a resumed run does not repeat the steps
    /// that were logged after its checkpoint.
    pub fn truncate_metrics(&self, step: u64) -> Result<()> {
        let path = self.metrics_path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let kept: String = text
            .lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                    .is_some_and(|s| s <= step)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        write_atomic(&path, kept.as_bytes())
    }

    /// Appends one JSON object as a line of `metrics.jsonl`.
    pub fn log_metrics(&self, record: &serde_json::Value) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.metrics_path())?;
        writeln!(file, "{record}")?;
        Ok(())
    }
}

/// Flushes a directory's files to disk before the rename publishes them.
fn sync_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if let Ok(file) = std::fs::File::open(entry.path()) {
                let _ = file.sync_all();
            }
        }
    }
}
