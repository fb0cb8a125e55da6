//! Naming by a person (beyond the paper): a person looks at the cluster sheets of a finished run
//! (`zerolabel clusters`) and gives every cluster of one seed a class name (`[classes]
//! cluster_names`, or `run --cluster-names FILE`). No image label is read: c decisions of a
//! person name the c clusters, and the classifier is the nearest cluster centre (member mean),
//! which outputs the name of its cluster.
//!
//! The names refer to the clusters of one seed, the *named seed* (`cluster_names_seed`, by
//! default the run's selected seed, whose sheets `zerolabel clusters` writes by default). The
//! clusters of every other seed are aligned to the named seed's by a Hungarian assignment on the
//! cosine similarity of their member means ([`super::consensus::align_to_reference`]) and take
//! the names of the clusters they are aligned to.
//!
//! Each class names exactly one cluster: the classifier keeps one centre per class (a
//! permutation, as for every other naming), so two clusters cannot share a class.
use super::consensus::align_to_reference;
use super::{named_centroids, NamedClassifier, Namer, NamingContext, NamingKind, NamingObserver};
use crate::error::{Error, Result};
use crate::matching::nearest_centroid_classifier;
use std::path::Path;
use tch::Tensor;

/// Checks a person's names against the run's classes and returns `class_of[cluster]`.
///
/// `given[k]` names cluster k; each must be one of `class_names` (compared without surrounding
/// spaces and without regard to case), one per cluster (there are as many clusters as classes),
/// each class once.
pub fn parse_cluster_names(given: &[String], class_names: &[String]) -> Result<Vec<usize>> {
    let c = class_names.len();
    if given.len() != c {
        return Err(Error::invalid(
            "classes.cluster_names",
            format!("{} name(s)", given.len()),
            format!("{c} names, one class name per cluster in cluster order (the run has {c} clusters, one per class)"),
        ));
    }
    let valid = || class_names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    let mut class_of = Vec::with_capacity(c);
    let mut cluster_of_class: Vec<Option<usize>> = vec![None; c];
    for (cluster, name) in given.iter().enumerate() {
        let wanted = name.trim();
        let class = class_names
            .iter()
            .position(|n| n == wanted)
            .or_else(|| class_names.iter().position(|n| n.to_lowercase() == wanted.to_lowercase()))
            .ok_or_else(|| Error::invalid("classes.cluster_names", format!("\"{wanted}\" (cluster {cluster})"), format!("one of the run's class names: {}", valid())))?;
        if let Some(first) = cluster_of_class[class] {
            return Err(Error::invalid(
                "classes.cluster_names",
                format!("\"{}\" given to clusters {first} and {cluster}", class_names[class]),
                "each class once (the classifier keeps one centre per class): give every cluster a different class",
            ));
        }
        cluster_of_class[class] = Some(cluster);
        class_of.push(class);
    }
    Ok(class_of)
}

/// The names of a `--cluster-names` file: one class name per line, in cluster order; blank lines
/// and everything after a `#` are ignored (so the file `zerolabel clusters` writes, with its
/// comments, can be edited and used as it is).
pub fn read_names_file(path: &Path) -> Result<Vec<String>> {
    let text = crate::data::checked::read_text(path)?;
    Ok(text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).map(str::to_string).collect())
}

/// The rows of a (k, D) tensor as f64 vectors.
pub fn rows_f64(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(Vec::<Vec<f64>>::try_from(t.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double))?)
}

/// Cosine similarity of two vectors (0 where one is zero, e.g. an empty cluster's mean).
fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.iter().map(|x| x * x).sum::<f64>().sqrt(), b.iter().map(|x| x * x).sum::<f64>().sqrt());
    if na < 1e-12 || nb < 1e-12 {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (na * nb)
}

/// One seed's names: `class_of[cluster]`, and how well its clusters match the named ones.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedNames {
    pub class_of: Vec<usize>,
    /// `reference_of[cluster]`: the named seed's cluster this cluster is aligned to (the
    /// identity for the named seed).
    pub reference_of: Vec<usize>,
    /// Mean cosine similarity between each cluster's member mean and that of the named cluster
    /// it is aligned to (1 for the named seed).
    pub alignment: f64,
}

/// Naming by a person, for the clusters of any seed.
pub struct PersonNamer {
    /// class_of[cluster of the named seed].
    class_of: Vec<usize>,
    named_seed: u64,
    /// (k, D) member means of the named seed's clusters.
    reference: Vec<Vec<f64>>,
}

impl PersonNamer {
    /// `class_of` from [`parse_cluster_names`]; `reference` the named seed's member means.
    pub fn new(class_of: Vec<usize>, named_seed: u64, reference: Vec<Vec<f64>>) -> Result<Self> {
        if reference.len() != class_of.len() {
            return Err(Error::invalid("classes.cluster_names", format!("{} name(s)", class_of.len()), format!("{} names, one per cluster of seed {named_seed}", reference.len())));
        }
        Ok(PersonNamer { class_of, named_seed, reference })
    }

    pub fn named_seed(&self) -> u64 {
        self.named_seed
    }

    /// class_of[cluster of the named seed].
    pub fn class_of(&self) -> &[usize] {
        &self.class_of
    }

    /// The names of `seed`'s clusters, whose member means are `means`.
    pub fn names_for(&self, seed: u64, means: &[Vec<f64>]) -> Result<SeedNames> {
        if means.len() != self.reference.len() {
            return Err(Error::invalid("n_clusters", means.len(), format!("{} clusters, as seed {} has", self.reference.len(), self.named_seed)));
        }
        if seed == self.named_seed {
            return Ok(SeedNames { class_of: self.class_of.clone(), reference_of: (0..means.len()).collect(), alignment: 1.0 });
        }
        let reference_of = align_to_reference(&self.reference, means);
        let class_of = reference_of.iter().map(|&r| self.class_of[r]).collect();
        let alignment = means.iter().zip(&reference_of).map(|(m, &r)| cosine(m, &self.reference[r])).sum::<f64>() / means.len().max(1) as f64;
        Ok(SeedNames { class_of, reference_of, alignment })
    }
}

impl Namer for PersonNamer {
    fn kind(&self) -> NamingKind {
        NamingKind::Person
    }

    fn steps(&self) -> usize {
        0
    }

    /// The nearest member mean, named by the person. Selection score (lower is better): -2 for
    /// the named seed (the clusters the person saw, always chosen), else minus the mean cosine
    /// of the alignment to them (in [-1, 1]).
    fn name_clusters(&self, ctx: &NamingContext, _start: Option<&[usize]>, seed: u64, _observer: &mut NamingObserver) -> Result<NamedClassifier> {
        let centres = &ctx.clusters.member_means;
        let names = self.names_for(seed, &rows_f64(centres)?)?;
        let classifier = nearest_centroid_classifier(&named_centroids(centres, &names.class_of));
        Ok(NamedClassifier {
            method: NamingKind::Person,
            initial: classifier.clone_detached(),
            classifier,
            class_of: names.class_of,
            selection_score: if seed == self.named_seed { -2.0 } else { -names.alignment },
            best_step: 0,
            geometry: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        ["cat", "dog", "car"].iter().map(|s| s.to_string()).collect()
    }

    fn given(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_checked_with_messages_naming_the_fault() {
        assert_eq!(parse_cluster_names(&given(&["car", " Cat ", "dog"]), &classes()).unwrap(), vec![2, 0, 1]);
        let e = parse_cluster_names(&given(&["car", "cat"]), &classes()).unwrap_err().to_string();
        assert!(e.contains("2 name(s)") && e.contains("expected 3 names") && e.contains("3 clusters"), "{e}");
        let e = parse_cluster_names(&given(&["car", "cat", "bird"]), &classes()).unwrap_err().to_string();
        assert!(e.contains("\"bird\" (cluster 2)") && e.contains("\"cat\", \"dog\", \"car\""), "{e}");
        let e = parse_cluster_names(&given(&["car", "cat", "car"]), &classes()).unwrap_err().to_string();
        assert!(e.contains("\"car\" given to clusters 0 and 2") && e.contains("each class once"), "{e}");
    }

    #[test]
    fn other_seeds_take_the_names_of_the_clusters_they_align_to() {
        let reference = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]];
        let namer = PersonNamer::new(vec![2, 0, 1], 5, reference.clone()).unwrap();
        assert_eq!(namer.names_for(5, &reference).unwrap().class_of, vec![2, 0, 1]);
        // Seed 6 has the same clusters in another order, slightly moved.
        let other = vec![vec![0.1, 0.0, 0.9], vec![0.9, 0.1, 0.0], vec![0.0, 1.0, 0.1]];
        let names = namer.names_for(6, &other).unwrap();
        assert_eq!(names.reference_of, vec![2, 0, 1]);
        assert_eq!(names.class_of, vec![1, 2, 0]);
        assert!(names.alignment > 0.98 && names.alignment < 1.0, "{}", names.alignment);
        assert!(namer.names_for(6, &other[..2]).is_err());
    }
}
