//! Cluster sheets (`zerolabel clusters`) and naming by a person (`[classes] cluster_names`,
//! `run --cluster-names FILE`): a sheet and an index row for every cluster (an empty one too),
//! names checked before any work, the person's names giving the predictions they imply, and a
//! tiny run (CIFAR-10 layout, the TorchScript fixture as backbone) taken through
//! run -> clusters -> names -> run, where only the naming is redone.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Tensor;
use zerolabel::clustering::Clusters;
use zerolabel::data::images::ImageSet;
use zerolabel::naming::person::{parse_cluster_names, PersonNamer};
use zerolabel::naming::{Namer, NamingContext, NamingKind};
use zerolabel::prior::ordinal::ordinal_prior;
use zerolabel::prior::sampler::PriorAtoms;
use zerolabel::prior::PriorParams;
use zerolabel::sheets::{nearest_members, sheet_file, write_sheets, SheetEntry, SheetSource};

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zl-sheets-{name}-{}", std::process::id()));
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

/// The sheet writer on hand-made clusters, one of them empty: a PNG and an index row for each.
#[test]
fn sheets_for_every_cluster_including_an_empty_one() {
    let dir = workdir("writer");
    let n = 10;
    let images = ImageSet { pixels: (0..n * 6 * 5 * 3).map(|v| (v * 13 % 256) as u8).collect(), count: n, height: 6, width: 5, channels: 3, labels: None, class_names: vec![] };
    // Cluster 1 has no member.
    let assignments: Vec<i64> = (0..n as i64).map(|i| if i < 6 { 0 } else { 2 }).collect();
    let features = Tensor::from_slice(&(0..n).map(|i| i as f32).collect::<Vec<_>>()).view([n as i64, 1]);
    let nearest = nearest_members(&features, &assignments, 3, 4).unwrap();
    assert_eq!(nearest[0].len(), 4);
    assert!(nearest[1].is_empty());
    // Cluster 2 holds rows 6..10 (mean 7.5): 7 and 8 are nearest.
    assert_eq!(&nearest[2][..2], &[7, 8]);
    let names = ["cat", "dog", "car"];
    let entries: Vec<SheetEntry> = (0..3)
        .map(|k| SheetEntry {
            cluster: k,
            size: assignments.iter().filter(|&&a| a == k as i64).count(),
            nearest: nearest[k].clone(),
            proposed: Some(names[k].to_string()),
            posterior: Some(0.5),
            file: sheet_file(k, 3),
        })
        .collect();
    let source = SheetSource { run: PathBuf::from("runs/tiny"), seed: 4, config_file: None, overrides: vec![], class_names: names.iter().map(|s| s.to_string()).collect(), per_cluster: 4 };
    let out = dir.join("sheets");
    // Without a font (pure pixels) and with one where installed.
    let fonts = [None, zerolabel::plot::Font::find().ok()];
    for font in &fonts {
        write_sheets(&out, &images, &entries, &source, font.as_ref()).unwrap();
        for k in 0..3 {
            let img = image::open(out.join(format!("cluster-0{k}.png"))).unwrap().to_rgb8();
            assert!(img.width() >= 40 && img.height() >= 48, "cluster {k}: {:?}", img.dimensions());
        }
    }
    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    for k in 0..3 {
        assert!(index.contains(&format!("| {k} | [cluster-0{k}.png](cluster-0{k}.png) | {} | {} | 0.50 | 4 |", entries[k].size, names[k])), "{index}");
    }
    assert!(index.contains("| 1 | [cluster-01.png](cluster-01.png) | 0 |"), "the empty cluster is listed: {index}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(html.matches("<img src=").count(), 3, "{html}");
    let template = zerolabel::naming::person::read_names_file(&out.join("cluster_names.txt")).unwrap();
    assert_eq!(template, ["cat", "dog", "car"]);
    std::fs::remove_dir_all(dir).ok();
}

/// A person's names on a constructed case: each test point gets the class given to its nearest
/// cluster; another seed with the same clusters in another order gets the same predictions.
#[test]
fn person_naming_predicts_the_class_given_to_the_nearest_cluster() {
    let classes: Vec<String> = ["low", "mid", "high"].iter().map(|s| s.to_string()).collect();
    let prior = ordinal_prior(&classes, PriorParams::default()).unwrap();
    let atoms = PriorAtoms::new(&prior);
    // Three clusters on the axes of 3-D space, two members each.
    let rows = [[1f32, 0., 0.], [0.9, 0.1, 0.], [0., 1., 0.], [0.1, 0.9, 0.], [0., 0., 1.], [0., 0.1, 0.9]];
    let train = Tensor::from_slice(&rows.concat()).view([6, 3]);
    let clusters = Clusters::new(&train, vec![0, 0, 1, 1, 2, 2], None, vec![]).unwrap();
    // The person: cluster 0 is "high", cluster 1 "low", cluster 2 "mid".
    let class_of = parse_cluster_names(&["high".into(), "low".into(), "MID".into()], &classes).unwrap();
    assert_eq!(class_of, [2, 0, 1]);
    let reference = Vec::<Vec<f64>>::try_from(clusters.member_means.to_kind(tch::Kind::Double)).unwrap();
    let namer = PersonNamer::new(class_of, 7, reference).unwrap();
    let ctx = NamingContext { train: &train, train_raw: None, clusters: &clusters, prior: &prior, atoms: &atoms };
    let named = namer.name_clusters(&ctx, None, 7, &mut |_, _| Ok(())).unwrap();
    assert_eq!(named.method, NamingKind::Person);
    assert_eq!(named.class_of, [2, 0, 1]);
    let test = Tensor::from_slice(&[0.8f32, 0.2, 0., 0., 0.2, 0.8, 0.1, 0.7, 0.2]).view([3, 3]);
    assert_eq!(named.classifier.predict(&test), [2, 1, 0]);
    // Seed 8 found the same clusters in the order (2, 0, 1).
    let permuted = Clusters::new(&train, vec![1, 1, 2, 2, 0, 0], None, vec![]).unwrap();
    let ctx = NamingContext { train: &train, train_raw: None, clusters: &permuted, prior: &prior, atoms: &atoms };
    let other = namer.name_clusters(&ctx, None, 8, &mut |_, _| Ok(())).unwrap();
    assert_eq!(other.class_of, [1, 2, 0]);
    assert_eq!(other.classifier.predict(&test), [2, 1, 0]);
    assert!(named.selection_score < other.selection_score, "the named seed is the one selected");
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

/// A tiny finished run: features from the TorchScript fixture, two seeds, short stages.
fn tiny_run(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("cifar");
    std::fs::create_dir_all(&data).unwrap();
    write_cifar(&data);
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_encoder.pt"), dir.join("encoder.pt")).unwrap();
    std::fs::write(dir.join("words.txt"), "cat 1 0 0\ndog 0.9 0.1 0\ncar 0 0 1\n").unwrap();
    let config = dir.join("tiny.toml");
    std::fs::write(
        &config,
        "name = \"tiny\"\ndevice = \"cpu\"\n[data]\nformat = \"cifar10\"\npath = \"cifar\"\n\n[classes]\nnames = [\"cat\", \"dog\", \"car\"]\nword_vectors = \"words.txt\"\n\n\
         [backbone]\ntorchscript = \"encoder.pt\"\nimage_size = 24\n\n[stages]\nseeds = 2\ncluster_steps = 100\nsteps = 100\nbatch_size = 30\n\n[report]\nsk_comparison = false\n",
    )
    .unwrap();
    (config, dir.join("out"))
}

#[test]
fn run_then_sheets_then_named_by_a_person() {
    let dir = workdir("e2e");
    let (config, out) = tiny_run(&dir);
    let run_args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let call = |args: &[String]| zerolabel(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, stdout, stderr) = call(&run_args(&[]));
    assert!(ok, "run failed: {stderr}");
    assert!(stdout.contains("[classifier named by geometry"), "{stdout}");
    let selected = json(&out.join("manifest.json"))["selected_seed"].as_u64().unwrap();

    // The sheets of the selected seed: one per cluster, the index, the names template.
    let sheets = dir.join("sheets");
    let (ok, _, stderr) = zerolabel(&["clusters", "--run", out.to_str().unwrap(), "--out", sheets.to_str().unwrap(), "--per-cluster", "5"]);
    assert!(ok, "clusters failed: {stderr}");
    let index = std::fs::read_to_string(sheets.join("index.md")).unwrap();
    assert!(index.contains(&format!("seed {selected}")) && index.contains(&format!("--cluster-names-seed {selected}")), "{index}");
    let mut sizes = 0;
    for k in 0..3 {
        let img = image::open(sheets.join(format!("cluster-0{k}.png"))).unwrap();
        assert!(img.width() >= 50);
        let row = index.lines().find(|l| l.starts_with(&format!("| {k} | [cluster-0{k}.png]"))).unwrap_or_else(|| panic!("no row for cluster {k}: {index}"));
        sizes += row.split('|').nth(3).unwrap().trim().parse::<usize>().unwrap();
    }
    assert_eq!(sizes, 30, "every training image in one cluster");
    let template = zerolabel::naming::person::read_names_file(&sheets.join("cluster_names.txt")).unwrap();
    assert_eq!(template.len(), 3);

    // Validation before any work: an unknown seed, --out that is a file, a folder that is no run.
    let (ok, _, stderr) = zerolabel(&["clusters", "--run", out.to_str().unwrap(), "--out", sheets.to_str().unwrap(), "--seed", "9"]);
    assert!(!ok && stderr.contains("--seed 9") && stderr.contains("its seeds: 0, 1"), "{stderr}");
    std::fs::write(dir.join("afile"), "x").unwrap();
    let (ok, _, stderr) = zerolabel(&["clusters", "--run", out.to_str().unwrap(), "--out", dir.join("afile").to_str().unwrap()]);
    assert!(!ok && stderr.contains("afile") && stderr.contains("not a folder"), "{stderr}");
    let (ok, _, stderr) = zerolabel(&["clusters", "--run", dir.join("cifar").to_str().unwrap(), "--out", sheets.to_str().unwrap()]);
    assert!(!ok && stderr.contains("manifest.json") && stderr.contains("not a finished run"), "{stderr}");

    // Named by a person: the names in cluster order, as the sheets show them (here the class
    // list rotated, so that they differ from the geometry's at least somewhere).
    let names_file = dir.join("names.txt");
    let names = ["dog", "car", "cat"];
    std::fs::write(&names_file, format!("# my names\n{}\n", names.join("\n"))).unwrap();
    let (ok, stdout, stderr) = call(&run_args(&["--cluster-names", names_file.to_str().unwrap()]));
    assert!(ok, "named run failed: {stderr}");
    assert!(stdout.contains("[classifier named by a person from the cluster sheets]"), "{stdout}");
    assert!(stdout.contains("the paper's stage III"), "the paper's stage III is still reported: {stdout}");
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(
        stage_names(&manifest),
        [("features (TorchScript)".into(), true), ("match".into(), true), ("naming by a person".into(), false), ("report".into(), false)],
        "only the naming was redone"
    );
    assert_eq!(manifest["selected_seed"].as_u64(), Some(selected), "the named seed is the classifier's");
    let model = json(&out.join("model.json"));
    assert_eq!(model["naming"], serde_json::json!(["person"]));
    let person_dir = out.join(manifest["stages"][2]["dir"].as_str().unwrap());
    let record = json(&person_dir.join(format!("seed-{selected}/seed.json")));
    let class_of: Vec<usize> = names.iter().map(|n| ["cat", "dog", "car"].iter().position(|c| c == n).unwrap()).collect();
    assert_eq!(record["class_of"], serde_json::json!(class_of));
    assert_eq!(record["person"]["named_seed"].as_u64(), Some(selected));
    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["naming_chain"], serde_json::json!(["person"]));
    assert!(metrics["summary"]["paper_accuracy"]["mean"].as_f64().is_some(), "the paper's stage III beside");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Classifier: named by a person from the cluster sheets") && report.contains("## Named by a person"), "{report}");
    assert!(report.contains("no matching); classifier: named by a person from the cluster sheets"), "{report}");

    // Other names: only the naming stage is redone, into another folder.
    std::fs::write(&names_file, "car\ncat\ndog\n").unwrap();
    let (ok, _, stderr) = call(&run_args(&["--cluster-names", names_file.to_str().unwrap()]));
    assert!(ok, "{stderr}");
    let manifest2 = json(&out.join("manifest.json"));
    assert_eq!(stage_names(&manifest2)[..3].iter().map(|s| s.1).collect::<Vec<_>>(), [true, true, false]);
    assert_ne!(manifest2["stages"][2]["dir"], manifest["stages"][2]["dir"]);
    // The same names again: reused.
    let (ok, _, stderr) = call(&run_args(&["--cluster-names", names_file.to_str().unwrap()]));
    assert!(ok, "{stderr}");
    assert!(stage_names(&json(&out.join("manifest.json")))[..3].iter().all(|s| s.1));
    std::fs::remove_dir_all(dir).ok();
}

/// Wrong names fail at once, naming what is wrong, before any stage starts.
#[test]
fn wrong_cluster_names_are_refused_before_any_work() {
    let dir = workdir("refuse");
    let (config, out) = tiny_run(&dir);
    let names_file = dir.join("names.txt");
    let refuse = |names: &str, extra: &[&str]| -> String {
        std::fs::write(&names_file, names).unwrap();
        let mut args = vec!["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap(), "--cluster-names", names_file.to_str().unwrap()];
        args.extend(extra);
        let (ok, _, stderr) = zerolabel(&args);
        assert!(!ok, "accepted {names:?}");
        assert!(!out.join("stages").exists(), "a stage started for {names:?}");
        stderr
    };
    let e = refuse("cat\ndog\n", &[]);
    assert!(e.contains("names.txt") && e.contains("2 name(s)") && e.contains("expected 3 names"), "{e}");
    let e = refuse("cat\ndog\nbird\n", &[]);
    assert!(e.contains("\"bird\" (cluster 2)") && e.contains("\"cat\", \"dog\", \"car\""), "{e}");
    let e = refuse("cat\ndog\ncat\n", &[]);
    assert!(e.contains("given to clusters 0 and 2"), "{e}");
    let e = refuse("cat\ndog\ncar\n", &["--cluster-names-seed", "5"]);
    assert!(e.contains("cluster_names_seed = 5") && e.contains("one of the run's seeds (0, 1)"), "{e}");
    // In the config itself.
    let (ok, _, stderr) = zerolabel(&["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "classes.cluster_names=[\"cat\", \"car\"]"]);
    assert!(!ok && stderr.contains("classes.cluster_names") && stderr.contains("expected 3 names"), "{stderr}");
    assert!(!out.join("stages").exists());
    // `naming = ["person"]` is not a chain.
    let (ok, _, stderr) = zerolabel(&["run", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "stages.naming=[\"person\"]"]);
    assert!(!ok && stderr.contains("cluster_names"), "{stderr}");
    std::fs::remove_dir_all(dir).ok();
}
