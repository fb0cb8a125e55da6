//! Benchmark of stage III at the paper's settings: 10K steps, B = 500, c = 10, D = 512,
//! epsilon 0.01, L_cgsk, Adam lr 1e-5, on synthetic L2-normalised features (c Gaussian
//! clusters, N = 50,000) with the clusters as A. The prior is the ordinal one for c = 10
//! (same structure and cost as a word-vector prior; no GloVe needed).
//!
//!   cargo run --release --example bench_stage3 -- [--steps N] [--threads T] [--plan-gradient constant|unrolled]
//!
//! Prints one JSON line with the measured numbers. `bench/stage3.sh` runs it next to the
//! PyTorch reference (`bench/stage3_reference.py`).
use tch::Tensor;
use zerolabel::data::features::l2_normalize;
use zerolabel::matching::{self, MatchingParams, PlanGradient};
use zerolabel::prior::ordinal::ordinal_prior;
use zerolabel::prior::sampler::PriorAtoms;
use zerolabel::prior::PriorParams;
use zerolabel::rng::Rng;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let steps: usize = flag("--steps").map_or(Ok(10_000), |s| s.parse())?;
    let threads: i32 = flag("--threads").map_or(Ok(1), |s| s.parse())?;
    let plan_gradient = match flag("--plan-gradient").as_deref() {
        None | Some("constant") => PlanGradient::Constant,
        Some("unrolled") => PlanGradient::Unrolled,
        Some(other) => anyhow::bail!("--plan-gradient {other}: expected constant or unrolled"),
    };
    tch::set_num_threads(threads);
    let (n, d, c) = (50_000usize, 512usize, 10usize);
    let mut rng = Rng::new(0);
    let means: Vec<f32> = (0..c * d).map(|_| rng.normal() as f32).collect();
    let means = l2_normalize(&Tensor::from_slice(&means).view([c as i64, d as i64]));
    let labels: Vec<i64> = (0..n as i64).map(|i| i % c as i64).collect();
    let noise: Vec<f32> = (0..n * d).map(|_| 0.05 * rng.normal() as f32).collect();
    let x = l2_normalize(&(means.index_select(0, &Tensor::from_slice(&labels)) + Tensor::from_slice(&noise).view([n as i64, d as i64])));
    let names: Vec<String> = (0..c).map(|k| format!("class {k}")).collect();
    let prior = ordinal_prior(&names, PriorParams::default())?;
    let atoms = PriorAtoms::new(&prior);
    let params = MatchingParams { steps, plan_gradient, ..MatchingParams::default() };
    let start = std::time::Instant::now();
    let mut iterations = 0usize;
    let result = matching::train(&x, Some(&labels), Some(&means), &atoms, c, &params, 0, |entry, _| {
        iterations += entry.sinkhorn_iterations.round() as usize;
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "implementation": "zerolabel (Rust, tch)",
            "plan_gradient": format!("{plan_gradient:?}").to_lowercase(),
            "threads": threads,
            "steps": steps,
            "seconds": seconds,
            "ms_per_step": 1000.0 * seconds / steps as f64,
            "seconds_for_10k_steps": seconds * 10_000.0 / steps as f64,
            "mean_sinkhorn_iterations": iterations as f64 / steps as f64,
            "best_step": result.best_step,
        })
    );
    Ok(())
}
