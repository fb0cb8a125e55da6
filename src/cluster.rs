//! Stage II, feature clustering (FC): k centroids learned by minimising the entropic OT cost
//! between batches of L2-normalised features (uniform weights) and the centroids (uniform
//! weights). The balanced column marginal is what keeps every cluster in use.
//!
//! Clusters are not classes: nothing here maps a cluster to a name.
use crate::error::{Error, Result};
use crate::ot::{self, SinkhornParams};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::OptimizerConfig, Kind, Tensor};

/// How each training sample is given its cluster after the centroids are learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AssignmentRule {
    /// Paper's wording: argmax of the transport plan between all samples and the centroids.
    Plan,
    /// Review code: the nearest centroid.
    Nearest,
}

/// Hyper-parameters of stage II; `default_for(c)` gives the paper's values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusteringParams {
    pub n_clusters: usize,
    /// Adam steps (paper: 5K).
    pub steps: usize,
    /// Features per step (review code: 1000).
    pub batch_size: usize,
    /// Adam learning rate (paper: 0.1; review code: 0.01).
    pub learning_rate: f64,
    pub sinkhorn: SinkhornParams,
    pub assignment: AssignmentRule,
}

impl ClusteringParams {
    pub fn default_for(n_clusters: usize) -> Self {
        ClusteringParams {
            n_clusters,
            steps: 5000,
            batch_size: 1000,
            learning_rate: 0.1,
            sinkhorn: SinkhornParams { max_iters: 1000, ..SinkhornParams::default() },
            assignment: AssignmentRule::Plan,
        }
    }

    pub fn check(&self, n_samples: usize) -> Result<()> {
        if self.n_clusters < 2 {
            return Err(Error::invalid("n_clusters", self.n_clusters, "at least 2"));
        }
        if self.n_clusters > n_samples {
            return Err(Error::invalid("n_clusters", self.n_clusters, "at most the number of samples"));
        }
        if self.batch_size < self.n_clusters {
            return Err(Error::invalid("cluster batch_size", self.batch_size, "at least n_clusters"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::invalid("cluster learning_rate", self.learning_rate, "a positive number"));
        }
        self.sinkhorn.check()
    }
}

/// A fitted clustering.
pub struct Clustering {
    /// (k, D) f32 centroids.
    pub centroids: Tensor,
    /// Cluster of each training sample (0..k), none empty.
    pub assignments: Vec<i64>,
    /// (step, OT cost) every `log_every` steps.
    pub curve: Vec<(usize, f64)>,
}

/// Squared Euclidean distances, (n, k).
fn squared_distances(x: &Tensor, centroids: &Tensor) -> Tensor {
    let x2 = x.square().sum_dim_intlist([1i64].as_slice(), true, x.kind());
    let z2 = centroids.square().sum_dim_intlist([1i64].as_slice(), true, centroids.kind()).tr();
    let cross = x.matmul(&centroids.tr()) * 2.0;
    (x2 + z2 - cross).clamp_min(0.0)
}

impl Clustering {
    /// Learns the centroids on `features` ((N, D) f32, rows L2-normalised).
    pub fn fit(
        features: &Tensor,
        params: &ClusteringParams,
        seed: u64,
        mut on_step: impl FnMut(usize, f64, usize),
    ) -> Result<Self> {
        let (n, d) = (features.size()[0] as usize, features.size()[1]);
        params.check(n)?;
        let device = features.device();
        let k = params.n_clusters as i64;
        let mut rng = Rng::derive(seed, "cluster");
        // "Centroids start random": random unit vectors.
        let init: Vec<f32> = (0..k * d).map(|_| rng.normal() as f32).collect();
        let init = crate::data::features::l2_normalize(&Tensor::from_slice(&init).view([k, d])).to_device(device);
        let vs = nn::VarStore::new(device);
        let centroids = vs.root().var_copy("centroids", &init);
        let mut opt = nn::Adam::default().build(&vs, params.learning_rate)?;
        let batch = params.batch_size.min(n);
        let a = ot::uniform(batch as i64, &init);
        let b = ot::uniform(k, &init);
        let mut scratch = Vec::new();
        let mut warm_g: Option<Tensor> = None;
        let mut curve = Vec::new();
        for step in 0..params.steps {
            let index = Tensor::from_slice(&rng.sample_without_replacement(&mut scratch, n, batch)).to_device(device);
            let x = features.index_select(0, &index);
            let cost = squared_distances(&x, &centroids);
            // The plan is held constant: by the envelope theorem it is the gradient of the
            // OT value with respect to the cost.
            let transport = tch::no_grad(|| ot::sinkhorn(&cost.detach(), &a, &b, &params.sinkhorn, warm_g.as_ref()));
            let iterations = transport.iterations;
            warm_g = Some(transport.g);
            let loss = (&transport.plan * &cost).sum(cost.kind());
            opt.backward_step(&loss);
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(Error::NonFinite { what: format!("clustering loss at step {step}"), row: 0, col: 0 });
            }
            if step % 50 == 0 || step + 1 == params.steps {
                curve.push((step, value));
            }
            on_step(step, value, iterations);
        }
        let centroids = centroids.detach().copy();
        let assignments = tch::no_grad(|| assign(features, &centroids, params))?;
        Ok(Clustering { centroids, assignments, curve })
    }

    /// Nearest centroid of each row (for new samples, e.g. the test split).
    pub fn predict(&self, features: &Tensor) -> Vec<i64> {
        tch::no_grad(|| Vec::<i64>::try_from(squared_distances(features, &self.centroids).argmin(1, false)).unwrap_or_default())
    }

    pub fn n_clusters(&self) -> usize {
        self.centroids.size()[0] as usize
    }

    pub fn cluster_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.n_clusters()];
        for &a in &self.assignments {
            sizes[a as usize] += 1;
        }
        sizes
    }
}

/// Assigns every training sample, then repairs any empty cluster by moving to it the sample
/// (from a cluster with more than one member) with the highest affinity to it.
fn assign(features: &Tensor, centroids: &Tensor, params: &ClusteringParams) -> Result<Vec<i64>> {
    let n = features.size()[0];
    let k = centroids.size()[0];
    let cost = squared_distances(features, centroids);
    let affinity = match params.assignment {
        AssignmentRule::Nearest => -&cost,
        AssignmentRule::Plan => {
            let a = ot::uniform(n, &cost);
            let b = ot::uniform(k, &cost);
            ot::sinkhorn(&cost, &a, &b, &params.sinkhorn, None).plan.log()
        }
    };
    let mut assignments = Vec::<i64>::try_from(affinity.argmax(1, false))?;
    let affinity = Vec::<Vec<f32>>::try_from(affinity.to_kind(Kind::Float))?;
    let mut sizes = vec![0usize; k as usize];
    for &a in &assignments {
        sizes[a as usize] += 1;
    }
    while let Some(empty) = sizes.iter().position(|&s| s == 0) {
        let candidate = (0..n as usize)
            .filter(|&i| sizes[assignments[i] as usize] > 1)
            .max_by(|&i, &j| affinity[i][empty].total_cmp(&affinity[j][empty]));
        let Some(i) = candidate else { break };
        sizes[assignments[i] as usize] -= 1;
        assignments[i] = empty as i64;
        sizes[empty] += 1;
    }
    Ok(assignments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_params() {
        let p = ClusteringParams::default_for(10);
        assert!(p.check(5).unwrap_err().to_string().contains("n_clusters"));
        assert!(ClusteringParams { learning_rate: 0.0, ..p.clone() }.check(100).is_err());
        assert!(ClusteringParams { batch_size: 3, ..p.clone() }.check(100).is_err());
        assert!(ClusteringParams::default_for(1).check(100).is_err());
    }
}
