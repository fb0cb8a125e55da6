//! (d) Stages II-III end to end on synthetic features with known classes: c Gaussian clusters
//! in D dimensions, well separated. Checks that the clusters are recovered, none is empty, the
//! classifier predicts every class (no collapse), the loss falls, and that a seed reproduces
//! its results bit for bit. The zero-label accuracy is printed, not asserted: on separable
//! clusters every cluster-to-class permutation reaches zero transport cost, so the naming
//! comes from the optimisation path, not from the optimum.
use tch::Tensor;
use zerolabel::clustering::{ClusteringMethod, SinkhornClusteringParams};
use zerolabel::config::StageSettings;
use zerolabel::data::features::l2_normalize;
use zerolabel::eval;
use zerolabel::io::JsonLines;
use zerolabel::matching::MatchingParams;
use zerolabel::naming::{GeometryParams, NamingKind, NamingSettings};
use zerolabel::orchestrator::{self, Orchestrator};
use zerolabel::prior::ordinal::ordinal_prior;
use zerolabel::prior::PriorParams;
use zerolabel::rng::Rng;
use zerolabel::stages::FeatureData;

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

fn settings(chain: Vec<NamingKind>) -> StageSettings {
    let mut clustering = SinkhornClusteringParams::default_for(C);
    clustering.steps = 1000;
    let stage3 = MatchingParams { steps: 3000, ..MatchingParams::default() };
    let naming = NamingSettings { chain, geometry: GeometryParams::default(), stage3 };
    StageSettings { threads: 1, clustering: ClusteringMethod::Sinkhorn(clustering), naming, paper_reference: true, kmeans_fallback: true, naming_consensus: true }
}

/// Stage III's windowed loss at each logged step of the main variant, from the metrics log.
fn matching_curve(log: &std::path::Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["stage"] == "match" && v["variant"] == "main")
        .map(|v| v["window_mean"].as_f64().unwrap())
        .collect()
}

#[test]
fn synthetic_clusters_end_to_end() {
    tch::set_num_threads(1);
    let (train, train_labels, test, test_labels) = data();
    let names: Vec<String> = (0..C).map(|k| format!("class {k}")).collect();
    let prior = ordinal_prior(&names, PriorParams::default()).unwrap();
    let data = FeatureData { train, train_raw: None, test: test.shallow_clone(), test_labels: Some(test_labels.clone()) };
    let dir = std::env::temp_dir().join(format!("zl-synthetic-{}", std::process::id()));
    let log_path = dir.join("log.jsonl");
    let mut log = JsonLines::create(&log_path).unwrap();
    let paper = settings(vec![NamingKind::Stage3]);
    let stages = Orchestrator::new(&prior, &paper, true).unwrap();

    let run = stages.run_seed(&data, 7, &mut log).unwrap();
    log.flush().unwrap();

    // Clusters recovered, none empty.
    let sizes = run.clusters.cluster_sizes();
    assert!(sizes.iter().all(|&s| s > 0), "empty cluster: {sizes:?}");
    let train_cluster_accuracy = eval::hungarian_accuracy(&run.clusters.assignments, &train_labels, C, C);
    let test_cluster_accuracy = eval::hungarian_accuracy(&run.test_clusters, &test_labels, C, C);
    assert!(train_cluster_accuracy >= 0.95, "train clusters matched accuracy {train_cluster_accuracy}");
    assert!(test_cluster_accuracy >= 0.95, "test clusters matched accuracy {test_cluster_accuracy}");

    // No collapse: every class is predicted on balanced data.
    let metrics = orchestrator::evaluate(&run, &test, &test_labels, C);
    assert_eq!(metrics.report.predicted_classes, C, "classes predicted: {:?}", metrics.report.confusion);

    // The loss falls: the windowed mean at the end is below the one at the start.
    let curve = matching_curve(&log_path);
    assert_eq!(curve.len(), 3000 / 100, "one log line per 100 steps");
    let (first, last) = (curve[0], curve[curve.len() - 1]);
    assert!(last < first, "matching loss did not fall: {first} -> {last}");

    println!(
        "synthetic: zero-label accuracy {:.1}% (random fC {:.1}%), clusters matched {:.1}%, classifier matched {:.1}%, loss {first:.3} -> {last:.3}",
        100.0 * metrics.accuracy,
        100.0 * metrics.random_baseline_accuracy,
        100.0 * test_cluster_accuracy,
        100.0 * metrics.classifier_hungarian_accuracy
    );

    // Same seed, same everything.
    let again = stages.run_seed(&data, 7, &mut log).unwrap();
    assert_eq!(again.clusters.assignments, run.clusters.assignments);
    assert_eq!(again.test_predictions, run.test_predictions);
    assert!(again.named.classifier.weight.equal(&run.named.classifier.weight), "weights differ between identical runs");
    assert_eq!(again.named.best_step, run.named.best_step);
    assert!(again.paper.is_none(), "the paper's chain needs no separate reference");

    // The geometry chain: a nearest-centroid classifier named by the QAP, scored by minus its
    // objective, with the paper's stage III trained beside it on the same clusters.
    let geometry_chain = settings(vec![NamingKind::Geometry]);
    let geometry = Orchestrator::new(&prior, &geometry_chain, true).unwrap().run_seed(&data, 7, &mut log).unwrap();
    assert_eq!(geometry.clusters.assignments, run.clusters.assignments, "same seed, same clusters whatever the naming");
    assert_eq!(geometry.named.class_of, geometry.geometry.class_of);
    assert_eq!(geometry.named.selection_score, -geometry.geometry.geometry.as_ref().unwrap().solution.score);
    let paper = geometry.paper.as_ref().expect("paper reference trained");
    assert!(paper.classifier.weight.equal(&run.named.classifier.weight), "the paper reference is the paper's stage III");
    let m = orchestrator::evaluate(&geometry, &test, &test_labels, C);
    assert_eq!(m.paper_accuracy, Some(metrics.accuracy));
    // Named nearest centroid = the geometry naming's test predictions.
    assert_eq!(m.accuracy, m.naming_accuracy);
    std::fs::remove_dir_all(dir).ok();
}
