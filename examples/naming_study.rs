//! The naming study of issue 13: which naming kernel names real clusters best, how well the
//! label-free alignment score predicts naming accuracy, and what consensus over seeds and
//! stage III add. Labels are read only to measure.
//!
//!   # one data set (features folder with train/test.safetensors, labels inside)
//!   cargo run --release --example naming_study -- run --name cifar10-simclr \
//!       --features /work/feat/cifar10-simclr --classes configs/cifar10.classes \
//!       --cache /work/feat/study-cache/cifar10-simclr --out study/cifar10-simclr.jsonl
//!   # an aligned synthetic set (clusters = noisy rotated/scaled/shifted copy of the names)
//!   cargo run --release --example naming_study -- synthetic --name synth-glove-cifar10 \
//!       --classes configs/cifar10.classes --out study/synth-glove-cifar10.jsonl
//!   # pooled over the row files: Spearman of each score with naming accuracy, verdicts
//!   cargo run --release --example naming_study -- summarise study/*.jsonl
//!
//! Clusterings: the paper's Sinkhorn clustering (`clustering::SinkhornClusterer`, default
//! parameters as in `config::pipeline_params`) and k-means (k-means++, 10 restarts, lowest
//! inertia), `--seeds` seeds each, cached in `--cache`. Every clustering is named by the member
//! means of its clusters under every kernel; the test split is classified by the nearest member
//! mean, then that cluster's name.
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};
use zerolabel::clustering::{Clusterer, SinkhornClusterer, SinkhornClusteringParams};
use zerolabel::data::features::{l2_normalize, load_features};
use zerolabel::eval;
use zerolabel::clustering::kmeans::{self, KMeansParams};
use zerolabel::naming::qap::NamingProblem;
use zerolabel::naming::consensus;
use zerolabel::naming::geometry::mean_support;
use zerolabel::naming::kernels::{self as inv, NamingKernel};
use zerolabel::naming::trust::{self as trust, Temperature, TrustParams};
use zerolabel::prior::encoder::{build_encoder, EncoderKind};
use zerolabel::rng::Rng;

/// Gibbs temperatures tried (one enumeration computes all).
const TEMPS: [Temperature; 8] = [
    Temperature::NullStd(0.02),
    Temperature::NullStd(0.05),
    Temperature::NullStd(0.1),
    Temperature::NullStd(0.2),
    Temperature::Residual(0.5),
    Temperature::Residual(1.0),
    Temperature::Residual(2.0),
    Temperature::Residual(4.0),
];
/// The temperature whose marginals give the marginal naming and the near-ties.
const REFERENCE_TEMP: usize = 6;
/// The kernels of the combined-evidence naming.
const ENSEMBLE: [NamingKernel; 4] = [NamingKernel::CentredCosine, NamingKernel::CentredRank, NamingKernel::CentredBlindMatch, NamingKernel::Euclidean];

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Study one features folder.
    Run {
        #[arg(long)]
        name: String,
        #[arg(long)]
        features: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Study an aligned synthetic set built from the class vectors (GloVe of --classes, or
    /// random vectors with --random-classes C --random-dim D).
    Synthetic {
        #[arg(long)]
        name: String,
        #[arg(long)]
        random_classes: Option<usize>,
        #[arg(long, default_value_t = 50)]
        random_dim: usize,
        /// Dimension of the synthetic features.
        #[arg(long, default_value_t = 64)]
        dim: usize,
        #[arg(long, default_value_t = 0.5)]
        noise: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Pool row files: Spearman correlations, per-dataset table, verdicts.
    Summarise {
        rows: Vec<PathBuf>,
        /// Trust threshold(s) on the mean posterior probability of the chosen names.
        #[arg(long, default_value = "0.5")]
        threshold: f64,
        /// Index into the study's temperatures (printed by the summary) of the verdict's score.
        #[arg(long, default_value_t = REFERENCE_TEMP)]
        temp: usize,
    },
}

#[derive(clap::Args)]
struct Common {
    #[arg(long)]
    classes: Option<PathBuf>,
    #[arg(long)]
    ordinal: bool,
    /// Text encoder of the class names (not with --ordinal): glove (6B 50d) or minilm
    /// (all-MiniLM-L6-v2 over the default prompt templates).
    #[arg(long, value_enum, default_value = "glove")]
    encoder: EncoderKind,
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Where clusterings are cached (one JSON per clusterer and seed).
    #[arg(long)]
    cache: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    /// Clusterers: sinkhorn, kmeans.
    #[arg(long, value_delimiter = ',', default_value = "sinkhorn,kmeans")]
    clusterers: Vec<String>,
    /// Seeds of stage III runs (paper's from the Sinkhorn clusters; and from the named
    /// member means of the kernel --stage3-kernel); 0 = none.
    #[arg(long, default_value_t = 0)]
    stage3_seeds: u64,
    #[arg(long, default_value = "centred-cosine")]
    stage3_kernel: NamingKernel,
    #[arg(long)]
    stage3_steps: Option<usize>,
}

/// The data of one study, labels included (for measuring only).
struct Data {
    train: Tensor,
    train_flat: Vec<f32>,
    dim: usize,
    train_labels: Option<Vec<i64>>,
    test: Tensor,
    test_labels: Vec<i64>,
    class_names: Vec<String>,
    class_vectors: Vec<Vec<f64>>,
    /// Ordered classes: the verdict is the naming kernel's alone (`GeometryNamer::name`).
    ordinal: bool,
}

/// One clustering of one seed, as cached.
#[derive(Serialize, Deserialize)]
struct CachedClustering {
    assignments: Vec<i64>,
    /// The clusterer's own centroids (learned, for Sinkhorn).
    centroids: Vec<Vec<f64>>,
    seconds: f64,
}

/// One row: (dataset, clusterer, kernel, seed).
#[derive(Clone, Serialize, Deserialize)]
struct Row {
    dataset: String,
    clusterer: String,
    kernel: String,
    seed: u64,
    #[serde(deserialize_with = "nan_if_null")]
    naming_accuracy: f64,
    /// Clusters whose name is their majority true class.
    #[serde(deserialize_with = "nan_if_null")]
    names_right: f64,
    /// Naming by the posterior's marginals (Hungarian on them, reference temperature).
    #[serde(deserialize_with = "nan_if_null")]
    marginal_naming_accuracy: f64,
    #[serde(deserialize_with = "nan_if_null")]
    consensus_vote_accuracy: f64,
    #[serde(deserialize_with = "nan_if_null")]
    consensus_mean_geometry_accuracy: f64,
    #[serde(deserialize_with = "nan_if_null")]
    consensus_agreement: f64,
    #[serde(deserialize_with = "nan_if_null")]
    cluster_ceiling: f64,
    /// Label-using diagnostic: share of classes whose true-class mean gets its own name.
    #[serde(deserialize_with = "nan_if_null")]
    oracle_names_right: f64,
    #[serde(deserialize_with = "nan_if_null")]
    oracle_accuracy: f64,
    #[serde(deserialize_with = "nan_if_null")]
    z: f64,
    gap: Option<f64>,
    /// Correlation of the two standardised matrices at the optimum.
    #[serde(deserialize_with = "nan_if_null")]
    rho: f64,
    /// Mean posterior probability of the chosen names, per temperature in TEMPS.
    mean_map_marginal: Vec<f64>,
    map_probability: Vec<f64>,
    near_ties: Vec<Vec<String>>,
    /// Stage III accuracies when run for this seed: (paper's, from this naming).
    stage3: Option<(f64, f64)>,
    /// The naming (class of each cluster), for pooling rows offline.
    #[serde(default)]
    class_of: Vec<usize>,
    /// Posterior marginals [cluster][class] per temperature in TEMPS.
    #[serde(default)]
    marginals_by_temperature: Vec<Vec<Vec<f64>>>,
    /// Test contingency [true class][cluster]: any naming's accuracy without the data.
    #[serde(default)]
    test_table: Vec<Vec<u64>>,
    #[serde(default)]
    ordinal: bool,
}

/// NaN is written as null by serde_json; read it back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Option::<f64>::deserialize(d).map(|v| v.unwrap_or(f64::NAN))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { name, features, common } => {
            let data = load_data(&features, &common)?;
            study(&name, &data, &common)
        }
        Command::Synthetic { name, random_classes, random_dim, dim, noise, common } => {
            let data = synthetic_data(random_classes, random_dim, dim, noise, &common)?;
            study(&name, &data, &common)
        }
        Command::Summarise { rows, threshold, temp } => summarise(&rows, threshold, temp),
    }
}

fn class_names(common: &Common, c: Option<usize>) -> Result<Vec<String>> {
    match (&common.classes, c) {
        (Some(path), _) => Ok(std::fs::read_to_string(path)
            .with_context(|| format!("reading class names from {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        (None, Some(c)) => Ok((0..c).map(|k| format!("class{k}")).collect()),
        (None, None) => bail!("--classes FILE is needed"),
    }
}

fn encoded_vectors(kind: EncoderKind, names: &[String]) -> Result<Vec<Vec<f64>>> {
    let encoder = build_encoder(kind, None, None, None)?;
    let vectors = encoder.encode(names).with_context(|| format!("encoding class names with {}", encoder.describe()))?;
    Ok(vectors.into_iter().map(|v| v.into_iter().map(f64::from).collect()).collect())
}

fn class_vectors(common: &Common, names: &[String]) -> Result<Vec<Vec<f64>>> {
    if common.ordinal {
        return Ok(inv::ordinal_class_vectors(names.len()));
    }
    let Ok(list) = std::env::var("NAMING_STUDY_ENCODERS") else { return encoded_vectors(common.encoder, names) };
    let kinds: Vec<EncoderKind> = list.split(',').map(|k| <EncoderKind as clap::ValueEnum>::from_str(k.trim(), true).map_err(|e| anyhow::anyhow!("NAMING_STUDY_ENCODERS={list:?}: '{k}' is not an encoder ({e}); expected a comma list of glove, minilm, mpnet")))
        .collect::<Result<_>>()?;
    // Centred, unit-length blocks: the concatenation's centred cosine is the blocks' mean.
    let blocks: Vec<Vec<Vec<f64>>> = kinds.iter().map(|&k| encoded_vectors(k, names).map(|v| inv::normalised(&inv::centre_rows(&v)))).collect::<Result<_>>()?;
    let scale = 1.0 / (blocks.len() as f64).sqrt();
    Ok((0..names.len()).map(|i| blocks.iter().flat_map(|b| b[i].iter().map(|x| x * scale)).collect()).collect())
}

fn load_data(folder: &Path, common: &Common) -> Result<Data> {
    let train = load_features(&folder.join("train.safetensors"), None)?;
    let test = load_features(&folder.join("test.safetensors"), None)?;
    let test_labels = test.labels.context("test.safetensors has no labels (the study measures against them)")?;
    let class_names = class_names(common, None)?;
    let class_vectors = class_vectors(common, &class_names)?;
    let train_n = l2_normalize(&train.features);
    let dim = train_n.size()[1] as usize;
    let train_flat = Vec::<f32>::try_from(train_n.flatten(0, -1))?;
    Ok(Data { train: train_n, train_flat, dim, train_labels: train.labels, test: l2_normalize(&test.features), test_labels, class_names, class_vectors, ordinal: common.ordinal })
}

fn synthetic_data(random_classes: Option<usize>, random_dim: usize, dim: usize, noise: f64, common: &Common) -> Result<Data> {
    let class_names = class_names(common, random_classes)?;
    let class_vectors = match random_classes {
        Some(c) => {
            let mut rng = Rng::derive(c as u64 * 1000 + random_dim as u64, "study-random-classes");
            (0..c).map(|_| (0..random_dim).map(|_| rng.normal()).collect()).collect()
        }
        None => class_vectors(common, &class_names)?,
    };
    let c = class_vectors.len();
    let (train_per, test_per) = (500, 100);
    let (features, dim, labels) = inv::aligned_synthetic(&class_vectors, dim, train_per + test_per, noise, 2026);
    let n_train = c * train_per;
    let all = l2_normalize(&Tensor::from_slice(&features).view([labels.len() as i64, dim as i64]));
    let train = all.narrow(0, 0, n_train as i64);
    let test = all.narrow(0, n_train as i64, (labels.len() - n_train) as i64);
    let train_flat = Vec::<f32>::try_from(train.flatten(0, -1))?;
    Ok(Data {
        train,
        train_flat,
        dim,
        train_labels: Some(labels[..n_train].to_vec()),
        test,
        test_labels: labels[n_train..].to_vec(),
        class_names,
        class_vectors,
        ordinal: common.ordinal,
    })
}

fn cluster(data: &Data, clusterer: &str, seed: u64, cache: Option<&Path>) -> Result<CachedClustering> {
    let path = cache.map(|dir| dir.join(format!("{clusterer}-seed{seed}.json")));
    if let Some(path) = path.as_ref().filter(|p| p.exists()) {
        let text = std::fs::read_to_string(path)?;
        let cached: CachedClustering = serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        return reassigned(data, clusterer, cached);
    }
    let c = data.class_vectors.len();
    let started = std::time::Instant::now();
    let (assignments, centroids) = match clusterer {
        "sinkhorn" => {
            let fit = SinkhornClusterer::new(SinkhornClusteringParams::default_for(c))?.fit(&data.train, seed, &mut |_| {})?;
            (fit.assignments.clone(), Vec::<Vec<f64>>::try_from(fit.centres().to_kind(Kind::Double))?)
        }
        "kmeans" => {
            let fit = kmeans::fit(&data.train, &KMeansParams::new(c), seed)?;
            (fit.assignments, Vec::<Vec<f64>>::try_from(fit.centroids.to_kind(Kind::Double))?)
        }
        other => bail!("unknown clusterer '{other}' (expected sinkhorn or kmeans)"),
    };
    let cached = CachedClustering { assignments, centroids, seconds: started.elapsed().as_secs_f64() };
    if let Some(path) = path {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        zerolabel::io::write_json_atomic(&path, &cached)?;
    }
    eprintln!("  {clusterer} seed {seed}: {:.1} s", cached.seconds);
    reassigned(data, clusterer, cached)
}

/// `NAMING_STUDY_ASSIGN=nearest`: Sinkhorn clusterings re-assigned to the nearest learned
/// centroid (the rule `assignment = "nearest"`) instead of the argmax of the balanced plan;
/// `=lloyd`: then Lloyd steps (nearest member mean) until no sample moves, at most 100.
fn reassigned(data: &Data, clusterer: &str, mut cached: CachedClustering) -> Result<CachedClustering> {
    let rule = std::env::var("NAMING_STUDY_ASSIGN").unwrap_or_default();
    if clusterer == "sinkhorn" && (rule == "nearest" || rule == "lloyd") {
        cached.assignments = nearest(&data.train, &cached.centroids)?;
    }
    if clusterer == "sinkhorn" && rule == "lloyd" {
        let c = cached.centroids.len();
        for _ in 0..100 {
            let means = inv::member_means(&data.train_flat, data.dim, &cached.assignments, c)?;
            let next = nearest(&data.train, &means)?;
            if next == cached.assignments {
                break;
            }
            cached.assignments = next;
        }
    }
    Ok(cached)
}

/// Nearest row of `centroids` for every test sample.
fn nearest(test: &Tensor, centroids: &[Vec<f64>]) -> Result<Vec<i64>> {
    let flat: Vec<f32> = centroids.iter().flatten().map(|&x| x as f32).collect();
    let z = Tensor::from_slice(&flat).view([centroids.len() as i64, -1]);
    let d = test.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Float) + z.square().sum_dim_intlist([1i64].as_slice(), true, Kind::Float).tr() - test.matmul(&z.tr()) * 2.0;
    Ok(Vec::<i64>::try_from(d.argmin(1, false))?)
}

fn accuracy(pred: &[i64], labels: &[i64]) -> f64 {
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

fn named(pred_clusters: &[i64], class_of: &[usize]) -> Vec<i64> {
    pred_clusters.iter().map(|&k| class_of[k as usize] as i64).collect()
}

/// The naming kernels of the study: every `NamingKernel`, and the ensemble.
#[derive(Clone, Copy)]
enum StudyKernel {
    One(NamingKernel),
    Ensemble,
}

impl StudyKernel {
    fn all() -> Vec<StudyKernel> {
        NamingKernel::ALL.into_iter().map(StudyKernel::One).chain([StudyKernel::Ensemble]).collect()
    }
    fn name(self) -> &'static str {
        match self {
            StudyKernel::One(k) => k.name(),
            StudyKernel::Ensemble => "ensemble",
        }
    }
    fn similarity(self, vectors: &[Vec<f64>]) -> Vec<Vec<f64>> {
        match self {
            StudyKernel::One(k) => inv::kernel_similarity(vectors, k),
            StudyKernel::Ensemble => inv::ensemble_similarity(vectors, &ENSEMBLE),
        }
    }
    fn problem(self, clusters: &[Vec<f64>], classes: &[Vec<f64>]) -> NamingProblem {
        NamingProblem { cluster_similarity: self.similarity(clusters), class_similarity: self.similarity(classes), sizes: None }
    }
}

/// Naming plus its alignment score at every tau.
struct Scored {
    class_of: Vec<usize>,
    z: f64,
    gap: Option<f64>,
    rho: f64,
    mean_map_marginal: Vec<f64>,
    map_probability: Vec<f64>,
    /// Marginals per temperature in TEMPS.
    marginals_by_temperature: Vec<Vec<Vec<f64>>>,
    near_ties: Vec<Vec<usize>>,
}

fn name_and_score(problem: &NamingProblem, seed: u64) -> Scored {
    let naming = inv::solve(problem, seed);
    let params = TrustParams { seed, ..TrustParams::default() };
    let null = trust::permutation_null(problem, params.null_draws, seed);
    let temperatures: Vec<f64> = TEMPS.iter().map(|t| t.value(problem, naming.score, &null)).collect();
    let posteriors = if problem.n() <= params.exact_limit {
        trust::gibbs_exact(problem, naming.score, &temperatures)
    } else {
        temperatures.iter().map(|&t| trust::gibbs_mcmc(problem, &naming.class_of, t, 2_000, seed)).collect()
    };
    let scores: Vec<trust::AlignmentScore> =
        posteriors.into_iter().map(|p| trust::alignment_from_posterior(problem, &naming, null, p, &params)).collect();
    let reference = &scores[REFERENCE_TEMP];
    let c = problem.n() as f64;
    Scored {
        class_of: naming.class_of.clone(),
        z: reference.z,
        gap: reference.gap,
        rho: naming.score / (c * (c - 1.0)),
        mean_map_marginal: scores.iter().map(|s| s.mean_map_marginal).collect(),
        map_probability: scores.iter().map(|s| s.posterior.map_probability).collect(),
        marginals_by_temperature: scores.iter().map(|s| s.posterior.marginals.clone()).collect(),
        near_ties: reference.near_ties.clone(),
    }
}

impl Scored {
    /// Marginals at the reference temperature (the marginal naming's).
    fn marginals(&self) -> &[Vec<f64>] {
        &self.marginals_by_temperature[REFERENCE_TEMP]
    }
}

/// Share of clusters whose name is their majority true class (on the test split).
fn names_right(test_clusters: &[i64], labels: &[i64], class_of: &[usize]) -> f64 {
    let c = class_of.len();
    let table = eval::contingency(test_clusters, labels, c, c);
    // table[true class][cluster].
    let majority = |j: usize| (0..c).max_by_key(|&k| table[k][j]);
    (0..c).filter(|&j| majority(j) == Some(class_of[j])).count() as f64 / c as f64
}

fn study(dataset: &str, data: &Data, common: &Common) -> Result<()> {
    let c = data.class_vectors.len();
    let kernels = StudyKernel::all();
    // Label-using diagnostic: the naming of the true-class means, per kernel.
    let oracle: Vec<(f64, f64)> = match &data.train_labels {
        Some(labels) => {
            let means = inv::member_means(&data.train_flat, data.dim, labels, c)?;
            let test_clusters = nearest(&data.test, &means)?;
            kernels
                .iter()
                .map(|k| {
                    let class_of = inv::solve(&k.problem(&means, &data.class_vectors), 0).class_of;
                    let right = (0..c).filter(|&j| class_of[j] == j).count() as f64 / c as f64;
                    (right, accuracy(&named(&test_clusters, &class_of), &data.test_labels))
                })
                .collect()
        }
        None => vec![(f64::NAN, f64::NAN); kernels.len()],
    };
    for (k, (right, acc)) in kernels.iter().zip(&oracle) {
        eprintln!("{dataset}: oracle {}: {:.0}% of names right, test accuracy {:.1}%", k.name(), 100.0 * right, 100.0 * acc);
    }
    let mut rows: Vec<Row> = vec![];
    for clusterer in &common.clusterers {
        let seeds: Vec<u64> = (0..common.seeds).collect();
        let mut per_seed = vec![];
        for &seed in &seeds {
            let fit = cluster(data, clusterer, seed, common.cache.as_deref())?;
            let means = inv::member_means(&data.train_flat, data.dim, &fit.assignments, c)?;
            let test_clusters = nearest(&data.test, &means)?;
            per_seed.push((fit, means, test_clusters));
        }
        // Today's naming, for reference: learned Sinkhorn centroids, plain cosine.
        let mut kernel_rows: Vec<(String, Vec<Row>)> = vec![];
        if clusterer == "sinkhorn" {
            let mut today = vec![];
            for (s, (fit, _, _)) in per_seed.iter().enumerate() {
                let learned_clusters = nearest(&data.test, &fit.centroids)?;
                let problem = StudyKernel::One(NamingKernel::Cosine).problem(&fit.centroids, &data.class_vectors);
                let scored = name_and_score(&problem, seeds[s]);
                let pred = named(&learned_clusters, &scored.class_of);
                today.push(row(dataset, clusterer, "cosine-learned-centroids", seeds[s], data, &learned_clusters, &pred, &scored, oracle[0], accuracy(&named(&learned_clusters, &trust::marginal_naming(scored.marginals())), &data.test_labels)));
            }
            kernel_rows.push(("cosine-learned-centroids".into(), today));
        }
        for (ki, kernel) in kernels.iter().enumerate() {
            let mut krows = vec![];
            let mut namings = vec![];
            for (s, (_, means, test_clusters)) in per_seed.iter().enumerate() {
                let scored = name_and_score(&kernel.problem(means, &data.class_vectors), seeds[s]);
                let pred = named(test_clusters, &scored.class_of);
                let marginal_acc = accuracy(&named(test_clusters, &trust::marginal_naming(scored.marginals())), &data.test_labels);
                krows.push(row(dataset, clusterer, kernel.name(), seeds[s], data, test_clusters, &pred, &scored, oracle[ki], marginal_acc));
                namings.push(scored.class_of);
            }
            // Consensus over seeds, aligned to the first seed.
            let reference = &per_seed[0].1;
            let alignments: Vec<Vec<usize>> = per_seed.iter().map(|(_, m, _)| consensus::align_to_reference(reference, m)).collect();
            let vote = consensus::vote(&namings, &alignments, Some(0));
            let mean_geometry = consensus::mean_aligned_geometry(&per_seed.iter().map(|(_, m, _)| m.clone()).collect::<Vec<_>>(), &alignments);
            let geometry_naming = inv::solve(&kernel.problem(&mean_geometry, &data.class_vectors), 0).class_of;
            for (s, r) in krows.iter_mut().enumerate() {
                let test_clusters = &per_seed[s].2;
                let by_vote = consensus::names_for_seed(&vote, &alignments[s]);
                let by_geometry: Vec<usize> = alignments[s].iter().map(|&r| geometry_naming[r]).collect();
                r.consensus_vote_accuracy = accuracy(&named(test_clusters, &by_vote), &data.test_labels);
                r.consensus_mean_geometry_accuracy = accuracy(&named(test_clusters, &by_geometry), &data.test_labels);
                r.consensus_agreement = vote.agreement;
            }
            kernel_rows.push((kernel.name().to_string(), krows));
        }
        if common.stage3_seeds > 0 && clusterer == "sinkhorn" {
            stage_three(data, common, &per_seed, &mut kernel_rows)?;
        }
        rows.extend(kernel_rows.into_iter().flat_map(|(_, r)| r));
    }
    write_rows(&common.out, &rows)?;
    print_table(&rows);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn row(dataset: &str, clusterer: &str, kernel: &str, seed: u64, data: &Data, test_clusters: &[i64], pred: &[i64], scored: &Scored, oracle: (f64, f64), marginal_naming_accuracy: f64) -> Row {
    let c = data.class_vectors.len();
    Row {
        dataset: dataset.into(),
        clusterer: clusterer.into(),
        kernel: kernel.into(),
        seed,
        naming_accuracy: accuracy(pred, &data.test_labels),
        names_right: names_right(test_clusters, &data.test_labels, &scored.class_of),
        marginal_naming_accuracy,
        consensus_vote_accuracy: f64::NAN,
        consensus_mean_geometry_accuracy: f64::NAN,
        consensus_agreement: f64::NAN,
        cluster_ceiling: eval::hungarian_accuracy(test_clusters, &data.test_labels, c, c),
        oracle_names_right: oracle.0,
        oracle_accuracy: oracle.1,
        z: scored.z,
        gap: scored.gap,
        rho: scored.rho,
        mean_map_marginal: scored.mean_map_marginal.clone(),
        map_probability: scored.map_probability.clone(),
        near_ties: scored.near_ties.iter().map(|g| g.iter().map(|&k| data.class_names[k].clone()).collect()).collect(),
        stage3: None,
        class_of: scored.class_of.clone(),
        marginals_by_temperature: scored.marginals_by_temperature.clone(),
        test_table: eval::contingency(test_clusters, &data.test_labels, c, c),
        ordinal: data.ordinal,
    }
}

/// Stage III (paper's, from the Sinkhorn centroids in cluster order) beside stage III from the
/// named member means (kernel `--stage3-kernel`), for the first `--stage3-seeds` seeds.
fn stage_three(data: &Data, common: &Common, per_seed: &[(CachedClustering, Vec<Vec<f64>>, Vec<i64>)], kernel_rows: &mut [(String, Vec<Row>)]) -> Result<()> {
    use zerolabel::matching::{self, MatchingParams};
    use zerolabel::prior::{nominal::nominal_prior, ordinal::ordinal_prior, sampler::PriorAtoms, PriorParams};
    let prior = if common.ordinal {
        ordinal_prior(&data.class_names, PriorParams::default())?
    } else {
        nominal_prior(&data.class_names, build_encoder(common.encoder, None, None, None)?.as_ref(), PriorParams::default())?
    };
    let atoms = PriorAtoms::new(&prior);
    let mut params = MatchingParams::default();
    if let Some(steps) = common.stage3_steps {
        params.steps = steps;
        params.log_every = params.log_every.min(steps);
    }
    let c = data.class_vectors.len();
    let kernel_name = common.stage3_kernel.name();
    let to_tensor = |rows: &[Vec<f64>]| Tensor::from_slice(&rows.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>()).view([rows.len() as i64, -1]);
    let Some((_, krows)) = kernel_rows.iter_mut().find(|(k, _)| k == kernel_name) else { bail!("no rows of kernel {kernel_name}") };
    for (s, (fit, means, _)) in per_seed.iter().enumerate().take(common.stage3_seeds as usize) {
        let seed = krows[s].seed;
        let started = std::time::Instant::now();
        let paper = matching::train(&data.train, Some(&fit.assignments), Some(&to_tensor(&fit.centroids)), &atoms, c, &params, seed, |_, _| Ok(()))?;
        let paper_acc = accuracy(&paper.classifier.predict(&data.test), &data.test_labels);
        let class_of = inv::solve(&inv::naming_problem(means, &data.class_vectors, common.stage3_kernel), seed).class_of;
        let mut cluster_of_class = vec![0usize; c];
        class_of.iter().enumerate().for_each(|(j, &k)| cluster_of_class[k] = j);
        let named_means: Vec<Vec<f64>> = cluster_of_class.iter().map(|&j| means[j].clone()).collect();
        let named_assignments: Vec<i64> = fit.assignments.iter().map(|&j| class_of[j as usize] as i64).collect();
        let from_naming = matching::train(&data.train, Some(&named_assignments), Some(&to_tensor(&named_means)), &atoms, c, &params, seed, |_, _| Ok(()))?;
        let named_acc = accuracy(&from_naming.classifier.predict(&data.test), &data.test_labels);
        eprintln!("  stage III seed {seed}: paper {:.1}%, from the {kernel_name} naming {:.1}% ({:.0} s)", 100.0 * paper_acc, 100.0 * named_acc, started.elapsed().as_secs_f64());
        krows[s].stage3 = Some((paper_acc, named_acc));
    }
    Ok(())
}

fn write_rows(path: &Path, rows: &[Row]) -> Result<()> {
    let mut text = String::new();
    for r in rows {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    zerolabel::io::write_atomic(path, text.as_bytes())?;
    Ok(())
}

fn mean_std(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = eval::mean_std(&v);
    (m.mean, m.std)
}

fn pct((m, s): (f64, f64)) -> String {
    if m.is_nan() { "-".into() } else { format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * s) }
}

/// Per (dataset, clusterer, kernel): the headline numbers over seeds.
fn print_table(rows: &[Row]) {
    let groups = by_group(rows);
    println!("| dataset | clustering | kernel | naming acc (%) | names right | marginal naming | consensus vote | mean geometry | agreement | oracle names right | oracle acc | ceiling | rho | z | gap | E[names right] per temperature | stage III paper / from naming |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for ((dataset, clusterer, kernel), g) in &groups {
        let ms = |f: &dyn Fn(&Row) -> f64| mean_std(g.iter().map(|r| f(r)));
        let taus: Vec<String> = (0..TEMPS.len()).map(|t| format!("{:.2}", ms(&|r| r.mean_map_marginal[t]).0)).collect();
        let s3: Vec<(f64, f64)> = g.iter().filter_map(|r| r.stage3).collect();
        let stage3 = if s3.is_empty() {
            "-".to_string()
        } else {
            format!("{} / {} (n={})", pct(mean_std(s3.iter().map(|s| s.0))), pct(mean_std(s3.iter().map(|s| s.1))), s3.len())
        };
        println!(
            "| {dataset} | {clusterer} | {kernel} | {} | {:.2} | {} | {} | {} | {:.2} | {:.0}% | {:.1} | {} | {:.2} | {:.2} | {:.2} | {} | {stage3} |",
            pct(ms(&|r| r.naming_accuracy)),
            ms(&|r| r.names_right).0,
            pct(ms(&|r| r.marginal_naming_accuracy)),
            pct(ms(&|r| r.consensus_vote_accuracy)),
            pct(ms(&|r| r.consensus_mean_geometry_accuracy)),
            ms(&|r| r.consensus_agreement).0,
            100.0 * g[0].oracle_names_right,
            100.0 * g[0].oracle_accuracy,
            pct(ms(&|r| r.cluster_ceiling)),
            ms(&|r| r.rho).0,
            ms(&|r| r.z).0,
            ms(&|r| r.gap.unwrap_or(f64::NAN)).0,
            taus.join("/"),
        );
    }
}

fn read_rows(paths: &[PathBuf]) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for path in paths {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            rows.push(serde_json::from_str::<Row>(line).with_context(|| format!("{} line {}", path.display(), i + 1))?);
        }
    }
    Ok(rows)
}

fn summarise(paths: &[PathBuf], threshold: f64, t: usize) -> Result<()> {
    let rows = read_rows(paths)?;
    print_table(&rows);
    println!("\nTemperatures: {}", TEMPS.iter().enumerate().map(|(i, t)| format!("{i}: {}", t.label())).collect::<Vec<_>>().join(", "));
    let Some(tau) = TEMPS.get(t).map(|t| t.label()) else { bail!("--temp must be below {}", TEMPS.len()) };
    let real: Vec<&Row> = rows.iter().filter(|r| !r.dataset.starts_with("synth")).collect();
    println!("\nSpearman rank correlation with naming accuracy (rows: all {} / real data {}):", rows.len(), real.len());
    let support = jury_support(&rows, t);
    let support_of = |r: &Row| support[&(r.dataset.clone(), r.clusterer.clone(), r.kernel.clone(), r.seed)];
    let mut scores: Vec<(String, Box<dyn Fn(&Row) -> f64 + '_>)> = vec![
        (format!("jury support T {tau} (the verdict)"), Box::new(support_of)),
        ("z".into(), Box::new(|r: &Row| r.z)),
        ("gap".into(), Box::new(|r: &Row| r.gap.unwrap_or(0.0))),
        ("rho".into(), Box::new(|r: &Row| r.rho)),
    ];
    for (i, temp) in TEMPS.iter().enumerate() {
        scores.push((format!("E[names right] T {}", temp.label()), Box::new(move |r: &Row| r.mean_map_marginal[i])));
        scores.push((format!("p(MAP) T {}", temp.label()), Box::new(move |r: &Row| r.map_probability[i])));
    }
    for (name, f) in &scores {
        let all = trust::spearman(&rows.iter().map(|r| f(r)).collect::<Vec<_>>(), &rows.iter().map(|r| r.naming_accuracy).collect::<Vec<_>>());
        let re = trust::spearman(&real.iter().map(|r| f(r)).collect::<Vec<_>>(), &real.iter().map(|r| r.naming_accuracy).collect::<Vec<_>>());
        let names = trust::spearman(&real.iter().map(|r| f(r)).collect::<Vec<_>>(), &real.iter().map(|r| r.names_right).collect::<Vec<_>>());
        println!("  {name:<34} all {all:+.3}   real {re:+.3}   real vs names right {names:+.3}");
    }
    println!("\n| score | threshold | rows trusted | acc trusted | acc untrusted | oracle<50% groups flagged | rows trusted in them | synthetic groups trusted | real groups trusted |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    sweep(&rows, &format!("jury support, tau {tau}"), &support_of);
    for (i, temp) in TEMPS.iter().enumerate() {
        sweep(&rows, &format!("own E[names right], tau {}", temp.label()), &|r: &Row| r.mean_map_marginal[i]);
    }
    println!("\nVerdicts (trusted when the jury support at tau {tau} >= {threshold}; own: the naming kernel's E[names right] alone):");
    println!("| dataset | clustering | kernel | oracle names right | naming acc | mean support | trusted seeds | own posterior trusted seeds | naming acc of trusted | of untrusted |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let groups = by_group(&rows);
    for ((d, c, k), g) in &groups {
        let (yes, no): (Vec<&&Row>, Vec<&&Row>) = g.iter().partition(|r| support_of(r) >= threshold);
        let own = g.iter().filter(|r| r.mean_map_marginal[t] >= threshold).count();
        let acc = |v: &[&&Row]| if v.is_empty() { "-".into() } else { pct(mean_std(v.iter().map(|r| r.naming_accuracy))) };
        println!(
            "| {d} | {c} | {k} | {:.0}% | {} | {:.2} | {}/{} | {own}/{} | {} | {} |",
            100.0 * g[0].oracle_names_right,
            pct(mean_std(g.iter().map(|r| r.naming_accuracy))),
            mean_std(g.iter().map(|r| support_of(r))).0,
            yes.len(),
            g.len(),
            g.len(),
            acc(&yes),
            acc(&no)
        );
    }
    Ok(())
}

/// The verdict's score of every row, as `GeometryNamer` computes it: the least mean posterior
/// probability of the row's names under its own posterior (temperature `t`) and under the
/// posteriors of the invariant kernels on the same clusters (the trust jury); ordered classes:
/// the own posterior alone. Rows written before the study kept marginals fall back to their own.
fn jury_support(rows: &[Row], t: usize) -> BTreeMap<(String, String, String, u64), f64> {
    let jury: Vec<&str> = zerolabel::naming::geometry::invariant_kernels().into_iter().map(NamingKernel::name).collect();
    let mut marginals: BTreeMap<(String, String, u64, String), &Vec<Vec<f64>>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.marginals_by_temperature.len() > t) {
        marginals.insert((r.dataset.clone(), r.clusterer.clone(), r.seed, r.kernel.clone()), &r.marginals_by_temperature[t]);
    }
    rows.iter()
        .map(|r| {
            let own = r.mean_map_marginal[t];
            let judged = match r.ordinal || r.class_of.is_empty() {
                true => own,
                false => jury
                    .iter()
                    .filter_map(|k| marginals.get(&(r.dataset.clone(), r.clusterer.clone(), r.seed, k.to_string())))
                    .map(|m| mean_support(m, &r.class_of))
                    .fold(own, f64::min),
            };
            ((r.dataset.clone(), r.clusterer.clone(), r.kernel.clone(), r.seed), judged)
        })
        .collect()
}

/// Rows grouped by (dataset, clustering, kernel).
fn by_group(rows: &[Row]) -> BTreeMap<(String, String, String), Vec<&Row>> {
    let mut groups: BTreeMap<(String, String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry((r.dataset.clone(), r.clusterer.clone(), r.kernel.clone())).or_default().push(r);
    }
    groups
}

/// For every threshold on `score`: the share of rows trusted, the naming accuracy of trusted and
/// untrusted rows, whether the rule flags every (dataset, clustering, kernel) whose oracle names
/// fewer than half the classes right (a majority of its seeds untrusted) and how many of their
/// rows it trusts, and the synthetic and real groups it trusts (a majority of seeds).
fn sweep(rows: &[Row], label: &str, score: &dyn Fn(&Row) -> f64) {
    let groups = by_group(rows);
    let weak: Vec<_> = groups.values().filter(|g| g[0].oracle_names_right < 0.5).collect();
    let synth: Vec<_> = groups.iter().filter(|((d, _, _), _)| d.starts_with("synth")).map(|(_, g)| g).collect();
    let real: Vec<_> = groups.iter().filter(|((d, _, _), _)| !d.starts_with("synth")).map(|(_, g)| g).collect();
    for threshold in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
        let trusted = |r: &Row| score(r) >= threshold;
        let (yes, no): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| trusted(r));
        let majority = |g: &[&Row]| 2 * g.iter().filter(|r| trusted(r)).count() > g.len();
        let acc = |v: &[&Row]| if v.is_empty() { "-".into() } else { pct(mean_std(v.iter().map(|r| r.naming_accuracy))) };
        println!(
            "| {label} | {threshold} | {}/{} | {} | {} | {}/{} | {} | {}/{} | {}/{} |",
            yes.len(),
            rows.len(),
            acc(&yes),
            acc(&no),
            weak.iter().filter(|g| !majority(g)).count(),
            weak.len(),
            weak.iter().map(|g| g.iter().filter(|r| trusted(r)).count()).sum::<usize>(),
            synth.iter().filter(|g| majority(g)).count(),
            synth.len(),
            real.iter().filter(|g| majority(g)).count(),
            real.len(),
        );
    }
}
