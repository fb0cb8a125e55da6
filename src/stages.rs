//! Stage I and feature extraction as steps with inputs and outputs on disk, shared by the
//! single-stage subcommands (`pretrain`, `features`) and by `run`, which chains them:
//! images -> [pretrain] -> checkpoint -> [features] -> feature files -> [`FeatureData`], which
//! the [`crate::orchestrator`] takes through stages II-III.
use crate::backbone::pretrain::{self, KnnMonitor, PretrainOptions, PretrainOutcome};
use crate::backbone::simclr::{self, SimclrModel};
use crate::backbone::torchscript::{Preprocessing, TorchScriptEncoder};
use crate::config::{DatasetArgs, PretrainSettings};
use crate::data::features::{self, check_labels, l2_normalize};
use crate::data::images::Split;
use crate::error::Error;
use crate::progress::status;
use anyhow::{bail, Result};
use std::path::Path;
use tch::Tensor;

/// Stage I: SimCLR pretraining of the backbone on the training split, into `out` (libtorch's
/// thread count is the caller's to set). With `n_classes` (the images are to be clustered),
/// fewer distinct training images than classes are refused before any training.
pub fn pretrain_stage(dataset: &DatasetArgs, settings: &PretrainSettings, device: tch::Device, out: &Path, resume: bool, n_classes: Option<usize>, quiet: bool) -> Result<PretrainOutcome> {
    let train = dataset.read(Split::Train)?;
    status("Read", &format!("{} training images ({}x{}x{}) from {}", train.count, train.height, train.width, train.channels, dataset.data.display()), quiet);
    if let Some(c) = n_classes {
        check_distinct_images(&train, c, &dataset.data)?;
    }
    let (config, params) = settings.backbone(&train, device)?;
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
    if let Some(m) = settings.max_minutes.filter(|m| !(*m > 0.0)) {
        return Err(Error::invalid("max_minutes", m, "a positive number of minutes").into());
    }
    let max_seconds = settings.max_minutes.map(|m| m * 60.0);
    let opts = PretrainOptions { out, seed: settings.seed, resume, device, quiet, knn, interrupt_after_steps: None, max_seconds };
    Ok(pretrain::pretrain(&train, &config, &params, &opts)?)
}

/// Clusters need different images: fewer distinct training images than `n_classes` cannot form
/// that many clusters, whatever stage I learns.
pub fn check_distinct_images(train: &crate::data::images::ImageSet, n_classes: usize, data: &Path) -> Result<()> {
    let distinct = train.distinct_images(n_classes);
    if distinct < n_classes {
        bail!("{}: the training split holds only {distinct} distinct image(s) ({} in all), too few for {n_classes} classes", data.display(), train.count);
    }
    Ok(())
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
        let started = std::time::Instant::now();
        let features = simclr::extract_features(&model.backbone, &set, &meta.normalization, meta.params.image_size, device, |n| bar.inc(n as u64));
        bar.finish_and_clear();
        let rate = set.count as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let labels = set.labels.filter(|l| l.iter().all(|&x| x >= 0));
        results.push((out.join(format!("{name}.safetensors")), features, labels, rate));
    }
    let files: Vec<_> = results.iter().map(|(p, f, l, _)| (p.as_path(), f, l.as_deref())).collect();
    features::save_features_together(&files)?;
    for (path, features, _, rate) in &results {
        status("Wrote", &format!("{} ({} x {}; {rate:.0} images/s)", path.display(), features.size()[0], features.size()[1]), quiet);
    }
    Ok(())
}

/// Feature extraction with a pretrained TorchScript encoder instead of a SimCLR checkpoint:
/// the same files as `features_stage` (L2-normalised, labels where the dataset has them).
/// A folder dataset is read at the model's input size unless `folder_size` says otherwise.
pub fn torchscript_features_stage(dataset: &DatasetArgs, model: &Path, prep: &Preprocessing, device: tch::Device, out: &Path, quiet: bool) -> Result<()> {
    let encoder = TorchScriptEncoder::load(model, device)?;
    let channels = encoder.in_channels().map_or("unknown".to_string(), |c| c.to_string());
    status("Loaded", &format!("{} ({channels} input channels, {} on {})", model.display(), prep.normalize, crate::device::describe(device)), quiet);
    let mut dataset = dataset.clone();
    if dataset.folder_size.is_none() {
        dataset.folder_size = Some(prep.image_size);
    }
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let set = dataset.read(split)?;
        if set.channels == 1 && encoder.in_channels().unwrap_or(3) == 3 && prep.normalize.channels() != Some(1) {
            status("Note", &format!("{name}: grey images, repeated over 3 channels for the colour model"), quiet);
        }
        let bar = crate::progress::bar(set.count as u64, "Features", quiet);
        let started = std::time::Instant::now();
        let features = encoder.extract(&set, prep, |n| bar.inc(n as u64))?;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let path = out.join(format!("{name}.safetensors"));
        features::save_features(&path, &features, set.labels.as_deref().filter(|l| l.iter().all(|&x| x >= 0)))?;
        let rate = set.count as f64 / seconds.max(1e-9);
        status("Wrote", &format!("{} ({} x {}; {rate:.0} images/s)", path.display(), features.size()[0], features.size()[1]), quiet);
    }
    Ok(())
}

/// Loaded, checked and L2-normalised train/test features.
pub struct FeatureData {
    /// Training features, rows L2-normalised (what stages II and III work on).
    pub train: Tensor,
    /// The training features as given, where their rows are not unit length already: the
    /// geometry naming compares the member means of these. Normalising each sample first
    /// scales each class's mean by its own spread (noisy classes shrink towards the origin) and
    /// undoes the naming's invariance to a common offset of the features.
    pub train_raw: Option<Tensor>,
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
        let train_unit = l2_normalize(&train.features);
        let distinct = features::count_distinct_rows(&train_unit, n_classes)?;
        if distinct < n_classes {
            bail!(
                "{}: the training features have only {distinct} distinct direction(s) (rows equal after L2 normalisation), too few for {n_classes} clusters (a backbone that gives every image the same features, or copies of a few images)",
                train_path.display()
            );
        }
        let given = train.features.to_kind(tch::Kind::Float);
        let unit_length = (given.norm_scalaropt_dim(2, [1i64].as_slice(), false) - 1.0).abs().max().double_value(&[]) < 1e-3;
        Ok(FeatureData {
            train_raw: (!unit_length).then(|| given.to_device(device)),
            train: train_unit.to_device(device),
            test: l2_normalize(&test.features).to_device(device),
            test_labels: test.labels,
        })
    }
}
