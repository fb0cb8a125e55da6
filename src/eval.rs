//! Evaluation: the only place where ground-truth labels are read.
//!
//! The zero-label accuracy is the accuracy of argmax fC as is, with no Hungarian matching.
//! Hungarian-matched accuracy, NMI and ARI are reported for reference only (the matched
//! accuracy of the clusters is the ceiling for any way of naming them).
use crate::assignment::max_weight_assignment;
use serde::{Deserialize, Serialize};

/// Accuracy, per-class accuracy and confusion matrix of predictions that ARE class indices.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassificationReport {
    pub accuracy: f64,
    /// Recall of each true class (NaN-free: 0 for a class with no test samples).
    pub per_class_accuracy: Vec<f64>,
    /// confusion[true][predicted] counts.
    pub confusion: Vec<Vec<u64>>,
    /// How many classes are predicted at least once (c means no collapse).
    pub predicted_classes: usize,
}

pub fn contingency(pred: &[i64], truth: &[i64], n_pred: usize, n_true: usize) -> Vec<Vec<u64>> {
    let mut table = vec![vec![0u64; n_pred]; n_true];
    for (&p, &t) in pred.iter().zip(truth) {
        table[t as usize][p as usize] += 1;
    }
    table
}

pub fn classification_report(pred: &[i64], truth: &[i64], n_classes: usize) -> ClassificationReport {
    let confusion = contingency(pred, truth, n_classes, n_classes);
    let correct: u64 = (0..n_classes).map(|k| confusion[k][k]).sum();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(k, row)| {
            let total: u64 = row.iter().sum();
            if total == 0 { 0.0 } else { row[k] as f64 / total as f64 }
        })
        .collect();
    let predicted_classes = (0..n_classes).filter(|&k| confusion.iter().any(|row| row[k] > 0)).count();
    ClassificationReport {
        accuracy: correct as f64 / pred.len().max(1) as f64,
        per_class_accuracy,
        confusion,
        predicted_classes,
    }
}

/// Accuracy after the best one-to-one matching of predicted groups to classes (reference only).
pub fn hungarian_accuracy(pred: &[i64], truth: &[i64], n_pred: usize, n_true: usize) -> f64 {
    let table = contingency(pred, truth, n_pred, n_true);
    // Rows must not outnumber columns: match the smaller side into the larger one.
    let weights: Vec<Vec<f64>> = if n_true <= n_pred {
        table.iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect()
    } else {
        (0..n_pred).map(|p| (0..n_true).map(|t| table[t][p] as f64).collect()).collect()
    };
    let (_, total) = max_weight_assignment(&weights);
    total / pred.len().max(1) as f64
}

fn entropy(counts: impl Iterator<Item = u64>, n: f64) -> f64 {
    counts.filter(|&c| c > 0).map(|c| c as f64 / n).map(|p| -p * p.ln()).sum()
}

/// Normalised mutual information with the arithmetic-mean normalisation (scikit-learn's default).
pub fn nmi(pred: &[i64], truth: &[i64], n_pred: usize, n_true: usize) -> f64 {
    let table = contingency(pred, truth, n_pred, n_true);
    let n = pred.len() as f64;
    let row: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
    let col: Vec<u64> = (0..n_pred).map(|p| table.iter().map(|r| r[p]).sum()).collect();
    let mut mi = 0.0;
    for (t, r) in table.iter().enumerate() {
        for (p, &v) in r.iter().enumerate() {
            if v > 0 {
                let v = v as f64;
                mi += v / n * (v * n / (row[t] as f64 * col[p] as f64)).ln();
            }
        }
    }
    let (ht, hp) = (entropy(row.into_iter(), n), entropy(col.into_iter(), n));
    if ht == 0.0 && hp == 0.0 { 1.0 } else if ht + hp == 0.0 { 0.0 } else { (mi / ((ht + hp) / 2.0)).max(0.0) }
}

/// Adjusted Rand index.
pub fn ari(pred: &[i64], truth: &[i64], n_pred: usize, n_true: usize) -> f64 {
    let table = contingency(pred, truth, n_pred, n_true);
    let comb2 = |x: u64| (x as f64) * (x as f64 - 1.0) / 2.0;
    let index: f64 = table.iter().flatten().map(|&v| comb2(v)).sum();
    let rows: f64 = table.iter().map(|r| comb2(r.iter().sum())).sum();
    let cols: f64 = (0..n_pred).map(|p| comb2(table.iter().map(|r| r[p]).sum())).sum();
    let total = comb2(pred.len() as u64);
    let expected = rows * cols / total.max(1.0);
    let max = (rows + cols) / 2.0;
    if (max - expected).abs() < 1e-12 { 1.0 } else { (index - expected) / (max - expected) }
}

/// Mean and sample standard deviation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

pub fn mean_std(values: &[f64]) -> MeanStd {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    let var = if n > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
    MeanStd { mean, std: var.sqrt(), n }
}

impl std::fmt::Display for MeanStd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} ± {:.1}", 100.0 * self.mean, 100.0 * self.std)
    }
}

/// Per-seed metrics against the test labels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedMetrics {
    pub seed: u64,
    /// Zero-label accuracy: argmax of the named classifier against the labels, no matching.
    pub accuracy: f64,
    pub report: ClassificationReport,
    /// The paper's "Random" baseline: a randomly initialised fC on the same features.
    pub random_baseline_accuracy: f64,
    pub cluster_hungarian_accuracy: f64,
    pub cluster_nmi: f64,
    pub cluster_ari: f64,
    pub classifier_hungarian_accuracy: f64,
    pub classifier_nmi: f64,
    pub classifier_ari: f64,
    /// Accuracy of the classifier before training (stage III's initialisation).
    pub initial_accuracy: f64,
    /// Accuracy of the geometric naming alone (nearest centroid -> its cluster's name).
    pub naming_accuracy: f64,
    /// Objective gap between the best and the second-best naming (exact solver).
    pub naming_gap: Option<f64>,
    /// The paper's stage III on the same clusters, where the naming chain is another.
    #[serde(default)]
    pub paper_accuracy: Option<f64>,
    pub best_step: usize,
    /// The label-free selection score of the seed (lower is better).
    pub selection_score: f64,
    pub cluster_seconds: f64,
    pub match_seconds: f64,
}

impl SeedMetrics {
    /// The classifier's metrics from other test predictions (e.g. the seed's clusters under the
    /// names voted over the seeds); the clusters' and the naming's own metrics stay.
    pub fn with_classifier_predictions(mut self, pred: &[i64], labels: &[i64], n_classes: usize) -> Self {
        self.report = classification_report(pred, labels, n_classes);
        self.accuracy = self.report.accuracy;
        self.classifier_hungarian_accuracy = hungarian_accuracy(pred, labels, n_classes, n_classes);
        self.classifier_nmi = nmi(pred, labels, n_classes, n_classes);
        self.classifier_ari = ari(pred, labels, n_classes, n_classes);
        self
    }
}

/// Accuracy of a random fC drawn from the seed's own stream (the paper's "Random").
pub fn random_baseline(test: &tch::Tensor, labels: &[i64], n_classes: usize, seed: u64) -> f64 {
    let d = test.size()[1] as usize;
    let classifier = crate::matching::Classifier::random(n_classes, d, &mut crate::rng::Rng::derive(seed, "random-baseline"));
    let pred = classifier.predict(&test.to_device(tch::Device::Cpu));
    classification_report(&pred, labels, n_classes).accuracy
}

/// Mean ± std over seeds of the headline numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub accuracy: MeanStd,
    pub random_baseline: MeanStd,
    pub cluster_hungarian_accuracy: MeanStd,
    pub classifier_hungarian_accuracy: MeanStd,
    pub cluster_nmi: MeanStd,
    pub cluster_ari: MeanStd,
    pub initial_accuracy: MeanStd,
    pub naming_accuracy: MeanStd,
    /// The paper's stage III beside a chain that is not the paper's.
    pub paper_accuracy: Option<MeanStd>,
    /// Each seed's clusters named by the vote of all seeds (run's consensus step).
    pub consensus_accuracy: Option<MeanStd>,
    /// Seeds whose classifier predicts every class at least once.
    pub seeds_without_collapse: usize,
}

pub fn summarize(seeds: &[SeedMetrics], n_classes: usize) -> Summary {
    let pick = |f: fn(&SeedMetrics) -> f64| mean_std(&seeds.iter().map(f).collect::<Vec<_>>());
    let paper: Vec<f64> = seeds.iter().filter_map(|s| s.paper_accuracy).collect();
    Summary {
        accuracy: pick(|s| s.accuracy),
        random_baseline: pick(|s| s.random_baseline_accuracy),
        cluster_hungarian_accuracy: pick(|s| s.cluster_hungarian_accuracy),
        classifier_hungarian_accuracy: pick(|s| s.classifier_hungarian_accuracy),
        cluster_nmi: pick(|s| s.cluster_nmi),
        cluster_ari: pick(|s| s.cluster_ari),
        initial_accuracy: pick(|s| s.initial_accuracy),
        naming_accuracy: pick(|s| s.naming_accuracy),
        paper_accuracy: (!paper.is_empty()).then(|| mean_std(&paper)),
        consensus_accuracy: None,
        seeds_without_collapse: seeds.iter().filter(|s| s.report.predicted_classes == n_classes).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_is_not_matched_but_hungarian_is() {
        let truth = [0, 0, 1, 1, 2, 2];
        let pred = [1, 1, 2, 2, 0, 0]; // a perfect clustering under the wrong names
        let r = classification_report(&pred, &truth, 3);
        assert_eq!(r.accuracy, 0.0);
        assert_eq!(r.predicted_classes, 3);
        assert_eq!(hungarian_accuracy(&pred, &truth, 3, 3), 1.0);
        assert!((nmi(&pred, &truth, 3, 3) - 1.0).abs() < 1e-12);
        assert!((ari(&pred, &truth, 3, 3) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn known_values() {
        // sklearn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714285714285715
        //          normalized_mutual_info_score([0,0,1,1],[0,0,1,2]) = 0.8
        let truth = [0, 0, 1, 1];
        let pred = [0, 0, 1, 2];
        assert!((ari(&pred, &truth, 3, 2) - 0.5714285714285715).abs() < 1e-12);
        assert!((nmi(&pred, &truth, 3, 2) - 0.8).abs() < 1e-12);
        let r = classification_report(&[0, 1, 1, 1], &[0, 0, 1, 1], 2);
        assert_eq!(r.per_class_accuracy, vec![0.5, 1.0]);
        assert_eq!(r.confusion, vec![vec![1, 1], vec![0, 2]]);
        let ms = mean_std(&[0.4, 0.5, 0.6]);
        assert!((ms.mean - 0.5).abs() < 1e-12 && (ms.std - 0.1).abs() < 1e-12);
    }
}
