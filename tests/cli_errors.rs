//! (e) Every bad input gets a clear message naming the file or value, exit code 2, no panic.
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Tensor;
use zerolabel::data::features::save_features;
use zerolabel::data::npy::write_npy_f32;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zl-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny word-vector file, so these tests do not depend on GloVe being installed.
fn word_vectors(dir: &Path) -> PathBuf {
    let path = dir.join("words.txt");
    std::fs::write(&path, "cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\n").unwrap();
    path
}

fn features(dir: &Path, name: &str, n: i64, d: i64, labels: Option<Vec<i64>>) -> PathBuf {
    let path = dir.join(name);
    let values: Vec<f32> = (0..n * d).map(|k| ((k * 7919) % 13) as f32 / 13.0 + 0.1).collect();
    save_features(&path, &Tensor::from_slice(&values).view([n, d]), labels.as_deref()).unwrap();
    path
}

/// Runs `zerolabel match` with the given inputs and returns stderr, asserting exit code 2.
fn run_expect_error(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_zerolabel")).args(args).arg("--quiet").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "expected exit code 2 for {args:?}; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    assert!(stderr.starts_with("error: "), "error not printed once with 'error:' for {args:?}: {stderr}");
    stderr
}

fn match_args<'a>(train: &'a str, test: &'a str, classes: &'a str, words: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["match", "--train", train, "--test", test, "--classes", classes, "--word-vectors", words, "--out", out, "--steps", "2", "--cluster-steps", "2"]
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = workdir("errors");
    let words = word_vectors(&dir);
    let w = words.to_str().unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let good_train = features(&dir, "train.safetensors", 30, 4, None);
    let good_test = features(&dir, "test.safetensors", 12, 4, Some((0..12).map(|k| k % 3).collect()));
    let (tr, te) = (good_train.to_str().unwrap(), good_test.to_str().unwrap());

    // Missing file.
    let missing = dir.join("missing.safetensors");
    let e = run_expect_error(&match_args(missing.to_str().unwrap(), te, "cat,dog,car", w, o));
    assert!(e.contains("missing.safetensors") && e.contains("no such file"), "{e}");

    // Wrong format: not safetensors.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"this is not a tensor file").unwrap();
    let e = run_expect_error(&match_args(junk.to_str().unwrap(), te, "cat,dog,car", w, o));
    assert!(e.contains("junk.safetensors") && e.contains("not a safetensors file"), "{e}");

    // Wrong shape: a 1-D array.
    let flat = dir.join("flat.npy");
    write_npy_f32(&flat, &[10], &[0.5; 10]).unwrap();
    let e = run_expect_error(&match_args(flat.to_str().unwrap(), te, "cat,dog,car", w, o));
    assert!(e.contains("flat.npy") && e.contains("2-D"), "{e}");

    // Truncated file.
    let truncated = dir.join("truncated.npy");
    write_npy_f32(&truncated, &[10, 4], &[0.5; 40]).unwrap();
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 20]).unwrap();
    let e = run_expect_error(&match_args(truncated.to_str().unwrap(), te, "cat,dog,car", w, o));
    assert!(e.contains("truncated.npy") && e.contains("truncated"), "{e}");

    // NaN in the features.
    let nan = dir.join("nan.npy");
    let mut values = vec![0.5f32; 40];
    values[4 * 7 + 2] = f32::NAN;
    write_npy_f32(&nan, &[10, 4], &values).unwrap();
    let e = run_expect_error(&match_args(nan.to_str().unwrap(), te, "cat,dog,car", w, o));
    assert!(e.contains("nan.npy") && e.contains("row 7, column 2"), "{e}");

    // Mismatched dimensions between train and test.
    let wide = features(&dir, "wide.safetensors", 12, 5, Some((0..12).map(|k| k % 3).collect()));
    let e = run_expect_error(&match_args(tr, wide.to_str().unwrap(), "cat,dog,car", w, o));
    assert!(e.contains("wide.safetensors") && e.contains("expected 4"), "{e}");

    // Out-of-vocabulary class name.
    let e = run_expect_error(&match_args(tr, te, "cat,dog,zzqxj", w, o));
    assert!(e.contains("'zzqxj'") && e.contains("words.txt"), "{e}");

    // A class count that does not match the data: labels 0..2 but two class names.
    let e = run_expect_error(&match_args(tr, te, "cat,dog", w, o));
    assert!(e.contains("test.safetensors") && e.contains("label 2") && e.contains("2 class names"), "{e}");

    // More classes than training samples.
    let tiny = features(&dir, "tiny.safetensors", 2, 4, None);
    let e = run_expect_error(&match_args(tiny.to_str().unwrap(), te, "cat,dog,car", w, o));
    assert!(e.contains("tiny.safetensors") && e.contains("3 clusters"), "{e}");

    // Training features that are all one direction cannot form three clusters.
    let same = dir.join("same.npy");
    write_npy_f32(&same, &[30, 4], &[0.5; 120]).unwrap();
    let e = run_expect_error(&match_args(same.to_str().unwrap(), te, "cat,dog,car", w, o));
    assert!(e.contains("same.npy") && e.contains("only 1 distinct direction") && e.contains("3 clusters"), "{e}");

    // Bad hyper-parameters name the value.
    let mut args = match_args(tr, te, "cat,dog,car", w, o);
    args.push("--epsilon=-1");
    let e = run_expect_error(&args);
    assert!(e.contains("epsilon") && e.contains("-1"), "{e}");
    let mut args = match_args(tr, te, "cat,dog,car", w, o);
    args.extend(["--class-proportions", "0.5,0.5"]);
    let e = run_expect_error(&args);
    assert!(e.contains("class proportions") && e.contains("3 class names"), "{e}");

    // An empty class name between commas.
    let e = run_expect_error(&match_args(tr, te, "cat,,car", w, o));
    assert!(e.contains("class name 2 of 3 is empty") && e.contains("cat,,car"), "{e}");

    // Duplicate class names.
    let e = run_expect_error(&match_args(tr, te, "cat,dog,Cat", w, o));
    assert!(e.contains("'Cat'") && e.contains("twice"), "{e}");

    // Missing word-vector file.
    let e = run_expect_error(&match_args(tr, te, "cat,dog,car", dir.join("nowords.txt").to_str().unwrap(), o));
    assert!(e.contains("nowords.txt"), "{e}");

    // Asking for a GPU where there is none (or no CUDA libraries) is an error, not a fallback.
    if !tch::Cuda::is_available() {
        let mut args = match_args(tr, te, "cat,dog,car", w, o);
        args.extend(["--device", "cuda"]);
        let e = run_expect_error(&args);
        assert!(e.contains("device:") && (e.contains("libtorch_cuda") || e.contains("no CUDA GPU")), "{e}");
    }

    // Nothing was written for the failed runs.
    assert!(!out.join("metrics.json").exists());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_good_run_writes_its_reports() {
    let dir = workdir("good");
    let words = word_vectors(&dir);
    let train = features(&dir, "train.safetensors", 60, 4, None);
    let test = features(&dir, "test.safetensors", 12, 4, Some((0..12).map(|k| k % 3).collect()));
    let out = dir.join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_zerolabel"))
        .args(match_args(train.to_str().unwrap(), test.to_str().unwrap(), "cat,dog,car", words.to_str().unwrap(), out.to_str().unwrap()))
        .args(["--seeds", "2", "--quiet"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["accuracy"]["mean"].as_f64().is_some());
    assert_eq!(metrics["seeds"].as_array().unwrap().len(), 2);
    for seed in [0, 1] {
        for file in ["classifier.safetensors", "clusters.safetensors", "test_predictions.npy", "train_log.jsonl", "seed.json"] {
            assert!(out.join(format!("seed-{seed}/{file}")).exists(), "seed-{seed}/{file}");
        }
    }
    assert!(out.join("summary.md").exists());
    std::fs::remove_dir_all(dir).ok();
}

/// `knn --centre` removes a shared offset that plain cosine similarity cannot see past: two
/// classes that differ only in a small second coordinate, the first class three times as
/// common, so that without centring every neighbour weighs about the same and the majority wins.
#[test]
fn knn_centre_removes_a_shared_offset() {
    let dir = workdir("knn-centre");
    let write = |name: &str, counts: [usize; 2]| {
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for (class, &count) in counts.iter().enumerate() {
            for k in 0..count {
                let sign = if class == 0 { 1.0 } else { -1.0 };
                values.extend([100.0f32, sign * (1.0 + 0.01 * k as f32)]);
                labels.push(class as i64);
            }
        }
        let path = dir.join(name);
        save_features(&path, &Tensor::from_slice(&values).view([labels.len() as i64, 2]), Some(&labels)).unwrap();
        path
    };
    let (train, test) = (write("train.safetensors", [30, 10]), write("test.safetensors", [5, 5]));
    let accuracy = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_zerolabel"))
            .args(["knn", "--train", train.to_str().unwrap(), "--test", test.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let plain = accuracy(&[]);
    let centred = accuracy(&["--centre"]);
    assert!(plain.contains("cosine): 50.00%"), "{plain}");
    assert!(centred.contains("centred on the train mean): 100.00%"), "{centred}");
}
