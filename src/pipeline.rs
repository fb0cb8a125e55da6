//! The stages as steps with inputs and outputs on disk, shared by the single-stage subcommands
//! (`pretrain`, `features`, `match`) and by `run`, which chains them:
//! images -> [pretrain] -> checkpoint -> [features] -> feature files -> [match] -> per-seed
//! classifiers, clusters, predictions -> evaluation.
use crate::backbone::pretrain::{self, KnnMonitor, PretrainOptions, PretrainOutcome};
use crate::backbone::simclr::{self, SimclrModel};
use crate::cluster::Clustering;
use crate::config::{DatasetArgs, PretrainSettings, StageArgs};
use crate::data::features::{self, check_labels, l2_normalize};
use crate::data::images::Split;
use crate::error::Error;
use crate::experiment::{self, Inputs, PipelineParams, SeedMetrics};
use crate::io::{self, JsonLines};
use crate::matching::{Classifier, MatchingLoss};
use crate::prior::sampler::PriorAtoms;
use crate::prior::LabelPrior;
use crate::progress::status;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Stage I: SimCLR pretraining of the backbone on the training split, into `out`.
pub fn pretrain_stage(dataset: &DatasetArgs, settings: &PretrainSettings, device: tch::Device, out: &Path, resume: bool, quiet: bool) -> Result<PretrainOutcome> {
    let train = dataset.read(Split::Train)?;
    status("Read", &format!("{} training images ({}x{}x{}) from {}", train.count, train.height, train.width, train.channels, dataset.data.display()), quiet);
    let (config, params) = settings.backbone(&train, device)?;
    if let Some(t) = settings.threads {
        tch::set_num_threads(t);
    }
    // A requested monitor whose test split cannot be read is an error, not silently dropped.
    let test = if settings.knn_every > 0 && train.labels.is_some() {
        let test = dataset.read(Split::Test).map_err(|e| {
            anyhow::anyhow!("the kNN monitor (pretrain.knn_every = {}) needs the test split: {e}; fix the data or set pretrain.knn_every = 0", settings.knn_every)
        })?;
        crate::data::images::check_same_shape(&train, &test, &dataset.data)?;
        Some(test)
    } else {
        None
    };
    let knn = test.as_ref().map(|t| KnnMonitor { train: &train, test: t, every: settings.knn_every });
    let opts = PretrainOptions { out, seed: settings.seed, resume, device, quiet, knn, interrupt_after_steps: None };
    Ok(pretrain::pretrain(&train, &config, &params, &opts)?)
}

/// Feature extraction: L2-normalised pooled backbone features of the un-augmented train and
/// test images, written as `out/train.safetensors` and `out/test.safetensors` (with labels
/// where the dataset has them).
pub fn features_stage(dataset: &DatasetArgs, checkpoint: &Path, device: tch::Device, out: &Path, quiet: bool) -> Result<()> {
    let meta = simclr::read_meta(checkpoint)?;
    let mut model = SimclrModel::new(&meta.backbone, &meta.params, device);
    simclr::load_checkpoint(checkpoint, &mut model, None)?;
    // Both splits are computed before either file is replaced, then written together.
    let mut results = Vec::new();
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let set = dataset.read(split)?;
        if set.channels as i64 != meta.backbone.in_channels {
            bail!("{}: {} channels, but the checkpoint's backbone takes {}", dataset.data.display(), set.channels, meta.backbone.in_channels);
        }
        let bar = crate::progress::bar(set.count as u64, "Features", quiet);
        let features = simclr::extract_features(&model.backbone, &set, &meta.normalization, meta.params.image_size, device, |n| bar.inc(n as u64));
        bar.finish_and_clear();
        let labels = set.labels.filter(|l| l.iter().all(|&x| x >= 0));
        results.push((out.join(format!("{name}.safetensors")), features, labels));
    }
    let files: Vec<_> = results.iter().map(|(p, f, l)| (p.as_path(), f, l.as_deref())).collect();
    features::save_features_together(&files)?;
    for (path, features, _) in &results {
        status("Wrote", &format!("{} ({} x {})", path.display(), features.size()[0], features.size()[1]), quiet);
    }
    Ok(())
}

/// Loaded, checked and L2-normalised train/test features.
pub struct FeatureData {
    pub train: Tensor,
    pub test: Tensor,
    pub test_labels: Option<Vec<i64>>,
}

impl FeatureData {
    pub fn load(train_path: &Path, test_path: &Path, test_labels: Option<&Path>, n_classes: usize, device: tch::Device) -> Result<FeatureData> {
        let train = features::load_features(train_path, None)?;
        let test = features::load_features(test_path, test_labels)?;
        let (dtrain, dtest) = (train.features.size()[1], test.features.size()[1]);
        if dtrain != dtest {
            return Err(Error::Shape {
                what: format!("feature dimension of {} vs {}", test_path.display(), train_path.display()),
                expected: format!("{dtrain} (as in the training features)"),
                got: dtest.to_string(),
            }
            .into());
        }
        let n_train = train.features.size()[0] as usize;
        if n_train < n_classes {
            bail!("{}: {n_train} training samples cannot form {n_classes} clusters", train_path.display());
        }
        if let Some(labels) = &test.labels {
            check_labels(labels, n_classes, test_labels.unwrap_or(test_path))?;
        }
        Ok(FeatureData {
            train: l2_normalize(&train.features).to_device(device),
            test: l2_normalize(&test.features).to_device(device),
            test_labels: test.labels,
        })
    }
}

/// What one seed of stages II-III leaves in `seed-N/seed.json` (its presence marks the seed done).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedRecord {
    pub seed: u64,
    /// Label-free model-selection value, lower is better: the lowest windowed training loss of
    /// stage III (with `naming_only`: minus the naming objective).
    pub best_window_loss: f64,
    pub best_step: usize,
    /// class_of[cluster] found by naming the clusters by geometry.
    pub naming_class_of: Vec<usize>,
    pub naming_score: f64,
    pub naming_second_score: Option<f64>,
    /// (class a, class b, score loss of swapping them).
    pub naming_interchangeable: Vec<(usize, usize, f64)>,
    pub cluster_seconds: f64,
    pub match_seconds: f64,
    /// Accuracy and the rest, where test labels exist.
    pub metrics: Option<SeedMetrics>,
    /// Read back from an earlier invocation rather than computed now.
    #[serde(skip)]
    pub reused: bool,
}

pub fn seed_dir(out: &Path, seed: u64) -> PathBuf {
    out.join(format!("seed-{seed}"))
}

/// Stages II-III and evaluation for every seed, into `out/seed-N/`: classifier, clusters, test
/// predictions, training log and `seed.json`. With `reuse`, a seed whose `seed.json` exists is
/// read back instead of recomputed (an interrupted run resumes at the first unfinished seed).
pub fn match_stage(prior: &LabelPrior, params: &PipelineParams, stages: &StageArgs, data: &FeatureData, out: &Path, reuse: bool, quiet: bool) -> Result<Vec<SeedRecord>> {
    let c = prior.n_classes();
    let atoms = PriorAtoms::new(prior);
    let inputs = Inputs::new(prior, &atoms, &data.train, &data.test);
    let mut records = Vec::new();
    for seed in stages.seed_list() {
        let dir = seed_dir(out, seed);
        let record_path = dir.join("seed.json");
        if reuse && record_path.exists() {
            let text = std::fs::read_to_string(&record_path).map_err(|e| Error::io(&record_path, e))?;
            let mut record: SeedRecord = serde_json::from_str(&text).map_err(|e| Error::format(&record_path, format!("unreadable seed record: {e}")))?;
            record.reused = true;
            status("Reused", &format!("seed {seed} from {}", dir.display()), quiet);
            records.push(record);
            continue;
        }
        let mut log = JsonLines::create(&dir.join("train_log.jsonl"))?;
        let run = experiment::run_seed(&inputs, params, seed, &mut log, quiet)?;
        run.matching.classifier.save(&dir.join("classifier.safetensors"))?;
        io::write_safetensors_atomic(
            &dir.join("clusters.safetensors"),
            &[("centroids", &run.clustering.centroids), ("assignments", &Tensor::from_slice(&run.clustering.assignments))],
        )?;
        crate::data::npy::write_npy_i64(&dir.join("test_predictions.npy"), &[run.test_predictions.len()], &run.test_predictions)?;
        let metrics = data.test_labels.as_ref().map(|labels| experiment::evaluate(&run, &data.test, labels, c));
        let line = match &metrics {
            Some(m) => format!(
                "seed {seed}: accuracy {:.1}% (random fC {:.1}%, naming alone {:.1}%, clusters matched {:.1}%), best step {}, {:.1}s + {:.1}s",
                100.0 * m.accuracy, 100.0 * m.random_baseline_accuracy, 100.0 * m.naming_accuracy, 100.0 * m.cluster_hungarian_accuracy,
                m.best_step, m.cluster_seconds, m.match_seconds
            ),
            None => format!("seed {seed}: done (no test labels, accuracy not measured)"),
        };
        let record = SeedRecord {
            seed,
            best_window_loss: run.matching.best_window_loss,
            best_step: run.matching.best_step,
            naming_class_of: run.naming.class_of.clone(),
            naming_score: run.naming.score,
            naming_second_score: run.naming.second_score,
            naming_interchangeable: run.naming_interchangeable.clone(),
            cluster_seconds: run.cluster_seconds,
            match_seconds: run.match_seconds,
            metrics,
            reused: false,
        };
        io::write_json_atomic(&record_path, &record)?;
        status("Seed", &line, quiet);
        records.push(record);
    }
    Ok(records)
}

/// Figure 4B's second classifier: stage III with the plain Sinkhorn loss L_sk on the clusters of
/// `seed`, into `dir/classifier.safetensors` (reused when present).
pub fn sk_classifier(prior: &LabelPrior, params: &PipelineParams, data: &FeatureData, match_dir: &Path, record: &SeedRecord, quiet: bool) -> Result<PathBuf> {
    let seed = record.seed;
    let dir = match_dir.join(format!("sk-seed-{seed}"));
    let path = dir.join("classifier.safetensors");
    if path.exists() {
        return Ok(path);
    }
    let saved = load_clusters(match_dir, seed)?;
    let centroids = if params.naming.init_stage_three {
        // As in the main run: row k starts at the centroid of the cluster named k.
        experiment::named_centroids(&saved.centroids, &record.naming_class_of)
    } else {
        saved.centroids
    };
    let clustering = Clustering { centroids: centroids.to_device(data.train.device()), ..saved };
    let atoms = PriorAtoms::new(prior);
    let inputs = Inputs::new(prior, &atoms, &data.train, &data.test);
    let mut sk = params.matching.clone();
    sk.loss = MatchingLoss::Sk;
    let mut log = JsonLines::create(&dir.join("train_log.jsonl"))?;
    let matching = experiment::run_matching(&data.train, Some(&clustering), &inputs, &sk, seed, "sk", &mut log, quiet)?;
    matching.classifier.save(&path)?;
    Ok(path)
}

/// The stage II result of a seed saved by `match_stage` (centroids on the CPU, assignments).
pub fn load_clusters(match_dir: &Path, seed: u64) -> Result<Clustering> {
    let path = seed_dir(match_dir, seed).join("clusters.safetensors");
    let tensors = Tensor::read_safetensors(&path).map_err(|e| Error::format(&path, format!("not a clusters file: {e}")))?;
    let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone());
    let (Some(centroids), Some(assignments)) = (get("centroids"), get("assignments")) else {
        bail!("{}: no centroids/assignments", path.display());
    };
    Ok(Clustering { centroids, assignments: Vec::<i64>::try_from(&assignments)?, curve: vec![] })
}

/// Loads a classifier saved by `match_stage`.
pub fn load_classifier(match_dir: &Path, seed: u64) -> Result<Classifier> {
    Ok(Classifier::load(&seed_dir(match_dir, seed).join("classifier.safetensors"))?)
}
