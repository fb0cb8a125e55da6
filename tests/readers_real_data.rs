//! Readers against the real files in ../shared/data (skipped, with the reason printed, where
//! that folder is absent). Golden values were read with Python's gzip and struct modules.
use std::path::{Path, PathBuf};
use zerolabel::data::mnist::read_split;

fn shared(dataset: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(dataset);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is absent (the shared datasets folder beside the checkout)", dir.display());
        None
    }
}

#[test]
fn shared_data_fashion_mnist_idx_files() {
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
fn shared_data_mnist_idx_files() {
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
fn shared_data_truncated_gzip_idx_is_reported() {
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

#[test]
fn shared_data_cifar10_binary_batches() {
    use zerolabel::data::images::{read_cifar10, Split};
    let Some(dir) = shared("cifar10") else { return };
    let train = read_cifar10(&dir, Split::Train).unwrap();
    assert_eq!((train.count, train.height, train.width, train.channels), (50_000, 32, 32, 3));
    let labels = train.labels.as_ref().unwrap();
    let mut first_batch = [0usize; 10];
    labels[..10_000].iter().for_each(|&l| first_batch[l as usize] += 1);
    assert_eq!(first_batch, [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]);
    // Record 0: label 6 (frog); pixel (0, 0) = R 61, G 62, B 67 (after the JPEG round trip).
    assert_eq!(labels[0], 6);
    assert_eq!(&train.image(0)[..3], &[61, 62, 67]);
    assert_eq!(train.class_names[3], "cat");
    let test = zerolabel::data::images::read_cifar10(&dir, Split::Test).unwrap();
    assert_eq!(test.count, 10_000);
    assert_eq!(test.labels.as_ref().unwrap()[0], 3);
    assert_eq!(test.image(0)[0], 167);
}

#[test]
fn shared_data_retinamnist_npz() {
    use zerolabel::data::images::{read_medmnist, Split};
    let Some(dir) = shared("retinamnist") else { return };
    let train = read_medmnist(&dir.join("retinamnist.npz"), Split::Train).unwrap();
    assert_eq!((train.count, train.height, train.width, train.channels), (1080, 28, 28, 3));
    let mut grades = [0usize; 5];
    train.labels.as_ref().unwrap().iter().for_each(|&l| grades[l as usize] += 1);
    assert_eq!(grades, [486, 128, 206, 194, 66]);
    assert_eq!(&train.image(0)[..3], &[2, 0, 6]);
    assert_eq!(train.image(0).iter().map(|&p| p as u64).sum::<u64>(), 120_376);
    let test = read_medmnist(&dir.join("retinamnist.npz"), Split::Test).unwrap();
    let mut grades = [0usize; 5];
    test.labels.as_ref().unwrap().iter().for_each(|&l| grades[l as usize] += 1);
    assert_eq!(grades, [174, 46, 92, 68, 20]);
    // A truncated archive is reported with its name.
    let bytes = std::fs::read(dir.join("retinamnist.npz")).unwrap();
    let tmp = std::env::temp_dir().join(format!("zl-npz-{}.npz", std::process::id()));
    std::fs::write(&tmp, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_medmnist(&tmp, Split::Train).unwrap_err().to_string();
    assert!(err.contains("zl-npz") && err.contains("truncated"), "{err}");
    std::fs::remove_file(tmp).ok();
}
