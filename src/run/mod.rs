//! `zerolabel run`: every stage from images to a named-class classifier and its report.
//! Stage I is SimCLR, or a pretrained TorchScript model (`[backbone]`), or nothing when
//! `[features]` imports feature files computed elsewhere.
//!
//! Each stage writes into `RUN/stages/<stage>-<key>/` (paths from [`RunLayout`]), where the key
//! hashes the stage's own settings and the key of the stage before it (and, for stage I, the
//! dataset's files). A stage whose folder holds a finished result is reused; changing a setting
//! changes the keys from that stage on, so only what changed is redone. Stage I resumes from its
//! last epoch checkpoint and stages II-III from the first unfinished seed. Everything that can be
//! checked is checked before anything is trained or deleted. `manifest.json` ([`manifest`])
//! records the configuration, seeds, versions and each stage's wall time and peak memory.
mod consensus;
pub mod manifest;

use crate::backbone::pretrain::{best_path, checkpoint_path};
use crate::backbone::simclr::{self, CheckpointMeta, LrSchedule};
use crate::backbone::torchscript::file_sha256;
use crate::config::{build_prior, DatasetArgs, ImportedFeatures, RunConfig, StageSettings};
use crate::data::images::{DatasetFormat, Split};
use crate::device;
use crate::diagnostics;
use crate::error::Error;
use crate::eval::{self, SeedMetrics, Summary};
use crate::io;
use crate::layout::{RunLayout, SeedsLayout};
use crate::naming::consensus::ConsensusRun;
use crate::naming::person::{rows_f64, PersonNamer};
use crate::naming::NamingKind;
use crate::orchestrator::{self, Orchestrator, SeedRecord};
use crate::prior::LabelPrior;
use crate::progress::status;
use crate::report::{self, Curves, ReportData};
use crate::stages::{self, FeatureData};
use anyhow::{bail, Result};
use manifest::{libtorch_version, stage_key, unix_now, Stages};
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

/// Where the features come from: this run's SimCLR stage I, a pretrained TorchScript model, or
/// feature files computed elsewhere.
enum Source {
    Simclr,
    /// The model file and its SHA-256 (part of the features' cache key).
    TorchScript(PathBuf, String),
    Imported(ImportedFeatures),
}

/// Naming by a person (`[classes] cluster_names`), checked against the class names.
struct PersonPlan {
    /// class_of[cluster of the named seed].
    class_of: Vec<usize>,
    /// `cluster_names_seed`; None: the selected seed of the clusters' stage.
    seed: Option<u64>,
}

/// Which naming produced the run's classifier.
struct ClassifierNaming {
    /// In words, for the report and the printed summary.
    text: String,
    is_paper: bool,
    chain: Vec<NamingKind>,
}

/// A run with every setting checked: what `run` knows before it trains or deletes anything.
struct Plan<'a> {
    config: &'a RunConfig,
    layout: RunLayout,
    device: tch::Device,
    prior: LabelPrior,
    settings: StageSettings,
    source: Source,
    /// Stage I's key (SimCLR only).
    pretrain_key: String,
    /// Epochs of the stage-I checkpoint already there (0: none, or `--force`).
    trained_epochs: usize,
    person: Option<PersonPlan>,
}

/// `[classes] cluster_names` checked: one of the class names per cluster, each class once, and
/// `cluster_names_seed` one of the run's seeds.
fn person_plan(config: &RunConfig, prior: &LabelPrior) -> Result<Option<PersonPlan>> {
    let seeds = config.stages.seed_list();
    let seed = config.classes.cluster_names_seed;
    let Some(names) = &config.classes.cluster_names else {
        if let Some(s) = seed {
            return Err(Error::invalid("classes.cluster_names_seed", s, "cluster_names beside it (the names of that seed's clusters)").into());
        }
        return Ok(None);
    };
    let class_of = crate::naming::person::parse_cluster_names(names, &prior.class_names)?;
    if let Some(s) = seed.filter(|s| !seeds.contains(s)) {
        let list = seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        return Err(Error::invalid("classes.cluster_names_seed", s, format!("one of the run's seeds ({list})")).into());
    }
    Ok(Some(PersonPlan { class_of, seed }))
}

/// Checks the whole configuration: device, class names and prior, stage settings, the dataset
/// and the class list against it, an existing backbone against the epoch budget.
fn plan<'a>(config: &'a RunConfig, opts: &RunOptions) -> Result<Plan<'a>> {
    let layout = RunLayout::new(&opts.out);
    let device = config.device.resolve()?;
    let prior = build_prior(&config.classes)?;
    let settings = config.stages.validate(config.classes.preset, prior.n_classes())?;
    let source = match (&config.features, &config.backbone.torchscript) {
        (Some(files), _) => {
            for path in [Some(&files.train), Some(&files.test), files.test_labels.as_ref()].into_iter().flatten() {
                std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            }
            Source::Imported(files.clone())
        }
        (None, Some(model)) => Source::TorchScript(model.clone(), file_sha256(model)?),
        (None, None) => Source::Simclr,
    };
    let (mut pretrain_key, mut trained_epochs) = (String::new(), 0);
    if matches!(source, Source::Simclr) {
        pretrain_key = stage_key(&pretrain_identity(config, device)?);
        let checkpoint = checkpoint_path(&layout.stage("pretrain", &pretrain_key));
        trained_epochs = if checkpoint.exists() && !opts.force { simclr::read_meta(&checkpoint)?.epoch } else { 0 };
        if trained_epochs > config.pretrain.epochs {
            bail!(
                "{}: this backbone was trained for {trained_epochs} epochs, the config asks for {}; use --force to retrain, or another --out",
                checkpoint.display(),
                config.pretrain.epochs
            );
        }
    }
    let person = person_plan(config, &prior)?;
    let plan = Plan { config, layout, device, prior, settings, source, pretrain_key, trained_epochs, person };
    check_classes_fit_data(&plan)?;
    Ok(plan)
}

/// Stage I's identity for its cache key. The epoch budget is not part of it under a constant
/// learning rate (a longer budget continues the run); a cosine schedule is shaped by its budget.
fn pretrain_identity(config: &RunConfig, device: tch::Device) -> Result<Value> {
    let p = &config.pretrain;
    let mut identity = json!({"data": dataset_fingerprint(config.dataset()?)?, "arch": p.arch, "width": p.width, "stem": p.stem,
        "batch_size": p.batch_size, "lr": p.lr, "weight_decay": p.weight_decay, "temperature": p.temperature,
        "image_size": p.image_size, "seed": p.seed, "crop_min_scale": p.crop_min_scale, "precision": p.precision.resolve(device)});
    if p.lr_schedule == LrSchedule::Cosine {
        identity["lr_schedule"] = json!(p.lr_schedule);
        identity["epochs"] = json!(p.epochs);
    }
    Ok(identity)
}

/// A class list that does not fit the data fails now, not after stage I. (Imported feature
/// files are checked when they are loaded, before any training.)
fn check_classes_fit_data(plan: &Plan) -> Result<()> {
    let (config, c) = (plan.config, plan.prior.n_classes());
    let Some(data) = &config.data else { return Ok(()) };
    if data.format == DatasetFormat::Folder {
        let subfolders = crate::data::images::folder_classes(&data.data)?;
        if !subfolders.is_empty() && subfolders.len() != c {
            return Err(Error::ClassCount {
                what: format!("{}: class names", data.data.display()),
                expected: format!("the folder has {} class subfolders ({}): give one name per subfolder, in sorted order", subfolders.len(), subfolders.join(", ")),
                got: c,
            }
            .into());
        }
    } else if !matches!(plan.source, Source::Simclr) || plan.trained_epochs < config.pretrain.epochs {
        let test = data.read(Split::Test)?;
        if let Some(labels) = &test.labels {
            crate::data::features::check_class_count(labels, c, &data.data)?;
        }
    }
    Ok(())
}

/// The features stages II-III work on, and what produced them.
struct Backbone {
    /// Stage I's folder and best checkpoint (SimCLR only; `predict` needs the checkpoint).
    pretrain_dir: Option<PathBuf>,
    best: Option<PathBuf>,
    train: PathBuf,
    test: PathBuf,
    test_labels: Option<PathBuf>,
    /// The features' identity in the match stage's key.
    features_key: String,
    /// For the report, where the features are not this run's SimCLR stage I's.
    features_from: Option<String>,
    /// For the manifest.
    identity: Value,
}

fn train_backbone(plan: &Plan, stages: &mut Stages, quiet: bool) -> Result<Backbone> {
    match &plan.source {
        Source::Simclr => simclr_backbone(plan, stages, quiet),
        Source::TorchScript(model, sha256) => torchscript_backbone(plan, model, sha256, stages, quiet),
        Source::Imported(files) => imported_features(files, quiet),
    }
}

/// Stage I and feature extraction from its best (lowest training loss) checkpoint.
fn simclr_backbone(plan: &Plan, stages: &mut Stages, quiet: bool) -> Result<Backbone> {
    let (data, p) = (plan.config.dataset()?, &plan.config.pretrain);
    let default_threads = tch::get_num_threads();
    let pretrain_dir = stages.run("pretrain", &plan.pretrain_key, plan.trained_epochs == p.epochs, |dir| {
        p.apply_threads(default_threads)?;
        stages::pretrain_stage(data, p, plan.device, dir, true, Some(plan.prior.n_classes()), quiet)?;
        Ok(())
    })?;
    let best = best_path(&pretrain_dir);
    let features_key = stage_key(&json!({"pretrain": plan.pretrain_key, "epochs": p.epochs}));
    let features_done = RunLayout::stage_record(&plan.layout.stage("features", &features_key)).exists();
    let features_dir = stages.run("features", &features_key, features_done, |dir| {
        p.apply_threads(default_threads)?;
        stages::features_stage(data, &best, plan.device, dir, quiet)
    })?;
    Ok(Backbone {
        pretrain_dir: Some(pretrain_dir),
        best: Some(best),
        train: RunLayout::features_train(&features_dir),
        test: RunLayout::features_test(&features_dir),
        test_labels: None,
        features_key,
        features_from: None,
        identity: json!({"simclr": {"pretrain_key": plan.pretrain_key, "epochs": p.epochs}}),
    })
}

/// Features of a pretrained TorchScript encoder, stage I skipped. The key holds the model
/// file's SHA-256: another model under the same name recomputes them.
fn torchscript_backbone(plan: &Plan, model: &Path, sha256: &str, stages: &mut Stages, quiet: bool) -> Result<Backbone> {
    let (data, b) = (plan.config.dataset()?, &plan.config.backbone);
    let identity = json!({"data": dataset_fingerprint(data)?, "torchscript": model, "torchscript_sha256": sha256,
        "image_size": b.image_size, "normalize": b.normalize, "global_pool": b.global_pool});
    let key = stage_key(&identity);
    let done = RunLayout::stage_record(&plan.layout.stage("features", &key)).exists();
    let dir = stages.run("features", &key, done, |dir| stages::torchscript_features_stage(data, model, &b.preprocessing(), plan.device, dir, quiet))?;
    if let Some(last) = stages.last_mut() {
        last.name = "features (TorchScript)".into();
    }
    let features_from = format!(
        "the pretrained TorchScript model `{}` (sha256 {}…; {}x{} inputs, {} normalisation), no stage I",
        model.display(),
        &sha256[..12],
        b.image_size,
        b.image_size,
        b.normalize
    );
    Ok(Backbone {
        pretrain_dir: None,
        best: None,
        train: RunLayout::features_train(&dir),
        test: RunLayout::features_test(&dir),
        test_labels: None,
        features_key: key,
        features_from: Some(features_from),
        identity,
    })
}

/// Feature files computed elsewhere, stage I and extraction skipped; keyed by their SHA-256.
fn imported_features(files: &ImportedFeatures, quiet: bool) -> Result<Backbone> {
    let identity = json!({"train": files.train, "test": files.test, "test_labels": files.test_labels,
        "train_sha256": file_sha256(&files.train)?, "test_sha256": file_sha256(&files.test)?,
        "test_labels_sha256": files.test_labels.as_deref().map(file_sha256).transpose()?});
    status("Imported", &format!("features {} and {} (no stage I)", files.train.display(), files.test.display()), quiet);
    Ok(Backbone {
        pretrain_dir: None,
        best: None,
        train: files.train.clone(),
        test: files.test.clone(),
        test_labels: files.test_labels.clone(),
        features_key: stage_key(&identity),
        features_from: Some(format!("feature files computed elsewhere (`{}`, `{}`), no stage I", files.train.display(), files.test.display())),
        identity,
    })
}

/// Stages II-III per seed; the seed count is not part of the key (more seeds add to it).
fn name_over_seeds(plan: &Plan, orchestrator: &Orchestrator, data: &FeatureData, backbone: &Backbone, stages: &mut Stages) -> Result<(String, SeedsLayout, Vec<SeedRecord>)> {
    let match_key = stage_key(&json!({"features": backbone.features_key, "prior": plan.prior, "params": plan.settings}));
    let mut records = Vec::new();
    let dir = stages.run("match", &match_key, false, |dir| {
        records = orchestrator.run_seeds(data, &SeedsLayout::new(dir), &plan.config.stages.seed_list(), true)?;
        Ok(())
    })?;
    if let Some(last) = stages.last_mut() {
        last.reused = records.iter().all(|r| r.reused);
        if last.reused {
            // Report the time the seeds took when they were computed.
            last.wall_s = records.iter().map(|r| r.cluster_seconds + r.match_seconds).sum();
        }
    }
    Ok((match_key, SeedsLayout::new(dir), records))
}

/// Naming by a person, in a stage of its own keyed by the match stage and the names (new names
/// redo only this stage; the clusters stay those the sheets showed): the match stage's clusters
/// named from `[classes] cluster_names`. Returns the stage's seeds, their records and the named seed.
fn name_by_person(
    person: &PersonPlan,
    orchestrator: &Orchestrator,
    data: &FeatureData,
    (match_key, base, base_records): (&str, &SeedsLayout, &[SeedRecord]),
    stages: &mut Stages,
    quiet: bool,
) -> Result<(SeedsLayout, Vec<SeedRecord>, u64)> {
    let named_seed = match person.seed {
        Some(s) => s,
        None => orchestrator::selected_seed(base_records).map(|r| r.seed).ok_or_else(|| Error::invalid("seeds", 0, "at least 1"))?,
    };
    if base_records.iter().any(|r| r.seed == named_seed && !r.reused) {
        status("Note", &format!("seed {named_seed}'s clusters were computed by this run, not read back: [classes] cluster_names must name them as the sheets of `zerolabel clusters` show them"), quiet);
    }
    let reference = orchestrator::load_clusters(base, named_seed, &data.train)?;
    let namer = PersonNamer::new(person.class_of.clone(), named_seed, rows_f64(&reference.member_means)?)?;
    let key = stage_key(&json!({"match": match_key, "cluster_names": person.class_of, "named_seed": named_seed}));
    let mut records = Vec::new();
    let dir = stages.run("person", &key, false, |dir| {
        records = orchestrator.name_by_person(&namer, data, base, base_records, &SeedsLayout::new(dir))?;
        Ok(())
    })?;
    if let Some(last) = stages.last_mut() {
        last.name = "naming by a person".into();
        last.reused = records.iter().all(|r| r.reused);
    }
    Ok((SeedsLayout::new(dir), records, named_seed))
}

/// Figure 4B's L_sk classifier on the selected seed's clusters, where the chain has a stage III.
/// Returns (L_sk classifier, the L_cgsk classifier it is compared with).
fn figure_4b_classifier(plan: &Plan, orchestrator: &Orchestrator, data: &FeatureData, (match_key, seeds): (&str, &SeedsLayout), selected: &SeedRecord, stages: &mut Stages) -> Result<Option<(PathBuf, PathBuf)>> {
    if !plan.config.report.sk_comparison || !plan.settings.trains_stage3() {
        return Ok(None);
    }
    let key = format!("{match_key}/sk-seed-{}", selected.seed);
    let done = seeds.sk_classifier(selected.seed).exists();
    stages.run("match", &key, done, |_| {
        orchestrator.sk_classifier(data, seeds, selected)?;
        Ok(())
    })?;
    if let Some(last) = stages.last_mut() {
        last.name = "match-sk (Figure 4B)".into();
    }
    Ok(Some((seeds.sk_classifier(selected.seed), orchestrator.cgsk_classifier(seeds, selected.seed))))
}

/// Where the vote names the model, each seed's classifier metrics (and the selected seed's
/// trust) become those of its clusters under the voted names; `seed.json` keeps the seed's own,
/// and its own names' accuracy stays in `naming_accuracy`.
fn apply_consensus(records: &mut [SeedRecord], consensus: Option<&ConsensusRun>, labels: Option<&[i64]>, n_classes: usize) {
    let Some(voted) = consensus.filter(|c| c.is_model) else { return };
    for (record, predictions) in records.iter_mut().zip(&voted.test_predictions) {
        if let Some(labels) = labels {
            record.metrics = record.metrics.take().map(|m| m.with_classifier_predictions(predictions, labels, n_classes));
        }
        if record.seed == voted.consensus.reference_seed {
            record.classifier_trust = voted.trust.clone().or(record.classifier_trust.take());
        }
    }
}

/// `model.json`: the backbone and classifier `zerolabel predict` uses, and why this seed.
fn write_model(plan: &Plan, naming: &ClassifierNaming, backbone: &Backbone, seeds: &SeedsLayout, selected: &SeedRecord, consensus: Option<&ConsensusRun>) -> Result<()> {
    let layout = &plan.layout;
    let by_consensus = consensus.is_some_and(|c| c.is_model);
    let selection = if naming.is_paper {
        "lowest windowed stage-III training loss over the seeds (no labels; seeds whose names the jury trusts first)".to_string()
    } else if selected.person.is_some() {
        format!("{}; the named seed", naming.text)
    } else {
        let whose = if by_consensus { "the clusters of the seed" } else { "the seed" };
        format!("{}; {whose} with the best label-free selection score (seeds whose names the jury trusts first)", naming.text)
    };
    let classifier = match by_consensus {
        true => seeds.consensus_classifier(selected.seed),
        false => seeds.classifier(selected.seed),
    };
    let model = json!({
        "classes": plan.prior.class_names,
        "backbone_checkpoint": backbone.best.as_deref().map(|b| layout.relative(b)),
        "features_from": backbone.features_from,
        "classifier": layout.relative(&classifier),
        "names_by_consensus": by_consensus,
        "seed": selected.seed,
        "naming": naming.chain,
        "selection": selection,
    });
    Ok(io::write_json_atomic(&layout.model(), &model)?)
}

/// Curves for the report, from the stage I log and each seed's training log.
/// `chain_stage3`: the chain has its own stage III, whose curve is shown; otherwise the paper's
/// reference beside it.
fn gather_curves(backbone: &Backbone, seeds: &SeedsLayout, records: &[SeedRecord], chain_stage3: bool) -> Curves {
    let pre = backbone.pretrain_dir.as_deref().map(|dir| read_jsonl(&RunLayout::pretrain_log(dir))).unwrap_or_default();
    let points = |lines: &[Value], x: &str, y: &str, keep: &dyn Fn(&Value) -> bool| -> Vec<(f64, f64)> {
        lines.iter().filter(|l| keep(l)).filter_map(|l| Some((l.get(x)?.as_f64()?, l.get(y)?.as_f64()?))).collect()
    };
    let logs: Vec<(u64, Vec<Value>)> = records.iter().map(|r| (r.seed, read_jsonl(&seeds.train_log(r.seed)))).collect();
    Curves {
        pretrain_loss: points(&pre, "epoch", "loss", &|_| true),
        knn_accuracy: points(&pre, "epoch", "knn_accuracy", &|_| true),
        clustering: logs.iter().map(|(seed, l)| (*seed, points(l, "step", "loss", &|v| v["stage"] == "cluster"))).collect(),
        matching: logs.iter().map(|(seed, l)| (*seed, points(l, "step", "window_mean", &|v| v["stage"] == "match" && (v["variant"] == "paper") != chain_stage3 && v["variant"] != "geometry"))).collect(),
        last_epoch: pre.last().map(|l| (l["loss"].as_f64().unwrap_or(f64::NAN), l["images_per_s"].as_f64().unwrap_or(f64::NAN), l.get("knn_accuracy").and_then(Value::as_f64))),
    }
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// What the report needs beyond the records: curves and the label-using diagnostics.
struct ReportInputs<'a> {
    plan: &'a Plan<'a>,
    naming: &'a ClassifierNaming,
    /// The match stage's seeds (training logs), where the classifier's seeds are elsewhere.
    match_seeds: &'a SeedsLayout,
    backbone: &'a Backbone,
    backbone_meta: Option<&'a CheckpointMeta>,
    data: &'a FeatureData,
    seeds: &'a SeedsLayout,
    records: &'a [SeedRecord],
    summary: Option<&'a Summary>,
    selected: &'a SeedRecord,
    /// Figure 4B's (L_sk, L_cgsk) classifiers.
    figure_4b: Option<(&'a Path, &'a Path)>,
    consensus: Option<&'a ConsensusRun>,
}

fn write_report(inputs: &ReportInputs, stage_records: &[manifest::StageRecord]) -> Result<Vec<String>> {
    let (plan, seed) = (inputs.plan, inputs.selected.seed);
    let classifier = match inputs.consensus {
        Some(c) if c.is_model => crate::matching::Classifier::load(&inputs.seeds.consensus_classifier(seed))?,
        _ => orchestrator::load_classifier(inputs.seeds, seed)?,
    };
    let figure_4a = inputs.data.test_labels.as_deref().map(|labels| diagnostics::figure_4a(&plan.prior, &classifier, &inputs.data.test, labels));
    let figure_4b = match inputs.figure_4b {
        Some((sk, cgsk)) => {
            let clusters = orchestrator::load_clusters(inputs.seeds, seed, &inputs.data.train)?;
            let (sk, cgsk) = (crate::matching::Classifier::load(sk)?, crate::matching::Classifier::load(cgsk)?);
            Some(diagnostics::figure_4b(&clusters, &sk, &cgsk, &inputs.data.test, plan.prior.n_classes(), plan.config.report.figure_clusters))
        }
        None => None,
    };
    let namer = crate::naming::GeometryNamer::new(plan.settings.naming.geometry.clone())?;
    let oracle = match inputs.data.test_labels.as_deref() {
        Some(labels) => Some(diagnostics::oracle_naming(&namer, &plan.prior, &inputs.data.test, labels)?),
        None => None,
    };
    let data = ReportData {
        naming_kernel: format!("{} kernel", namer.kernel_for(&plan.prior).name()),
        oracle,
        config: plan.config,
        class_names: &plan.prior.class_names,
        backbone: inputs.backbone_meta,
        features_from: inputs.backbone.features_from.clone(),
        naming: inputs.naming.text.clone(),
        naming_is_paper: inputs.naming.is_paper,
        records: inputs.records,
        summary: inputs.summary,
        selected_seed: seed,
        stages: stage_records,
        curves: gather_curves(inputs.backbone, inputs.match_seeds, inputs.records, plan.settings.naming.chain.contains(&NamingKind::Stage3)),
        figure_4a,
        figure_4b,
        consensus: inputs.consensus,
    };
    report::write_report(&data, &plan.layout.report(), &plan.layout.plots())
}

/// The line `run` prints: the accuracy beside the baselines (or why there is none).
fn headline(plan: &Plan, naming: &ClassifierNaming, summary: Option<&Summary>, selected: Option<&SeedRecord>, consensus: Option<&ConsensusRun>, elapsed_s: f64, reused: usize) -> String {
    let by_consensus = consensus.is_some_and(|c| c.is_model);
    let mut text = match summary {
        Some(s) => {
            let (how, others) = match by_consensus {
                true => (format!("{}, names voted over the seeds", short_naming(&naming.chain)), format!("each seed's own geometry names {}%; ", s.naming_accuracy)),
                false => (short_naming(&naming.chain).to_string(), format!("naming by geometry alone {}%; {}", s.naming_accuracy, s.consensus_accuracy.map(|c| format!("names voted over the seeds {c}%; ")).unwrap_or_default())),
            };
            format!(
                "Zero-label accuracy ({}, {} seed(s)): {}% [classifier {how}] (Random baseline {}%; {others}{}clusters Hungarian-matched {}%)\n",
                plan.config.name,
                s.accuracy.n,
                s.accuracy,
                s.random_baseline,
                s.paper_accuracy.map(|p| format!("the paper's stage III {p}%; ")).unwrap_or_default(),
                s.cluster_hungarian_accuracy
            )
        }
        None => "No test labels: the classifier was trained, accuracy was not measured.\n".to_string(),
    };
    text.push_str(&format!("Classifier: {}.\n", naming.text));
    if let Some(sentence) = selected.and_then(|s| report::trust_sentence(s, &plan.prior.class_names)) {
        text.push_str(&format!("{sentence} (seed {}; the report's naming section says more).\n", selected.map_or(0, |s| s.seed)));
    }
    if let Some(sentence) = selected.and_then(|s| report::cluster_sizes_sentence(s, &plan.config.stages)) {
        text.push_str(&format!("{sentence} (seed {}).\n", selected.map_or(0, |s| s.seed)));
    }
    if let Some(sentence) = selected.and_then(|s| report::optimality_sentence(s, plan.prior.n_classes())) {
        text.push_str(&format!("{sentence} (seed {}).\n", selected.map_or(0, |s| s.seed)));
    }
    if selected.and_then(|s| s.classifier_trust.as_ref()).is_some_and(|t| !t.trusted) {
        let root = plan.layout.root();
        text.push_str(&format!("Cluster sheets to name them yourself: zerolabel clusters --run {} --out {}\n", root.display(), root.join("sheets").display()));
    }
    let layout = &plan.layout;
    text.push_str(&format!(
        "Report: {}; classifier for `zerolabel predict --run {}`; {elapsed_s:.1} s ({reused} stage(s) reused)\n",
        layout.report().display(),
        layout.root().display()
    ));
    text
}

/// The naming next to the accuracy in the printed line.
fn short_naming(chain: &[NamingKind]) -> &'static str {
    match chain {
        [NamingKind::Person] => "named by a person from the cluster sheets",
        [NamingKind::Stage3] => "from the paper's stage III",
        [NamingKind::Geometry] => "named by geometry",
        [NamingKind::Geometry, NamingKind::Stage3] => "named by geometry, then the paper's stage III",
        _ => "from a naming chain",
    }
}

/// `metrics.json`: the accuracy (mean, std, n) and every seed's metrics.
fn write_metrics(plan: &Plan, naming: &ClassifierNaming, metrics: &[SeedMetrics], summary: Option<&Summary>, selected_seed: u64) -> Result<()> {
    let value = json!({"command": "run", "config": plan.config.name, "classes": plan.prior.class_names, "params": plan.settings,
        "naming": naming.text, "naming_chain": naming.chain, "accuracy": summary.map(|s| s.accuracy), "summary": summary,
        "seeds": metrics, "selected_seed": selected_seed});
    Ok(io::write_json_atomic(&plan.layout.metrics(), &value)?)
}

/// `manifest.json`: configuration, resolved values, seeds, versions, device, every stage's
/// wall time and peak memory. `timing`: (start as Unix time, seconds since).
#[allow(clippy::too_many_arguments)]
fn write_manifest(
    plan: &Plan,
    opts: &RunOptions,
    backbone: &Backbone,
    backbone_meta: Option<&CheckpointMeta>,
    stage_records: &[manifest::StageRecord],
    selected_seed: u64,
    summary: Option<&Summary>,
    report_notes: &[String],
    (started_unix, wall_s): (u64, f64),
) -> Result<()> {
    let config = plan.config;
    let manifest = json!({
        "zerolabel": env!("CARGO_PKG_VERSION"),
        "versions": {"zerolabel": env!("CARGO_PKG_VERSION"), "tch": "0.26.0", "libtorch": libtorch_version()},
        "config_file": opts.config_path,
        "overrides": opts.overrides,
        "config": config,
        // The values every stage actually used, defaults and presets resolved.
        "resolved": {"backbone": backbone_meta.map(|m| &m.backbone), "simclr": backbone_meta.map(|m| &m.params),
            "stages": plan.settings, "prior": plan.prior.params},
        "seeds": config.stages.seed_list(),
        "pretrain_seed": backbone.best.as_ref().map(|_| config.pretrain.seed),
        "features_from": backbone.identity,
        "device": device::describe(plan.device),
        "started_unix": started_unix,
        "finished_unix": unix_now(),
        "wall_s": wall_s,
        "stages": stage_records,
        "selected_seed": selected_seed,
        "accuracy": summary.map(|s| s.accuracy),
        "report_notes": report_notes,
    });
    Ok(io::write_json_atomic(&plan.layout.manifest(), &manifest)?)
}

pub fn run(config: &RunConfig, opts: &RunOptions) -> Result<RunOutcome> {
    let (started_unix, started) = (unix_now(), Instant::now());
    let plan = plan(config, opts)?;
    if opts.force {
        // Everything is validated before anything is deleted: the stage-I settings against the
        // training images too.
        if let (Source::Simclr, Some(data)) = (&plan.source, config.data.as_ref()) {
            let train = data.read(Split::Train)?;
            stages::check_distinct_images(&train, plan.prior.n_classes(), &data.data)?;
            config.pretrain.backbone(&train, plan.device)?;
        }
        crate::io::remove_for_rerun(&plan.layout.stages(), &plan.layout.model())?;
    }
    status("Device", &device::describe(plan.device), opts.quiet);
    let mut stages = Stages::new(&plan.layout, opts.quiet);
    let backbone = train_backbone(&plan, &mut stages, opts.quiet)?;
    plan.settings.apply_threads();
    let c = plan.prior.n_classes();
    let data = FeatureData::load(&backbone.train, &backbone.test, backbone.test_labels.as_deref(), c, plan.device)?;
    let orchestrator = Orchestrator::new(&plan.prior, &plan.settings, opts.quiet)?;
    let (match_key, match_seeds, match_records) = name_over_seeds(&plan, &orchestrator, &data, &backbone, &mut stages)?;
    let (seeds, mut records, mut naming) = match &plan.person {
        Some(person) => {
            let (seeds, records, named_seed) = name_by_person(person, &orchestrator, &data, (&match_key, &match_seeds, &match_records), &mut stages, opts.quiet)?;
            let others = if records.len() > 1 { "; every other seed's clusters aligned to them" } else { "" };
            let text = format!("{} (the clusters of seed {named_seed}{others})", NamingKind::Person.describe());
            (seeds, records, ClassifierNaming { text, is_paper: false, chain: vec![NamingKind::Person] })
        }
        None => {
            let naming = &plan.settings.naming;
            (match_seeds.clone(), match_records, ClassifierNaming { text: naming.describe(), is_paper: naming.is_paper(), chain: naming.chain.clone() })
        }
    };
    let selected_seed = orchestrator::selected_seed(&records).ok_or_else(|| Error::invalid("seeds", 0, "at least 1"))?.seed;
    // The seeds' geometry names voted (a person's names are not voted).
    let consensus = match plan.person {
        Some(_) => None,
        None => consensus::seeds_consensus(&plan, &seeds, &data, &records, selected_seed)?,
    };
    apply_consensus(&mut records, consensus.as_ref(), data.test_labels.as_deref(), c);
    if let Some(voted) = consensus.as_ref().filter(|v| v.is_model) {
        let (voters, seeds) = (voted.consensus.voters.len(), voted.consensus.seeds.len());
        naming.text = match voters < seeds {
            true => format!("{}, its names voted over the {voters} of {seeds} seeds whose names were trusted (agreement {:.0}%)", naming.text, 100.0 * voted.consensus.agreement),
            false => format!("{}, its names voted over {seeds} seeds (agreement {:.0}%)", naming.text, 100.0 * voted.consensus.agreement),
        };
    }
    let selected = records.iter().find(|r| r.seed == selected_seed).ok_or_else(|| Error::invalid("seeds", 0, "at least 1"))?;
    // Figure 4B compares stage III's two losses; a person's classifier has no stage III.
    let figure_4b = match plan.person {
        Some(_) => None,
        None => figure_4b_classifier(&plan, &orchestrator, &data, (&match_key, &seeds), selected, &mut stages)?,
    };
    write_model(&plan, &naming, &backbone, &seeds, selected, consensus.as_ref())?;
    let metrics: Vec<SeedMetrics> = records.iter().filter_map(|r| r.metrics.clone()).collect();
    let mut summary = (!metrics.is_empty()).then(|| eval::summarize(&metrics, c));
    if let (Some(summary), Some(voted)) = (summary.as_mut(), consensus.as_ref()) {
        summary.consensus_accuracy = voted.accuracy.as_deref().map(eval::mean_std);
    }
    write_metrics(&plan, &naming, &metrics, summary.as_ref(), selected.seed)?;
    let report_started = Instant::now();
    let backbone_meta = backbone.best.as_deref().and_then(|best| simclr::read_meta(best).ok());
    let inputs = ReportInputs {
        plan: &plan,
        naming: &naming,
        match_seeds: &match_seeds,
        backbone: &backbone,
        backbone_meta: backbone_meta.as_ref(),
        data: &data,
        seeds: &seeds,
        records: &records,
        summary: summary.as_ref(),
        selected,
        figure_4b: figure_4b.as_ref().map(|(sk, cgsk)| (sk.as_path(), cgsk.as_path())),
        consensus: consensus.as_ref(),
    };
    let report_notes = write_report(&inputs, &stages.records)?;
    stages.record_uncached("report", PathBuf::from("report.md"), report_started);
    let timing = (started_unix, started.elapsed().as_secs_f64());
    write_manifest(&plan, opts, &backbone, backbone_meta.as_ref(), &stages.records, selected.seed, summary.as_ref(), &report_notes, timing)?;
    let reused = stages.records.iter().filter(|s| s.reused).count();
    Ok(RunOutcome { headline: headline(&plan, &naming, summary.as_ref(), Some(selected), consensus.as_ref(), started.elapsed().as_secs_f64(), reused) })
}

