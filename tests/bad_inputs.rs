//! Issue 12: one test per failure class of the hostile-input review. Each builds the bad input
//! in a temporary folder and checks for a clean error that names the file or value (or, for
//! outputs, that nothing earlier was lost). Each failed (panicked, hung, or passed silently) on
//! the code before the fix.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use zerolabel::data::images::{read_dataset, DatasetFormat, Split};
use zerolabel::fuzz::zip_members;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zl-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An IDX file: header with `dims`, then `data`.
fn idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0u8, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// A consistent MNIST-layout split of `n` images of `side` x `side`.
fn idx_split(dir: &Path, prefix: &str, n: u32, side: u32) {
    let pixels: Vec<u8> = (0..n * side * side).map(|k| (k * 37 % 251) as u8).collect();
    idx(&dir.join(format!("{prefix}-images-idx3-ubyte")), &[n, side, side], &pixels);
    let labels: Vec<u8> = (0..n).map(|k| (k % 3) as u8).collect();
    idx(&dir.join(format!("{prefix}-labels-idx1-ubyte")), &[n], &labels);
}

fn zerolabel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zerolabel")).args(args).arg("--quiet").output().unwrap()
}

/// Asserts a clean error: exit code 2, "error:" once, no panic; returns stderr.
fn clean_error(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{what}: expected exit code 2; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: panic: {stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{what}: {stderr}");
    stderr
}

fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

/// A MedMNIST-like archive with 4 grey 8x8 images per split and the given train labels.
fn medmnist(path: &Path, train_labels: &[i64], deflate: bool) {
    let images = npy_bytes("|u1", "(4, 8, 8)", &[7u8; 256]);
    let labels = |l: &[i64]| npy_bytes("<i8", "(4, 1)", &l.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
    let members = [
        ("train_images.npy", images.clone()),
        ("train_labels.npy", labels(train_labels)),
        ("test_images.npy", images),
        ("test_labels.npy", labels(&[0, 1, 2, 0])),
    ];
    std::fs::write(path, zip_members(&members, deflate)).unwrap();
}

fn word_vectors(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("words.txt");
    std::fs::write(&path, text).unwrap();
    path
}

/// Class 1: header sizes multiplied without overflow checks (4 x 2^31 x 2^31 wrapped to 0).
#[test]
fn class01_header_sizes_that_overflow_are_refused() {
    let dir = workdir("overflow");
    idx(&dir.join("train-images-idx3-ubyte"), &[4, 1 << 31, 1 << 31], &[]);
    idx(&dir.join("train-labels-idx1-ubyte"), &[4], &[0, 1, 2, 0]);
    let e = read_dataset(&DatasetFormat::Idx, &dir, Split::Train, None).err().expect("IDX overflow accepted").to_string();
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("overflow"), "{e}");

    let npy = npy_bytes("<f4", "(4294967296, 4294967296, 4)", &[]);
    let e = zerolabel::data::npy::parse_npy(&npy, Path::new("f.npy")).err().expect(".npy overflow accepted").to_string();
    assert!(e.contains("f.npy") && (e.contains("overflow") || e.contains("too large")), "{e}");

    let archive = dir.join("m.npz");
    std::fs::write(&archive, zip_members(&[("train_images.npy", npy_bytes("|u1", "(4294967296, 4294967296, 1)", &[]))], false)).unwrap();
    let e = zerolabel::data::npz::read_npz(&archive).err().expect(".npz member overflow accepted").to_string();
    assert!(e.contains("train_images.npy") && (e.contains("overflow") || e.contains("too large")), "{e}");
}

/// Class 2: IDX test images 14x14 while train images are 28x28.
#[test]
fn class02_inconsistent_split_shapes_are_refused() {
    let dir = workdir("splits");
    idx_split(&dir, "train", 20, 8);
    idx_split(&dir, "t10k", 6, 4);
    let out = dir.join("out");
    let output = zerolabel(&["pixel-features", "--format", "idx", "--data", dir.to_str().unwrap(), "--pca", "2", "--out", out.to_str().unwrap()]);
    let e = clean_error(&output, "pixel-features on mismatched splits");
    assert!(e.contains("4x4x1") && e.contains("8x8x1"), "{e}");
    assert!(!out.join("train.safetensors").exists());
}

/// Class 3: label ranges checked at read time (MedMNIST labels -5 and 99; a negative label in a
/// feature file panicked `knn`).
#[test]
fn class03_labels_out_of_range_are_refused_at_read_time() {
    let dir = workdir("labels");
    for bad in [-5i64, 9999] {
        let path = dir.join(format!("bad{bad}.npz"));
        medmnist(&path, &[0, 1, bad, 0], false);
        let e = read_dataset(&DatasetFormat::Medmnist, &path, Split::Train, None).err().expect("bad label accepted").to_string();
        assert!(e.contains(&format!("label {bad}")) && e.contains("bad"), "{e}");
    }
    let features = |name: &str, labels: &[i64]| {
        let path = dir.join(name);
        let x = tch::Tensor::from_slice(&[0.5f32; 12]).view([4, 3]);
        zerolabel::data::features::save_features(&path, &x, Some(labels)).unwrap();
        path
    };
    let train = features("train.safetensors", &[0, 1, -5, 1]);
    let test = features("test.safetensors", &[0, 1, 0, 1]);
    let output = zerolabel(&["knn", "--train", train.to_str().unwrap(), "--test", test.to_str().unwrap(), "--k", "2"]);
    let e = clean_error(&output, "knn with a negative label");
    assert!(e.contains("train.safetensors") && e.contains("label -5"), "{e}");
}

/// Class 4: empty data (0 training images) gave NaN features and exit 0.
#[test]
fn class04_empty_dataset_is_reported_as_empty() {
    let dir = workdir("empty");
    idx_split(&dir, "train", 0, 8);
    idx_split(&dir, "t10k", 3, 8);
    let out = dir.join("out");
    let output = zerolabel(&["pixel-features", "--format", "idx", "--data", dir.to_str().unwrap(), "--raw", "--out", out.to_str().unwrap()]);
    let e = clean_error(&output, "pixel-features on an empty train split");
    assert!(e.contains("no images") && e.contains("empty"), "{e}");
    assert!(!out.join("train.safetensors").exists(), "features of an empty split were written");
}

/// Class 5: non-finite values: "nan" in a word-vector file, `--lr 1e300` (finite in f64,
/// infinite in the f32 it is used in), `lr = inf`, `weight_decay = NaN`.
#[test]
fn class05_non_finite_values_are_refused_up_front() {
    let dir = workdir("nonfinite");
    let words = word_vectors(&dir, "cat 1 0 0\ndog nan 0.1 0\ncar 0 0 1\n");
    let output = zerolabel(&["prior", "--classes", "cat,dog,car", "--word-vectors", words.to_str().unwrap()]);
    let e = clean_error(&output, "NaN word vector");
    assert!(e.contains("words.txt") && e.contains("line 2") && e.contains("finite"), "{e}");

    let stages = zerolabel::config::StageArgs { lr: Some(1e300), ..Default::default() };
    let e = stages.validate(zerolabel::config::Preset::Paper, 3).err().expect("lr 1e300 accepted").to_string();
    assert!(e.contains("lr") && e.contains("1e300"), "{e}");
    for (key, value) in [("pretrain.lr", "inf"), ("pretrain.weight_decay", "nan"), ("stages.epsilon", "1e-320")] {
        let config = dir.join("c.toml");
        std::fs::write(&config, "name = \"t\"\n[data]\nformat = \"idx\"\npath = \"data\"\n[classes]\nnames = [\"a\", \"b\"]\n").unwrap();
        let e = zerolabel::config::RunConfig::load(&config, &[format!("{key}={value}")]).err().unwrap_or_else(|| panic!("{key} = {value} accepted"));
        assert!(e.to_string().contains(key), "{e}");
    }
}

/// Class 6: resource exhaustion: `--folder-size 100000` tried to allocate 30 GB; PCA of large
/// images built a huge covariance. Both are sized first and refused with the setting to change.
#[test]
fn class06_memory_is_sized_before_allocating() {
    let dir = workdir("memory");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9])).save(images.join("a.png")).unwrap();
    let output = zerolabel(&["pixel-features", "--format", "folder", "--data", images.to_str().unwrap(), "--raw", "--out", dir.join("o").to_str().unwrap(), "--max-memory", "1G"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let config = dir.join("c.toml");
    std::fs::write(&config, format!("name = \"t\"\n[data]\nformat = \"folder\"\npath = \"{}\"\nfolder_size = 60000\n[classes]\nnames = [\"a\", \"b\"]\n", images.display())).unwrap();
    let set = zerolabel::config::RunConfig::load(&config, &[]).unwrap();
    zerolabel::memory::set_max_memory(Some(1 << 30));
    let e = set.data.as_ref().unwrap().read(Split::Train).err().expect("a 60000x60000 folder size was accepted").to_string();
    assert!(e.contains("GiB") && e.contains("folder_size") && e.contains("--max-memory"), "{e}");
    let x = tch::Tensor::zeros([3, 20_000], (tch::Kind::Float, tch::Device::Cpu));
    let e = zerolabel::pixel_features::pca_features(&x, &x, 2).err().expect("a 20000-pixel covariance was accepted").to_string();
    assert!(e.contains("PCA") && e.contains("--raw"), "{e}");
    zerolabel::memory::set_max_memory(None);
}

/// Class 7: special files: a FIFO named `x.png` hung the image readers; a symlink loop made one
/// image count many times.
#[test]
fn class07_special_files_and_symlink_loops() {
    let dir = workdir("special");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9])).save(images.join("a.png")).unwrap();
    let fifo = images.join("x.png");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let folder = images.clone();
    std::thread::spawn(move || {
        let _ = tx.send(zerolabel::data::images::read_folder(&folder, 8).map(|s| s.count).map_err(|e| e.to_string()));
    });
    let result = rx.recv_timeout(Duration::from_secs(20)).expect("reading a folder with a FIFO hung");
    let e = result.expect_err("a FIFO was read as an image");
    assert!(e.contains("x.png") && e.contains("regular file"), "{e}");
    std::fs::remove_file(&fifo).unwrap();

    std::os::unix::fs::symlink(&images, images.join("loop")).unwrap();
    std::os::unix::fs::symlink(images.join("a.png"), images.join("b.png")).unwrap();
    let (files, _) = zerolabel::data::checked::walk_files(&images).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(zerolabel::data::images::read_folder(&images, 8).unwrap().count, 1);
}

/// Class 8: destructive ordering: `run --force` deleted the stages before validating; logs
/// were created empty before anything was written; feature pairs are written together.
#[test]
fn class08_nothing_is_destroyed_before_validation() {
    let dir = workdir("destructive");
    let run = dir.join("run");
    std::fs::create_dir_all(run.join("stages/pretrain-x")).unwrap();
    std::fs::write(run.join("stages/pretrain-x/best.safetensors"), "weights").unwrap();
    std::fs::write(run.join("model.json"), "{}").unwrap();
    idx_split(&dir, "train", 20, 8);
    idx_split(&dir, "t10k", 6, 8);
    let config = dir.join("c.toml");
    // The class names have no word vectors: a validation error.
    let words = word_vectors(&dir, "cat 1 0\ndog 0 1\n");
    std::fs::write(&config, format!("name = \"t\"\n[data]\nformat = \"idx\"\npath = \"{}\"\n[classes]\nnames = [\"cat\", \"zebra\"]\nword_vectors = \"{}\"\n", dir.display(), words.display())).unwrap();
    let output = zerolabel(&["run", "--config", config.to_str().unwrap(), "--out", run.to_str().unwrap(), "--force", "--device", "cpu"]);
    let e = clean_error(&output, "run --force with a bad class name");
    assert!(e.contains("zebra"), "{e}");
    assert!(run.join("stages/pretrain-x/best.safetensors").exists(), "--force deleted the stages before validating");
    assert!(run.join("model.json").exists());

    let log = dir.join("log.jsonl");
    {
        let mut lines = zerolabel::io::JsonLines::create(&log).unwrap();
        lines.write(&serde_json::json!({"step": 1})).unwrap();
    }
    assert!(!log.exists(), "a log was created before it was flushed");

    let (a, b) = (dir.join("a.safetensors"), dir.join("missing-folder").join("b.safetensors"));
    std::fs::write(&a, "old a").unwrap();
    std::fs::write(dir.join("missing-folder"), "a file where the folder should be").unwrap();
    let x = tch::Tensor::from_slice(&[1.0f32, 2.0]).view([1, 2]);
    assert!(zerolabel::data::features::save_features_together(&[(a.as_path(), &x, None), (b.as_path(), &x, None)]).is_err());
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a", "one file of the pair was replaced");
}

/// Class 9: a closed stdout (`| head -0`) panicked with "failed printing to stdout".
#[test]
fn class09_closed_stdout_exits_quietly() {
    let dir = workdir("pipe");
    let words = word_vectors(&dir, "cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerolabel"))
        .args(["prior", "--classes", "cat,dog,car", "--word-vectors", words.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}

/// Class 10: `name = "../../x"` with no `--out` wrote outside `runs/`.
#[test]
fn class10_run_name_cannot_escape_runs() {
    let dir = workdir("name");
    let config = dir.join("c.toml");
    for name in ["../../x", "/tmp/x", "a/b", "..", ".hidden", ""] {
        std::fs::write(&config, format!("name = {name:?}\n[data]\nformat = \"idx\"\npath = \"data\"\n[classes]\nnames = [\"a\", \"b\"]\n")).unwrap();
        let e = zerolabel::config::RunConfig::load(&config, &[]).err().unwrap_or_else(|| panic!("name {name:?} accepted")).to_string();
        assert!(e.contains("name") && e.contains("plain folder name"), "{e}");
    }
}

/// Class 11: a corrupt test split silently turned off the requested kNN monitor.
#[test]
fn class11_requested_knn_monitor_never_silently_dropped() {
    let dir = workdir("knn");
    idx_split(&dir, "train", 16, 8);
    idx_split(&dir, "t10k", 4, 8);
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), b"\0\0\x08\x03damaged").unwrap();
    let out = dir.join("out");
    let output = zerolabel(&["pretrain", "--format", "idx", "--data", dir.to_str().unwrap(), "--out", out.to_str().unwrap(),
        "--epochs", "1", "--batch-size", "8", "--width", "0.125", "--knn-every", "1", "--device", "cpu", "--precision", "fp32"]);
    let e = clean_error(&output, "pretrain with a damaged test split");
    assert!(e.contains("kNN monitor") && e.contains("t10k-images-idx3-ubyte") && e.contains("knn_every"), "{e}");
}

/// Class 12: messages: an OS error printed twice, a missing data folder reported as a file in
/// it, corrupt compressed .npz data reported as a bad .npy header.
#[test]
fn class12_messages_name_the_real_problem_once() {
    let dir = workdir("messages");
    let missing = dir.join("missing.txt");
    let output = zerolabel(&["prior", "--classes-file", missing.to_str().unwrap()]);
    let e = clean_error(&output, "missing classes file");
    assert_eq!(e.matches("os error 2").count(), 1, "{e}");

    let folder = dir.join("no-such-dataset");
    let output = zerolabel(&["pixel-features", "--format", "idx", "--data", folder.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap()]);
    let e = clean_error(&output, "missing dataset folder");
    assert!(e.contains("no-such-dataset") && e.contains("does not exist") && !e.contains("ubyte"), "{e}");

    let archive = dir.join("corrupt.npz");
    medmnist(&archive, &[0, 1, 2, 0], true);
    let mut bytes = std::fs::read(&archive).unwrap();
    for b in &mut bytes[80..100] {
        *b ^= 0x5a;
    }
    std::fs::write(&archive, bytes).unwrap();
    let e = read_dataset(&DatasetFormat::Medmnist, &archive, Split::Train, None).err().expect("corrupt deflate data accepted").to_string();
    assert!(e.contains("corrupt.npz") && e.contains("corrupt") && !e.contains("header is not text"), "{e}");
}
