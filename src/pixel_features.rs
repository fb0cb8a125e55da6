//! Stand-in features until stage I (SimCLR) is available: raw pixels, centred and projected on
//! their top principal components (fitted on the training split only), then L2-normalised.
use crate::data::features::{centre_on_train, l2_normalize};
use crate::data::images::ImageSet;
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// (N, H*W*C) f32 in [0, 1].
pub fn pixels(set: &ImageSet) -> Tensor {
    Tensor::from_slice(&set.pixels).view([set.count as i64, (set.height * set.width * set.channels) as i64]).to_kind(Kind::Float) / 255.0
}

/// PCA fitted on `train` (the top `dim` eigenvectors of its covariance), applied to both splits.
/// `dim = 0` keeps all pixels (only centring and normalisation).
pub fn pca_features(train: &Tensor, test: &Tensor, dim: usize) -> Result<(Tensor, Tensor)> {
    let d = train.size()[1];
    if dim as i64 > d {
        return Err(Error::invalid("pca dimension", dim, "at most the number of pixels"));
    }
    let (train_c, test_c) = centre_on_train(train, test);
    if dim == 0 {
        return Ok((l2_normalize(&train_c), l2_normalize(&test_c)));
    }
    // The covariance is D x D in f64, and the eigendecomposition needs about two more of it:
    // sized before it is allocated (STL-10's 27648 pixels would ask for 18 GB).
    crate::memory::ensure_fits(
        crate::memory::product(&[d as usize, d as usize, 8, 3]),
        &format!("PCA of {d} pixel values (a {d} x {d} covariance and its eigenvectors)"),
        "use --pca 0 or --raw (no covariance), or smaller images",
    )?;
    let xd = train_c.to_kind(Kind::Double);
    let cov = xd.tr().matmul(&xd) / (train.size()[0] as f64 - 1.0);
    let (_, vectors) = cov.linalg_eigh("L"); // ascending eigenvalues
    let top = vectors.narrow(1, d - dim as i64, dim as i64).flip([1]).to_kind(Kind::Float);
    Ok((l2_normalize(&train_c.matmul(&top)), l2_normalize(&test_c.matmul(&top))))
}
