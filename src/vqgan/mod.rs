//! The first stage: a taming-transformers compatible VQ-GAN.

pub mod blocks;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod import;
pub mod model;
pub mod quantize;

pub use config::VqGanConfig;
pub use model::VqGan;
