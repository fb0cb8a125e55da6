//! `zerolabel match --clustering scan`: SCAN as stage II end to end on three separated blobs,
//! its head saved beside the clusters, and its settings refused with a message naming the key.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Tensor;
use zerolabel::data::features::save_features;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zl-scan-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn zerolabel(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zerolabel")).args(args).arg("--quiet").output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Three separated clusters in 4-D (row k belongs to class k % 3), with labels.
fn clustered(path: &Path, n: i64) {
    let values: Vec<f32> = (0..n * 4)
        .map(|k| {
            let (row, col) = (k / 4, k % 4);
            (if col == row % 3 { 1.0 } else { 0.1 }) + ((k * 7919) % 13) as f32 / 130.0
        })
        .collect();
    let labels: Vec<i64> = (0..n).map(|k| k % 3).collect();
    save_features(path, &Tensor::from_slice(&values).view([n, 4]), Some(&labels)).unwrap();
}

/// A folder with three separated blobs (train and test) and three class vectors; returns the
/// run's output folder and the `match` arguments up to the clustering settings.
fn match_on_blobs(name: &str) -> (PathBuf, Vec<String>) {
    let dir = workdir(name);
    let (train, test) = (dir.join("train.safetensors"), dir.join("test.safetensors"));
    clustered(&train, 150);
    clustered(&test, 30);
    let words = dir.join("words.txt");
    std::fs::write(&words, "cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\n").unwrap();
    let out = dir.join("out");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let args = vec!["match".into(), "--train".into(), path(&train), "--test".into(), path(&test), "--classes".into(), "cat,dog,car".into(), "--word-vectors".into(), path(&words), "--out".into(), path(&out), "--steps".into(), "20".into(), "--device".into(), "cpu".into()];
    (out, args)
}

#[test]
fn match_with_scan_clusters_saves_the_head_and_refuses_bad_settings() {
    let (out, base) = match_on_blobs("match");
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let scan = ["--clustering", "scan", "--scan-neighbours", "5", "--scan-heads", "3", "--scan-epochs", "40"];
    let (code, stderr) = zerolabel(&[&base[..], &scan[..]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let metrics: Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let acc = metrics["seeds"][0]["cluster_hungarian_accuracy"].as_f64().unwrap();
    assert!(acc > 0.99, "SCAN clusters of three separated blobs: {acc}");
    let saved = Tensor::read_safetensors(out.join("seed-0").join("clusters.safetensors")).unwrap();
    let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"head_0_weight") && names.contains(&"head_0_bias"), "{names:?}");

    let (code, stderr) = zerolabel(&[&base[..], &["--clustering", "scan", "--scan-neighbours", "0"][..]].concat());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("scan_neighbours = 0: expected between 1 and 1000"), "{stderr}");
    let (code, stderr) = zerolabel(&[&base[..], &["--clustering", "kmeans", "--scan-heads", "3"][..]].concat());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("stages.scan_heads is a setting of clustering = \"scan\", but clustering is \"kmeans\""), "{stderr}");
    let (code, stderr) = zerolabel(&[&base[..], &["--clustering", "kmeans", "--scan-objective", "temi"][..]].concat());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("stages.scan_objective is a setting of clustering = \"scan\""), "{stderr}");
    let (code, stderr) = zerolabel(&[&base[..], &["--clustering", "scan", "--scan-objective", "dino"][..]].concat());
    assert_eq!(code, Some(2));
    assert!(stderr.contains("dino") && stderr.contains("scan") && stderr.contains("temi"), "{stderr}");
}

#[test]
fn match_with_temi_heads_clusters_separated_blobs() {
    let (out, base) = match_on_blobs("temi");
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let temi = ["--clustering", "scan", "--scan-objective", "temi", "--scan-neighbours", "5", "--scan-heads", "3", "--scan-epochs", "40"];
    let (code, stderr) = zerolabel(&[&base[..], &temi[..]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let metrics: Value = serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let acc = metrics["seeds"][0]["cluster_hungarian_accuracy"].as_f64().unwrap();
    assert!(acc > 0.99, "TEMI clusters of three separated blobs: {acc}");
}
