//! The paper's stage II, feature clustering (FC): k centroids learned by minimising the
//! entropic OT cost between batches of L2-normalised features (uniform weights) and the
//! centroids (uniform weights). The balanced column marginal is what keeps every cluster in use.
use super::{argmax_none_empty, squared_distances, Clusterer, ClusteringStep, Clusters};
use crate::error::{Error, Result};
use crate::ot::{self, SinkhornParams};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::OptimizerConfig, Tensor};

/// How each training sample is given its cluster after the centroids are learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AssignmentRule {
    /// Paper's wording: argmax of the transport plan between all samples and the centroids.
    /// The plan's uniform column marginal makes every cluster the same size, so where classes
    /// are unbalanced the small clusters are filled with samples of the large ones.
    Plan,
    /// The nearest centroid (review code; zerolabel's default): the rule that new samples
    /// follow too, and one that leaves unbalanced clusters their sizes.
    Nearest,
}

/// The unit of the transport cost, against which the entropic epsilon is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CostScale {
    /// The squared distances as they are (the paper's text: epsilon = 0.01 on L2-normalised
    /// features); what records written before the scale existed used.
    #[default]
    None,
    /// The squared distances divided by half their mean over pairs of samples. Unit vectors
    /// spread over the sphere are left as they are (mean 2), but features in a cone (a ReLU
    /// backbone's: mean 0.7-1.0 on this project's SimCLR features) or in a small cap (an aligned
    /// copy of a flat class-name geometry: 0.007) would otherwise be clustered at an epsilon
    /// as large as the distances between their clusters, with plans blurred over neighbours.
    /// With it, epsilon means the same whatever the features' spread.
    Spread,
}

/// Hyper-parameters of the OT clustering; `default_for(c)` gives the paper's values, except
/// for the cost in units of the features' spread (`CostScale::Spread`) and the nearest-centroid
/// assignment (`AssignmentRule::Nearest`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SinkhornClusteringParams {
    pub n_clusters: usize,
    /// Adam steps (paper: 5K).
    pub steps: usize,
    /// Features per step (review code: 1000).
    pub batch_size: usize,
    /// Adam learning rate (paper: 0.1; review code: 0.01).
    pub learning_rate: f64,
    pub sinkhorn: SinkhornParams,
    pub assignment: AssignmentRule,
    /// The cost's unit (records from before it existed: `None`).
    #[serde(default)]
    pub cost_scale: CostScale,
}

impl SinkhornClusteringParams {
    pub fn default_for(n_clusters: usize) -> Self {
        SinkhornClusteringParams {
            n_clusters,
            steps: 5000,
            batch_size: 1000,
            learning_rate: 0.1,
            sinkhorn: SinkhornParams { max_iters: 1000, ..SinkhornParams::default() },
            assignment: AssignmentRule::Nearest,
            cost_scale: CostScale::Spread,
        }
    }

    /// Checks what can be checked without data (`SinkhornClusterer::new` calls it).
    pub fn check(&self) -> Result<()> {
        if self.n_clusters < 2 {
            return Err(Error::invalid("n_clusters", self.n_clusters, "at least 2"));
        }
        if self.steps == 0 {
            return Err(Error::invalid("cluster_steps", self.steps, "at least 1"));
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

/// The OT clustering with checked parameters.
#[derive(Clone, Debug)]
pub struct SinkhornClusterer {
    params: SinkhornClusteringParams,
}

impl SinkhornClusterer {
    pub fn new(params: SinkhornClusteringParams) -> Result<Self> {
        params.check()?;
        Ok(SinkhornClusterer { params })
    }

    pub fn params(&self) -> &SinkhornClusteringParams {
        &self.params
    }

    /// Learns the centroids on `features` ((N, D) f32, rows L2-normalised), the squared
    /// distances divided by `unit` (`cost_unit`); returns them with the loss curve.
    fn learn_centroids(&self, features: &Tensor, unit: f64, seed: u64, observer: &mut dyn FnMut(&ClusteringStep)) -> Result<(Tensor, Vec<(usize, f64)>)> {
        let params = &self.params;
        let (n, d) = (features.size()[0] as usize, features.size()[1]);
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
            let cost = squared_distances(&x, &centroids) / unit;
            // The plan is held constant: by the envelope theorem it is the gradient of the
            // OT value with respect to the cost.
            let transport = tch::no_grad(|| ot::sinkhorn(&cost.detach(), &a, &b, &params.sinkhorn, warm_g.as_ref()));
            let inner_iterations = transport.iterations;
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
            observer(&ClusteringStep { step, loss: value, inner_iterations });
        }
        Ok((centroids.detach().copy(), curve))
    }
}

impl Clusterer for SinkhornClusterer {
    fn name(&self) -> &'static str {
        "sinkhorn"
    }

    fn steps(&self) -> usize {
        self.params.steps
    }

    fn fit(&self, features: &Tensor, seed: u64, observer: &mut dyn FnMut(&ClusteringStep)) -> Result<Clusters> {
        let n = features.size()[0] as usize;
        if self.params.n_clusters > n {
            return Err(Error::invalid("n_clusters", self.params.n_clusters, format!("at most the number of samples ({n})")));
        }
        // One unit for training and the final assignment: the spread is a pass over every feature.
        let unit = cost_unit(features, self.params.cost_scale);
        let (centroids, curve) = self.learn_centroids(features, unit, seed, observer)?;
        let assignments = tch::no_grad(|| assign(features, &centroids, unit, &self.params))?;
        Clusters::new(features, assignments, Some(centroids), curve)
    }
}

/// What the squared distances are divided by: 1, or half their mean over all pairs of rows
/// (= the mean squared distance of a row to the rows' mean), floored so that identical rows
/// cannot divide by zero.
pub fn cost_unit(features: &Tensor, scale: CostScale) -> f64 {
    match scale {
        CostScale::None => 1.0,
        CostScale::Spread => tch::no_grad(|| {
            let mean = features.mean_dim([0i64].as_slice(), true, features.kind());
            let spread = (features - mean).square().sum_dim_intlist([1i64].as_slice(), false, features.kind()).mean(features.kind()).double_value(&[]);
            spread.max(1e-12)
        }),
    }
}

/// Assigns every training sample, then repairs any empty cluster by moving to it the sample
/// (from a cluster with more than one member) with the highest affinity to it.
fn assign(features: &Tensor, centroids: &Tensor, unit: f64, params: &SinkhornClusteringParams) -> Result<Vec<i64>> {
    let n = features.size()[0];
    let k = centroids.size()[0];
    let cost = squared_distances(features, centroids) / unit;
    let affinity = match params.assignment {
        AssignmentRule::Nearest => -&cost,
        AssignmentRule::Plan => {
            let a = ot::uniform(n, &cost);
            let b = ot::uniform(k, &cost);
            ot::sinkhorn(&cost, &a, &b, &params.sinkhorn, None).plan.log()
        }
    };
    argmax_none_empty(&affinity, k as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_params_naming_each() {
        let p = SinkhornClusteringParams::default_for(10);
        let error = |q: SinkhornClusteringParams| SinkhornClusterer::new(q).unwrap_err().to_string();
        assert!(error(SinkhornClusteringParams { learning_rate: 0.0, ..p.clone() }).contains("invalid parameter cluster learning_rate = 0"));
        assert!(error(SinkhornClusteringParams { learning_rate: f64::NAN, ..p.clone() }).contains("cluster learning_rate = NaN"));
        assert!(error(SinkhornClusteringParams { batch_size: 3, ..p.clone() }).contains("cluster batch_size = 3: expected at least n_clusters"));
        assert!(error(SinkhornClusteringParams { steps: 0, ..p.clone() }).contains("cluster_steps = 0"));
        assert!(error(SinkhornClusteringParams::default_for(1)).contains("n_clusters = 1: expected at least 2"));
        let few = Tensor::zeros([5, 3], (tch::Kind::Float, tch::Device::Cpu));
        let fitted = SinkhornClusterer::new(p).unwrap().fit(&few, 0, &mut |_| {});
        assert!(fitted.err().unwrap().to_string().contains("n_clusters = 10: expected at most the number of samples (5)"));
    }

    /// c Gaussian blobs around `spread * random centre + shift`, L2-normalised: with a large
    /// shift and a small spread the features sit in a small cap of the sphere.
    fn blobs_in_a_cap(c: usize, per: usize, spread: f64, seed: u64) -> (Tensor, Vec<i64>) {
        let d = 8;
        let mut rng = Rng::new(seed);
        let shift: Vec<f64> = (0..d).map(|_| 3.0 * rng.normal()).collect();
        let centres: Vec<Vec<f64>> = (0..c).map(|_| (0..d).map(|j| shift[j] + spread * rng.normal()).collect()).collect();
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for i in 0..c * per {
            let k = i % c;
            rows.extend(centres[k].iter().map(|m| (m + 0.1 * spread * rng.normal()) as f32));
            labels.push(k as i64);
        }
        let x = Tensor::from_slice(&rows).view([(c * per) as i64, d as i64]);
        (crate::data::features::l2_normalize(&x), labels)
    }

    fn purity(features: &Tensor, labels: &[i64], c: usize, scale: CostScale) -> f64 {
        let params = SinkhornClusteringParams { steps: 400, cost_scale: scale, ..SinkhornClusteringParams::default_for(c) };
        let clusters = SinkhornClusterer::new(params).unwrap().fit(features, 0, &mut |_| {}).unwrap();
        crate::eval::hungarian_accuracy(&clusters.assignments, labels, c, c)
    }

    #[test]
    fn features_in_a_small_cap_are_clustered_as_well_as_spread_ones() {
        for (spread, seed) in [(3.0, 1u64), (0.05, 2), (0.01, 3)] {
            let (x, labels) = blobs_in_a_cap(5, 120, spread, seed);
            let unit = cost_unit(&x, CostScale::Spread);
            let right = purity(&x, &labels, 5, CostScale::Spread);
            assert!(right > 0.99, "spread {spread} (cost unit {unit:.2e}): {:.1} % of the samples clustered right", 100.0 * right);
        }
        // The paper's literal cost blurs the plans where the clusters are closer than epsilon.
        let (x, labels) = blobs_in_a_cap(5, 120, 0.01, 3);
        let right = purity(&x, &labels, 5, CostScale::None);
        assert!(right < 0.9, "without the scale {:.1} % right: the cap is not small enough to show the difference", 100.0 * right);
    }
}
