//! The certified QAP solver (`qap.rs`) on random and real naming instances, c = 10, 15, 20, 25:
//! time, certified or not, and the gap between the upper bound and the solution, with the
//! Gilmore-Lawler bound (GL) and with dual ascent (DA).
//!
//!   OMP_NUM_THREADS=1 cargo run --release --example bench_qap -- [FEATURES.safetensors] [TIME_LIMIT_S] [--real-only]
//!
//! Environment: QAP_SIZES=20,25 runs only those c; QAP_DA_STEPS=root,node sets the dual-ascent
//! steps at the root and at every other node (default 100,10); QAP_BOUNDS=gl or da runs one bound
//! (default both); QAP_RESTARTS sets the local search's starts (default 100);
//! QAP_NAME_DRAWS=k draws k random name sets per c (default 1).
//!
//! Instances (A and B standardised as the naming step does):
//! - random: A, B symmetric with N(0, 1) entries - no shared structure, the hardest case;
//! - planted: B from random class vectors, A from a noisy copy with the clusters shuffled
//!   (correlation of A and the planted B about 0.5), as real namings look when they work;
//! - real (with FEATURES): k-means (c clusters, 3 restarts, member means) on the features,
//!   cosine of the centroids, against the cosine of c class names embedded by all-MiniLM-L6-v2
//!   over the 18 CIFAR templates and by GloVe: CIFAR-10's names for c = 10, otherwise c names
//!   drawn from CIFAR-100's (for c = 20 also the 20 CIFAR100-20 superclass names).
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;
use tch::{Kind, Tensor};
use zerolabel::data::features::{l2_normalize, load_features};
use zerolabel::naming::qap::{cosine_matrix, standardize};
use zerolabel::prior::sentence_encoder::{default_model_dir, default_templates, SentenceEncoder};
use zerolabel::prior::word_vectors::{WordVectorSource, WordVectors};
use zerolabel::naming::certified::{solve, BoundKind, Qap, QapSettings, QapSolution};
use zerolabel::rng::Rng;

#[path = "common/kmeans.rs"]
mod kmeans;

const CIFAR10: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

const CIFAR100: [&str; 100] = [
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy", "bridge",
    "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud",
    "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion", "lizard", "lobster",
    "man", "maple tree", "motorcycle", "mountain", "mouse", "mushroom", "oak tree", "orange", "orchid", "otter",
    "palm tree", "pear", "pickup truck", "pine tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit",
    "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
];

const CIFAR100_SUPERCLASSES: [&str; 20] = [
    "aquatic mammals", "fish", "flowers", "food containers", "fruit and vegetables", "household electrical devices",
    "household furniture", "insects", "large carnivores", "large man-made outdoor things", "large natural outdoor scenes",
    "large omnivores and herbivores", "medium-sized mammals", "non-insect invertebrates", "people", "reptiles",
    "small mammals", "trees", "vehicles 1", "vehicles 2",
];

fn random_symmetric(rng: &mut Rng, c: usize) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; c]; c];
    for i in 0..c {
        for j in i + 1..c {
            m[i][j] = rng.normal();
            m[j][i] = m[i][j];
        }
    }
    m
}

fn planted(rng: &mut Rng, c: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let classes: Vec<Vec<f64>> = (0..c).map(|_| (0..32).map(|_| rng.normal()).collect()).collect();
    let mut order: Vec<usize> = (0..c).collect();
    rng.shuffle(&mut order);
    let clusters: Vec<Vec<f64>> = order.iter().map(|&k| classes[k].iter().map(|v| v + 1.0 * rng.normal()).collect()).collect();
    (cosine_matrix(&clusters), cosine_matrix(&classes))
}

/// Gilmore-Lawler, and dual ascent (`QAP_DA_STEPS=root,node` ascent steps; default 100,10 as
/// `QapSettings::for_size`).
fn bounds() -> Vec<(BoundKind, String)> {
    let steps = std::env::var("QAP_DA_STEPS").unwrap_or_else(|_| "100,10".into());
    let (root, node) = steps.split_once(',').and_then(|(r, n)| Some((r.parse().ok()?, n.parse().ok()?))).unwrap_or((100, 10));
    let only = std::env::var("QAP_BOUNDS").unwrap_or_else(|_| "gl,da".into());
    let mut bounds = Vec::new();
    if only.split(',').any(|b| b == "gl") {
        bounds.push((BoundKind::GilmoreLawler, "GL".into()));
    }
    if only.split(',').any(|b| b == "da") {
        bounds.push((BoundKind::DualAscent { root_iterations: root, node_iterations: node }, format!("DA {root}/{node}")));
    }
    bounds
}

/// How many random sets of CIFAR-100 names to draw for each c other than 10 (`QAP_NAME_DRAWS`, default 1).
fn name_draws() -> u64 {
    std::env::var("QAP_NAME_DRAWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// The sizes to run (`QAP_SIZES=20,25`; default 10, 15, 20, 25).
fn sizes() -> Vec<usize> {
    std::env::var("QAP_SIZES").ok().and_then(|s| s.split(',').map(|x| x.trim().parse().ok()).collect()).unwrap_or(vec![10, 15, 20, 25])
}

fn report(kind: &str, c: usize, what: &str, a: Vec<Vec<f64>>, b: Vec<Vec<f64>>, limit: Duration) -> Result<()> {
    let q = Qap::new(standardize(&a), standardize(&b), None)?;
    for (bound, bound_name) in bounds() {
        let restarts = std::env::var("QAP_RESTARTS").ok().and_then(|r| r.parse().ok()).unwrap_or(100);
        let s = solve(&q, &QapSettings { time_limit: limit, restarts, seed: 0, bound });
        print_row(kind, c, what, &bound_name, &s);
    }
    Ok(())
}

fn print_row(kind: &str, c: usize, what: &str, bound: &str, s: &QapSolution) {
    println!(
        "| {kind} | {c} | {what} | {bound} | {:.2} | {} | {:.4} | {:.0} % | {:.3} | {:.3} | {:.3} | {} |",
        s.elapsed.as_secs_f64(),
        if s.certified_optimal { "yes" } else { "no" },
        s.gap(),
        100.0 * zerolabel::naming::qap::relative_gap(s.upper_bound, s.score),
        s.score,
        s.local_search_score,
        s.root_bound,
        s.nodes
    );
}

fn to_f64(v: Vec<Vec<f32>>) -> Vec<Vec<f64>> {
    v.into_iter().map(|r| r.into_iter().map(|x| x as f64).collect()).collect()
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let real_only = args.iter().any(|a| a == "--real-only");
    args.retain(|a| a != "--real-only");
    let mut args = args.into_iter();
    let features = args.next().map(PathBuf::from);
    let limit = Duration::from_secs_f64(args.next().map(|s| s.parse()).transpose()?.unwrap_or(15.0));
    println!(
        "time limit {:.0} s per instance, one thread; score = best naming found (a random naming scores 0 on average), gap = upper bound - score\n",
        limit.as_secs_f64()
    );
    println!("| instance | c | details | bound | time (s) | certified | gap | gap / score | score | local search | root bound | nodes |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for c in sizes().into_iter().filter(|_| !real_only) {
        for k in 0..2u64 {
            let mut rng = Rng::derive(k, &format!("bench-qap-random-{c}"));
            report("random", c, &format!("seed {k}"), random_symmetric(&mut rng, c), random_symmetric(&mut rng, c), limit)?;
        }
        for k in 0..2u64 {
            let mut rng = Rng::derive(k, &format!("bench-qap-planted-{c}"));
            let (a, b) = planted(&mut rng, c);
            report("planted", c, &format!("seed {k}"), a, b, limit)?;
        }
    }
    let Some(path) = features else { return Ok(()) };
    let x = l2_normalize(&load_features(&path, None)?.features);
    let encoder = SentenceEncoder::load(&default_model_dir())?;
    let templates = default_templates();
    for c in sizes() {
        let assign = kmeans::kmeans(&x, c as i64, 3, c as u64);
        let centroids = Vec::<Vec<f64>>::try_from(&kmeans::member_means(&x, &Tensor::from_slice(&assign), c as i64).to_kind(Kind::Double))?;
        let a = cosine_matrix(&centroids);
        let mut name_sets: Vec<(String, Vec<String>)> = Vec::new();
        if c == 10 {
            name_sets.push(("CIFAR-10 names".into(), CIFAR10.iter().map(|s| s.to_string()).collect()));
        } else {
            for draw in 0..name_draws() {
                // Draw 0 keeps the seed of the single draw the benchmark made before.
                let mut rng = if draw == 0 { Rng::derive(c as u64, "bench-qap-names") } else { Rng::derive(c as u64 + 1000 * draw, "bench-qap-names") };
                let mut all: Vec<usize> = (0..100).collect();
                rng.shuffle(&mut all);
                name_sets.push((format!("{c} random CIFAR-100 names (draw {draw})"), all[..c].iter().map(|&i| CIFAR100[i].to_string()).collect()));
            }
        }
        if c == 20 {
            name_sets.push(("CIFAR100-20 superclasses".into(), CIFAR100_SUPERCLASSES.iter().map(|s| s.to_string()).collect()));
        }
        for (what, names) in name_sets {
            let minilm = to_f64(encoder.encode_classes(&names, &templates)?);
            report("real", c, &format!("k-means vs {what}, MiniLM 18 templates"), a.clone(), cosine_matrix(&minilm), limit)?;
            let glove = WordVectors::load_for_classes(&WordVectorSource::default_glove(), &names)?;
            let glove: Vec<Vec<f32>> = names.iter().map(|n| glove.embed_class(n)).collect::<Result<_, _>>()?;
            report("real", c, &format!("k-means vs {what}, GloVe"), a.clone(), cosine_matrix(&to_f64(glove)), limit)?;
        }
    }
    Ok(())
}
