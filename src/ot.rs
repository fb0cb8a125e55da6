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
                let change = ((&u - up).abs().sum(Kind::Double) + (&v_next - &v).abs().sum(Kind::Double))
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
