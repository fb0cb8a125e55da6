//! Entropic optimal transport (Sinkhorn, Cuturi 2013), in the log domain.
//!
//! At epsilon = 0.01 a cost of 1 becomes e^100 in the kernel exp(-C/eps), beyond f32, so the
//! iterations run on the dual potentials f, g with log-sum-exp instead of on the kernel:
//!
//!   f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps)      (row marginals become a)
//!   g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps)      (column marginals become b)
//!   R*_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)
//!
//! After each g update the column marginals are exact; the row marginals are exact at
//! convergence. Stopping rule of the review code: the summed absolute change of both dual
//! vectors falls below `tolerance` (in cost units), or `max_iters` is reached.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinkhornParams {
    /// Entropic regularisation epsilon (paper: 0.01).
    pub epsilon: f64,
    /// Stop when sum|f - f_prev| + sum|g - g_prev| < tolerance (review code: 0.1).
    pub tolerance: f64,
    /// Iteration cap (review code: 700 for matching, 1000 for clustering).
    pub max_iters: usize,
}

impl Default for SinkhornParams {
    fn default() -> Self {
        SinkhornParams { epsilon: 0.01, tolerance: 0.1, max_iters: 700 }
    }
}

impl SinkhornParams {
    pub fn check(&self) -> Result<()> {
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::invalid("sinkhorn epsilon", self.epsilon, "a positive number"));
        }
        if !(self.tolerance > 0.0) {
            return Err(Error::invalid("sinkhorn tolerance", self.tolerance, "a positive number"));
        }
        if self.max_iters == 0 {
            return Err(Error::invalid("sinkhorn max_iters", 0, "at least 1"));
        }
        Ok(())
    }
}

/// The solution of one OT problem.
#[derive(Debug)]
pub struct Transport {
    /// (n, m): the entropic transport plan R*.
    pub plan: Tensor,
    /// (m): the column potential g, to warm-start the next, similar problem.
    pub g: Tensor,
    pub iterations: usize,
    pub converged: bool,
}

/// Uniform marginal 1/n of the given kind and device.
pub fn uniform(n: i64, like: &Tensor) -> Tensor {
    Tensor::full([n], 1.0 / n as f64, (like.kind(), like.device()))
}

/// Solves min_R <R, C> - eps H(R) s.t. R 1 = a, R^T 1 = b.
///
/// `cost` (n, m); `a` (n) and `b` (m) positive and each summing to 1; `warm_g` (m) a previous
/// solution's g. Differentiable through the iterations when `cost` requires grad (the review
/// code's unrolled gradient); call it under `tch::no_grad` to treat the plan as a constant.
pub fn sinkhorn(cost: &Tensor, a: &Tensor, b: &Tensor, params: &SinkhornParams, warm_g: Option<&Tensor>) -> Transport {
    sinkhorn_with_copies(cost, a, b, None, params, warm_g)
}

/// `sinkhorn` where column j stands for `copies[j]` identical columns of a larger problem
/// (stage III's prior atoms). The plan is that problem's plan with each copy's column merged,
/// and the stopping rule counts the change of g_j once per copy, so the iterations stop exactly
/// when the larger problem's would.
pub fn sinkhorn_with_copies(cost: &Tensor, a: &Tensor, b: &Tensor, copies: Option<&[f64]>, params: &SinkhornParams, warm_g: Option<&Tensor>) -> Transport {
    if cost.device() == tch::Device::Cpu && !cost.requires_grad() {
        return sinkhorn_cpu_tensors(cost, a, b, copies, params, warm_g);
    }
    sinkhorn_log_domain(cost, a, b, copies, params, warm_g)
}

/// The log-domain iterations as libtorch tensor operations: differentiable, and the path used
/// on GPUs.
pub fn sinkhorn_log_domain(cost: &Tensor, a: &Tensor, b: &Tensor, copies: Option<&[f64]>, params: &SinkhornParams, warm_g: Option<&Tensor>) -> Transport {
    let copies = copies.map(|c| Tensor::from_slice(c).to_kind(Kind::Double).to_device(cost.device()));
    let eps = params.epsilon;
    let neg_cost = cost / (-eps);
    let log_a = a.log().unsqueeze(1);
    let log_b = b.log().unsqueeze(0);
    // Scaled potentials u = f / eps, v = g / eps.
    let mut v = match warm_g {
        Some(g) => g.detach() / eps,
        None => Tensor::zeros([cost.size()[1]], (cost.kind(), cost.device())),
    };
    let mut u_prev: Option<Tensor> = None;
    // On a GPU every convergence check is a synchronisation; check less often there.
    let check_every = if cost.device().is_cuda() { 10 } else { 1 };
    let mut iterations = 0;
    let mut converged = false;
    while iterations < params.max_iters {
        let u = -(&neg_cost + (&v.unsqueeze(0) + &log_b)).logsumexp([1], false);
        let v_next = -(&neg_cost + (&u.unsqueeze(1) + &log_a)).logsumexp([0], false);
        iterations += 1;
        if iterations % check_every == 0 || iterations == params.max_iters {
            if let Some(up) = &u_prev {
                let dv = (&v_next - &v).abs().to_kind(Kind::Double);
                let dv = match &copies {
                    Some(c) => (dv * c).sum(Kind::Double),
                    None => dv.sum(Kind::Double),
                };
                let change = ((&u - up).abs().sum(Kind::Double) + dv)
                    .double_value(&[])
                    * eps;
                if change < params.tolerance {
                    converged = true;
                }
            }
        }
        u_prev = Some(u);
        v = v_next;
        if converged {
            break;
        }
    }
    let u = u_prev.unwrap_or_else(|| Tensor::zeros([cost.size()[0]], (cost.kind(), cost.device())));
    let plan = (neg_cost + u.unsqueeze(1) + &log_a + v.unsqueeze(0) + &log_b).exp();
    Transport { plan, g: v.detach() * eps, iterations, converged }
}

fn to_f64_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).contiguous().view([-1])).unwrap_or_default()
}

fn sinkhorn_cpu_tensors(cost: &Tensor, a: &Tensor, b: &Tensor, copies: Option<&[f64]>, params: &SinkhornParams, warm_g: Option<&Tensor>) -> Transport {
    let (n, m) = (cost.size()[0] as usize, cost.size()[1] as usize);
    let warm = warm_g.map(to_f64_vec);
    let solution = sinkhorn_cpu(&to_f64_vec(cost), n, m, &to_f64_vec(a), &to_f64_vec(b), copies, params, warm.as_deref());
    let kind = cost.kind();
    Transport {
        plan: Tensor::from_slice(&solution.plan).view([n as i64, m as i64]).to_kind(kind),
        g: Tensor::from_slice(&solution.g).to_kind(kind),
        iterations: solution.iterations,
        converged: solution.converged,
    }
}

/// A solution of `sinkhorn_cpu`: plan (n x m, row-major) and potentials.
pub struct CpuTransport {
    pub plan: Vec<f64>,
    pub f: Vec<f64>,
    pub g: Vec<f64>,
    pub iterations: usize,
    pub converged: bool,
}

/// The range the scalings u, v may take before they are absorbed into the potentials (f64
/// kernel: far from overflow and from the subnormal numbers).
const SCALING_MIN: f64 = 1e-100;
const SCALING_MAX: f64 = 1e100;

/// The kernel and marginals of one scaling phase.
struct Scaling<'a> {
    /// K transposed: (m, n) row-major.
    kernel: &'a [f64],
    /// How many columns of the larger problem each column stands for (stopping rule only).
    copies: &'a [f64],
    a: &'a [f64],
    b: &'a [f64],
    n: usize,
    m: usize,
}

/// Runs scaling iterations until the stopping rule holds (returns true), u or v leave the
/// safe range, or `budget` iterations are used; returns (converged, iterations used).
/// Dispatches to a copy compiled for AVX2 where the processor has it (the two matrix-vector
/// products are the hot loop of stage III).
fn scaling_iterations(s: &Scaling, u: &mut [f64], v: &mut [f64], scratch: &mut [f64], eps: f64, tolerance: f64, budget: usize) -> (bool, usize) {
    if SOLVER_THREADS.load(Ordering::Relaxed) >= 2 && s.n >= 128 {
        return scaling_iterations_two_threads(s, u, v, eps, tolerance, budget);
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just detected on this processor.
            return unsafe { scaling_iterations_avx2(s, u, v, scratch, eps, tolerance, budget) };
        }
    }
    scaling_iterations_generic(s, u, v, scratch, eps, tolerance, budget)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scaling_iterations_avx2(s: &Scaling, u: &mut [f64], v: &mut [f64], scratch: &mut [f64], eps: f64, tolerance: f64, budget: usize) -> (bool, usize) {
    scaling_iterations_generic(s, u, v, scratch, eps, tolerance, budget)
}

#[inline(always)]
fn scaling_iterations_generic(s: &Scaling, u: &mut [f64], v: &mut [f64], scratch: &mut [f64], eps: f64, tolerance: f64, budget: usize) -> (bool, usize) {
    // The kernel is stored transposed (m rows of length n): the u update is then m contiguous
    // axpy's into an n-vector and the v update m long dot products, both free of short
    // horizontal reductions, and the reciprocals run as vector loops.
    let (n, m) = (s.n, s.m);
    let (mut sums, mut scaled_u) = (vec![0.0; n], vec![0.0; n]);
    let (mut last_u, mut last_v) = (u.to_vec(), v.to_vec());
    for used in 1..=budget {
        last_u.copy_from_slice(u);
        last_v.copy_from_slice(v);
        // u_i = 1 / sum_j K_ij b_j v_j, then the column sums sum_i K_ij a_i u_i, over all rows.
        let (change_u, ok_u) = half_iteration(s, 0, n, v, u, &mut scratch[..m], &mut sums, &mut scaled_u);
        // v_j = 1 / sum_i K_ij a_i u_i
        let (change_v, ok_v) = reciprocal_update(&scratch[..m], v, Some(s.copies));
        if eps * (change_u + change_v) < tolerance {
            return (true, used);
        }
        if !(ok_u && ok_v) {
            // Leave the last iterate whose scalings were all in range, to be absorbed.
            u.copy_from_slice(&last_u);
            v.copy_from_slice(&last_v);
            return (false, used);
        }
    }
    (false, budget)
}

/// x_i <- 1 / sums_i. Returns the summed bound on |ln(x_new / x_old)| and whether every new
/// value stays inside [SCALING_MIN, SCALING_MAX] (finite). Eight lanes, so the divisions vectorise.
#[inline(always)]
fn reciprocal_update(sums: &[f64], x: &mut [f64], weights: Option<&[f64]>) -> (f64, bool) {
    if let Some(w) = weights {
        // Few columns (atoms): a plain loop.
        let mut total = 0.0;
        let mut ok = true;
        for ((xk, sk), wk) in x.iter_mut().zip(sums).zip(w) {
            let next = 1.0 / sk;
            total += wk * log_ratio_bound(next, *xk);
            ok &= (SCALING_MIN..=SCALING_MAX).contains(&next);
            *xk = next;
        }
        return (total, ok && total.is_finite());
    }
    let mut change = [0.0f64; 8];
    let (mut lo, mut hi) = ([f64::INFINITY; 8], [0.0f64; 8]);
    let mut chunks = x.chunks_exact_mut(8);
    let mut sum_chunks = sums.chunks_exact(8);
    for (xc, sc) in (&mut chunks).zip(&mut sum_chunks) {
        for k in 0..8 {
            let next = 1.0 / sc[k];
            change[k] += log_ratio_bound(next, xc[k]);
            lo[k] = lo[k].min(next);
            hi[k] = hi[k].max(next);
            xc[k] = next;
        }
    }
    let mut total: f64 = change.iter().sum();
    let (mut min, mut max) = (lo.iter().fold(f64::INFINITY, |a, &b| a.min(b)), hi.iter().fold(0.0f64, |a, &b| a.max(b)));
    for (xk, sk) in chunks.into_remainder().iter_mut().zip(sum_chunks.remainder()) {
        let next = 1.0 / sk;
        total += log_ratio_bound(next, *xk);
        min = min.min(next);
        max = max.max(next);
        *xk = next;
    }
    // NaN fails both comparisons below.
    (total, min >= SCALING_MIN && max <= SCALING_MAX && total.is_finite())
}

static SOLVER_THREADS: AtomicUsize = AtomicUsize::new(1);

/// Threads for the CPU solver's scaling iterations: 1 (default) or 2. With 2, the rows are
/// split between two threads that meet at two spin barriers per iteration: about 1.6x faster
/// on an otherwise idle 2-core machine, but spinning threads slow everything down when the
/// cores are shared, so it is opt-in (`--sinkhorn-threads 2`). Results are deterministic for a
/// given thread count (partial sums are combined in a fixed order), and differ from the
/// one-thread results only in rounding.
pub fn set_solver_threads(threads: usize) {
    SOLVER_THREADS.store(threads.clamp(1, 2), Ordering::Relaxed);
}

/// One thread's share of an iteration: rows `lo..hi` of u from `v`, then the partial column
/// sums sum_{i in lo..hi} K_ij a_i u_i into `part`. Returns (change bound, all in range).
#[inline(always)]
fn half_iteration(s: &Scaling, lo: usize, hi: usize, v: &[f64], u_half: &mut [f64], part: &mut [f64], sums: &mut [f64], scaled: &mut [f64]) -> (f64, bool) {
    let (n, m, kt) = (s.n, s.m, s.kernel);
    sums.fill(0.0);
    for j in 0..m {
        let c = s.b[j] * v[j];
        for (acc, k) in sums.iter_mut().zip(&kt[j * n + lo..j * n + hi]) {
            *acc += *k as f64 * c;
        }
    }
    let (change, ok) = reciprocal_update(sums, u_half, None);
    for (k, i) in (lo..hi).enumerate() {
        scaled[k] = s.a[i] * u_half[k];
    }
    for j in 0..m {
        part[j] = dot(&kt[j * n + lo..j * n + hi], scaled);
    }
    (change, ok)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn half_iteration_avx2(s: &Scaling, lo: usize, hi: usize, v: &[f64], u_half: &mut [f64], part: &mut [f64], sums: &mut [f64], scaled: &mut [f64]) -> (f64, bool) {
    half_iteration(s, lo, hi, v, u_half, part, sums, scaled)
}

#[allow(clippy::too_many_arguments)]
fn half_iteration_dispatch(s: &Scaling, lo: usize, hi: usize, v: &[f64], u_half: &mut [f64], part: &mut [f64], sums: &mut [f64], scaled: &mut [f64]) -> (f64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just detected on this processor.
            return unsafe { half_iteration_avx2(s, lo, hi, v, u_half, part, sums, scaled) };
        }
    }
    half_iteration(s, lo, hi, v, u_half, part, sums, scaled)
}

/// Waits until `flag` reaches `target`: spins briefly, then yields the core.
fn wait_for(flag: &AtomicUsize, target: usize) {
    let mut spins = 0u32;
    while flag.load(Ordering::Acquire) < target {
        spins += 1;
        if spins < 20_000 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// `scaling_iterations` with the rows split between the calling thread and one helper.
fn scaling_iterations_two_threads(s: &Scaling, u: &mut [f64], v: &mut [f64], eps: f64, tolerance: f64, budget: usize) -> (bool, usize) {
    let (n, m) = (s.n, s.m);
    let mid = n / 2;
    let (u_main, u_help) = u.split_at_mut(mid);
    // Shared between the threads: v (f64 bits), the helper's partial sums and results, and
    // two counters (helper done with iteration t; main published v and the decision for t).
    let shared_v: Vec<AtomicU64> = v.iter().map(|x| AtomicU64::new(x.to_bits())).collect();
    let helper_part: Vec<AtomicU64> = (0..m).map(|_| AtomicU64::new(0)).collect();
    let helper_change = AtomicU64::new(0);
    let helper_ok = AtomicUsize::new(1);
    let helper_done = AtomicUsize::new(0);
    let main_done = AtomicUsize::new(0);
    // Decision for the helper after each iteration: 0 continue, 1 stop, 2 stop and roll back.
    let decision = AtomicUsize::new(0);
    let mut result = (false, budget);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let len = n - mid;
            let (mut sums, mut scaled, mut part) = (vec![0.0; len], vec![0.0; len], vec![0.0; m]);
            let mut last = u_help.to_vec();
            let mut local_v = vec![0.0; m];
            for t in 1..=budget {
                for (lv, sv) in local_v.iter_mut().zip(&shared_v) {
                    *lv = f64::from_bits(sv.load(Ordering::Relaxed));
                }
                last.copy_from_slice(u_help);
                let (change, ok) = half_iteration_dispatch(s, mid, n, &local_v, u_help, &mut part, &mut sums, &mut scaled);
                for (hp, p) in helper_part.iter().zip(&part) {
                    hp.store(p.to_bits(), Ordering::Relaxed);
                }
                helper_change.store(change.to_bits(), Ordering::Relaxed);
                helper_ok.store(ok as usize, Ordering::Relaxed);
                helper_done.store(t, Ordering::Release);
                wait_for(&main_done, t);
                match decision.load(Ordering::Acquire) {
                    0 => {}
                    1 => return,
                    _ => {
                        u_help.copy_from_slice(&last);
                        return;
                    }
                }
            }
        });
        let (mut sums, mut scaled, mut part) = (vec![0.0; mid], vec![0.0; mid], vec![0.0; m]);
        let mut last_u = u_main.to_vec();
        let mut last_v = v.to_vec();
        let mut column = vec![0.0; m];
        for t in 1..=budget {
            last_u.copy_from_slice(u_main);
            last_v.copy_from_slice(v);
            let (change_main, ok_main) = half_iteration_dispatch(s, 0, mid, v, u_main, &mut part, &mut sums, &mut scaled);
            wait_for(&helper_done, t);
            for j in 0..m {
                column[j] = part[j] + f64::from_bits(helper_part[j].load(Ordering::Relaxed));
            }
            let change_u = change_main + f64::from_bits(helper_change.load(Ordering::Relaxed));
            let ok_u = ok_main && helper_ok.load(Ordering::Relaxed) == 1;
            let (change_v, ok_v) = reciprocal_update(&column, v, Some(s.copies));
            let (stop, outcome) = if eps * (change_u + change_v) < tolerance {
                (1, Some((true, t)))
            } else if !(ok_u && ok_v) {
                u_main.copy_from_slice(&last_u);
                v.copy_from_slice(&last_v);
                (2, Some((false, t)))
            } else if t == budget {
                (1, Some((false, t)))
            } else {
                (0, None)
            };
            for (sv, x) in shared_v.iter().zip(v.iter()) {
                sv.store(x.to_bits(), Ordering::Relaxed);
            }
            decision.store(stop, Ordering::Relaxed);
            main_done.store(t, Ordering::Release);
            if let Some(r) = outcome {
                result = r;
                break;
            }
        }
    });
    result
}

/// Dot product with eight independent accumulators, so that the compiler can use SIMD lanes
/// (a single running sum must be evaluated in order).
#[inline(always)]
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let tail: f64 = xr.iter().zip(yr).map(|(a, b)| a * b).sum();
    acc.iter().sum::<f64>() + tail
}

/// An upper bound on |ln(next / previous)| without a logarithm: |ln r| <= |r - 1| / min(r, 1),
/// tight as r -> 1, where the stopping rule is decided. Using it can only add iterations.
#[inline(always)]
fn log_ratio_bound(next: f64, previous: f64) -> f64 {
    let r = next / previous;
    (r - 1.0).abs() / r.min(1.0)
}

/// log sum_k exp(x_k), stable.
fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// The same problem on the CPU in f64, in the stabilised scaling form (Schmitzer 2019): the
/// potentials f, g are kept in the log domain and a kernel K_ij = exp((f_i + g_j - C_ij)/eps)
/// is built from them, after which each iteration is two matrix-vector products on scalings
/// u, v (R = diag(a u) K diag(b v)) instead of two log-sum-exp passes. When u or v leave
/// [1e-100, 1e100] they are absorbed into f, g and the kernel is rebuilt, so nothing
/// overflows at epsilon = 0.01. Each absorption starts with one exact log-domain update of f
/// and g, which also makes every kernel row and column non-zero.
///
/// Iterations and the stopping rule are those of the log-domain form: one iteration updates
/// both potentials, and the change is sum|f - f_prev| + sum|g - g_prev| (f = f0 + eps ln u).
#[allow(clippy::too_many_arguments)]
pub fn sinkhorn_cpu(cost: &[f64], n: usize, m: usize, a: &[f64], b: &[f64], copies: Option<&[f64]>, params: &SinkhornParams, warm_g: Option<&[f64]>) -> CpuTransport {
    let ones = vec![1.0; m];
    let copies = copies.unwrap_or(&ones);
    let eps = params.epsilon;
    let log_a: Vec<f64> = a.iter().map(|x| x.ln()).collect();
    let log_b: Vec<f64> = b.iter().map(|x| x.ln()).collect();
    let mut f = vec![0.0; n];
    let mut g = warm_g.map_or_else(|| vec![0.0; m], <[f64]>::to_vec);
    let mut kernel = vec![0.0f64; n * m];
    let (mut u, mut v) = (vec![1.0; n], vec![1.0; m]);
    let mut scratch = vec![0.0; m];
    let mut iterations = 0;
    let mut converged = false;
    let mut previous: Option<(Vec<f64>, Vec<f64>)> = None;
    'outer: while iterations < params.max_iters {
        // Exact log-domain update of f, then g.
        for i in 0..n {
            let row = &cost[i * m..(i + 1) * m];
            f[i] = -eps * log_sum_exp((0..m).map(|j| log_b[j] + (g[j] - row[j]) / eps));
        }
        for j in 0..m {
            g[j] = -eps * log_sum_exp((0..n).map(|i| log_a[i] + (f[i] - cost[i * m + j]) / eps));
        }
        iterations += 1;
        if let Some((pf, pg)) = &previous {
            let change: f64 = f.iter().zip(pf).map(|(x, y)| (x - y).abs()).sum::<f64>()
                + g.iter().zip(pg).zip(copies).map(|((x, y), c)| c * (x - y).abs()).sum::<f64>();
            if change < params.tolerance {
                converged = true;
                break 'outer;
            }
        }
        for i in 0..n {
            for j in 0..m {
                kernel[j * n + i] = ((f[i] + g[j] - cost[i * m + j]) / eps).exp();
            }
        }
        u.fill(1.0);
        v.fill(1.0);
        let (done, used) = scaling_iterations(&Scaling { kernel: &kernel, a, b, copies, n, m }, &mut u, &mut v, &mut scratch, eps, params.tolerance, params.max_iters - iterations);
        iterations += used;
        converged = done;
        // Absorb the scalings into the potentials.
        if u.iter().chain(&v).all(|x| x.is_finite() && *x > 0.0) {
            for i in 0..n {
                f[i] += eps * u[i].ln();
            }
            for j in 0..m {
                g[j] += eps * v[j].ln();
            }
        }
        if converged || iterations >= params.max_iters {
            break;
        }
        previous = Some((f.clone(), g.clone()));
    }
    let mut plan = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            plan[i * m + j] = (log_a[i] + log_b[j] + (f[i] + g[j] - cost[i * m + j]) / eps).exp();
        }
    }
    CpuTransport { plan, f, g, iterations, converged }
}

/// Largest absolute deviation of the plan's marginals from a and b.
pub fn marginal_error(plan: &Tensor, a: &Tensor, b: &Tensor) -> f64 {
    let rows = (plan.sum_dim_intlist([1i64].as_slice(), false, Kind::Double) - a.to_kind(Kind::Double)).abs().max().double_value(&[]);
    let cols = (plan.sum_dim_intlist([0i64].as_slice(), false, Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[]);
    rows.max(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_params() {
        assert!(SinkhornParams { epsilon: 0.0, ..Default::default() }.check().is_err());
        assert!(SinkhornParams { tolerance: -1.0, ..Default::default() }.check().is_err());
        assert!(SinkhornParams { max_iters: 0, ..Default::default() }.check().is_err());
        assert!(SinkhornParams::default().check().is_ok());
    }

    #[test]
    fn marginals_of_a_small_problem() {
        let cost = Tensor::from_slice(&[0.0f64, 1.0, 1.0, 0.0, 0.5, 0.2]).view([3, 2]);
        let a = uniform(3, &cost);
        let b = Tensor::from_slice(&[0.4f64, 0.6]);
        let params = SinkhornParams { epsilon: 0.05, tolerance: 1e-10, max_iters: 10_000 };
        let t = sinkhorn(&cost, &a, &b, &params, None);
        assert!(t.converged);
        assert!(marginal_error(&t.plan, &a, &b) < 1e-8);
    }
}
