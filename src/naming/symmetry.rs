//! Symmetries of a similarity matrix: the permutations τ with m[τa][τb] = m[a][b] for all a, b.
//!
//! Under such a τ a naming π and τ∘π score the same under every clustering, so a kernel whose
//! class (or cluster) matrix has one cannot tell those namings apart: its Gibbs posterior splits
//! evenly between them whatever the data. The rank kernel meets this often with few classes
//! (ranks take few values): the centred-rank matrices of 18 of 40 random sets of four classes
//! have a non-trivial symmetry, 2 of 40 at six classes, none at five, seven or eight.

/// Nodes the search may visit per pair of classes before it gives up (and treats the pair as
/// distinguishable: the strict answer).
const SEARCH_LIMIT: usize = 100_000;

/// orbit[a]: the smallest index of the classes that some symmetry of `m` maps `a` to (a's
/// orbit under the symmetry group). Entries equal within a relative tolerance of 1e-9.
pub fn automorphism_orbits(m: &[Vec<f64>]) -> Vec<usize> {
    let c = m.len();
    let scale = m.iter().flatten().fold(0.0f64, |s, x| s.max(x.abs())).max(1e-300);
    let same = |x: f64, y: f64| (x - y).abs() <= 1e-9 * scale;
    // A symmetry maps a row to a row with the same diagonal and the same sorted off-diagonal values.
    let signature = |a: usize| -> Vec<f64> {
        let mut row: Vec<f64> = (0..c).filter(|&b| b != a).map(|b| m[a][b]).collect();
        row.sort_by(f64::total_cmp);
        row.insert(0, m[a][a]);
        row
    };
    let signatures: Vec<Vec<f64>> = (0..c).map(signature).collect();
    let alike = |a: usize, b: usize| signatures[a].iter().zip(&signatures[b]).all(|(x, y)| same(*x, *y));
    let mut orbit: Vec<usize> = (0..c).collect();
    for a in 0..c {
        for b in a + 1..c {
            if find(&orbit, a) == find(&orbit, b) || !alike(a, b) {
                continue;
            }
            if let Some(tau) = symmetry_mapping(m, &alike, a, b, &same) {
                (0..c).for_each(|x| union(&mut orbit, x, tau[x]));
            }
        }
    }
    (0..c).map(|x| find(&orbit, x)).collect()
}

/// group[class]: the classes a kernel cannot tell apart when it judges the names `class_of`
/// (class_of[cluster]), joined from the orbits of its class matrix's symmetries and of its
/// cluster matrix's (clusters alike under a symmetry make their names alike).
pub fn indistinguishable_classes(class_orbits: &[usize], cluster_orbits: &[usize], class_of: &[usize]) -> Vec<usize> {
    let mut group: Vec<usize> = (0..class_orbits.len()).collect();
    class_orbits.iter().enumerate().for_each(|(a, &o)| union(&mut group, a, o));
    for (k, &o) in cluster_orbits.iter().enumerate() {
        union(&mut group, class_of[k], class_of[o]);
    }
    (0..group.len()).map(|x| find(&group, x)).collect()
}

/// A symmetry of `m` with τ(a) = b, by backtracking over rows with equal signatures.
fn symmetry_mapping(m: &[Vec<f64>], alike: &dyn Fn(usize, usize) -> bool, a: usize, b: usize, same: &dyn Fn(f64, f64) -> bool) -> Option<Vec<usize>> {
    let c = m.len();
    let order: Vec<usize> = std::iter::once(a).chain((0..c).filter(|&x| x != a)).collect();
    let mut image = vec![usize::MAX; c];
    let mut used = vec![false; c];
    let mut nodes = 0;
    image[a] = b;
    used[b] = true;
    extend(m, alike, same, &order, 1, &mut image, &mut used, &mut nodes).then_some(image)
}

#[allow(clippy::too_many_arguments)]
fn extend(m: &[Vec<f64>], alike: &dyn Fn(usize, usize) -> bool, same: &dyn Fn(f64, f64) -> bool, order: &[usize], depth: usize, image: &mut [usize], used: &mut [bool], nodes: &mut usize) -> bool {
    if depth == order.len() {
        return true;
    }
    let x = order[depth];
    for y in 0..m.len() {
        *nodes += 1;
        if *nodes > SEARCH_LIMIT {
            return false;
        }
        if used[y] || !alike(x, y) || !order[..depth].iter().all(|&p| same(m[x][p], m[y][image[p]])) {
            continue;
        }
        (image[x], used[y]) = (y, true);
        if extend(m, alike, same, order, depth + 1, image, used, nodes) {
            return true;
        }
        (image[x], used[y]) = (usize::MAX, false);
    }
    false
}

/// The root of x's set in a disjoint-set forest (`parent[root] == root`).
pub(super) fn find(parent: &[usize], mut x: usize) -> usize {
    while parent[x] != x {
        x = parent[x];
    }
    x
}

/// Joins the sets of x and y, keeping the smaller index as the root.
pub(super) fn union(parent: &mut [usize], x: usize, y: usize) {
    let (rx, ry) = (find(parent, x), find(parent, y));
    let (low, high) = (rx.min(ry), rx.max(ry));
    parent[high] = low;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::qap::{cosine_matrix, rank_matrix};
    use crate::rng::Rng;

    #[test]
    fn a_generic_matrix_has_only_the_identity() {
        let mut rng = Rng::new(1);
        let rows: Vec<Vec<f64>> = (0..7).map(|_| (0..12).map(|_| rng.normal()).collect()).collect();
        assert_eq!(automorphism_orbits(&cosine_matrix(&rows)), (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn two_mirrored_pairs_form_one_orbit_and_a_fixed_class_stays_alone() {
        // Classes 0-1 and 2-3 are two close pairs at the same distances; class 4 is apart.
        let m = vec![
            vec![1.0, 0.8, 0.1, 0.2, -0.5],
            vec![0.8, 1.0, 0.2, 0.1, -0.5],
            vec![0.1, 0.2, 1.0, 0.8, -0.5],
            vec![0.2, 0.1, 0.8, 1.0, -0.5],
            vec![-0.5, -0.5, -0.5, -0.5, 1.0],
        ];
        assert_eq!(automorphism_orbits(&m), vec![0, 0, 0, 0, 4]);
        // Equal signatures are not enough: here 0-1 and 2-3 differ in how they connect.
        let mut broken = m.clone();
        (broken[0][2], broken[2][0], broken[0][3], broken[3][0]) = (0.2, 0.2, 0.1, 0.1);
        (broken[1][2], broken[2][1], broken[1][3], broken[3][1]) = (0.1, 0.1, 0.2, 0.2);
        let orbits = automorphism_orbits(&broken);
        assert_eq!(orbits[4], 4);
        for a in 0..4 {
            for b in 0..4 {
                let maps = (0..5).all(|x| (0..5).all(|y| broken[x][y] == broken[if x == a { b } else if x == b { a } else { x }][if y == a { b } else if y == b { a } else { y }]));
                if orbits[a] != orbits[b] && maps {
                    panic!("the transposition ({a} {b}) is a symmetry the orbits missed: {orbits:?}");
                }
            }
        }
    }

    #[test]
    fn equal_similarities_make_every_class_alike() {
        let m: Vec<Vec<f64>> = (0..6).map(|a| (0..6).map(|b| if a == b { 1.0 } else { 0.3 }).collect()).collect();
        assert_eq!(automorphism_orbits(&m), vec![0; 6]);
    }

    /// Orbits from every permutation of c <= 6 classes.
    fn brute_force_orbits(m: &[Vec<f64>]) -> Vec<usize> {
        let c = m.len();
        let mut orbit: Vec<usize> = (0..c).collect();
        let mut perm: Vec<usize> = (0..c).collect();
        loop {
            if (0..c).all(|a| (0..c).all(|b| (m[perm[a]][perm[b]] - m[a][b]).abs() < 1e-12)) {
                (0..c).for_each(|x| union(&mut orbit, x, perm[x]));
            }
            // Next permutation in lexicographic order.
            let Some(i) = (0..c - 1).rev().find(|&i| perm[i] < perm[i + 1]) else { break };
            let j = (i + 1..c).rev().find(|&j| perm[j] > perm[i]).unwrap();
            perm.swap(i, j);
            perm[i + 1..].reverse();
        }
        (0..c).map(|x| find(&orbit, x)).collect()
    }

    #[test]
    fn rank_matrices_of_few_random_classes_match_the_brute_force_orbits() {
        let mut symmetric = 0;
        for c in 4..=6 {
            for draw in 0..40 {
                let mut rng = Rng::new(1000 * c as u64 + draw);
                let rows: Vec<Vec<f64>> = (0..c).map(|_| (0..30).map(|_| rng.normal()).collect()).collect();
                let m = rank_matrix(&cosine_matrix(&rows));
                let orbits = automorphism_orbits(&m);
                assert_eq!(orbits, brute_force_orbits(&m), "c = {c}, draw {draw}");
                symmetric += usize::from(orbits != (0..c).collect::<Vec<_>>());
            }
        }
        assert!(symmetric >= 5, "only {symmetric} of 120 rank matrices have a symmetry: the test checks little");
    }
}
