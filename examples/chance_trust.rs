//! How often names of unrelated geometries would be trusted, by class count: random Gaussian
//! class vectors (50-D) against random Gaussian cluster centres (64-D), named by geometry with
//! the default settings and judged by the default jury. The support is the verdict's (the most
//! sceptical kernel's); "passes the jury" ignores `MIN_CLASSES_TO_TRUST`, "trusted" applies it.
//!
//!   cargo run --release --example chance_trust [draws per class count, default 40]
use zerolabel::naming::geometry::{GeometryNamer, GeometryParams};
use zerolabel::naming::kernels::NamingKernel;
use zerolabel::rng::Rng;

fn gauss(rng: &mut Rng, n: usize, d: usize) -> Vec<Vec<f64>> {
    (0..n).map(|_| (0..d).map(|_| rng.normal()).collect()).collect()
}

fn main() {
    let draws: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(40);
    let namer = GeometryNamer::new(GeometryParams::default()).unwrap();
    for c in 3..=10usize {
        let (mut trusted, mut passes_jury) = (0, 0);
        let mut supports = vec![];
        for draw in 0..draws {
            let mut rng = Rng::derive(draw as u64, &format!("chance-{c}"));
            let classes = gauss(&mut rng, c, 50);
            let centres = gauss(&mut rng, c, 64);
            let sizes = vec![100usize; c];
            let alpha = vec![1.0 / c as f64; c];
            let g = namer.name_vectors(&centres, &sizes, &classes, &alpha, NamingKernel::CentredCosine, draw as u64).unwrap();
            let t = g.trust_of(&g.solution.class_of);
            trusted += usize::from(t.trusted);
            passes_jury += usize::from(t.support >= t.threshold);
            supports.push(t.support);
        }
        supports.sort_by(f64::total_cmp);
        println!("c = {c}: passes the jury {passes_jury}/{draws}, trusted {trusted}/{draws}; support median {:.2}, 90th pct {:.2}", supports[draws / 2], supports[draws * 9 / 10]);
    }
}
