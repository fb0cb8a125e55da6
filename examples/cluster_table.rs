//! Stage II methods side by side (issue 15): sinkhorn / kmeans / scan on one features folder,
//! seeds 0..N, one markdown row per method with cluster accuracy (Hungarian), NMI and ARI as
//! mean ± sd over seeds, and the wall time per seed. Labels are read only to score; no
//! setting is chosen by them.
//!
//!   cargo run --release --example cluster_table -- --features /work/feat/cifar10-simclr \
//!       --methods sinkhorn,kmeans,scan --seeds 3 --cache /work/feat/cluster-cache/cifar10-simclr \
//!       --study-cache /work/feat/study-cache/cifar10-simclr
//!
//! Scores are on the training split (the clustering itself) and, as "test acc", on the test
//! split assigned by `Clusters::predict` (nearest centre, or the SCAN head). `--study-cache`
//! reuses the naming study's sinkhorn/kmeans clusterings (same code, same seeds, its recorded
//! wall times); `--cache` keeps every clustering this tool computes (one JSON per method and
//! seed). Variants of scan: `--scan-head mlp`, `--scan-neighbours 50`, `--scan-lr 1e-3`, `--scan-self-label`,
//! each labelled in the method column.
use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;
use tch::{Kind, Tensor};
use zerolabel::clustering::{squared_distances, Clusterer, KMeansClusterer, KMeansParams, ScanClusterer, ScanHeadKind, ScanObjective, ScanParams, SinkhornClusterer, SinkhornClusteringParams};
use zerolabel::data::features::{l2_normalize, load_features};
use zerolabel::eval;

#[derive(Parser)]
struct Cli {
    /// Folder with train.safetensors and test.safetensors (labels inside).
    #[arg(long)]
    features: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "sinkhorn,kmeans,scan")]
    methods: Vec<String>,
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Where this tool keeps its clusterings.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// The naming study's cache of sinkhorn/kmeans clusterings, read only.
    #[arg(long)]
    study_cache: Option<PathBuf>,
    #[arg(long)]
    scan_head: Option<ScanHeadKind>,
    #[arg(long)]
    scan_neighbours: Option<usize>,
    #[arg(long)]
    scan_epochs: Option<usize>,
    #[arg(long)]
    scan_lr: Option<f64>,
    #[arg(long)]
    scan_self_label: bool,
    #[arg(long)]
    scan_objective: Option<ScanObjective>,
    #[arg(long)]
    scan_heads: Option<usize>,
    /// Print the SCAN loss of every epoch (label-free convergence check).
    #[arg(long)]
    verbose: bool,
}

/// One clustering of one seed: train assignments, test assignments, wall time.
#[derive(Serialize, Deserialize)]
struct Cached {
    train: Vec<i64>,
    test: Vec<i64>,
    seconds: f64,
}

/// The naming study's cache format.
#[derive(Deserialize)]
struct StudyCached {
    assignments: Vec<i64>,
    centroids: Vec<Vec<f64>>,
    seconds: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tch::set_num_threads(1);
    let train = load_features(&cli.features.join("train.safetensors"), None)?;
    let test = load_features(&cli.features.join("test.safetensors"), None)?;
    let train_labels = train.labels.context("train.safetensors has no labels (this tool scores against them)")?;
    let test_labels = test.labels.context("test.safetensors has no labels")?;
    let c = train_labels.iter().max().map_or(0, |m| m + 1) as usize;
    let (x, x_test) = (l2_normalize(&train.features), l2_normalize(&test.features));
    println!("{}: N = {}, D = {}, c = {c}\n", cli.features.display(), x.size()[0], x.size()[1]);
    println!("| method | seeds | cluster acc (train) | NMI | ARI | test acc | s / seed |");
    println!("|---|---|---|---|---|---|---|");
    for method in &cli.methods {
        let label = label(method, &cli);
        let mut rows = Vec::new();
        for seed in cli.first_seed..cli.first_seed + cli.seeds {
            let run = cluster(method, &label, &cli, &x, &x_test, c, seed)?;
            let acc = eval::hungarian_accuracy(&run.train, &train_labels, c, c);
            eprintln!("  {label} seed {seed}: acc {:.1} % ({:.0} s)", 100.0 * acc, run.seconds);
            rows.push([acc, eval::nmi(&run.train, &train_labels, c, c), eval::ari(&run.train, &train_labels, c, c), eval::hungarian_accuracy(&run.test, &test_labels, c, c), run.seconds]);
        }
        let col = |j: usize| eval::mean_std(&rows.iter().map(|r| r[j]).collect::<Vec<_>>());
        let secs = col(4);
        println!("| {label} | {} | {} | {} | {} | {} | {:.0} ± {:.0} |", rows.len(), col(0), col(1), col(2), col(3), secs.mean, secs.std);
    }
    Ok(())
}

fn label(method: &str, cli: &Cli) -> String {
    if method != "scan" {
        return method.to_string();
    }
    let mut label = String::from("scan");
    if cli.scan_head == Some(ScanHeadKind::Mlp) {
        label += "-mlp";
    }
    if let Some(k) = cli.scan_neighbours {
        label += &format!("-n{k}");
    }
    if let Some(e) = cli.scan_epochs {
        label += &format!("-e{e}");
    }
    if let Some(lr) = cli.scan_lr {
        label += &format!("-lr{lr:e}");
    }
    if cli.scan_objective == Some(ScanObjective::Temi) {
        label += "-temi";
    }
    if let Some(h) = cli.scan_heads {
        label += &format!("-h{h}");
    }
    if cli.scan_self_label {
        label += "-selflabel";
    }
    label
}

fn cluster(method: &str, label: &str, cli: &Cli, x: &Tensor, x_test: &Tensor, c: usize, seed: u64) -> Result<Cached> {
    if let Some(path) = cli.cache.as_ref().map(|d| d.join(format!("{label}-seed{seed}.json"))).filter(|p| p.exists()) {
        return Ok(serde_json::from_str(&std::fs::read_to_string(&path)?).with_context(|| format!("reading {}", path.display()))?);
    }
    if let Some(path) = cli.study_cache.as_ref().map(|d| d.join(format!("{method}-seed{seed}.json"))).filter(|p| p.exists()) {
        let study: StudyCached = serde_json::from_str(&std::fs::read_to_string(&path)?).with_context(|| format!("reading {}", path.display()))?;
        let flat: Vec<f32> = study.centroids.iter().flatten().map(|&v| v as f32).collect();
        let centres = Tensor::from_slice(&flat).view([study.centroids.len() as i64, -1]);
        let test = Vec::<i64>::try_from(squared_distances(x_test, &centres).argmin(1, false))?;
        return Ok(Cached { train: study.assignments, test, seconds: study.seconds });
    }
    let clusterer: Box<dyn Clusterer> = match method {
        "sinkhorn" => Box::new(SinkhornClusterer::new(SinkhornClusteringParams::default_for(c))?),
        "kmeans" => Box::new(KMeansClusterer::new(KMeansParams::new(c))?),
        "scan" => {
            let d = ScanParams::default_for(c);
            Box::new(ScanClusterer::new(ScanParams {
                head: cli.scan_head.unwrap_or(d.head),
                neighbours: cli.scan_neighbours.unwrap_or(d.neighbours),
                epochs: cli.scan_epochs.unwrap_or(d.epochs),
                learning_rate: cli.scan_lr.unwrap_or(d.learning_rate),
                self_label: cli.scan_self_label,
                objective: cli.scan_objective.unwrap_or(d.objective),
                heads: cli.scan_heads.unwrap_or(d.heads),
                ..d
            })?)
        }
        other => bail!("unknown method '{other}' (expected sinkhorn, kmeans or scan)"),
    };
    let started = Instant::now();
    let verbose = cli.verbose;
    let clusters = clusterer.fit(x, seed, &mut |s| {
        if verbose {
            eprintln!("    step {} loss {:.4}", s.step, s.loss);
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let cached = Cached { train: clusters.assignments.clone(), test: clusters.predict(&x_test.to_kind(Kind::Float)), seconds };
    if let Some(dir) = &cli.cache {
        std::fs::create_dir_all(dir)?;
        zerolabel::io::write_json_atomic(&dir.join(format!("{label}-seed{seed}.json")), &cached)?;
    }
    Ok(cached)
}
