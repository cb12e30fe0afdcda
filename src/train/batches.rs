//! Deterministic batch order with loading on another thread.
//! Batch k holds items k*B .. (k+1)*B of an endless stream made of one fresh permutation
//! of the data set per epoch, so training can restart at any step and see the same batches.

use super::rng::SplitMix;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

/// Item indices of batch `step` (wrapping across epochs).
pub fn batch_indices(seed: u64, len: usize, batch: usize, step: u64) -> Vec<usize> {
    let first = step as usize * batch;
    let mut epoch = usize::MAX;
    let mut order = Vec::new();
    (first..first + batch)
        .map(|position| {
            if position / len != epoch {
                epoch = position / len;
                order = SplitMix::keyed(seed, super::rng::streams::SHUFFLE, epoch as u64)
                    .permutation(len);
            }
            order[position % len]
        })
        .collect()
}

/// Batches prepared ahead of the model by a background thread.
pub struct BatchStream<T> {
    receiver: Receiver<(u64, T)>,
    _worker: JoinHandle<()>,
}

impl<T: Send + 'static> BatchStream<T> {
    /// Starts producing batches from `start_step` on; `make` builds a batch from item indices.
    pub fn new<D: Send + Sync + 'static>(
        data: Arc<D>,
        len: usize,
        batch: usize,
        seed: u64,
        start_step: u64,
        make: impl Fn(&D, &[usize]) -> T + Send + 'static,
    ) -> Self {
        let (sender, receiver) = sync_channel(4);
        let worker = std::thread::spawn(move || {
            for step in start_step.. {
                let batch = make(&data, &batch_indices(seed, len, batch, step));
                if sender.send((step, batch)).is_err() {
                    break;
                }
            }
        });
        Self {
            receiver,
            _worker: worker,
        }
    }

    /// The next batch and the step it belongs to.
    pub fn next(&self) -> (u64, T) {
        self.receiver
            .recv()
            .expect("the batch loader thread stopped")
    }
}
