//! Issue 13: clusters laid out as a noisy, rotated, scaled and shifted copy of the GloVe
//! geometry of real class-name sets are named right on every seed by the invariant kernels,
//! and the alignment score trusts those namings.
use zerolabel::naming::kernels::{aligned_synthetic, member_means, name_by_geometry, NamingKernel};
use zerolabel::naming::trust::{alignment_score, TrustParams};
use zerolabel::prior::word_vectors::{WordVectorSource, WordVectors};
use zerolabel::rng::Rng;

/// The default GloVe source, or None (with the reason printed) when it is not installed.
fn glove() -> Option<WordVectorSource> {
    let source = WordVectorSource::default_glove();
    let WordVectorSource::KumoGlove(dir) = &source else { return None };
    if !dir.join("glove_6B_50d_emb.npy").exists() {
        eprintln!("SKIPPED: GloVe 6B 50d is not installed at {} (run scripts/setup.sh)", dir.display());
        return None;
    }
    Some(source)
}

fn class_vectors(source: &WordVectorSource, file: &str) -> Vec<Vec<f64>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(file);
    let names: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let vectors = WordVectors::load_for_classes(source, &names).unwrap();
    names.iter().map(|n| vectors.embed_class(n).unwrap().into_iter().map(f64::from).collect()).collect()
}

#[test]
fn aligned_copies_of_real_name_sets_are_named_right_on_every_seed() {
    let Some(source) = glove() else { return };
    for file in ["cifar10.classes", "fashion-mnist.classes", "stl10.classes", "cifar100-20.classes"] {
        let classes = class_vectors(&source, file);
        let c = classes.len();
        for kernel in [NamingKernel::CentredCosine, NamingKernel::Euclidean] {
            for seed in 0..10u64 {
                let (features, dim, labels) = aligned_synthetic(&classes, 64, 30, 0.5, seed);
                // Clusters in a shuffled order.
                let mut perm: Vec<usize> = (0..c).collect();
                Rng::new(seed).shuffle(&mut perm);
                let mut cluster_of_class = vec![0usize; c];
                perm.iter().enumerate().for_each(|(j, &k)| cluster_of_class[k] = j);
                let assignments: Vec<i64> = labels.iter().map(|&l| cluster_of_class[l as usize] as i64).collect();
                let means = member_means(&features, dim, &assignments, c).unwrap();
                let (problem, naming) = name_by_geometry(&means, &classes, kernel, seed).unwrap();
                assert_eq!(naming.class_of, perm, "{file}, {kernel:?}, seed {seed}");
                if c <= 10 && seed < 3 {
                    let score = alignment_score(&problem, &naming, &TrustParams { seed, ..TrustParams::default() });
                    assert!(score.trusted, "{file}, {kernel:?}, seed {seed}: E[names right] {}", score.mean_map_marginal);
                }
            }
        }
    }
}
