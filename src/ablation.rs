//! The paper's ablations (method.md, Table 3) on one set of features and seeds: the same
//! clusters per seed, stage III under each variant's loss and initialisation.
use crate::config::StageSettings;
use crate::error::Result;
use crate::eval::{self, MeanStd};
use crate::io::JsonLines;
use crate::matching::{ClassifierInit, MatchingLoss};
use crate::naming::{NamingContext, NamingKind};
use crate::orchestrator::Orchestrator;
use crate::prior::sampler::PriorAtoms;
use crate::prior::LabelPrior;
use crate::progress::status;
use crate::stages::FeatureData;
use serde::Serialize;

/// One row of the ablation table.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Variant {
    pub key: &'static str,
    pub name: &'static str,
    pub loss: MatchingLoss,
    pub init: ClassifierInit,
    /// Features of a randomly initialised backbone instead of the learned ones (A).
    pub random_backbone: bool,
}

pub const ABLATIONS: [Variant; 5] = [
    Variant { key: "A", name: "No SFL, no FC stage", loss: MatchingLoss::Sk, init: ClassifierInit::Random, random_backbone: true },
    Variant { key: "B", name: "No FC stage (L_sk)", loss: MatchingLoss::Sk, init: ClassifierInit::Centroids, random_backbone: false },
    Variant { key: "C", name: "No FC stage, no cluster init", loss: MatchingLoss::Sk, init: ClassifierInit::Random, random_backbone: false },
    Variant { key: "D", name: "All stages, no cluster init", loss: MatchingLoss::Cgsk, init: ClassifierInit::Random, random_backbone: false },
    Variant { key: "E", name: "All stages", loss: MatchingLoss::Cgsk, init: ClassifierInit::Centroids, random_backbone: false },
];

/// The paper's reported numbers for Table 3 (CIFAR-10), for the printed table.
pub fn paper_ablation_result(key: &str) -> &'static str {
    match key {
        "A" => "9.9 ± 0.5",
        "B" => "9.8 ± 0.2",
        "C" => "10.5 ± 1.9",
        "D" => "39.4 ± 14.3",
        "E" => "42.1 ± 5.5",
        _ => "",
    }
}

/// Accuracies per variant (in `ABLATIONS` order; empty where a variant was skipped) and of the
/// random fC, over the seeds.
pub struct AblationResults {
    pub per_variant: Vec<Vec<f64>>,
    pub random: Vec<f64>,
}

impl AblationResults {
    pub fn summary(&self, variant: usize) -> Option<MeanStd> {
        (!self.per_variant[variant].is_empty()).then(|| eval::mean_std(&self.per_variant[variant]))
    }
}

/// Runs every variant on every seed's clusters; variant (A) only with `random_backbone`.
pub fn run_ablations(
    prior: &LabelPrior,
    settings: &StageSettings,
    data: &FeatureData,
    labels: &[i64],
    random_backbone: Option<&FeatureData>,
    seeds: &[u64],
    log: &mut JsonLines,
    quiet: bool,
) -> Result<AblationResults> {
    let c = prior.n_classes();
    let orchestrator = Orchestrator::new(prior, settings, quiet)?;
    let atoms = PriorAtoms::new(prior);
    let mut results = AblationResults { per_variant: vec![Vec::new(); ABLATIONS.len()], random: Vec::new() };
    for &seed in seeds {
        let clusters = orchestrator.cluster(&data.train, seed, log)?;
        results.random.push(eval::random_baseline(&data.test, labels, c, seed));
        for (v, variant) in ABLATIONS.iter().enumerate() {
            let features = match (variant.random_backbone, random_backbone) {
                (false, _) => data,
                (true, Some(random)) => random,
                (true, None) => continue,
            };
            let mut naming = settings.paper_naming();
            naming.stage3.loss = variant.loss;
            naming.stage3.init = variant.init;
            let namer = naming.namer(NamingKind::Stage3)?;
            let ctx = NamingContext { train: &features.train, train_raw: features.train_raw.as_ref(), clusters: &clusters, prior, atoms: &atoms };
            let label = format!("({}) {}", variant.key, variant.name);
            let named = orchestrator.name_with(namer.as_ref(), &ctx, None, seed, &label, log)?;
            let pred = named.classifier.predict(&features.test.to_device(tch::Device::Cpu));
            let accuracy = eval::classification_report(&pred, labels, c).accuracy;
            status("Seed", &format!("{seed} {label}: accuracy {:.1}%", 100.0 * accuracy), quiet);
            results.per_variant[v].push(accuracy);
        }
    }
    Ok(results)
}
