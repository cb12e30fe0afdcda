//! The command layer: what each CLI command does, as library functions that take the parsed request
//! and return a report (`Display`) for `main.rs` to print. It joins the pipeline's pieces (data,
//! VQ-GAN, prior, sampler, bundles, files); nothing below it imports it.

pub mod bench;
pub mod data;
pub mod generate;
pub mod labels;
pub mod nearest;
pub mod pairs;
pub mod prior;
pub mod score;
pub mod vqgan;

/// A report that is one line: what was done.
pub struct Done(pub String);

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
