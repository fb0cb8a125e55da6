//! Ordinal classes (age groups, grades): class j's rank for class i follows |i - j|, so no word
//! vectors are needed. Ties (j = i - d and j = i + d) go to the lower class first.
use super::{LabelPrior, PriorParams};
use crate::error::Result;

pub fn ordinal_ranks(c: usize) -> Vec<Vec<usize>> {
    (0..c)
        .map(|i| {
            let mut order: Vec<usize> = (0..c).collect();
            order.sort_by_key(|&j| (i.abs_diff(j), j));
            order
        })
        .collect()
}

/// The ordinal prior: classes given in their natural order.
pub fn ordinal_prior(class_names: &[String], params: PriorParams) -> Result<LabelPrior> {
    let c = class_names.len();
    let similarity = (0..c).map(|i| (0..c).map(|j| -(i.abs_diff(j) as f64)).collect()).collect();
    let positions = (0..c).map(|i| vec![i as f64]).collect();
    let prior = LabelPrior::from_ranks(class_names.to_vec(), ordinal_ranks(c), similarity, positions, params)?;
    Ok(LabelPrior { ordinal: true, ..prior })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_distance() {
        let r = ordinal_ranks(5);
        assert_eq!(r[0], vec![0, 1, 2, 3, 4]);
        assert_eq!(r[2], vec![2, 1, 3, 0, 4]);
        assert_eq!(r[4], vec![4, 3, 2, 1, 0]);
    }
}
