//! sundae: megapixel image generation with a VQ-GAN and a SUNDAE prior, on burn.
//!
//! The model code (`vqgan`, `hourglass`, `sundae`) knows nothing about files; `bundle`, `data` and
//! `tokens` move things between disk and tensors; `train` is the loop both trainers share;
//! `commands` and `generate` wire it all together for the CLI in `main.rs`; `bench` prints figures;
//! `nearest` looks generated images up in a data set; `score` compares image sets by FD, precision
//! and recall.

pub mod bench;
pub mod bundle;
pub mod commands;
pub mod cpu;
pub mod data;
pub mod device;
pub mod files;
pub mod generate;
pub mod hourglass;
pub mod memory;
pub mod nearest;
pub mod pairs;
pub mod progress;
pub mod score;
pub mod serve;
pub mod sundae;
pub mod tokens;
pub mod train;
pub mod vqgan;
