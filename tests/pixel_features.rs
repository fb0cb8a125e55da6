//! `zerolabel pixel-features`: the raw-pixel baselines the learned features are compared with.
use std::path::Path;
use std::process::Command;
use zerolabel::data::features::load_features;

/// Writes an uncompressed IDX split of `n` 4 x 4 grey images (MNIST layout).
fn write_idx(dir: &Path, prefix: &str, n: usize) -> Vec<Vec<f64>> {
    let mut images = vec![0u8, 0, 8, 3];
    images.extend((n as u32).to_be_bytes());
    images.extend(4u32.to_be_bytes());
    images.extend(4u32.to_be_bytes());
    let mut labels = vec![0u8, 0, 8, 1];
    labels.extend((n as u32).to_be_bytes());
    let mut rows = Vec::new();
    for i in 0..n {
        let row: Vec<u8> = (0..16).map(|p| ((i * 37 + p * 11 + i * p) % 256) as u8).collect();
        rows.push(row.iter().map(|&v| v as f64).collect());
        images.extend(&row);
        labels.push((i % 2) as u8);
    }
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    rows
}

fn pixel_features(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zerolabel"))
        .args(["pixel-features", "--format", "idx", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn raw_centred_and_pca_pixel_features() {
    let dir = std::env::temp_dir().join(format!("zl-pixels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let train_rows = write_idx(&dir, "train", 12);
    write_idx(&dir, "t10k", 5);

    // --raw: each row is the image's pixels divided by their norm, nothing else.
    let raw = dir.join("raw");
    assert!(pixel_features(&dir, &raw, &["--raw"]).status.success());
    let f = load_features(&raw.join("train.safetensors"), None).unwrap();
    assert_eq!(f.features.size(), [12, 16]);
    assert_eq!(f.labels.as_deref(), Some(&[0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1][..]));
    for (i, row) in train_rows.iter().enumerate() {
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (p, v) in row.iter().enumerate() {
            let got = f.features.double_value(&[i as i64, p as i64]);
            assert!((got - v / norm).abs() < 1e-6, "row {i} pixel {p}: {got} vs {}", v / norm);
        }
    }

    // --pca 0: centred on the train mean first, so the (unnormalised) rows are no longer all
    // positive, and every row is unit length.
    let centred = dir.join("centred");
    assert!(pixel_features(&dir, &centred, &["--pca", "0"]).status.success());
    let f = load_features(&centred.join("train.safetensors"), None).unwrap();
    assert!(f.features.min().double_value(&[]) < 0.0);
    let norms = f.features.square().sum_dim_intlist([1i64].as_slice(), false, tch::Kind::Double).sqrt();
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5);

    // --pca 3: three components; --raw with --pca is refused by the command line.
    let pca = dir.join("pca");
    assert!(pixel_features(&dir, &pca, &["--pca", "3"]).status.success());
    assert_eq!(load_features(&pca.join("test.safetensors"), None).unwrap().features.size(), [5, 3]);
    let both = pixel_features(&dir, &dir.join("both"), &["--raw", "--pca", "3"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("--pca"));
}
