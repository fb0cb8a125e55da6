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

/// Rows scaled to unit L2 norm (zero rows stay zero).
pub fn l2_normalize(features: &Tensor) -> Tensor {
    let norms = features.norm_scalaropt_dim(2.0, [1], true).clamp_min(1e-12);
    features / norms
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
