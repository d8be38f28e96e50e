//! Scores for a classifier's predictions: accuracy, per-intent precision/recall/F1 and their
//! macro average, the most frequent confusions, and latency percentiles.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use switchboard::nlu::Intent;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// Pairs of (expected, predicted).
pub struct Scores<'a> {
    pairs: &'a [(Intent, Intent)],
}

impl<'a> Scores<'a> {
    pub fn new(pairs: &'a [(Intent, Intent)]) -> Self {
        Self { pairs }
    }

    pub fn accuracy(&self) -> f64 {
        ratio(
            self.pairs.iter().filter(|(e, p)| e == p).count(),
            self.pairs.len(),
        )
    }

    /// Share of cases whose prediction satisfies `pred`.
    pub fn share(&self, pred: impl Fn(&Intent) -> bool) -> f64 {
        ratio(
            self.pairs.iter().filter(|(_, p)| pred(p)).count(),
            self.pairs.len(),
        )
    }

    /// Per expected intent. A class never predicted has precision 0 (and F1 0), as usual.
    pub fn per_intent(&self) -> BTreeMap<Intent, Prf> {
        let classes: BTreeSet<&Intent> = self.pairs.iter().map(|(e, _)| e).collect();
        classes
            .into_iter()
            .map(|c| {
                let tp = self.pairs.iter().filter(|(e, p)| e == c && p == c).count();
                let predicted = self.pairs.iter().filter(|(_, p)| p == c).count();
                let support = self.pairs.iter().filter(|(e, _)| e == c).count();
                let precision = ratio(tp, predicted);
                let recall = ratio(tp, support);
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                (
                    c.clone(),
                    Prf {
                        precision,
                        recall,
                        f1,
                        support,
                    },
                )
            })
            .collect()
    }

    /// The unweighted mean of the per-intent F1 scores.
    pub fn macro_f1(&self) -> f64 {
        let per = self.per_intent();
        if per.is_empty() {
            return 0.0;
        }
        per.values().map(|p| p.f1).sum::<f64>() / per.len() as f64
    }

    /// For one expected intent, what it was mistaken for, most frequent first.
    pub fn confusions(&self, expected: &Intent) -> Vec<(Intent, usize)> {
        let mut counts: BTreeMap<Intent, usize> = BTreeMap::new();
        for (e, p) in self.pairs {
            if e == expected && p != e {
                *counts.entry(p.clone()).or_default() += 1;
            }
        }
        let mut out: Vec<(Intent, usize)> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// The `q`-quantile (0..=1) by the nearest-rank method.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_a_small_example_by_hand() {
        let (greet, thanks) = (Intent::new("greet"), Intent::new("thanks"));
        // greet: 2 of 3 right, 1 predicted wrongly as thanks; thanks: 1 of 1, predicted twice.
        let pairs = [
            (greet.clone(), greet.clone()),
            (greet.clone(), greet.clone()),
            (greet.clone(), thanks.clone()),
            (thanks.clone(), thanks.clone()),
        ];
        let s = Scores::new(&pairs);
        assert_eq!(s.accuracy(), 0.75);
        let per = s.per_intent();
        assert_eq!(per[&greet].precision, 1.0);
        assert!((per[&greet].recall - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(per[&thanks].precision, 0.5);
        assert_eq!(per[&thanks].recall, 1.0);
        let f1_greet = 2.0 * (2.0 / 3.0) / (1.0 + 2.0 / 3.0);
        let f1_thanks = 2.0 * 0.5 / 1.5;
        assert!((s.macro_f1() - (f1_greet + f1_thanks) / 2.0).abs() < 1e-9);
        assert_eq!(s.confusions(&greet), vec![(thanks.clone(), 1)]);
        assert_eq!(s.share(|p| *p == thanks), 0.5);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&d, 0.5), Duration::from_micros(50));
        assert_eq!(percentile(&d, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&d, 1.0), Duration::from_micros(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
