//! Naming: from stage II's clusters to a classifier whose outputs are class names. Every method
//! implements [`Namer`]; a run names its clusters with a chain of them (`[stages] naming`):
//!
//! - `["stage3"]`: the paper's stage III (cluster-guided distribution matching from the
//!   centroids in the clusters' arbitrary order) - the reproduction;
//! - `["geometry"]`: the clusters named by matching the centroids' similarity structure to the
//!   class names' (a quadratic assignment, beyond the paper), used as a nearest-centroid classifier;
//! - `["geometry", "stage3"]`: stage III started from the named centroids.
//!
//! Naming by a person ([`person`], `[classes] cluster_names`) is not a chain step: it names the
//! clusters a run has already made (and shown on the cluster sheets), in a stage of its own.
//!
//! Each step receives the previous step's result as its start. No labels enter here.
pub mod certified;
pub mod consensus;
pub mod geometry;
pub mod kernels;
pub mod person;
pub mod qap;
pub mod stage3;
pub mod symmetry;
pub mod trust;

use crate::clustering::Clusters;
use crate::error::{Error, Result};
use crate::matching::{Classifier, MatchingParams, StepLog};
use crate::prior::sampler::PriorAtoms;
use crate::prior::LabelPrior;
use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use geometry::{GeometryNamer, GeometryNaming, GeometryParams, NameTrust, NamingCentres};
pub use kernels::NamingKernel;
pub use stage3::Stage3Namer;

/// What every naming method sees.
pub struct NamingContext<'a> {
    /// (N, D) f32 training features, rows L2-normalised.
    pub train: &'a Tensor,
    /// The training features as given, where they are not unit length (`FeatureData::train_raw`).
    pub train_raw: Option<&'a Tensor>,
    pub clusters: &'a Clusters,
    pub prior: &'a LabelPrior,
    pub atoms: &'a PriorAtoms,
}

/// A classifier whose outputs are class indices, with the cluster-to-class map it implies.
pub struct NamedClassifier {
    pub method: NamingKind,
    pub classifier: Classifier,
    /// The classifier before any training (for reports and ablations).
    pub initial: Classifier,
    /// class_of[cluster]: the class each cluster was named (for stage III: the class most of
    /// the cluster's training members get).
    pub class_of: Vec<usize>,
    /// Label-free score for choosing among seeds, lower is better: stage III's lowest windowed
    /// training loss, or minus the naming objective.
    pub selection_score: f64,
    /// Stage III: the step of the selected parameters (0 where nothing was trained).
    pub best_step: usize,
    /// The geometry naming's solution and near-ties, where this step was the geometry.
    pub geometry: Option<GeometryNaming>,
}

impl Clone for NamedClassifier {
    fn clone(&self) -> Self {
        NamedClassifier {
            method: self.method,
            classifier: self.classifier.clone_detached(),
            initial: self.initial.clone_detached(),
            class_of: self.class_of.clone(),
            selection_score: self.selection_score,
            best_step: self.best_step,
            geometry: self.geometry.clone(),
        }
    }
}

/// Progress of a naming step that trains (stage III): each step, and whether to log it.
pub type NamingObserver<'o> = dyn FnMut(&StepLog, bool) -> Result<()> + 'o;

/// A naming method.
pub trait Namer {
    fn kind(&self) -> NamingKind;
    /// Steps reported to the observer (0 for methods that do not train).
    fn steps(&self) -> usize;
    /// Names the clusters of `ctx`; `start` is the previous step's cluster-to-class map
    /// (`class_of[cluster]`), where a previous step named them.
    fn name_clusters(&self, ctx: &NamingContext, start: Option<&[usize]>, seed: u64, observer: &mut NamingObserver) -> Result<NamedClassifier>;
}

/// A naming method's name in configs and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NamingKind {
    /// The paper's stage III: cluster-guided Sinkhorn distribution matching.
    #[value(name = "stage3")]
    #[serde(rename = "stage3")]
    Stage3,
    /// Clusters named by geometry (quadratic assignment), as a nearest-centroid classifier.
    Geometry,
    /// Clusters named by a person from the cluster sheets (`[classes] cluster_names`), as a
    /// nearest-centroid classifier. Not a chain step (no `--naming person`).
    #[value(skip)]
    Person,
}

impl NamingKind {
    pub fn describe(self) -> &'static str {
        match self {
            NamingKind::Stage3 => "the paper's stage III (cluster-guided distribution matching)",
            NamingKind::Geometry => "naming by geometry (centroid similarities matched to class-name similarities)",
            NamingKind::Person => "named by a person from the cluster sheets",
        }
    }
}

/// The checked settings of every naming method a chain may use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NamingSettings {
    pub chain: Vec<NamingKind>,
    pub geometry: GeometryParams,
    pub stage3: MatchingParams,
}

impl NamingSettings {
    /// Checks the chain: not empty, each method once, geometry (which ignores a start) first.
    pub fn check(&self) -> Result<()> {
        if self.chain.is_empty() {
            return Err(Error::invalid("naming", "[]", "at least one method, e.g. [\"stage3\"] (the paper) or [\"geometry\"]"));
        }
        for (i, kind) in self.chain.iter().enumerate() {
            if self.chain[..i].contains(kind) {
                return Err(Error::invalid("naming", chain_text(&self.chain), "each method at most once"));
            }
        }
        if self.chain.contains(&NamingKind::Person) {
            return Err(Error::invalid("naming", chain_text(&self.chain), "stage3 and geometry only: to name the clusters yourself, give [classes] cluster_names (or `run --cluster-names FILE`)"));
        }
        if self.chain.iter().skip(1).any(|&k| k == NamingKind::Geometry) {
            return Err(Error::invalid("naming", chain_text(&self.chain), "\"geometry\" only as the first step (it names clusters from scratch)"));
        }
        self.stage3.check()?;
        self.geometry.check()
    }

    /// The chain's methods, built from checked settings.
    pub fn build(&self) -> Result<NamingChain> {
        self.check()?;
        let steps = self.chain.iter().map(|&k| self.namer(k)).collect::<Result<Vec<_>>>()?;
        Ok(NamingChain { steps })
    }

    pub fn namer(&self, kind: NamingKind) -> Result<Box<dyn Namer>> {
        Ok(match kind {
            NamingKind::Stage3 => Box::new(Stage3Namer::new(self.stage3.clone())?),
            NamingKind::Geometry => Box::new(GeometryNamer::new(self.geometry.clone())?),
            NamingKind::Person => return Err(Error::invalid("naming", "\"person\"", "a chain of stage3 and geometry (a person's names come from [classes] cluster_names)")),
        })
    }

    /// True for the paper's own chain.
    pub fn is_paper(&self) -> bool {
        self.chain == [NamingKind::Stage3]
    }

    pub fn describe(&self) -> String {
        match self.chain.as_slice() {
            [NamingKind::Geometry, NamingKind::Stage3] => "the paper's stage III started from the clusters named by geometry".into(),
            [one] => one.describe().into(),
            _ => chain_text(&self.chain),
        }
    }
}

/// `["geometry", "stage3"]`
pub fn chain_text(chain: &[NamingKind]) -> String {
    serde_json::to_string(chain).unwrap_or_default()
}

/// The methods of a naming chain, in order.
pub struct NamingChain {
    steps: Vec<Box<dyn Namer>>,
}

impl NamingChain {
    pub fn steps(&self) -> usize {
        self.steps.iter().map(|s| s.steps()).sum()
    }

    /// The chain's i-th method.
    pub fn step(&self, i: usize) -> &dyn Namer {
        self.steps[i].as_ref()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The centroids in class order: row k is the centroid of the cluster named k (`class_of[cluster]`).
pub fn named_centroids(centroids: &Tensor, class_of: &[usize]) -> Tensor {
    let mut cluster_of_class = vec![0i64; class_of.len()];
    for (cluster, &class) in class_of.iter().enumerate() {
        cluster_of_class[class] = cluster as i64;
    }
    centroids.index_select(0, &Tensor::from_slice(&cluster_of_class).to_device(centroids.device()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(chain: Vec<NamingKind>) -> NamingSettings {
        NamingSettings { chain, geometry: GeometryParams::default(), stage3: MatchingParams::default() }
    }

    #[test]
    fn chains_are_checked_with_a_message_naming_the_rule() {
        use NamingKind::*;
        assert!(settings(vec![Stage3]).check().is_ok());
        assert!(settings(vec![Geometry]).check().is_ok());
        assert!(settings(vec![Geometry, Stage3]).check().is_ok());
        let error = |chain| settings(chain).check().unwrap_err().to_string();
        assert!(error(vec![]).contains("invalid parameter naming = []: expected at least one method"));
        assert!(error(vec![Stage3, Stage3]).contains("each method at most once"));
        assert!(error(vec![Stage3, Geometry]).contains("\"geometry\" only as the first step"));
        assert!(error(vec![Person]).contains("cluster_names"));
        let mut bad = settings(vec![Stage3]);
        bad.stage3.learning_rate = -1.0;
        assert!(bad.check().unwrap_err().to_string().contains("learning_rate = -1"));
    }

    #[test]
    fn named_centroids_put_each_cluster_at_its_class_row() {
        let centroids = Tensor::from_slice(&[0f32, 1., 2.]).view([3, 1]);
        let rows = Vec::<Vec<f32>>::try_from(named_centroids(&centroids, &[2, 0, 1])).unwrap();
        assert_eq!(rows, vec![vec![1.0], vec![2.0], vec![0.0]]);
    }
}
