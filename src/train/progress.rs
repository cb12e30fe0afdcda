//! Progress of long work: a bar with rate and ETA on a terminal, plain periodic lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    every: u64,
    started: Instant,
    start_step: u64,
}

impl Progress {
    /// Progress over steps `start..total`, printing a plain line every `every` steps off a terminal.
    pub fn new(what: &str, start: u64, total: u64, every: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            bar.set_position(start);
            bar
        });
        Self {
            bar,
            total,
            every: every.max(1),
            started: Instant::now(),
            start_step: start,
        }
    }

    /// Reports that `step` (1-based count of finished steps) is done, with a short status.
    pub fn update(&self, step: u64, status: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(step);
                bar.set_message(status.to_string());
            }
            None if step.is_multiple_of(self.every) || step == self.total => {
                let done = (step - self.start_step) as f64;
                let elapsed = self.started.elapsed().as_secs_f64();
                let eta = if done > 0.0 {
                    (self.total - step) as f64 * elapsed / done
                } else {
                    0.0
                };
                eprintln!("step {step}/{} {status} eta {:.0}s", self.total, eta);
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
