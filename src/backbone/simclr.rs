//! SimCLR pretraining (Chen et al. 2020): two augmented views per image, a projection head
//! D -> 512 -> BatchNorm -> ReLU -> 128, NT-Xent loss with temperature 0.5, Adam (lr 1e-3,
//! weight decay 1e-6). The head is dropped afterwards; features are the pooled backbone output.
//!
//! Checkpoints hold the model, the optimiser moments and the epoch, written atomically after
//! every epoch; the data order and augmentations of epoch e derive from (seed, e) alone, so a
//! resumed run replays exactly what an uninterrupted one would have done.
use super::resnet::{ResNet, ResNetConfig};
use crate::data::augment::{self, AugmentParams};
use crate::data::images::ImageSet;
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, nn::ModuleT, Kind, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimclrParams {
    pub batch_size: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub temperature: f64,
    pub projection_hidden: i64,
    pub projection_dim: i64,
    /// Input resolution (images are cropped and resized to it).
    pub image_size: usize,
    pub augment: AugmentParams,
    /// Threads that compute augmentations while the model trains.
    pub loader_threads: usize,
    /// Arithmetic of the training passes (features are always extracted in f32).
    #[serde(default)]
    pub precision: Precision,
    /// How the learning rate moves over the run.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
}

/// The learning rate over training steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// The base rate throughout (the paper's review code).
    #[default]
    Constant,
    /// Cosine decay from the base rate to zero over the whole epoch budget (SimCLR's own
    /// schedule, without warm-up: Adam's bias correction already damps the first steps).
    /// The budget fixes the curve, so a cosine run cannot be extended with more epochs.
    Cosine,
}

/// Arithmetic of SimCLR's forward and backward passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// f32 throughout.
    #[default]
    Fp32,
    /// Mixed precision as PyTorch's autocast does it: convolutions, linear layers and
    /// activations in bfloat16; weights, gradients, optimiser, batch-norm statistics and the
    /// loss in f32. Fast where the processor has bfloat16 matrix units (AMX, recent GPUs).
    Bf16,
}

impl Precision {
    /// The kind activations are computed in.
    pub fn compute_kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }
}

impl Default for SimclrParams {
    fn default() -> Self {
        SimclrParams {
            batch_size: 128,
            epochs: 500,
            learning_rate: 1e-3,
            weight_decay: 1e-6,
            temperature: 0.5,
            projection_hidden: 512,
            projection_dim: 128,
            image_size: 32,
            augment: AugmentParams::default(),
            loader_threads: 1,
            precision: Precision::Fp32,
            lr_schedule: LrSchedule::Constant,
        }
    }
}

impl SimclrParams {
    /// The learning rate of 0-based training step `step` out of `total_steps`.
    pub fn learning_rate_at(&self, step: usize, total_steps: usize) -> f64 {
        match self.lr_schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine => {
                let progress = step.min(total_steps) as f64 / total_steps.max(1) as f64;
                0.5 * self.learning_rate * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    pub fn check(&self, n_images: usize) -> Result<()> {
        if self.batch_size < 2 || self.batch_size > n_images {
            return Err(Error::invalid("batch_size", self.batch_size, "between 2 and the number of images"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", 0, "at least 1"));
        }
        if !(self.learning_rate > 0.0) || !(self.temperature > 0.0) || self.weight_decay < 0.0 {
            return Err(Error::invalid("learning_rate/temperature/weight_decay", format!("{}/{}/{}", self.learning_rate, self.temperature, self.weight_decay), "positive (weight decay non-negative)"));
        }
        if self.image_size < 8 {
            return Err(Error::invalid("image_size", self.image_size, "at least 8"));
        }
        Ok(())
    }
}

/// Per-channel mean and standard deviation of the training images, used to normalise inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    pub fn of(set: &ImageSet) -> Self {
        let c = set.channels;
        let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
        for px in set.pixels.chunks_exact(c) {
            for k in 0..c {
                let v = px[k] as f64 / 255.0;
                sum[k] += v;
                sq[k] += v * v;
            }
        }
        let n = (set.pixels.len() / c).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq.iter().zip(&mean).map(|(q, m)| ((q / n - m * m).max(1e-8)).sqrt() as f32).collect();
        Normalization { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    /// (B, C, H, W) in [0, 1] -> normalised.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let c = self.mean.len() as i64;
        let mean = Tensor::from_slice(&self.mean).view([1, c, 1, 1]).to_device(x.device());
        let std = Tensor::from_slice(&self.std).view([1, c, 1, 1]).to_device(x.device());
        (x - mean) / std
    }
}

/// Backbone plus projection head.
pub struct SimclrModel {
    pub vs: nn::VarStore,
    pub backbone: ResNet,
    head: ProjectionHead,
}

/// D -> 512 -> BatchNorm -> ReLU -> 128, computing in its input's precision like the backbone.
struct ProjectionHead {
    hidden: nn::Linear,
    bn: nn::BatchNorm,
    out: nn::Linear,
}

/// x W^T + b with the f32 weights cast to x's kind (a no-op for f32 inputs).
fn linear_in_input_kind(layer: &nn::Linear, x: &Tensor) -> Tensor {
    let y = x.matmul(&layer.ws.to_kind(x.kind()).tr());
    match &layer.bs {
        Some(b) => y + b.to_kind(x.kind()),
        None => y,
    }
}

impl SimclrModel {
    pub fn new(config: &ResNetConfig, params: &SimclrParams, device: tch::Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let backbone = ResNet::new(&(&root / "backbone"), config);
        let hp = &root / "head";
        let head = ProjectionHead {
            hidden: nn::linear(&hp / "0", backbone.feat_dim(), params.projection_hidden, Default::default()),
            bn: nn::batch_norm1d(&hp / "1", params.projection_hidden, Default::default()),
            out: nn::linear(&hp / "3", params.projection_hidden, params.projection_dim, Default::default()),
        };
        SimclrModel { vs, backbone, head }
    }

    /// Projections (N, 128) in f32 of images `x` (N, C, H, W), computed in `precision`.
    pub fn project(&self, x: &Tensor, train: bool, precision: Precision) -> Tensor {
        let h = self.backbone.forward_t(&x.to_kind(precision.compute_kind()), train);
        let h = linear_in_input_kind(&self.head.hidden, &h).apply_t(&self.head.bn, train).relu();
        linear_in_input_kind(&self.head.out, &h).to_kind(Kind::Float)
    }
}

/// NT-Xent (normalised temperature-scaled cross entropy) of two views' projections (B, d):
/// each sample's positive is its other view, the 2B - 2 other samples are negatives.
pub fn nt_xent(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    let b = z1.size()[0];
    let z = Tensor::cat(&[z1, z2], 0);
    let z = &z / z.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
    let logits = z.matmul(&z.tr()) / temperature;
    let eye = Tensor::eye(2 * b, (Kind::Bool, z.device()));
    let logits = logits.masked_fill(&eye, f64::NEG_INFINITY);
    let targets = Tensor::cat(&[Tensor::arange_start(b, 2 * b, (Kind::Int64, z.device())), Tensor::arange(b, (Kind::Int64, z.device()))], 0);
    logits.cross_entropy_for_logits(&targets)
}

/// Adam with L2 weight decay (PyTorch's `Adam(weight_decay=...)`), written out so that its
/// moments can be checkpointed and restored exactly.
pub struct Adam {
    pub lr: f64,
    pub weight_decay: f64,
    pub step: i64,
    names: Vec<String>,
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    pub fn new(vs: &nn::VarStore, lr: f64, weight_decay: f64) -> Self {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let m = named.iter().map(|(_, t)| t.zeros_like()).collect();
        let v = named.iter().map(|(_, t)| t.zeros_like()).collect();
        let (names, params) = named.into_iter().unzip();
        Adam { lr, weight_decay, step: 0, names, params, m, v }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    pub fn step(&mut self) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        self.step += 1;
        let (c1, c2) = (1.0 - b1.powi(self.step as i32), 1.0 - b2.powi(self.step as i32));
        tch::no_grad(|| {
            for k in 0..self.params.len() {
                let g = self.params[k].grad();
                if !g.defined() {
                    continue;
                }
                let g = &g + &self.params[k] * self.weight_decay;
                self.m[k] *= b1;
                self.m[k] += &g * (1.0 - b1);
                self.v[k] *= b2;
                self.v[k] += g.square() * (1.0 - b2);
                let update = (&self.m[k] / c1) / ((&self.v[k] / c2).sqrt() + eps) * self.lr;
                self.params[k] -= update;
            }
        });
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (k, name) in self.names.iter().enumerate() {
            out.push((format!("adam.m.{name}"), self.m[k].shallow_clone()));
            out.push((format!("adam.v.{name}"), self.v[k].shallow_clone()));
        }
        out
    }

    fn load_state(&mut self, tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
        for (k, name) in self.names.iter().enumerate() {
            for (prefix, target) in [("adam.m.", &mut self.m[k]), ("adam.v.", &mut self.v[k])] {
                let key = format!("{prefix}{name}");
                let t = tensors.iter().find(|(n, _)| *n == key).ok_or_else(|| Error::format(path, format!("checkpoint lacks '{key}'")))?;
                if t.1.size() != target.size() {
                    return Err(Error::format(path, format!("'{key}' has shape {:?}, the optimiser expects {:?}", t.1.size(), target.size())));
                }
                tch::no_grad(|| target.f_copy_(&t.1))?;
            }
        }
        Ok(())
    }
}

/// What a checkpoint records beside the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub epoch: usize,
    pub adam_step: i64,
    pub seed: u64,
    pub best_loss: f64,
    pub best_epoch: usize,
    pub backbone: ResNetConfig,
    pub params: SimclrParams,
    pub normalization: Normalization,
}

/// Writes model + optimiser + metadata atomically (safetensors, metadata in a JSON sidecar).
pub fn save_checkpoint(path: &Path, model: &SimclrModel, adam: &Adam, meta: &CheckpointMeta) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.extend(adam.state());
    // The metadata also travels inside the tensor file, so that weights and epoch counter are
    // replaced by one atomic rename: a kill between the two files cannot pair the weights of
    // one epoch with the counter of another (the JSON sidecar is for readers; resuming trusts
    // the embedded copy).
    let meta_json = serde_json::to_vec(meta).map_err(|e| Error::Write { path: path.into(), source: std::io::Error::other(e) })?;
    named.push((EMBEDDED_META.to_string(), Tensor::from_slice(&meta_json)));
    let refs: Vec<(&str, &Tensor)> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    crate::io::write_safetensors_atomic(path, &refs)?;
    crate::io::write_json_atomic(&path.with_extension("json"), meta)
}

/// The name of the tensor (u8 bytes of JSON) that holds a checkpoint's metadata.
pub const EMBEDDED_META: &str = "zerolabel.meta_json";

/// The metadata a checkpoint file itself holds (written with its weights by one rename); the
/// JSON sidecar for checkpoints written before it was embedded.
pub fn read_checkpoint_meta(path: &Path) -> Result<CheckpointMeta> {
    let tensors = Tensor::read_safetensors(path).map_err(|e| Error::format(path, format!("not a readable checkpoint: {e}")))?;
    match tensors.iter().find(|(n, _)| n == EMBEDDED_META) {
        Some((_, t)) => {
            let bytes = Vec::<u8>::try_from(t).map_err(|e| Error::format(path, format!("unreadable embedded metadata: {e}")))?;
            let text = String::from_utf8(bytes).map_err(|_| Error::format(path, "embedded metadata is not UTF-8"))?;
            parse_meta(&text, path)
        }
        None => read_meta(path),
    }
}

pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    let meta_path = path.with_extension("json");
    parse_meta(&crate::data::checked::read_text(&meta_path)?, &meta_path)
}

/// Parses and checks checkpoint metadata: the model it describes is built from these numbers,
/// so a damaged file must be refused here, not met as an allocation failure or a panic.
pub fn parse_meta(text: &str, meta_path: &Path) -> Result<CheckpointMeta> {
    let meta: CheckpointMeta =
        serde_json::from_str(text).map_err(|e| Error::format(meta_path, format!("bad checkpoint metadata: {e}")))?;
    let bad = |what: &str| Err(Error::format(meta_path, format!("bad checkpoint metadata: {what}")));
    let b = &meta.backbone;
    if !(b.width > 0.0 && b.width <= 4.0) {
        return bad(&format!("backbone width {} (expected a multiplier in (0, 4])", b.width));
    }
    if !(1..=4).contains(&b.in_channels) {
        return bad(&format!("{} input channels (expected 1 to 4)", b.in_channels));
    }
    let p = &meta.params;
    if !(8..=4096).contains(&p.image_size) {
        return bad(&format!("image size {} (expected 8 to 4096)", p.image_size));
    }
    if !(1..=65536).contains(&p.projection_hidden) || !(1..=65536).contains(&p.projection_dim) {
        return bad(&format!("projection sizes {}/{} (expected 1 to 65536)", p.projection_hidden, p.projection_dim));
    }
    let n = &meta.normalization;
    if n.mean.len() != b.in_channels as usize || n.std.len() != b.in_channels as usize {
        return bad(&format!("normalisation for {}/{} channels, the backbone takes {}", n.mean.len(), n.std.len(), b.in_channels));
    }
    if n.mean.iter().any(|m| !m.is_finite()) || n.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return bad("normalisation mean/std must be finite (std positive)");
    }
    Ok(meta)
}

/// Loads model weights (and, when given, the optimiser state) from a checkpoint.
pub fn load_checkpoint(path: &Path, model: &mut SimclrModel, adam: Option<&mut Adam>) -> Result<()> {
    crate::data::checked::open_regular(path)?; // a FIFO would block libtorch's reader
    let tensors = Tensor::read_safetensors(path).map_err(|e| Error::format(path, format!("not a readable checkpoint: {e}")))?;
    let mut variables = model.vs.variables();
    for (name, target) in variables.iter_mut() {
        let t = tensors.iter().find(|(n, _)| n == name).ok_or_else(|| Error::format(path, format!("checkpoint lacks '{name}' (another architecture?)")))?;
        if t.1.size() != target.size() {
            return Err(Error::format(path, format!("'{name}' has shape {:?}, the model expects {:?}", t.1.size(), target.size())));
        }
        tch::no_grad(|| target.f_copy_(&t.1))?;
    }
    if let Some(adam) = adam {
        adam.load_state(&tensors, path)?;
    }
    Ok(())
}

/// One epoch's shuffled order.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::derive(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15), "simclr-order").shuffle(&mut order);
    order
}

/// Augmented batches of one epoch, computed by a background thread ahead of training.
pub fn epoch_batches(set: &ImageSet, params: &SimclrParams, seed: u64, epoch: usize) -> std::sync::mpsc::Receiver<(Vec<f32>, Vec<f32>, usize)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(3);
    let order = epoch_order(set.count, seed, epoch);
    let set = set.clone();
    let params = params.clone();
    std::thread::spawn(move || {
        // Drop the last incomplete batch, as SimCLR does.
        for batch in order.chunks_exact(params.batch_size) {
            let (a, b) = augment::two_view_batch(&set, batch, params.image_size, &params.augment, seed, epoch, params.loader_threads);
            if tx.send((a, b, batch.len())).is_err() {
                return;
            }
        }
    });
    rx
}

/// Pooled backbone features of un-augmented images, L2-normalised: (N, D) f32 on the CPU.
pub fn extract_features(backbone: &ResNet, set: &ImageSet, norm: &Normalization, image_size: usize, device: tch::Device, mut progress: impl FnMut(usize)) -> Tensor {
    let c = set.channels as i64;
    let s = image_size as i64;
    let mut chunks = Vec::new();
    tch::no_grad(|| {
        for start in (0..set.count).step_by(256) {
            let end = (start + 256).min(set.count);
            let mut buf = Vec::with_capacity((end - start) * (c * s * s) as usize);
            for i in start..end {
                buf.extend(augment::plain(set, i, image_size));
            }
            let x = norm.apply(&Tensor::from_slice(&buf).view([(end - start) as i64, c, s, s]).to_device(device));
            let f = backbone.forward_t(&x, false);
            chunks.push(crate::data::features::l2_normalize(&f).to_device(tch::Device::Cpu));
            progress(end - start);
        }
    });
    Tensor::cat(&chunks, 0)
}

/// The memory guard for `knn_accuracy`: a block of 512 test rows against every train row
/// (similarities and the top-k copy) plus the vote matrix.
pub fn check_knn_memory(n_train: i64, n_classes: i64) -> Result<()> {
    let bytes = 512u128 * (n_train.max(0) as u128 * 4 * 3 + n_classes.max(0) as u128 * 4);
    crate::memory::ensure_fits(bytes, &format!("a kNN block of 512 queries against {n_train} training rows, {n_classes} classes"), "use fewer training features")
}

/// Weighted kNN accuracy (k neighbours by cosine similarity, votes weighted by exp(sim / 0.1)),
/// the usual self-supervised monitor. `train`/`test` are L2-normalised (N, D) features.
pub fn knn_accuracy(train: &Tensor, train_labels: &[i64], test: &Tensor, test_labels: &[i64], k: i64, n_classes: i64) -> f64 {
    tch::no_grad(|| {
        let labels = Tensor::from_slice(train_labels);
        let k = k.min(train.size()[0]);
        let mut correct = 0i64;
        for start in (0..test.size()[0]).step_by(512) {
            let len = (test.size()[0] - start).min(512);
            let q = test.narrow(0, start, len);
            let sim = q.matmul(&train.tr());
            let (top, idx) = sim.topk(k, 1, true, true);
            let neighbour_labels = labels.index_select(0, &idx.view([-1])).view([len, k]);
            let weights = (top / 0.1).exp();
            let votes = Tensor::zeros([len, n_classes], (Kind::Float, tch::Device::Cpu)).scatter_add(1, &neighbour_labels, &weights);
            let pred = votes.argmax(1, false);
            let truth = Tensor::from_slice(&test_labels[start as usize..(start + len) as usize]);
            correct += pred.eq_tensor(&truth).sum(Kind::Int64).int64_value(&[]);
        }
        correct as f64 / test.size()[0].max(1) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_xent_prefers_matching_views() {
        let z = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0, -1.0, 0.0]).view([3, 2]);
        let aligned = nt_xent(&z, &z, 0.5).double_value(&[]);
        let shuffled = nt_xent(&z, &z.roll([1], [0]), 0.5).double_value(&[]);
        assert!(aligned < shuffled, "{aligned} vs {shuffled}");
    }

    #[test]
    fn knn_finds_the_nearest_class() {
        let train = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let test = Tensor::from_slice(&[0.9f32, 0.1, 0.1, 0.9]).view([2, 2]);
        assert_eq!(knn_accuracy(&train, &[0, 1], &test, &[0, 1], 1, 2), 1.0);
    }

    #[test]
    fn cosine_schedule_decays_from_the_base_rate_to_zero() {
        let cosine = SimclrParams { learning_rate: 2e-3, lr_schedule: LrSchedule::Cosine, ..SimclrParams::default() };
        assert_eq!(cosine.learning_rate_at(0, 100), 2e-3);
        assert!((cosine.learning_rate_at(50, 100) - 1e-3).abs() < 1e-12);
        assert!(cosine.learning_rate_at(99, 100) < 2e-3 * 1e-3);
        assert!(cosine.learning_rate_at(30, 100) > cosine.learning_rate_at(31, 100));
        let constant = SimclrParams { learning_rate: 2e-3, ..SimclrParams::default() };
        assert_eq!(constant.learning_rate_at(99, 100), 2e-3);
    }
}
