//! `sundae labels`: the label sets a generator knows and their values.

use crate::data::labels::LabelSets;
use anyhow::{Context, Result};
use std::path::Path;

/// Each set with its first values, or (`set`) every value of one set, one per line.
pub fn labels(model: &Path, set: Option<&str>) -> Result<super::Done> {
    crate::bundle::read_vqgan_config(model)?;
    let sets = LabelSets::read(model)?;
    if sets.is_empty() {
        return Ok(super::Done(format!(
            "{} has no label sets: it samples unconditionally",
            model.display()
        )));
    }
    let lines: Vec<String> = match set {
        Some(name) => {
            let found = sets.sets.iter().find(|s| s.name == name).with_context(|| {
                let names: Vec<&str> = sets.sets.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "unknown label set '{name}': this model knows {}",
                    names.join(", ")
                )
            })?;
            found.values.clone()
        }
        None => sets
            .sets
            .iter()
            .map(|s| {
                let shown: Vec<&str> = s.values.iter().take(8).map(String::as_str).collect();
                let more = if s.values.len() > 8 { ", ..." } else { "" };
                format!(
                    "{} ({} values): {}{more}",
                    s.name,
                    s.values.len(),
                    shown.join(", ")
                )
            })
            .chain(std::iter::once(
                "use: --label SET=VALUE (repeatable); --set NAME lists all values of a set"
                    .to_string(),
            ))
            .collect(),
    };
    Ok(super::Done(lines.join("\n")))
}
