//! The first stage: a taming-transformers compatible VQ-GAN.

pub mod batch;
pub mod blocks;
pub mod codebook;
pub mod config;
pub mod decoder;
pub mod discriminator;
pub mod encoder;
pub mod import;
pub mod loss;
pub mod lpips;
pub mod model;
pub mod quantize;
pub mod render;
pub mod render_train;
pub mod train;

pub use config::VqGanConfig;
pub use model::VqGan;
