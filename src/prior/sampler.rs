//! Drawing prior samples S_P (method.md, "Sampling"): class i ~ alpha, take t^_i and randomly
//! permute the values at its `shuffle_tail` most dissimilar positions.
//!
//! A sample can only be one of c x tail! distinct vectors (60 for c = 10), so we enumerate them
//! once as "atoms" and draw a batch as atom counts. Stage III then solves OT against at most 60
//! weighted atoms instead of B = 500 copies: the entropic plan to identical copies is the same
//! for each copy, so nothing changes but the cost.
use super::LabelPrior;
use crate::rng::Rng;
use tch::Tensor;

/// The distinct prior vectors with their weight vectors and probabilities.
#[derive(Debug)]
pub struct PriorAtoms {
    /// (K, c) f32: one possible prior sample a row.
    pub targets: Tensor,
    /// (K, c) f32: w of each atom, following its own (permuted) rank vector, eq. 2.
    pub weights: Tensor,
    /// Probability of each atom (alpha_i / tail!).
    pub probability: Vec<f64>,
    /// Class whose t^ the atom came from.
    pub class_of: Vec<usize>,
}

fn permutations(m: usize) -> Vec<Vec<usize>> {
    if m == 0 {
        return vec![vec![]];
    }
    let mut out = vec![];
    for rest in permutations(m - 1) {
        for pos in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(pos, m - 1);
            out.push(p);
        }
    }
    out.sort();
    out
}

impl PriorAtoms {
    pub fn new(prior: &LabelPrior) -> Self {
        let c = prior.n_classes();
        let tail = prior.params.shuffle_tail.min(c - 1);
        let perms = permutations(tail);
        let (mut targets, mut weights, mut probability, mut class_of) = (vec![], vec![], vec![], vec![]);
        for i in 0..c {
            let rank = &prior.ranks[i];
            let values: Vec<f64> = rank.iter().map(|&k| prior.targets[i][k]).collect();
            let wts: Vec<f64> = rank.iter().map(|&k| prior.weights[i][k]).collect();
            for perm in &perms {
                let (mut t, mut w) = (vec![0f32; c], vec![0f32; c]);
                for p in 0..c {
                    let source = if p >= c - tail { c - tail + perm[p - (c - tail)] } else { p };
                    t[rank[p]] = values[source] as f32;
                    w[rank[p]] = wts[source] as f32;
                }
                targets.extend(t);
                weights.extend(w);
                probability.push(prior.alpha[i] / perms.len() as f64);
                class_of.push(i);
            }
        }
        let k = probability.len() as i64;
        PriorAtoms {
            targets: Tensor::from_slice(&targets).view([k, c as i64]),
            weights: Tensor::from_slice(&weights).view([k, c as i64]),
            probability,
            class_of,
        }
    }

    pub fn len(&self) -> usize {
        self.probability.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probability.is_empty()
    }
}

/// Draws batches of prior samples as counts per atom.
pub struct PriorSampler {
    cumulative: Vec<f64>,
    /// Review-code variant: a fixed pool of atom indices drawn once; batches are drawn from it
    /// with replacement.
    pool: Option<Vec<usize>>,
    rng: Rng,
}

impl PriorSampler {
    pub fn new(atoms: &PriorAtoms, pool_size: Option<usize>, mut rng: Rng) -> Self {
        let mut acc = 0.0;
        let cumulative: Vec<f64> = atoms.probability.iter().map(|p| { acc += p; acc }).collect();
        let pool = pool_size.map(|n| (0..n).map(|_| rng.categorical(&cumulative)).collect());
        PriorSampler { cumulative, pool, rng }
    }

    /// Counts per atom of a batch of `batch_size` prior samples.
    pub fn sample_counts(&mut self, batch_size: usize) -> Vec<u32> {
        let mut counts = vec![0u32; self.cumulative.len()];
        for _ in 0..batch_size {
            let atom = match &self.pool {
                Some(pool) => pool[self.rng.below(pool.len())],
                None => self.rng.categorical(&self.cumulative),
            };
            counts[atom] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prior::{ordinal::ordinal_prior, PriorParams};

    #[test]
    fn atoms_permute_only_the_tail_and_weights_follow_values() {
        let names: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
        let prior = ordinal_prior(&names, PriorParams::default()).unwrap();
        let atoms = PriorAtoms::new(&prior);
        assert_eq!(atoms.len(), 6 * 6);
        let t = Vec::<Vec<f32>>::try_from(&atoms.targets).unwrap();
        let w = Vec::<Vec<f32>>::try_from(&atoms.weights).unwrap();
        for (a, row) in t.iter().enumerate() {
            let i = atoms.class_of[a];
            // The head (target, 2nd, 3rd) is never permuted.
            for p in 0..3 {
                let k = prior.ranks[i][p];
                assert!((row[k] as f64 - prior.targets[i][k]).abs() < 1e-6);
            }
            // Each value keeps its weight.
            for k in 0..6 {
                let p = prior.ranks[i].iter().position(|&q| prior.targets[i][q] as f32 == row[k]).unwrap();
                assert!((w[a][k] as f64 - prior.weights[i][prior.ranks[i][p]]).abs() < 1e-6);
            }
        }
        let total: f64 = atoms.probability.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn counts_sum_to_batch_and_pool_is_deterministic() {
        let names: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
        let prior = ordinal_prior(&names, PriorParams::default()).unwrap();
        let atoms = PriorAtoms::new(&prior);
        let mut a = PriorSampler::new(&atoms, Some(1000), Rng::new(5));
        let mut b = PriorSampler::new(&atoms, Some(1000), Rng::new(5));
        let ca = a.sample_counts(500);
        assert_eq!(ca.iter().sum::<u32>(), 500);
        assert_eq!(ca, b.sample_counts(500));
    }
}
