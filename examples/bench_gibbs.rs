//! Time of one Metropolis chain of the naming's Gibbs posterior (`trust::gibbs_mcmc`) at the
//! sweep count a run uses above 10 classes (4 M proposals, at most 20,000 sweeps): c noisy
//! copies of random 50-D class vectors, centred cosine.
//! `cargo run --release --example bench_gibbs -- [C ...]` (default 20 40 100).
use std::time::Instant;
use zerolabel::naming::kernels::{naming_problem, NamingKernel};
use zerolabel::naming::trust;
use zerolabel::rng::Rng;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    for c in if sizes.is_empty() { vec![20, 40, 100] } else { sizes } {
        let mut rng = Rng::new(3);
        let classes: Vec<Vec<f64>> = (0..c).map(|_| (0..50).map(|_| rng.normal()).collect()).collect();
        let clusters: Vec<Vec<f64>> = classes.iter().map(|v| v.iter().map(|x| x + 0.5 * rng.normal()).collect()).collect();
        let problem = naming_problem(&clusters, &classes, NamingKernel::CentredCosine);
        let sweeps = (4_000_000 / (c * (c - 1) / 2).max(1)).clamp(200, 20_000);
        let started = Instant::now();
        let posterior = trust::gibbs_mcmc(&problem, &(0..c).collect::<Vec<_>>(), 2.0, sweeps, 0);
        println!("c = {c}: {sweeps} sweeps in {:.2} s (MAP probability {:.3})", started.elapsed().as_secs_f64(), posterior.map_probability);
    }
}
