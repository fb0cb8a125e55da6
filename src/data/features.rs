//! Feature matrices, the hand-over between stage I and stages II-III.
//!
//! Layout: a safetensors file with tensor `features` (N x D, float32; f64/f16/bf16 accepted)
//! and optionally `labels` (N, int64; other integer types accepted), or a `.npy` matrix with
//! labels in a separate `.npy`. Labels are only ever passed on to evaluation.
use crate::data::npy;
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;
use tch::Tensor;

/// A loaded feature file: the matrix, and labels when the file has them (evaluation only).
pub struct FeatureFile {
    /// (N, D) f32, as stored (not yet normalised).
    pub features: Tensor,
    /// (N) ground-truth class indices, when present.
    pub labels: Option<Vec<i64>>,
}

/// Loads features (and labels, from the same safetensors file or from `labels_path`).
pub fn load_features(path: &Path, labels_path: Option<&Path>) -> Result<FeatureFile> {
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")));
    }
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let bytes = super::checked::read_file(path)?;
    let mut file = parse_features(&bytes, path, is_npy)?;
    if let Some(lp) = labels_path {
        let labels = read_label_npy(lp)?;
        let n = file.features.size()[0] as usize;
        if labels.len() != n {
            return Err(Error::format(lp, format!("{} labels for {n} feature rows", labels.len())));
        }
        file.labels = Some(labels);
    }
    Ok(file)
}

/// Labels in feature files are class indices: negative or absurdly large values are damage,
/// refused at read time rather than met later as an index out of bounds.
pub const MAX_LABEL: i64 = 1_000_000;

fn check_label_values(labels: &[i64], source: &Path) -> Result<()> {
    if let Some((row, bad)) = labels.iter().enumerate().find(|(_, l)| !(0..MAX_LABEL).contains(*l)) {
        return Err(Error::format(source, format!("label {bad} at row {row} is not a class index (expected 0..{MAX_LABEL})")));
    }
    Ok(())
}

/// Parses the bytes of a feature file (`.npy` when `is_npy`, else safetensors) and checks it:
/// 2-D, not empty, finite, labels (when present) one per row and class indices.
pub fn parse_features(bytes: &[u8], path: &Path, is_npy: bool) -> Result<FeatureFile> {
    let (n, d, values, labels) = if is_npy {
        let array = npy::parse_npy(bytes, path)?;
        if array.shape.len() != 2 {
            return Err(Error::format(path, format!("features must be a 2-D (N x D) array, got shape {:?}", array.shape)));
        }
        if matches!(array.dtype, npy::DType::Bool) {
            return Err(Error::format(path, "features must be numbers, got a boolean array"));
        }
        (array.shape[0], array.shape[1], array.to_f32_c_order(), None)
    } else {
        parse_safetensors_features(bytes, path)?
    };
    if n == 0 || d == 0 {
        return Err(Error::format(path, format!("features are empty: shape ({n}, {d})")));
    }
    if let Some(k) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: format!("features in {}", path.display()), row: k / d, col: k % d });
    }
    if let Some(l) = &labels {
        if l.len() != n {
            return Err(Error::format(path, format!("{} labels for {n} feature rows", l.len())));
        }
        check_label_values(l, path)?;
    }
    if Some(values.len()) != n.checked_mul(d) {
        return Err(Error::format(path, format!("{} values for shape ({n}, {d})", values.len())));
    }
    let features = Tensor::from_slice(&values).f_view([n as i64, d as i64])?;
    Ok(FeatureFile { features, labels })
}

fn read_label_npy(path: &Path) -> Result<Vec<i64>> {
    let array = npy::read_npy(path)?;
    if array.shape.len() > 2 || (array.shape.len() == 2 && array.shape[1] != 1) {
        return Err(Error::format(path, format!("labels must have shape (N) or (N, 1), got {:?}", array.shape)));
    }
    let labels = array.to_i64_c_order().ok_or_else(|| Error::format(path, "labels must be integers, got a float array"))?;
    check_label_values(&labels, path)?;
    Ok(labels)
}

type Parsed = (usize, usize, Vec<f32>, Option<Vec<i64>>);

fn parse_safetensors_features(bytes: &[u8], path: &Path) -> Result<Parsed> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::format(path, format!("not a safetensors file ({e}); features must be .safetensors or .npy"))
    })?;
    let view = file.tensor("features").map_err(|_| {
        Error::format(path, format!("no tensor named 'features' (found: {})", file.names().join(", ")))
    })?;
    let shape = view.shape();
    if shape.len() != 2 {
        return Err(Error::format(path, format!("'features' must be 2-D (N x D), got shape {shape:?}")));
    }
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F64 => data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32).collect(),
        Dtype::F16 | Dtype::BF16 => {
            let kind = if view.dtype() == Dtype::F16 { tch::Kind::Half } else { tch::Kind::BFloat16 };
            let t = Tensor::f_from_data_size(data, &[data.len() as i64 / 2], kind)?.f_to_kind(tch::Kind::Float)?;
            Vec::<f32>::try_from(&t)?
        }
        other => return Err(Error::format(path, format!("'features' has dtype {other:?}, expected F32 (or F64/F16/BF16)"))),
    };
    let labels = match file.tensor("labels") {
        Err(_) => None,
        Ok(l) => {
            let ld = l.data();
            let values: Vec<i64> = match l.dtype() {
                Dtype::I64 => ld.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect(),
                Dtype::I32 => ld.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect(),
                Dtype::U8 => ld.iter().map(|&b| b as i64).collect(),
                other => return Err(Error::format(path, format!("'labels' has dtype {other:?}, expected I64"))),
            };
            Some(values)
        }
    };
    Ok((shape[0], shape[1], values, labels))
}

/// Writes several feature files so that either all of them are replaced or none: each is
/// written under a temporary name first, and renamed only when every one was written (a
/// failure on the test split must not leave a new train file beside an old test file).
pub fn save_features_together(files: &[(&Path, &Tensor, Option<&[i64]>)]) -> Result<()> {
    let mut staged = Vec::new();
    for (path, features, labels) in files {
        let tmp = crate::io::temporary_path(path);
        if let Err(e) = save_features(&tmp, features, *labels) {
            for (t, _) in &staged {
                let _ = std::fs::remove_file(t);
            }
            return Err(e);
        }
        staged.push((tmp, path.to_path_buf()));
    }
    crate::io::rename_all(&staged)
}

/// Writes features (and labels) in the layout `load_features` reads, atomically.
pub fn save_features(path: &Path, features: &Tensor, labels: Option<&[i64]>) -> Result<()> {
    let features = features.to_kind(tch::Kind::Float);
    match labels {
        Some(l) => crate::io::write_safetensors_atomic(path, &[("features", &features), ("labels", &Tensor::from_slice(l))]),
        None => crate::io::write_safetensors_atomic(path, &[("features", &features)]),
    }
}

/// Rows scaled to unit L2 norm (zero rows stay zero), whatever their magnitude: user features
/// (a feature file, a TorchScript model's outputs) can be 1e30 or 1e-30, whose f32 squares
/// overflow or vanish (`rescale_extreme_rows`).
pub fn l2_normalize(features: &Tensor) -> Tensor {
    let features = rescale_extreme_rows(features);
    let norms = features.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
    features / norms
}

/// Rows whose largest magnitude lies outside [1e-15, 1e15] divided by that magnitude, so that
/// their squares fit in f32: 1e30 would overflow to an infinite norm and 1e-30 vanish, both
/// silently turning real directions into zero rows. Other rows stay bit for bit.
fn rescale_extreme_rows(features: &Tensor) -> Tensor {
    let largest = features.abs().amax([1i64].as_slice(), true);
    let extreme = largest.gt(1e15).logical_or(&largest.lt(1e-15).logical_and(&largest.gt(0.0)));
    features / largest.where_self(&extreme, &largest.ones_like())
}

/// How many different rows `features` has, counted up to `at_least` (so a healthy matrix is
/// read only until its first `at_least` distinct rows).
pub fn count_distinct_rows(features: &Tensor, at_least: usize) -> Result<usize> {
    const CHUNK: i64 = 1024;
    let (n, d) = (features.size()[0], features.size()[1] as usize);
    let mut seen = std::collections::HashSet::new();
    let mut start = 0;
    while start < n && seen.len() < at_least {
        let chunk = features.narrow(0, start, CHUNK.min(n - start)).to_kind(tch::Kind::Float).to_device(tch::Device::Cpu).contiguous();
        let values = Vec::<f32>::try_from(&chunk.view([-1]))?;
        seen.extend(values.chunks_exact(d.max(1)).map(|row| row.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()));
        start += CHUNK;
    }
    Ok(seen.len().min(at_least))
}

/// Both splits shifted by the train split's mean row (the test split never shapes the shift).
pub fn centre_on_train(train: &Tensor, test: &Tensor) -> (Tensor, Tensor) {
    let mean = train.mean_dim([0i64].as_slice(), true, tch::Kind::Float);
    (train - &mean, test - &mean)
}

/// Checks labels against the class count: every label in 0..c.
pub fn check_labels(labels: &[i64], n_classes: usize, source: &Path) -> Result<()> {
    if let Some((row, bad)) = labels.iter().enumerate().find(|(_, l)| **l < 0 || **l >= n_classes as i64) {
        return Err(Error::format(
            source,
            format!("label {bad} at row {row} is outside 0..{n_classes} ({n_classes} class names were given)"),
        ));
    }
    Ok(())
}

/// The evaluation labels must name as many classes as the class names do (checked before any
/// training, so that a wrong class list fails in seconds, not after stage I).
pub fn check_class_count(labels: &[i64], n_classes: usize, source: &Path) -> Result<()> {
    let distinct = labels.iter().collect::<std::collections::HashSet<_>>().len();
    if labels.len() >= 10 * n_classes && distinct != n_classes {
        return Err(Error::ClassCount {
            what: format!("{}: class names", source.display()),
            expected: format!("the labels hold {distinct} classes (give one name per class, in label order)"),
            got: n_classes,
        });
    }
    check_labels(labels, n_classes, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: &Tensor) -> Vec<Vec<f32>> {
        Vec::<Vec<f32>>::try_from(t).unwrap()
    }

    #[test]
    fn extreme_scales_keep_their_directions_and_ordinary_rows_are_untouched() {
        let base = [3.0f32, -4.0, 0.0];
        let scaled: Vec<f32> = [1.0f32, 1e30, 1e-30, 0.0].iter().flat_map(|s| base.map(|v| v * s)).collect();
        let unit = rows(&l2_normalize(&Tensor::from_slice(&scaled).view([4, 3])));
        for (row, scale) in unit.iter().zip(["1", "1e30", "1e-30"]) {
            let expected = [0.6f32, -0.8, 0.0];
            assert!(row.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "scale {scale}: {row:?}");
        }
        assert_eq!(unit[3], vec![0.0; 3], "a zero row stays zero");
        // Without the rescaling both extreme rows would have become zero rows:
        let plain = |t: Tensor| rows(&(&t / t.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12)));
        assert_eq!(plain(Tensor::from_slice(&scaled).view([4, 3]))[1], vec![0.0; 3]);
        let ordinary = Tensor::from_slice(&[0.3f32, 7.0, -1e-3, 2e6, 1e-9, 5.0]).view([2, 3]);
        assert_eq!(rows(&rescale_extreme_rows(&ordinary)), rows(&ordinary));
    }

    #[test]
    fn distinct_rows_are_counted_up_to_the_limit() {
        let copies = Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]).repeat([3000, 1]);
        assert_eq!(count_distinct_rows(&copies, 5).unwrap(), 1);
        let two = Tensor::cat(&[&copies, &Tensor::from_slice(&[2.0f32, 1.0]).view([1, 2])], 0);
        assert_eq!(count_distinct_rows(&two, 5).unwrap(), 2, "a different row after the first chunk counts");
        let many = Tensor::arange(4000, (tch::Kind::Float, tch::Device::Cpu)).view([2000, 2]);
        assert_eq!(count_distinct_rows(&many, 10).unwrap(), 10);
    }
}
