//! Readers against the real files in ../shared/data (skipped, with the reason printed, where
//! that folder is absent). Golden values were read with Python's gzip and struct modules.
use std::path::{Path, PathBuf};
use zerolabel::data::mnist::read_split;

fn shared(dataset: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(dataset);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is absent", dir.display());
        None
    }
}

#[test]
fn fashion_mnist_idx_files() {
    let Some(dir) = shared("fashion-mnist") else { return };
    let train = read_split(&dir, "train").unwrap();
    assert_eq!((train.count, train.rows, train.cols), (60_000, 28, 28));
    assert_eq!(&train.labels[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(train.images[14 * 28 + 14], 217);
    assert_eq!(train.images[..784].iter().map(|&p| p as u64).sum::<u64>(), 76_247);
    let mut per_class = [0usize; 10];
    train.labels.iter().for_each(|&l| per_class[l as usize] += 1);
    assert_eq!(per_class, [6000; 10]);
    let test = read_split(&dir, "t10k").unwrap();
    assert_eq!(test.count, 10_000);
    assert_eq!(test.images[14 * 28 + 14], 110);
}

#[test]
fn mnist_idx_files() {
    let Some(dir) = shared("mnist") else { return };
    let train = read_split(&dir, "train").unwrap();
    assert_eq!(train.count, 60_000);
    assert_eq!(&train.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(train.images[14 * 28 + 14], 240);
    let mut per_class = [0usize; 10];
    train.labels.iter().for_each(|&l| per_class[l as usize] += 1);
    assert_eq!(per_class, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
}

#[test]
fn truncated_gzip_idx_is_reported() {
    let Some(dir) = shared("fashion-mnist") else { return };
    let bytes = std::fs::read(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let tmp = std::env::temp_dir().join(format!("zl-idx-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let path = tmp.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = zerolabel::data::idx::read_idx(&path).unwrap_err().to_string();
    assert!(err.contains("t10k-labels-idx1-ubyte.gz") && (err.contains("truncated") || err.contains("corrupt")), "{err}");
    std::fs::remove_dir_all(tmp).ok();
}
