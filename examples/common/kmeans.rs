//! k-means shared by the naming examples (`#[path]`-included): Lloyd's algorithm with
//! k-means++ seeding, best of several restarts by inertia, member-mean centroids.
use anyhow::{Context, Result};
use std::path::PathBuf;
use tch::{Kind, Tensor};
use zerolabel::rng::Rng;

/// `kmeans` with 10 restarts, its assignments kept in `$NAMING_CACHE/KEY-nN-kK-r10-seedS.txt`
/// (where set) and read back by later runs, so that reruns only redo the naming.
#[allow(dead_code)] // bench_qap includes this file and clusters without a cache
pub fn cached_kmeans(x: &Tensor, k: i64, seed: u64, key: &str) -> Result<Vec<i64>> {
    let Some(dir) = std::env::var_os("NAMING_CACHE").map(PathBuf::from) else { return Ok(kmeans(x, k, 10, seed)) };
    let path = dir.join(format!("{key}-n{}-k{k}-r10-seed{seed}.txt", x.size()[0]));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let assign: Vec<i64> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>().with_context(|| path.display().to_string())?;
        if assign.len() as i64 == x.size()[0] {
            return Ok(assign);
        }
    }
    let assign = kmeans(x, k, 10, seed);
    let text: Vec<String> = assign.iter().map(i64::to_string).collect();
    zerolabel::io::write_atomic(&path, text.join(" ").as_bytes())?;
    Ok(assign)
}

/// Lloyd's k-means with k-means++ seeding; the best of `restarts` runs by inertia.
/// Returns the assignments.
pub fn kmeans(x: &Tensor, k: i64, restarts: usize, seed: u64) -> Vec<i64> {
    let mut best: Option<(f64, Tensor)> = None;
    let mut rng = Rng::derive(seed, "kmeans");
    let sq = x.square().sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    for _ in 0..restarts {
        let mut centroids = kmeans_plus_plus(x, &sq, k, &mut rng);
        let mut assign = Tensor::zeros([x.size()[0]], (Kind::Int64, x.device()));
        let mut inertia = f64::INFINITY;
        for iteration in 0..300 {
            let d = distances(x, &sq, &centroids);
            let (mins, new_assign) = d.min_dim(1, false);
            inertia = mins.sum(Kind::Double).double_value(&[]);
            let changed = iteration == 0 || new_assign.ne_tensor(&assign).any().int64_value(&[]) != 0;
            assign = new_assign;
            if !changed {
                break;
            }
            centroids = member_means(x, &assign, k);
        }
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, assign));
        }
    }
    Vec::<i64>::try_from(&best.expect("restarts >= 1").1).expect("assignments")
}

fn distances(x: &Tensor, sq: &Tensor, c: &Tensor) -> Tensor {
    let c2 = c.square().sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    (sq.unsqueeze(1) + c2.unsqueeze(0) - x.matmul(&c.tr()) * 2.0).clamp_min(0.0)
}

fn kmeans_plus_plus(x: &Tensor, sq: &Tensor, k: i64, rng: &mut Rng) -> Tensor {
    let n = x.size()[0];
    let mut chosen = vec![rng.below(n as usize) as i64];
    while (chosen.len() as i64) < k {
        let c = x.index_select(0, &Tensor::from_slice(&chosen));
        let (d, _) = distances(x, sq, &c).min_dim(1, false);
        let d = Vec::<f64>::try_from(&d.to_kind(Kind::Double)).expect("distances");
        let mut cumulative = Vec::with_capacity(d.len());
        let mut total = 0.0;
        for v in d {
            total += v;
            cumulative.push(total);
        }
        chosen.push(rng.categorical(&cumulative) as i64);
    }
    x.index_select(0, &Tensor::from_slice(&chosen))
}

/// Mean of each cluster's members (an empty cluster keeps a random member's position).
pub fn member_means(x: &Tensor, assign: &Tensor, k: i64) -> Tensor {
    let d = x.size()[1];
    let sums = Tensor::zeros([k, d], (Kind::Float, x.device())).index_add(0, assign, x);
    let counts = Tensor::zeros([k], (Kind::Float, x.device())).index_add(0, assign, &Tensor::ones_like(assign).to_kind(Kind::Float));
    let fallback = x.get(0).unsqueeze(0).expand([k, d], false);
    let means = &sums / counts.clamp_min(1.0).unsqueeze(1);
    means.where_self(&counts.gt(0.0).unsqueeze(1), &fallback)
}
