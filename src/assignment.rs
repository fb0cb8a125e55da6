//! Exact linear assignment (Hungarian algorithm, O(n^3), shortest augmenting paths with
//! potentials). Used by evaluation (matching clusters to classes, for reference only) and by
//! tests as the exact answer that Sinkhorn approximates.

/// Minimum-cost assignment of rows to columns of a rectangular `cost` (rows <= columns):
/// returns `col_of_row` and the total cost.
pub fn min_cost_assignment(cost: &[Vec<f64>]) -> (Vec<usize>, f64) {
    let (col_of_row, total, _) = min_cost_assignment_with_duals(cost);
    (col_of_row, total)
}

/// The dual potentials of a solved assignment: cost[i][j] - row[i] - col[j] >= 0 for every
/// pair, 0 on the chosen ones (what branch and bound needs to price a forced pair).
pub struct Duals {
    pub row: Vec<f64>,
    pub col: Vec<f64>,
}

/// `min_cost_assignment` with its dual potentials.
pub fn min_cost_assignment_with_duals(cost: &[Vec<f64>]) -> (Vec<usize>, f64, Duals) {
    let n = cost.len();
    if n == 0 {
        return (vec![], 0.0, Duals { row: vec![], col: vec![] });
    }
    let m = cost[0].len();
    assert!(n <= m, "min_cost_assignment needs rows <= columns, got {n} x {m}");
    // 1-based arrays as in the classic formulation; p[j] = row matched to column j.
    let inf = f64::INFINITY;
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; m + 1]);
    let (mut p, mut way) = (vec![0usize; m + 1], vec![0usize; m + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![inf; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = inf;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut col_of_row = vec![0; n];
    for j in 1..=m {
        if p[j] != 0 {
            col_of_row[p[j] - 1] = j - 1;
        }
    }
    let total = col_of_row.iter().enumerate().map(|(i, &j)| cost[i][j]).sum();
    (col_of_row, total, Duals { row: u[1..].to_vec(), col: v[1..].to_vec() })
}

/// Maximum-weight assignment (e.g. of a contingency table); rows <= columns.
pub fn max_weight_assignment(weight: &[Vec<f64>]) -> (Vec<usize>, f64) {
    let negated: Vec<Vec<f64>> = weight.iter().map(|r| r.iter().map(|w| -w).collect()).collect();
    let (assignment, total) = min_cost_assignment(&negated);
    (assignment, -total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn brute_force(cost: &[Vec<f64>]) -> f64 {
        fn go(cost: &[Vec<f64>], row: usize, used: &mut Vec<bool>) -> f64 {
            if row == cost.len() {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..cost[0].len() {
                if !used[j] {
                    used[j] = true;
                    best = best.min(cost[row][j] + go(cost, row + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        go(cost, 0, &mut vec![false; cost[0].len()])
    }

    #[test]
    fn matches_brute_force_on_random_problems() {
        let mut rng = Rng::new(11);
        for trial in 0..200 {
            let n = 1 + trial % 6;
            let m = n + trial % 2;
            let cost: Vec<Vec<f64>> = (0..n).map(|_| (0..m).map(|_| rng.uniform()).collect()).collect();
            let (assignment, total) = min_cost_assignment(&cost);
            let mut seen = assignment.clone();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), n, "not a matching");
            assert!((total - brute_force(&cost)).abs() < 1e-12, "trial {trial}");
        }
    }
}
