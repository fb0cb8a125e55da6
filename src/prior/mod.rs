//! The label prior P (paper, "Label Prior"): one target logit vector t^_i and one weight vector
//! w_i per class, built from the rank order of the classes, and the class proportions alpha.
//!
//! Ranks come from the similarity of the class names' vectors (`nominal`, vectors from a
//! [`encoder::TextEncoder`]: static word vectors in `word_vectors`, or the sentence encoder
//! all-MiniLM-L6-v2 in `minilm` with its tokenizer in `wordpiece`) or from the class order
//! (`ordinal`); `sampler` draws the prior samples S_P that stage III matches.
pub mod encoder;
pub mod sentence_encoder;
pub mod nominal;
pub mod ordinal;
pub mod sampler;
pub mod word_vectors;
pub mod wordpiece;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which values the target vector t_i takes along the rank order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TargetScheme {
    /// Paper: 1, 0.5, 0.2, then an arithmetic series down to -0.5 at the most dissimilar class.
    Paper,
    /// Review code: 1, 0.5, 0.1, then -1/6 down to -1/2 in equal steps.
    ReviewCode,
}

/// Hyper-parameters of the prior; `Default` gives the paper's values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PriorParams {
    pub targets: TargetScheme,
    /// Lower bound on every weight of eq. 2 (paper: none, i.e. 0; review code: 0.01).
    pub weight_floor: f64,
    /// How many of the most dissimilar positions are randomly permuted in each sample (paper: 3).
    pub shuffle_tail: usize,
    /// Class proportions alpha (sum 1); `None` means uniform, eq. 1.
    pub class_proportions: Option<Vec<f64>>,
}

impl Default for PriorParams {
    fn default() -> Self {
        PriorParams { targets: TargetScheme::Paper, weight_floor: 0.0, shuffle_tail: 3, class_proportions: None }
    }
}

impl PriorParams {
    pub fn check(&self, n_classes: usize) -> Result<()> {
        if !(0.0..1.0).contains(&self.weight_floor) {
            return Err(Error::invalid("weight_floor", self.weight_floor, "a value in [0, 1)"));
        }
        if self.shuffle_tail > 5 {
            return Err(Error::invalid("shuffle_tail", self.shuffle_tail, "at most 5 (it draws one of tail! permutations)"));
        }
        if let Some(alpha) = &self.class_proportions {
            if alpha.len() != n_classes {
                return Err(Error::ClassCount {
                    what: "class proportions".into(),
                    expected: format!("there are {n_classes} class names"),
                    got: alpha.len(),
                });
            }
            if alpha.iter().any(|a| !a.is_finite() || *a < 0.0) || alpha.iter().sum::<f64>() <= 0.0 {
                return Err(Error::invalid("class_proportions", format!("{alpha:?}"), "non-negative numbers with a positive sum"));
            }
        }
        Ok(())
    }
}

/// The prior for c classes. All matrices are c x c, row i belonging to class i.
#[derive(Clone, Debug, Serialize)]
pub struct LabelPrior {
    pub class_names: Vec<String>,
    /// ranks[i][p] = the class at rank position p for class i (p = 0 is i itself, p = c-1 the
    /// most dissimilar): the paper's r_i, 0-based.
    pub ranks: Vec<Vec<usize>>,
    /// targets[i][k] = t^_i[k], the unit-normalised target logit vector of class i.
    pub targets: Vec<Vec<f64>>,
    /// weights[i][k] = w_i[k] of eq. 2.
    pub weights: Vec<Vec<f64>>,
    /// alpha_i, summing to 1 (eq. 1 when uniform).
    pub alpha: Vec<f64>,
    /// Class-to-class similarity the ranks came from: cosine of the name embeddings (nominal)
    /// or -|i - j| (ordinal). Used to name clusters by geometry.
    pub similarity: Vec<Vec<f64>>,
    /// One vector per class whose geometry the naming compares with the clusters': the name
    /// embeddings (nominal) or the class positions 0..c on a line (ordinal).
    pub class_vectors: Vec<Vec<f64>>,
    /// Ordered classes (ranks from |i - j|).
    pub ordinal: bool,
    pub params: PriorParams,
}

/// Target value t at each rank position p = 0..c-1 (before normalisation).
pub fn target_values(scheme: TargetScheme, c: usize) -> Vec<f64> {
    let mut t = vec![0.0; c];
    t[0] = 1.0;
    if c == 1 {
        return t;
    }
    t[c - 1] = -0.5; // the most dissimilar class, in both schemes
    let (second, third) = match scheme {
        TargetScheme::Paper => (0.5, 0.2),
        TargetScheme::ReviewCode => (0.5, 0.1),
    };
    if c >= 3 {
        t[1] = second;
    }
    if c >= 4 {
        t[2] = third;
    }
    match scheme {
        // "an arithmetic series from t[r_i4] to t[r_ic]" ending at -0.5: we continue the series
        // from t[r_i3] = 0.2, so for c = 10 the tail is 0.1, 0.0, ..., -0.5 in steps of 0.1.
        TargetScheme::Paper => {
            if c >= 5 {
                let step = (third + 0.5) / (c - 3) as f64;
                for (p, v) in t.iter_mut().enumerate().take(c - 1).skip(3) {
                    *v = third - step * (p - 2) as f64;
                }
            }
        }
        // Review code: positions 4..c from -1/6 to -1/2 in equal steps.
        TargetScheme::ReviewCode => {
            if c >= 5 {
                let n = c - 3;
                for k in 0..n {
                    t[3 + k] = -1.0 / 6.0 - (1.0 / 3.0) * k as f64 / (n - 1) as f64;
                }
            }
        }
    }
    t
}

/// Weight at each rank position p (eq. 2): e^-p for the near half (p < floor(c/2)),
/// e^-(c-p) for the far half, raised to `floor`.
pub fn rank_weights(c: usize, floor: f64) -> Vec<f64> {
    (0..c)
        .map(|p| {
            let w = if p < c / 2 { (-(p as f64)).exp() } else { (-((c - p) as f64)).exp() };
            w.max(floor)
        })
        .collect()
}

impl LabelPrior {
    /// Builds t^ and w from rank vectors (`ranks[i]` a permutation of 0..c starting with i).
    pub fn from_ranks(class_names: Vec<String>, ranks: Vec<Vec<usize>>, similarity: Vec<Vec<f64>>, class_vectors: Vec<Vec<f64>>, params: PriorParams) -> Result<Self> {
        let c = class_names.len();
        if c < 2 {
            return Err(Error::ClassCount { what: "class names".into(), expected: "at least 2 are needed".into(), got: c });
        }
        params.check(c)?;
        let values = target_values(params.targets, c);
        let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        let position_weights = rank_weights(c, params.weight_floor);
        let mut targets = vec![vec![0.0; c]; c];
        let mut weights = vec![vec![0.0; c]; c];
        for (i, rank) in ranks.iter().enumerate() {
            debug_assert_eq!(rank[0], i);
            for (p, &k) in rank.iter().enumerate() {
                targets[i][k] = values[p] / norm;
                weights[i][k] = position_weights[p];
            }
        }
        let alpha = match &params.class_proportions {
            None => vec![1.0 / c as f64; c],
            Some(a) => {
                let total: f64 = a.iter().sum();
                a.iter().map(|x| x / total).collect()
            }
        };
        Ok(LabelPrior { class_names, ranks, targets, weights, alpha, similarity, class_vectors, ordinal: false, params })
    }

    pub fn n_classes(&self) -> usize {
        self.class_names.len()
    }

    /// A readable table: per class its two nearest and two farthest classes, then t^.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let c = self.n_classes();
        let width = self.class_names.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
        let mut out = String::new();
        let name = |k: usize| self.class_names[k].as_str();
        let _ = writeln!(out, "{:<width$}  {:<w2$}  {}", "class", "nearest", "farthest", w2 = 2 * width + 2);
        for (i, rank) in self.ranks.iter().enumerate() {
            let near: Vec<&str> = rank.iter().skip(1).take(2).map(|&k| name(k)).collect();
            let far: Vec<&str> = rank.iter().rev().take(2.min(c - 1)).map(|&k| name(k)).collect();
            let _ = writeln!(out, "{:<width$}  {:<w2$}  {}", name(i), near.join(", "), far.join(", "), w2 = 2 * width + 2);
        }
        let _ = writeln!(out, "\nt^ (row i = target logit vector of class i, unit norm):");
        let _ = write!(out, "{:<width$}", "");
        for k in 0..c {
            let _ = write!(out, " {:>7.7}", name(k));
        }
        let _ = writeln!(out);
        for i in 0..c {
            let _ = write!(out, "{:<width$}", name(i));
            for k in 0..c {
                let _ = write!(out, " {:>7.3}", self.targets[i][k]);
            }
            let _ = writeln!(out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_targets_for_ten_classes() {
        let t = target_values(TargetScheme::Paper, 10);
        let expected = [1.0, 0.5, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3, -0.4, -0.5];
        for (a, b) in t.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{t:?}");
        }
        let r = target_values(TargetScheme::ReviewCode, 10);
        assert_eq!(&r[..3], &[1.0, 0.5, 0.1]);
        assert!((r[3] + 1.0 / 6.0).abs() < 1e-12 && (r[9] + 0.5).abs() < 1e-12);
        let steps: Vec<f64> = r[3..].windows(2).map(|w| w[0] - w[1]).collect();
        assert!(steps.iter().all(|s| (s - 1.0 / 18.0).abs() < 1e-12), "{steps:?}");
    }

    #[test]
    fn weights_follow_equation_two() {
        let w = rank_weights(10, 0.0);
        let e = |x: f64| (-x).exp();
        let expected = [1.0, e(1.), e(2.), e(3.), e(4.), e(5.), e(4.), e(3.), e(2.), e(1.)];
        for (a, b) in w.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12);
        }
        let floored = rank_weights(10, 0.01);
        assert_eq!(floored[5], 0.01);
        assert!((floored[4] - e(4.)).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_proportions() {
        let p = PriorParams { class_proportions: Some(vec![0.5, 0.5]), ..Default::default() };
        let err = p.check(3).unwrap_err().to_string();
        assert!(err.contains("2 classes given") && err.contains("3 class names"), "{err}");
        let p = PriorParams { class_proportions: Some(vec![0.5, -0.5, 1.0]), ..Default::default() };
        assert!(p.check(3).is_err());
    }
}
