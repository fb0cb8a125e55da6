//! `zerolabel run` without stage I: from feature files computed elsewhere (`[features]`) and
//! from a pretrained TorchScript encoder (`[backbone] torchscript`), report included; finished
//! stages are reused, and a changed model or feature file is not mistaken for the old one.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Tensor;
use zerolabel::data::features::save_features;

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zl-runimp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn zerolabel(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zerolabel")).args(args).args(["--quiet"]).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn stage_names(manifest: &Value) -> Vec<(String, bool)> {
    manifest["stages"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap().to_string(), s["reused"].as_bool().unwrap())).collect()
}

/// Three separated clusters in 4-D (row k belongs to class k % 3), with labels.
fn clustered(path: &Path, n: i64, shift: f32) {
    let values: Vec<f32> = (0..n * 4).map(|k| {
        let (row, col) = (k / 4, k % 4);
        (if col == row % 3 { 1.0 } else { 0.1 }) + ((k * 7919) % 13) as f32 / 130.0 + shift
    }).collect();
    let labels: Vec<i64> = (0..n).map(|k| k % 3).collect();
    save_features(path, &Tensor::from_slice(&values).view([n, 4]), Some(&labels)).unwrap();
}

const STAGES: &str = "[stages]\nseeds = 2\ncluster_steps = 100\nsteps = 100\nbatch_size = 30\n\n[report]\nsk_comparison = false\n";

fn classes(dir: &Path) -> String {
    std::fs::write(dir.join("words.txt"), "cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\n").unwrap();
    "[classes]\nnames = [\"cat\", \"dog\", \"car\"]\nword_vectors = \"words.txt\"\n".into()
}

#[test]
fn run_from_imported_features_end_to_end() {
    let dir = workdir("features");
    clustered(&dir.join("train.safetensors"), 90, 0.0);
    clustered(&dir.join("test.safetensors"), 30, 0.0);
    let config = dir.join("imported.toml");
    std::fs::write(&config, format!("name = \"imported\"\ndevice = \"cpu\"\n{}\n[features]\ntrain = \"train.safetensors\"\ntest = \"test.safetensors\"\n\n{STAGES}", classes(&dir))).unwrap();
    let out = dir.join("out");
    let args = ["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let (ok, stdout, stderr) = zerolabel(&args);
    assert!(ok, "run failed: {stderr}");
    assert!(stdout.contains("Zero-label accuracy (imported, 2 seed(s))"), "{stdout}");
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(stage_names(&manifest), [("match".into(), false), ("report".into(), false)]);
    assert!(manifest["features_from"]["train_sha256"].as_str().is_some_and(|h| h.len() == 64));
    let accuracy = json(&out.join("metrics.json"))["accuracy"]["mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("feature files computed elsewhere") && report.contains("Zero-label classification"), "{report}");
    assert!(!report.contains("trained with SimCLR") && !out.join("plots/loss_pretrain.png").exists());
    assert!(out.join("plots/loss_matching.png").exists());
    let model = json(&out.join("model.json"));
    assert!(model["backbone_checkpoint"].is_null() && model["classifier"].as_str().is_some());

    // `predict` has no backbone to run on new images: a clear error, not a crash.
    let (ok, _, stderr) = zerolabel(&["predict", "--run", out.to_str().unwrap(), "--images", dir.to_str().unwrap(), "--out", dir.join("p.csv").to_str().unwrap()]);
    assert!(!ok && stderr.contains("came from elsewhere") && stderr.contains("model.json"), "{stderr}");

    // Again: the seeds are reused. With other features in the same file: recomputed.
    let (ok, _, stderr) = zerolabel(&args);
    assert!(ok, "{stderr}");
    assert_eq!(stage_names(&json(&out.join("manifest.json")))[0], ("match".into(), true));
    clustered(&dir.join("train.safetensors"), 90, 0.05);
    let (ok, _, stderr) = zerolabel(&args);
    assert!(ok, "{stderr}");
    assert_eq!(stage_names(&json(&out.join("manifest.json")))[0], ("match".into(), false));
    std::fs::remove_dir_all(dir).ok();
}

/// CIFAR-10 layout with 30 train and 12 test images of three shades (labels 0..3).
fn write_cifar(dir: &Path) {
    let record = |k: usize| {
        let class = k % 3;
        let mut r = vec![class as u8];
        r.extend((0..3072).map(|p| ((class * 80 + (p * 31 + k * 17) % 40) % 256) as u8));
        r
    };
    for b in 0..5 {
        std::fs::write(dir.join(format!("data_batch_{}.bin", b + 1)), (0..6).flat_map(|i| record(b * 6 + i)).collect::<Vec<u8>>()).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), (30..42).flat_map(record).collect::<Vec<u8>>()).unwrap();
}

#[test]
fn run_with_a_torchscript_backbone_skips_stage_one() {
    let dir = workdir("torchscript");
    let data = dir.join("cifar");
    std::fs::create_dir_all(&data).unwrap();
    write_cifar(&data);
    let model = dir.join("encoder.pt");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::copy(fixtures.join("tiny_encoder.pt"), &model).unwrap();
    let config = dir.join("ts.toml");
    std::fs::write(
        &config,
        format!("name = \"ts\"\ndevice = \"cpu\"\n[data]\nformat = \"cifar10\"\npath = \"cifar\"\n\n{}\n[backbone]\ntorchscript = \"encoder.pt\"\nimage_size = 24\nnormalize = \"imagenet\"\n\n{STAGES}", classes(&dir)),
    )
    .unwrap();
    let out = dir.join("out");
    let args = ["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let (ok, stdout, stderr) = zerolabel(&args);
    assert!(ok, "run failed: {stderr}");
    assert!(stdout.contains("Zero-label accuracy (ts, 2 seed(s))"), "{stdout}");
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(stage_names(&manifest), [("features (TorchScript)".into(), false), ("match".into(), false), ("report".into(), false)]);
    let sha = manifest["features_from"]["torchscript_sha256"].as_str().unwrap().to_string();
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("pretrained TorchScript model") && report.contains(&sha[..12]), "{report}");

    // Reused as it is; another model file under the same name is a new key.
    let (ok, _, stderr) = zerolabel(&args);
    assert!(ok, "{stderr}");
    assert!(stage_names(&json(&out.join("manifest.json")))[..2].iter().all(|s| s.1), "features and seeds reused");
    std::fs::copy(fixtures.join("tiny_maps.pt"), &model).unwrap();
    let (ok, _, stderr) = zerolabel(&args);
    assert!(!ok && stderr.contains("[30, 4, 24, 24]"), "the new model was used: {stderr}");

    // Both sources at once is a config error naming the file.
    std::fs::write(&config, format!("{}\n[features]\ntrain = \"a.npy\"\ntest = \"b.npy\"\n", std::fs::read_to_string(&config).unwrap())).unwrap();
    let (ok, _, stderr) = zerolabel(&args);
    assert!(!ok && stderr.contains("ts.toml") && stderr.contains("give one"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}

/// Writes `classes` as a class vectors file (`encoder = "vectors"`) and the (features, labels)
/// of both splits as feature files, runs `zerolabel run` on them (2 seeds, 1,000 clustering
/// steps), and returns the run folder, what it printed, and the mean Hungarian accuracy of the
/// clusters and the mean accuracy of the classifier. `extra`: more arguments of `run`.
fn run_on_class_vectors(dir: &Path, classes: &[Vec<f64>], train: (&Tensor, &[i64]), test: (&Tensor, &[i64]), extra: &[&str]) -> (PathBuf, String, f64, f64) {
    let lines: Vec<String> = classes.iter().map(|v| v.iter().map(|x| format!("{x:.6}")).collect::<Vec<_>>().join(" ")).collect();
    std::fs::write(dir.join("classes.txt"), lines.join("\n") + "\n").unwrap();
    save_features(&dir.join("train.safetensors"), train.0, Some(train.1)).unwrap();
    save_features(&dir.join("test.safetensors"), test.0, Some(test.1)).unwrap();
    let names: Vec<String> = (0..classes.len()).map(|k| format!("\"class {k}\"")).collect();
    let config = dir.join("vectors.toml");
    std::fs::write(&config, format!(
        "name = \"vectors\"\ndevice = \"cpu\"\n[classes]\nnames = [{}]\nencoder = \"vectors\"\nclass_vectors = \"classes.txt\"\n\n[features]\ntrain = \"train.safetensors\"\ntest = \"test.safetensors\"\n\n[stages]\nseeds = 2\ncluster_steps = 1000\nsteps = 100\nbatch_size = 30\n\n[report]\nsk_comparison = false\n",
        names.join(", "))).unwrap();
    let out = dir.join("out");
    std::fs::remove_dir_all(&out).ok();
    let args = [&["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()], extra].concat();
    let (ok, stdout, stderr) = zerolabel(&args);
    assert!(ok, "run failed: {stderr}");
    let metrics = json(&out.join("metrics.json"));
    let clusters = metrics["summary"]["cluster_hungarian_accuracy"]["mean"].as_f64().unwrap();
    (out, stdout, clusters, metrics["accuracy"]["mean"].as_f64().unwrap())
}

/// Sixteen classes (above the enumeration limit of 10) with a naming search given one
/// millisecond: the summary and the report say the naming was not proven optimal, with its
/// bound, and point to the setting that gives the search more time.
#[test]
fn a_naming_search_stopped_at_its_time_limit_is_reported_as_not_proven_optimal() {
    let dir = workdir("optimality");
    let c = 16i64;
    let noise = |k: i64| ((k * 7919 + 13) % 101) as f32 / 1010.0;
    let features = |path: &Path, n: i64| {
        let values: Vec<f32> = (0..n * c).map(|k| if k % c == (k / c) % c { 1.0 } else { 0.0 } + noise(k)).collect();
        let labels: Vec<i64> = (0..n).map(|k| k % c).collect();
        save_features(path, &Tensor::from_slice(&values).view([n, c]), Some(&labels)).unwrap();
    };
    features(&dir.join("train.safetensors"), 20 * c);
    features(&dir.join("test.safetensors"), 4 * c);
    let names: Vec<String> = (0..c).map(|k| format!("class{k}")).collect();
    let words: String = names.iter().enumerate().map(|(i, n)| format!("{n} {}\n", (0..6).map(|j| format!("{:.3}", ((i * 31 + j * 17) % 23) as f64 / 23.0 - 0.5)).collect::<Vec<_>>().join(" "))).collect();
    std::fs::write(dir.join("words.txt"), words).unwrap();
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let config = dir.join("many.toml");
    let stages = "[stages]\nseeds = 1\ncluster_steps = 100\nsteps = 100\nbatch_size = 32\nnaming = [\"geometry\"]\nnaming_time_limit = 0.001\n\n[report]\nsk_comparison = false\n";
    std::fs::write(&config, format!("name = \"many\"\ndevice = \"cpu\"\n[classes]\nnames = [{}]\nword_vectors = \"words.txt\"\n\n[features]\ntrain = \"train.safetensors\"\ntest = \"test.safetensors\"\n\n{stages}", quoted.join(", "))).unwrap();
    let out = dir.join("out");
    let (ok, stdout, stderr) = zerolabel(&["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok, "run failed: {stderr}");
    assert!(stdout.contains("Naming by geometry: NOT proven optimal: the search stopped after") && stdout.contains("naming_time_limit"), "{stdout}");
    let manifest = json(&out.join("manifest.json"));
    let stage = manifest["stages"][0]["dir"].as_str().map(PathBuf::from).unwrap_or_default();
    let record = json(&out.join(stage).join("seed-0").join("seed.json"));
    let optimality = &record["naming_optimality"];
    assert_eq!(optimality["kind"], "bounded", "{record}");
    assert!(optimality["upper_bound"].as_f64().unwrap() > record["naming_score"].as_f64().unwrap());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("geometry naming optimal?") && report.contains("NOT proven optimal"), "{report}");
    std::fs::remove_dir_all(dir).ok();
}

/// Issue 13's synthetic property through the whole command line: feature files laid out as a
/// noisy, rotated, scaled and shifted copy of the class vectors' geometry, where the class
/// vectors are close together (a flat geometry, as a sentence encoder gives), so that the
/// L2-normalised features sit in a small cap of the sphere. `zerolabel run` (default stages:
/// Sinkhorn clustering, geometry naming) must cluster and name every test sample right, and
/// say that the names can be trusted, with the paper's stage III beside it. (With stage II's
/// literal cost, `cluster_cost_scale = "none"`, the clusters of this set are not pure.)
#[test]
fn an_aligned_copy_of_a_flat_class_geometry_is_named_right_end_to_end() {
    use zerolabel::naming::kernels::aligned_synthetic;
    let dir = workdir("aligned");
    let (c, class_dim, per_class) = (8usize, 20usize, 60usize);
    let mut rng = zerolabel::rng::Rng::new(7);
    let classes: Vec<Vec<f64>> = (0..c).map(|_| (0..class_dim).map(|_| 0.05 * rng.normal()).collect()).collect();
    let (features, dim, labels) = aligned_synthetic(&classes, 32, per_class, 0.3, 11);
    let n_train = c * per_class * 2 / 3;
    let rows = |range: std::ops::Range<usize>| Tensor::from_slice(&features[range.start * dim..range.end * dim]).view([range.len() as i64, dim as i64]);
    let (_, stdout, clusters, accuracy) = run_on_class_vectors(&dir, &classes, (&rows(0..n_train), &labels[..n_train]), (&rows(n_train..labels.len()), &labels[n_train..]), &[]);
    assert!(clusters > 0.99, "clusters only {:.1} % pure: {stdout}", 100.0 * clusters);
    assert!(accuracy > 0.99, "named {:.1} % right on {:.1} % pure clusters: {stdout}", 100.0 * accuracy, 100.0 * clusters);
    assert!(stdout.contains("Names trusted"), "{stdout}");
    assert!(stdout.contains("the paper's stage III"), "{stdout}");
    std::fs::remove_dir_all(dir).ok();
}

/// `c` random class vectors (20-D, from `class_seed`) and an aligned copy of their geometry
/// (noise 0.3, 32-D, from `data_seed`), `per_class` samples each, of which the classes in the
/// second half keep every `keep_every`-th: (classes, train, test), two thirds for training.
fn unbalanced_classes(c: usize, per_class: usize, keep_every: usize, class_seed: u64, data_seed: u64) -> (Vec<Vec<f64>>, (Tensor, Vec<i64>), (Tensor, Vec<i64>)) {
    use zerolabel::naming::kernels::aligned_synthetic;
    let mut rng = zerolabel::rng::Rng::new(class_seed);
    let classes: Vec<Vec<f64>> = (0..c).map(|_| (0..20).map(|_| rng.normal()).collect()).collect();
    let (features, dim, labels) = aligned_synthetic(&classes, 32, per_class, 0.3, data_seed);
    let mut seen = vec![0usize; c];
    let kept: Vec<usize> = (0..labels.len()).filter(|&i| {
        let class = labels[i] as usize;
        seen[class] += 1;
        class < c / 2 || seen[class] % keep_every == 0
    }).collect();
    let n_train = kept.len() * 2 / 3;
    let rows = |range: &[usize]| {
        let values: Vec<f32> = range.iter().flat_map(|&i| features[i * dim..(i + 1) * dim].iter().copied()).collect();
        (Tensor::from_slice(&values).view([range.len() as i64, dim as i64]), range.iter().map(|&i| labels[i]).collect::<Vec<i64>>())
    };
    (classes, rows(&kept[..n_train]), rows(&kept[n_train..]))
}

/// Eight classes whose sizes fall as (k + 1)^-exponent from 600, features a noisy rotated copy of
/// random class vectors (30-D, centred, unit mean square norm) in 128-D, with noise `noise`
/// per coordinate: the construction of scripts/study/unbalanced_classes.py.
fn long_tailed_classes(exponent: f64, noise: f64, class_seed: u64, data_seed: u64) -> (Vec<Vec<f64>>, (Tensor, Vec<i64>), (Tensor, Vec<i64>)) {
    let sizes: Vec<usize> = (0..8).map(|k| (600.0 * ((k + 1) as f64).powf(-exponent)) as usize).collect();
    noisy_copy_of_classes(&sizes, &[noise; 8], class_seed, data_seed)
}

/// Classes of these sizes whose samples scatter with these noise levels per coordinate around
/// a rotated copy (128-D) of random class vectors (30-D, centred, unit mean square norm), as
/// given: not unit length.
fn noisy_copy_of_classes(sizes: &[usize], noise: &[f64], class_seed: u64, data_seed: u64) -> (Vec<Vec<f64>>, (Tensor, Vec<i64>), (Tensor, Vec<i64>)) {
    let (c, d, dim) = (sizes.len(), 30, 128);
    let mut rng = zerolabel::rng::Rng::new(class_seed);
    let classes: Vec<Vec<f64>> = (0..c).map(|_| (0..d).map(|_| rng.normal()).collect()).collect();
    let mean: Vec<f64> = (0..d).map(|j| classes.iter().map(|v| v[j]).sum::<f64>() / c as f64).collect();
    let centred: Vec<Vec<f64>> = classes.iter().map(|v| v.iter().zip(&mean).map(|(x, m)| x - m).collect()).collect();
    let rms = (centred.iter().flatten().map(|x| x * x).sum::<f64>() / c as f64).sqrt();
    let mut rng = zerolabel::rng::Rng::new(data_seed);
    let rotation = zerolabel::naming::kernels::random_rotation(&mut rng, dim);
    let centres: Vec<Vec<f64>> = centred.iter().map(|v| rotation.iter().map(|row| row.iter().zip(v).map(|(r, x)| r * x / rms).sum()).collect()).collect();
    let mut samples: Vec<(Vec<f32>, i64)> = vec![];
    for (k, centre) in centres.iter().enumerate() {
        for _ in 0..sizes[k] {
            samples.push((centre.iter().map(|m| (m + noise[k] * rng.normal()) as f32).collect(), k as i64));
        }
    }
    rng.shuffle(&mut samples);
    let n_train = samples.len() * 2 / 3;
    let rows = |part: &[(Vec<f32>, i64)]| {
        let values: Vec<f32> = part.iter().flat_map(|(x, _)| x.iter().copied()).collect();
        (Tensor::from_slice(&values).view([part.len() as i64, dim as i64]), part.iter().map(|(_, y)| *y).collect::<Vec<i64>>())
    };
    (classes, rows(&samples[..n_train]), rows(&samples[n_train..]))
}

/// Six classes whose samples scatter 0.5 to 2 times as widely, features given as they are
/// (not unit length). Stages II and III work on unit-length features, but the naming compares
/// the member means of the features as given: normalising each sample first shrinks each
/// class's mean by its own spread, which changes the geometry the names are read from. The same
/// files normalised beforehand (the old naming, measured on six draws: 0 of 6 trusted, one
/// named 34.5 %) lose the names' trust; as given, they are named right and trusted (6 of 6).
#[test]
fn classes_of_unequal_spreads_are_named_from_the_features_as_given() {
    let dir = workdir("spreads");
    let spreads: Vec<f64> = (0..6).map(|k| 0.145 * (0.5 + 0.3 * k as f64)).collect();
    let (classes, train, test) = noisy_copy_of_classes(&[300; 6], &spreads, 1, 101);
    let (_, stdout, clusters, accuracy) = run_on_class_vectors(&dir, &classes, (&train.0, &train.1), (&test.0, &test.1), &[]);
    assert!(accuracy > 0.97 && stdout.contains("Names trusted"), "named {:.1} % right on {:.1} % pure clusters: {stdout}", 100.0 * accuracy, 100.0 * clusters);
    let unit = |t: &Tensor| t / t.norm_scalaropt_dim(2, [1i64].as_slice(), true);
    let (_, stdout, clusters_unit, accuracy_unit) = run_on_class_vectors(&dir, &classes, (&unit(&train.0), &train.1), (&unit(&test.0), &test.1), &[]);
    assert!((clusters_unit - clusters).abs() < 0.01, "the same clusters: {clusters_unit} vs {clusters}");
    assert!(accuracy_unit < 0.5 && !stdout.contains("Names trusted"), "unit-length features named {:.1} % right: the case does not need the features as given: {stdout}", 100.0 * accuracy_unit);
    std::fs::remove_dir_all(dir).ok();
}

/// Long-tailed classes (600 down to 140 samples, 4.3:1) give Sinkhorn clusters that split the
/// large classes and merge small ones into clusters of nearly equal sizes (2.2:1 here, below
/// `UNEQUAL_SIZES_RATIO`), whose names are wrong and flagged (measured: 0 %). The jury's
/// distrust alone makes the run try k-means, whose clusters are pure and whose names are
/// right and trusted.
#[test]
fn untrusted_names_of_long_tailed_classes_get_a_kmeans_second_opinion() {
    let dir = workdir("long-tailed");
    let (classes, train, test) = long_tailed_classes(0.7, 0.145, 0, 100);
    let (out, stdout, clusters, accuracy) = run_on_class_vectors(&dir, &classes, (&train.0, &train.1), (&test.0, &test.1), &[]);
    assert!(accuracy > 0.97 && stdout.contains("Names trusted"), "named {:.1} % right on {:.1} % pure clusters: {stdout}", 100.0 * accuracy, 100.0 * clusters);
    assert!(stdout.contains("did not trust the names of the Sinkhorn clusters"), "{stdout}");
    let stage = out.join(json(&out.join("manifest.json"))["stages"][0]["dir"].as_str().unwrap());
    let ratios: Vec<Option<f64>> = (0..2).map(|seed| json(&stage.join(format!("seed-{seed}/seed.json")))["kmeans_fallback"].as_f64()).collect();
    assert!(ratios.iter().all(|r| r.is_some_and(|r| r < 2.5)), "both seeds replaced by k-means for their names, not their sizes: {ratios:?}");
    let (_, stdout, _, accuracy) = run_on_class_vectors(&dir, &classes, (&train.0, &train.1), (&test.0, &test.1), &["--set", "stages.kmeans_fallback=false"]);
    assert!(accuracy < 0.5 && !stdout.contains("Names trusted"), "the Sinkhorn clusters alone named {:.1} % right: the case does not need k-means: {stdout}", 100.0 * accuracy);
    std::fs::remove_dir_all(dir).ok();
}

/// Unbalanced classes (three of six classes four times as large as the others), features an
/// aligned copy of the class vectors' geometry: the clusters must keep their true sizes for the
/// member means to keep that geometry. The paper's assignment rule (argmax of the balanced
/// plan, `assign = "plan"`) makes every cluster the same size, filling the small clusters with
/// samples of the large classes: their member means move, and the names come out wrong or
/// cannot be trusted (measured: names 97 % right, support 0.50, untrusted).
#[test]
fn unbalanced_classes_keep_their_sizes_and_are_named_right_end_to_end() {
    let dir = workdir("unbalanced");
    let (classes, (train, train_labels), (test, test_labels)) = unbalanced_classes(6, 240, 4, 5, 3);
    let (c, n_train) = (classes.len(), train_labels.len());
    let (out, stdout, clusters, accuracy) = run_on_class_vectors(&dir, &classes, (&train, &train_labels), (&test, &test_labels), &[]);
    assert!(accuracy > 0.97, "named {:.1} % right on {:.1} % pure clusters: {stdout}", 100.0 * accuracy, 100.0 * clusters);
    assert!(stdout.contains("Names trusted"), "{stdout}");
    // Every seed's training clusters have the classes' sizes (sorted), each to within 6 % of
    // the training set (the balanced plan's equal sizes are 12 % off).
    let sorted_sizes = |members: &[i64]| {
        let mut sizes = vec![0usize; c];
        members.iter().for_each(|&k| sizes[k as usize] += 1);
        sizes.sort_unstable();
        sizes
    };
    let true_sizes = sorted_sizes(&train_labels);
    let stage = out.join(json(&out.join("manifest.json"))["stages"][0]["dir"].as_str().unwrap());
    for seed in 0..2 {
        let tensors = Tensor::read_safetensors(stage.join(format!("seed-{seed}/clusters.safetensors"))).unwrap();
        let assignments = Vec::<i64>::try_from(&tensors.iter().find(|(name, _)| name == "assignments").unwrap().1).unwrap();
        let sizes = sorted_sizes(&assignments);
        let worst = sizes.iter().zip(&true_sizes).map(|(&s, &t)| s.abs_diff(t)).max().unwrap();
        assert!(worst * 100 <= 6 * n_train, "seed {seed}: cluster sizes {sizes:?}, class sizes {true_sizes:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Three of six classes four times as large as the others (450 against 112), another draw of
/// the construction above. Sinkhorn clustering learns its centroids for clusters of equal
/// sizes; on these features seed 0's clusters leave one centroid with a handful of members
/// (sizes 301:1) and its names, 6 % right, are trusted by the jury, while seed 1's are right.
/// With the fallback each seed's clusters, of very unequal sizes,
/// are clustered again by k-means, whose names are right and trusted, and the run says so.
#[test]
fn very_unbalanced_classes_fall_back_on_kmeans_clusters() {
    let dir = workdir("unbalanced-fallback");
    let (classes, train, test) = unbalanced_classes(6, 450, 4, 100, 1);
    let (out, stdout, clusters, accuracy) = run_on_class_vectors(&dir, &classes, (&train.0, &train.1), (&test.0, &test.1), &[]);
    assert!(accuracy > 0.97, "named {:.1} % right on {:.1} % pure clusters: {stdout}", 100.0 * accuracy, 100.0 * clusters);
    assert!(stdout.contains("Names trusted") && stdout.contains("k-means clusters, not Sinkhorn's"), "{stdout}");
    let stage = out.join(json(&out.join("manifest.json"))["stages"][0]["dir"].as_str().unwrap());
    let fell_back = (0..2).filter(|seed| json(&stage.join(format!("seed-{seed}/seed.json")))["kmeans_fallback"].as_f64().is_some_and(|r| r >= 2.5)).count();
    assert!(fell_back >= 1, "no seed fell back on k-means: {stdout}");
    // Without the fallback some seed's own names are wrong: the case needs it. (Since a tied
    // vote keeps the selected seed's names, the vote of a wrong and a right trusted seed is right.)
    let (out, stdout, _, _) = run_on_class_vectors(&dir, &classes, (&train.0, &train.1), (&test.0, &test.1), &["--set", "stages.kmeans_fallback=false"]);
    let stage = out.join(json(&out.join("manifest.json"))["stages"][0]["dir"].as_str().unwrap());
    let own_names: Vec<f64> = (0..2).map(|seed| json(&stage.join(format!("seed-{seed}/seed.json")))["metrics"]["naming_accuracy"].as_f64().unwrap()).collect();
    assert!(own_names.iter().any(|&a| a < 0.5), "every seed's Sinkhorn clusters named right ({own_names:?}): the case does not need the fallback: {stdout}");
    std::fs::remove_dir_all(dir).ok();
}
