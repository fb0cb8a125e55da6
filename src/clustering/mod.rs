//! Stage II: feature clustering. Every method implements [`Clusterer`] and is chosen by the
//! tagged [`ClusteringMethod`] of a config; its constructor checks the hyper-parameters once,
//! before anything is fitted (linfa's pattern).
//!
//! Clusters are not classes: nothing here maps a cluster to a name (that is [`crate::naming`]).
pub mod kmeans;
pub mod scan;
pub mod sinkhorn;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub use kmeans::{KMeansClusterer, KMeansParams};
pub use scan::{ScanClusterer, ScanHeadKind, ScanObjective, ScanParams};
pub use sinkhorn::{AssignmentRule, CostScale, SinkhornClusterer, SinkhornClusteringParams};

/// One step of a clustering method, for progress bars and metrics lines.
#[derive(Clone, Copy, Debug)]
pub struct ClusteringStep {
    /// 0-based step.
    pub step: usize,
    pub loss: f64,
    /// Inner iterations of the step (Sinkhorn iterations for the OT clustering).
    pub inner_iterations: usize,
}

/// What a clustering method returns.
pub struct Clusters {
    /// Cluster of each training sample (0..k), none empty.
    pub assignments: Vec<i64>,
    /// (N, k) soft assignments, where the method has them.
    pub soft_assignments: Option<Tensor>,
    /// (k, D) f32 centres the method learned, where it has them (the Sinkhorn centroids of the
    /// paper, which need not sit at the mean of their members).
    pub learned_centres: Option<Tensor>,
    /// (k, D) f32 mean of each cluster's members.
    pub member_means: Tensor,
    /// (step, loss) every few steps.
    pub curve: Vec<(usize, f64)>,
    /// The head that assigns new samples, where the method learned one (SCAN); else new
    /// samples go to the nearest centre.
    pub head: Option<ClusterHead>,
}

/// A learned cluster head: linear layers with ReLU between them, (B, D) -> (B, k) logits.
pub struct ClusterHead {
    /// (weight (in, out) f32, bias (out) f32) of each layer.
    pub layers: Vec<(Tensor, Tensor)>,
}

impl ClusterHead {
    /// (B, D) -> (B, k) logits.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for (i, (w, b)) in self.layers.iter().enumerate() {
            if i > 0 {
                h = h.relu();
            }
            h = h.matmul(&w.to_device(x.device())) + b.to_device(x.device());
        }
        h
    }

    /// The tensors a clusters file holds: `head_{i}_weight`, `head_{i}_bias`.
    pub fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        self.layers.iter().enumerate().flat_map(|(i, (w, b))| [(format!("head_{i}_weight"), w), (format!("head_{i}_bias"), b)]).collect()
    }

    /// Reads back what `named_tensors` wrote (None when there is no `head_0_weight`).
    pub fn from_named(get: impl Fn(&str) -> Option<Tensor>) -> Option<Self> {
        let layers: Vec<(Tensor, Tensor)> = (0..).map_while(|i| Some((get(&format!("head_{i}_weight"))?, get(&format!("head_{i}_bias"))?))).collect();
        (!layers.is_empty()).then_some(ClusterHead { layers })
    }
}

impl Clusters {
    /// Clusters from assignments and optional learned centres; the member means are computed.
    pub fn new(features: &Tensor, assignments: Vec<i64>, learned_centres: Option<Tensor>, curve: Vec<(usize, f64)>) -> Result<Self> {
        let k = learned_centres.as_ref().map_or_else(|| assignments.iter().max().map_or(0, |m| m + 1), |c| c.size()[0]);
        let member_means = member_means(features, &assignments, k)?;
        Ok(Clusters { assignments, soft_assignments: None, learned_centres, member_means, curve, head: None })
    }

    /// The centres that naming and stage III start from, and that new samples are assigned to:
    /// the learned centres where the method has them (the paper), else the member means.
    pub fn centres(&self) -> &Tensor {
        self.learned_centres.as_ref().unwrap_or(&self.member_means)
    }

    /// Cluster of each row (for new samples, e.g. the test split): the argmax of the learned
    /// head where there is one (SCAN), else the nearest centre.
    pub fn predict(&self, features: &Tensor) -> Vec<i64> {
        tch::no_grad(|| {
            let best = match &self.head {
                Some(head) => head.forward(&features.to_kind(Kind::Float)).argmax(1, false),
                None => squared_distances(features, &self.centres().to_device(features.device())).argmin(1, false),
            };
            Vec::<i64>::try_from(best.to_device(tch::Device::Cpu)).unwrap_or_default()
        })
    }

    pub fn n_clusters(&self) -> usize {
        self.centres().size()[0] as usize
    }

    pub fn cluster_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.n_clusters()];
        for &a in &self.assignments {
            sizes[a as usize] += 1;
        }
        sizes
    }
}

/// Squared Euclidean distances, (n, k).
pub fn squared_distances(x: &Tensor, centroids: &Tensor) -> Tensor {
    let x2 = x.square().sum_dim_intlist([1i64].as_slice(), true, x.kind());
    let z2 = centroids.square().sum_dim_intlist([1i64].as_slice(), true, centroids.kind()).tr();
    let cross = x.matmul(&centroids.tr()) * 2.0;
    (x2 + z2 - cross).clamp_min(0.0)
}

/// (k, D) mean of the rows of each cluster (a zero row for an empty cluster).
pub fn member_means(features: &Tensor, assignments: &[i64], k: i64) -> Result<Tensor> {
    let n = features.size()[0];
    if assignments.len() as i64 != n {
        return Err(Error::Shape { what: "cluster assignments".into(), expected: format!("{n} (one per feature row)"), got: assignments.len().to_string() });
    }
    if let Some(&bad) = assignments.iter().find(|&&a| a < 0 || a >= k) {
        return Err(Error::invalid("cluster assignment", bad, format!("a cluster index in 0..{k}")));
    }
    let index = Tensor::from_slice(assignments).to_device(features.device());
    let d = features.size()[1];
    let sums = Tensor::zeros([k, d], (Kind::Float, features.device())).index_add(0, &index, &features.to_kind(Kind::Float));
    let counts = Tensor::zeros([k], (Kind::Float, features.device())).index_add(0, &index, &Tensor::ones([n], (Kind::Float, features.device())));
    Ok(sums / counts.clamp_min(1.0).unsqueeze(1))
}

/// Argmax of `affinity` ((N, k), higher is closer); every empty cluster then takes the sample,
/// from a cluster with more than one member, with the highest affinity to it, so that no
/// cluster is empty (the `Clusters` contract).
pub(crate) fn argmax_none_empty(affinity: &Tensor, k: usize) -> Result<Vec<i64>> {
    let mut assignments = Vec::<i64>::try_from(affinity.argmax(1, false).to_device(tch::Device::Cpu))?;
    let mut sizes = vec![0usize; k];
    assignments.iter().for_each(|&a| sizes[a as usize] += 1);
    if sizes.iter().all(|&s| s > 0) {
        return Ok(assignments);
    }
    let affinity = Vec::<Vec<f32>>::try_from(affinity.to_kind(Kind::Float).to_device(tch::Device::Cpu))?;
    while let Some(empty) = sizes.iter().position(|&s| s == 0) {
        let donor = (0..assignments.len()).filter(|&i| sizes[assignments[i] as usize] > 1).max_by(|&i, &j| affinity[i][empty].total_cmp(&affinity[j][empty]));
        let Some(i) = donor else { break };
        sizes[assignments[i] as usize] -= 1;
        assignments[i] = empty as i64;
        sizes[empty] += 1;
    }
    Ok(assignments)
}

/// A stage II method.
pub trait Clusterer {
    /// The method's name in configs (`sinkhorn`, ...).
    fn name(&self) -> &'static str;
    /// Steps `fit` reports to its observer (for the progress bar).
    fn steps(&self) -> usize;
    /// Clusters `features` ((N, D) f32, rows L2-normalised); every random choice comes from `seed`.
    fn fit(&self, features: &Tensor, seed: u64, observer: &mut dyn FnMut(&ClusteringStep)) -> Result<Clusters>;
}

/// The stage II method of a run, with its settings: `[stages] clustering = "sinkhorn"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum ClusteringMethod {
    /// The paper's entropic-OT clustering.
    Sinkhorn(SinkhornClusteringParams),
    /// k-means++ with restarts, the lowest inertia kept.
    Kmeans(KMeansParams),
    /// SCAN on frozen features: neighbour-consistency heads, the lowest-loss one kept.
    Scan(ScanParams),
}

impl ClusteringMethod {
    /// Checks the settings and builds the method (the only way to get a `Clusterer`).
    pub fn build(&self) -> Result<Box<dyn Clusterer>> {
        match self {
            ClusteringMethod::Sinkhorn(p) => Ok(Box::new(SinkhornClusterer::new(p.clone())?)),
            ClusteringMethod::Kmeans(p) => Ok(Box::new(KMeansClusterer::new(*p)?)),
            ClusteringMethod::Scan(p) => Ok(Box::new(ScanClusterer::new(p.clone())?)),
        }
    }

    pub fn n_clusters(&self) -> usize {
        match self {
            ClusteringMethod::Sinkhorn(p) => p.n_clusters,
            ClusteringMethod::Kmeans(p) => p.k,
            ClusteringMethod::Scan(p) => p.n_clusters,
        }
    }
}

/// Which method `--clustering` / `[stages] clustering` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClusteringKind {
    /// Entropic-OT (Sinkhorn) clustering, the paper's stage II.
    Sinkhorn,
    /// k-means++ with 10 restarts (centres = member means).
    Kmeans,
    /// SCAN on frozen features: 20 mined neighbours, 10 linear heads, the lowest-loss one kept.
    Scan,
}

/// Clusters whose sizes differ at least this much (largest over smallest) hint at unbalanced
/// classes. Balanced real classes gave Sinkhorn clusters of 1.4-1.7:1 (CIFAR-10 SimCLR
/// features, 3 seeds) and 1.3-1.6:1 (the main job's Fashion-MNIST features, 10 seeds); six
/// synthetic classes, three of them four times as large as the others, gave 3.4-12.4:1
/// (docs/naming-study.md, "Unbalanced classes").
pub const UNEQUAL_SIZES_RATIO: f64 = 2.5;

impl ClusteringKind {
    /// Whether the method learns its clusters for equal sizes: the Sinkhorn clustering's
    /// centroids are fitted against a uniform column marginal, so where classes are unbalanced
    /// they sit towards the large classes (docs/naming-study.md, "Unbalanced classes").
    pub fn learns_equal_sizes(self) -> bool {
        self == ClusteringKind::Sinkhorn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_means_are_the_means_of_the_assigned_rows() {
        let x = Tensor::from_slice(&[0f32, 0., 2., 2., 10., 10., 4., 0.]).view([4, 2]);
        let means = member_means(&x, &[0, 0, 1, 0], 2).unwrap();
        let got = Vec::<Vec<f32>>::try_from(means).unwrap();
        assert_eq!(got, vec![vec![2.0, 2.0 / 3.0], vec![10.0, 10.0]]);
        assert!(member_means(&x, &[0, 0, 2, 0], 2).unwrap_err().to_string().contains("0..2"));
        assert!(member_means(&x, &[0, 0], 2).is_err());
    }
}
