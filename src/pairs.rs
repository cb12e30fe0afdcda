//! Held-out (name, style) pairs: whether a labelled prior draws an emoji in a style it never saw that
//! emoji drawn in. The split holds out single drawings (an emoji in one style) while the same emoji's
//! other styles stay in training, so such a pair tests generalisation across the two label sets.
//! Each held-out drawing is generated from its `name` and `style` labels and compared by PSNR with
//! the true drawing; the bar it must clear is the same emoji as the other styles draw it, compared
//! with the true drawing the same way: a model that only learnt the name would score like them, one
//! that also applies the style scores higher.

use crate::data::images::psnr;
use crate::data::labels::LabelSets;
use crate::data::{Labels, Sample};
use std::collections::BTreeMap;

/// The label sets a pair is drawn from.
pub const PAIR_SETS: [&str; 2] = ["name", "style"];

/// One held-out drawing and the drawings of the same emoji in the other styles.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Index into the held-out samples.
    pub truth: usize,
    /// Indices into the comparison samples: every other style's drawing of the same name.
    pub others: Vec<usize>,
}

/// A pair's figures, in dB.
#[derive(Debug, Clone, PartialEq)]
pub struct PairScore {
    /// The generated drawing against the true one.
    pub generated: f64,
    /// The closest of the other styles' drawings against the true one.
    pub best_other: f64,
    /// The mean over the other styles' drawings.
    pub mean_other: f64,
}

/// The held-out samples that make a pair: their name and style are values the model knows, and at
/// least one other style draws the same name among `all` (any split). Styles and names come from
/// the samples' labels; a sample without both is no pair.
pub fn find_pairs(held_out: &[Sample], all: &[Sample], known: &LabelSets) -> Vec<Pair> {
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, sample) in all.iter().enumerate() {
        if let Some(name) = sample.labels.get("name") {
            by_name.entry(name).or_default().push(i);
        }
    }
    let knows = |labels: &Labels| {
        PAIR_SETS.iter().all(|set| {
            let value = labels.get(*set);
            known
                .sets
                .iter()
                .find(|s| s.name == *set)
                .zip(value)
                .is_some_and(|(s, v)| s.values.binary_search(v).is_ok())
        })
    };
    held_out
        .iter()
        .enumerate()
        .filter(|(_, sample)| knows(&sample.labels))
        .filter_map(|(truth, sample)| {
            let style = &sample.labels["style"];
            let others: Vec<usize> = by_name
                .get(sample.labels["name"].as_str())?
                .iter()
                .copied()
                .filter(|&i| all[i].labels.get("style") != Some(style))
                .collect();
            (!others.is_empty()).then_some(Pair { truth, others })
        })
        .collect()
}

/// The `--label` requests that draw a pair's held-out sample: its name and its style.
pub fn requests(sample: &Sample) -> Vec<String> {
    PAIR_SETS
        .iter()
        .map(|set| format!("{set}={}", sample.labels[*set]))
        .collect()
}

/// Scores one pair: `generated` and every sample in [-1, 1], CHW, of one size.
pub fn score(generated: &[f32], truth: &Sample, others: &[&Sample]) -> PairScore {
    let theirs: Vec<f64> = others
        .iter()
        .map(|o| psnr(&o.pixels, &truth.pixels))
        .collect();
    PairScore {
        generated: psnr(generated, &truth.pixels),
        best_other: theirs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        mean_other: theirs.iter().sum::<f64>() / theirs.len() as f64,
    }
}

/// What the pairs say together.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub pairs: usize,
    /// Share of pairs whose generated drawing is closer than every other style's drawing.
    pub beats_best: f64,
    /// Share of pairs whose generated drawing is closer than the other styles are on average.
    pub beats_mean: f64,
    pub median_generated: f64,
    pub median_best_other: f64,
    pub median_mean_other: f64,
}

pub fn summarize(scores: &[PairScore]) -> Summary {
    let share = |beats: fn(&PairScore) -> bool| {
        scores.iter().filter(|s| beats(s)).count() as f64 / scores.len().max(1) as f64
    };
    let median =
        |of: fn(&PairScore) -> f64| crate::nearest::median(scores.iter().map(of).collect());
    Summary {
        pairs: scores.len(),
        beats_best: share(|s| s.generated > s.best_other),
        beats_mean: share(|s| s.generated > s.mean_other),
        median_generated: median(|s| s.generated),
        median_best_other: median(|s| s.best_other),
        median_mean_other: median(|s| s.mean_other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::labels::LabelSet;

    fn drawing(name: &str, style: &str, value: f32) -> Sample {
        Sample {
            name: format!("{style}/{name}"),
            pixels: vec![value; 12],
            labels: Labels::from([
                ("name".to_string(), name.to_string()),
                ("style".to_string(), style.to_string()),
            ]),
        }
    }

    fn known(names: &[&str], styles: &[&str]) -> LabelSets {
        let set = |name: &str, values: &[&str]| LabelSet {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        LabelSets {
            sets: vec![set("name", names), set("style", styles)],
        }
    }

    #[test]
    fn a_pair_is_a_known_held_out_drawing_with_other_styles_of_its_name() {
        let all = vec![
            drawing("heart", "noto", 0.0),
            drawing("heart", "twemoji", 0.5),
            drawing("heart", "fluent", 0.2),
            drawing("star", "noto", 0.1),
            drawing("moon", "twemoji", 0.3),
        ];
        let held_out = vec![
            all[0].clone(),                    // heart/noto: two other styles
            all[3].clone(),                    // star: drawn in no other style
            drawing("moon", "noto", 0.3),      // moon/noto: twemoji draws it
            drawing("heart", "openmoji", 0.4), // a style the model does not know
        ];
        let known = known(&["heart", "moon", "star"], &["fluent", "noto", "twemoji"]);
        let pairs = find_pairs(&held_out, &all, &known);
        assert_eq!(
            pairs,
            vec![
                Pair {
                    truth: 0,
                    others: vec![1, 2]
                },
                Pair {
                    truth: 2,
                    others: vec![4]
                },
            ]
        );
        assert_eq!(requests(&held_out[2]), ["name=moon", "style=noto"]);
    }

    #[test]
    fn scores_and_summary_match_hand_computed_psnr() {
        // PSNR with peak-to-peak 2: 10 log10(4 / d^2) for a constant difference d.
        let db = |d: f64| 10.0 * (4.0 / (d * d)).log10();
        let truth = drawing("heart", "noto", 0.0);
        let others = [
            drawing("heart", "twemoji", 0.5),
            drawing("heart", "fluent", 0.25),
        ];
        let refs: Vec<&Sample> = others.iter().collect();
        let s = score(&[0.1; 12], &truth, &refs);
        assert!((s.generated - db(0.1)).abs() < 1e-4, "{s:?}");
        assert!((s.best_other - db(0.25)).abs() < 1e-4, "{s:?}");
        assert!(
            (s.mean_other - (db(0.5) + db(0.25)) / 2.0).abs() < 1e-4,
            "{s:?}"
        );

        let at = |generated, best_other, mean_other| PairScore {
            generated,
            best_other,
            mean_other,
        };
        let summary = summarize(&[
            at(20.0, 21.0, 15.0),
            at(18.0, 17.0, 16.0),
            at(10.0, 12.0, 11.0),
        ]);
        assert_eq!(summary.pairs, 3);
        assert!((summary.beats_best - 1.0 / 3.0).abs() < 1e-12);
        assert!((summary.beats_mean - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            (
                summary.median_generated,
                summary.median_best_other,
                summary.median_mean_other
            ),
            (18.0, 17.0, 15.0)
        );
    }
}
