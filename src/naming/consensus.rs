//! Consensus of the namings of several seeds (issue 13, item 3).
//!
//! Each seed clusters on its own, so cluster j of one seed is not cluster j of another. The
//! clusters of every seed are first aligned to a reference seed (Hungarian assignment on the
//! cosine similarity of their centroids); then either every reference cluster takes the name
//! most seeds gave its aligned clusters (a vote, made a permutation by Hungarian assignment on
//! the vote counts), or the aligned centroids are averaged and that mean geometry is named once.
use crate::assignment::max_weight_assignment;
use crate::naming::qap::cosine_matrix;
use serde::Serialize;

/// `reference_of[j]`: the reference cluster that cluster j of `other` is aligned to (a
/// permutation; both sets have the same number of centroids).
pub fn align_to_reference(reference: &[Vec<f64>], other: &[Vec<f64>]) -> Vec<usize> {
    let mut both: Vec<Vec<f64>> = other.to_vec();
    both.extend_from_slice(reference);
    let cos = cosine_matrix(&both);
    let k = other.len();
    let similarity: Vec<Vec<f64>> = (0..k).map(|j| (0..reference.len()).map(|r| cos[j][k + r]).collect()).collect();
    max_weight_assignment(&similarity).0
}

/// The vote of the seeds, in the reference's cluster order.
#[derive(Clone, Debug, Serialize)]
pub struct Consensus {
    /// class_of[reference cluster].
    pub class_of: Vec<usize>,
    /// Share of (seed, cluster) pairs whose own name equals the consensus name of the
    /// reference cluster it is aligned to.
    pub agreement: f64,
    /// Per reference cluster, the share of seeds that agree with the consensus.
    pub per_cluster_agreement: Vec<f64>,
}

/// Consensus of `namings[s][j]` (class of cluster j of seed s), with `alignments[s][j]` the
/// reference cluster of cluster j of seed s (the reference seed's own alignment is the identity).
/// Where several namings get the same number of votes, the one closest to seed `tie_breaker`'s
/// own names wins (the run's selected seed), not whichever the assignment solver meets first.
pub fn vote(namings: &[Vec<usize>], alignments: &[Vec<usize>], tie_breaker: Option<usize>) -> Consensus {
    let c = namings.first().map_or(0, Vec::len);
    let mut votes = vec![vec![0.0; c]; c];
    for (naming, alignment) in namings.iter().zip(alignments) {
        for (j, &class) in naming.iter().enumerate() {
            votes[alignment[j]][class] += 1.0;
        }
    }
    let class_of = max_weight_assignment(&with_tie_break(&votes, tie_breaker.map(|s| (&namings[s], &alignments[s])))).0;
    let seeds = namings.len().max(1) as f64;
    let per_cluster_agreement: Vec<f64> = (0..c).map(|r| votes[r][class_of[r]] / seeds).collect();
    let agreement = per_cluster_agreement.iter().sum::<f64>() / c.max(1) as f64;
    Consensus { class_of, agreement, per_cluster_agreement }
}

/// The vote counts plus, for each cluster, less than 1/c for the tie-breaking seed's own name:
/// all c bonuses together stay below one vote, so they only order namings with equal counts.
fn with_tie_break(votes: &[Vec<f64>], tie_breaker: Option<(&Vec<usize>, &Vec<usize>)>) -> Vec<Vec<f64>> {
    let mut weights = votes.to_vec();
    if let Some((naming, alignment)) = tie_breaker {
        let bonus = 0.5 / votes.len().max(1) as f64;
        naming.iter().zip(alignment).for_each(|(&class, &r)| weights[r][class] += bonus);
    }
    weights
}

/// The consensus name of each cluster of one seed: the consensus of its reference cluster.
pub fn names_for_seed(consensus: &Consensus, alignment: &[usize]) -> Vec<usize> {
    alignment.iter().map(|&r| consensus.class_of[r]).collect()
}

/// The mean of the aligned centroids: row r averages, over seeds, the centroid aligned to
/// reference cluster r.
pub fn mean_aligned_geometry(centroids: &[Vec<Vec<f64>>], alignments: &[Vec<usize>]) -> Vec<Vec<f64>> {
    let Some(first) = centroids.first() else { return vec![] };
    let (k, d) = (first.len(), first.first().map_or(0, Vec::len));
    let mut mean = vec![vec![0.0; d]; k];
    for (set, alignment) in centroids.iter().zip(alignments) {
        for (j, row) in set.iter().enumerate() {
            mean[alignment[j]].iter_mut().zip(row).for_each(|(m, x)| *m += x);
        }
    }
    let seeds = centroids.len() as f64;
    mean.into_iter().map(|row| row.into_iter().map(|x| x / seeds).collect()).collect()
}

/// The consensus of a run's seeds: each seed's clusters aligned to the reference seed's by their
/// centres, the seeds' geometry names voted, and the vote carried back to every seed's clusters.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct SeedsConsensus {
    /// The seed whose clusters the vote is expressed in (the run's selected seed).
    pub reference_seed: u64,
    pub seeds: Vec<u64>,
    /// The seeds whose names were voted: those whose names were trusted where there are any,
    /// else every seed (records written before it was kept: empty, every seed voted).
    #[serde(default)]
    pub voters: Vec<u64>,
    /// class_of[cluster] of each seed (in `seeds` order) under the consensus.
    pub class_of: Vec<Vec<usize>>,
    /// Share of (seed, cluster) pairs whose own name is the consensus name.
    pub agreement: f64,
    /// Per cluster of the reference seed, the share of seeds that agree with its consensus name.
    pub per_cluster_agreement: Vec<f64>,
}

/// A run's consensus, as `consensus.json` keeps it and the report shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ConsensusRun {
    #[serde(flatten)]
    pub consensus: SeedsConsensus,
    /// Whether `model.json` uses the consensus classifier (the chain is the geometry naming).
    pub is_model: bool,
    /// Test accuracy of each seed's consensus classifier (in `consensus.seeds` order); labels
    /// are read only to report it.
    pub accuracy: Option<Vec<f64>>,
    /// The label-free trust of the voted names of the reference seed's clusters (the same
    /// posterior over namings as each seed's own names), where they name the model.
    #[serde(default)]
    pub trust: Option<crate::naming::NameTrust>,
    /// Each seed's test predictions under the vote (not saved: the classifiers are).
    #[serde(skip)]
    pub test_predictions: Vec<Vec<i64>>,
}

/// Votes the namings `namings[s]` of clusters with centres `centres[s]` (one entry per seed, in
/// `seeds` order), in the cluster order of `seeds[reference]`. Where some seeds' names are
/// `trusted`, only those vote: names the jury trusts are not outvoted by guesses (a seed whose
/// k-means clusters replaced unbalanced Sinkhorn ones, beside seeds that kept theirs).
pub fn over_seeds(seeds: &[u64], reference: usize, centres: &[Vec<Vec<f64>>], namings: &[Vec<usize>], trusted: &[bool]) -> SeedsConsensus {
    let alignments: Vec<Vec<usize>> = centres.iter().map(|c| align_to_reference(&centres[reference], c)).collect();
    let any_trusted = trusted.iter().any(|&t| t);
    let voters: Vec<usize> = (0..seeds.len()).filter(|&s| !any_trusted || trusted.get(s).copied().unwrap_or(false)).collect();
    let pick = |all: &[Vec<usize>]| -> Vec<Vec<usize>> { voters.iter().map(|&s| all[s].clone()).collect() };
    let consensus = vote(&pick(namings), &pick(&alignments), voters.iter().position(|&s| s == reference));
    SeedsConsensus {
        reference_seed: seeds[reference],
        seeds: seeds.to_vec(),
        voters: voters.iter().map(|&s| seeds[s]).collect(),
        class_of: alignments.iter().map(|a| names_for_seed(&consensus, a)).collect(),
        agreement: consensus.agreement,
        per_cluster_agreement: consensus.per_cluster_agreement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn alignment_recovers_a_shuffled_noisy_copy() {
        let mut rng = Rng::new(3);
        let reference: Vec<Vec<f64>> = (0..8).map(|_| (0..16).map(|_| rng.normal()).collect()).collect();
        let mut order: Vec<usize> = (0..8).collect();
        rng.shuffle(&mut order);
        let other: Vec<Vec<f64>> = order.iter().map(|&r| reference[r].iter().map(|x| x + 0.1 * rng.normal()).collect()).collect();
        assert_eq!(align_to_reference(&reference, &other), order);
    }

    #[test]
    fn vote_takes_the_majority_and_reports_agreement() {
        // Three seeds, clusters in different orders; seed 2 swaps the names of two clusters.
        let alignments = vec![vec![0, 1, 2], vec![2, 0, 1], vec![0, 1, 2]];
        let namings = vec![vec![2, 1, 0], vec![0, 2, 1], vec![1, 2, 0]];
        // Reference cluster 0: seed0 says 2, seed1 (its cluster 1) says 2, seed2 says 1 -> 2.
        let consensus = vote(&namings, &alignments, None);
        assert_eq!(consensus.class_of, vec![2, 1, 0]);
        assert!((consensus.agreement - 7.0 / 9.0).abs() < 1e-12, "{}", consensus.agreement);
        assert_eq!(names_for_seed(&consensus, &alignments[1]), vec![0, 2, 1]);
    }

    #[test]
    fn seeds_consensus_overrules_a_minority_seed_in_every_seed_order() {
        // Three seeds cluster the same 4 centres in different orders; seed 11 swaps two names.
        let mut rng = Rng::new(5);
        let truth: Vec<Vec<f64>> = (0..4).map(|_| (0..6).map(|_| rng.normal()).collect()).collect();
        let orders = [vec![0, 1, 2, 3], vec![3, 2, 1, 0], vec![1, 0, 3, 2]];
        let centres: Vec<Vec<Vec<f64>>> = orders.iter().map(|o| o.iter().map(|&t| truth[t].clone()).collect()).collect();
        // The true class of the cluster holding centre t is t; seed 11 calls classes 0 and 1 the other way.
        let mut namings: Vec<Vec<usize>> = orders.to_vec();
        for class in namings[1].iter_mut() {
            *class = match *class { 0 => 1, 1 => 0, c => c };
        }
        let consensus = over_seeds(&[10, 11, 12], 2, &centres, &namings, &[false; 3]);
        assert_eq!(consensus.reference_seed, 12);
        assert_eq!(consensus.class_of, orders.to_vec(), "every seed gets the majority's names in its own cluster order");
        assert!((consensus.agreement - 10.0 / 12.0).abs() < 1e-12, "{}", consensus.agreement);
        assert_eq!(consensus.voters, vec![10, 11, 12]);
        // Where only seed 11's names are trusted, its names win although the others agree.
        let consensus = over_seeds(&[10, 11, 12], 1, &centres, &namings, &[false, true, false]);
        assert_eq!(consensus.voters, vec![11]);
        assert_eq!(consensus.class_of[1], namings[1], "the trusted seed keeps its own names");
        let swapped = |o: &Vec<usize>| o.iter().map(|&t| match t { 0 => 1, 1 => 0, c => c }).collect::<Vec<usize>>();
        assert_eq!(consensus.class_of[0], swapped(&orders[0]), "the untrusted seeds get the trusted seed's names");
        assert_eq!(consensus.agreement, 1.0);
    }

    #[test]
    fn a_tied_vote_keeps_the_reference_seeds_names() {
        // Two seeds disagree on clusters 0 and 1: both namings get 4 of 6 votes.
        let (identity, namings) = (vec![vec![0, 1, 2]; 2], vec![vec![0, 1, 2], vec![1, 0, 2]]);
        assert_eq!(vote(&namings, &identity, Some(0)).class_of, namings[0]);
        assert_eq!(vote(&namings, &identity, Some(1)).class_of, namings[1]);
        let tied = vote(&namings, &identity, Some(1));
        assert!((tied.agreement - 4.0 / 6.0).abs() < 1e-12, "the tie-break adds no votes: {}", tied.agreement);
        // A strict majority is not overruled by the reference seed.
        let three = vec![vec![0, 1, 2], vec![1, 0, 2], vec![1, 0, 2]];
        assert_eq!(vote(&three, &vec![vec![0, 1, 2]; 3], Some(0)).class_of, vec![1, 0, 2]);
        // Through over_seeds, the reference (selected) seed breaks the tie in every seed order.
        let centres: Vec<Vec<Vec<f64>>> = vec![vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]]; 2];
        for reference in 0..2 {
            let consensus = over_seeds(&[7, 8], reference, &centres, &namings, &[true, true]);
            assert_eq!(consensus.class_of[reference], namings[reference], "reference {reference}");
            assert_eq!(consensus.class_of[1 - reference], namings[reference]);
        }
    }

    #[test]
    fn mean_geometry_averages_aligned_rows() {
        let a = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let b = vec![vec![0.0, 3.0], vec![3.0, 0.0]];
        let mean = mean_aligned_geometry(&[a, b], &[vec![0, 1], vec![1, 0]]);
        assert_eq!(mean, vec![vec![2.0, 0.0], vec![0.0, 2.0]]);
    }
}
