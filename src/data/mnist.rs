//! The MNIST / Fashion-MNIST folder layout: `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
use super::idx::read_idx;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One split: images (N x rows x cols, u8) and labels.
pub struct GreyImages {
    pub images: Vec<u8>,
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub labels: Vec<i64>,
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        // symlink_metadata: a dangling link or a symlink loop is found here and then reported
        // by the reader as what it is, not as a missing file.
        if std::fs::symlink_metadata(&p).is_ok() {
            return Ok(p);
        }
    }
    Err(Error::io(
        dir.join(format!("{stem}.gz")),
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("neither {stem}.gz nor {stem} exists in this folder")),
    ))
}

/// Reads split `train` or `t10k` from an MNIST-layout folder.
pub fn read_split(dir: &Path, split: &str) -> Result<GreyImages> {
    if !dir.is_dir() {
        return Err(Error::format(dir, "not a folder: an IDX dataset is the folder that holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"));
    }
    let image_path = find(dir, &format!("{split}-images-idx3-ubyte"))?;
    let label_path = find(dir, &format!("{split}-labels-idx1-ubyte"))?;
    let images = read_idx(&image_path)?;
    if images.shape.len() != 3 {
        return Err(Error::format(&image_path, format!("expected 3 dimensions (N, rows, cols), got {:?}", images.shape)));
    }
    let labels = read_idx(&label_path)?;
    if labels.shape.len() != 1 {
        return Err(Error::format(&label_path, format!("expected 1 dimension (N), got {:?}", labels.shape)));
    }
    if labels.shape[0] != images.shape[0] {
        return Err(Error::format(
            &label_path,
            format!("{} labels for the {} images of {}", labels.shape[0], images.shape[0], image_path.display()),
        ));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(Error::format(&label_path, format!("label {bad} is out of range 0..10")));
    }
    Ok(GreyImages {
        count: images.shape[0],
        rows: images.shape[1],
        cols: images.shape[2],
        images: images.data,
        labels: labels.data.iter().map(|&l| l as i64).collect(),
    })
}
