//! Training-loop machinery shared by the VQ-GAN and prior trainers: the run directory,
//! atomic checkpoints, metrics, progress, deterministic data order and a loader thread.

pub mod batches;
pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod fit;
pub mod progress;
pub mod rng;
pub mod schedule;
pub mod settings;

pub use batches::BatchStream;
pub use checkpoint::RunDir;
pub use progress::Progress;
pub use rng::SplitMix;
