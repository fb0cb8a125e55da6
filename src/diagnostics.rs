//! Label-using analyses of a finished run for its report (the paper's Figure 4 and the
//! confusion matrix). Labels are read here and in [`crate::eval`] only; nothing here feeds back
//! into training or model selection.
use crate::clustering::Clusters;
use crate::matching::Classifier;
use crate::prior::LabelPrior;
use tch::Tensor;

/// One row of Figure 4A's table: a true class's nearest and farthest classes under the prior
/// and under the learned mean logits.
#[derive(Clone, Debug)]
pub struct Figure4aRow {
    pub class: usize,
    pub prior_nearest: usize,
    pub logits_nearest: usize,
    pub prior_farthest: usize,
    pub logits_farthest: usize,
}

/// Figure 4A: does each class's mean logit vector rank classes as the prior does?
#[derive(Clone, Debug)]
pub struct Figure4a {
    pub rows: Vec<Figure4aRow>,
    pub nearest_agree: usize,
    pub farthest_agree: usize,
    /// Row z-scores of the prior's class similarity and of the mean logits per true class.
    pub prior_z: Vec<Vec<f64>>,
    pub logits_z: Vec<Vec<f64>>,
}

/// The distribution of predicted classes within one cluster under two classifiers.
#[derive(Clone, Debug)]
pub struct ClusterPredictions {
    pub cluster: usize,
    pub test_members: usize,
    /// Share of the cluster's test members predicted as each class: L_sk, L_cgsk.
    pub sk: Vec<f64>,
    pub cgsk: Vec<f64>,
}

/// Mean logit vector of the test samples of each true class: rows = true classes.
pub fn mean_logits(classifier: &Classifier, test: &Tensor, labels: &[i64], c: usize) -> Vec<Vec<f64>> {
    let logits = tch::no_grad(|| classifier.logits(&test.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float)));
    let logits: Vec<Vec<f64>> = Vec::<Vec<f64>>::try_from(logits.to_kind(tch::Kind::Double)).unwrap_or_default();
    let mut sums = vec![vec![0.0; c]; c];
    let mut counts = vec![0usize; c];
    for (row, &y) in logits.iter().zip(labels) {
        counts[y as usize] += 1;
        for (s, v) in sums[y as usize].iter_mut().zip(row) {
            *s += v;
        }
    }
    for (row, &n) in sums.iter_mut().zip(&counts) {
        row.iter_mut().for_each(|v| *v /= n.max(1) as f64);
    }
    sums
}

fn argmax_excluding(v: &[f64], skip: usize) -> usize {
    (0..v.len()).filter(|&j| j != skip).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

fn argmin(v: &[f64]) -> usize {
    (0..v.len()).min_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

/// Each row shifted and scaled to mean 0 and unit variance.
pub fn row_z_scores(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    m.iter()
        .map(|row| {
            let mu = row.iter().sum::<f64>() / row.len().max(1) as f64;
            let sd = (row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / row.len().max(1) as f64).sqrt().max(1e-12);
            row.iter().map(|v| (v - mu) / sd).collect()
        })
        .collect()
}

pub fn figure_4a(prior: &LabelPrior, classifier: &Classifier, test: &Tensor, labels: &[i64]) -> Figure4a {
    let c = prior.n_classes();
    let mean = mean_logits(classifier, test, labels, c);
    let rows: Vec<Figure4aRow> = (0..c)
        .map(|i| Figure4aRow {
            class: i,
            prior_nearest: prior.ranks[i].get(1).copied().unwrap_or(i),
            logits_nearest: argmax_excluding(&mean[i], i),
            prior_farthest: prior.ranks[i].last().copied().unwrap_or(i),
            logits_farthest: argmin(&mean[i]),
        })
        .collect();
    Figure4a {
        nearest_agree: rows.iter().filter(|r| r.prior_nearest == r.logits_nearest).count(),
        farthest_agree: rows.iter().filter(|r| r.prior_farthest == r.logits_farthest).count(),
        rows,
        prior_z: row_z_scores(&prior.similarity),
        logits_z: row_z_scores(&mean),
    }
}

/// Figure 4B: the predicted-class distribution of the `shown` largest clusters (by test
/// members) under L_sk and L_cgsk.
pub fn figure_4b(clusters: &Clusters, sk: &Classifier, cgsk: &Classifier, test: &Tensor, c: usize, shown: usize) -> Vec<ClusterPredictions> {
    let test = test.to_device(tch::Device::Cpu);
    let members = clusters.predict(&test);
    let (pred_cgsk, pred_sk) = (cgsk.predict(&test), sk.predict(&test));
    let k = clusters.n_clusters();
    let mut sizes: Vec<(usize, usize)> = (0..k).map(|j| (members.iter().filter(|&&m| m as usize == j).count(), j)).collect();
    sizes.sort_by(|a, b| b.cmp(a));
    sizes
        .iter()
        .take(shown.max(1))
        .map(|&(size, j)| {
            let idx: Vec<usize> = members.iter().enumerate().filter(|(_, m)| **m as usize == j).map(|(i, _)| i).collect();
            let hist = |pred: &[i64]| -> Vec<f64> {
                let mut h = vec![0.0; c];
                idx.iter().for_each(|&i| h[pred[i] as usize] += 1.0);
                h.iter().map(|v| v / idx.len().max(1) as f64).collect()
            };
            ClusterPredictions { cluster: j, test_members: size, sk: hist(&pred_sk), cgsk: hist(&pred_cgsk) }
        })
        .collect()
}

/// Each row of a confusion matrix as shares of the row.
pub fn row_shares(confusion: &[Vec<u64>]) -> Vec<Vec<f64>> {
    confusion
        .iter()
        .map(|row| {
            let n = row.iter().sum::<u64>().max(1) as f64;
            row.iter().map(|&v| v as f64 / n).collect()
        })
        .collect()
}

/// The naming that the true classes' mean features would get from the geometry naming (the
/// ceiling of naming by geometry for these features, names, kernel and encoder). Labels decide
/// the centres, so it is a diagnostic only.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OracleNaming {
    /// class_of[true class]: the name the geometry gives each true class's centre.
    pub class_of: Vec<usize>,
    pub names_right: usize,
    pub mean_posterior: f64,
}

pub fn oracle_naming(namer: &crate::naming::GeometryNamer, prior: &LabelPrior, features: &Tensor, labels: &[i64]) -> crate::error::Result<OracleNaming> {
    let c = prior.n_classes();
    let means = crate::clustering::member_means(&features.to_device(tch::Device::Cpu), labels, c as i64)?;
    let rows = Vec::<Vec<f64>>::try_from(means.to_kind(tch::Kind::Double))?;
    let mut sizes = vec![0usize; c];
    labels.iter().for_each(|&y| sizes[y as usize] += 1);
    let naming = namer.name(&rows, &sizes, prior, 0)?;
    let class_of = naming.solution.class_of.clone();
    Ok(OracleNaming { names_right: class_of.iter().enumerate().filter(|(k, c)| k == *c).count(), mean_posterior: naming.trust_of(&class_of).mean_posterior, class_of })
}
