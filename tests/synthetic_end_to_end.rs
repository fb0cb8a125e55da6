//! (d) Stages II-III end to end on synthetic features with known classes: c Gaussian clusters
//! in D dimensions, well separated. Checks that the clusters are recovered, none is empty, the
//! classifier predicts every class (no collapse), the loss falls, and that a seed reproduces
//! its results bit for bit. The zero-label accuracy is printed, not asserted: on separable
//! clusters every cluster-to-class permutation reaches zero transport cost, so the naming
//! comes from the optimisation path, not from the optimum.
use tch::Tensor;
use zerolabel::data::features::l2_normalize;
use zerolabel::eval;
use zerolabel::experiment::{self, Inputs, PipelineParams};
use zerolabel::io::JsonLines;
use zerolabel::prior::ordinal::ordinal_prior;
use zerolabel::prior::sampler::PriorAtoms;
use zerolabel::prior::PriorParams;
use zerolabel::rng::Rng;
use zerolabel::{cluster::ClusteringParams, matching::MatchingParams};

const C: usize = 10;
const D: usize = 32;

/// `per_class` samples of each class around a random unit-vector mean, noise sigma per axis.
fn gaussian_clusters(rng: &mut Rng, means: &[Vec<f64>], per_class: usize, sigma: f64) -> (Tensor, Vec<i64>) {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (k, mean) in means.iter().enumerate() {
        for _ in 0..per_class {
            values.extend(mean.iter().map(|m| (m + sigma * rng.normal()) as f32));
            labels.push(k as i64);
        }
    }
    let x = Tensor::from_slice(&values).view([(C * per_class) as i64, D as i64]);
    (l2_normalize(&x), labels)
}

fn data() -> (Tensor, Vec<i64>, Tensor, Vec<i64>) {
    let mut rng = Rng::new(123);
    let means: Vec<Vec<f64>> = (0..C)
        .map(|_| {
            let v: Vec<f64> = (0..D).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect();
    let (train, train_labels) = gaussian_clusters(&mut rng, &means, 400, 0.05);
    let (test, test_labels) = gaussian_clusters(&mut rng, &means, 100, 0.05);
    (train, train_labels, test, test_labels)
}

fn params() -> PipelineParams {
    let mut clustering = ClusteringParams::default_for(C);
    clustering.steps = 1000;
    let matching = MatchingParams { steps: 3000, ..MatchingParams::default() };
    PipelineParams { clustering, matching, naming: Default::default() }
}

#[test]
fn synthetic_clusters_end_to_end() {
    tch::set_num_threads(1);
    let (train, train_labels, test, test_labels) = data();
    let names: Vec<String> = (0..C).map(|k| format!("class {k}")).collect();
    let prior = ordinal_prior(&names, PriorParams::default()).unwrap();
    let atoms = PriorAtoms::new(&prior);
    let inputs = Inputs { train: &train, test: &test, atoms: &atoms, n_classes: C, class_similarity: &prior.similarity, alpha: &prior.alpha };
    let dir = std::env::temp_dir().join(format!("zl-synthetic-{}", std::process::id()));
    let mut log = JsonLines::create(&dir.join("log.jsonl")).unwrap();
    let params = params();

    let run = experiment::run_seed(&inputs, &params, 7, &mut log, true).unwrap();

    // Clusters recovered, none empty.
    let sizes = run.clustering.cluster_sizes();
    assert!(sizes.iter().all(|&s| s > 0), "empty cluster: {sizes:?}");
    let train_cluster_accuracy = eval::hungarian_accuracy(&run.clustering.assignments, &train_labels, C, C);
    let test_cluster_accuracy = eval::hungarian_accuracy(&run.test_clusters, &test_labels, C, C);
    assert!(train_cluster_accuracy >= 0.95, "train clusters matched accuracy {train_cluster_accuracy}");
    assert!(test_cluster_accuracy >= 0.95, "test clusters matched accuracy {test_cluster_accuracy}");

    // No collapse: every class is predicted on balanced data.
    let metrics = experiment::evaluate(&run, &test, &test_labels, C);
    assert_eq!(metrics.report.predicted_classes, C, "classes predicted: {:?}", metrics.report.confusion);

    // The loss falls: the windowed mean at the end is below the one at the start.
    let curve = &run.matching.curve;
    let (first, last) = (curve.first().unwrap().window_mean, curve.last().unwrap().window_mean);
    assert!(last < first, "matching loss did not fall: {first} -> {last}");

    println!(
        "synthetic: zero-label accuracy {:.1}% (random fC {:.1}%), clusters matched {:.1}%, classifier matched {:.1}%, loss {first:.3} -> {last:.3}",
        100.0 * metrics.accuracy,
        100.0 * metrics.random_baseline_accuracy,
        100.0 * test_cluster_accuracy,
        100.0 * metrics.classifier_hungarian_accuracy
    );

    // Same seed, same everything.
    let again = experiment::run_seed(&inputs, &params, 7, &mut log, true).unwrap();
    assert_eq!(again.clustering.assignments, run.clustering.assignments);
    assert_eq!(again.test_predictions, run.test_predictions);
    assert!(again.matching.classifier.weight.equal(&run.matching.classifier.weight), "weights differ between identical runs");
    assert_eq!(again.matching.best_step, run.matching.best_step);
    std::fs::remove_dir_all(dir).ok();
}
