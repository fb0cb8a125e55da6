//! SCAN-style clustering on frozen features (Van Gansbeke et al., "SCAN: Learning to Classify
//! Images without Labels", ECCV 2020), the variant whose backbone stays frozen (SCAN's
//! `update_cluster_head_only`, its ImageNet recipe): only clustering heads are trained.
//!
//! 1. **Mining**: the `neighbours` nearest neighbours of every training feature by cosine
//!    similarity, exact, in blocks of rows so that memory stays bounded ([`nearest_neighbours`]).
//! 2. **SCAN loss** (paper eq. 2), for a batch of anchors a and one of each anchor's mined
//!    neighbours n, drawn at random, with p = softmax(h(.)) the head's cluster probabilities:
//!
//!    `L = -1/B sum_a log <p(a), p(n)>  -  w * H(mean_a p(a))`,   `H(q) = -sum_k q_k log q_k`
//!
//!    (consistency minus `entropy_weight` w times the entropy of the mean prediction, which keeps
//!    every cluster in use). Several heads are trained on the same batches; the head with the
//!    lowest SCAN loss over the whole training set and all its mined neighbours is kept
//!    (SCAN's label-free selection).
//! 3. **Self-labelling** (optional, paper section 3.2): samples whose highest probability exceeds
//!    `self_label_threshold` take their argmax as a pseudo-label, and the kept head is fine-tuned
//!    with cross-entropy weighted by the inverse frequency of each pseudo-label. SCAN computes
//!    the pseudo-label on a weakly and the loss on a strongly augmented image; on frozen
//!    features the weak view is the feature and the strong one the feature plus Gaussian noise
//!    (relative size `self_label_noise`), projected back onto the unit sphere.
//!
//! `objective = temi` trains the heads with TEMI's loss instead ([`temi_loss`]: Adaloglou et
//! al., BMVC 2023, the frozen-feature clustering heads that gained 6-12 points over k-means on
//! pretrained features): a student head and its exponential-moving-average teacher, the pointwise
//! mutual information of a sample and its neighbour raised to beta = 0.6, weighted by the
//! teachers' agreement; the head with the lowest mean loss over the last epoch is kept.
//!
//! The clusters are the argmax of the kept head (an empty cluster is given the samples, from
//! clusters with more than one member, whose probability for it is highest); the soft
//! assignments are the head's probabilities; new samples are assigned by the head
//! ([`Clusters::predict`] uses [`ClusterHead`]).
use super::{argmax_none_empty, ClusterHead, Clusterer, ClusteringStep, Clusters};
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// The clustering head trained on the frozen features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScanHeadKind {
    /// One linear layer D -> c (SCAN's clustering head).
    Linear,
    /// D -> hidden -> ReLU -> c.
    Mlp,
}

/// The loss the clustering heads are trained with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScanObjective {
    /// SCAN's neighbour consistency plus the entropy of the mean prediction ([`scan_loss`]).
    #[default]
    Scan,
    /// TEMI's weighted pointwise mutual information between a student head and its
    /// exponential-moving-average teacher ([`temi_loss`]); `entropy_weight` is unused.
    Temi,
}

/// TEMI's recipe (Adaloglou et al., "Exploring the Limits of Deep Image Clustering using
/// Pretrained Models", BMVC 2023): the exponent beta of its PMI^beta, the student's and the
/// teacher's softmax temperatures (both 0.1, the official code's defaults), the teacher's EMA momentum, and the momentum of
/// the running estimate of the teacher's cluster marginal.
const TEMI_BETA: f64 = 0.6;
const TEMI_STUDENT_TEMPERATURE: f64 = 0.1;
const TEMI_TEACHER_TEMPERATURE: f64 = 0.1;
const TEMI_TEACHER_MOMENTUM: f64 = 0.996;
const TEMI_MARGINAL_MOMENTUM: f64 = 0.9;

/// Hyper-parameters of SCAN on frozen features; `default_for(c)` gives SCAN's recipe.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanParams {
    pub n_clusters: usize,
    /// Mined neighbours per sample (SCAN: 20 for CIFAR/STL, 50 for ImageNet).
    pub neighbours: usize,
    /// Weight w of the entropy of the mean prediction (SCAN: 5).
    pub entropy_weight: f64,
    /// Heads trained together; the lowest-loss one is kept (SCAN: 10 for frozen features).
    pub heads: usize,
    pub head: ScanHeadKind,
    /// SCAN's loss or TEMI's (absent in parameters written before TEMI: SCAN's).
    #[serde(default)]
    pub objective: ScanObjective,
    /// Hidden width of the MLP head.
    pub hidden: usize,
    /// Passes over the training set of the SCAN step.
    pub epochs: usize,
    /// Anchors per step (SCAN, frozen ImageNet features: 512).
    pub batch_size: usize,
    /// Adam learning rate (SCAN: 1e-4 on its un-normalised backbone features; 1e-3 here,
    /// where the features have unit norm: at 1e-4 the SCAN loss was still falling after 100
    /// epochs on CIFAR-10 and Fashion-MNIST features, at 1e-3 it ends lower on both).
    pub learning_rate: f64,
    /// Adam L2 weight decay (SCAN: 1e-4).
    pub weight_decay: f64,
    /// Fine-tune the kept head on its confident predictions.
    pub self_label: bool,
    /// Probability above which a prediction becomes a pseudo-label (SCAN: 0.99).
    pub self_label_threshold: f64,
    pub self_label_epochs: usize,
    /// Std of the Gaussian noise of the "strong view", relative to the unit feature norm.
    pub self_label_noise: f64,
}

impl ScanParams {
    /// SCAN's recipe for frozen features: 20 neighbours, entropy weight 5, 10 linear heads,
    /// Adam with weight decay 1e-4, batch 512 (the learning rate 1e-3, not SCAN's 1e-4: see
    /// `learning_rate`); self-labelling off (see docs/method.md).
    pub fn default_for(n_clusters: usize) -> Self {
        ScanParams {
            n_clusters,
            neighbours: 20,
            entropy_weight: 5.0,
            heads: 10,
            head: ScanHeadKind::Linear,
            objective: ScanObjective::Scan,
            hidden: 512,
            epochs: 100,
            batch_size: 512,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            self_label: false,
            self_label_threshold: 0.99,
            self_label_epochs: 25,
            self_label_noise: 0.1,
        }
    }

    /// Checks what can be checked without data (`ScanClusterer::new` calls it).
    pub fn check(&self) -> Result<()> {
        let finite_in = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
        if self.n_clusters < 2 {
            return Err(Error::invalid("n_clusters", self.n_clusters, "at least 2"));
        }
        if !(1..=1000).contains(&self.neighbours) {
            return Err(Error::invalid("scan_neighbours", self.neighbours, "between 1 and 1000"));
        }
        if !finite_in(self.entropy_weight, 0.0, 1e6) {
            return Err(Error::invalid("scan_entropy_weight", self.entropy_weight, "a weight in [0, 1e6]"));
        }
        if !(1..=100).contains(&self.heads) {
            return Err(Error::invalid("scan_heads", self.heads, "between 1 and 100"));
        }
        if !(1..=100_000).contains(&self.hidden) {
            return Err(Error::invalid("scan_hidden", self.hidden, "between 1 and 100000"));
        }
        if !(1..=100_000).contains(&self.epochs) {
            return Err(Error::invalid("scan_epochs", self.epochs, "between 1 and 100000"));
        }
        if !(2..=1_000_000).contains(&self.batch_size) {
            return Err(Error::invalid("scan_batch_size", self.batch_size, "between 2 and 1000000"));
        }
        if !(self.learning_rate > 0.0 && finite_in(self.learning_rate, 1e-12, 1e3)) {
            return Err(Error::invalid("scan_lr", self.learning_rate, "a learning rate in [1e-12, 1000]"));
        }
        if !finite_in(self.weight_decay, 0.0, 1e3) {
            return Err(Error::invalid("scan_weight_decay", self.weight_decay, "a weight decay in [0, 1000]"));
        }
        if !(self.self_label_threshold > 0.0 && finite_in(self.self_label_threshold, 0.0, 1.0) && self.self_label_threshold < 1.0) {
            return Err(Error::invalid("scan_self_label_threshold", self.self_label_threshold, "a probability in (0, 1)"));
        }
        if self.self_label && !(1..=100_000).contains(&self.self_label_epochs) {
            return Err(Error::invalid("scan_self_label_epochs", self.self_label_epochs, "between 1 and 100000 when self-labelling"));
        }
        if !finite_in(self.self_label_noise, 0.0, 10.0) {
            return Err(Error::invalid("scan_self_label_noise", self.self_label_noise, "a relative noise level in [0, 10]"));
        }
        Ok(())
    }
}

/// SCAN with checked parameters.
#[derive(Clone, Debug)]
pub struct ScanClusterer {
    params: ScanParams,
}

/// What [`ScanClusterer::fit_scan`] learned, beside the clusters.
pub struct ScanFit {
    pub clusters: Clusters,
    /// (N, K) i64 on the CPU: row i holds the mined neighbours of sample i, nearest first.
    pub neighbours: Tensor,
    /// SCAN loss of every head over the whole training set, after the SCAN step.
    pub head_losses: Vec<f64>,
    /// The kept head (the lowest of `head_losses`).
    pub chosen: usize,
}

impl ScanClusterer {
    pub fn new(params: ScanParams) -> Result<Self> {
        params.check()?;
        Ok(ScanClusterer { params })
    }

    pub fn params(&self) -> &ScanParams {
        &self.params
    }

    /// The whole method, with what the tests and studies look at.
    pub fn fit_scan(&self, features: &Tensor, seed: u64, observer: &mut dyn FnMut(&ClusteringStep)) -> Result<ScanFit> {
        let p = &self.params;
        let (n, d) = (features.size()[0], features.size()[1]);
        if p.n_clusters as i64 > n {
            return Err(Error::invalid("n_clusters", p.n_clusters, format!("at most the number of samples ({n})")));
        }
        if p.neighbours as i64 >= n {
            return Err(Error::invalid("scan_neighbours", p.neighbours, format!("fewer than the number of samples ({n})")));
        }
        let device = features.device();
        let x = crate::data::features::l2_normalize(&features.to_kind(Kind::Float));
        let neighbours = tch::no_grad(|| nearest_neighbours(&x, p.neighbours, block_rows(n)))?;
        let nbr_flat = Vec::<i64>::try_from(neighbours.flatten(0, -1))?;
        let mut rng = Rng::derive(seed, "scan");
        let heads = Heads::init(p, d, &mut rng, device);
        let mut opt = nn::Adam::default().wd(p.weight_decay).build(&heads.vs, p.learning_rate)?;
        let k = p.neighbours;
        let batch = p.batch_size.min(n as usize);
        let total_steps = p.epochs * (n as usize).div_ceil(batch);
        let mut temi = (p.objective == ScanObjective::Temi).then(|| TemiState::new(&heads, p.n_clusters, total_steps));
        let mut order: Vec<i64> = (0..n).collect();
        let mut curve = Vec::new();
        for epoch in 0..p.epochs {
            rng.shuffle(&mut order);
            let (mut sum, mut batches) = (0.0, 0usize);
            if let Some(state) = temi.as_mut() {
                state.start_epoch();
            }
            for anchors in order.chunks(batch) {
                let picked: Vec<i64> = anchors.iter().map(|&i| nbr_flat[i as usize * k + rng.below(k)]).collect();
                let xa = x.index_select(0, &Tensor::from_slice(anchors).to_device(device));
                let xn = x.index_select(0, &Tensor::from_slice(&picked).to_device(device));
                let losses = match temi.as_mut() {
                    None => scan_loss(&heads.logits(&xa), &heads.logits(&xn), p.entropy_weight),
                    Some(state) => state.loss(&heads, &xa, &xn),
                };
                let loss = losses.sum(Kind::Float);
                opt.backward_step(&loss);
                if let Some(state) = temi.as_mut() {
                    state.after_step(&heads, &losses);
                }
                sum += loss.double_value(&[]) / p.heads as f64;
                batches += 1;
            }
            let value = sum / batches.max(1) as f64;
            if !value.is_finite() {
                return Err(Error::NonFinite { what: format!("SCAN loss at epoch {epoch}"), row: 0, col: 0 });
            }
            curve.push((epoch, value));
            observer(&ClusteringStep { step: epoch, loss: value, inner_iterations: batches });
        }
        // SCAN: each head's loss over the whole set and all its neighbours; TEMI, whose loss
        // needs the teacher's running marginal: each head's mean loss over the last epoch.
        let head_losses = match temi {
            None => tch::no_grad(|| whole_set_losses(&heads, &x, &neighbours, p.entropy_weight))?,
            Some(state) => state.mean_epoch_losses()?,
        };
        let chosen = head_losses.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(h, _)| h);
        let mut head = heads.extract(chosen);
        if p.self_label {
            head = self_label(head, &x, p, &mut rng, &mut |e, loss| {
                curve.push((p.epochs + e, loss));
                observer(&ClusteringStep { step: p.epochs + e, loss, inner_iterations: 0 });
            })?;
        }
        let probs = tch::no_grad(|| head.forward(&x).softmax(-1, Kind::Float));
        let assignments = argmax_none_empty(&probs, p.n_clusters)?;
        let mut clusters = Clusters::new(&x, assignments, None, curve)?;
        clusters.soft_assignments = Some(probs);
        clusters.head = Some(head);
        Ok(ScanFit { clusters, neighbours, head_losses, chosen })
    }
}

impl Clusterer for ScanClusterer {
    fn name(&self) -> &'static str {
        "scan"
    }

    fn steps(&self) -> usize {
        self.params.epochs + if self.params.self_label { self.params.self_label_epochs } else { 0 }
    }

    fn fit(&self, features: &Tensor, seed: u64, observer: &mut dyn FnMut(&ClusteringStep)) -> Result<Clusters> {
        Ok(self.fit_scan(features, seed, observer)?.clusters)
    }
}

/// Rows per block of the neighbour search: about 16M similarities (64 MB of f32) at a time.
fn block_rows(n: i64) -> i64 {
    (16_000_000 / n.max(1)).clamp(1, 4096)
}

/// The `k` nearest neighbours of every row of `x` ((N, D) f32, rows L2-normalised) by cosine
/// similarity, itself excluded: (N, k) i64 on the CPU, nearest first. Exact; the similarities
/// are computed `block` rows at a time on `x`'s device, so memory is O(block * N).
pub fn nearest_neighbours(x: &Tensor, k: usize, block: i64) -> Result<Tensor> {
    let n = x.size()[0];
    if k as i64 >= n || k == 0 {
        return Err(Error::invalid("neighbours", k, format!("between 1 and the number of samples - 1 ({})", n - 1)));
    }
    if block < 1 {
        return Err(Error::invalid("neighbour search block", block, "at least 1 row"));
    }
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let rows = block.min(n - start);
        let sims = x.narrow(0, start, rows).matmul(&x.tr());
        // Exclude each row itself: its own similarity becomes -inf.
        let own = Tensor::arange_start(start, start + rows, (Kind::Int64, x.device())).unsqueeze(1);
        let sims = sims.scatter_value(1, &own, f64::NEG_INFINITY);
        let (_, index) = sims.topk(k as i64, 1, true, true);
        parts.push(index.to_device(Device::Cpu));
        start += rows;
    }
    Ok(Tensor::cat(&parts, 0))
}

/// SCAN's loss of each head: `logits_a`, `logits_n` (H, B, c) of the anchors and of one
/// neighbour each. Returns (H) f32: `-mean_b log <p_a, p_n> - w * H(mean_b p_a)`.
///
/// log <p_a, p_n> is computed as logsumexp(l_a + l_n) - logsumexp(l_a) - logsumexp(l_n), which
/// stays finite where the dot product underflows (SCAN clamps it in its BCE instead).
pub fn scan_loss(logits_a: &Tensor, logits_n: &Tensor, entropy_weight: f64) -> Tensor {
    let log_dot = (logits_a + logits_n).logsumexp([-1i64].as_slice(), false) - logits_a.logsumexp([-1i64].as_slice(), false) - logits_n.logsumexp([-1i64].as_slice(), false);
    let consistency = -log_dot.mean_dim([-1i64].as_slice(), false, Kind::Float);
    let mean_p = logits_a.softmax(-1, Kind::Float).mean_dim([1i64].as_slice(), false, Kind::Float);
    consistency - entropy(&mean_p) * entropy_weight
}

/// TEMI's loss of each head (BMVC 2023, eqs. 6-9) for anchors a and one mined neighbour n
/// each: student logits `student_a`, `student_n` and teacher logits `teacher_a`, `teacher_n`,
/// all (H, B, c), and `log_marginal` (H, 1, c), the log of the running estimate of each
/// teacher head's cluster marginal q~. Returns (H):
///
///   `-1/B sum_b w_b * (pmi(s_a, t_n) + pmi(s_n, t_a)) / 2`,
///   `pmi(s, t) = log sum_k (s_k t_k)^beta / q~_k`,   `w_b = mean_h sum_k t_a,k t_n,k`,
///
/// with s = softmax(student / 0.1) and t = softmax(teacher / 0.1). The teacher terms and the
/// weight w (the teachers' agreement on the pair, averaged over the heads: TEMI's ensemble
/// weighting) carry no gradient; dividing by q~ keeps every cluster in use.
pub fn temi_loss(student_a: &Tensor, student_n: &Tensor, teacher_a: &Tensor, teacher_n: &Tensor, log_marginal: &Tensor) -> Tensor {
    let last = [-1i64];
    let log_s = |l: &Tensor| (l / TEMI_STUDENT_TEMPERATURE).log_softmax(-1, Kind::Float);
    let log_t = |l: &Tensor| (l.detach() / TEMI_TEACHER_TEMPERATURE).log_softmax(-1, Kind::Float);
    let (s_a, s_n, t_a, t_n) = (log_s(student_a), log_s(student_n), log_t(teacher_a), log_t(teacher_n));
    let log_marginal = log_marginal.detach();
    let pmi = |s: &Tensor, t: &Tensor| ((s + t) * TEMI_BETA - &log_marginal).logsumexp(last.as_slice(), false);
    let weight = (&t_a + &t_n).exp().sum_dim_intlist(last.as_slice(), false, Kind::Float).mean_dim([0i64].as_slice(), true, Kind::Float);
    let both = (pmi(&s_a, &t_n) + pmi(&s_n, &t_a)) * 0.5;
    -(weight * both).mean_dim(last.as_slice(), false, Kind::Float)
}

/// TEMI's state beside the student heads: the teacher (an exponential moving average of the
/// student's parameters), each teacher head's running cluster marginal, and each head's loss
/// summed over the current epoch (for choosing the head).
struct TemiState {
    teacher: HeadWeights,
    marginal: Tensor,
    momentum: f64,
    epoch_losses: Tensor,
    epoch_batches: usize,
}

/// The teacher's EMA momentum for a run of `total_steps` optimiser steps: TEMI's 0.996, except
/// where the run is too short for it. The teacher averages over about 1 / (1 - m) steps, 250 at
/// 0.996; a small set (RetinaMNIST: 1080 samples, 300 steps in all) would leave the teacher near
/// its random start, so the horizon is capped at a tenth of the run (m = 1 - 10 / total_steps).
/// Sets of more than about 1,250 batches in all (CIFAR-10: 9,800) keep 0.996.
fn temi_teacher_momentum(total_steps: usize) -> f64 {
    TEMI_TEACHER_MOMENTUM.min(1.0 - 10.0 / total_steps.max(11) as f64)
}

impl TemiState {
    fn new(student: &Heads, n_clusters: usize, total_steps: usize) -> Self {
        let teacher = student.weights.detached_copy();
        let device = teacher.b1.device();
        let c = n_clusters as i64;
        let marginal = Tensor::full([student.count, 1, c], 1.0 / c as f64, (Kind::Float, device));
        let epoch_losses = Tensor::zeros([student.count], (Kind::Double, device));
        TemiState { teacher, marginal, momentum: temi_teacher_momentum(total_steps), epoch_losses, epoch_batches: 0 }
    }

    fn start_epoch(&mut self) {
        self.epoch_losses = self.epoch_losses.zeros_like();
        self.epoch_batches = 0;
    }

    /// After the optimiser's step: the teacher follows the student, the batch's losses count.
    fn after_step(&mut self, student: &Heads, losses: &Tensor) {
        tch::no_grad(|| self.teacher.move_towards(&student.weights, self.momentum));
        self.epoch_losses += losses.detach().to_kind(Kind::Double);
        self.epoch_batches += 1;
    }

    /// Each head's mean loss over the epoch so far (the last one, once training ends).
    fn mean_epoch_losses(&self) -> Result<Vec<f64>> {
        Ok(Vec::<f64>::try_from(&self.epoch_losses / self.epoch_batches.max(1) as f64)?)
    }

    /// The loss of each head on a batch; first updates the marginal with the batch's teacher
    /// probabilities (momentum 0.9), as TEMI does.
    fn loss(&mut self, student: &Heads, xa: &Tensor, xn: &Tensor) -> Tensor {
        let (teacher_a, teacher_n) = tch::no_grad(|| (self.teacher.logits(xa), self.teacher.logits(xn)));
        tch::no_grad(|| {
            let probs = Tensor::cat(&[&teacher_a, &teacher_n], 1).divide_scalar(TEMI_TEACHER_TEMPERATURE).softmax(-1, Kind::Float);
            let batch_mean = probs.mean_dim([1i64].as_slice(), true, Kind::Float);
            self.marginal = &self.marginal * TEMI_MARGINAL_MOMENTUM + batch_mean * (1.0 - TEMI_MARGINAL_MOMENTUM);
        });
        temi_loss(&student.logits(xa), &student.logits(xn), &teacher_a, &teacher_n, &self.marginal.clamp_min(1e-12).log())
    }
}

/// Entropy of each row (last dim) of probabilities, with SCAN's clamp at 1e-8.
fn entropy(p: &Tensor) -> Tensor {
    let clamped = p.clamp_min(1e-8);
    -(&clamped * clamped.log()).sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)
}

/// SCAN's loss of every head over the whole set: every sample with each of its mined
/// neighbours in the consistency term, the mean over all samples in the entropy term.
fn whole_set_losses(heads: &Heads, x: &Tensor, neighbours: &Tensor, w: f64) -> Result<Vec<f64>> {
    let n = x.size()[0];
    let log_p = blocked(n, |s, r| heads.logits(&x.narrow(0, s, r)).log_softmax(-1, Kind::Float)); // (H, N, c)
    let nbr = neighbours.to_device(x.device());
    let k = nbr.size()[1];
    let mut consistency = Tensor::zeros([heads.count], (Kind::Double, x.device()));
    let mut start = 0;
    while start < n {
        let rows = 4096.min(n - start);
        let la = log_p.narrow(1, start, rows).unsqueeze(2); // (H, r, 1, c)
        let idx = nbr.narrow(0, start, rows).flatten(0, -1);
        let ln = log_p.index_select(1, &idx).view([heads.count, rows, k, -1]);
        let log_dot = (la + ln).logsumexp([-1i64].as_slice(), false); // log-probs: already normalised
        consistency -= log_dot.sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Double);
        start += rows;
    }
    let consistency = consistency / (n * k) as f64;
    let mean_p = log_p.exp().mean_dim([1i64].as_slice(), false, Kind::Float);
    let total = consistency - entropy(&mean_p).to_kind(Kind::Double) * w;
    Ok(Vec::<f64>::try_from(total)?)
}

/// `f(start, rows)` over blocks of 8192 rows, concatenated along dim 1 ((H, rows, c) parts).
fn blocked(n: i64, f: impl Fn(i64, i64) -> Tensor) -> Tensor {
    let mut parts = Vec::new();
    let mut start = 0;
    while start < n {
        let rows = 8192.min(n - start);
        parts.push(f(start, rows));
        start += rows;
    }
    Tensor::cat(&parts, 1)
}

/// `heads` clustering heads with their parameters stacked on a leading head dimension, so that
/// one batched matmul evaluates all of them.
struct Heads {
    vs: nn::VarStore,
    count: i64,
    weights: HeadWeights,
}

/// The stacked parameters of the heads: (H, D, hidden or c) and (H, 1, hidden or c), then
/// (H, hidden, c) and (H, 1, c) for the MLP head.
struct HeadWeights {
    w1: Tensor,
    b1: Tensor,
    second: Option<(Tensor, Tensor)>,
}

/// PyTorch's default `nn.Linear` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn
/// from the run's seed.
fn uniform_init(shape: &[i64], fan_in: i64, rng: &mut Rng, device: Device) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let count: i64 = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| ((2.0 * rng.uniform() - 1.0) * bound) as f32).collect();
    Tensor::from_slice(&values).view(shape).to_device(device)
}

impl Heads {
    fn init(p: &ScanParams, d: i64, rng: &mut Rng, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let (h, c) = (p.heads as i64, p.n_clusters as i64);
        let out1 = if p.head == ScanHeadKind::Mlp { p.hidden as i64 } else { c };
        let w1 = root.var_copy("w1", &uniform_init(&[h, d, out1], d, rng, device));
        let b1 = root.var_copy("b1", &uniform_init(&[h, 1, out1], d, rng, device));
        let second = (p.head == ScanHeadKind::Mlp).then(|| {
            let w2 = root.var_copy("w2", &uniform_init(&[h, out1, c], out1, rng, device));
            let b2 = root.var_copy("b2", &uniform_init(&[h, 1, c], out1, rng, device));
            (w2, b2)
        });
        Heads { vs, count: h, weights: HeadWeights { w1, b1, second } }
    }

    /// (B, D) -> (H, B, c) logits.
    fn logits(&self, x: &Tensor) -> Tensor {
        self.weights.logits(x)
    }

    /// Head `h` as a standalone [`ClusterHead`] (copied, detached).
    fn extract(&self, h: usize) -> ClusterHead {
        let h = h as i64;
        let w = &self.weights;
        let take = |t: &Tensor| t.get(h).detach().copy();
        let mut layers = vec![(take(&w.w1), take(&w.b1).squeeze_dim(0))];
        if let Some((w2, b2)) = &w.second {
            layers.push((take(w2), take(b2).squeeze_dim(0)));
        }
        ClusterHead { layers }
    }
}

impl HeadWeights {
    fn logits(&self, x: &Tensor) -> Tensor {
        let first = x.unsqueeze(0).matmul(&self.w1) + &self.b1;
        match &self.second {
            Some((w2, b2)) => first.relu().matmul(w2) + b2,
            None => first,
        }
    }

    fn tensors(&self) -> Vec<&Tensor> {
        let mut all = vec![&self.w1, &self.b1];
        if let Some((w2, b2)) = &self.second {
            all.extend([w2, b2]);
        }
        all
    }

    fn detached_copy(&self) -> HeadWeights {
        let copy = |t: &Tensor| t.detach().copy();
        HeadWeights { w1: copy(&self.w1), b1: copy(&self.b1), second: self.second.as_ref().map(|(w, b)| (copy(w), copy(b))) }
    }

    /// self <- momentum * self + (1 - momentum) * other, tensor by tensor (call under no_grad).
    fn move_towards(&mut self, other: &HeadWeights, momentum: f64) {
        let mut mine = vec![&mut self.w1, &mut self.b1];
        if let Some((w2, b2)) = self.second.as_mut() {
            mine.extend([w2, b2]);
        }
        for (t, o) in mine.into_iter().zip(other.tensors()) {
            let _ = t.g_mul_scalar_(momentum);
            let _ = t.g_add_(&(o.detach() * (1.0 - momentum)));
        }
    }
}

/// Fine-tunes `head` on its own confident predictions (SCAN's self-labelling).
fn self_label(head: ClusterHead, x: &Tensor, p: &ScanParams, rng: &mut Rng, report: &mut dyn FnMut(usize, f64)) -> Result<ClusterHead> {
    let device = x.device();
    let (n, d) = (x.size()[0], x.size()[1]);
    let vs = nn::VarStore::new(device);
    let layers: Vec<(Tensor, Tensor)> = head
        .layers
        .iter()
        .enumerate()
        .map(|(i, (w, b))| (vs.root().var_copy(&format!("w{i}"), w), vs.root().var_copy(&format!("b{i}"), b)))
        .collect();
    let trainable = ClusterHead { layers };
    let mut opt = nn::Adam::default().wd(p.weight_decay).build(&vs, p.learning_rate)?;
    let c = p.n_clusters as i64;
    let noise_std = p.self_label_noise / (d as f64).sqrt();
    let mut order: Vec<i64> = (0..n).collect();
    for epoch in 0..p.self_label_epochs {
        rng.shuffle(&mut order);
        let (mut sum, mut batches) = (0.0, 0usize);
        for chunk in order.chunks(p.batch_size.min(n as usize)) {
            let weak = x.index_select(0, &Tensor::from_slice(chunk).to_device(device));
            let (max_p, target) = tch::no_grad(|| trainable.forward(&weak).softmax(-1, Kind::Float).max_dim(1, false));
            let mask = max_p.gt(p.self_label_threshold);
            let confident = mask.sum(Kind::Int64).int64_value(&[]);
            if confident == 0 {
                continue;
            }
            let noise: Vec<f32> = (0..weak.numel()).map(|_| (rng.normal() * noise_std) as f32).collect();
            let strong = crate::data::features::l2_normalize(&(&weak + Tensor::from_slice(&noise).view([-1, d]).to_device(device)));
            let target = target.masked_select(&mask);
            let log_p = trainable.forward(&strong).log_softmax(-1, Kind::Float).index_select(0, &mask.nonzero().squeeze_dim(1));
            // SCAN's class balancing: weight n_confident / count of each pseudo-class present.
            let counts = Tensor::zeros([c], (Kind::Float, device)).index_add(0, &target, &Tensor::ones([confident], (Kind::Float, device)));
            let class_weight = (confident as f64 / counts.clamp_min(1.0)).detach();
            let w = class_weight.index_select(0, &target);
            let picked = log_p.gather(1, &target.unsqueeze(1), false).squeeze_dim(1);
            let loss = -(&w * picked).sum(Kind::Float) / w.sum(Kind::Float);
            opt.backward_step(&loss);
            sum += loss.double_value(&[]);
            batches += 1;
        }
        let value = if batches > 0 { sum / batches as f64 } else { 0.0 };
        if !value.is_finite() {
            return Err(Error::NonFinite { what: format!("self-labelling loss at epoch {epoch}"), row: 0, col: 0 });
        }
        report(epoch, value);
    }
    Ok(ClusterHead { layers: trainable.layers.iter().map(|(w, b)| (w.detach().copy(), b.detach().copy())).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_unit(n: i64, d: i64, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let v: Vec<f32> = (0..n * d).map(|_| rng.normal() as f32).collect();
        crate::data::features::l2_normalize(&Tensor::from_slice(&v).view([n, d]))
    }

    #[test]
    fn loss_and_gradient_match_a_hand_computed_case() {
        // One head, B = 2, c = 2. Equivalent numpy code:
        //   la = np.array([[1., 0.], [0., 2.]]); ln = np.array([[0., 1.], [0., 0.]])
        //   sm = lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)
        //   pa, pn = sm(la), sm(ln)
        //   cons = -np.log((pa * pn).sum(1)).mean()     # 0.81326...
        //   q = pa.mean(0); ent = -(q * np.log(q)).sum() # 0.68189...
        //   loss = cons - 5 * ent                        # -2.59621...
        let (e, e2) = (std::f64::consts::E, std::f64::consts::E.powi(2));
        let pa = [[e / (e + 1.0), 1.0 / (e + 1.0)], [1.0 / (1.0 + e2), e2 / (1.0 + e2)]];
        let pn = [[1.0 / (1.0 + e), e / (1.0 + e)], [0.5, 0.5]];
        let dots: Vec<f64> = (0..2).map(|i| pa[i][0] * pn[i][0] + pa[i][1] * pn[i][1]).collect();
        let cons = -(dots[0].ln() + dots[1].ln()) / 2.0;
        let q = [(pa[0][0] + pa[1][0]) / 2.0, (pa[0][1] + pa[1][1]) / 2.0];
        let ent = -(q[0] * q[0].ln() + q[1] * q[1].ln());
        let expected = cons - 5.0 * ent;
        assert!((cons - 0.813_26).abs() < 1e-4 && (ent - 0.681_89).abs() < 1e-4 && (expected + 2.596_21).abs() < 1e-4, "{cons} {ent}");
        let la = Tensor::from_slice(&[1f32, 0., 0., 2.]).view([1, 2, 2]).set_requires_grad(true);
        let ln = Tensor::from_slice(&[0f32, 1., 0., 0.]).view([1, 2, 2]);
        let loss = scan_loss(&la, &ln, 5.0);
        assert!((loss.double_value(&[0]) - expected).abs() < 1e-5, "{} vs {expected}", loss.double_value(&[0]));
        // Gradient with respect to la[0][0] (anchor 0, cluster 0), by hand:
        //   d cons / d la00 = -1/2 * d log(dot0) / d la00, dot0 = sum_k pa0k pn0k and
        //   d pa0k / d la00 = pa0k (1[k=0] - pa00)  =>  d dot0 = pa00 (pn00 - dot0)
        //   d ent / d la00 = -sum_k (log qk + 1) d qk, d qk = 1/2 pa0k (1[k=0] - pa00)
        let d_cons = -0.5 * pa[0][0] * (pn[0][0] - dots[0]) / dots[0];
        let dq = [0.5 * pa[0][0] * (1.0 - pa[0][0]), -0.5 * pa[0][1] * pa[0][0]];
        let d_ent = -((q[0].ln() + 1.0) * dq[0] + (q[1].ln() + 1.0) * dq[1]);
        let expected_grad = d_cons - 5.0 * d_ent;
        loss.sum(Kind::Float).backward();
        let grad = la.grad().double_value(&[0, 0, 0]);
        assert!((grad - expected_grad).abs() < 1e-5, "{grad} vs {expected_grad}");
        // and every component against central differences of the loss itself
        let base = Vec::<f32>::try_from(la.detach().flatten(0, -1)).unwrap();
        for j in 0..4 {
            let at = |delta: f32| {
                let mut v = base.clone();
                v[j] += delta;
                scan_loss(&Tensor::from_slice(&v).view([1, 2, 2]).to_kind(Kind::Double), &ln.to_kind(Kind::Double), 5.0).double_value(&[0])
            };
            let numeric = (at(1e-3) - at(-1e-3)) / 2e-3;
            let analytic = la.grad().flatten(0, -1).double_value(&[j as i64]);
            assert!((numeric - analytic).abs() < 1e-3, "component {j}: {numeric} vs {analytic}");
        }
    }

    /// TEMI's loss written out in plain f64 for one head: softmaxes, PMI^beta, teacher weight.
    fn temi_by_hand(sa: &[f64], sn: &[f64], ta: &[f64], tn: &[f64], marginal: &[f64]) -> f64 {
        let softmax = |l: &[f64], temp: f64| {
            let e: Vec<f64> = l.iter().map(|v| (v / temp).exp()).collect();
            let z: f64 = e.iter().sum();
            e.into_iter().map(|v| v / z).collect::<Vec<f64>>()
        };
        let (sa, sn, ta, tn) = (softmax(sa, 0.1), softmax(sn, 0.1), softmax(ta, 0.1), softmax(tn, 0.1));
        let pmi = |s: &[f64], t: &[f64]| (0..s.len()).map(|k| (s[k] * t[k]).powf(0.6) / marginal[k]).sum::<f64>().ln();
        let weight: f64 = (0..ta.len()).map(|k| ta[k] * tn[k]).sum();
        -weight * (pmi(&sa, &tn) + pmi(&sn, &ta)) / 2.0
    }

    #[test]
    fn temi_loss_and_gradient_match_a_hand_computed_case() {
        // One head, B = 2 pairs, c = 3; the loss is the mean over the pairs (computed in f32).
        let (sa, sn) = ([[0.3, 0.0, -0.1], [0.05, 0.2, 0.0]], [[0.1, 0.0, 0.2], [0.0, 0.3, -0.2]]);
        let (ta, tn) = ([[0.02, 0.0, 0.01], [0.0, 0.05, 0.0]], [[0.0, 0.04, 0.01], [0.01, 0.03, 0.0]]);
        let marginal = [0.5, 0.3, 0.2];
        let expected = (temi_by_hand(&sa[0], &sn[0], &ta[0], &tn[0], &marginal) + temi_by_hand(&sa[1], &sn[1], &ta[1], &tn[1], &marginal)) / 2.0;
        let t = |rows: &[[f64; 3]; 2]| Tensor::from_slice(&rows.concat()).view([1, 2, 3]);
        let student_a = t(&sa).set_requires_grad(true);
        let teacher_a = t(&ta).set_requires_grad(true);
        let log_marginal = Tensor::from_slice(&marginal).view([1, 1, 3]).log();
        let loss = temi_loss(&student_a, &t(&sn), &teacher_a, &t(&tn), &log_marginal);
        assert_eq!(loss.size(), vec![1]);
        assert!((loss.double_value(&[0]) - expected).abs() < 1e-6, "{} vs {expected}", loss.double_value(&[0]));
        loss.sum(Kind::Double).backward();
        // the teacher is a target: no gradient reaches it
        assert!(!teacher_a.grad().defined() || teacher_a.grad().abs().max().double_value(&[]) == 0.0);
        // the student's gradient against central differences of the hand-written loss
        for j in 0..3 {
            let at = |delta: f64| {
                let mut row = sa[0];
                row[j] += delta;
                (temi_by_hand(&row, &sn[0], &ta[0], &tn[0], &marginal) + temi_by_hand(&sa[1], &sn[1], &ta[1], &tn[1], &marginal)) / 2.0
            };
            let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
            let analytic = student_a.grad().double_value(&[0, 0, j as i64]);
            assert!((numeric - analytic).abs() < 1e-5, "component {j}: {numeric} vs {analytic}");
        }
    }

    #[test]
    fn temi_teacher_momentum_is_temis_except_on_short_runs() {
        assert_eq!(temi_teacher_momentum(9800), 0.996);
        assert_eq!(temi_teacher_momentum(2500), 0.996);
        assert!((temi_teacher_momentum(300) - (1.0 - 10.0 / 300.0)).abs() < 1e-12);
        assert!(temi_teacher_momentum(0) >= 0.0 && temi_teacher_momentum(1) < 0.1);
    }

    #[test]
    fn temi_clusters_separable_blobs() {
        let (x, labels) = blobs(5, 120, 16, 3);
        let p = ScanParams { objective: ScanObjective::Temi, ..quick(5) };
        let fit = ScanClusterer::new(p.clone()).unwrap().fit_scan(&x, 7, &mut |_| {}).unwrap();
        let acc = crate::eval::hungarian_accuracy(&fit.clusters.assignments, &labels, 5, 5);
        assert!(acc > 0.99, "accuracy {acc}");
        let lowest = fit.head_losses.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(fit.head_losses[fit.chosen], lowest);
        let again = ScanClusterer::new(p).unwrap().fit(&x, 7, &mut |_| {}).unwrap();
        assert_eq!(again.assignments, fit.clusters.assignments);
    }

    #[test]
    fn blocked_neighbour_search_equals_brute_force() {
        let x = random_unit(103, 7, 1);
        let k = 5;
        let sims = Vec::<Vec<f32>>::try_from(x.matmul(&x.tr())).unwrap();
        let brute: Vec<Vec<i64>> = sims
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let mut idx: Vec<usize> = (0..row.len()).filter(|&j| j != i).collect();
                idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                idx[..k].iter().map(|&j| j as i64).collect()
            })
            .collect();
        for block in [1, 10, 32, 103, 500] {
            let got = Vec::<Vec<i64>>::try_from(nearest_neighbours(&x, k, block).unwrap()).unwrap();
            assert_eq!(got, brute, "block {block}");
        }
        assert!(nearest_neighbours(&x, 103, 10).unwrap_err().to_string().contains("number of samples - 1 (102)"));
    }

    fn blobs(c: usize, per: usize, d: i64, seed: u64) -> (Tensor, Vec<i64>) {
        let mut rng = Rng::new(seed);
        let centres: Vec<Vec<f64>> = (0..c).map(|_| (0..d).map(|_| rng.normal()).collect()).collect();
        let mut rows = vec![];
        let mut labels = vec![];
        for i in 0..c * per {
            let k = i % c;
            rows.extend(centres[k].iter().map(|m| (m + 0.15 * rng.normal()) as f32));
            labels.push(k as i64);
        }
        (crate::data::features::l2_normalize(&Tensor::from_slice(&rows).view([(c * per) as i64, d])), labels)
    }

    fn quick(c: usize) -> ScanParams {
        ScanParams { epochs: 30, batch_size: 128, learning_rate: 1e-2, neighbours: 10, heads: 4, ..ScanParams::default_for(c) }
    }

    #[test]
    fn clusters_separable_blobs_and_keeps_the_lowest_loss_head() {
        let (x, labels) = blobs(5, 120, 16, 3);
        let mut steps = 0;
        let fit = ScanClusterer::new(quick(5)).unwrap().fit_scan(&x, 7, &mut |_| steps += 1).unwrap();
        assert_eq!(steps, 30);
        let acc = crate::eval::hungarian_accuracy(&fit.clusters.assignments, &labels, 5, 5);
        assert!(acc > 0.99, "accuracy {acc}");
        assert_eq!(fit.head_losses.len(), 4);
        let lowest = fit.head_losses.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(fit.head_losses[fit.chosen], lowest);
        // the kept head is the one that gives the clusters, and predicts the training set alike
        assert_eq!(fit.clusters.predict(&x), fit.clusters.assignments);
        assert_eq!(fit.clusters.soft_assignments.as_ref().unwrap().size(), vec![600, 5]);
        // same seed, same clusters; the MLP head and self-labelling run too
        let again = ScanClusterer::new(quick(5)).unwrap().fit(&x, 7, &mut |_| {}).unwrap();
        assert_eq!(again.assignments, fit.clusters.assignments);
        let mlp = ScanParams { head: ScanHeadKind::Mlp, hidden: 32, self_label: true, self_label_epochs: 3, self_label_threshold: 0.9, ..quick(5) };
        let fit = ScanClusterer::new(mlp).unwrap().fit(&x, 1, &mut |_| {}).unwrap();
        assert!(crate::eval::hungarian_accuracy(&fit.assignments, &labels, 5, 5) > 0.99);
    }

    #[test]
    fn whole_set_loss_of_a_head_is_its_scan_loss_over_every_neighbour_pair() {
        let x = random_unit(40, 6, 2);
        let p = ScanParams { heads: 3, neighbours: 4, ..ScanParams::default_for(3) };
        let heads = Heads::init(&p, 6, &mut Rng::new(1), Device::Cpu);
        let nbr = nearest_neighbours(&x, 4, 16).unwrap();
        let losses = tch::no_grad(|| whole_set_losses(&heads, &x, &nbr, 5.0)).unwrap();
        // the same from scan_loss on all (anchor, neighbour) pairs: consistency over the pairs,
        // entropy over the anchors repeated K times (the same mean)
        let anchors = Tensor::arange(40, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(4, 0, None);
        let pairs = nbr.flatten(0, -1);
        let direct = tch::no_grad(|| scan_loss(&heads.logits(&x.index_select(0, &anchors)), &heads.logits(&x.index_select(0, &pairs)), 5.0));
        for h in 0..3 {
            assert!((losses[h] - direct.double_value(&[h as i64])).abs() < 1e-5, "head {h}");
        }
    }

    #[test]
    fn no_cluster_ends_empty() {
        // Every sample prefers cluster 0; clusters 1 and 2 take the most likely of the rest.
        let probs = Tensor::from_slice(&[0.9f32, 0.05, 0.05, 0.8, 0.15, 0.05, 0.7, 0.1, 0.2, 0.6, 0.3, 0.1]).view([4, 3]);
        assert_eq!(argmax_none_empty(&probs, 3).unwrap(), vec![0, 0, 2, 1]);
    }

    #[test]
    fn rejects_bad_params_naming_each() {
        let p = ScanParams::default_for(10);
        let error = |q: ScanParams| ScanClusterer::new(q).unwrap_err().to_string();
        assert!(error(ScanParams { neighbours: 0, ..p.clone() }).contains("scan_neighbours = 0: expected between 1 and 1000"));
        assert!(error(ScanParams { heads: 0, ..p.clone() }).contains("scan_heads = 0"));
        assert!(error(ScanParams { entropy_weight: -1.0, ..p.clone() }).contains("scan_entropy_weight = -1"));
        assert!(error(ScanParams { entropy_weight: f64::NAN, ..p.clone() }).contains("scan_entropy_weight = NaN"));
        assert!(error(ScanParams { learning_rate: 0.0, ..p.clone() }).contains("scan_lr = 0"));
        assert!(error(ScanParams { batch_size: 1, ..p.clone() }).contains("scan_batch_size = 1"));
        assert!(error(ScanParams { epochs: 0, ..p.clone() }).contains("scan_epochs = 0"));
        assert!(error(ScanParams { self_label_threshold: 1.0, ..p.clone() }).contains("scan_self_label_threshold = 1: expected a probability in (0, 1)"));
        assert!(error(ScanParams { self_label: true, self_label_epochs: 0, ..p.clone() }).contains("scan_self_label_epochs = 0"));
        assert!(error(ScanParams { self_label_noise: -0.1, ..p.clone() }).contains("scan_self_label_noise = -0.1"));
        assert!(error(ScanParams::default_for(1)).contains("n_clusters = 1: expected at least 2"));
        let fitted = ScanClusterer::new(p).unwrap().fit(&random_unit(8, 3, 0), 0, &mut |_| {});
        assert!(fitted.err().unwrap().to_string().contains("n_clusters = 10: expected at most the number of samples (8)"));
        let few = random_unit(15, 3, 0);
        let fitted = ScanClusterer::new(ScanParams::default_for(3)).unwrap().fit(&few, 0, &mut |_| {});
        assert!(fitted.err().unwrap().to_string().contains("scan_neighbours = 20: expected fewer than the number of samples (15)"));
    }
}
