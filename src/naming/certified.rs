//! A quadratic assignment solver whose answer comes with a certificate: branch and bound with
//! the Gilmore-Lawler bound, for naming c > 10 clusters by geometry.
//!
//!   maximise  f(p) = sum_{i != j} A[i][j] * B[p(i)][p(j)]  +  sum_i U[i][p(i)]   over permutations p
//!
//! Why a bound: local optima of this problem can be close to random (the blind-matching work
//! found so), so a local search alone cannot say whether a naming is the best the geometry
//! allows. The solver returns the best permutation found, its score, and an upper bound on the
//! optimum; when the two agree (to 1e-9) the permutation is certified optimal, otherwise the
//! gap says how much better a naming could at most be.
//!
//! The bound of a partial assignment (clusters S placed, R free, classes C free) is
//!   fixed(S) + max over bijections R -> C of  sum_i L[i][p(i)],
//!   L[i][k] = U[i][k] + (pairs of i with S, exact) + max_sigma sum_{j in R\i} A[i][j] B[k][sigma(j)],
//! where the last term - each ordered pair of free clusters counted once, by its first index - is
//! solved by sorting both rows (rearrangement inequality). Neither A nor B needs to be symmetric.
//! The linear assignment's dual variables then bound every child (i -> k) by bound - reduced
//! cost without computing it, and choose the cluster to branch on (the one whose row prunes most).
//! A dual-ascent bound (level-1 RLT, Hahn-Grant style) is the alternative: tighter per node,
//! far costlier (m^2 linear assignments of size m - 1 a step).
//!
//! Measured (examples/bench_qap.rs, one thread, 15 s, standardised dense instances): the
//! Gilmore-Lawler search certifies c = 10 in at most 0.02 s and c = 15 in 1-6 s; at c = 20 and
//! 25 its root bound is about 1.7x the optimum (e.g. 361 against 210) and it stops uncertified.
//! Dual ascent with 100 steps at the root and up to 10 at every other node, stopping a node's
//! ascent as soon as its bound prunes it, and with the block assignments started from their
//! reductions (a nearly solved block needs few augmenting paths): on real naming instances
//! (k-means centroids against class-name embeddings) it certifies most c = 20 instances within
//! 15 s; on random and planted c = 20 instances, whose optimum is far below any of these bounds,
//! nothing certifies in 15 s. `QapSettings::for_size`; numbers in docs/benchmarks.md.
use crate::assignment::AssignmentSolver;
use crate::error::{Error, Result};
use crate::rng::Rng;
use std::time::{Duration, Instant};

/// Prune a subtree when its bound exceeds the incumbent by at most this; so a finished search
/// proves a gap of at most this much.
const PRUNE_TOLERANCE: f64 = 1e-10;
/// The certificate's tolerance: certified when upper bound - score <= this.
pub const CERTIFY_TOLERANCE: f64 = 1e-9;

/// A problem: A (c x c, clusters), B (c x c, classes), optional unary U[cluster][class].
#[derive(Clone, Debug)]
pub struct Qap {
    a: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    u: Vec<Vec<f64>>,
}

/// The largest c given the dual-ascent bound by `QapSettings::for_size` (its node holds c^4 costs:
/// 6.5 MB at c = 30).
pub const DUAL_ASCENT_MAX_CLASSES: usize = 30;

/// How long to search and how hard to look for a first solution.
#[derive(Clone, Debug)]
pub struct QapSettings {
    /// Branch and bound stops here and reports the gap instead of a certificate.
    pub time_limit: Duration,
    /// Random starts of the pairwise-swap local search that gives the first incumbent.
    pub restarts: usize,
    pub seed: u64,
    pub bound: BoundKind,
}

impl Default for QapSettings {
    fn default() -> Self {
        QapSettings { time_limit: Duration::from_secs(15), restarts: 100, seed: 0, bound: BoundKind::GilmoreLawler }
    }
}

impl QapSettings {
    /// The measured better bound for c classes (examples/bench_qap.rs): Gilmore-Lawler up to
    /// c = 15, where its cheap nodes certify as fast; dual ascent (100 steps at the root, up to
    /// 10 a node) from 16 to `DUAL_ASCENT_MAX_CLASSES`, where it certifies real c = 20 namings
    /// within 15 s that Gilmore-Lawler cannot; Gilmore-Lawler again above, where dual ascent's
    /// c^4 costs (0.8 GB and minutes of root steps at c = 100, before the time limit is ever
    /// checked) would only buy a bound too loose to certify anything.
    pub fn for_size(c: usize) -> Self {
        let bound = match c {
            16..=DUAL_ASCENT_MAX_CLASSES => BoundKind::DualAscent { root_iterations: 100, node_iterations: 10 },
            _ => BoundKind::GilmoreLawler,
        };
        QapSettings { bound, ..QapSettings::default() }
    }
}

/// Which bound the branch and bound uses at each node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundKind {
    /// Gilmore-Lawler: cheap (O(m^3) a node), weak on dense instances.
    GilmoreLawler,
    /// Hahn-Grant style dual ascent on the level-1 RLT dual: tighter, O(m^5) a step.
    DualAscent { root_iterations: usize, node_iterations: usize },
}

/// The answer with its certificate.
#[derive(Clone, Debug)]
pub struct QapSolution {
    /// class of each cluster.
    pub permutation: Vec<usize>,
    pub score: f64,
    /// No permutation scores above this.
    pub upper_bound: f64,
    /// upper_bound - score <= CERTIFY_TOLERANCE.
    pub certified_optimal: bool,
    /// The Gilmore-Lawler bound of the empty assignment, before any branching.
    pub root_bound: f64,
    /// Score of the best local-search start (before branch and bound improved on it).
    pub local_search_score: f64,
    pub nodes: u64,
    pub elapsed: Duration,
}

impl QapSolution {
    pub fn gap(&self) -> f64 {
        (self.upper_bound - self.score).max(0.0)
    }
}

/// f(p) = sum_{i != j} A[i][j] * B[p(i)][p(j)] + sum_i unary(i, p(i)): the one objective that
/// `Qap` and `qap::NamingProblem` (whose unary term is the size term) both score.
pub(crate) fn pair_score(a: &[Vec<f64>], b: &[Vec<f64>], unary: impl Fn(usize, usize) -> f64, p: &[usize]) -> f64 {
    let mut total = 0.0;
    for (i, &pi) in p.iter().enumerate() {
        total += unary(i, pi);
        for (j, &pj) in p.iter().enumerate() {
            if i != j {
                total += a[i][j] * b[pi][pj];
            }
        }
    }
    total
}

/// f(p with p(i), p(j) exchanged) - f(p), in O(c): only the terms that involve i or j change.
pub(crate) fn pair_swap_delta(a: &[Vec<f64>], b: &[Vec<f64>], unary: impl Fn(usize, usize) -> f64, p: &[usize], i: usize, j: usize) -> f64 {
    let (pi, pj) = (p[i], p[j]);
    let mut delta = unary(i, pj) + unary(j, pi) - unary(i, pi) - unary(j, pj);
    for (k, &pk) in p.iter().enumerate() {
        if k == i || k == j {
            continue;
        }
        delta += a[i][k] * (b[pj][pk] - b[pi][pk]) + a[k][i] * (b[pk][pj] - b[pk][pi]);
        delta += a[j][k] * (b[pi][pk] - b[pj][pk]) + a[k][j] * (b[pk][pi] - b[pk][pj]);
    }
    delta + a[i][j] * (b[pj][pi] - b[pi][pj]) + a[j][i] * (b[pi][pj] - b[pj][pi])
}

fn check_square(what: &str, m: &[Vec<f64>], n: usize) -> Result<()> {
    if m.len() != n || m.iter().any(|r| r.len() != n) {
        let got = format!("{} rows of lengths {:?}", m.len(), m.iter().map(Vec::len).collect::<Vec<_>>());
        return Err(Error::Shape { what: what.into(), expected: format!("{n} x {n}"), got });
    }
    for (row, r) in m.iter().enumerate() {
        if let Some(col) = r.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { what: what.into(), row, col });
        }
    }
    Ok(())
}

impl Qap {
    /// Checks that A, B (and U) are c x c with finite entries.
    pub fn new(a: Vec<Vec<f64>>, b: Vec<Vec<f64>>, u: Option<Vec<Vec<f64>>>) -> Result<Self> {
        let n = a.len();
        check_square("QAP matrix A (clusters)", &a, n)?;
        check_square("QAP matrix B (classes)", &b, n)?;
        let u = u.unwrap_or_else(|| vec![vec![0.0; n]; n]);
        check_square("QAP unary term U", &u, n)?;
        Ok(Qap { a, b, u })
    }

    pub fn n(&self) -> usize {
        self.a.len()
    }

    pub fn score(&self, p: &[usize]) -> f64 {
        pair_score(&self.a, &self.b, |i, k| self.u[i][k], p)
    }

    /// Change of the score when clusters i and j exchange their classes, in O(c).
    fn swap_delta(&self, p: &[usize], i: usize, j: usize) -> f64 {
        pair_swap_delta(&self.a, &self.b, |i, k| self.u[i][k], p, i, j)
    }

    /// Pairwise-swap hill climbing from `p` (first improvement) until no swap improves.
    fn climb(&self, p: &mut [usize]) {
        let n = p.len();
        loop {
            let mut improved = false;
            for i in 0..n {
                for j in i + 1..n {
                    if self.swap_delta(p, i, j) > 1e-12 {
                        p.swap(i, j);
                        improved = true;
                    }
                }
            }
            if !improved {
                return;
            }
        }
    }
}

/// Best of `restarts` pairwise-swap local searches from random permutations, then as many
/// rounds of iterated local search from the best (a few random swaps, climb again, keep it if
/// better): at c = 20-25 random restarts alone stop several per cent below the optimum, and the
/// branch and bound prunes only against the incumbent it is given.
pub fn local_search(q: &Qap, restarts: usize, seed: u64) -> (Vec<usize>, f64) {
    local_search_from(q, None, restarts, seed)
}

/// `local_search` with a known good permutation `start` climbed first and kept unless a
/// restart beats it (a naming to be judged under another kernel: where its landscape agrees,
/// the random restarts of a large problem may all stop in worse local optima).
pub fn local_search_from(q: &Qap, start: Option<&[usize]>, restarts: usize, seed: u64) -> (Vec<usize>, f64) {
    let n = q.n();
    let mut rng = Rng::derive(seed, "qap-local-search");
    let mut best = ((0..n).collect::<Vec<_>>(), f64::NEG_INFINITY);
    let keep_if_better = |p: Vec<usize>, best: &mut (Vec<usize>, f64)| {
        let s = q.score(&p);
        if s > best.1 {
            *best = (p, s);
        }
    };
    if let Some(start) = start.filter(|s| is_permutation(s, n)) {
        let mut p = start.to_vec();
        q.climb(&mut p);
        keep_if_better(p, &mut best);
    }
    for _ in 0..restarts.max(1) {
        let mut p: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut p);
        q.climb(&mut p);
        keep_if_better(p, &mut best);
    }
    let (kicks, rounds) = ((n / 5).max(2), if n < 2 { 0 } else { restarts });
    for _ in 0..rounds {
        let mut p = best.0.clone();
        for _ in 0..kicks {
            let (i, j) = (rng.below(n), rng.below(n));
            p.swap(i, j);
        }
        q.climb(&mut p);
        keep_if_better(p, &mut best);
    }
    best
}

/// Whether `p` holds each of 0..n exactly once.
fn is_permutation(p: &[usize], n: usize) -> bool {
    let mut seen = vec![false; n];
    p.len() == n && p.iter().all(|&k| k < n && !std::mem::replace(&mut seen[k], true))
}

/// Solves `q`: local search for a first incumbent, then branch and bound until the bound
/// meets the incumbent or the time limit passes.
pub fn solve(q: &Qap, settings: &QapSettings) -> QapSolution {
    let started = Instant::now();
    let (permutation, local_score) = local_search(q, settings.restarts, settings.seed);
    let mut search = Search { q, best: (permutation, local_score), nodes: 0, deadline: started + settings.time_limit, timed_out: false };
    let (root_bound, upper) = match settings.bound {
        BoundKind::GilmoreLawler => search.run(GlNode::root(q)),
        BoundKind::DualAscent { root_iterations, node_iterations } => search.run(DaNode::root(q, root_iterations, node_iterations)),
    };
    let (permutation, score) = search.best;
    let upper_bound = upper.max(score);
    QapSolution {
        certified_optimal: upper_bound - score <= CERTIFY_TOLERANCE,
        permutation,
        score,
        upper_bound,
        root_bound,
        local_search_score: local_score,
        nodes: search.nodes,
        elapsed: started.elapsed(),
    }
}

/// What a node's bound tells the search.
struct Evaluation {
    /// No completion of the node scores above this.
    value: f64,
    free_clusters: Vec<usize>,
    free_classes: Vec<usize>,
    /// reduced[r][s] >= 0: placing free_clusters[r] at free_classes[s] lowers the bound by at least this.
    reduced: Vec<Vec<f64>>,
    /// The bound's linear assignment, free_clusters[r] -> free_classes[lap[r]]: a completion to try.
    lap: Vec<usize>,
    /// class_of of the placed clusters.
    placed: Vec<Option<usize>>,
}

/// A partial assignment with a way to bound it.
trait BoundedNode: Sized {
    /// `prune_at`: the node will be pruned once its bound is at most this, so a bound that
    /// costs several steps may stop there.
    fn evaluate(&mut self, q: &Qap, prune_at: f64) -> Evaluation;
    /// The node with free_clusters[r] placed at free_classes[s] (indices of `e`).
    fn child(&self, q: &Qap, e: &Evaluation, r: usize, s: usize) -> Self;
}

/// Gilmore-Lawler node.
#[derive(Clone)]
struct GlNode {
    /// class_of[i] for placed clusters.
    class_of: Vec<Option<usize>>,
    class_used: Vec<bool>,
    /// Score of the pairs and unary terms among placed clusters.
    fixed: f64,
    /// linear[i][k]: U[i][k] plus the exact pairs of free cluster i (as class k) with the placed ones.
    linear: Vec<Vec<f64>>,
}

impl GlNode {
    fn root(q: &Qap) -> Self {
        let n = q.n();
        GlNode { class_of: vec![None; n], class_used: vec![false; n], fixed: 0.0, linear: q.u.clone() }
    }
}

impl BoundedNode for GlNode {
    /// The Gilmore-Lawler bound (module docs).
    fn evaluate(&mut self, q: &Qap, _prune_at: f64) -> Evaluation {
        let free_clusters: Vec<usize> = (0..q.n()).filter(|&i| self.class_of[i].is_none()).collect();
        let free_classes: Vec<usize> = (0..q.n()).filter(|&k| !self.class_used[k]).collect();
        let sorted_rows = |m: &[Vec<f64>], set: &[usize]| -> Vec<Vec<f64>> {
            set.iter()
                .map(|&x| {
                    let mut row: Vec<f64> = set.iter().filter(|&&y| y != x).map(|&y| m[x][y]).collect();
                    row.sort_by(f64::total_cmp);
                    row
                })
                .collect()
        };
        let a_rows = sorted_rows(&q.a, &free_clusters);
        let b_rows = sorted_rows(&q.b, &free_classes);
        let cost: Vec<Vec<f64>> = free_clusters
            .iter()
            .zip(&a_rows)
            .map(|(&i, ar)| {
                free_classes
                    .iter()
                    .zip(&b_rows)
                    .map(|(&k, br)| -(self.linear[i][k] + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f64>()))
                    .collect()
            })
            .collect();
        let lap = min_cost_assignment_with_duals(&cost);
        Evaluation { value: self.fixed - lap.cost, free_clusters, free_classes, reduced: lap.reduced, lap: lap.col_of_row, placed: self.class_of.clone() }
    }

    fn child(&self, q: &Qap, e: &Evaluation, r: usize, s: usize) -> Self {
        let (i, k) = (e.free_clusters[r], e.free_classes[s]);
        let mut c = self.clone();
        c.fixed += self.linear[i][k];
        c.class_of[i] = Some(k);
        c.class_used[k] = true;
        for &i2 in &e.free_clusters {
            if i2 == i {
                continue;
            }
            for &k2 in &e.free_classes {
                if k2 != k {
                    c.linear[i2][k2] += q.a[i2][i] * q.b[k2][k] + q.a[i][i2] * q.b[k][k2];
                }
            }
        }
        c
    }
}

/// Dual-ascent node (the level-1 RLT dual of Hahn and Grant, in the minimisation form of
/// -f): the problem is kept as lower + sum lin[r][p(r)] + sum cost[r,p(r),r2,p(r2)] over the
/// free clusters, with lin and cost non-negative after each ascent, so `lower` bounds the
/// minimum. Each ascent step moves cost between the two copies of a pair (x_rs x_r2s2 =
/// x_r2s2 x_rs), collects each (r, s) block's linear-assignment value into lin, and lin's
/// assignment value into `lower`; then spreads lin back over the blocks for the next step.
/// Children inherit the transformed costs, so a few steps per node suffice.
#[derive(Clone)]
struct DaNode {
    free_clusters: Vec<usize>,
    free_classes: Vec<usize>,
    placed: Vec<Option<usize>>,
    lower: f64,
    /// m x m.
    lin: Vec<f64>,
    /// m^4: cost[((r * m + s) * m + r2) * m + s2].
    cost: Vec<f64>,
    iterations: usize,
    child_iterations: usize,
}

impl DaNode {
    fn root(q: &Qap, iterations: usize, child_iterations: usize) -> Self {
        let m = q.n();
        let mut cost = vec![0.0; m * m * m * m];
        for r in 0..m {
            for s in 0..m {
                for r2 in (0..m).filter(|&r2| r2 != r) {
                    for s2 in (0..m).filter(|&s2| s2 != s) {
                        cost[((r * m + s) * m + r2) * m + s2] = -q.a[r][r2] * q.b[s][s2];
                    }
                }
            }
        }
        let lin = (0..m * m).map(|x| -q.u[x / m][x % m]).collect();
        DaNode {
            free_clusters: (0..m).collect(),
            free_classes: (0..m).collect(),
            placed: vec![None; m],
            lower: 0.0,
            lin,
            cost,
            iterations: iterations.max(1),
            child_iterations: child_iterations.max(1),
        }
    }

    fn m(&self) -> usize {
        self.free_clusters.len()
    }

    /// One ascent step; its linear assignment (over lin, before `spread_linear_costs`).
    fn ascend(&mut self, solver: &mut AssignmentSolver, block: &mut Vec<f64>) -> LinearAssignment {
        let m = self.m();
        let slab = m * m;
        self.balance_complementary_pairs();
        let k = m - 1;
        block.clear();
        block.resize(k * k, 0.0);
        for r in 0..m {
            for s in 0..m {
                // The block of x_rs: rows r2 != r, columns s2 != s of its slab.
                let costs = &mut self.cost[(r * m + s) * slab..(r * m + s + 1) * slab];
                let rows = (0..m).filter(|&r2| r2 != r);
                for (to, r2) in block.chunks_exact_mut(k).zip(rows.clone()) {
                    let from = &costs[r2 * m..(r2 + 1) * m];
                    to[..s].copy_from_slice(&from[..s]);
                    to[s..].copy_from_slice(&from[s + 1..]);
                }
                self.lin[r * m + s] += solver.solve(block, k, k);
                // reduced_cost, with the row's dual hoisted out of this hot loop.
                for ((a, block_row), r2) in block.chunks_exact(k).enumerate().zip(rows) {
                    let to = &mut costs[r2 * m..(r2 + 1) * m];
                    let ua = solver.row_dual[a];
                    for ((&c, &vb), s2) in block_row.iter().zip(&solver.col_dual).zip((0..m).filter(|&s2| s2 != s)) {
                        to[s2] = (c - ua - vb).max(0.0);
                    }
                }
            }
        }
        let lap = linear_assignment(solver, &self.lin, m);
        self.lower += lap.cost;
        for r in 0..m {
            self.lin[r * m..(r + 1) * m].copy_from_slice(&lap.reduced[r]);
        }
        lap
    }

    /// x_rs x_r2s2 and x_r2s2 x_rs are the same product: give both copies their mean.
    fn balance_complementary_pairs(&mut self) {
        let m = self.m();
        let slab = m * m;
        for r in 0..m {
            for s in 0..m {
                for r2 in r + 1..m {
                    for s2 in (0..m).filter(|&s2| s2 != s) {
                        let (x, y) = ((r * m + s) * slab + r2 * m + s2, (r2 * m + s2) * slab + r * m + s);
                        let mean = 0.5 * (self.cost[x] + self.cost[y]);
                        self.cost[x] = mean;
                        self.cost[y] = mean;
                    }
                }
            }
        }
    }

    /// Moves each linear cost back into its block, shared equally over the block's m - 1 rows
    /// (any completion uses exactly m - 1 of its cells), for the next step to collect again.
    fn spread_linear_costs(&mut self) {
        let m = self.m();
        let slab = m * m;
        for r in 0..m {
            for s in 0..m {
                let share = self.lin[r * m + s] / (m - 1) as f64;
                self.lin[r * m + s] = 0.0;
                let costs = &mut self.cost[(r * m + s) * slab..(r * m + s + 1) * slab];
                for r2 in (0..m).filter(|&r2| r2 != r) {
                    for s2 in (0..m).filter(|&s2| s2 != s) {
                        costs[r2 * m + s2] += share;
                    }
                }
            }
        }
    }
}

impl BoundedNode for DaNode {
    /// Up to `iterations` ascent steps, fewer once the bound reaches `prune_at`.
    fn evaluate(&mut self, _q: &Qap, prune_at: f64) -> Evaluation {
        let m = self.m();
        let lap = if m <= 1 {
            let lap = linear_assignment(&mut AssignmentSolver::default(), &self.lin, m);
            self.lower += lap.cost;
            lap
        } else {
            let (mut solver, mut block) = (AssignmentSolver::default(), Vec::new());
            let mut step = 1;
            loop {
                let lap = self.ascend(&mut solver, &mut block);
                if step == self.iterations || -self.lower <= prune_at {
                    break lap;
                }
                self.spread_linear_costs();
                step += 1;
            }
        };
        Evaluation {
            value: -self.lower,
            free_clusters: self.free_clusters.clone(),
            free_classes: self.free_classes.clone(),
            reduced: lap.reduced,
            lap: lap.col_of_row,
            placed: self.placed.clone(),
        }
    }

    fn child(&self, _q: &Qap, _e: &Evaluation, r: usize, s: usize) -> Self {
        let m = self.m();
        let slab = m * m;
        let rows: Vec<usize> = (0..m).filter(|&x| x != r).collect();
        let cols: Vec<usize> = (0..m).filter(|&x| x != s).collect();
        let m2 = m - 1;
        let mut lin = Vec::with_capacity(m2 * m2);
        let mut cost = Vec::with_capacity(m2 * m2 * m2 * m2);
        for &ra in &rows {
            for &sb in &cols {
                let parent = &self.cost[(ra * m + sb) * slab..(ra * m + sb + 1) * slab];
                lin.push(self.lin[ra * m + sb] + self.cost[(r * m + s) * slab + ra * m + sb] + parent[r * m + s]);
                for &rc in &rows {
                    cost.extend(cols.iter().map(|&sd| parent[rc * m + sd]));
                }
            }
        }
        let mut placed = self.placed.clone();
        placed[self.free_clusters[r]] = Some(self.free_classes[s]);
        DaNode {
            free_clusters: rows.iter().map(|&x| self.free_clusters[x]).collect(),
            free_classes: cols.iter().map(|&x| self.free_classes[x]).collect(),
            placed,
            lower: self.lower + self.lin[r * m + s],
            lin,
            cost,
            iterations: self.child_iterations,
            child_iterations: self.child_iterations,
        }
    }
}

struct Search<'a> {
    q: &'a Qap,
    best: (Vec<usize>, f64),
    nodes: u64,
    deadline: Instant,
    timed_out: bool,
}

impl Search<'_> {
    fn offer(&mut self, p: Vec<usize>) {
        let s = self.q.score(&p);
        if s > self.best.1 {
            self.best = (p, s);
        }
    }

    /// (root bound, proven upper bound).
    fn run<N: BoundedNode>(&mut self, mut root: N) -> (f64, f64) {
        if self.q.n() == 0 {
            self.best = (vec![], 0.0);
            return (0.0, 0.0);
        }
        self.nodes += 1;
        let e = root.evaluate(self.q, f64::NEG_INFINITY);
        let root_bound = e.value;
        (root_bound, self.expand(&root, e, f64::INFINITY))
    }

    /// Bounds and expands `node`, known to score at most `ceiling`; returns an upper bound on
    /// its subtree: exact where the search finished, the bound where it was pruned or stopped.
    fn explore<N: BoundedNode>(&mut self, mut node: N, ceiling: f64) -> f64 {
        if self.timed_out || Instant::now() >= self.deadline {
            self.timed_out = true;
            return ceiling;
        }
        self.nodes += 1;
        let e = node.evaluate(self.q, self.best.1 + PRUNE_TOLERANCE);
        self.expand(&node, e, ceiling)
    }

    fn expand<N: BoundedNode>(&mut self, node: &N, e: Evaluation, ceiling: f64) -> f64 {
        // The bound's linear assignment completes the node to a permutation: a free incumbent.
        let mut p: Vec<usize> = e.placed.iter().map(|c| c.unwrap_or(0)).collect();
        for (r, &i) in e.free_clusters.iter().enumerate() {
            p[i] = e.free_classes[e.lap[r]];
        }
        self.offer(p);
        if e.free_clusters.len() <= 1 {
            // One free cluster: the only completion was just offered, so it scores at most the incumbent.
            return self.best.1;
        }
        let value = e.value.min(ceiling);
        if value <= self.best.1 + PRUNE_TOLERANCE {
            return value;
        }
        let r = self.branching_row(&e, value);
        let mut children: Vec<usize> = (0..e.free_classes.len()).collect();
        children.sort_by(|&x, &y| e.reduced[r][x].total_cmp(&e.reduced[r][y]));
        let mut upper = f64::NEG_INFINITY;
        for s in children {
            let child_ceiling = value - e.reduced[r][s];
            if child_ceiling <= self.best.1 + PRUNE_TOLERANCE {
                upper = upper.max(child_ceiling);
                continue;
            }
            let child = node.child(self.q, &e, r, s);
            upper = upper.max(self.explore(child, child_ceiling));
        }
        upper.min(value)
    }

    /// The free cluster whose children the reduced costs prune most (ties: largest total
    /// reduced cost), so that the tree stays narrow near the root.
    fn branching_row(&self, e: &Evaluation, value: f64) -> usize {
        let threshold = value - (self.best.1 + PRUNE_TOLERANCE);
        let key = |row: &Vec<f64>| (row.iter().filter(|&&rc| rc >= threshold).count(), row.iter().sum::<f64>());
        (0..e.reduced.len())
            .max_by(|&x, &y| {
                let (kx, ky) = (key(&e.reduced[x]), key(&e.reduced[y]));
                kx.0.cmp(&ky.0).then(kx.1.total_cmp(&ky.1))
            })
            .unwrap_or(0)
    }
}

/// A square linear assignment solved with its dual: the cost, the assignment, and the reduced
/// costs cost[i][j] - u[i] - v[j] >= 0 (0 on the chosen pairs).
struct LinearAssignment {
    cost: f64,
    col_of_row: Vec<usize>,
    reduced: Vec<Vec<f64>>,
}

/// The Hungarian algorithm of `crate::assignment` with its dual potentials, so that every
/// forced pair's cost increase is known for free.
fn min_cost_assignment_with_duals(cost: &[Vec<f64>]) -> LinearAssignment {
    let flat: Vec<f64> = cost.iter().flatten().copied().collect();
    linear_assignment(&mut AssignmentSolver::default(), &flat, cost.len())
}

/// `min_cost_assignment_with_duals` of a flat n x n matrix on a reused solver.
fn linear_assignment(solver: &mut AssignmentSolver, cost: &[f64], n: usize) -> LinearAssignment {
    let total = solver.solve(cost, n, n);
    let reduced = cost.chunks_exact(n.max(1)).enumerate().map(|(i, row)| row.iter().enumerate().map(|(j, &c)| reduced_cost(solver, c, i, j)).collect()).collect();
    LinearAssignment { cost: total, col_of_row: solver.col_of_row.clone(), reduced }
}

/// cost - u[i] - v[j] of a solved assignment, clamped at 0 against rounding (it is >= 0 in
/// exact arithmetic): what remains of a cost once the assignment's value is moved out.
fn reduced_cost(solver: &AssignmentSolver, cost: f64, i: usize, j: usize) -> f64 {
    (cost - solver.row_dual[i] - solver.col_dual[j]).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_matrix(rng: &mut Rng, n: usize, symmetric: bool) -> Vec<Vec<f64>> {
        let mut m = vec![vec![0.0; n]; n];
        for i in 0..n {
            for j in 0..n {
                if i != j && (!symmetric || j > i) {
                    m[i][j] = rng.normal();
                    if symmetric {
                        m[j][i] = m[i][j];
                    }
                }
            }
        }
        m
    }

    fn random_qap(rng: &mut Rng, n: usize, symmetric: bool, unary: bool) -> Qap {
        let (a, b) = (random_matrix(rng, n, symmetric), random_matrix(rng, n, symmetric));
        let u = unary.then(|| (0..n).map(|_| (0..n).map(|_| 3.0 * rng.normal()).collect()).collect());
        Qap::new(a, b, u).unwrap()
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        permutations(n - 1)
            .into_iter()
            .flat_map(|q| (0..n).map(move |k| { let mut r = q.clone(); r.insert(k, n - 1); r }))
            .collect()
    }

    fn brute_force(q: &Qap) -> f64 {
        permutations(q.n()).iter().map(|p| q.score(p)).fold(f64::NEG_INFINITY, f64::max)
    }

    fn settings(bound: BoundKind, seconds: u64) -> QapSettings {
        QapSettings { time_limit: Duration::from_secs(seconds), restarts: 2, seed: 1, bound }
    }

    const BOUNDS: [BoundKind; 2] = [BoundKind::GilmoreLawler, BoundKind::DualAscent { root_iterations: 4, node_iterations: 2 }];

    #[test]
    fn dual_ascent_only_where_its_c_to_the_fourth_costs_fit() {
        assert_eq!(QapSettings::for_size(10).bound, BoundKind::GilmoreLawler);
        assert!(matches!(QapSettings::for_size(20).bound, BoundKind::DualAscent { .. }));
        assert!(matches!(QapSettings::for_size(DUAL_ASCENT_MAX_CLASSES).bound, BoundKind::DualAscent { .. }));
        assert_eq!(QapSettings::for_size(DUAL_ASCENT_MAX_CLASSES + 1).bound, BoundKind::GilmoreLawler);
        assert_eq!(QapSettings::for_size(100).bound, BoundKind::GilmoreLawler);
        // A 100-class problem is solved (uncertified) rather than building 10^8 dual-ascent costs.
        let q = random_qap(&mut Rng::new(16), 100, true, false);
        let s = solve(&q, &QapSettings { time_limit: Duration::from_millis(200), restarts: 1, ..QapSettings::for_size(100) });
        let mut sorted = s.permutation.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert!(s.upper_bound >= s.score);
    }

    /// A heuristic, so not every optimum: at least 18 of 20 small instances.
    #[test]
    fn local_search_returns_a_permutation_with_its_score_and_finds_small_optima() {
        let mut rng = Rng::new(41);
        let mut optimal = 0;
        for trial in 0..20 {
            let q = random_qap(&mut rng, 7, trial % 2 == 0, trial % 3 == 0);
            let (p, score) = local_search(&q, 10, trial as u64);
            let mut seen = p.clone();
            seen.sort();
            assert_eq!(seen, (0..7).collect::<Vec<_>>(), "trial {trial}: not a permutation");
            assert!((score - q.score(&p)).abs() < 1e-12, "trial {trial}: score is not the permutation's");
            let best = brute_force(&q);
            assert!(score <= best + 1e-9, "trial {trial}: {score} above the optimum {best}");
            optimal += usize::from(score >= best - 1e-9);
        }
        assert!(optimal >= 18, "the optimum on only {optimal} of 20 instances");
    }

    #[test]
    fn certified_optimum_equals_brute_force() {
        let mut rng = Rng::new(14);
        for trial in 0..60 {
            let n = 1 + trial % 8; // 1..=8
            let q = random_qap(&mut rng, n, trial % 3 != 0, trial % 2 == 0);
            let best = brute_force(&q);
            for bound in BOUNDS {
                let s = solve(&q, &settings(bound, 60));
                assert!(s.certified_optimal, "trial {trial} {bound:?}: not certified, gap {}", s.gap());
                assert!((s.score - best).abs() < 1e-9, "trial {trial} (n {n}) {bound:?}: {} vs brute force {best}", s.score);
                assert!((q.score(&s.permutation) - s.score).abs() < 1e-9);
                assert!(s.upper_bound >= best - 1e-9 && s.root_bound >= best - 1e-9, "trial {trial} {bound:?}: bound below the optimum");
            }
        }
    }

    #[test]
    fn bounds_never_fall_below_the_optimum_even_when_stopped_early() {
        let mut rng = Rng::new(15);
        for trial in 0..20 {
            let q = random_qap(&mut rng, 7, trial % 2 == 0, trial % 3 == 0);
            let best = brute_force(&q);
            for bound in BOUNDS {
                // No time at all: the answer is the local search's or the root's, the bound the root's children's.
                let s = solve(&q, &QapSettings { time_limit: Duration::ZERO, restarts: 1, seed: trial as u64, bound });
                assert!(s.upper_bound >= best - 1e-9, "trial {trial} {bound:?}: {} < {best}", s.upper_bound);
                assert!(s.root_bound >= best - 1e-9);
                assert!(s.upper_bound <= s.root_bound + 1e-9);
                assert_eq!(s.certified_optimal, s.upper_bound - s.score <= CERTIFY_TOLERANCE, "trial {trial}");
                if s.certified_optimal {
                    assert!((s.score - best).abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn every_child_bound_covers_its_best_completion() {
        // The bound after placing the first free cluster at each class covers the best
        // completion of that placement, and so does the parent's reduced-cost bound.
        let mut rng = Rng::new(16);
        for trial in 0..12 {
            let q = random_qap(&mut rng, 6, trial % 2 == 0, true);
            let check = |mut root: Box<dyn FnMut() -> (Evaluation, Vec<f64>)>| {
                let (e, child_values) = root();
                for s in 0..6 {
                    let k = e.free_classes[s];
                    let i = e.free_clusters[0];
                    let best = permutations(6).into_iter().filter(|p| p[i] == k).map(|p| q.score(&p)).fold(f64::NEG_INFINITY, f64::max);
                    assert!(child_values[s] >= best - 1e-9, "trial {trial}, class {k}: child bound {} < {best}", child_values[s]);
                    assert!(e.value - e.reduced[0][s] >= best - 1e-9, "reduced-cost bound, trial {trial}, class {k}");
                }
            };
            check(Box::new(|| {
                let mut root = GlNode::root(&q);
                let e = root.evaluate(&q, f64::NEG_INFINITY);
                let values = (0..6).map(|s| root.child(&q, &e, 0, s).evaluate(&q, f64::NEG_INFINITY).value).collect();
                (e, values)
            }));
            check(Box::new(|| {
                let mut root = DaNode::root(&q, 3, 2);
                let e = root.evaluate(&q, f64::NEG_INFINITY);
                let values = (0..6).map(|s| root.child(&q, &e, 0, s).evaluate(&q, f64::NEG_INFINITY).value).collect();
                (e, values)
            }));
        }
    }

    #[test]
    fn dual_ascent_is_at_least_as_tight_as_gilmore_lawler_here() {
        let mut rng = Rng::new(19);
        for trial in 0..10 {
            let q = random_qap(&mut rng, 8, true, false);
            let gl = GlNode::root(&q).evaluate(&q, f64::NEG_INFINITY).value;
            let da = DaNode::root(&q, 6, 1).evaluate(&q, f64::NEG_INFINITY).value;
            assert!(da <= gl + 1e-9, "trial {trial}: dual ascent {da} above Gilmore-Lawler {gl}");
        }
    }

    #[test]
    fn linear_assignment_duals_are_feasible_and_tight() {
        let mut rng = Rng::new(17);
        for n in 1..9 {
            let cost: Vec<Vec<f64>> = (0..n).map(|_| (0..n).map(|_| rng.normal()).collect()).collect();
            let lap = min_cost_assignment_with_duals(&cost);
            let (_, expected) = crate::assignment::min_cost_assignment(&cost);
            assert!((lap.cost - expected).abs() < 1e-9);
            for (i, &j) in lap.col_of_row.iter().enumerate() {
                assert!(lap.reduced[i][j] < 1e-9, "chosen pair has reduced cost {}", lap.reduced[i][j]);
            }
        }
    }

    #[test]
    fn bad_shapes_are_named() {
        let err = Qap::new(vec![vec![0.0; 2]; 2], vec![vec![0.0; 3]; 3], None).unwrap_err().to_string();
        assert!(err.contains("QAP matrix B") && err.contains("2 x 2"), "{err}");
        let err = Qap::new(vec![vec![0.0, f64::NAN], vec![0.0, 0.0]], vec![vec![0.0; 2]; 2], None).unwrap_err().to_string();
        assert!(err.contains("QAP matrix A") && err.contains("row 0, column 1"), "{err}");
    }
}
