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
    let flat: Vec<f64> = cost.iter().flat_map(|r| r.iter().copied()).collect();
    let mut solver = AssignmentSolver::default();
    let total = solver.solve(&flat, n, m);
    let AssignmentSolver { col_of_row, row_dual, col_dual, .. } = solver;
    (col_of_row, total, Duals { row: row_dual, col: col_dual })
}

/// The Hungarian algorithm on a flat row-major matrix with reusable buffers: the branch and
/// bound of `naming::certified` solves hundreds of small assignments per node, where the
/// allocations of the nested-vector form cost as much as the arithmetic.
#[derive(Default)]
pub struct AssignmentSolver {
    /// Column of each row after `solve`.
    pub col_of_row: Vec<usize>,
    /// Dual potentials after `solve`: cost[i][j] - row_dual[i] - col_dual[j] >= 0, 0 on the
    /// chosen pairs.
    pub row_dual: Vec<f64>,
    pub col_dual: Vec<f64>,
    // 1-based work arrays of the classic formulation; row_of_col[j] = row matched to column j.
    u: Vec<f64>,
    v: Vec<f64>,
    row_of_col: Vec<usize>,
    way: Vec<usize>,
    min_reduced: Vec<f64>,
    used: Vec<bool>,
    /// Rows left for the augmenting-path phase.
    unmatched: Vec<usize>,
}

impl AssignmentSolver {
    /// Minimum-cost assignment of the n rows of `cost` (n x m, row-major, n <= m) to distinct
    /// columns; returns the total cost. A square matrix starts from its column and row
    /// reductions with every row matched greedily to a free column of reduced cost 0, so a
    /// matrix that is nearly solved already (the dual ascent's blocks) needs few augmentations.
    pub fn solve(&mut self, cost: &[f64], n: usize, m: usize) -> f64 {
        assert!(n <= m && cost.len() == n * m, "assignment needs an n x m matrix with n <= m, got {} entries for {n} x {m}", cost.len());
        let inf = f64::INFINITY;
        self.u.clear();
        self.u.resize(n + 1, 0.0);
        self.v.clear();
        self.v.resize(m + 1, 0.0);
        self.row_of_col.clear();
        self.row_of_col.resize(m + 1, 0);
        self.way.clear();
        self.way.resize(m + 1, 0);
        self.unmatched.clear();
        if n == m {
            self.reduce_and_match_greedily(cost, n);
        } else {
            self.unmatched.extend(1..=n);
        }
        for k in 0..self.unmatched.len() {
            let i = self.unmatched[k];
            self.row_of_col[0] = i;
            let mut j0 = 0;
            self.min_reduced.clear();
            self.min_reduced.resize(m + 1, inf);
            self.used.clear();
            self.used.resize(m + 1, false);
            loop {
                self.used[j0] = true;
                let i0 = self.row_of_col[j0];
                let row = &cost[(i0 - 1) * m..i0 * m];
                let ui0 = self.u[i0];
                let (mut delta, mut j1) = (inf, 0);
                // Columns 1..=m zipped, so the hot loop carries no bounds checks.
                let columns = self.used[1..].iter().zip(&mut self.min_reduced[1..]).zip(&mut self.way[1..]).zip(&self.v[1..]).zip(row);
                for (j, ((((&used, min_reduced), way), &vj), &c)) in columns.enumerate() {
                    if !used {
                        let cur = c - ui0 - vj;
                        if cur < *min_reduced {
                            *min_reduced = cur;
                            *way = j0;
                        }
                        if *min_reduced < delta {
                            delta = *min_reduced;
                            j1 = j + 1;
                        }
                    }
                }
                for j in 0..=m {
                    if self.used[j] {
                        self.u[self.row_of_col[j]] += delta;
                        self.v[j] -= delta;
                    } else {
                        self.min_reduced[j] -= delta;
                    }
                }
                j0 = j1;
                if self.row_of_col[j0] == 0 {
                    break;
                }
            }
            loop {
                let j1 = self.way[j0];
                self.row_of_col[j0] = self.row_of_col[j1];
                j0 = j1;
                if j0 == 0 {
                    break;
                }
            }
        }
        self.col_of_row.clear();
        self.col_of_row.resize(n, 0);
        for j in 1..=m {
            if self.row_of_col[j] != 0 {
                self.col_of_row[self.row_of_col[j] - 1] = j - 1;
            }
        }
        self.row_dual.clear();
        self.row_dual.extend_from_slice(&self.u[1..]);
        self.col_dual.clear();
        self.col_dual.extend_from_slice(&self.v[1..]);
        self.col_of_row.iter().enumerate().map(|(i, &j)| cost[i * m + j]).sum()
    }

    /// Feasible starting potentials for a square n x n matrix (column minima, then row minima
    /// of what is left) and a partial matching on their zero reduced costs; the rows it leaves
    /// unmatched go to `unmatched`.
    fn reduce_and_match_greedily(&mut self, cost: &[f64], n: usize) {
        for j in 0..n {
            self.v[j + 1] = (0..n).map(|i| cost[i * n + j]).fold(f64::INFINITY, f64::min);
        }
        for i in 0..n {
            let row = &cost[i * n..(i + 1) * n];
            let ui = row.iter().zip(&self.v[1..]).map(|(c, v)| c - v).fold(f64::INFINITY, f64::min);
            self.u[i + 1] = ui;
            let tight_free = (0..n).find(|&j| self.row_of_col[j + 1] == 0 && row[j] - ui - self.v[j + 1] <= 0.0);
            match tight_free {
                Some(j) => self.row_of_col[j + 1] = i + 1,
                None => self.unmatched.push(i + 1),
            }
        }
    }
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

    /// The greedy start on zero reduced costs must not lose optimality where ties abound, and
    /// one solver's buffers must serve problems of any size in turn.
    #[test]
    fn one_solver_reused_on_tied_problems_matches_brute_force_with_tight_duals() {
        let mut rng = Rng::new(12);
        let mut solver = AssignmentSolver::default();
        for trial in 0..300 {
            let n = 1 + (trial * 7) % 7;
            let cost: Vec<Vec<f64>> = (0..n).map(|_| (0..n).map(|_| (rng.uniform() * 3.0).floor()).collect()).collect();
            let flat: Vec<f64> = cost.iter().flatten().copied().collect();
            let total = solver.solve(&flat, n, n);
            assert!((total - brute_force(&cost)).abs() < 1e-12, "trial {trial}: {total} against {}", brute_force(&cost));
            let mut seen = solver.col_of_row.clone();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), n, "trial {trial}: not a matching");
            for i in 0..n {
                for j in 0..n {
                    let reduced = cost[i][j] - solver.row_dual[i] - solver.col_dual[j];
                    assert!(reduced >= -1e-12, "trial {trial}: infeasible dual at ({i}, {j}): {reduced}");
                    if solver.col_of_row[i] == j {
                        assert!(reduced.abs() < 1e-12, "trial {trial}: chosen pair ({i}, {j}) not tight");
                    }
                }
            }
        }
    }
}
