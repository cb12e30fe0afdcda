//! The training loop both trainers share: resume, batches, progress, metrics, samples, checkpoints.

use super::{BatchStream, Progress, RunDir};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use std::path::Path;
use std::time::Instant;

/// A trainer whose whole state can be written into a checkpoint directory and read back.
pub trait Checkpointed {
    /// Steps completed.
    fn steps_done(&self) -> u64;
    fn save(&self, dir: &Path) -> Result<()>;
    fn load(&mut self, dir: &Path) -> Result<()>;
}

/// How often the loop logs, samples and checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    pub steps: u64,
    pub log_every: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    pub keep_every: u64,
    /// Items per batch, for the throughput figure.
    pub batch_items: usize,
}

/// What one step reports: metrics for `metrics.jsonl` and a short status for the progress line.
pub struct StepOutcome {
    pub metrics: serde_json::Value,
    pub status: String,
}

/// Restores the latest checkpoint of `run` into `trainer`, if any, and drops metrics logged after it.
pub fn resume_latest<T: Checkpointed>(run: &RunDir, trainer: &mut T) -> Result<()> {
    if let Some((step, dir)) = run.latest()? {
        trainer.load(&dir)?;
        run.truncate_metrics(step)?;
        eprintln!("resumed from step {step}");
    }
    Ok(())
}

/// Trains until `cadence.steps`: `step` consumes a batch, `sample` adds figures (and writes images)
/// every `sample_every` steps and at the end.
pub fn fit<T: Checkpointed, B: Send + 'static>(
    what: &str,
    run: &RunDir,
    trainer: &mut T,
    cadence: Cadence,
    batches: BatchStream<B>,
    mut step: impl FnMut(&mut T, B) -> Result<StepOutcome>,
    mut sample: impl FnMut(&T, u64) -> Result<serde_json::Value>,
) -> Result<()> {
    let progress = Progress::new(what, trainer.steps_done(), cadence.steps, cadence.log_every);
    let mut last_log = (Instant::now(), trainer.steps_done());
    while trainer.steps_done() < cadence.steps {
        let (batch_step, batch) = batches.next();
        if batch_step != trainer.steps_done() {
            bail!(
                "internal error: batch {batch_step} arrived for step {}",
                trainer.steps_done()
            );
        }
        let outcome = step(trainer, batch).with_context(|| last_good(run))?;
        let done = trainer.steps_done();
        progress.update(done, &outcome.status);
        let sampling = done.is_multiple_of(cadence.sample_every.max(1)) || done == cadence.steps;
        if done.is_multiple_of(cadence.log_every.max(1)) || sampling {
            let mut record = outcome.metrics;
            let seconds = last_log.0.elapsed().as_secs_f64().max(1e-9);
            record["items_per_second"] =
                (((done - last_log.1) as usize * cadence.batch_items) as f64 / seconds).into();
            if sampling && let serde_json::Value::Object(extra) = sample(trainer, done)? {
                record
                    .as_object_mut()
                    .expect("metrics are an object")
                    .extend(extra);
            }
            // Sampling time stays out of the next interval's throughput.
            last_log = (Instant::now(), done);
            run.log_metrics(&record)?;
        }
        if done.is_multiple_of(cadence.checkpoint_every.max(1)) || done == cadence.steps {
            run.save_checkpoint(done, cadence.keep_every, |dir| trainer.save(dir))?;
        }
    }
    progress.finish();
    Ok(())
}

fn last_good(run: &RunDir) -> String {
    match run.latest() {
        Ok(Some((step, _))) => format!("training stopped; the last good checkpoint is step {step}"),
        _ => "training stopped before its first checkpoint".to_string(),
    }
}

/// Writes a module with its parameter ids (so optimizer state still matches after loading).
pub fn save_module<M: Module>(module: &M, dir: &Path, name: &str) -> Result<()> {
    module
        .save_into(&mut BurnpackStore::from_file(dir.join(name)))
        .map_err(|e| anyhow::anyhow!("cannot write {name}: {e}"))
}

pub fn load_module<M: Module>(module: &mut M, dir: &Path, name: &str) -> Result<()> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!("checkpoint {} lacks {name}", dir.display());
    }
    module
        .load_from(&mut BurnpackStore::from_file(path))
        .map_err(|e| anyhow::anyhow!("cannot read {name} from {}: {e}", dir.display()))?;
    Ok(())
}

pub fn save_optimizer(optim: &ModuleOptimizer, dir: &Path, name: &str) -> Result<()> {
    optim
        .save(dir.join(name))
        .map_err(|e| anyhow::anyhow!("cannot write {name}: {e:?}"))
}

pub fn load_optimizer(fresh: ModuleOptimizer, dir: &Path, name: &str) -> Result<ModuleOptimizer> {
    fresh
        .load(dir.join(name))
        .map_err(|e| anyhow::anyhow!("cannot read {name} from {}: {e:?}", dir.display()))
}
