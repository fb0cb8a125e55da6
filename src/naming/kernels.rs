//! Naming statistics that a rotation, a scale or a common offset of the features cannot change
//! (issue 13, item 1).
//!
//! The naming QAP (`naming`) compares two c x c similarity matrices: one of the clusters, one of
//! the classes. Learned Sinkhorn centroids sit off their clusters' member means, and the plain
//! cosine of points that share a common offset is not invariant to that offset: two seeds with
//! equally pure clusters can then be named right and completely wrong. Here both sides are built
//! from *vectors* (member-mean centroids; class-name embeddings) by a [`NamingKernel`], and the
//! kernels marked invariant give the same matrix when the vectors are rotated, scaled by a
//! positive factor, or shifted by a common offset.
use crate::error::{Error, Result};
use crate::naming::qap::{self, Naming, NamingProblem};

/// How a set of c vectors becomes the c x c similarity the naming QAP compares. Every kernel's
/// matrix is standardised over its off-diagonal (mean 0, unit variance), so only its shape counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NamingKernel {
    /// Cosine of the vectors as they are (today's naming). Not shift-invariant.
    Cosine,
    /// Cosine after subtracting the mean of the c vectors. Invariant.
    CentredCosine,
    /// Per-row neighbour ranks of the cosine (`qap::rank_matrix`). Not shift-invariant.
    Rank,
    /// Per-row neighbour ranks of the centred cosine. Invariant.
    CentredRank,
    /// "It's a (Blind) Match!": minus the Euclidean distance of the L2-normalised vectors,
    /// z-scored over the off-diagonal. Not shift-invariant.
    BlindMatch,
    /// The same after centring: minus the distance of the centred, normalised vectors. Invariant.
    CentredBlindMatch,
    /// Minus the plain Euclidean distance of the vectors, z-scored. Invariant.
    Euclidean,
}

impl NamingKernel {
    pub const ALL: [NamingKernel; 7] = [
        NamingKernel::Cosine,
        NamingKernel::CentredCosine,
        NamingKernel::Rank,
        NamingKernel::CentredRank,
        NamingKernel::BlindMatch,
        NamingKernel::CentredBlindMatch,
        NamingKernel::Euclidean,
    ];

    /// The kernel's name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            NamingKernel::Cosine => "cosine",
            NamingKernel::CentredCosine => "centred-cosine",
            NamingKernel::Rank => "rank",
            NamingKernel::CentredRank => "centred-rank",
            NamingKernel::BlindMatch => "blind-match",
            NamingKernel::CentredBlindMatch => "centred-blind-match",
            NamingKernel::Euclidean => "euclidean",
        }
    }

    /// Whether the standardised matrix is unchanged by rotation, positive scale and a common
    /// offset of the vectors (tested below for every kernel that claims it).
    pub fn is_invariant(self) -> bool {
        !matches!(self, NamingKernel::Cosine | NamingKernel::Rank | NamingKernel::BlindMatch)
    }

    fn is_centred(self) -> bool {
        matches!(self, NamingKernel::CentredCosine | NamingKernel::CentredRank | NamingKernel::CentredBlindMatch)
    }
}

/// The vectors minus their mean vector.
pub fn centre_rows(vectors: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let Some(first) = vectors.first() else { return vec![] };
    let n = vectors.len() as f64;
    let mean: Vec<f64> = (0..first.len()).map(|k| vectors.iter().map(|v| v[k]).sum::<f64>() / n).collect();
    vectors.iter().map(|v| v.iter().zip(&mean).map(|(x, m)| x - m).collect()).collect()
}

/// Minus the Euclidean distance between every pair of vectors (diagonal 0).
pub fn negative_distances(vectors: &[Vec<f64>]) -> Vec<Vec<f64>> {
    vectors.iter().map(|a| vectors.iter().map(|b| -a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt()).collect()).collect()
}

/// Each vector scaled to unit length (a zero vector stays zero).
pub fn normalised(vectors: &[Vec<f64>]) -> Vec<Vec<f64>> {
    vectors
        .iter()
        .map(|v| {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// The standardised c x c similarity of `vectors` under `kernel`.
pub fn kernel_similarity(vectors: &[Vec<f64>], kernel: NamingKernel) -> Vec<Vec<f64>> {
    let centred;
    let base = if kernel.is_centred() {
        centred = centre_rows(vectors);
        &centred
    } else {
        vectors
    };
    let raw = match kernel {
        NamingKernel::Cosine | NamingKernel::CentredCosine => qap::cosine_matrix(base),
        NamingKernel::Rank | NamingKernel::CentredRank => qap::rank_matrix(&qap::cosine_matrix(base)),
        NamingKernel::BlindMatch | NamingKernel::CentredBlindMatch => negative_distances(&normalised(base)),
        NamingKernel::Euclidean => negative_distances(base),
    };
    qap::standardize(&raw)
}

/// Evidence of several kernels combined: the mean of their standardised matrices, standardised
/// again. Invariant when every kernel in the list is.
pub fn ensemble_similarity(vectors: &[Vec<f64>], kernels: &[NamingKernel]) -> Vec<Vec<f64>> {
    let c = vectors.len();
    let mut sum = vec![vec![0.0; c]; c];
    for &kernel in kernels {
        let m = kernel_similarity(vectors, kernel);
        sum.iter_mut().flatten().zip(m.iter().flatten()).for_each(|(s, v)| *s += v);
    }
    qap::standardize(&sum)
}

/// The mean of each cluster's members: `features` row-major (n x dim), `assignments[i]` in 0..k.
/// Unlike learned centroids, member means move with the features under any affine map, which
/// is what makes the invariant kernels' namings invariant. Errors on an empty cluster.
pub fn member_means(features: &[f32], dim: usize, assignments: &[i64], k: usize) -> Result<Vec<Vec<f64>>> {
    if dim == 0 || features.len() != assignments.len() * dim {
        return Err(Error::Shape {
            what: "features for member means".into(),
            expected: format!("{} rows of {dim} values", assignments.len()),
            got: format!("{} values", features.len()),
        });
    }
    let mut sums = vec![vec![0.0f64; dim]; k];
    let mut counts = vec![0usize; k];
    for (row, &a) in features.chunks_exact(dim).zip(assignments) {
        let a = usize::try_from(a).ok().filter(|&a| a < k).ok_or_else(|| Error::Shape {
            what: "cluster assignment".into(),
            expected: format!("a cluster in 0..{k}"),
            got: a.to_string(),
        })?;
        counts[a] += 1;
        for (s, &x) in sums[a].iter_mut().zip(row) {
            *s += x as f64;
        }
    }
    if let Some(empty) = counts.iter().position(|&n| n == 0) {
        return Err(Error::invalid("cluster", empty, "a cluster with at least one member (it has none)"));
    }
    Ok(sums.into_iter().zip(counts).map(|(s, n)| s.into_iter().map(|x| x / n as f64).collect()).collect())
}

/// The naming QAP of cluster vectors against class vectors under one kernel (geometry only).
pub fn naming_problem(clusters: &[Vec<f64>], classes: &[Vec<f64>], kernel: NamingKernel) -> NamingProblem {
    NamingProblem { cluster_similarity: kernel_similarity(clusters, kernel), class_similarity: kernel_similarity(classes, kernel), sizes: None }
}

/// Names c clusters (vectors, e.g. member means) with c class vectors: exact up to c = 10,
/// restarted local search above (seeded).
pub fn name_by_geometry(clusters: &[Vec<f64>], classes: &[Vec<f64>], kernel: NamingKernel, seed: u64) -> Result<(NamingProblem, Naming)> {
    if clusters.len() != classes.len() || clusters.len() < 2 {
        return Err(Error::ClassCount {
            what: "clusters to name".into(),
            expected: format!("one per class ({} classes, at least 2)", classes.len()),
            got: clusters.len(),
        });
    }
    let problem = naming_problem(clusters, classes, kernel);
    let naming = solve(&problem, seed);
    Ok((problem, naming))
}

/// Restarts of the local search above c = 10: 50 (`qap::solve`) missed the optimum
/// of an aligned c = 15 copy; a restart costs microseconds.
pub const LOCAL_SEARCH_RESTARTS: usize = 1000;

/// Exact up to c = 10, `LOCAL_SEARCH_RESTARTS` restarts of pairwise-swap search above.
pub fn solve(problem: &NamingProblem, seed: u64) -> Naming {
    if problem.n() <= 10 { qap::solve_exact(problem) } else { qap::solve_local_search(problem, LOCAL_SEARCH_RESTARTS, seed) }
}

/// Class positions 0..c as 1-D vectors, for ordinal tasks: under `Euclidean` they give the
/// ordinal prior's similarity -|i - j|.
pub fn ordinal_class_vectors(c: usize) -> Vec<Vec<f64>> {
    (0..c).map(|i| vec![i as f64]).collect()
}

/// A synthetic data set whose clusters are a noisy, rotated, scaled and shifted copy of the
/// class vectors' geometry: `per_class` points per class around `scale * R class + shift`
/// (R a random rotation of R^dim, dim >= the class vectors' dimension, which are zero-padded),
/// with isotropic Gaussian noise of standard deviation `noise` (relative to the typical distance
/// between two class vectors). Returns (row-major features, dim, labels); the rows are in
/// shuffled order. Used by tests and by the naming study as sets every method must name right.
pub fn aligned_synthetic(classes: &[Vec<f64>], dim: usize, per_class: usize, noise: f64, seed: u64) -> (Vec<f32>, usize, Vec<i64>) {
    let mut rng = crate::rng::Rng::derive(seed, "aligned-synthetic");
    let dim = dim.max(classes.first().map_or(1, Vec::len));
    let rotation = random_rotation(&mut rng, dim);
    let scale = 0.5 + 2.0 * rng.uniform();
    let shift: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
    let padded: Vec<Vec<f64>> = classes.iter().map(|v| v.iter().copied().chain(std::iter::repeat(0.0)).take(dim).collect()).collect();
    let moved = affine(&padded, &rotation, scale, &shift);
    let spread = mean_pairwise_distance(&moved) / (dim as f64).sqrt();
    let mut order: Vec<usize> = (0..classes.len() * per_class).collect();
    rng.shuffle(&mut order);
    let mut features = Vec::with_capacity(order.len() * dim);
    let mut labels = Vec::with_capacity(order.len());
    for index in order {
        let class = index / per_class;
        features.extend(moved[class].iter().map(|m| (m + noise * spread * rng.normal()) as f32));
        labels.push(class as i64);
    }
    (features, dim, labels)
}

fn mean_pairwise_distance(vectors: &[Vec<f64>]) -> f64 {
    let d = negative_distances(vectors);
    let c = vectors.len();
    -d.iter().flatten().sum::<f64>() / (c * c.saturating_sub(1)).max(1) as f64
}

/// A random rotation of R^d: Gram-Schmidt on a Gaussian matrix (rows orthonormal).
pub fn random_rotation(rng: &mut crate::rng::Rng, d: usize) -> Vec<Vec<f64>> {
    let mut q: Vec<Vec<f64>> = Vec::new();
    while q.len() < d {
        let mut v: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        for u in &q {
            let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    q
}

/// x -> scale * R x + shift, row by row.
pub fn affine(vectors: &[Vec<f64>], rotation: &[Vec<f64>], scale: f64, shift: &[f64]) -> Vec<Vec<f64>> {
    vectors.iter().map(|v| rotation.iter().zip(shift).map(|(r, s)| scale * r.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() + s).collect()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::Rng;

    pub(crate) fn identity(d: usize) -> Vec<Vec<f64>> {
        (0..d).map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect()
    }

    pub(crate) fn random_vectors(rng: &mut Rng, c: usize, d: usize) -> Vec<Vec<f64>> {
        (0..c).map(|_| (0..d).map(|_| rng.normal()).collect()).collect()
    }

    fn max_abs_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
        a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn invariant_kernels_ignore_rotation_scale_and_common_shift() {
        let mut rng = Rng::new(5);
        for kernel in NamingKernel::ALL {
            let v = random_vectors(&mut rng, 8, 6);
            let rotation = random_rotation(&mut rng, 6);
            let shift: Vec<f64> = (0..6).map(|_| 3.0 * rng.normal()).collect();
            let moved = affine(&v, &rotation, 2.5, &shift);
            let rotated_only = affine(&v, &rotation, 0.4, &[0.0; 6]);
            let diff = max_abs_diff(&kernel_similarity(&v, kernel), &kernel_similarity(&moved, kernel));
            // Every kernel is invariant to rotation and scale alone.
            assert!(max_abs_diff(&kernel_similarity(&v, kernel), &kernel_similarity(&rotated_only, kernel)) < 1e-9, "{kernel:?}");
            if kernel.is_invariant() {
                assert!(diff < 1e-9, "{kernel:?} changed by {diff}");
            } else {
                assert!(diff > 1e-3, "{kernel:?} claims no shift invariance but did not change");
            }
        }
    }

    #[test]
    fn member_means_move_with_an_affine_map_of_the_features() {
        let mut rng = Rng::new(6);
        let (n, d, k) = (60, 4, 3);
        let rows = random_vectors(&mut rng, n, d);
        let assignments: Vec<i64> = (0..n).map(|i| (i % k) as i64).collect();
        let flat = |rows: &[Vec<f64>]| rows.iter().flatten().map(|&x| x as f32).collect::<Vec<f32>>();
        let rotation = random_rotation(&mut rng, d);
        let shift = vec![1.0, -2.0, 0.5, 3.0];
        let means = member_means(&flat(&rows), d, &assignments, k).unwrap();
        let moved = member_means(&flat(&affine(&rows, &rotation, 3.0, &shift)), d, &assignments, k).unwrap();
        assert!(max_abs_diff(&affine(&means, &rotation, 3.0, &shift), &moved) < 1e-4);
    }

    #[test]
    fn member_means_reject_bad_input() {
        assert!(member_means(&[1.0, 2.0, 3.0], 2, &[0, 1], 2).unwrap_err().to_string().contains("features"));
        assert!(member_means(&[1.0, 2.0], 1, &[0, 0], 2).unwrap_err().to_string().contains("cluster"));
        assert!(member_means(&[1.0, 2.0], 1, &[0, 5], 2).is_err());
    }

    #[test]
    fn naming_is_unchanged_when_features_and_class_vectors_move() {
        // Clusters: a noisy copy of the class vectors, shuffled. Moving the clusters (rotation,
        // scale, offset) or the classes (offset) leaves an invariant kernel's naming as it was.
        let mut rng = Rng::new(9);
        let (c, d) = (10, 12);
        let classes = random_vectors(&mut rng, c, d);
        let mut truth: Vec<usize> = (0..c).collect();
        rng.shuffle(&mut truth);
        let clusters: Vec<Vec<f64>> = truth.iter().map(|&k| classes[k].iter().map(|x| x + 0.6 * rng.normal()).collect()).collect();
        let rotation = random_rotation(&mut rng, d);
        let shift: Vec<f64> = (0..d).map(|_| 5.0 * rng.normal()).collect();
        for kernel in NamingKernel::ALL.into_iter().filter(|k| k.is_invariant()) {
            let base = name_by_geometry(&clusters, &classes, kernel, 0).unwrap().1.class_of;
            let moved_clusters = affine(&clusters, &rotation, 0.01, &shift);
            let shifted_classes = affine(&classes, &identity(d), 1.0, &shift);
            assert_eq!(name_by_geometry(&moved_clusters, &classes, kernel, 0).unwrap().1.class_of, base, "{kernel:?}: clusters moved");
            assert_eq!(name_by_geometry(&clusters, &shifted_classes, kernel, 0).unwrap().1.class_of, base, "{kernel:?}: classes shifted");
        }
    }

    #[test]
    fn ordinal_positions_give_the_ordinal_similarity() {
        let s = kernel_similarity(&ordinal_class_vectors(5), NamingKernel::Euclidean);
        let b: Vec<Vec<f64>> = (0..5).map(|i| (0..5).map(|j| -(i as f64 - j as f64).abs()).collect()).collect();
        assert!(max_abs_diff(&s, &qap::standardize(&b)) < 1e-12);
    }

    #[test]
    fn rejects_mismatched_counts() {
        let Err(err) = name_by_geometry(&[vec![1.0], vec![2.0]], &[vec![1.0], vec![2.0], vec![3.0]], NamingKernel::Cosine, 0) else { panic!("accepted 2 clusters for 3 classes") };
        assert!(err.to_string().contains("clusters to name"), "{err}");
    }
}

#[cfg(test)]
mod aligned_tests {
    use super::tests::random_vectors;
    use super::*;
    use crate::rng::Rng;

    /// Names the true-class member means of an aligned synthetic set; returns the share of
    /// clusters named right.
    fn named_right(classes: &[Vec<f64>], dim: usize, kernel: NamingKernel, seed: u64) -> f64 {
        let c = classes.len();
        let (features, dim, labels) = aligned_synthetic(classes, dim, 40, 0.5, seed);
        // Clusters in a shuffled order: cluster j holds class perm[j].
        let mut perm: Vec<usize> = (0..c).collect();
        Rng::new(seed).shuffle(&mut perm);
        let mut cluster_of_class = vec![0usize; c];
        perm.iter().enumerate().for_each(|(j, &k)| cluster_of_class[k] = j);
        let assignments: Vec<i64> = labels.iter().map(|&l| cluster_of_class[l as usize] as i64).collect();
        let means = member_means(&features, dim, &assignments, c).unwrap();
        let (_, naming) = name_by_geometry(&means, classes, kernel, seed).unwrap();
        (0..c).filter(|&j| naming.class_of[j] == perm[j]).count() as f64 / c as f64
    }

    #[test]
    fn aligned_copies_are_named_right_for_every_seed_and_name_set() {
        let mut rng = Rng::new(13);
        for (c, d) in [(5usize, 8usize), (10, 50), (15, 20), (10, 300)] {
            let classes = random_vectors(&mut rng, c, d);
            for kernel in [NamingKernel::CentredCosine, NamingKernel::CentredRank, NamingKernel::CentredBlindMatch, NamingKernel::Euclidean] {
                // Ranks of 4 neighbours carry too little to pin down 5 names (ties): c >= 10 only.
                if kernel == NamingKernel::CentredRank && c < 10 {
                    continue;
                }
                for seed in 0..10 {
                    let right = named_right(&classes, d + 7, kernel, seed);
                    assert_eq!(right, 1.0, "c {c}, d {d}, {kernel:?}, seed {seed}: {right}");
                }
            }
        }
    }
}
