//! Stages II and III on a feature matrix, over several seeds, with evaluation and the paper's
//! ablations. Data flows one way: features -> clusters -> classifier -> predictions -> report;
//! labels enter only at `evaluate`.
use crate::cluster::{Clustering, ClusteringParams};
use crate::error::Result;
use crate::eval::{self, ClassificationReport, MeanStd};
use crate::io::JsonLines;
use crate::matching::{self, ClassifierInit, Classifier, Matching, MatchingLoss, MatchingParams};
use crate::naming::{self, Naming, NamingParams};
use crate::prior::sampler::PriorAtoms;
use crate::prior::LabelPrior;
use crate::progress;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tch::Tensor;

/// Everything stages II-III need (no labels).
pub struct Inputs<'a> {
    /// (N, D) f32, rows L2-normalised.
    pub train: &'a Tensor,
    /// (M, D) f32, rows L2-normalised.
    pub test: &'a Tensor,
    pub atoms: &'a PriorAtoms,
    pub n_classes: usize,
    /// The prior's class similarity and proportions, for naming clusters by geometry.
    pub class_similarity: &'a [Vec<f64>],
    pub alpha: &'a [f64],
}

impl<'a> Inputs<'a> {
    /// Features with the prior's atoms, class count, similarity and proportions.
    pub fn new(prior: &'a LabelPrior, atoms: &'a PriorAtoms, train: &'a Tensor, test: &'a Tensor) -> Self {
        Inputs { train, test, atoms, n_classes: prior.n_classes(), class_similarity: &prior.similarity, alpha: &prior.alpha }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PipelineParams {
    pub clustering: ClusteringParams,
    pub matching: MatchingParams,
    pub naming: NamingParams,
}

/// What one seed produced.
pub struct SeedRun {
    pub seed: u64,
    pub clustering: Clustering,
    pub matching: Matching,
    /// Predicted class of each test sample (argmax fC).
    pub test_predictions: Vec<i64>,
    /// Nearest-centroid cluster of each test sample.
    pub test_clusters: Vec<i64>,
    /// The clusters named by geometry (beyond the paper), and the test predictions of that
    /// naming alone (nearest centroid, then its cluster's name).
    pub naming: Naming,
    pub naming_predictions: Vec<i64>,
    /// Class pairs the naming can hardly tell apart (swap cost within 10% of the score range).
    pub naming_interchangeable: Vec<(usize, usize, f64)>,
    pub cluster_seconds: f64,
    pub match_seconds: f64,
}

/// Stage II for one seed, with a progress bar and metrics lines.
pub fn run_clustering(inputs: &Inputs, params: &ClusteringParams, seed: u64, log: &mut JsonLines, quiet: bool) -> Result<Clustering> {
    let bar = progress::bar(params.steps as u64, "Clustering", quiet);
    let mut log_error = None;
    let clustering = Clustering::fit(inputs.train, params, seed, |step, loss, iterations| {
        bar.inc(1);
        if step % 100 == 0 || step + 1 == params.steps {
            bar.set_message(format!("OT cost {loss:.4}"));
            let line = json!({"stage": "cluster", "seed": seed, "step": step + 1, "loss": loss, "sinkhorn_iterations": iterations});
            if let Err(e) = log.write(&line) {
                log_error.get_or_insert(e);
            }
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = log_error {
        return Err(e);
    }
    Ok(clustering)
}

/// Stage III for one seed and one variant (loss, init).
pub fn run_matching(
    features: &Tensor,
    clustering: Option<&Clustering>,
    inputs: &Inputs,
    params: &MatchingParams,
    seed: u64,
    label: &str,
    log: &mut JsonLines,
    quiet: bool,
) -> Result<Matching> {
    let bar = progress::bar(params.steps as u64, "Matching", quiet);
    let result = matching::train(
        features,
        clustering.map(|c| c.assignments.as_slice()),
        clustering.map(|c| &c.centroids),
        inputs.atoms,
        inputs.n_classes,
        params,
        seed,
        |entry, log_now| {
            bar.inc(1);
            if log_now {
                bar.set_message(format!("loss {:.4}", entry.window_mean));
                log.write(&json!({"stage": "match", "variant": label, "seed": seed, "step": entry.step,
                    "loss": entry.loss, "window_mean": entry.window_mean,
                    "sinkhorn_iterations": entry.sinkhorn_iterations,
                    "sinkhorn_converged": entry.sinkhorn_converged, "elapsed_s": entry.elapsed_s}))?;
            }
            Ok(())
        },
    );
    bar.finish_and_clear();
    log.flush()?;
    result
}

/// Stages II and III for one seed.
pub fn run_seed(inputs: &Inputs, params: &PipelineParams, seed: u64, log: &mut JsonLines, quiet: bool) -> Result<SeedRun> {
    let t0 = std::time::Instant::now();
    let clustering = run_clustering(inputs, &params.clustering, seed, log, quiet)?;
    let cluster_seconds = t0.elapsed().as_secs_f64();
    let (naming, naming_interchangeable) = name_clusters(&clustering, inputs, &params.naming, seed)?;
    let t1 = std::time::Instant::now();
    let named_centroids = named_centroids(&clustering.centroids, &naming.class_of);
    let matching = if params.naming.classifier_only {
        let classifier = matching::nearest_centroid_classifier(&named_centroids);
        // No training loss: seeds are compared by their naming objective (lower is better).
        Matching { initial: classifier.clone_detached(), classifier, best_step: 0, best_window_loss: -naming.score, curve: vec![] }
    } else if params.naming.init_stage_three {
        let named = Clustering { centroids: named_centroids, assignments: clustering.assignments.clone(), curve: vec![] };
        run_matching(inputs.train, Some(&named), inputs, &params.matching, seed, "named", log, quiet)?
    } else {
        run_matching(inputs.train, Some(&clustering), inputs, &params.matching, seed, "main", log, quiet)?
    };
    let match_seconds = t1.elapsed().as_secs_f64();
    let test_predictions = matching.classifier.predict(&inputs.test.to_device(tch::Device::Cpu));
    let test_clusters = clustering.predict(inputs.test);
    let naming_predictions = test_clusters.iter().map(|&k| naming.class_of[k as usize] as i64).collect();
    Ok(SeedRun { seed, clustering, matching, test_predictions, test_clusters, naming, naming_predictions, naming_interchangeable, cluster_seconds, match_seconds })
}

/// The centroids in class order: row k is the centroid of the cluster named k (`class_of[cluster]`).
pub fn named_centroids(centroids: &Tensor, class_of: &[usize]) -> Tensor {
    let mut cluster_of_class = vec![0i64; class_of.len()];
    for (cluster, &class) in class_of.iter().enumerate() {
        cluster_of_class[class] = cluster as i64;
    }
    centroids.index_select(0, &Tensor::from_slice(&cluster_of_class).to_device(centroids.device()))
}

/// Names the clusters of a seed by matching centroid geometry to class-name geometry; also
/// returns the class pairs whose swap costs at most 2% of the largest possible score (the
/// confidence report).
pub fn name_clusters(clustering: &Clustering, inputs: &Inputs, params: &NamingParams, seed: u64) -> Result<(Naming, Vec<(usize, usize, f64)>)> {
    let centroids = Vec::<Vec<f64>>::try_from(clustering.centroids.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double))?;
    let (problem, solution) = naming::name_clusters(&centroids, &clustering.cluster_sizes(), inputs.class_similarity, inputs.alpha, params, seed);
    let c = problem.n();
    // Scores are sums over c(c-1) products of standardised entries: |score| <= c(c-1).
    let pairs = naming::interchangeable(&problem, &solution, 0.02 * (c * (c - 1)) as f64);
    Ok((solution, pairs))
}

/// Per-seed metrics against the test labels.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedMetrics {
    pub seed: u64,
    /// Zero-label accuracy: argmax fC against the labels, no matching.
    pub accuracy: f64,
    pub report: ClassificationReport,
    /// The paper's "Random" baseline: a randomly initialised fC on the same features.
    pub random_baseline_accuracy: f64,
    pub cluster_hungarian_accuracy: f64,
    pub cluster_nmi: f64,
    pub cluster_ari: f64,
    pub classifier_hungarian_accuracy: f64,
    pub classifier_nmi: f64,
    pub classifier_ari: f64,
    /// Accuracy of the classifier at initialisation (before stage III).
    pub initial_accuracy: f64,
    /// Accuracy of the geometric naming alone (nearest centroid -> its cluster's name).
    pub naming_accuracy: f64,
    /// Score gap between the best and the second-best naming (exact solver).
    pub naming_gap: Option<f64>,
    pub best_step: usize,
    pub best_window_loss: f64,
    pub cluster_seconds: f64,
    pub match_seconds: f64,
}

/// Accuracy of a random fC drawn from the seed's own stream (the paper's "Random").
pub fn random_baseline(test: &Tensor, labels: &[i64], n_classes: usize, seed: u64) -> f64 {
    let d = test.size()[1] as usize;
    let classifier = Classifier::random(n_classes, d, &mut Rng::derive(seed, "random-baseline"));
    let pred = classifier.predict(&test.to_device(tch::Device::Cpu));
    eval::classification_report(&pred, labels, n_classes).accuracy
}

pub fn evaluate(run: &SeedRun, test: &Tensor, labels: &[i64], n_classes: usize) -> SeedMetrics {
    let k = run.clustering.n_clusters();
    let report = eval::classification_report(&run.test_predictions, labels, n_classes);
    let initial_pred = run.matching.initial.predict(&test.to_device(tch::Device::Cpu));
    SeedMetrics {
        seed: run.seed,
        accuracy: report.accuracy,
        random_baseline_accuracy: random_baseline(test, labels, n_classes, run.seed),
        cluster_hungarian_accuracy: eval::hungarian_accuracy(&run.test_clusters, labels, k, n_classes),
        cluster_nmi: eval::nmi(&run.test_clusters, labels, k, n_classes),
        cluster_ari: eval::ari(&run.test_clusters, labels, k, n_classes),
        classifier_hungarian_accuracy: eval::hungarian_accuracy(&run.test_predictions, labels, n_classes, n_classes),
        classifier_nmi: eval::nmi(&run.test_predictions, labels, n_classes, n_classes),
        classifier_ari: eval::ari(&run.test_predictions, labels, n_classes, n_classes),
        initial_accuracy: eval::classification_report(&initial_pred, labels, n_classes).accuracy,
        naming_accuracy: eval::classification_report(&run.naming_predictions, labels, n_classes).accuracy,
        naming_gap: run.naming.second_score.map(|s| run.naming.score - s),
        best_step: run.matching.best_step,
        best_window_loss: run.matching.best_window_loss,
        cluster_seconds: run.cluster_seconds,
        match_seconds: run.match_seconds,
        report,
    }
}

/// Mean ± std over seeds of the headline numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub accuracy: MeanStd,
    pub random_baseline: MeanStd,
    pub cluster_hungarian_accuracy: MeanStd,
    pub classifier_hungarian_accuracy: MeanStd,
    pub cluster_nmi: MeanStd,
    pub cluster_ari: MeanStd,
    pub initial_accuracy: MeanStd,
    pub naming_accuracy: MeanStd,
    /// Seeds whose classifier predicts every class at least once.
    pub seeds_without_collapse: usize,
}

pub fn summarize(seeds: &[SeedMetrics], n_classes: usize) -> Summary {
    let pick = |f: fn(&SeedMetrics) -> f64| eval::mean_std(&seeds.iter().map(f).collect::<Vec<_>>());
    Summary {
        accuracy: pick(|s| s.accuracy),
        random_baseline: pick(|s| s.random_baseline_accuracy),
        cluster_hungarian_accuracy: pick(|s| s.cluster_hungarian_accuracy),
        classifier_hungarian_accuracy: pick(|s| s.classifier_hungarian_accuracy),
        cluster_nmi: pick(|s| s.cluster_nmi),
        cluster_ari: pick(|s| s.cluster_ari),
        initial_accuracy: pick(|s| s.initial_accuracy),
        naming_accuracy: pick(|s| s.naming_accuracy),
        seeds_without_collapse: seeds.iter().filter(|s| s.report.predicted_classes == n_classes).count(),
    }
}

/// One row of the ablation table (method.md, Table 3).
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
