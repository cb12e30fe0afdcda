//! `sundae sample` and `sundae inpaint`: a generation job run, its files written (see
//! `crate::generate`), and the line that says what was made.

use crate::generate::{InpaintInput, Job, Report};
use anyhow::Result;
use burn::tensor::Device;
use std::fmt;
use std::path::PathBuf;

/// What a generation made and where its grid went.
pub struct Generated {
    pub report: Report,
    pub out: PathBuf,
}

impl fmt::Display for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.report.line(), self.out.display())
    }
}

pub fn sample(job: &Job, device: &Device) -> Result<Generated> {
    Ok(Generated {
        report: crate::generate::sample_images(job, device)?,
        out: job.outputs.grid.clone(),
    })
}

pub fn inpaint(job: &Job, input: &InpaintInput, device: &Device) -> Result<Generated> {
    Ok(Generated {
        report: crate::generate::inpaint(job, input, device)?,
        out: job.outputs.grid.clone(),
    })
}
