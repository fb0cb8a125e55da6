//! Naming clusters by geometry (beyond the paper): the cluster-to-class assignment whose
//! class similarities best agree with the cluster similarities (the quadratic assignment of
//! [`super::qap`]), used as a nearest-centroid classifier, with a label-free score of how far
//! the names can be trusted ([`super::trust`]).
//!
//! Both similarity matrices come from vectors through one [`NamingKernel`]: the clusters'
//! member means (not the learned Sinkhorn centroids, which sit off their members) and the
//! prior's class vectors (name embeddings; class positions for ordinal tasks, compared by
//! Euclidean distance whatever the kernel).
use super::kernels::{kernel_similarity, NamingKernel};
use super::qap::{self, Naming, NamingProblem};
use super::trust::{alignment_score, AlignmentScore, TrustParams};
use super::{named_centroids, NamedClassifier, Namer, NamingContext, NamingKind, NamingObserver};
use crate::error::{Error, Result};
use crate::matching::nearest_centroid_classifier;
use crate::prior::LabelPrior;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Which centres of the clusters the naming compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NamingCentres {
    /// The mean of each cluster's members: moves with the features under any affine map.
    #[default]
    MemberMeans,
    /// The centres the clustering learned, where it has them (the naming before this release).
    Learned,
}

/// Settings of the geometry naming.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GeometryParams {
    /// Weight of the cluster-size term (0: geometry only).
    pub size_weight: f64,
    /// Largest c solved exactly; above it, restarted local search.
    pub exact_limit: usize,
    pub kernel: NamingKernel,
    pub centres: NamingCentres,
    /// Random permutations for the alignment score's null distribution.
    pub null_draws: usize,
    /// Names are trusted when the posterior probability of the chosen names averages at least this.
    pub trust_threshold: f64,
}

impl Default for GeometryParams {
    fn default() -> Self {
        GeometryParams { size_weight: 0.0, exact_limit: 10, kernel: NamingKernel::CentredCosine, centres: NamingCentres::MemberMeans, null_draws: 10_000, trust_threshold: 0.7 }
    }
}

impl GeometryParams {
    pub fn check(&self) -> Result<()> {
        if !(self.size_weight >= 0.0 && self.size_weight.is_finite()) {
            return Err(Error::invalid("naming_size_weight", self.size_weight, "a non-negative number"));
        }
        if self.exact_limit > 11 {
            return Err(Error::invalid("naming exact_limit", self.exact_limit, "at most 11 (11! assignments)"));
        }
        if self.null_draws < 100 {
            return Err(Error::invalid("naming null_draws", self.null_draws, "at least 100"));
        }
        if !(0.0..=1.0).contains(&self.trust_threshold) {
            return Err(Error::invalid("naming_trust_threshold", self.trust_threshold, "a probability in [0, 1]"));
        }
        Ok(())
    }

    /// The alignment score's settings for c classes: the Metropolis budget above the exact
    /// limit is capped at about 4 million proposals (c = 20: 20,000 sweeps; c = 100: 808).
    fn trust_params(&self, seed: u64, c: usize) -> TrustParams {
        let pairs = (c * c.saturating_sub(1) / 2).max(1);
        let mcmc_sweeps = (4_000_000 / pairs).clamp(200, TrustParams::default().mcmc_sweeps);
        TrustParams { null_draws: self.null_draws, min_mean_map_marginal: self.trust_threshold, exact_limit: self.exact_limit, mcmc_sweeps, seed, ..TrustParams::default() }
    }
}

/// The geometry naming's solution and how far it can be trusted.
#[derive(Clone, Debug)]
pub struct GeometryNaming {
    pub problem: NamingProblem,
    pub solution: Naming,
    /// (class a, class b, objective lost by swapping them) for swaps within 2% of the largest
    /// possible objective: the names the geometry can hardly tell apart.
    pub interchangeable: Vec<(usize, usize, f64)>,
    pub alignment: AlignmentScore,
    pub kernel: NamingKernel,
    /// The mean posterior probability above which names are trusted.
    pub threshold: f64,
}

/// How far one naming (`class_of[cluster]`) can be trusted, label-free.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NameTrust {
    /// Its objective's z-score against random permutations.
    pub z: f64,
    /// The mean posterior probability of its names: the expected share of clusters named right
    /// under the Gibbs posterior over namings.
    pub mean_posterior: f64,
    /// Per cluster, the posterior probability of its name.
    pub posterior: Vec<f64>,
    /// Groups of classes the geometry cannot tell apart.
    pub near_ties: Vec<Vec<usize>>,
    pub trusted: bool,
    pub threshold: f64,
}

impl GeometryNaming {
    /// The trust of any naming of these clusters (the geometry's own, or stage III's).
    pub fn trust_of(&self, class_of: &[usize]) -> NameTrust {
        let null = &self.alignment.null;
        let marginals = &self.alignment.posterior.marginals;
        let posterior: Vec<f64> = class_of.iter().enumerate().map(|(k, &c)| marginals[k][c]).collect();
        let mean_posterior = posterior.iter().sum::<f64>() / posterior.len().max(1) as f64;
        NameTrust {
            z: (self.problem.score(class_of) - null.mean) / null.std.max(1e-12),
            mean_posterior,
            posterior,
            near_ties: self.alignment.near_ties.clone(),
            trusted: mean_posterior >= self.threshold,
            threshold: self.threshold,
        }
    }
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

    /// The kernel used for this prior: the configured one, or Euclidean distance between class
    /// positions for ordered classes (a line has no useful angles).
    pub fn kernel_for(&self, prior: &LabelPrior) -> NamingKernel {
        if prior.ordinal { NamingKernel::Euclidean } else { self.params.kernel }
    }

    /// Names clusters with these centres ((k, D) rows) and sizes after the prior's classes;
    /// scores the naming.
    pub fn name(&self, centres: &[Vec<f64>], cluster_sizes: &[usize], prior: &LabelPrior, seed: u64) -> Result<GeometryNaming> {
        self.name_vectors(centres, cluster_sizes, &prior.class_vectors, &prior.alpha, self.kernel_for(prior), seed)
    }

    /// `name` with the class side given directly: one vector and one proportion per class.
    pub fn name_vectors(&self, centres: &[Vec<f64>], cluster_sizes: &[usize], class_vectors: &[Vec<f64>], alpha: &[f64], kernel: NamingKernel, seed: u64) -> Result<GeometryNaming> {
        if centres.len() != class_vectors.len() {
            return Err(Error::invalid("n_clusters", centres.len(), format!("one cluster per class ({})", class_vectors.len())));
        }
        let total = cluster_sizes.iter().sum::<usize>().max(1) as f64;
        let proportions: Vec<f64> = cluster_sizes.iter().map(|&s| s as f64 / total).collect();
        let problem = NamingProblem {
            cluster_similarity: kernel_similarity(centres, kernel),
            class_similarity: kernel_similarity(class_vectors, kernel),
            sizes: (self.params.size_weight > 0.0).then(|| (proportions, alpha.to_vec(), self.params.size_weight)),
        };
        let solution = qap::solve(&problem, self.params.exact_limit, seed);
        let c = problem.n();
        // Scores are sums over c(c-1) products of standardised entries: |score| <= c(c-1).
        let interchangeable = qap::interchangeable(&problem, &solution, 0.02 * (c * (c - 1)) as f64);
        let alignment = alignment_score(&problem, &solution, &self.params.trust_params(seed, c));
        Ok(GeometryNaming { problem, solution, interchangeable, alignment, kernel, threshold: self.params.trust_threshold })
    }

    fn centres<'t>(&self, ctx: &'t NamingContext) -> &'t Tensor {
        match self.params.centres {
            NamingCentres::MemberMeans => &ctx.clusters.member_means,
            NamingCentres::Learned => ctx.clusters.centres(),
        }
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
        let centres = self.centres(ctx);
        let rows = Vec::<Vec<f64>>::try_from(centres.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double))?;
        let naming = self.name(&rows, &ctx.clusters.cluster_sizes(), ctx.prior, seed)?;
        let classifier = nearest_centroid_classifier(&named_centroids(centres, &naming.solution.class_of));
        Ok(NamedClassifier {
            method: NamingKind::Geometry,
            initial: classifier.clone_detached(),
            classifier,
            class_of: naming.solution.class_of.clone(),
            // Seeds are compared by their naming objective (higher is better).
            selection_score: -naming.solution.score,
            best_step: 0,
            geometry: Some(naming),
        })
    }
}
