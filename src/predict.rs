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

/// Every file under `root` (or `root` itself), sorted; hidden files and folders are skipped.
fn list_files(root: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if meta.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Decodes an image to `size` x `size` with `channels` channels (1: luminance, 3: RGB).
fn load(path: &Path, size: usize, channels: usize) -> std::result::Result<Vec<u8>, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| format!("not a readable PNG/JPEG image ({e})"))?;
    let img = img.resize_exact(size as u32, size as u32, image::imageops::FilterType::Triangle);
    Ok(if channels == 1 { img.to_luma8().into_raw() } else { img.to_rgb8().into_raw() })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Classifies the images under `images`; returns the predictions and the files that failed.
pub fn predict(run: &Path, images: &Path, device: tch::Device, batch_size: usize, quiet: bool) -> Result<(Vec<Prediction>, Vec<(PathBuf, String)>)> {
    let model_path = crate::layout::RunLayout::new(run).model();
    let text = std::fs::read_to_string(&model_path).map_err(|e| Error::io(&model_path, e))?;
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
    if classifier.weight.size()[0] as usize != model.classes.len() {
        bail!("{}: the classifier has {} outputs but model.json names {} classes", model_path.display(), classifier.weight.size()[0], model.classes.len());
    }
    let (size, channels) = (meta.params.image_size, meta.backbone.in_channels as usize);
    let files = list_files(images)?;
    if files.is_empty() {
        bail!("{}: no files to classify", images.display());
    }
    let bar = progress::bar(files.len() as u64, "Predicting", quiet);
    let (mut predictions, mut failures) = (Vec::new(), Vec::new());
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
    let device = device.resolve()?;
    let (predictions, failures) = predict(run, images, device, batch_size, quiet)?;
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
    if predictions.is_empty() {
        bail!("{}: none of the {} file(s) is a readable image", images.display(), failures.len());
    }
    Ok(())
}
