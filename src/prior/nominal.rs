//! Nominal classes: rank the classes by cosine similarity of their name embeddings.
use super::encoder::TextEncoder;
use super::{LabelPrior, PriorParams};
use crate::error::Result;

/// Cosine similarity matrix (c x c) of the class-name embeddings.
pub fn cosine_similarities(embeddings: &[Vec<f32>]) -> Vec<Vec<f64>> {
    let norms: Vec<f64> =
        embeddings.iter().map(|v| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt().max(1e-12)).collect();
    embeddings
        .iter()
        .enumerate()
        .map(|(i, a)| {
            embeddings
                .iter()
                .enumerate()
                .map(|(j, b)| a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>() / (norms[i] * norms[j]))
                .collect()
        })
        .collect()
}

/// r_i: class i first, then the others from most to least similar (ties by class index).
pub fn ranks_from_similarity(similarity: &[Vec<f64>]) -> Vec<Vec<usize>> {
    (0..similarity.len())
        .map(|i| {
            let mut others: Vec<usize> = (0..similarity.len()).filter(|&k| k != i).collect();
            others.sort_by(|&a, &b| similarity[i][b].total_cmp(&similarity[i][a]).then(a.cmp(&b)));
            std::iter::once(i).chain(others).collect()
        })
        .collect()
}

/// The nominal prior of the paper: class-name vectors -> cosine ranks -> t^, w.
pub fn nominal_prior(class_names: &[String], encoder: &dyn TextEncoder, params: PriorParams) -> Result<LabelPrior> {
    let embeddings = encoder.encode(class_names)?;
    let similarity = cosine_similarities(&embeddings);
    let ranks = ranks_from_similarity(&similarity);
    let vectors = embeddings.iter().map(|v| v.iter().map(|&x| x as f64).collect()).collect();
    LabelPrior::from_ranks(class_names.to_vec(), ranks, similarity, vectors, params)
}
