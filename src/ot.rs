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
    // A plan that needs no gradient is solved on the CPU even when the cost lives on a GPU: the
    // problems are small (hundreds of rows), where each log-domain iteration on a GPU is a dozen
    // kernel launches and every convergence check a synchronisation, while the blocked CPU
    // solver is one cache-resident sweep. Only the n x m cost and plan cross the bus.
    if !cost.requires_grad() {
        let device = cost.device();
        let cpu = tch::Device::Cpu;
        let warm = warm_g.map(|g| g.to_device(cpu));
        let t = sinkhorn_cpu_tensors(&cost.to_device(cpu), &a.to_device(cpu), &b.to_device(cpu), copies, params, warm.as_ref());
        return Transport { plan: t.plan.to_device(device), g: t.g.to_device(device), ..t };
    }
    sinkhorn_log_domain(cost, a, b, copies, params, warm_g)
}

/// The log-domain iterations as libtorch tensor operations: differentiable (the unrolled plan
/// gradient of the review code), on any device.
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

/// Rows of the kernel per block. The kernel is stored in blocks of LANES consecutive rows i:
/// block k holds K_ij for i in k*LANES..(k+1)*LANES (zero past n) and every j, as m runs of
/// LANES values. One iteration then sweeps the kernel once: for each block, the u update
/// reads the block (m x LANES, about 8 KB at m = 60) with register accumulators, and the
/// column sums sum_i K_ij a_i u_i read it again from the L1 cache into per-column lane
/// accumulators. Two passes over the whole kernel per iteration read it twice from L2.
const LANES: usize = 16;

/// The number of LANES-row blocks that hold n rows.
fn blocks_for(n: usize) -> usize {
    n.div_ceil(LANES)
}

/// Position of K_ij in the blocked layout.
#[inline(always)]
fn blocked_index(i: usize, j: usize, m: usize) -> usize {
    (i / LANES) * m * LANES + j * LANES + i % LANES
}

/// The kernel and marginals of one scaling phase.
struct Scaling<'a> {
    /// K in LANES-row blocks (see `LANES`).
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
fn scaling_iterations(s: &Scaling, u: &mut [f64], v: &mut [f64], eps: f64, tolerance: f64, budget: usize) -> (bool, usize) {
    let (mut last_u, mut last_v) = (u.to_vec(), v.to_vec());
    let mut column = vec![0.0; s.m];
    let mut sweep = Sweep::new(s.m);
    for used in 1..=budget {
        last_u.copy_from_slice(u);
        last_v.copy_from_slice(v);
        // u_i = 1 / sum_j K_ij b_j v_j, then the column sums sum_i K_ij a_i u_i, over all rows.
        let (change_u, ok_u) = sweep.run(s, 0..blocks_for(s.n), v, u, &mut column);
        // v_j = 1 / sum_i K_ij a_i u_i
        let (change_v, ok_v) = reciprocal_update(&column, v, s.copies);
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

/// v_j <- 1 / sums_j. Returns the bound on sum_j copies_j |ln(v_new / v_old)| and whether
/// every new value stays inside [SCALING_MIN, SCALING_MAX] (finite).
fn reciprocal_update(sums: &[f64], x: &mut [f64], copies: &[f64]) -> (f64, bool) {
    let mut total = 0.0;
    let mut ok = true;
    for ((xk, sk), wk) in x.iter_mut().zip(sums).zip(copies) {
        let next = 1.0 / sk;
        total += wk * log_ratio_bound(next, *xk);
        ok &= (SCALING_MIN..=SCALING_MAX).contains(&next);
        *xk = next;
    }
    (total, ok && total.is_finite())
}

/// Scratch space of the sweeps: b_j v_j and four partial column sums per column.
struct Sweep {
    bv: Vec<f64>,
    partial: Vec<[f64; 4]>,
}

impl Sweep {
    fn new(m: usize) -> Self {
        Sweep { bv: vec![0.0; m], partial: vec![[0.0; 4]; m] }
    }

    /// One iteration over the rows in `blocks`: their u from `v` (`u_rows`
    /// starts at the first row of the first block), and their part of the column sums
    /// sum_i K_ij a_i u_i into `column`. Returns (change bound of u, all of u in range).
    fn run(&mut self, s: &Scaling, blocks: std::ops::Range<usize>, v: &[f64], u_rows: &mut [f64], column: &mut [f64]) -> (f64, bool) {
        let kernels = BlockKernels::detect();
        #[cfg(target_arch = "x86_64")]
        if kernels.avx2 {
            // SAFETY: AVX2 and FMA were detected on this processor.
            return unsafe { self.run_avx2(s, blocks, v, u_rows, column, kernels) };
        }
        self.run_with(s, blocks, v, u_rows, column, kernels)
    }

    /// `run_with` compiled for AVX2, so that its lane-wise loops use the wide registers too.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&mut self, s: &Scaling, blocks: std::ops::Range<usize>, v: &[f64], u_rows: &mut [f64], column: &mut [f64], kernels: BlockKernels) -> (f64, bool) {
        self.run_with(s, blocks, v, u_rows, column, kernels)
    }

    #[inline(always)]
    fn run_with(&mut self, s: &Scaling, blocks: std::ops::Range<usize>, v: &[f64], u_rows: &mut [f64], column: &mut [f64], kernels: BlockKernels) -> (f64, bool) {
        let m = s.m;
        for ((bv, b), v) in self.bv.iter_mut().zip(s.b).zip(v) {
            *bv = b * v;
        }
        self.partial.fill([0.0; 4]);
        let (mut lane_change, mut lane_min, mut lane_max) = ([0.0f64; LANES], [SCALING_MAX; LANES], [SCALING_MIN; LANES]);
        let first_row = blocks.start * LANES;
        for block in blocks {
            let slab = &s.kernel[block * m * LANES..(block + 1) * m * LANES];
            // sums_i = sum_j K_ij b_j v_j for the block's rows.
            let mut sums = kernels.row_sums(slab, &self.bv);
            // u_i = 1 / sums_i and a_i u_i, lane-wise so that the divisions vectorise. The
            // padded rows of a last, partial block get sums 1, u 1 and a 0: no change, in
            // range, and nothing added to the column sums.
            let (row0, local) = (block * LANES, block * LANES - first_row);
            let valid = LANES.min(s.n - row0);
            let (mut u, mut a) = ([1.0f64; LANES], [0.0f64; LANES]);
            u[..valid].copy_from_slice(&u_rows[local..local + valid]);
            a[..valid].copy_from_slice(&s.a[row0..row0 + valid]);
            sums[valid..].fill(1.0);
            let mut scaled = [0.0f64; LANES];
            for l in 0..LANES {
                let next = 1.0 / sums[l];
                lane_change[l] += log_ratio_bound(next, u[l]);
                lane_min[l] = lane_min[l].min(next);
                lane_max[l] = lane_max[l].max(next);
                u[l] = next;
                scaled[l] = a[l] * next;
            }
            u_rows[local..local + valid].copy_from_slice(&u[..valid]);
            // Column sums, from the block still in the L1 cache.
            kernels.add_column_sums(slab, &scaled, &mut self.partial);
        }
        for (total, p) in column.iter_mut().zip(&self.partial) {
            *total = (p[0] + p[1]) + (p[2] + p[3]);
        }
        let change = lane_change.iter().sum::<f64>();
        // NaN fails both comparisons (and makes the change NaN).
        let ok = lane_min.iter().all(|&x| x >= SCALING_MIN) && lane_max.iter().all(|&x| x <= SCALING_MAX);
        (change, ok && change.is_finite())
    }
}

/// The two loops over a kernel block, with AVX2 + FMA where the processor has them (the hot
/// loop of stage III) and portable code elsewhere.
#[derive(Clone, Copy)]
struct BlockKernels {
    avx2: bool,
}

impl BlockKernels {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            BlockKernels { avx2: std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            BlockKernels { avx2: false }
        }
    }

    /// sum_j slab[j][l] bv[j] for each of the LANES rows l.
    #[inline(always)]
    fn row_sums(self, slab: &[f64], bv: &[f64]) -> [f64; LANES] {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: AVX2 and FMA were detected; `slab` holds bv.len() runs of LANES values.
            return unsafe { simd::row_sums(slab, bv) };
        }
        let mut sums = [0.0f64; LANES];
        for (row, c) in slab.chunks_exact(LANES).zip(bv) {
            for l in 0..LANES {
                sums[l] += row[l] * c;
            }
        }
        sums
    }

    /// partial[j][l % 4] += sum over the block's rows l of slab[j][l] scaled[l].
    #[inline(always)]
    fn add_column_sums(self, slab: &[f64], scaled: &[f64; LANES], partial: &mut [[f64; 4]]) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: AVX2 and FMA were detected; `slab` holds partial.len() runs of LANES values.
            return unsafe { simd::add_column_sums(slab, scaled, partial) };
        }
        for (row, p) in slab.chunks_exact(LANES).zip(partial.iter_mut()) {
            for l in 0..LANES {
                p[l % 4] += row[l] * scaled[l];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::LANES;
    use std::arch::x86_64::*;

    /// AVX2 `row_sums`: four registers of four rows, two independent chains over j.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn row_sums(slab: &[f64], bv: &[f64]) -> [f64; LANES] {
        let m = bv.len();
        assert!(slab.len() >= m * LANES);
        let p = slab.as_ptr();
        let mut even = [_mm256_setzero_pd(); 4];
        let mut odd = [_mm256_setzero_pd(); 4];
        let mut j = 0;
        // SAFETY (all loads): j < m and k < 4, so j * LANES + 4 * k + 3 < m * LANES <= slab.len().
        unsafe {
            while j + 1 < m {
                let (c0, c1) = (_mm256_set1_pd(bv[j]), _mm256_set1_pd(bv[j + 1]));
                for k in 0..4 {
                    even[k] = _mm256_fmadd_pd(_mm256_loadu_pd(p.add(j * LANES + 4 * k)), c0, even[k]);
                    odd[k] = _mm256_fmadd_pd(_mm256_loadu_pd(p.add((j + 1) * LANES + 4 * k)), c1, odd[k]);
                }
                j += 2;
            }
            if j < m {
                let c0 = _mm256_set1_pd(bv[j]);
                for k in 0..4 {
                    even[k] = _mm256_fmadd_pd(_mm256_loadu_pd(p.add(j * LANES + 4 * k)), c0, even[k]);
                }
            }
            let mut sums = [0.0f64; LANES];
            for k in 0..4 {
                _mm256_storeu_pd(sums.as_mut_ptr().add(4 * k), _mm256_add_pd(even[k], odd[k]));
            }
            sums
        }
    }

    /// AVX2 `add_column_sums`: per column, the block's 16 products folded into one register.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn add_column_sums(slab: &[f64], scaled: &[f64; LANES], partial: &mut [[f64; 4]]) {
        assert!(slab.len() >= partial.len() * LANES);
        let p = slab.as_ptr();
        // SAFETY (all loads and stores): j < partial.len(), so every row j * LANES + 15 is in
        // the slab, and each partial[j] is four f64.
        unsafe {
            let s = [
                _mm256_loadu_pd(scaled.as_ptr()),
                _mm256_loadu_pd(scaled.as_ptr().add(4)),
                _mm256_loadu_pd(scaled.as_ptr().add(8)),
                _mm256_loadu_pd(scaled.as_ptr().add(12)),
            ];
            for (j, acc) in partial.iter_mut().enumerate() {
                let row = p.add(j * LANES);
                let mut t = _mm256_mul_pd(_mm256_loadu_pd(row), s[0]);
                t = _mm256_fmadd_pd(_mm256_loadu_pd(row.add(4)), s[1], t);
                t = _mm256_fmadd_pd(_mm256_loadu_pd(row.add(8)), s[2], t);
                t = _mm256_fmadd_pd(_mm256_loadu_pd(row.add(12)), s[3], t);
                let out = acc.as_mut_ptr();
                _mm256_storeu_pd(out, _mm256_add_pd(_mm256_loadu_pd(out), t));
            }
        }
    }
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
    // Rows past n in the last block stay zero.
    let mut kernel = vec![0.0f64; blocks_for(n) * LANES * m];
    let (mut u, mut v) = (vec![1.0; n], vec![1.0; m]);
    let mut iterations = 0;
    let mut converged = false;
    let mut previous: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut column_terms = vec![0.0f64; n];
    while iterations < params.max_iters {
        // Exact log-domain update of f, then g.
        for i in 0..n {
            let row = &cost[i * m..(i + 1) * m];
            f[i] = -eps * log_sum_exp((0..m).map(|j| log_b[j] + (g[j] - row[j]) / eps));
        }
        // g_j = -eps (M_j + ln S_j) with S_j = sum_i e_ij, e_ij = exp(ln a_i + (f_i - C_ij)/eps - M_j);
        // then K_ij = exp((f_i + g_j - C_ij)/eps) = e_ij / (a_i S_j): the kernel costs no
        // exponentials of its own.
        for j in 0..m {
            for (i, term) in column_terms.iter_mut().enumerate() {
                *term = log_a[i] + (f[i] - cost[i * m + j]) / eps;
            }
            let max = column_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for term in column_terms.iter_mut() {
                *term = (*term - max).exp();
            }
            let sum: f64 = column_terms.iter().sum();
            g[j] = -eps * (max + sum.ln());
            for (i, e) in column_terms.iter().enumerate() {
                kernel[blocked_index(i, j, m)] = e / (a[i] * sum);
            }
        }
        iterations += 1;
        u.fill(1.0);
        v.fill(1.0);
        if let Some((pf, pg)) = &previous {
            let change: f64 = f.iter().zip(pf).map(|(x, y)| (x - y).abs()).sum::<f64>()
                + g.iter().zip(pg).zip(copies).map(|((x, y), c)| c * (x - y).abs()).sum::<f64>();
            if change < params.tolerance {
                converged = true;
                break;
            }
        }
        if iterations >= params.max_iters {
            break;
        }
        let (done, used) = scaling_iterations(&Scaling { kernel: &kernel, a, b, copies, n, m }, &mut u, &mut v, eps, params.tolerance, params.max_iters - iterations);
        iterations += used;
        converged = done;
        if converged || iterations >= params.max_iters {
            break;
        }
        absorb(&mut f, &mut g, &u, &v, eps);
        previous = Some((f.clone(), g.clone()));
    }
    // R = diag(a u) K diag(b v), from the last kernel and scalings (kept in range by the
    // scaling phase; recomputed from the potentials if they are not).
    let mut plan = vec![0.0; n * m];
    if absorb(&mut f, &mut g, &u, &v, eps) {
        for i in 0..n {
            for j in 0..m {
                plan[i * m + j] = a[i] * u[i] * kernel[blocked_index(i, j, m)] * b[j] * v[j];
            }
        }
    } else {
        for i in 0..n {
            for j in 0..m {
                plan[i * m + j] = (log_a[i] + log_b[j] + (f[i] + g[j] - cost[i * m + j]) / eps).exp();
            }
        }
    }
    CpuTransport { plan, f, g, iterations, converged }
}

/// Absorbs the scalings into the potentials (f += eps ln u, g += eps ln v), unless one is not
/// finite and positive; returns whether it did.
fn absorb(f: &mut [f64], g: &mut [f64], u: &[f64], v: &[f64], eps: f64) -> bool {
    if !u.iter().chain(v).all(|x| x.is_finite() && *x > 0.0) {
        return false;
    }
    for (fi, ui) in f.iter_mut().zip(u) {
        *fi += eps * ui.ln();
    }
    for (gj, vj) in g.iter_mut().zip(v) {
        *gj += eps * vj.ln();
    }
    true
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

    /// The SIMD block loops give the portable loops' sums (up to rounding), padded rows
    /// included.
    #[test]
    fn block_kernels_agree_with_the_portable_loops() {
        let m = 7;
        let slab: Vec<f64> = (0..m * LANES).map(|k| ((k * 37 % 101) as f64 + 0.5) / 101.0).collect();
        let bv: Vec<f64> = (0..m).map(|j| 0.1 + j as f64).collect();
        let mut scaled = [0.0; LANES];
        for (l, x) in scaled.iter_mut().enumerate().take(11) {
            *x = 1.0 / (1.0 + l as f64);
        }
        let portable = BlockKernels { avx2: false };
        let detected = BlockKernels::detect();
        let (want, got) = (portable.row_sums(&slab, &bv), detected.row_sums(&slab, &bv));
        for l in 0..LANES {
            assert!((want[l] - got[l]).abs() < 1e-12 * want[l].abs().max(1.0), "row {l}: {} vs {}", want[l], got[l]);
        }
        let (mut want, mut got) = (vec![[1.0; 4]; m], vec![[1.0; 4]; m]);
        portable.add_column_sums(&slab, &scaled, &mut want);
        detected.add_column_sums(&slab, &scaled, &mut got);
        for j in 0..m {
            let (w, g) = (want[j].iter().sum::<f64>(), got[j].iter().sum::<f64>());
            let direct: f64 = 4.0 + (0..LANES).map(|l| slab[j * LANES + l] * scaled[l]).sum::<f64>();
            assert!((w - direct).abs() < 1e-12 && (g - direct).abs() < 1e-12, "column {j}: {w} {g} vs {direct}");
        }
    }

    /// n not a multiple of the block size: the padded rows change nothing.
    #[test]
    fn blocked_solver_handles_partial_blocks() {
        for n in [1usize, 5, 16, 17, 33] {
            let m = 3;
            let cost: Vec<f64> = (0..n * m).map(|k| ((k * 13 % 7) as f64) / 7.0).collect();
            let a = vec![1.0 / n as f64; n];
            let b = vec![0.2, 0.3, 0.5];
            let params = SinkhornParams { epsilon: 0.2, tolerance: 1e-9, max_iters: 20_000 };
            let t = sinkhorn_cpu(&cost, n, m, &a, &b, None, &params, None);
            assert!(t.converged, "n = {n}: {} iterations", t.iterations);
            for i in 0..n {
                let row: f64 = t.plan[i * m..(i + 1) * m].iter().sum();
                assert!((row - a[i]).abs() < 1e-7, "n = {n}, row {i}: {row}");
            }
            for j in 0..m {
                let col: f64 = (0..n).map(|i| t.plan[i * m + j]).sum();
                assert!((col - b[j]).abs() < 1e-7, "n = {n}, column {j}: {col}");
            }
        }
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
