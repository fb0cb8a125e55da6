//! Naming by geometry with different class-name encoders (issue 14's naming table): k-means
//! clusters of real features (10 restarts, member-mean centroids) named by the exact QAP of
//! `naming.rs`, with class vectors from GloVe 50d, all-MiniLM-L6-v2 (names alone, one
//! template, the first 8 and all 18 CIFAR templates) or all-mpnet-base-v2 where installed (names
//! alone, 18 templates), under plain or centred cosine, the blind-matching
//! paper's distance kernel, or neighbour ranks. Labels are used only to score the namings.
//!
//!   cargo run --release --example naming_encoders -- FEATURES.safetensors [SEEDS]
//!
//! With `NAMING_CACHE=DIR` the k-means assignments are kept in DIR and reused by later runs.
//!
//! e.g. with the CIFAR-10 SimCLR features of `zerolabel features --format cifar10 ...`:
//!   cargo run --release --example naming_encoders -- /work/feat/cifar10-simclr/train.safetensors 10
//!
//! Per seed it prints one line; then a table: naming accuracy (share of samples whose cluster
//! got their class's name, mean ± sd over seeds), the oracle (true-class means as centroids:
//! names right out of c) and the clusters' Hungarian ceiling; last, the objective and naming
//! accuracy of the five best namings of seed 0's clusters under each encoder and kernel. Every naming is also solved with
//! the certified QAP solver (`qap.rs`) as a cross-check of the exact search.
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};
use zerolabel::data::features::{l2_normalize, load_features};
use zerolabel::eval::{hungarian_accuracy, mean_std};
use zerolabel::naming::qap::{cosine_matrix, rank_matrix, solve_exact, standardize, NamingProblem};
use zerolabel::prior::sentence_encoder::{default_model_dir, default_mpnet_dir, default_templates, SentenceEncoder};
use zerolabel::prior::word_vectors::{WordVectorSource, WordVectors};
use zerolabel::naming::certified::{self, Qap, QapSettings};

#[path = "common/kmeans.rs"]
mod kmeans;
use kmeans::{cached_kmeans, member_means};

const CIFAR10: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// (k, D) rows as f64 vectors.
fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    Vec::<Vec<f64>>::try_from(&t.to_kind(Kind::Double)).expect("rows")
}

fn centred(v: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let d = v[0].len();
    let mean: Vec<f64> = (0..d).map(|j| v.iter().map(|r| r[j]).sum::<f64>() / v.len() as f64).collect();
    v.iter().map(|r| r.iter().zip(&mean).map(|(x, m)| x - m).collect()).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Kernel {
    Cosine,
    Centred,
    /// The blind-matching paper's: minus the Euclidean distance of the unit vectors.
    Distance,
    /// naming.rs's rank similarity of the cosines.
    Rank,
}

fn similarity(v: &[Vec<f64>], kernel: Kernel) -> Vec<Vec<f64>> {
    match kernel {
        Kernel::Cosine => cosine_matrix(v),
        Kernel::Centred => cosine_matrix(&centred(v)),
        Kernel::Distance => cosine_matrix(v).iter().map(|r| r.iter().map(|c| -(2.0 - 2.0 * c).max(0.0).sqrt()).collect()).collect(),
        Kernel::Rank => rank_matrix(&cosine_matrix(v)),
    }
}

/// class_of[cluster] by the exact search, cross-checked against the certified QAP solver.
fn name(centroids: &[Vec<f64>], classes: &[Vec<f64>], kernel: Kernel) -> Result<Vec<usize>> {
    let a = standardize(&similarity(centroids, kernel));
    let b = standardize(&similarity(classes, kernel));
    let exact = solve_exact(&NamingProblem { cluster_similarity: a.clone(), class_similarity: b.clone(), sizes: None });
    let certified = certified::solve(&Qap::new(a, b, None)?, &QapSettings { time_limit: Duration::from_secs(60), ..QapSettings::default() });
    if !certified.certified_optimal || (certified.score - exact.score).abs() > 1e-7 {
        bail!("QAP solver disagrees with the exact search: {} (certified {}) vs {}", certified.score, certified.certified_optimal, exact.score);
    }
    Ok(exact.class_of)
}

/// The `keep` highest-scoring namings of the standardised problem (score, class_of), best
/// first, by enumerating every permutation (c <= 10): how far apart the runners-up are, and
/// how many names they get right, shows whether the optimum is a near-tie.
fn best_namings(centroids: &[Vec<f64>], classes: &[Vec<f64>], kernel: Kernel, keep: usize) -> Vec<(f64, Vec<usize>)> {
    let a = standardize(&similarity(centroids, kernel));
    let b = standardize(&similarity(classes, kernel));
    let c = a.len();
    let mut best: Vec<(f64, Vec<usize>)> = Vec::new();
    let (mut class_at, mut used) = (vec![0usize; c], vec![false; c]);
    fn visit(d: usize, partial: f64, a: &[Vec<f64>], b: &[Vec<f64>], class_at: &mut [usize], used: &mut [bool], keep: usize, best: &mut Vec<(f64, Vec<usize>)>) {
        let c = a.len();
        if d == c {
            if best.len() < keep || partial > best[best.len() - 1].0 {
                let at = best.partition_point(|(s, _)| *s >= partial);
                best.insert(at, (partial, class_at.to_vec()));
                best.truncate(keep);
            }
            return;
        }
        for k in 0..c {
            if used[k] {
                continue;
            }
            let gain: f64 = (0..d).map(|e| a[d][e] * b[k][class_at[e]]).sum::<f64>() * 2.0;
            (class_at[d], used[k]) = (k, true);
            visit(d + 1, partial + gain, a, b, class_at, used, keep, best);
            used[k] = false;
        }
    }
    visit(0, 0.0, &a, &b, &mut class_at, &mut used, keep, &mut best);
    best
}

/// Share of samples whose cluster was given their class.
fn naming_accuracy(assign: &[i64], labels: &[i64], class_of: &[usize]) -> f64 {
    assign.iter().zip(labels).filter(|(a, l)| class_of[**a as usize] as i64 == **l).count() as f64 / labels.len() as f64
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().context("usage: naming_encoders FEATURES.safetensors [SEEDS]")?);
    let seeds: u64 = args.next().map(|s| s.parse()).transpose().context("SEEDS must be a number")?.unwrap_or(10);
    let file = load_features(&path, None)?;
    let labels = file.labels.context("the feature file has no labels (needed to score the namings)")?;
    let x = l2_normalize(&file.features);
    let c = CIFAR10.len();
    let names: Vec<String> = CIFAR10.iter().map(|s| s.to_string()).collect();

    let started = Instant::now();
    let glove = WordVectors::load_for_classes(&WordVectorSource::default_glove(), &names)?;
    let glove: Vec<Vec<f64>> = names.iter().map(|n| glove.embed_class(n).map(|v| v.iter().map(|&x| x as f64).collect())).collect::<Result<_, _>>()?;
    let encoder = SentenceEncoder::load(&default_model_dir())?;
    let to_f64 = |v: Vec<Vec<f32>>| -> Vec<Vec<f64>> { v.into_iter().map(|r| r.into_iter().map(|x| x as f64).collect()).collect() };
    let one_template = vec!["a photo of a {}.".to_string()];
    let clip8: Vec<String> = zerolabel::prior::sentence_encoder::CLIP_IMAGENET_ENSEMBLE_TEMPLATES.iter().map(|t| t.to_string()).collect();
    let mut encoders: Vec<(&str, Vec<Vec<f64>>)> = vec![
        ("GloVe 6B 50d, names", glove),
        ("MiniLM, names alone", to_f64(encoder.encode(&names)?)),
        ("MiniLM, 'a photo of a {}.'", to_f64(encoder.encode_classes(&names, &one_template)?)),
        ("MiniLM, first 8 CIFAR templates", to_f64(encoder.encode_classes(&names, &default_templates()[..8])?)),
        ("MiniLM, 18 CIFAR templates", to_f64(encoder.encode_classes(&names, &default_templates())?)),
        ("MiniLM, CLIP's 8 ImageNet-ensemble templates", to_f64(encoder.encode_classes(&names, &clip8)?)),
    ];
    // all-mpnet-base-v2 where `scripts/setup.sh --mpnet` installed it.
    match SentenceEncoder::load(&default_mpnet_dir()) {
        Ok(mpnet) => {
            encoders.push(("MPNet, names alone", to_f64(mpnet.encode(&names)?)));
            encoders.push(("MPNet, 18 CIFAR templates", to_f64(mpnet.encode_classes(&names, &default_templates())?)));
        }
        Err(e) => eprintln!("no MPNet rows: {e}"),
    }
    eprintln!("class vectors ready in {:.1} s", started.elapsed().as_secs_f64());

    // Oracle: true-class member means.
    let label_tensor = Tensor::from_slice(&labels);
    let oracle_centroids = rows(&member_means(&x, &label_tensor, c as i64));
    let kernels = [
        (Kernel::Cosine, "cosine"),
        (Kernel::Centred, "centred cosine"),
        (Kernel::Distance, "-distance (blind match)"),
        (Kernel::Rank, "rank"),
    ];
    let mut results = vec![vec![Vec::new(); kernels.len()]; encoders.len()];
    let mut ceilings = Vec::new();
    for seed in 0..seeds {
        let t = Instant::now();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let assign = cached_kmeans(&x, c as i64, seed, &stem)?;
        let centroids = rows(&member_means(&x, &Tensor::from_slice(&assign), c as i64));
        let ceiling = hungarian_accuracy(&assign, &labels, c, c);
        ceilings.push(ceiling);
        let mut line = format!("seed {seed}: k-means {:.1} s, Hungarian {:.1} %", t.elapsed().as_secs_f64(), 100.0 * ceiling);
        for (e, (_, classes)) in encoders.iter().enumerate() {
            for (k, &(kernel, _)) in kernels.iter().enumerate() {
                let acc = naming_accuracy(&assign, &labels, &name(&centroids, classes, kernel)?);
                results[e][k].push(acc);
                line += &format!(" {:.1}", 100.0 * acc);
            }
        }
        eprintln!("{line}");
    }
    // The first seed's five best namings per encoder and kernel: is the optimum a near-tie?
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let assign = cached_kmeans(&x, c as i64, 0, &stem)?;
    let centroids = rows(&member_means(&x, &Tensor::from_slice(&assign), c as i64));
    let mut runners_up = vec!["| class vectors | kernel | the five best namings (seed 0): objective, naming accuracy |".to_string(), "| --- | --- | --- |".to_string()];
    for (label, classes) in &encoders {
        for &(kernel, kernel_name) in &kernels {
            let cells: Vec<String> = best_namings(&centroids, classes, kernel, 5).iter().map(|(score, class_of)| format!("{score:.2}: {:.1} %", 100.0 * naming_accuracy(&assign, &labels, class_of))).collect();
            runners_up.push(format!("| {label} | {kernel_name} | {} |", cells.join("; ")));
        }
    }
    println!("Features: {} ({} x {}), k-means k = {c}, 10 restarts, member means, {seeds} seeds", path.display(), x.size()[0], x.size()[1]);
    let ceiling = mean_std(&ceilings);
    println!("Hungarian ceiling of the clusters: {:.1} ± {:.1} %\n", 100.0 * ceiling.mean, 100.0 * ceiling.std);
    println!("| class vectors | kernel | naming accuracy (mean ± sd, {seeds} seeds) | oracle: names right of {c} | oracle naming |");
    println!("| --- | --- | --- | --- | --- |");
    for (e, (label, classes)) in encoders.iter().enumerate() {
        for (k, &(kernel, kernel_name)) in kernels.iter().enumerate() {
            let m = mean_std(&results[e][k]);
            let oracle = name(&oracle_centroids, classes, kernel)?;
            let right = oracle.iter().enumerate().filter(|(i, k)| i == *k).count();
            let wrong: Vec<String> = oracle.iter().enumerate().filter(|(i, k)| i != *k).map(|(i, &k)| format!("{}->{}", CIFAR10[i], CIFAR10[k])).collect();
            println!("| {label} | {kernel_name} | {:.1} ± {:.1} % | {right} | {} |", 100.0 * m.mean, 100.0 * m.std, if wrong.is_empty() { "all right".into() } else { wrong.join(", ") });
        }
    }
    println!("\n{}", runners_up.join("\n"));
    Ok(())
}
