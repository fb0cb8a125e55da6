//! Naming clusters by geometry (beyond the paper): the cluster-to-class assignment whose
//! class-name similarities best agree with the centroid similarities (see [`super::qap`]), used
//! as a nearest-centroid classifier.
use super::qap::{self, cosine_matrix, rank_matrix, standardize, Naming, NamingProblem};
use super::{named_centroids, NamedClassifier, Namer, NamingContext, NamingKind, NamingObserver};
use crate::error::{Error, Result};
use crate::matching::nearest_centroid_classifier;
use serde::{Deserialize, Serialize};

/// How the two similarity matrices of the naming objective are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NamingSimilarity {
    /// Cosine similarity of the centroids and the prior's class similarity, as they are.
    Cosine,
    /// Both turned into per-row neighbour ranks (see `qap::rank_matrix`).
    Rank,
}

/// Settings of the geometry naming.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GeometryParams {
    /// Weight of the cluster-size term (0: geometry only).
    pub size_weight: f64,
    /// Largest c solved exactly; above it, restarted local search.
    pub exact_limit: usize,
    pub similarity: NamingSimilarity,
}

impl Default for GeometryParams {
    fn default() -> Self {
        GeometryParams { size_weight: 0.0, exact_limit: 10, similarity: NamingSimilarity::Cosine }
    }
}

impl GeometryParams {
    pub fn check(&self) -> Result<()> {
        if !(self.size_weight >= 0.0 && self.size_weight.is_finite()) {
            return Err(Error::invalid("naming_size_weight", self.size_weight, "a non-negative number"));
        }
        if self.exact_limit > 12 {
            return Err(Error::invalid("naming exact_limit", self.exact_limit, "at most 12 (12! assignments)"));
        }
        Ok(())
    }
}

/// The geometry naming's solution and what the report says about its confidence.
#[derive(Clone, Debug)]
pub struct GeometryNaming {
    pub solution: Naming,
    /// (class a, class b, objective lost by swapping them) for swaps within 2% of the largest
    /// possible objective: the names the geometry can hardly tell apart.
    pub interchangeable: Vec<(usize, usize, f64)>,
}

/// The geometry naming with checked settings.
pub struct GeometryNamer {
    params: GeometryParams,
}

impl GeometryNamer {
    pub fn new(params: GeometryParams) -> Result<Self> {
        params.check()?;
        Ok(GeometryNamer { params })
    }

    /// The naming problem and its solution for these centroids, sizes and class structure.
    pub fn solve(&self, centroids: &[Vec<f64>], cluster_sizes: &[usize], class_similarity: &[Vec<f64>], alpha: &[f64], seed: u64) -> (NamingProblem, Naming) {
        let total = cluster_sizes.iter().sum::<usize>().max(1) as f64;
        let proportions: Vec<f64> = cluster_sizes.iter().map(|&s| s as f64 / total).collect();
        let (clusters, classes) = match self.params.similarity {
            NamingSimilarity::Cosine => (cosine_matrix(centroids), class_similarity.to_vec()),
            NamingSimilarity::Rank => (rank_matrix(&cosine_matrix(centroids)), rank_matrix(class_similarity)),
        };
        let problem = NamingProblem {
            cluster_similarity: standardize(&clusters),
            class_similarity: standardize(&classes),
            sizes: (self.params.size_weight > 0.0).then(|| (proportions, alpha.to_vec(), self.params.size_weight)),
        };
        let solution = qap::solve(&problem, self.params.exact_limit, seed);
        (problem, solution)
    }
}

impl Namer for GeometryNamer {
    fn kind(&self) -> NamingKind {
        NamingKind::Geometry
    }

    fn steps(&self) -> usize {
        0
    }

    fn name_clusters(&self, ctx: &NamingContext, _start: Option<&[usize]>, seed: u64, _observer: &mut NamingObserver) -> Result<NamedClassifier> {
        let centres = ctx.clusters.centres();
        let centroids = Vec::<Vec<f64>>::try_from(centres.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double))?;
        let (problem, solution) = self.solve(&centroids, &ctx.clusters.cluster_sizes(), &ctx.prior.similarity, &ctx.prior.alpha, seed);
        let c = problem.n();
        // Scores are sums over c(c-1) products of standardised entries: |score| <= c(c-1).
        let interchangeable = qap::interchangeable(&problem, &solution, 0.02 * (c * (c - 1)) as f64);
        let classifier = nearest_centroid_classifier(&named_centroids(centres, &solution.class_of));
        Ok(NamedClassifier {
            method: NamingKind::Geometry,
            initial: classifier.clone_detached(),
            classifier,
            class_of: solution.class_of.clone(),
            // Seeds are compared by their naming objective (higher is better).
            selection_score: -solution.score,
            best_step: 0,
            geometry: Some(GeometryNaming { solution, interchangeable }),
        })
    }
}
