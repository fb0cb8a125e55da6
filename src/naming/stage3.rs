//! The paper's stage III as a naming method: a linear fC trained by cluster-guided Sinkhorn
//! distribution matching (L_cgsk, eq. 5, or L_sk) against the label prior; see
//! [`crate::matching`] for the training itself.
use super::{named_centroids, NamedClassifier, Namer, NamingContext, NamingKind, NamingObserver};
use crate::error::Result;
use crate::matching::{self, Classifier, MatchingParams};
use tch::Tensor;

/// Stage III with checked settings.
pub struct Stage3Namer {
    params: MatchingParams,
}

impl Stage3Namer {
    pub fn new(params: MatchingParams) -> Result<Self> {
        params.check()?;
        Ok(Stage3Namer { params })
    }
}

impl Namer for Stage3Namer {
    fn kind(&self) -> NamingKind {
        NamingKind::Stage3
    }

    fn steps(&self) -> usize {
        self.params.steps
    }

    /// Without a start, fC starts from the centroids in the clusters' arbitrary order (the
    /// paper); with one, row k starts at the centroid of the cluster named k.
    fn name_clusters(&self, ctx: &NamingContext, start: Option<&[usize]>, seed: u64, observer: &mut NamingObserver) -> Result<NamedClassifier> {
        let centres = match start {
            Some(class_of) => named_centroids(ctx.clusters.centres(), class_of),
            None => ctx.clusters.centres().shallow_clone(),
        };
        let c = ctx.prior.n_classes();
        let result = matching::train(ctx.train, Some(&ctx.clusters.assignments), Some(&centres), ctx.atoms, c, &self.params, seed, |entry, log_now| observer(entry, log_now))?;
        let class_of = majority_class(&result.classifier, ctx.train, &ctx.clusters.assignments, ctx.clusters.n_clusters(), c);
        Ok(NamedClassifier {
            method: NamingKind::Stage3,
            classifier: result.classifier,
            initial: result.initial,
            class_of,
            selection_score: result.best_window_loss,
            best_step: result.best_step,
            geometry: None,
        })
    }
}

/// For each cluster, the class fC predicts for most of its members (ties: the lower index).
pub fn majority_class(classifier: &Classifier, features: &Tensor, assignments: &[i64], k: usize, c: usize) -> Vec<usize> {
    let predictions = classifier.predict(&features.to_device(tch::Device::Cpu));
    let mut votes = vec![vec![0usize; c]; k];
    for (&cluster, &class) in assignments.iter().zip(&predictions) {
        votes[cluster as usize][class as usize] += 1;
    }
    votes.iter().map(|v| (0..c).max_by(|&a, &b| v[a].cmp(&v[b]).then(b.cmp(&a))).unwrap_or(0)).collect()
}
