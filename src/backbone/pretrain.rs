//! The SimCLR training loop: epochs of augmented batches (prepared in the background), NT-Xent,
//! Adam; a checkpoint every epoch, the best (lowest training loss) model kept, metrics as JSON
//! lines, and a kNN monitor where the dataset has labels.
use super::resnet::ResNetConfig;
use super::simclr::{self, Adam, CheckpointMeta, LrSchedule, Normalization, SimclrModel, SimclrParams};
use crate::data::images::ImageSet;
use crate::error::{Error, Result};
use crate::io::JsonLines;
use crate::progress;
use serde_json::json;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Labelled splits for the kNN monitor (evaluation only).
pub struct KnnMonitor<'a> {
    pub train: &'a ImageSet,
    pub test: &'a ImageSet,
    pub every: usize,
}

pub struct PretrainOptions<'a> {
    pub out: &'a Path,
    pub seed: u64,
    pub resume: bool,
    pub device: tch::Device,
    pub quiet: bool,
    pub knn: Option<KnnMonitor<'a>>,
    /// Stop after this many training steps of this invocation, as if interrupted (tests).
    pub interrupt_after_steps: Option<usize>,
    /// Wall-clock budget of this invocation: no epoch is started that would, at the pace of
    /// the last one, end past it (a GPU lease, a night). Stops with the checkpoint written.
    pub max_seconds: Option<f64>,
}

#[derive(Debug)]
pub struct PretrainOutcome {
    pub checkpoint: PathBuf,
    pub best: PathBuf,
    pub epochs_run: usize,
    pub interrupted: bool,
}

pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.join("checkpoint.safetensors")
}

pub fn best_path(out: &Path) -> PathBuf {
    out.join("best.safetensors")
}

/// Loads `ckpt` into `model` and `adam` after checking that it was written with the same
/// backbone, parameters (the epoch budget may grow, except under a cosine schedule) and seed.
fn resume(ckpt: &Path, model: &mut SimclrModel, adam: &mut Adam, config: &ResNetConfig, params: &SimclrParams, seed: u64) -> Result<CheckpointMeta> {
    let saved = simclr::read_checkpoint_meta(ckpt)?;
    let same_params = SimclrParams { epochs: params.epochs, ..saved.params.clone() } == *params;
    if saved.backbone != *config || !same_params || saved.seed != seed {
        return Err(Error::format(ckpt, "was written with another backbone, parameters or seed; remove it or drop --resume"));
    }
    if params.lr_schedule == LrSchedule::Cosine && saved.params.epochs != params.epochs {
        return Err(Error::format(
            ckpt,
            format!("was trained on a cosine schedule over {} epochs, which another budget ({}) would change; keep --epochs {} or drop --resume", saved.params.epochs, params.epochs, saved.params.epochs),
        ));
    }
    simclr::load_checkpoint(ckpt, model, Some(adam))?;
    adam.step = saved.adam_step;
    Ok(CheckpointMeta { params: params.clone(), ..saved })
}

/// What one epoch did.
struct EpochStats {
    mean_loss: f64,
    images: usize,
    seconds: f64,
    /// Stopped by `interrupt_after_steps` before the epoch's end.
    interrupted: bool,
}

/// One epoch of SimCLR steps; `steps_done` counts this invocation's steps across epochs.
fn run_epoch(set: &ImageSet, model: &mut SimclrModel, adam: &mut Adam, meta: &CheckpointMeta, epoch: usize, opts: &PretrainOptions, steps_done: &mut usize) -> Result<EpochStats> {
    let params = &meta.params;
    let steps_per_epoch = set.count / params.batch_size;
    let total_steps = steps_per_epoch * params.epochs;
    let (c, s) = (set.channels as i64, params.image_size as i64);
    let bar = progress::bar(steps_per_epoch as u64, &format!("Epoch {}", epoch + 1), opts.quiet);
    let started = std::time::Instant::now();
    let (mut loss_sum, mut batches, mut images) = (0.0, 0usize, 0usize);
    for (v1, v2, n) in simclr::epoch_batches(set, params, opts.seed, epoch) {
        if opts.interrupt_after_steps.is_some_and(|limit| *steps_done >= limit) {
            bar.finish_and_clear();
            return Ok(EpochStats { mean_loss: f64::NAN, images, seconds: 0.0, interrupted: true });
        }
        let n = n as i64;
        let x = Tensor::cat(&[Tensor::from_slice(&v1).view([n, c, s, s]), Tensor::from_slice(&v2).view([n, c, s, s])], 0);
        let x = meta.normalization.apply(&x.to_device(opts.device));
        let z = model.project(&x, true, params.precision);
        let loss = simclr::nt_xent(&z.narrow(0, 0, n), &z.narrow(0, n, n), params.temperature);
        adam.zero_grad();
        loss.backward();
        adam.lr = params.learning_rate_at(adam.step as usize, total_steps);
        adam.step();
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(Error::NonFinite { what: format!("SimCLR loss at epoch {}, batch {batches}", epoch + 1), row: 0, col: 0 });
        }
        loss_sum += value;
        batches += 1;
        images += n as usize;
        *steps_done += 1;
        bar.inc(1);
        bar.set_message(format!("loss {:.4}", loss_sum / batches as f64));
    }
    bar.finish_and_clear();
    Ok(EpochStats { mean_loss: loss_sum / batches.max(1) as f64, images, seconds: started.elapsed().as_secs_f64(), interrupted: false })
}

pub fn pretrain(set: &ImageSet, config: &ResNetConfig, params: &SimclrParams, opts: &PretrainOptions) -> Result<PretrainOutcome> {
    params.check(set.count)?;
    if config.in_channels as usize != set.channels {
        return Err(Error::Shape { what: "backbone input channels".into(), expected: set.channels.to_string(), got: config.in_channels.to_string() });
    }
    let ckpt = checkpoint_path(opts.out);
    let best = best_path(opts.out);
    // Weight initialisation draws from libtorch's generator: seed it.
    tch::manual_seed(opts.seed as i64);
    let mut model = SimclrModel::new(config, params, opts.device);
    let mut adam = Adam::new(&model.vs, params.learning_rate, params.weight_decay);
    let mut meta = CheckpointMeta {
        epoch: 0,
        adam_step: 0,
        seed: opts.seed,
        best_loss: f64::INFINITY,
        best_epoch: 0,
        backbone: config.clone(),
        params: params.clone(),
        normalization: Normalization::of(set),
    };
    if opts.resume && ckpt.exists() {
        meta = resume(&ckpt, &mut model, &mut adam, config, params, opts.seed)?;
        progress::status("Resuming", &format!("{} after epoch {}", ckpt.display(), meta.epoch), opts.quiet);
    }
    let mut log = JsonLines::append(&opts.out.join("pretrain_log.jsonl"))?;
    // Lines of epochs the checkpoint does not hold (written just before a kill) are redone.
    log.retain(|line| line.get("epoch").and_then(|e| e.as_u64()).is_none_or(|e| e as usize <= meta.epoch));
    let mut steps_done = 0usize;
    let start_epoch = meta.epoch;
    let invocation_started = std::time::Instant::now();
    for epoch in meta.epoch..params.epochs {
        let epoch_started = std::time::Instant::now();
        let stats = run_epoch(set, &mut model, &mut adam, &meta, epoch, opts, &mut steps_done)?;
        if stats.interrupted {
            return Ok(PretrainOutcome { checkpoint: ckpt, best, epochs_run: epoch - start_epoch, interrupted: true });
        }
        meta.epoch = epoch + 1;
        meta.adam_step = adam.step;
        let improved = stats.mean_loss < meta.best_loss;
        if improved {
            meta.best_loss = stats.mean_loss;
            meta.best_epoch = epoch + 1;
        }
        let rate = stats.images as f64 / stats.seconds;
        let mut line = json!({"epoch": epoch + 1, "loss": stats.mean_loss, "lr": adam.lr, "images_per_s": rate, "seconds": stats.seconds});
        if let Some(knn) = opts.knn.as_ref().filter(|k| (epoch + 1) % k.every.max(1) == 0 || epoch + 1 == params.epochs) {
            line["knn_accuracy"] = json!(knn_accuracy(&model, knn, &meta.normalization, params.image_size, opts.device)?);
        }
        // The best model first: a kill between the two files then only repeats this epoch
        // (deterministically), never leaves a finished epoch without its best model.
        log.write(&line)?;
        log.flush()?;
        if improved {
            simclr::save_checkpoint(&best, &model, &adam, &meta)?;
        }
        simclr::save_checkpoint(&ckpt, &model, &adam, &meta)?;
        let knn_text = line.get("knn_accuracy").and_then(|v| v.as_f64()).map(|a| format!(", kNN accuracy {:.1}%", 100.0 * a)).unwrap_or_default();
        progress::status("Epoch", &format!("{}/{}: loss {:.4}, {rate:.0} images/s{knn_text}", epoch + 1, params.epochs, stats.mean_loss), opts.quiet);
        if let Some(budget) = opts.max_seconds.filter(|_| epoch + 1 < params.epochs) {
            // The whole epoch as it happened: training, kNN monitor, checkpoints.
            let (used, last) = (invocation_started.elapsed().as_secs_f64(), epoch_started.elapsed().as_secs_f64());
            if used + last > budget {
                progress::status("Stopped", &format!("time budget: {used:.0} s of {budget:.0} s used after epoch {}; another epoch takes ~{last:.0} s (--resume continues)", epoch + 1), opts.quiet);
                return Ok(PretrainOutcome { checkpoint: ckpt, best, epochs_run: epoch + 1 - start_epoch, interrupted: true });
            }
        }
    }
    Ok(PretrainOutcome { checkpoint: ckpt, best, epochs_run: params.epochs - start_epoch, interrupted: false })
}

/// kNN accuracy (k = 200, cosine) of the test features against the train features.
pub fn knn_accuracy(model: &SimclrModel, knn: &KnnMonitor, norm: &Normalization, image_size: usize, device: tch::Device) -> Result<f64> {
    let (Some(train_labels), Some(test_labels)) = (&knn.train.labels, &knn.test.labels) else {
        return Err(Error::invalid("knn monitor", "unlabelled data", "labelled train and test splits"));
    };
    let train = simclr::extract_features(&model.backbone, knn.train, norm, image_size, device, |_| {});
    let test = simclr::extract_features(&model.backbone, knn.test, norm, image_size, device, |_| {});
    let classes = train_labels.iter().chain(test_labels).max().map_or(1, |m| m + 1);
    simclr::check_knn_memory(train.size()[0], classes)?;
    Ok(simclr::knn_accuracy(&train, train_labels, &test, test_labels, 200, classes))
}
