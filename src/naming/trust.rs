//! How far a naming can be trusted, without labels (issue 13, item 2).
//!
//! A naming is the argmax of the QAP objective f(pi) over the c! cluster-to-class assignments.
//! One argmax hides how much better it is than the alternatives, so this module reports:
//! - the z-score of f(argmax) against f of uniformly random permutations (seeded draws),
//! - the gap to the runner-up, in the same units (std of f over random permutations),
//! - a Gibbs posterior p(pi) ∝ exp(f(pi) / T) (T from [`Temperature`]): per cluster the
//!   marginal probability of each name (exact enumeration up to c = 10, Metropolis with swap moves
//!   above), the probability of the chosen name per cluster, and
//! - the groups of classes whose marginals are split (near-ties the geometry cannot tell apart).
//!
//! The verdict compares the mean posterior probability of the chosen names (the naming's expected
//! share of right names under the posterior) with a threshold chosen from measurements
//! (examples/naming_study.rs; the values are in `TrustParams::default`). `AlignmentScore` judges
//! by one kernel's posterior; the geometry naming asks every invariant kernel and trusts its
//! names only when the most sceptical one supports them (`geometry::NameTrust::support`): one
//! kernel alone was confidently wrong on real clusters (k-means on Fashion-MNIST, 8 of 10 seeds).
use crate::naming::qap::{Naming, NamingProblem};
use crate::rng::Rng;
use serde::Serialize;

/// Mean and standard deviation of the objective over uniformly random permutations.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PermutationNull {
    pub mean: f64,
    pub std: f64,
    pub draws: usize,
}

/// f over `draws` uniformly random permutations (Fisher-Yates, seeded).
pub fn permutation_null(problem: &NamingProblem, draws: usize, seed: u64) -> PermutationNull {
    let mut rng = Rng::derive(seed, "naming-null");
    let mut perm: Vec<usize> = (0..problem.n()).collect();
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for _ in 0..draws {
        rng.shuffle(&mut perm);
        let f = problem.score(&perm);
        sum += f;
        sum_sq += f * f;
    }
    let n = draws.max(1) as f64;
    let mean = sum / n;
    let var = (sum_sq / n - mean * mean).max(0.0) * n / (n - 1.0).max(1.0);
    PermutationNull { mean, std: var.sqrt(), draws }
}

/// A distribution over namings: marginals[cluster][class] = p(cluster is named class).
#[derive(Clone, Debug, Serialize)]
pub struct GibbsPosterior {
    /// T in units of f (not of the null std).
    pub temperature: f64,
    pub marginals: Vec<Vec<f64>>,
    /// Posterior probability of the single best permutation.
    pub map_probability: f64,
    /// Exact enumeration (true) or Metropolis samples (false).
    pub exact: bool,
}

/// Exact Gibbs posteriors at several temperatures in one depth-first enumeration of all c!
/// permutations (c <= 11 is practical: c = 10 is 3.6M leaves). `best` is the maximum of f (from
/// `naming::solve_exact`), used to keep the weights exp((f - best) / T) in range; branches whose
/// optimistic bound lies more than 40 T_max below `best` (weight < e^-40) are cut.
pub fn gibbs_exact(problem: &NamingProblem, best: f64, temperatures: &[f64]) -> Vec<GibbsPosterior> {
    let c = problem.n();
    let a = &problem.cluster_similarity;
    let b = &problem.class_similarity;
    let (unary, bound) = crate::naming::qap::depth_bounds(problem);
    let t_max = temperatures.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    let inv_t: Vec<f64> = temperatures.iter().map(|t| 1.0 / t.max(1e-300)).collect();
    let nt = temperatures.len();
    let mut walk = Enumeration {
        a,
        b,
        unary: &unary,
        bound,
        floor: best - 40.0 * t_max,
        best,
        inv_t: &inv_t,
        sums: vec![0.0; (c + 1) * nt],
        marginals: vec![0.0; nt * c * c],
        class_at: vec![0; c],
        used: vec![false; c],
    };
    walk.visit(0, 0.0);
    temperatures
        .iter()
        .enumerate()
        .map(|(t, &temperature)| {
            let z = walk.sums[t].max(1e-300);
            let marginals = (0..c).map(|i| (0..c).map(|k| walk.marginals[(t * c + i) * c + k] / z).collect()).collect();
            GibbsPosterior { temperature, marginals, map_probability: 1.0 / z, exact: true }
        })
        .collect()
}

struct Enumeration<'a> {
    a: &'a [Vec<f64>],
    b: &'a [Vec<f64>],
    unary: &'a [Vec<f64>],
    bound: Vec<f64>,
    floor: f64,
    best: f64,
    inv_t: &'a [f64],
    /// sums[d * nt + t]: the weight of the subtree last visited at depth d, per temperature.
    sums: Vec<f64>,
    /// marginals[(t * c + cluster) * c + class], unnormalised.
    marginals: Vec<f64>,
    class_at: Vec<usize>,
    used: Vec<bool>,
}

impl Enumeration<'_> {
    /// Leaves `sums[d]` = the sum of exp((f - best) / T) over the leaves below this node, per
    /// temperature, and adds each child's sum to the marginal of (cluster d, its class). Flat
    /// buffers, no allocation: c = 10 visits about 10M nodes.
    fn visit(&mut self, d: usize, partial: f64) {
        let c = self.class_at.len();
        let nt = self.inv_t.len();
        if d == c {
            for t in 0..nt {
                self.sums[d * nt + t] = ((partial - self.best) * self.inv_t[t]).exp();
            }
            return;
        }
        self.sums[d * nt..(d + 1) * nt].iter_mut().for_each(|s| *s = 0.0);
        if partial + self.bound[d] < self.floor {
            return;
        }
        for k in 0..c {
            if self.used[k] {
                continue;
            }
            let mut gain = self.unary[d][k];
            for e in 0..d {
                let ke = self.class_at[e];
                gain += self.a[d][e] * self.b[k][ke] + self.a[e][d] * self.b[ke][k];
            }
            self.used[k] = true;
            self.class_at[d] = k;
            self.visit(d + 1, partial + gain);
            self.used[k] = false;
            for t in 0..nt {
                let w = self.sums[(d + 1) * nt + t];
                self.marginals[(t * c + d) * c + k] += w;
                self.sums[d * nt + t] += w;
            }
        }
    }
}

/// Metropolis sampling of the Gibbs posterior with random swap moves, started at `start`
/// (the naming): `sweeps` * c(c-1)/2 proposals after as many for burn-in. The MAP probability
/// is the share of samples equal to `start`.
pub fn gibbs_mcmc(problem: &NamingProblem, start: &[usize], temperature: f64, sweeps: usize, seed: u64) -> GibbsPosterior {
    let c = problem.n();
    let mut rng = Rng::derive(seed, "naming-gibbs");
    let mut chain = SwapChain::new(problem, start);
    let mut counts = vec![vec![0usize; c]; c];
    let mut at_start = 0usize;
    let per_sweep = (c * (c - 1) / 2).max(1);
    let (burn_in, total) = (sweeps * per_sweep, 2 * sweeps * per_sweep);
    // Each cluster's class is counted once per kept step, in bulk when it changes: since[k] is
    // the first kept step of its current class. `differing` counts the clusters off `start`.
    let mut since = vec![burn_in; c];
    let mut differing = 0usize;
    for step in 0..total {
        if c >= 2 {
            let i = rng.below(c);
            let j = (i + 1 + rng.below(c - 1)) % c;
            let delta = chain.swap_delta(i, j);
            if delta >= 0.0 || rng.uniform() < (delta / temperature.max(1e-300)).exp() {
                for k in [i, j] {
                    if step >= burn_in {
                        counts[k][chain.state[k]] += step - since[k];
                        since[k] = step;
                    }
                    differing -= usize::from(chain.state[k] != start[k]);
                }
                chain.swap(i, j);
                differing += usize::from(chain.state[i] != start[i]) + usize::from(chain.state[j] != start[j]);
            }
        }
        at_start += usize::from(step >= burn_in && differing == 0);
    }
    chain.state.iter().enumerate().for_each(|(k, &class)| counts[k][class] += total - since[k]);
    let n = (total - burn_in).max(1) as f64;
    GibbsPosterior {
        temperature,
        marginals: counts.iter().map(|row| row.iter().map(|&k| k as f64 / n).collect()).collect(),
        map_probability: at_start as f64 / n,
        exact: false,
    }
}

/// A naming under swap moves, with the class similarities kept in the clusters' order
/// (`permuted[k][l]` = B[class of k][class of l], and its transpose), so that a swap's change
/// of the objective reads four contiguous rows of A and of the permuted B: the Metropolis chain
/// spends nearly all its time there (`certified::pair_swap_delta` gathers B through the naming).
struct SwapChain {
    c: usize,
    state: Vec<usize>,
    /// A and its transpose, row-major.
    a: Vec<f64>,
    a_t: Vec<f64>,
    permuted: Vec<f64>,
    permuted_t: Vec<f64>,
    /// unary[cluster * c + class]: the size term, if any.
    unary: Option<Vec<f64>>,
}

impl SwapChain {
    fn new(problem: &NamingProblem, start: &[usize]) -> SwapChain {
        let c = problem.n();
        let flat = |f: &dyn Fn(usize, usize) -> f64| -> Vec<f64> { (0..c * c).map(|x| f(x / c, x % c)).collect() };
        let (a, b) = (&problem.cluster_similarity, &problem.class_similarity);
        SwapChain {
            c,
            state: start.to_vec(),
            a: flat(&|i, j| a[i][j]),
            a_t: flat(&|i, j| a[j][i]),
            permuted: flat(&|k, l| b[start[k]][start[l]]),
            permuted_t: flat(&|k, l| b[start[l]][start[k]]),
            unary: problem.sizes.as_ref().map(|_| flat(&|i, k| problem.unary(i, k))),
        }
    }

    /// The same value as `NamingProblem::swap_delta(state, i, j)` (to rounding), in O(c).
    fn swap_delta(&self, i: usize, j: usize) -> f64 {
        let c = self.c;
        let (ci, cj) = (self.state[i], self.state[j]);
        let row = |r: usize| r * c..(r + 1) * c;
        let (ai, aj) = (&self.a[row(i)], &self.a[row(j)]);
        let (ati, atj) = (&self.a_t[row(i)], &self.a_t[row(j)]);
        let (pi, pj) = (&self.permuted[row(i)], &self.permuted[row(j)]);
        let (pti, ptj) = (&self.permuted_t[row(i)], &self.permuted_t[row(j)]);
        let term = |k: usize| (ai[k] - aj[k]) * (pj[k] - pi[k]) + (ati[k] - atj[k]) * (ptj[k] - pti[k]);
        let all: f64 = (0..c).map(term).sum();
        // k = i and k = j are not pairs with a third cluster; the pair (i, j) itself changes so:
        let pair = ai[j] * (pj[i] - pi[j]) + aj[i] * (pi[j] - pj[i]);
        let unary = self.unary.as_ref().map_or(0.0, |u| u[i * c + cj] + u[j * c + ci] - u[i * c + ci] - u[j * c + cj]);
        all - term(i) - term(j) + pair + unary
    }

    fn swap(&mut self, i: usize, j: usize) {
        let c = self.c;
        self.state.swap(i, j);
        for m in [&mut self.permuted, &mut self.permuted_t] {
            for k in 0..c {
                m.swap(i * c + k, j * c + k);
            }
            for k in 0..c {
                m.swap(k * c + i, k * c + j);
            }
        }
    }
}

/// Groups of classes the posterior cannot tell apart: classes k and l are joined when some
/// cluster named k gives l at least `min_share` of its probability. Singletons are left out;
/// each group is sorted, groups by their first class.
pub fn near_tie_groups(marginals: &[Vec<f64>], class_of: &[usize], min_share: f64) -> Vec<Vec<usize>> {
    use super::symmetry::{find, union};
    let c = class_of.len();
    let mut parent: Vec<usize> = (0..c).collect();
    for (cluster, row) in marginals.iter().enumerate() {
        for (class, &p) in row.iter().enumerate() {
            if class != class_of[cluster] && p >= min_share {
                union(&mut parent, class, class_of[cluster]);
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = vec![vec![]; c];
    for k in 0..c {
        groups[find(&parent, k)].push(k);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_iter().filter(|g| g.len() > 1).collect();
    groups.sort();
    groups
}

/// The assignment that maximises the summed marginals (the posterior's most probable names,
/// made a permutation by Hungarian assignment): a naming that pools the whole posterior.
pub fn marginal_naming(marginals: &[Vec<f64>]) -> Vec<usize> {
    crate::assignment::max_weight_assignment(marginals).0
}

/// How the Gibbs temperature T is set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Temperature {
    /// T = factor * the standard deviation of f over random permutations.
    NullStd(f64),
    /// T = factor * v, v = 2 (1 - rho) the mean squared residual between the two standardised
    /// matrices at the optimum (rho = f(best) / (c (c - 1)), their correlation there). Under the
    /// model A = B_pi + Gaussian noise of variance v per entry, log p(pi | A) = f(pi) / (2 v)
    /// + const over the c(c-1)/2 distinct pairs: factor 2 is that model's posterior. The better
    /// the geometries agree, the colder the posterior, so a perfect copy is named with certainty.
    Residual(f64),
}

impl Temperature {
    /// T in units of f. `best` = f at the optimum; assumes standardised matrices (`standardize`).
    pub fn value(self, problem: &NamingProblem, best: f64, null: &PermutationNull) -> f64 {
        match self {
            Temperature::NullStd(factor) => factor * null.std.max(1e-12),
            Temperature::Residual(factor) => {
                let c = problem.n() as f64;
                let rho = (best / (c * (c - 1.0)).max(1.0)).clamp(-1.0, 1.0);
                factor * (2.0 * (1.0 - rho)).max(1e-6)
            }
        }
    }

    pub fn label(self) -> String {
        match self {
            Temperature::NullStd(f) => format!("{f} null-std"),
            Temperature::Residual(f) => format!("{f} residual"),
        }
    }
}

/// Settings of the alignment score.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TrustParams {
    /// Random permutations for the null distribution (issue: at least 10,000).
    pub null_draws: usize,
    pub temperature: Temperature,
    /// Share of a cluster's probability that makes another class a near-tie.
    pub tie_share: f64,
    /// Trusted when the mean posterior probability of the chosen names is at least this.
    pub min_mean_map_marginal: f64,
    /// Largest c enumerated exactly; above it, Metropolis.
    pub exact_limit: usize,
    /// Metropolis sweeps (each c(c-1)/2 proposals) after as many for burn-in.
    pub mcmc_sweeps: usize,
    pub seed: u64,
}

/// Measured in examples/naming_study.rs (GloVe 50d; synthetic aligned sets, CIFAR-10 SimCLR,
/// Fashion-MNIST and RetinaMNIST features, Sinkhorn and k-means clusters, 8 kernels, 10 seeds,
/// 1,010 rows), with the verdict judged by every invariant kernel (`GeometryParams::trust_kernels`):
/// T = 2 residual and a support of 0.8 rank the rows by naming accuracy at Spearman 0.75, trust
/// no row of a group whose oracle naming gets fewer than half the names right (the one
/// exception is a kernel the tool never uses for ordered classes), and trust the synthetic
/// sets wherever their clusters are right (docs/naming-study.md).
impl Default for TrustParams {
    fn default() -> Self {
        TrustParams { null_draws: 10_000, temperature: Temperature::Residual(2.0), tie_share: 0.2, min_mean_map_marginal: 0.8, exact_limit: 10, mcmc_sweeps: 20_000, seed: 0 }
    }
}

/// The label-free alignment score of one naming.
#[derive(Clone, Debug, Serialize)]
pub struct AlignmentScore {
    pub null: PermutationNull,
    /// (f(naming) - null mean) / null std.
    pub z: f64,
    /// (f(naming) - f(runner-up)) / null std; None when the solver had no runner-up.
    pub gap: Option<f64>,
    pub posterior: GibbsPosterior,
    /// Per cluster, the posterior probability of the name the naming gave it.
    pub map_marginals: Vec<f64>,
    /// Their mean: the expected share of clusters named right under the posterior.
    pub mean_map_marginal: f64,
    pub near_ties: Vec<Vec<usize>>,
    pub trusted: bool,
}

/// Scores a naming (`naming` must come from `problem`).
pub fn alignment_score(problem: &NamingProblem, naming: &Naming, params: &TrustParams) -> AlignmentScore {
    let null = permutation_null(problem, params.null_draws, params.seed);
    let temperature = params.temperature.value(problem, naming.score, &null);
    let posterior = if problem.n() <= params.exact_limit {
        gibbs_exact(problem, naming.score, &[temperature]).remove(0)
    } else {
        gibbs_mcmc(problem, &naming.class_of, temperature, params.mcmc_sweeps, params.seed)
    };
    alignment_from_posterior(problem, naming, null, posterior, params)
}

/// The score from a posterior computed elsewhere (e.g. one enumeration for several temperatures).
pub fn alignment_from_posterior(problem: &NamingProblem, naming: &Naming, null: PermutationNull, posterior: GibbsPosterior, params: &TrustParams) -> AlignmentScore {
    let unit = null.std.max(1e-12);
    let score = problem.score(&naming.class_of);
    let map_marginals: Vec<f64> = naming.class_of.iter().enumerate().map(|(i, &k)| posterior.marginals[i][k]).collect();
    let mean_map_marginal = map_marginals.iter().sum::<f64>() / map_marginals.len().max(1) as f64;
    AlignmentScore {
        z: (score - null.mean) / unit,
        gap: naming.second_score.map(|s| (score - s) / unit),
        near_ties: near_tie_groups(&posterior.marginals, &naming.class_of, params.tie_share),
        trusted: mean_map_marginal >= params.min_mean_map_marginal,
        null,
        posterior,
        map_marginals,
        mean_map_marginal,
    }
}

/// Spearman rank correlation of two equally long samples (ties get their mean rank).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let (rx, ry) = (ranks(x), ranks(y));
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt().max(1e-300)
}

fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut r = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end) as f64 / 2.0;
        order[start..=end].iter().for_each(|&i| r[i] = mean_rank);
        start = end + 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::qap::{solve_exact, standardize};

    fn random_problem(rng: &mut Rng, c: usize, signal: f64) -> (NamingProblem, Vec<usize>) {
        // B random symmetric; A a noisy copy of B under a hidden permutation.
        let mut b = vec![vec![0.0; c]; c];
        for i in 0..c {
            for j in i + 1..c {
                let v = rng.normal();
                b[i][j] = v;
                b[j][i] = v;
            }
        }
        let mut truth: Vec<usize> = (0..c).collect();
        rng.shuffle(&mut truth);
        let mut a = vec![vec![0.0; c]; c];
        for i in 0..c {
            for j in i + 1..c {
                let v = signal * b[truth[i]][truth[j]] + rng.normal();
                a[i][j] = v;
                a[j][i] = v;
            }
        }
        (NamingProblem { cluster_similarity: standardize(&a), class_similarity: standardize(&b), sizes: None }, truth)
    }

    #[test]
    fn the_chain_s_swap_deltas_are_the_problem_s_on_asymmetric_matrices_with_sizes() {
        let mut rng = Rng::new(31);
        let c = 9;
        let random = |rng: &mut Rng| -> Vec<Vec<f64>> { (0..c).map(|_| (0..c).map(|_| rng.normal()).collect()).collect() };
        let proportions = |rng: &mut Rng| -> Vec<f64> { (0..c).map(|_| rng.uniform()).collect() };
        let sizes = Some((proportions(&mut rng), proportions(&mut rng), 3.0));
        let problem = NamingProblem { cluster_similarity: random(&mut rng), class_similarity: random(&mut rng), sizes };
        let mut state: Vec<usize> = (0..c).collect();
        rng.shuffle(&mut state);
        let mut chain = SwapChain::new(&problem, &state);
        for _ in 0..200 {
            let (i, j) = (rng.below(c), rng.below(c));
            if i == j {
                continue;
            }
            let (fast, slow) = (chain.swap_delta(i, j), problem.swap_delta(&state, i, j));
            assert!((fast - slow).abs() < 1e-9 * slow.abs().max(1.0), "swap {i},{j} of {state:?}: {fast} vs {slow}");
            let before = problem.score(&state);
            chain.swap(i, j);
            state.swap(i, j);
            assert_eq!(chain.state, state);
            assert!((problem.score(&state) - before - slow).abs() < 1e-9 * before.abs().max(1.0));
        }
    }

    fn all_perms(c: usize) -> Vec<Vec<usize>> {
        if c == 0 {
            return vec![vec![]];
        }
        all_perms(c - 1).into_iter().flat_map(|q| (0..c).map(move |k| { let mut r = q.clone(); r.insert(k, c - 1); r })).collect()
    }

    #[test]
    fn exact_posterior_matches_brute_force() {
        let mut rng = Rng::new(1);
        for c in [3usize, 5, 7] {
            let (p, _) = random_problem(&mut rng, c, 1.0);
            let best = solve_exact(&p);
            let temperatures = [0.3, 2.0];
            let posts = gibbs_exact(&p, best.score, &temperatures);
            for (post, &t) in posts.iter().zip(&temperatures) {
                let perms = all_perms(c);
                let weights: Vec<f64> = perms.iter().map(|q| ((p.score(q) - best.score) / t).exp()).collect();
                let z: f64 = weights.iter().sum();
                for i in 0..c {
                    for k in 0..c {
                        let m: f64 = perms.iter().zip(&weights).filter(|(q, _)| q[i] == k).map(|(_, w)| w).sum::<f64>() / z;
                        assert!((post.marginals[i][k] - m).abs() < 1e-9, "c {c} T {t}: [{i}][{k}] {} vs {m}", post.marginals[i][k]);
                    }
                }
                assert!((post.map_probability - 1.0 / z).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn metropolis_agrees_with_exact_enumeration() {
        let mut rng = Rng::new(2);
        let (p, _) = random_problem(&mut rng, 6, 0.7);
        let best = solve_exact(&p);
        let null = permutation_null(&p, 10_000, 0);
        let t = Temperature::NullStd(0.5).value(&p, best.score, &null);
        let exact = gibbs_exact(&p, best.score, &[t]).remove(0);
        let mcmc = gibbs_mcmc(&p, &best.class_of, t, 20_000, 3);
        let worst = exact.marginals.iter().flatten().zip(mcmc.marginals.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 0.03, "largest marginal difference {worst}");
        assert!((exact.map_probability - mcmc.map_probability).abs() < 0.03);
    }

    #[test]
    fn null_of_standardised_matrices_is_centred_with_the_known_variance() {
        let mut rng = Rng::new(4);
        let (p, _) = random_problem(&mut rng, 8, 0.0);
        let null = permutation_null(&p, 20_000, 7);
        // Standardised off-diagonals sum to 0, so E f = 0 over uniform permutations.
        assert!(null.mean.abs() < 4.0 * null.std / (20_000f64).sqrt(), "{null:?}");
        assert_eq!(null.draws, 20_000);
        let again = permutation_null(&p, 20_000, 7);
        assert_eq!(again.mean, null.mean, "seeded draws must repeat");
    }

    #[test]
    fn strong_signal_is_trusted_and_noise_is_not() {
        let mut rng = Rng::new(5);
        let params = TrustParams::default();
        let (strong, truth) = random_problem(&mut rng, 8, 5.0);
        let naming = solve_exact(&strong);
        assert_eq!(naming.class_of, truth);
        let s = alignment_score(&strong, &naming, &params);
        assert!(s.trusted && s.z > 4.0 && s.mean_map_marginal > 0.9, "z {} marginal {}", s.z, s.mean_map_marginal);
        assert!(s.near_ties.is_empty());
        let (noise, _) = random_problem(&mut rng, 8, 0.0);
        let s = alignment_score(&noise, &solve_exact(&noise), &params);
        assert!(!s.trusted, "pure noise trusted: marginal {}", s.mean_map_marginal);
        assert!(s.gap.unwrap() >= 0.0);
    }

    #[test]
    fn near_ties_join_classes_with_split_marginals() {
        let marginals = vec![
            vec![0.55, 0.45, 0.0, 0.0],
            vec![0.45, 0.55, 0.0, 0.0],
            vec![0.0, 0.0, 0.9, 0.1],
            vec![0.0, 0.0, 0.1, 0.9],
        ];
        assert_eq!(near_tie_groups(&marginals, &[0, 1, 2, 3], 0.2), vec![vec![0, 1]]);
        assert_eq!(near_tie_groups(&marginals, &[0, 1, 2, 3], 0.05), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(marginal_naming(&marginals), vec![0, 1, 2, 3]);
    }

    #[test]
    fn spearman_known_values() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // scipy.stats.spearmanr([1,2,3,4,5],[2,1,4,3,5]).correlation = 0.8
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]) - 0.8).abs() < 1e-12);
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![1.5, 0.0, 1.5]);
    }

    #[test]
    fn exact_enumeration_of_ten_classes_is_fast_enough() {
        let mut rng = Rng::new(6);
        let (p, _) = random_problem(&mut rng, 10, 0.5);
        let best = solve_exact(&p);
        let null = permutation_null(&p, 10_000, 0);
        let started = std::time::Instant::now();
        let post = gibbs_exact(&p, best.score, &[0.25 * null.std, 1.0 * null.std]);
        let seconds = started.elapsed().as_secs_f64();
        println!("exact Gibbs posterior, c = 10, two temperatures: {seconds:.2} s");
        // About 0.5 s on an idle core; the bound leaves room for a shared machine.
        assert!(seconds < 10.0, "{seconds} s");
        for post in &post {
            for row in &post.marginals {
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            }
        }
    }
}
