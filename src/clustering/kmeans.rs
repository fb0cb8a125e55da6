//! Plain k-means (Lloyd) with k-means++ seeding and restarts: the reference clustering of the
//! naming study ("It's a (Blind) Match!" names k-means clusters), beside the paper's Sinkhorn
//! clustering. The result's centroids are its clusters' member means.
use super::{Clusterer, ClusteringStep, Clusters};
use crate::error::{Error, Result};
use crate::rng::Rng;
use tch::{Kind, Tensor};

/// Settings; `new(k)`: 10 restarts of at most 100 Lloyd iterations.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct KMeansParams {
    pub k: usize,
    pub restarts: usize,
    pub max_iters: usize,
}

impl KMeansParams {
    pub fn new(k: usize) -> Self {
        KMeansParams { k, restarts: 10, max_iters: 100 }
    }
}

impl KMeansParams {
    /// Checks what can be checked without data.
    pub fn check(&self) -> Result<()> {
        if self.k < 2 {
            return Err(Error::invalid("n_clusters", self.k, "at least 2"));
        }
        if self.restarts < 1 {
            return Err(Error::invalid("kmeans restarts", self.restarts, "at least 1"));
        }
        if self.max_iters < 1 {
            return Err(Error::invalid("kmeans max_iters", self.max_iters, "at least 1"));
        }
        Ok(())
    }
}

/// k-means as a stage II method: its clusters' centres are their member means.
pub struct KMeansClusterer {
    params: KMeansParams,
}

impl KMeansClusterer {
    pub fn new(params: KMeansParams) -> Result<Self> {
        params.check()?;
        Ok(KMeansClusterer { params })
    }
}

impl Clusterer for KMeansClusterer {
    fn name(&self) -> &'static str {
        "kmeans"
    }

    fn steps(&self) -> usize {
        self.params.restarts
    }

    fn fit(&self, features: &Tensor, seed: u64, observer: &mut dyn FnMut(&ClusteringStep)) -> Result<Clusters> {
        let fitted = fit(features, &self.params, seed)?;
        observer(&ClusteringStep { step: self.params.restarts - 1, loss: fitted.inertia, inner_iterations: 0 });
        Clusters::new(features, fitted.assignments, None, vec![(0, fitted.inertia)])
    }
}

/// The restart with the lowest inertia.
pub struct KMeans {
    /// (k, D) f32, each the mean of its members.
    pub centroids: Tensor,
    pub assignments: Vec<i64>,
    /// Sum of squared distances of the samples to their centroids.
    pub inertia: f64,
}

fn squared_distances(x: &Tensor, x2: &Tensor, centroids: &Tensor) -> Tensor {
    let z2 = centroids.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Float).tr();
    (x2 + z2 - x.matmul(&centroids.tr()) * 2.0).clamp_min(0.0)
}

/// k-means++: the first centre uniformly, each next one with probability proportional to the
/// squared distance to the nearest centre chosen so far.
fn plus_plus(x: &Tensor, x2: &Tensor, k: usize, rng: &mut Rng) -> Result<Tensor> {
    let n = x.size()[0] as usize;
    let mut chosen = vec![rng.below(n) as i64];
    let mut nearest = squared_distances(x, x2, &x.get(chosen[0]).unsqueeze(0)).squeeze_dim(1);
    while chosen.len() < k {
        let d = Vec::<f64>::try_from(nearest.to_kind(Kind::Double))?;
        let mut cumulative = Vec::with_capacity(n);
        let mut total = 0.0;
        for v in &d {
            total += v;
            cumulative.push(total);
        }
        let next = if total > 0.0 { rng.categorical(&cumulative) } else { rng.below(n) };
        chosen.push(next as i64);
        let dist = squared_distances(x, x2, &x.get(next as i64).unsqueeze(0)).squeeze_dim(1);
        nearest = nearest.minimum(&dist);
    }
    Ok(x.index_select(0, &Tensor::from_slice(&chosen)))
}

/// Member means of `assignments`; an empty cluster keeps its previous centroid.
fn member_means(x: &Tensor, assignments: &Tensor, previous: &Tensor, k: i64) -> Tensor {
    let d = x.size()[1];
    let sums = Tensor::zeros([k, d], (Kind::Float, x.device())).index_add(0, assignments, x);
    let counts = Tensor::zeros([k], (Kind::Float, x.device())).index_add(0, assignments, &Tensor::ones([x.size()[0]], (Kind::Float, x.device())));
    let empty = counts.eq(0.0).unsqueeze(1);
    let means = sums / counts.clamp_min(1.0).unsqueeze(1);
    means.where_self(&empty.logical_not(), previous)
}

/// Gives every empty cluster the sample farthest from its own centroid (taken from a cluster
/// with more than one member), so that no cluster ends empty. `d` (n, k) squared distances.
fn fill_empty(d: &Tensor, assignments: Tensor, k: usize) -> Result<Tensor> {
    let mut a = Vec::<i64>::try_from(&assignments)?;
    let mut counts = vec![0usize; k];
    a.iter().for_each(|&j| counts[j as usize] += 1);
    if counts.iter().all(|&n| n > 0) {
        return Ok(assignments);
    }
    let mut own = Vec::<f32>::try_from(d.gather(1, &assignments.unsqueeze(1), false).squeeze_dim(1))?;
    while let Some(empty) = counts.iter().position(|&n| n == 0) {
        let donor = (0..a.len()).filter(|&i| counts[a[i] as usize] > 1).max_by(|&i, &j| own[i].total_cmp(&own[j]));
        let Some(i) = donor else { break };
        counts[a[i] as usize] -= 1;
        a[i] = empty as i64;
        counts[empty] += 1;
        own[i] = f32::NEG_INFINITY;
    }
    Ok(Tensor::from_slice(&a))
}

/// Fits k-means on `features` ((N, D) f32). Deterministic for a seed.
pub fn fit(features: &Tensor, params: &KMeansParams, seed: u64) -> Result<KMeans> {
    let n = features.size()[0] as usize;
    if params.k < 1 || params.k > n {
        return Err(Error::invalid("k", format!("{} (for {n} samples)", params.k), "between 1 and the number of samples"));
    }
    let x = features.to_kind(Kind::Float);
    let x2 = x.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
    let mut rng = Rng::derive(seed, "kmeans");
    let mut best: Option<KMeans> = None;
    for _ in 0..params.restarts.max(1) {
        let mut centroids = plus_plus(&x, &x2, params.k, &mut rng)?;
        let d = squared_distances(&x, &x2, &centroids);
        let mut assignments = fill_empty(&d, d.argmin(1, false), params.k)?;
        for _ in 0..params.max_iters {
            centroids = member_means(&x, &assignments, &centroids, params.k as i64);
            let d = squared_distances(&x, &x2, &centroids);
            let next = fill_empty(&d, d.argmin(1, false), params.k)?;
            let changed = next.ne_tensor(&assignments).any().int64_value(&[]) != 0;
            assignments = next;
            if !changed {
                break;
            }
        }
        centroids = member_means(&x, &assignments, &centroids, params.k as i64);
        let inertia = squared_distances(&x, &x2, &centroids).gather(1, &assignments.unsqueeze(1), false).sum(Kind::Double).double_value(&[]);
        if best.as_ref().is_none_or(|b| inertia < b.inertia) {
            best = Some(KMeans { centroids, assignments: Vec::<i64>::try_from(&assignments)?, inertia });
        }
    }
    best.ok_or_else(|| Error::invalid("restarts", params.restarts, "at least 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: u64) -> (Tensor, Vec<i64>) {
        let mut rng = Rng::new(seed);
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        let mut rows = vec![];
        let mut labels = vec![];
        for i in 0..200 {
            let k = i % 4;
            rows.push((centres[k][0] + rng.normal()) as f32);
            rows.push((centres[k][1] + rng.normal()) as f32);
            labels.push(k as i64);
        }
        (Tensor::from_slice(&rows).view([200, 2]), labels)
    }

    #[test]
    fn separates_well_separated_blobs_and_uses_member_means() {
        let (x, labels) = blobs(1);
        let fit = fit(&x, &KMeansParams::new(4), 3).unwrap();
        assert_eq!(crate::eval::hungarian_accuracy(&fit.assignments, &labels, 4, 4), 1.0);
        let rows = Vec::<Vec<f32>>::try_from(&x).unwrap();
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let means = crate::naming::kernels::member_means(&flat, 2, &fit.assignments, 4).unwrap();
        let centroids = Vec::<Vec<f32>>::try_from(&fit.centroids).unwrap();
        for (m, c) in means.iter().zip(&centroids) {
            assert!((m[0] - c[0] as f64).abs() < 1e-4 && (m[1] - c[1] as f64).abs() < 1e-4);
        }
    }

    #[test]
    fn same_seed_same_result_and_more_restarts_never_worse() {
        let (x, _) = blobs(2);
        let a = fit(&x, &KMeansParams { k: 6, restarts: 1, max_iters: 100 }, 5).unwrap();
        let b = fit(&x, &KMeansParams { k: 6, restarts: 1, max_iters: 100 }, 5).unwrap();
        assert_eq!(a.assignments, b.assignments);
        let many = fit(&x, &KMeansParams { k: 6, restarts: 8, max_iters: 100 }, 5).unwrap();
        assert!(many.inertia <= a.inertia + 1e-6);
    }

    #[test]
    fn no_cluster_ends_empty() {
        // Many clusters on few distinct points: Lloyd alone leaves clusters empty.
        let mut rng = Rng::new(4);
        let rows: Vec<f32> = (0..300).flat_map(|i| { let p = (i % 4) as f32; [p + 1e-3 * rng.normal() as f32, 0.0] }).collect();
        let x = Tensor::from_slice(&rows).view([300, 2]);
        for seed in 0..5 {
            let fit = fit(&x, &KMeansParams { k: 12, restarts: 2, max_iters: 50 }, seed).unwrap();
            let mut counts = vec![0; 12];
            fit.assignments.iter().for_each(|&a| counts[a as usize] += 1);
            assert!(counts.iter().all(|&n| n > 0), "seed {seed}: {counts:?}");
        }
    }

    #[test]
    fn rejects_more_clusters_than_samples() {
        let (x, _) = blobs(3);
        let Err(err) = fit(&x, &KMeansParams::new(500), 0) else { panic!("500 clusters of 200 samples accepted") };
        assert!(err.to_string().contains("number of samples"), "{err}");
    }
}
