//! `zerolabel predict`: class name and confidence for every image under a path, with the
//! backbone and classifier of a finished run (`RUN/model.json`). Images of any size, grey or
//! colour, are converted to the backbone's channels and input size. A file that cannot be read as
//! an image is reported at the end; it does not stop the others.
use crate::backbone::simclr::{self, SimclrModel};
use crate::data::images::ImageSet;
use crate::device::DeviceChoice;
use crate::error::Error;
use crate::matching::Classifier;
use crate::progress::{self, status};
use anyhow::{bail, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct ModelFile {
    classes: Vec<String>,
    /// Absent when the run's features came from elsewhere (TorchScript model, imported files).
    backbone_checkpoint: Option<PathBuf>,
    classifier: PathBuf,
}

/// One classified image.
#[derive(Clone, Debug)]
pub struct Prediction {
    pub path: PathBuf,
    pub class: String,
    pub confidence: f64,
}

/// Decodes an image to `size` x `size` with `channels` channels (1: luminance, 3: RGB).
fn load(path: &Path, size: usize, channels: usize) -> std::result::Result<Vec<u8>, String> {
    let bytes = crate::data::checked::read_file(path).map_err(|e| e.to_string())?;
    let img = crate::data::images::decode_image(&bytes, path).map_err(|e| e.to_string())?;
    let img = img.resize_exact(size as u32, size as u32, image::imageops::FilterType::Triangle);
    Ok(if channels == 1 { img.to_luma8().into_raw() } else { img.to_rgb8().into_raw() })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Classifies the images under `images`; returns the predictions and the files that failed.
pub fn predict(run: &Path, images: &Path, device: tch::Device, batch_size: usize, quiet: bool) -> Result<(Vec<Prediction>, Vec<(PathBuf, String)>)> {
    let model_path = crate::layout::RunLayout::new(run).model();
    let text = crate::data::checked::read_text(&model_path)?;
    let model: ModelFile = serde_json::from_str(&text).map_err(|e| Error::format(&model_path, format!("not a zerolabel model file: {e}")))?;
    let Some(checkpoint) = model.backbone_checkpoint.as_ref().map(|c| run.join(c)) else {
        bail!(
            "{}: this run's features came from elsewhere (see its report), so it has no backbone to compute features of new images; its classifier ({}) applies to features from the same source",
            model_path.display(),
            run.join(&model.classifier).display()
        );
    };
    let meta = simclr::read_meta(&checkpoint)?;
    let mut backbone = SimclrModel::new(&meta.backbone, &meta.params, device);
    simclr::load_checkpoint(&checkpoint, &mut backbone, None)?;
    let classifier = Classifier::load(&run.join(&model.classifier))?;
    if classifier.weight.size().first().map(|&c| c as usize) != Some(model.classes.len()) {
        bail!("{}: the classifier has weight {:?} but model.json names {} classes", model_path.display(), classifier.weight.size(), model.classes.len());
    }
    let (size, channels) = (meta.params.image_size, meta.backbone.in_channels as usize);
    // Regular files only (a FIFO would block), each real path once (symlink loops).
    let (files, skipped) = crate::data::checked::walk_files(images)?;
    if files.is_empty() {
        let why: Vec<String> = skipped.iter().map(|(p, why)| format!("{}: {why}", p.display())).collect();
        let skipped_text = if why.is_empty() { String::new() } else { format!(" (skipped: {})", why.join("; ")) };
        bail!("{}: no files to classify{skipped_text}", images.display());
    }
    let feature_dim = meta.backbone.feat_dim();
    if classifier.weight.size().get(1).copied() != Some(feature_dim) || classifier.bias.size() != [classifier.weight.size()[0]] {
        bail!(
            "{}: the classifier has weight {:?} and bias {:?}, but the backbone gives {feature_dim} features",
            run.join(&model.classifier).display(),
            classifier.weight.size(),
            classifier.bias.size()
        );
    }
    let bar = progress::bar(files.len() as u64, "Predicting", quiet);
    let (mut predictions, mut failures) = (Vec::new(), skipped);
    for chunk in files.chunks(batch_size.max(1)) {
        let mut set = ImageSet { pixels: Vec::new(), count: 0, height: size, width: size, channels, labels: None, class_names: vec![] };
        let mut paths = Vec::new();
        for path in chunk {
            match load(path, size, channels) {
                Ok(pixels) => {
                    set.pixels.extend(pixels);
                    set.count += 1;
                    paths.push(path.clone());
                }
                Err(e) => failures.push((path.clone(), e)),
            }
        }
        if set.count > 0 {
            let features = simclr::extract_features(&backbone.backbone, &set, &meta.normalization, size, device, |_| {});
            let probs = tch::no_grad(|| classifier.logits(&features).softmax(1, tch::Kind::Float));
            let (conf, class) = probs.max_dim(1, false);
            let conf = Vec::<f32>::try_from(conf)?;
            let class = Vec::<i64>::try_from(class)?;
            for ((path, k), p) in paths.into_iter().zip(class).zip(conf) {
                predictions.push(Prediction { path, class: model.classes[k as usize].clone(), confidence: p as f64 });
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok((predictions, failures))
}

/// The command: writes `out` as CSV (path, class, confidence) and lists unreadable files.
pub fn predict_command(run: &Path, images: &Path, out: &Path, device: DeviceChoice, batch_size: usize, quiet: bool) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::invalid("batch-size", 0, "at least 1").into());
    }
    let device = device.resolve()?;
    let (predictions, failures) = predict(run, images, device, batch_size, quiet)?;
    if predictions.is_empty() {
        // Checked before writing: an existing CSV is not replaced by an empty one.
        for (path, why) in &failures {
            eprintln!("  {}: {why}", path.display());
        }
        bail!("{}: none of the {} file(s) is a readable image; {} was not written", images.display(), failures.len(), out.display());
    }
    let mut csv = String::from("path,class,confidence\n");
    for p in &predictions {
        csv.push_str(&format!("{},{},{:.4}\n", csv_field(&p.path.to_string_lossy()), csv_field(&p.class), p.confidence));
    }
    crate::io::write_atomic(out, csv.as_bytes())?;
    status("Wrote", &format!("{} ({} image(s) classified)", out.display(), predictions.len()), quiet);
    if !failures.is_empty() {
        eprintln!("{} file(s) could not be classified:", failures.len());
        for (path, why) in &failures {
            eprintln!("  {}: {why}", path.display());
        }
    }
    Ok(())
}
