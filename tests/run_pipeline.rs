//! `zerolabel run` end to end on a small real subset (2,000 Fashion-MNIST images per split, one
//! epoch, short stages II-III), then again (every stage reused), then with one stage-III
//! setting changed (only stage III redone), then `zerolabel predict` on a folder of images of
//! other sizes and colours plus two files that are not images.
use image::GenericImageView;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn fashion_mnist() -> Option<PathBuf> {
    let candidates = [PathBuf::from("/usr/share/datasets/fashion-mnist"), Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/fashion-mnist")];
    let found = candidates.into_iter().find(|d| d.join("t10k-images-idx3-ubyte.gz").exists() || d.join("t10k-images-idx3-ubyte").exists());
    if found.is_none() {
        eprintln!("SKIPPED: no Fashion-MNIST (install dataset-fashion-mnist: scripts/setup.sh)");
    }
    found
}

fn zerolabel(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zerolabel")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn reused(manifest: &Value) -> Vec<(String, bool)> {
    manifest["stages"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap().to_string(), s["reused"].as_bool().unwrap())).collect()
}

#[test]
fn run_report_rerun_and_predict_on_fashion_mnist_data() {
    let Some(data) = fashion_mnist() else { return };
    let root = std::env::temp_dir().join(format!("zl-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let out = root.join("run");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fashion-mnist.toml");
    let data_arg = format!("data.path={}", data.display());
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--quiet", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap(), "--limit", "2000", "--epochs", "1", "--seeds", "2", "--set", &data_arg,
            "--set", "stages.cluster_steps=200", "--set", "stages.steps=200", "--set", "pretrain.knn_every=1"]
            .iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // First run: every stage computed.
    let args = base(&[]);
    let (ok, stdout, stderr) = zerolabel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "run failed: {stderr}");
    assert!(stdout.contains("Zero-label accuracy"), "{stdout}");
    let manifest = json(&out.join("manifest.json"));
    let names: Vec<String> = reused(&manifest).into_iter().map(|s| s.0).collect();
    assert_eq!(names, ["pretrain", "features", "match", "match-sk (Figure 4B)", "report"]);
    assert!(reused(&manifest).iter().all(|s| !s.1), "nothing reused on the first run");
    for stage in manifest["stages"].as_array().unwrap() {
        assert!(stage["wall_s"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(manifest["seeds"], serde_json::json!([0, 1]));
    assert!(manifest["versions"]["zerolabel"].is_string());
    let metrics = json(&out.join("metrics.json"));
    let accuracy = metrics["accuracy"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert_eq!(metrics["seeds"].as_array().unwrap().len(), 2);
    // Even one epoch on 2,000 images gives clusters well above chance (10 %), and every file
    // a seed promises is there.
    let ceiling = metrics["summary"]["cluster_hungarian_accuracy"]["mean"].as_f64().unwrap();
    assert!(ceiling > 0.3, "clusters Hungarian-matched {ceiling}: hardly above chance");
    let match_dir = out.join(manifest["stages"][2]["dir"].as_str().unwrap());
    for seed in 0..2 {
        for file in ["classifier.safetensors", "clusters.safetensors", "test_predictions.npy", "train_log.jsonl", "seed.json"] {
            assert!(match_dir.join(format!("seed-{seed}/{file}")).exists(), "seed {seed}: no {file}");
        }
        let record = json(&match_dir.join(format!("seed-{seed}/seed.json")));
        assert_eq!(record["naming_chain"], serde_json::json!(["geometry"]), "the default names clusters by geometry");
        assert!(record["selection_score"].as_f64().unwrap().is_finite());
    }
    assert_eq!(json(&out.join("model.json"))["naming"], serde_json::json!(["geometry"]));
    // Two seeds: their geometry names are voted, and the vote names the model's classifier.
    let consensus = json(&match_dir.join("consensus.json"));
    assert_eq!(consensus["seeds"], serde_json::json!([0, 1]));
    let agreement = consensus["agreement"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&agreement) && consensus["class_of"].as_array().unwrap().len() == 2, "{consensus}");
    let model = json(&out.join("model.json"));
    assert_eq!(model["names_by_consensus"], serde_json::json!(true));
    assert!(model["classifier"].as_str().unwrap().ends_with("consensus_classifier.safetensors"), "{model}");
    assert!(stdout.contains("names voted over the seeds") && stdout.contains("agreement"), "{stdout}");
    let voted = metrics["summary"]["consensus_accuracy"]["mean"].as_f64().unwrap();
    assert_eq!(voted, accuracy, "the headline accuracy is the voted classifier's");
    // The paper's stage III is trained and reported beside the default.
    assert!(stdout.contains("the paper's stage III") && stdout.contains("Classifier: naming by geometry"), "{stdout}");
    assert!(json(&out.join("metrics.json"))["summary"]["paper_accuracy"]["mean"].as_f64().is_some(), "paper's stage III not reported beside the geometry naming");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for section in ["Zero-label classification", "Confusion matrix", "Figure 4A", "Figure 4B", "Naming the clusters", "Stages"] {
        assert!(report.contains(section), "report lacks '{section}'");
    }
    // The resolved training settings (precision "auto" resolved, the config's crop scale).
    assert!(report.contains(" precision, crop scale 0.3-1"), "report lacks the resolved precision and crop scale");
    for plot in ["loss_pretrain", "loss_clustering", "loss_matching", "confusion", "figure4a", "figure4b", "accuracy_seeds"] {
        let path = out.join("plots").join(format!("{plot}.png"));
        let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(img.dimensions().0 >= 300 && img.dimensions().1 >= 200, "{plot}: {:?}", img.dimensions());
        let colours: std::collections::HashSet<[u8; 3]> = img.to_rgb8().pixels().map(|p| p.0).collect();
        assert!(colours.len() > 20, "{plot} looks blank ({} colours)", colours.len());
        assert!(report.contains(&format!("plots/{plot}.png")), "report does not show {plot}");
    }
    let model = json(&out.join("model.json"));
    assert_eq!(model["classes"].as_array().unwrap().len(), 10);

    // Second run: every stage reused, in seconds.
    let started = Instant::now();
    let (ok, _, stderr) = zerolabel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "second run failed: {stderr}");
    let seconds = started.elapsed().as_secs_f64();
    let manifest = json(&out.join("manifest.json"));
    let flags = reused(&manifest);
    assert!(flags[..4].iter().all(|s| s.1), "second run recomputed something: {flags:?}");
    assert!(seconds < 30.0, "second run took {seconds:.1} s");
    assert_eq!(json(&out.join("metrics.json"))["accuracy"]["mean"].as_f64().unwrap(), accuracy, "reused results differ");

    // A stage-III setting changed: stage I and the features are reused, stages II-III redone.
    let args = base(&["--set", "stages.lr=2e-5"]);
    let (ok, _, stderr) = zerolabel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "third run failed: {stderr}");
    let flags = reused(&json(&out.join("manifest.json")));
    assert_eq!(flags.iter().map(|s| s.1).collect::<Vec<_>>(), [true, true, false, false, false], "{flags:?}");

    // One more seed: the two finished seeds are read back, only the new one is computed.
    let match_dir = out.join(json(&out.join("manifest.json"))["stages"][2]["dir"].as_str().unwrap());
    let seed0 = std::fs::metadata(match_dir.join("seed-0/seed.json")).unwrap().modified().unwrap();
    let mut args = base(&["--set", "stages.lr=2e-5"]);
    let seeds_at = args.iter().position(|a| a == "--seeds").unwrap();
    args[seeds_at + 1] = "3".into();
    let (ok, stdout, stderr) = zerolabel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "fourth run failed: {stderr}");
    assert!(stdout.contains("3 seed(s)"), "{stdout}");
    assert_eq!(std::fs::metadata(match_dir.join("seed-0/seed.json")).unwrap().modified().unwrap(), seed0, "seed 0 was recomputed");
    assert!(match_dir.join("seed-2/classifier.safetensors").exists());

    // The geometry chain (the default): each seed's own classifier is its named nearest
    // centroid (`seed.json`; metrics.json gives the seeds' clusters under the voted names), the
    // paper's row is in the report.
    for seed in 0..3 {
        let own = &json(&match_dir.join(format!("seed-{seed}/seed.json")))["metrics"];
        assert_eq!(own["accuracy"], own["naming_accuracy"], "seed {seed}: the geometry chain's classifier is the named nearest centroid");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("the paper's stage III on the same clusters"), "report lacks the paper's row");
    // The paper's chain, one setting away: stages II-III redone, no separate reference.
    let args = base(&["--set", "stages.naming=[\"stage3\"]"]);
    let (ok, stdout, stderr) = zerolabel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "paper-chain run failed: {stderr}");
    assert!(stdout.contains("Classifier: the paper's stage III"), "{stdout}");
    let model = json(&out.join("model.json"));
    assert_eq!(model["naming"], serde_json::json!(["stage3"]));
    // The old flags are refused with the new key named.
    let (ok, _, stderr) = zerolabel(&base(&["--set", "stages.naming_only=true"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok && stderr.contains("naming = [\"geometry\"]"), "{stderr}");

    // predict: images of other sizes and colours, and two files that are not images.
    let images = root.join("images");
    let sub = images.join("nested");
    std::fs::create_dir_all(&sub).unwrap();
    let set = zerolabel::data::images::read_dataset(&zerolabel::data::images::DatasetFormat::Idx, &data, zerolabel::data::images::Split::Test, None).unwrap();
    let n_images = 12;
    for i in 0..n_images {
        let grey = image::GrayImage::from_raw(28, 28, set.image(i).to_vec()).unwrap();
        let dynamic = image::DynamicImage::ImageLuma8(grey);
        match i % 3 {
            0 => dynamic.save(images.join(format!("img{i}.png"))).unwrap(),
            1 => dynamic.resize_exact(64, 64, image::imageops::FilterType::Triangle).to_rgb8().save(sub.join(format!("img{i}.png"))).unwrap(),
            _ => dynamic.resize_exact(40, 40, image::imageops::FilterType::Triangle).to_rgb8().save(images.join(format!("img{i}.jpg"))).unwrap(),
        }
    }
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();
    std::fs::write(images.join("broken.png"), [0x89, b'P', b'N', b'G', 0, 1, 2]).unwrap();
    let csv_path = root.join("predictions.csv");
    let (ok, _, stderr) = zerolabel(&["predict", "--quiet", "--run", out.to_str().unwrap(), "--images", images.to_str().unwrap(), "--out", csv_path.to_str().unwrap()]);
    assert!(ok, "predict failed: {stderr}");
    assert!(stderr.contains("2 file(s) could not be classified") && stderr.contains("notes.txt") && stderr.contains("broken.png"), "{stderr}");
    let classes: Vec<String> = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fashion-mnist.classes")).unwrap().lines().map(str::to_string).collect();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), n_images, "{csv}");
    for row in rows {
        let fields: Vec<&str> = row.rsplitn(3, ',').collect();
        let (confidence, class) = (fields[0].parse::<f64>().unwrap(), fields[1]);
        assert!(classes.iter().any(|c| c == class), "unknown class '{class}' in {row}");
        assert!(confidence > 0.0 && confidence <= 1.0, "{row}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A class list that does not fit the data fails before any training, naming both counts.
#[test]
fn wrong_class_count_fails_before_training() {
    let Some(data) = fashion_mnist() else { return };
    let root = std::env::temp_dir().join(format!("zl-run-count-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let classes = root.join("three.classes");
    std::fs::write(&classes, "cat\ndog\ncar\n").unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fashion-mnist.toml");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_zerolabel"))
        .args(["run", "--quiet", "--config", config.to_str().unwrap(), "--out", root.join("run").to_str().unwrap()])
        .args(["--set", &format!("data.path={}", data.display()), "--set", &format!("classes.file={}", classes.display())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains("3 classes given") && stderr.contains("10 classes"), "{stderr}");
    assert!(!root.join("run/stages").exists() || std::fs::read_dir(root.join("run/stages")).unwrap().next().is_none(), "a stage started");
    assert!(started.elapsed().as_secs_f64() < 30.0);
    let _ = std::fs::remove_dir_all(&root);
}

/// An image folder with one subfolder per class: a class list of another length fails at once.
#[test]
fn folder_class_count_is_checked_before_training() {
    let root = std::env::temp_dir().join(format!("zl-run-folder-{}", std::process::id()));
    for class in ["a", "b", "c"] {
        std::fs::create_dir_all(root.join("images").join(class)).unwrap();
        image::GrayImage::from_pixel(8, 8, image::Luma([100])).save(root.join("images").join(class).join("x.png")).unwrap();
    }
    let stderr = run_my_images(&root, "[\"cat\",\"dog\"]");
    assert!(stderr.contains("2 classes given") && stderr.contains("3 class subfolders (a, b, c)"), "{stderr}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A folder of copies of two images cannot form three clusters: refused before stage I trains.
#[test]
fn too_few_distinct_images_fail_before_training() {
    let root = std::env::temp_dir().join(format!("zl-run-copies-{}", std::process::id()));
    std::fs::create_dir_all(root.join("images")).unwrap();
    for k in 0..12u8 {
        image::GrayImage::from_pixel(8, 8, image::Luma([100 + 50 * (k % 2)])).save(root.join("images").join(format!("{k}.png"))).unwrap();
    }
    let stderr = run_my_images(&root, "[\"cat\",\"dog\",\"car\"]");
    assert!(stderr.contains("images") && stderr.contains("only 2 distinct image(s) (12 in all), too few for 3 classes"), "{stderr}");
    let checkpoints = walk(&root.join("run")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "safetensors" || e == "ot")).count();
    assert_eq!(checkpoints, 0, "stage I wrote a checkpoint");
    let _ = std::fs::remove_dir_all(&root);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    entries.flatten().flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] }).collect()
}

/// `run` of configs/my-images.toml on `root/images` with these class names, expected to fail
/// with exit code 2; its stderr.
fn run_my_images(root: &Path, names: &str) -> String {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/my-images.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_zerolabel"))
        .args(["run", "--quiet", "--config", config.to_str().unwrap(), "--out", root.join("run").to_str().unwrap()])
        .args(["--set", &format!("data.path={}", root.join("images").display()), "--set", &format!("classes.names={names}")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}
