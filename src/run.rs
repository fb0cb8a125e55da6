//! `zerolabel run`: every stage from images to a named-class classifier and its report.
//!
//! Each stage writes into `RUN/stages/<stage>-<key>/`, where the key hashes the stage's own
//! settings and the key of the stage before it (and, for stage I, the dataset's files). A stage
//! whose folder holds a finished result is reused; changing a setting changes the keys from that
//! stage on, so only what changed is redone. Stage I resumes from its last epoch checkpoint and
//! stages II-III from the first unfinished seed. `manifest.json` records the configuration,
//! seeds, versions and each stage's wall time and peak memory.
use crate::backbone::simclr::{self, LrSchedule};
use crate::config::{build_prior, pipeline_params, DatasetArgs, RunConfig};
use crate::data::images::DatasetFormat;
use crate::device;
use crate::error::Error;
use crate::experiment::{self, SeedMetrics};
use crate::io;
use crate::pipeline::{self, FeatureData, SeedRecord};
use crate::progress::status;
use crate::report::{self, ReportInputs};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct RunOptions {
    pub config_path: PathBuf,
    pub overrides: Vec<String>,
    pub out: PathBuf,
    pub force: bool,
    pub quiet: bool,
}

pub struct RunOutcome {
    /// What the command prints at the end.
    pub headline: String,
}

/// One stage's line in the manifest (also kept as `stage.json` in the stage's folder).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub key: String,
    /// Relative to the run folder.
    pub dir: PathBuf,
    /// True when this invocation found the result finished and did not recompute it.
    #[serde(default)]
    pub reused: bool,
    /// Wall time and peak resident memory of the invocation that computed it.
    pub wall_s: f64,
    pub peak_rss_mb: Option<f64>,
}

/// FNV-1a (64 bit) of a JSON value's text: a short, stable key for a stage's inputs.
pub fn stage_key(value: &Value) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in value.to_string().bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The dataset's identity for the cache key: format, subset, and the names and sizes of its
/// files (so replacing the data invalidates stage I).
pub fn dataset_fingerprint(data: &DatasetArgs) -> Result<Value> {
    let path = &data.data;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mut files: Vec<(String, u64)> = Vec::new();
    if meta.is_dir() {
        let recursive = data.format == DatasetFormat::Folder;
        let mut stack = vec![path.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let p = entry.path();
                let m = entry.metadata().map_err(|e| Error::io(&p, e))?;
                if m.is_dir() {
                    if recursive {
                        stack.push(p);
                    }
                } else {
                    files.push((p.strip_prefix(path).unwrap_or(&p).to_string_lossy().into_owned(), m.len()));
                }
            }
        }
        files.sort();
    } else {
        files.push((String::new(), meta.len()));
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
    Ok(json!({"format": data.format, "path": canonical, "limit": data.limit, "folder_size": data.folder_size, "files": files}))
}

/// Resets the kernel's peak-RSS counter of this process (Linux), so each stage's peak is its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset, in MiB (Linux; None elsewhere).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs `work` as a stage unless `finished` says its result is already there; records both.
fn stage(
    out: &Path,
    name: &str,
    key: &str,
    finished: bool,
    quiet: bool,
    stages: &mut Vec<StageRecord>,
    work: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let rel = PathBuf::from("stages").join(format!("{name}-{key}"));
    let dir = out.join(&rel);
    let record_path = dir.join("stage.json");
    if finished {
        if let Some(mut record) = std::fs::read_to_string(&record_path).ok().and_then(|t| serde_json::from_str::<StageRecord>(&t).ok()) {
            status("Reused", &format!("{name} ({})", dir.display()), quiet);
            record.reused = true;
            stages.push(record);
            return Ok(dir);
        }
    }
    status("Stage", &format!("{name} -> {}", dir.display()), quiet);
    reset_peak_rss();
    let started = Instant::now();
    work(&dir)?;
    let record = StageRecord { name: name.into(), key: key.into(), dir: rel, reused: false, wall_s: started.elapsed().as_secs_f64(), peak_rss_mb: peak_rss_mb() };
    io::write_json_atomic(&record_path, &record)?;
    stages.push(record);
    Ok(dir)
}

/// The libtorch version of the wheel this binary was built against, when its files are found.
fn libtorch_version() -> Option<String> {
    let lib = std::env::var_os("LIBTORCH").map(|d| PathBuf::from(d).join("lib")).or_else(|| option_env!("ZEROLABEL_LIBTORCH_LIB").map(PathBuf::from))?;
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split('\'').nth(1)?.to_string())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn run(config: &RunConfig, opts: &RunOptions) -> Result<RunOutcome> {
    let started_unix = unix_now();
    let started = Instant::now();
    let out = &opts.out;
    let device = config.device.resolve()?;
    let device_text = device::describe(device);
    status("Device", &device_text, opts.quiet);
    // Everything that can be checked before hours of training is checked first.
    let prior = build_prior(&config.classes)?;
    let c = prior.n_classes();
    let params = pipeline_params(&config.stages, config.classes.preset, c)?;
    let fingerprint = dataset_fingerprint(&config.data)?;
    let default_threads = tch::get_num_threads();
    let mut stages: Vec<StageRecord> = Vec::new();

    let p = &config.pretrain;
    // Stage I. The epoch budget is not part of the key under a constant learning rate: a longer
    // budget continues the run. A cosine schedule is shaped by its budget, so there it is.
    let mut pretrain_identity = json!({"data": fingerprint, "arch": p.arch, "width": p.width, "stem": p.stem,
        "batch_size": p.batch_size, "lr": p.lr, "weight_decay": p.weight_decay, "temperature": p.temperature,
        "image_size": p.image_size, "seed": p.seed, "crop_min_scale": p.crop_min_scale, "precision": p.precision.resolve(device)});
    if p.lr_schedule == LrSchedule::Cosine {
        pretrain_identity["lr_schedule"] = json!(p.lr_schedule);
        pretrain_identity["epochs"] = json!(p.epochs);
    }
    let pretrain_key = stage_key(&pretrain_identity);
    let pretrain_dir = out.join("stages").join(format!("pretrain-{pretrain_key}"));
    let checkpoint = crate::backbone::pretrain::checkpoint_path(&pretrain_dir);
    let trained_epochs = if !opts.force && checkpoint.exists() { simclr::read_meta(&checkpoint)?.epoch } else { 0 };
    if trained_epochs > p.epochs {
        bail!(
            "{}: this backbone was trained for {trained_epochs} epochs, the config asks for {}; use --force to retrain, or another --out",
            checkpoint.display(),
            p.epochs
        );
    }
    // A class list that does not fit the data fails now, not after stage I.
    if config.data.format == DatasetFormat::Folder {
        let subfolders = crate::data::images::folder_classes(&config.data.data)?;
        if !subfolders.is_empty() && subfolders.len() != c {
            return Err(Error::ClassCount {
                what: format!("{}: class names", config.data.data.display()),
                expected: format!("the folder has {} class subfolders ({}): give one name per subfolder, in sorted order", subfolders.len(), subfolders.join(", ")),
                got: c,
            }
            .into());
        }
    } else if trained_epochs < p.epochs {
        let test = config.data.read(crate::data::images::Split::Test)?;
        if let Some(labels) = &test.labels {
            crate::data::features::check_class_count(labels, c, &config.data.data)?;
        }
    }
    if opts.force {
        // Everything is validated before anything is deleted.
        let train = config.data.read(crate::data::images::Split::Train)?;
        p.backbone(&train, device)?;
        drop(train);
        crate::io::remove_for_rerun(&out.join("stages"), &out.join("model.json"))?;
    }
    let pretrain_dir = stage(out, "pretrain", &pretrain_key, trained_epochs == p.epochs, opts.quiet, &mut stages, |dir| {
        tch::set_num_threads(p.threads.unwrap_or(default_threads));
        pipeline::pretrain_stage(&config.data, p, device, dir, true, opts.quiet)?;
        Ok(())
    })?;
    let best = crate::backbone::pretrain::best_path(&pretrain_dir);

    // Feature extraction from the best (lowest training loss) backbone.
    let features_key = stage_key(&json!({"pretrain": pretrain_key, "epochs": p.epochs}));
    let features_done = out.join("stages").join(format!("features-{features_key}")).join("stage.json").exists();
    let features_dir = stage(out, "features", &features_key, features_done, opts.quiet, &mut stages, |dir| {
        tch::set_num_threads(p.threads.unwrap_or(default_threads));
        pipeline::features_stage(&config.data, &best, device, dir, opts.quiet)
    })?;
    let (train_path, test_path) = (features_dir.join("train.safetensors"), features_dir.join("test.safetensors"));

    // Stages II-III, per seed; the seed count is not part of the key (more seeds add to it).
    tch::set_num_threads(config.stages.threads.max(1));
    crate::ot::set_solver_threads(config.stages.sinkhorn_threads.clamp(1, 2));
    let data = FeatureData::load(&train_path, &test_path, None, c, device)?;
    let match_key = stage_key(&json!({"features": features_key, "prior": prior, "params": params}));
    let mut records: Vec<SeedRecord> = Vec::new();
    let match_dir = stage(out, "match", &match_key, false, opts.quiet, &mut stages, |dir| {
        records = pipeline::match_stage(&prior, &params, &config.stages, &data, dir, true, opts.quiet)?;
        Ok(())
    })?;
    if let Some(last) = stages.last_mut() {
        last.reused = records.iter().all(|r| r.reused);
        if last.reused {
            // Report the time the seeds took when they were computed.
            last.wall_s = records.iter().map(|r| r.cluster_seconds + r.match_seconds).sum();
        }
    }
    let selected = records.iter().min_by(|a, b| a.best_window_loss.total_cmp(&b.best_window_loss)).expect("at least one seed");

    // Figure 4B's L_sk classifier on the selected seed's clusters.
    let sk_path = if config.report.sk_comparison && !params.naming.classifier_only {
        let key = format!("{match_key}/sk-seed-{}", selected.seed);
        let done = match_dir.join(format!("sk-seed-{}", selected.seed)).join("classifier.safetensors").exists();
        let dir = stage(out, "match", &key, done, opts.quiet, &mut stages, |_| {
            pipeline::sk_classifier(&prior, &params, &data, &match_dir, selected, opts.quiet)?;
            Ok(())
        })?;
        if let Some(last) = stages.last_mut() {
            last.name = "match-sk (Figure 4B)".into();
        }
        Some(dir.join("classifier.safetensors"))
    } else {
        None
    };

    // The classifier `predict` uses: the seed with the lowest training loss (label-free).
    let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).to_path_buf();
    let model = json!({
        "classes": prior.class_names,
        "backbone_checkpoint": rel(&best),
        "classifier": rel(&pipeline::seed_dir(&match_dir, selected.seed).join("classifier.safetensors")),
        "seed": selected.seed,
        "selection": if params.naming.classifier_only {
            "named clusters (no stage III); the seed with the highest naming objective (no labels)"
        } else {
            "lowest windowed stage-III training loss over the seeds (no labels)"
        },
    });
    io::write_json_atomic(&out.join("model.json"), &model)?;

    // Evaluation summary and report.
    let metrics: Vec<SeedMetrics> = records.iter().filter_map(|r| r.metrics.clone()).collect();
    let summary = (!metrics.is_empty()).then(|| experiment::summarize(&metrics, c));
    io::write_json_atomic(
        &out.join("metrics.json"),
        &json!({"command": "run", "config": config.name, "classes": prior.class_names, "params": params,
            "accuracy": summary.as_ref().map(|s| s.accuracy), "summary": summary, "seeds": metrics,
            "selected_seed": selected.seed}),
    )?;
    let report_started = Instant::now();
    // What stage I resolved (e.g. precision "auto"), for the report and the manifest.
    let backbone_meta = simclr::read_meta(&best).ok();
    let inputs = ReportInputs {
        out,
        config,
        prior: &prior,
        records: &records,
        summary: summary.as_ref(),
        selected_seed: selected.seed,
        pretrain_log: &pretrain_dir.join("pretrain_log.jsonl"),
        backbone: backbone_meta.as_ref(),
        match_dir: &match_dir,
        test: &data.test,
        test_labels: data.test_labels.as_deref(),
        sk_classifier: sk_path.as_deref(),
        stages: &stages,
    };
    let report_notes = report::write_report(&inputs)?;
    stages.push(StageRecord {
        name: "report".into(),
        key: String::new(),
        dir: PathBuf::from("report.md"),
        reused: false,
        wall_s: report_started.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
    });

    let manifest = json!({
        "zerolabel": env!("CARGO_PKG_VERSION"),
        "versions": {"zerolabel": env!("CARGO_PKG_VERSION"), "tch": "0.26.0", "libtorch": libtorch_version()},
        "config_file": opts.config_path,
        "overrides": opts.overrides,
        "config": config,
        // The values every stage actually used, defaults and presets resolved.
        "resolved": {"backbone": backbone_meta.as_ref().map(|m| &m.backbone), "simclr": backbone_meta.as_ref().map(|m| &m.params),
            "stages": params, "prior": prior.params},
        "seeds": config.stages.seed_list(),
        "pretrain_seed": p.seed,
        "device": device_text,
        "started_unix": started_unix,
        "finished_unix": unix_now(),
        "wall_s": started.elapsed().as_secs_f64(),
        "stages": stages,
        "selected_seed": selected.seed,
        "accuracy": summary.as_ref().map(|s| s.accuracy),
        "report_notes": report_notes,
    });
    io::write_json_atomic(&out.join("manifest.json"), &manifest)?;

    let mut headline = String::new();
    match &summary {
        Some(s) => headline.push_str(&format!(
            "Zero-label accuracy ({}, {} seed(s)): {}% (Random baseline {}%; naming by geometry alone {}%; clusters Hungarian-matched {}%)\n",
            config.name, s.accuracy.n, s.accuracy, s.random_baseline, s.naming_accuracy, s.cluster_hungarian_accuracy
        )),
        None => headline.push_str("No test labels: the classifier was trained, accuracy was not measured.\n"),
    }
    let reused = stages.iter().filter(|s| s.reused).count();
    headline.push_str(&format!(
        "Report: {}; classifier for `zerolabel predict --run {}`; {:.1} s ({} stage(s) reused)\n",
        out.join("report.md").display(),
        out.display(),
        started.elapsed().as_secs_f64(),
        reused
    ));
    Ok(RunOutcome { headline })
}
