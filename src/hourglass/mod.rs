//! The 2D-aware hourglass transformer (SPEC.md 4, DECISIONS.md Q1-Q3): the SUNDAE prior's network.

pub mod config;
pub mod layers;
pub mod model;
pub mod resample;
pub mod rotary;

pub use config::PriorConfig;
pub use model::{Conditions, Prior};
