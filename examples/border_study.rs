//! Do statistics of which clusters border which name clusters better than their centroids'
//! geometry (issue 13: "statistics of which clusters border which")? Labels are read only to
//! score the namings.
//!
//!   cargo run --release --example border_study -- TRAIN.safetensors CLASSES_FILE [SEEDS]
//!
//! k-means clusters (10 restarts, kept in `$NAMING_CACHE` where set, keyed by `$TAG`) and, as
//! the oracle, the true classes. Each training sample's `$KNN` (10) nearest
//! neighbours (cosine) give border counts M[a][b] (neighbours in cluster b of members of a),
//! made symmetric four ways: "share" (M[a][b] + M[b][a]) / (n_a + n_b), "log" its logarithm,
//! "out" the mean of the two clusters' shares of their outgoing edges, "logout" its logarithm;
//! "comb" is the standardised centred cosine of member means plus the standardised "log".
//! Each is named against the class vectors' centred ("/cen") or plain ("/cos") cosine by the
//! exact naming QAP. Printed: naming accuracy on the training split (% of samples), for the
//! oracle the share of names right.
use anyhow::{Context, Result};
use std::path::PathBuf;
use tch::{Kind, Tensor};
use zerolabel::data::features::{l2_normalize, load_features};
use zerolabel::naming::kernels::{kernel_similarity, member_means, NamingKernel};
use zerolabel::naming::qap::{solve_exact, standardize, NamingProblem};
use zerolabel::prior::sentence_encoder::{default_model_dir, default_mpnet_dir, default_templates, SentenceEncoder};
use zerolabel::prior::word_vectors::{WordVectorSource, WordVectors};

#[path = "common/kmeans.rs"]
mod kmeans;
use kmeans::cached_kmeans;

/// Indices of the `k` nearest neighbours (cosine) of every row among all rows (self excluded).
fn knn(x: &Tensor, k: i64) -> Vec<Vec<i64>> {
    let n = x.size()[0];
    let mut out = Vec::with_capacity(n as usize);
    let chunk = 1024;
    let mut start = 0;
    while start < n {
        let len = chunk.min(n - start);
        let q = x.narrow(0, start, len);
        let mut sim = q.matmul(&x.tr());
        let idx = Tensor::arange_start(start, start + len, (Kind::Int64, x.device()));
        let _ = sim.index_put_(&[Some(Tensor::arange(len, (Kind::Int64, x.device()))), Some(idx)], &Tensor::from(-10.0f32), false);
        let (_, top) = sim.topk(k, 1, true, true);
        let rows: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(&top).unwrap();
        out.extend(rows);
        start += len;
    }
    out
}

/// Border counts M[a][b]: neighbours in cluster b of members of cluster a (a != b).
fn border_counts(assign: &[i64], neighbours: &[Vec<i64>], c: usize) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; c]; c];
    for (i, nb) in neighbours.iter().enumerate() {
        let a = assign[i] as usize;
        for &j in nb {
            let b = assign[j as usize] as usize;
            if a != b {
                m[a][b] += 1.0;
            }
        }
    }
    m
}

/// Symmetric border similarity: share of cross-cluster edges, normalised by sizes.
fn border_similarity(m: &[Vec<f64>], sizes: &[f64], transform: &str) -> Vec<Vec<f64>> {
    let c = m.len();
    let mut s = vec![vec![0.0; c]; c];
    for a in 0..c {
        for b in 0..c {
            if a == b {
                continue;
            }
            let v = match transform {
                "share" => (m[a][b] + m[b][a]) / (sizes[a] + sizes[b]),
                "log" => ((m[a][b] + m[b][a]) / (sizes[a] + sizes[b]) + 1e-4).ln(),
                "out" => {
                    let oa: f64 = m[a].iter().sum();
                    let ob: f64 = m[b].iter().sum();
                    (m[a][b] / oa.max(1.0) + m[b][a] / ob.max(1.0)) / 2.0
                }
                "logout" => {
                    let oa: f64 = m[a].iter().sum();
                    let ob: f64 = m[b].iter().sum();
                    ((m[a][b] / oa.max(1.0) + m[b][a] / ob.max(1.0)) / 2.0 + 1e-3).ln()
                }
                _ => unreachable!(),
            };
            s[a][b] = v;
        }
    }
    s
}

/// class_of[cluster] by the exact search over the standardised matrices.
fn name(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<usize> {
    solve_exact(&NamingProblem { cluster_similarity: standardize(a), class_similarity: standardize(b), sizes: None }).class_of
}

/// Share (%) of samples whose cluster got their class.
fn acc(assign: &[i64], labels: &[i64], class_of: &[usize]) -> f64 {
    assign.iter().zip(labels).filter(|(a, l)| class_of[**a as usize] as i64 == **l).count() as f64 / labels.len() as f64 * 100.0
}

fn to_f64(v: Vec<Vec<f32>>) -> Vec<Vec<f64>> {
    v.into_iter().map(|r| r.into_iter().map(|x| x as f64).collect()).collect()
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().context("FEATURES")?);
    let classes_file = PathBuf::from(args.next().context("CLASSES")?);
    let seeds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let tag = std::env::var("TAG").unwrap_or_else(|_| "f".into());
    let names: Vec<String> = std::fs::read_to_string(&classes_file)?.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let c = names.len();
    let file = load_features(&path, None)?;
    let labels = file.labels.context("labels")?;
    let x = l2_normalize(&file.features);
    let dim = x.size()[1] as usize;
    let flat: Vec<f32> = Vec::<f32>::try_from(&x.flatten(0, -1))?;

    let glove = WordVectors::load_for_classes(&WordVectorSource::default_glove(), &names)?;
    let glove: Vec<Vec<f64>> = names.iter().map(|n| glove.embed_class(n).map(|v| v.iter().map(|&x| x as f64).collect())).collect::<Result<_, _>>()?;
    let minilm = SentenceEncoder::load(&default_model_dir())?;
    let mut encoders: Vec<(&str, Vec<Vec<f64>>)> = vec![("glove", glove), ("minilm18", to_f64(minilm.encode_classes(&names, &default_templates())?))];
    if let Ok(mpnet) = SentenceEncoder::load(&default_mpnet_dir()) {
        encoders.push(("mpnet18", to_f64(mpnet.encode_classes(&names, &default_templates())?)));
    }
    let kn: i64 = std::env::var("KNN").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let t0 = std::time::Instant::now();
    let neighbours = knn(&x, kn);
    eprintln!("knn {kn}: {:.1}s", t0.elapsed().as_secs_f64());

    let transforms = ["share", "log", "out", "logout"];
    // Oracle: true classes as clusters.
    let report = |label: &str, assign: &[i64]| -> Result<()> {
        let sizes: Vec<f64> = (0..c).map(|k| assign.iter().filter(|&&a| a as usize == k).count() as f64).collect();
        let means = member_means(&flat, dim, assign, c)?;
        let m = border_counts(assign, &neighbours, c);
        for (enc, vecs) in &encoders {
            let mut line = format!("{label:>8} {enc:>8}");
            for kernel in [NamingKernel::CentredCosine, NamingKernel::Cosine] {
                let class_of = name(&kernel_similarity(&means, kernel), &kernel_similarity(vecs, kernel));
                line += &format!(" {}:{:5.1}", &kernel.name()[..6], acc(assign, &labels, &class_of));
            }
            for t in transforms {
                for ck in [NamingKernel::CentredCosine, NamingKernel::Cosine] {
                    let class_of = name(&border_similarity(&m, &sizes, t), &kernel_similarity(vecs, ck));
                    line += &format!(" {t}/{}:{:5.1}", &ck.name()[..3], acc(assign, &labels, &class_of));
                }
            }
            let ccos = standardize(&kernel_similarity(&means, NamingKernel::CentredCosine));
            let blog = standardize(&border_similarity(&m, &sizes, "log"));
            let comb: Vec<Vec<f64>> = ccos.iter().zip(&blog).map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + y).collect()).collect();
            let class_of = name(&comb, &kernel_similarity(vecs, NamingKernel::CentredCosine));
            line += &format!(" comb/cen:{:5.1}", acc(assign, &labels, &class_of));
            println!("{line}");
        }
        Ok(())
    };
    report("oracle", &labels)?;
    for seed in 0..seeds {
        let assign = cached_kmeans(&x, c as i64, seed, &tag)?;
        report(&format!("km{seed}"), &assign)?;
    }
    Ok(())
}
