//! Progress of long work other than training (sampling, encoding, features, searching): a bar with a
//! rate and an ETA on a terminal, drawn at once; plain lines off a terminal (logs, CI), at most one
//! every ten seconds, and one at the end of work that took more than a few seconds.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const LINE_EVERY: Duration = Duration::from_secs(10);
/// Work shorter than this ends without a closing line off a terminal.
const QUIET_UNDER: Duration = Duration::from_secs(3);

pub struct Bar {
    bar: Option<ProgressBar>,
    what: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
}

/// Progress over `total` units of `what` (e.g. "sampling steps").
pub fn bar(total: usize, what: &str) -> Bar {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar.tick();
        bar
    });
    let now = Instant::now();
    Bar {
        bar,
        what: what.to_string(),
        total: total as u64,
        done: AtomicU64::new(0),
        started: now,
        last_line: Mutex::new(now),
    }
}

impl Bar {
    /// `n` more units done (safe from several threads).
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                let mut last = self.last_line.lock().expect("progress lock");
                if last.elapsed() >= LINE_EVERY && done < self.total {
                    *last = Instant::now();
                    self.line(done);
                }
            }
        }
    }

    fn line(&self, done: u64) {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-9);
        let eta = (self.total.saturating_sub(done)) as f64 / rate.max(1e-9);
        eprintln!(
            "{} {done}/{} ({:.0} %), {rate:.1}/s, {elapsed:.0} s so far, eta {eta:.0} s",
            self.what,
            self.total,
            100.0 * done as f64 / self.total.max(1) as f64
        );
    }

    /// Clears the bar (terminal) or prints the closing line (elsewhere).
    pub fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None if self.total > 0 && self.started.elapsed() >= QUIET_UNDER => {
                self.line(self.done.load(Ordering::Relaxed))
            }
            None => {}
        }
    }
}
