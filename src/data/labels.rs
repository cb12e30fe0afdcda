//! Label sets: the named kinds of label a data set's images carry (`style`, `name`, `group`) and the
//! values each takes. A latent set's manifest records them, a prior embeds one table per set, and a
//! bundle keeps them (`labels.json`) so that `--label name=red-heart` finds its index. Index
//! `values.len()` of every set is its null value: the label left out (dropped in training, not asked
//! for when sampling).

use super::Labels;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The bundle and run file that holds a prior's label sets.
pub const LABELS_FILE: &str = "labels.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSet {
    pub name: String,
    /// Sorted, unique.
    pub values: Vec<String>,
}

impl LabelSet {
    /// The index of the null value (one past the last real value).
    pub fn null(&self) -> i64 {
        self.values.len() as i64
    }
}

/// The label sets of a data set, in a fixed order (sorted by name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSets {
    pub sets: Vec<LabelSet>,
}

impl LabelSets {
    /// Every label set and value that occurs among `labels`.
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a Labels>) -> Self {
        let mut found: std::collections::BTreeMap<&str, BTreeSet<&str>> = Default::default();
        for one in labels {
            for (set, value) in one {
                found.entry(set).or_default().insert(value);
            }
        }
        Self {
            sets: found
                .into_iter()
                .map(|(name, values)| LabelSet {
                    name: name.to_string(),
                    values: values.into_iter().map(str::to_string).collect(),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// One index per set for an image's labels; a set the image lacks gets its null value.
    pub fn indices(&self, labels: &Labels) -> Vec<i64> {
        self.sets
            .iter()
            .map(|set| {
                labels
                    .get(&set.name)
                    .and_then(|v| set.values.binary_search(v).ok())
                    .map_or(set.null(), |i| i as i64)
            })
            .collect()
    }

    /// An image's labels by name from one index per set (`indices`' inverse); a null index (a set left
    /// out) is not listed.
    pub fn names(&self, indices: &[i64]) -> Labels {
        self.sets
            .iter()
            .zip(indices)
            .filter_map(|(set, &i)| {
                let value = set.values.get(usize::try_from(i).ok()?)?;
                Some((set.name.clone(), value.clone()))
            })
            .collect()
    }

    /// Every set at its null value: no label asked for.
    pub fn nulls(&self) -> Vec<i64> {
        self.sets.iter().map(LabelSet::null).collect()
    }

    /// The position of the set called `name`; an unknown one is one error line naming those known.
    fn set_index(&self, name: &str) -> Result<usize> {
        match self.sets.iter().position(|s| s.name == name) {
            Some(at) => Ok(at),
            None => {
                let names: Vec<&str> = self.sets.iter().map(|s| s.name.as_str()).collect();
                bail!(
                    "unknown label set '{name}': this model knows {}",
                    names.join(", ")
                )
            }
        }
    }

    /// Indices for `SET=VALUE` requests (sets not named stay null). An unknown set or value is one
    /// error line that names the closest known ones.
    pub fn parse_requests(&self, requests: &[String]) -> Result<Vec<i64>> {
        if self.is_empty() && !requests.is_empty() {
            bail!("this model has no label sets: it cannot take --label");
        }
        let mut indices = self.nulls();
        for request in requests {
            let (set, value) = request
                .split_once('=')
                .with_context(|| format!("--label '{request}' is not SET=VALUE"))?;
            let at = self.set_index(set)?;
            let known = &self.sets[at];
            match known.values.binary_search_by(|v| v.as_str().cmp(value)) {
                Ok(i) => indices[at] = i as i64,
                Err(_) => bail!(
                    "unknown {set} '{value}': the nearest known are {}",
                    nearest(value, &known.values, 3).join(", ")
                ),
            }
        }
        Ok(indices)
    }

    /// The indices of the sets named in `random` (`--random-label SET`), each drawn per image; a set
    /// also fixed in `fixed` (`parse_requests`' indices: not null), named twice, or unknown is one
    /// error line.
    pub fn parse_random(&self, random: &[String], fixed: &[i64]) -> Result<Vec<usize>> {
        if self.is_empty() && !random.is_empty() {
            bail!("this model has no label sets: it cannot take --random-label");
        }
        let mut sets = Vec::new();
        for name in random {
            let at = self.set_index(name)?;
            if fixed.get(at).is_some_and(|&i| i != self.sets[at].null()) {
                bail!("label set '{name}' is given both by --label and by --random-label");
            }
            if sets.contains(&at) {
                bail!("--random-label names '{name}' twice");
            }
            sets.push(at);
        }
        Ok(sets)
    }

    /// The sets of `names` (a bundle's default random sets) that `fixed` leaves null, as
    /// `parse_random` gives them: a set fixed by `--label` is not drawn.
    pub fn default_random(&self, names: &[String], fixed: &[i64]) -> Result<Vec<usize>> {
        let free: Vec<String> = names
            .iter()
            .filter(|name| {
                self.set_index(name)
                    .map_or(true, |at| fixed.get(at) == Some(&self.sets[at].null()))
            })
            .cloned()
            .collect();
        self.parse_random(&free, fixed)
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(LABELS_FILE);
        if !path.is_file() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::bundle::write_atomic(
            &dir.join(LABELS_FILE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    /// Names and sizes, as a prior's configuration states them.
    pub fn sizes(&self) -> Vec<(String, usize)> {
        self.sets
            .iter()
            .map(|s| (s.name.clone(), s.values.len()))
            .collect()
    }
}

/// The `count` values closest to `query` by edit distance (ties in sorted order).
pub fn nearest(query: &str, values: &[String], count: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = values
        .iter()
        .map(|v| (edit_distance(query, v), v))
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(count)
        .map(|(_, v)| v.clone())
        .collect()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
