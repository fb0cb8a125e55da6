//! Runtime of the naming step (issue: name clusters by geometry) for c = 10, 20 and 100:
//! exact search for c <= 10, the certified branch and bound (15 s limit) above; the time includes the
//! alignment score (10,000 random permutations and the Gibbs posterior), judged by the naming
//! kernel alone and by the default jury (every invariant kernel: one more posterior each).
//!
//!   cargo run --release --example bench_naming
//!
//! Each instance: c centroids in 128 dimensions, class similarities from a noisy copy of the
//! centroids (so the instance has structure, as real ones do), cluster sizes and proportions.
use std::time::Instant;
use zerolabel::naming::geometry::invariant_kernels;
use zerolabel::naming::{GeometryNamer, GeometryParams};
use zerolabel::rng::Rng;

fn main() {
    println!("| c | solver | judges of the names | instances | median time (ms) | max time (ms) |\n| --- | --- | --- | --- | --- | --- |");
    for &c in &[10usize, 20, 100] {
        for (judges, trust_kernels) in [("the naming kernel", vec![]), ("every invariant kernel (default)", invariant_kernels())] {
            let params = GeometryParams { size_weight: 1.0, trust_kernels, ..GeometryParams::default() };
            let namer = GeometryNamer::new(params.clone()).expect("valid settings");
            let instances = if c <= 20 { 5 } else { 2 };
            let mut times = Vec::new();
            for k in 0..instances {
                let mut rng = Rng::derive(k as u64, "bench-naming");
                let centroids: Vec<Vec<f64>> = (0..c).map(|_| (0..128).map(|_| rng.normal()).collect()).collect();
                let noisy: Vec<Vec<f64>> = centroids.iter().map(|row| row.iter().map(|v| v + 0.8 * rng.normal()).collect()).collect();
                let sizes: Vec<usize> = (0..c).map(|_| 500 + (rng.uniform() * 100.0) as usize).collect();
                let alpha = vec![1.0 / c as f64; c];
                let started = Instant::now();
                let naming = namer.name_vectors(&centroids, &sizes, &noisy, &alpha, params.kernel, k as u64).expect("c clusters, c classes").solution;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box(naming);
            }
            times.sort_by(f64::total_cmp);
            let solver = if c <= params.exact_limit { "exact" } else { "certified branch and bound, 15 s limit" };
            println!("| {c} | {solver} | {judges} | {instances} | {:.0} | {:.0} |", times[times.len() / 2], times[times.len() - 1]);
        }
    }
}
