//! The quadratic assignment problem (QAP) behind naming clusters by geometry: choose the
//! cluster-to-class assignment whose class-name similarities best agree with the centroid
//! similarities:
//!
//!   maximise  sum_{i != j} A[i][j] * B[pi(i)][pi(j)]  -  size_weight * sum_i (s_i - alpha_pi(i))^2
//!
//! with A the (standardised) c x c similarity of the centroids, B that of the class names (or of
//! the class order, for ordinal tasks), s the cluster proportions and alpha the class
//! proportions. Solved exactly by depth-first enumeration with incremental scores for small c,
//! and above by branch and bound with an upper bound (`certified`), started from iterated
//! pairwise-swap local search.
use super::certified;
use serde::{Deserialize, Serialize};

/// Off-diagonal entries shifted and scaled to mean 0 and unit variance (diagonal 0), so that
/// the objective measures agreement of shape, not of scale.
pub fn standardize(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let c = m.len();
    let off: Vec<f64> = (0..c).flat_map(|i| (0..c).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| m[i][j]).collect();
    let mean = off.iter().sum::<f64>() / off.len().max(1) as f64;
    let var = off.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / off.len().max(1) as f64;
    let sd = var.sqrt().max(1e-12);
    (0..c).map(|i| (0..c).map(|j| if i == j { 0.0 } else { (m[i][j] - mean) / sd }).collect()).collect()
}

/// Each row's entries replaced by their rank among the row's off-diagonal entries, mapped to
/// [-1, 1] (most similar 1, least similar -1), then made symmetric: the rank-based similarity
/// of the paper's prior, which keeps only the order of the neighbours, not the distances.
pub fn rank_matrix(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let c = m.len();
    let mut r = vec![vec![0.0; c]; c];
    for i in 0..c {
        let mut others: Vec<usize> = (0..c).filter(|&j| j != i).collect();
        others.sort_by(|&x, &y| m[i][y].total_cmp(&m[i][x]));
        let span = (others.len().max(2) - 1) as f64;
        for (pos, &j) in others.iter().enumerate() {
            r[i][j] = 1.0 - 2.0 * pos as f64 / span;
        }
        r[i][i] = 1.0;
    }
    (0..c).map(|i| (0..c).map(|j| 0.5 * (r[i][j] + r[j][i])).collect()).collect()
}

/// Cosine similarity of the rows of a (c x D) matrix.
pub fn cosine_matrix(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let norms: Vec<f64> = rows.iter().map(|r| r.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12)).collect();
    rows.iter()
        .enumerate()
        .map(|(i, a)| rows.iter().enumerate().map(|(j, b)| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (norms[i] * norms[j])).collect())
        .collect()
}

/// The problem: A (clusters), B (classes), optional size term.
#[derive(Clone, Debug)]
pub struct NamingProblem {
    pub cluster_similarity: Vec<Vec<f64>>,
    pub class_similarity: Vec<Vec<f64>>,
    /// (cluster proportions s, class proportions alpha, weight).
    pub sizes: Option<(Vec<f64>, Vec<f64>, f64)>,
}

impl NamingProblem {
    pub fn n(&self) -> usize {
        self.cluster_similarity.len()
    }

    pub(crate) fn unary(&self, cluster: usize, class: usize) -> f64 {
        match &self.sizes {
            Some((s, alpha, w)) => -w * (s[cluster] - alpha[class]).powi(2),
            None => 0.0,
        }
    }

    /// The same objective as the certified solver's problem (pairs plus the size term as its
    /// unary costs).
    pub fn as_qap(&self) -> crate::error::Result<certified::Qap> {
        let unary = self.sizes.as_ref().map(|_| (0..self.n()).map(|i| (0..self.n()).map(|k| self.unary(i, k)).collect()).collect());
        certified::Qap::new(self.cluster_similarity.clone(), self.class_similarity.clone(), unary)
    }

    /// Change of the objective when clusters `i` and `j` exchange their classes, in O(c)
    /// (only the terms that involve i or j change).
    pub fn swap_delta(&self, class_of: &[usize], i: usize, j: usize) -> f64 {
        certified::pair_swap_delta(&self.cluster_similarity, &self.class_similarity, |i, k| self.unary(i, k), class_of, i, j)
    }

    /// Objective of a full assignment `class_of[cluster]`.
    pub fn score(&self, class_of: &[usize]) -> f64 {
        certified::pair_score(&self.cluster_similarity, &self.class_similarity, |i, k| self.unary(i, k), class_of)
    }
}

/// A solution with the runner-up, for the confidence report.
#[derive(Clone, Debug)]
pub struct Naming {
    /// class_of[cluster].
    pub class_of: Vec<usize>,
    pub score: f64,
    /// Best score among assignments other than `class_of` (exact solver only).
    pub second_score: Option<f64>,
    pub optimality: Optimality,
}

/// What is known of a naming's optimality, for the report: users naming many classes need to
/// know whether the search finished (issue 14).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Optimality {
    /// All c! namings were scored.
    Enumerated,
    /// The branch and bound's upper bound met the naming's score after `seconds`.
    Certified { seconds: f64 },
    /// The branch and bound stopped at its time limit: no naming scores above `upper_bound`
    /// (in the objective's units, like `Naming::score`).
    Bounded { upper_bound: f64, seconds: f64 },
    /// A local search without a bound.
    Unknown,
}

impl Optimality {
    /// One phrase for reports, e.g. "proven optimal (all 10! namings scored)".
    pub fn describe(&self, c: usize, score: f64) -> String {
        match *self {
            Optimality::Enumerated => format!("proven optimal (all {c}! namings scored)"),
            Optimality::Certified { seconds } => format!("proven optimal (branch and bound, certified in {seconds:.1} s)"),
            Optimality::Bounded { upper_bound, seconds } => {
                format!("NOT proven optimal: the search stopped after {seconds:.1} s with an upper bound of {upper_bound:.3} against {score:.3} found (gap {:.1} %)", 100.0 * relative_gap(upper_bound, score))
            }
            Optimality::Unknown => "not proven optimal (local search, no bound)".into(),
        }
    }
}

/// (upper bound - score) / |score|, the share by which a better naming could still score higher.
pub fn relative_gap(upper_bound: f64, score: f64) -> f64 {
    (upper_bound - score).max(0.0) / score.abs().max(1e-12)
}

/// Exact maximisation over all c! assignments, depth first, adding each cluster's score
/// against the clusters placed before it. Clusters are placed in order of decreasing total
/// |similarity| (the most constrained first), and a branch is cut when even the optimistic
/// bound on its unplaced pairs (sum of |A| over them times max |B|) cannot beat the runner-up.
pub fn solve_exact(p: &NamingProblem) -> Naming {
    let c = p.n();
    // Reorder clusters: order[d] is the cluster placed at depth d.
    let mut order: Vec<usize> = (0..c).collect();
    let weight = |i: usize| -> f64 { (0..c).map(|j| p.cluster_similarity[i][j].abs() + p.cluster_similarity[j][i].abs()).sum() };
    order.sort_by(|&x, &y| weight(y).total_cmp(&weight(x)));
    let a: Vec<Vec<f64>> = order.iter().map(|&i| order.iter().map(|&j| p.cluster_similarity[i][j]).collect()).collect();
    let b = &p.class_similarity;
    let max_b = b.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    // rest[d]: sum of |A| over the ordered pairs that involve a cluster at depth >= d.
    let mut rest = vec![0.0; c + 1];
    for d in (0..c).rev() {
        let new_pairs: f64 = (0..c).filter(|&e| e != d && e <= d).map(|e| a[d][e].abs() + a[e][d].abs()).sum::<f64>() - 0.0;
        rest[d] = rest[d + 1] + new_pairs;
    }
    let unary: Vec<Vec<f64>> = order.iter().map(|&i| (0..c).map(|k| p.unary(i, k)).collect()).collect();
    let mut max_unary_rest = vec![0.0; c + 1];
    for d in (0..c).rev() {
        max_unary_rest[d] = max_unary_rest[d + 1] + unary[d].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    let ctx = Context { a: &a, b, unary: &unary, bound: (0..=c).map(|d| max_b * rest[d] + max_unary_rest[d]).collect() };
    let mut state = Search { best: (f64::NEG_INFINITY, vec![]), second: f64::NEG_INFINITY };
    let mut class_at = vec![0usize; c];
    let mut used = vec![false; c];
    dfs(0, 0.0, &mut class_at, &mut used, &ctx, &mut state);
    // Back to the caller's cluster order.
    let mut class_of = vec![0usize; c];
    for (d, &cluster) in order.iter().enumerate() {
        class_of[cluster] = state.best.1[d];
    }
    Naming { class_of, score: state.best.0, second_score: Some(state.second).filter(|s| s.is_finite()), optimality: Optimality::Enumerated }
}

/// Every other naming whose objective equals that of `class_of` within `tolerance`: namings
/// the problem cannot tell from it. Exhaustive (c <= 10 is practical), with branches cut where
/// even their optimistic bound falls short of the objective.
pub fn ties_of(p: &NamingProblem, class_of: &[usize], tolerance: f64) -> Vec<Vec<usize>> {
    let c = p.n();
    let target = p.score(class_of);
    let (unary, bound) = depth_bounds(p);
    let mut walk = TieWalk { p, unary: &unary, bound, low: target - tolerance, high: target + tolerance, class_at: vec![0; c], used: vec![false; c], ties: vec![] };
    walk.visit(0, 0.0);
    walk.ties.retain(|t| t.as_slice() != class_of);
    walk.ties
}

/// For a depth-first enumeration that places cluster d at depth d: unary[cluster][class] (the
/// size term), and bound[d], the most that the terms involving a cluster at depth >= d can
/// still add (|A| of their pairs times max |B|, plus their largest unary terms).
pub(crate) fn depth_bounds(p: &NamingProblem) -> (Vec<Vec<f64>>, Vec<f64>) {
    let c = p.n();
    let a = &p.cluster_similarity;
    let max_b = p.class_similarity.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let unary: Vec<Vec<f64>> = (0..c).map(|i| (0..c).map(|k| p.unary(i, k)).collect()).collect();
    let mut bound = vec![0.0; c + 1];
    for d in (0..c).rev() {
        let pairs: f64 = (0..d).map(|e| a[d][e].abs() + a[e][d].abs()).sum();
        bound[d] = bound[d + 1] + max_b * pairs + unary[d].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    (unary, bound)
}

struct TieWalk<'a> {
    p: &'a NamingProblem,
    unary: &'a [Vec<f64>],
    bound: Vec<f64>,
    low: f64,
    high: f64,
    class_at: Vec<usize>,
    used: Vec<bool>,
    ties: Vec<Vec<usize>>,
}

impl TieWalk<'_> {
    fn visit(&mut self, d: usize, partial: f64) {
        let c = self.class_at.len();
        if d == c {
            if partial >= self.low && partial <= self.high {
                self.ties.push(self.class_at.clone());
            }
            return;
        }
        if partial + self.bound[d] < self.low {
            return;
        }
        let (a, b) = (&self.p.cluster_similarity, &self.p.class_similarity);
        for k in 0..c {
            if self.used[k] {
                continue;
            }
            let gain = self.unary[d][k] + (0..d).map(|e| a[d][e] * b[k][self.class_at[e]] + a[e][d] * b[self.class_at[e]][k]).sum::<f64>();
            (self.class_at[d], self.used[k]) = (k, true);
            self.visit(d + 1, partial + gain);
            self.used[k] = false;
        }
    }
}

struct Context<'a> {
    a: &'a [Vec<f64>],
    b: &'a [Vec<f64>],
    unary: &'a [Vec<f64>],
    /// bound[d]: the most the pairs and unary terms of depths >= d can still add.
    bound: Vec<f64>,
}

fn dfs(d: usize, partial: f64, class_at: &mut Vec<usize>, used: &mut Vec<bool>, ctx: &Context, state: &mut Search) {
    let c = class_at.len();
    if d == c {
        if partial > state.best.0 {
            state.second = state.best.0;
            state.best = (partial, class_at.clone());
        } else if partial > state.second {
            state.second = partial;
        }
        return;
    }
    if partial + ctx.bound[d] <= state.second {
        return;
    }
    let (a_row, a_col): (&[f64], Vec<f64>) = (&ctx.a[d], (0..d).map(|e| ctx.a[e][d]).collect());
    for k in 0..c {
        if used[k] {
            continue;
        }
        let b_row = &ctx.b[k];
        let mut gain = ctx.unary[d][k];
        for e in 0..d {
            let ke = class_at[e];
            gain += a_row[e] * b_row[ke] + a_col[e] * ctx.b[ke][k];
        }
        used[k] = true;
        class_at[d] = k;
        dfs(d + 1, partial + gain, class_at, used, ctx, state);
        used[k] = false;
    }
}

struct Search {
    best: (f64, Vec<usize>),
    second: f64,
}

/// The best of `restarts` pairwise-swap local searches from random assignments, then as many
/// rounds of iterated local search from the best (`certified::local_search`); no bound.
pub fn solve_local_search(p: &NamingProblem, restarts: usize, seed: u64) -> Naming {
    solve_local_search_from(p, None, restarts, seed)
}

/// `solve_local_search` that also climbs from `start` (`certified::local_search_from`).
pub fn solve_local_search_from(p: &NamingProblem, start: Option<&[usize]>, restarts: usize, seed: u64) -> Naming {
    // A malformed problem (non-square matrices) cannot come from the kernels; it keeps the
    // identity rather than panicking.
    let class_of = p.as_qap().map_or_else(|_| (0..p.n()).collect(), |q| certified::local_search_from(&q, start, restarts, seed).0);
    // Recomputed in this problem's own arithmetic.
    let score = p.score(&class_of);
    Naming { class_of, score, second_score: None, optimality: Optimality::Unknown }
}

/// Exact up to `exact_limit` classes (enumeration with its runner-up); above, branch and bound
/// with an upper bound (Gilmore-Lawler or dual ascent, `certified`), whose answer is exact when
/// the bound meets it within `time_limit`.
pub fn solve(p: &NamingProblem, exact_limit: usize, time_limit: std::time::Duration, seed: u64) -> Naming {
    if p.n() <= exact_limit {
        return solve_exact(p);
    }
    match p.as_qap() {
        Ok(q) => {
            let settings = certified::QapSettings { seed, time_limit, ..certified::QapSettings::for_size(p.n()) };
            let s = certified::solve(&q, &settings);
            let seconds = s.elapsed.as_secs_f64();
            let score = p.score(&s.permutation);
            let optimality = match s.certified_optimal {
                true => Optimality::Certified { seconds },
                // The bound in this problem's units: the solver's own gap above the score.
                false => Optimality::Bounded { upper_bound: score + s.gap(), seconds },
            };
            Naming { score, class_of: s.permutation, second_score: None, optimality }
        }
        Err(_) => solve_local_search(p, 50, seed),
    }
}

/// Pairs of classes whose swap in the solution costs less than `threshold` of the score range:
/// the names the geometry cannot tell apart. Returns (class a, class b, score loss).
pub fn interchangeable(p: &NamingProblem, solution: &Naming, max_loss: f64) -> Vec<(usize, usize, f64)> {
    let c = p.n();
    let mut out = vec![];
    for i in 0..c {
        for j in i + 1..c {
            let mut swapped = solution.class_of.clone();
            swapped.swap(i, j);
            let loss = solution.score - p.score(&swapped);
            if loss <= max_loss {
                let (x, y) = (solution.class_of[i].min(solution.class_of[j]), solution.class_of[i].max(solution.class_of[j]));
                out.push((x, y, loss));
            }
        }
    }
    out.sort_by(|a, b| a.2.total_cmp(&b.2));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn swap_delta_equals_the_change_of_the_full_score() {
        let mut rng = Rng::derive(7, "swap-delta");
        for c in [2usize, 3, 6, 11] {
            let m = |rng: &mut Rng| -> Vec<Vec<f64>> { (0..c).map(|_| (0..c).map(|_| rng.uniform() * 2.0 - 1.0).collect()).collect() };
            let sizes = (0..c).map(|_| rng.uniform()).collect::<Vec<_>>();
            let alpha = (0..c).map(|_| rng.uniform()).collect::<Vec<_>>();
            let p = NamingProblem { cluster_similarity: m(&mut rng), class_similarity: m(&mut rng), sizes: Some((sizes, alpha, 0.7)) };
            let mut class_of: Vec<usize> = (0..c).collect();
            rng.shuffle(&mut class_of);
            for i in 0..c {
                for j in i + 1..c {
                    let mut swapped = class_of.clone();
                    swapped.swap(i, j);
                    let expected = p.score(&swapped) - p.score(&class_of);
                    assert!((p.swap_delta(&class_of, i, j) - expected).abs() < 1e-9, "c {c}, swap {i} {j}");
                }
            }
        }
    }

    fn random_problem(rng: &mut Rng, c: usize, sizes: bool) -> NamingProblem {
        let sym = |rng: &mut Rng| {
            let mut m = vec![vec![0.0; c]; c];
            for i in 0..c {
                for j in i + 1..c {
                    let v = rng.normal();
                    m[i][j] = v;
                    m[j][i] = v;
                }
            }
            m
        };
        let (a, b) = (sym(rng), sym(rng));
        let sizes = sizes.then(|| ((0..c).map(|_| rng.uniform()).collect(), (0..c).map(|_| rng.uniform()).collect(), 2.0));
        NamingProblem { cluster_similarity: a, class_similarity: b, sizes }
    }

    #[test]
    fn every_answer_says_how_its_optimality_is_known() {
        let mut rng = Rng::new(21);
        let small = random_problem(&mut rng, 6, true);
        let enumerated = solve(&small, 10, std::time::Duration::from_secs(10), 0);
        assert_eq!(enumerated.optimality, Optimality::Enumerated);
        // Above the exact limit, an easy size is certified, and its answer is the optimum.
        let medium = random_problem(&mut rng, 8, false);
        let certified = solve(&medium, 5, std::time::Duration::from_secs(60), 0);
        assert!(matches!(certified.optimality, Optimality::Certified { .. }), "{:?}", certified.optimality);
        assert!((certified.score - brute_force(&medium).0).abs() < 1e-9);
        // A dense random c = 30 problem cannot be certified in a millisecond: the answer keeps
        // the bound it stopped with, never below the naming found.
        let large = random_problem(&mut rng, 30, false);
        let bounded = solve(&large, 10, std::time::Duration::from_millis(1), 0);
        let Optimality::Bounded { upper_bound, .. } = bounded.optimality else { panic!("expected a bound, got {:?}", bounded.optimality) };
        assert!(upper_bound > bounded.score);
        assert!(bounded.optimality.describe(30, bounded.score).contains("NOT proven optimal"));
        assert_eq!(bounded.class_of.iter().collect::<std::collections::BTreeSet<_>>().len(), 30);
    }

    fn brute_force(p: &NamingProblem) -> (f64, f64) {
        fn perms(c: usize) -> Vec<Vec<usize>> {
            if c == 0 {
                return vec![vec![]];
            }
            perms(c - 1).into_iter().flat_map(|q| (0..c).map(move |k| { let mut r = q.clone(); r.insert(k, c - 1); r })).collect()
        }
        let mut scores: Vec<f64> = perms(p.n()).iter().map(|q| p.score(q)).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        (scores[0], scores[1])
    }

    #[test]
    fn exact_solver_matches_brute_force() {
        let mut rng = Rng::new(8);
        for trial in 0..60 {
            let c = 2 + trial % 6; // 2..7
            let p = random_problem(&mut rng, c, trial % 2 == 0);
            let (best, second) = brute_force(&p);
            let s = solve_exact(&p);
            assert!((s.score - best).abs() < 1e-9, "trial {trial}: {} vs {best}", s.score);
            assert!((p.score(&s.class_of) - s.score).abs() < 1e-9);
            assert!((s.second_score.unwrap() - second).abs() < 1e-9, "trial {trial}: runner-up");
        }
    }

    #[test]
    fn ties_are_the_other_namings_of_equal_objective() {
        // Two mirrored pairs (0-1, 2-3) and a fifth class apart: swapping within both pairs, or
        // the pairs themselves, leaves the class similarities unchanged.
        let b = vec![
            vec![0.0, 0.8, 0.1, 0.2, -0.5],
            vec![0.8, 0.0, 0.2, 0.1, -0.5],
            vec![0.1, 0.2, 0.0, 0.8, -0.5],
            vec![0.2, 0.1, 0.8, 0.0, -0.5],
            vec![-0.5, -0.5, -0.5, -0.5, 0.0],
        ];
        let p = NamingProblem { cluster_similarity: b.clone(), class_similarity: b, sizes: None };
        let mut ties = ties_of(&p, &[0, 1, 2, 3, 4], 1e-12);
        ties.sort();
        assert_eq!(ties, vec![vec![1, 0, 3, 2, 4], vec![2, 3, 0, 1, 4], vec![3, 2, 1, 0, 4]]);
        // Every enumerated naming of a generic problem has its own objective.
        let mut rng = crate::rng::Rng::new(4);
        let rows: Vec<Vec<f64>> = (0..6).map(|_| (0..8).map(|_| rng.normal()).collect()).collect();
        let generic = NamingProblem { cluster_similarity: cosine_matrix(&rows), class_similarity: cosine_matrix(&rows), sizes: None };
        assert!(ties_of(&generic, &[0, 1, 2, 3, 4, 5], 1e-9).is_empty());
        assert!(ties_of(&generic, &[1, 0, 2, 3, 4, 5], 1e-9).is_empty());
    }

    #[test]
    fn rotated_geometry_is_named_correctly() {
        // Class embeddings, and centroids that are a rotation of them with the clusters shuffled.
        let mut rng = Rng::new(3);
        let c = 10;
        let names: Vec<Vec<f64>> = (0..c).map(|_| (0..6).map(|_| rng.normal()).collect()).collect();
        let truth: Vec<usize> = { let mut t: Vec<usize> = (0..c).collect(); rng.shuffle(&mut t); t };
        // A rotation in the (0, 1) and (2, 3) planes.
        let rotate = |v: &[f64]| {
            let (c1, s1, c2, s2) = (0.6f64, 0.8f64, 0.28f64, 0.96f64);
            vec![c1 * v[0] - s1 * v[1], s1 * v[0] + c1 * v[1], c2 * v[2] - s2 * v[3], s2 * v[2] + c2 * v[3], v[4], v[5]]
        };
        let centroids: Vec<Vec<f64>> = (0..c).map(|i| rotate(&names[truth[i]])).collect();
        let p = NamingProblem {
            cluster_similarity: standardize(&cosine_matrix(&centroids)),
            class_similarity: standardize(&cosine_matrix(&names)),
            sizes: None,
        };
        let t = std::time::Instant::now();
        let s = solve_exact(&p);
        assert!(t.elapsed().as_secs_f64() < 1.0, "exact solver took {:?} for c = 10", t.elapsed());
        assert_eq!(s.class_of, truth);
        assert!(s.score > s.second_score.unwrap());
        assert_eq!(solve_local_search(&p, 30, 1).class_of, truth);
        // The rank-based similarity names the same rotation correctly too.
        let ranked = NamingProblem {
            cluster_similarity: standardize(&rank_matrix(&cosine_matrix(&centroids))),
            class_similarity: standardize(&rank_matrix(&cosine_matrix(&names))),
            sizes: None,
        };
        assert_eq!(solve_exact(&ranked).class_of, truth);
    }

    #[test]
    fn rank_matrix_keeps_only_the_order() {
        let m = vec![vec![1.0, 0.9, 0.1], vec![0.9, 1.0, 0.5], vec![0.1, 0.5, 1.0]];
        let squashed: Vec<Vec<f64>> = m.iter().map(|r| r.iter().map(|v: &f64| v.powi(3)).collect()).collect();
        assert_eq!(rank_matrix(&m), rank_matrix(&squashed));
        let r = rank_matrix(&m);
        assert_eq!(r[0][1], 1.0); // 0's and 1's nearest neighbour is each other
        assert_eq!(r[0][2], -1.0); // 0 and 2 are each other's farthest
    }

    #[test]
    fn ordinal_layout_is_named_in_order() {
        // Clusters on a line in shuffled order; classes ordered 0..5 (similarity -|i - j|).
        let c = 6;
        let positions = [3.0, 0.0, 5.0, 1.0, 4.0, 2.0];
        let a: Vec<Vec<f64>> = (0..c).map(|i| (0..c).map(|j| -((positions[i] - positions[j]) as f64).abs()).collect()).collect();
        let b: Vec<Vec<f64>> = (0..c).map(|i| (0..c).map(|j| -(i as f64 - j as f64).abs()).collect()).collect();
        // A line is symmetric under reversal; sizes (decreasing with the grade) break the tie.
        let alpha: Vec<f64> = (0..c).map(|k| (c - k) as f64 / 21.0).collect();
        let sizes: Vec<f64> = (0..c).map(|i| alpha[positions[i] as usize]).collect();
        let p = NamingProblem { cluster_similarity: standardize(&a), class_similarity: standardize(&b), sizes: Some((sizes, alpha, 10.0)) };
        let s = solve_exact(&p);
        assert_eq!(s.class_of, positions.iter().map(|&x| x as usize).collect::<Vec<_>>());
    }

    #[test]
    fn local_search_finds_the_optimum_on_most_c8_instances() {
        let mut rng = Rng::new(21);
        let trials = 30;
        let hits = (0..trials)
            .filter(|_| {
                let p = random_problem(&mut rng, 8, false);
                (solve_local_search(&p, 20, 4).score - solve_exact(&p).score).abs() < 1e-9
            })
            .count();
        println!("local search found the exact optimum on {hits}/{trials} random c = 8 instances");
        assert!(hits * 10 >= trials * 8, "{hits}/{trials}");
    }
}

