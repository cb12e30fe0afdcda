//! The configuration a run trains with: a fresh run's, written into the run directory; a resumed run's
//! own; or, on `--resume --config NEW`, NEW when it differs only in how long and how often (to extend a
//! finished run), every change printed. Any other difference is refused, naming the field.

use super::RunDir;
use crate::bundle::write_atomic;
use anyhow::{Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::Path;

/// Fields a resumed run may change: the length of the run, its schedule's end, and its cadence.
pub const SCHEDULE_FIELDS: [&str; 9] = [
    "train.steps",
    "train.decay_steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_every",
    "train.sample_every",
    "train.samples",
    "train.sample_steps",
    "train.validation_images",
];

/// Every leaf of a serialised configuration by dotted path (`train.steps` -> `5000`).
fn leaves<T: Serialize>(config: &T) -> Result<BTreeMap<String, String>> {
    fn walk(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, inner) in table {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, inner, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &toml::Value::try_from(config)?, &mut out);
    Ok(out)
}

/// The fields where `new` differs from `old`: (path, old value, new value); a missing side is "-".
pub fn differences<T: Serialize>(old: &T, new: &T) -> Result<Vec<(String, String, String)>> {
    let (a, b) = (leaves(old)?, leaves(new)?);
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    Ok(keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |m: &BTreeMap<String, String>| m.get(k).cloned().unwrap_or("-".into());
            (k.clone(), show(&a), show(&b))
        })
        .collect())
}

/// The configuration `run` trains with (see the module comment). `read` parses and checks a file;
/// `complete` fills what a configuration may leave to the data (e.g. label-set sizes).
pub fn run_config<T: Serialize + DeserializeOwned>(
    run: &RunDir,
    config_path: Option<&Path>,
    resume: bool,
    read: impl Fn(&Path) -> Result<T>,
    complete: impl Fn(&mut T) -> Result<()>,
) -> Result<T> {
    let write = |config: &T| write_atomic(&run.config_path(), toml::to_string(config)?.as_bytes());
    let fresh = |path: &Path| -> Result<T> {
        let mut config = read(path)?;
        complete(&mut config).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
        Ok(config)
    };
    match (resume, config_path) {
        (false, Some(path)) => {
            let config = fresh(path)?;
            write(&config)?;
            Ok(config)
        }
        (false, None) => bail!("a new run needs --config"),
        (true, None) => read(&run.config_path()),
        (true, Some(path)) => {
            let old = read(&run.config_path())?;
            let new = fresh(path)?;
            let changes = differences(&old, &new)?;
            if let Some((field, was, now)) = changes
                .iter()
                .find(|(field, _, _)| !SCHEDULE_FIELDS.contains(&field.as_str()))
            {
                bail!(
                    "--resume --config {}: {field} differs from the run's ({was} -> {now}); a resumed run may change only {}",
                    path.display(),
                    SCHEDULE_FIELDS
                        .map(|f| f.trim_start_matches("train."))
                        .join(", ")
                );
            }
            for (field, was, now) in &changes {
                eprintln!("resuming with {field} = {now} (was {was})");
            }
            if !changes.is_empty() {
                write(&new)?;
            }
            Ok(new)
        }
    }
}
