//! Stage III, cluster-guided distribution matching: a linear classifier fC (D -> c) on frozen
//! features, initialised from the stage II centroids, trained so that the distribution of its
//! logits matches the label prior P.
//!
//! Each step: logits S_C of B features, B prior samples S_P, cost
//! M_ij = sum_k w_jk (S_C[i,k] - S_P[j,k])^2 (eq. 3), entropic plan R* (Sinkhorn), and
//!   L_sk   = <R*, M>_F                  (plain Sinkhorn loss)
//!   L_cgsk = <A_B A_B^T R*, M>_F        (eq. 5; A_B one-hot clusters of the batch)
//! so that sample i is pulled toward the prior samples its cluster-mates are matched to.
//! The prior samples are handled as weighted atoms (see `prior::sampler`).
use crate::error::{Error, Result};
use crate::ot::{self, SinkhornParams};
use crate::prior::sampler::{PriorAtoms, PriorSampler};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, nn::OptimizerConfig, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MatchingLoss {
    /// L_cgsk, eq. 5 (needs the stage II clusters).
    Cgsk,
    /// L_sk, the plain Sinkhorn loss.
    Sk,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClassifierInit {
    /// Row j of the weight matrix = centroid j (times `init_scale`), bias 0.
    Centroids,
    /// PyTorch's default Linear initialisation, U(-1/sqrt(D), 1/sqrt(D)).
    Random,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// Paper: Adam.
    Adam,
    /// Review code: SGD with momentum 0.9 and weight decay 5e-4.
    Sgd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlanGradient {
    /// Treat R* as a constant (the gradient of the OT value w.r.t. M is R*, envelope theorem).
    Constant,
    /// Backpropagate through the unrolled Sinkhorn iterations, as the review code does.
    Unrolled,
}

/// Hyper-parameters of stage III; `Default` gives the paper's values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MatchingParams {
    pub loss: MatchingLoss,
    pub init: ClassifierInit,
    /// Scale applied to the centroids at initialisation (paper: 1; review code: 0.1).
    pub init_scale: f64,
    /// B (paper: 500).
    pub batch_size: usize,
    /// Training steps (paper: 10K).
    pub steps: usize,
    /// Learning rate (paper: 1e-5).
    pub learning_rate: f64,
    pub optimizer: OptimizerKind,
    /// Gradient-norm clipping (L_cgsk is unbounded): 100.
    pub grad_clip: f64,
    pub sinkhorn: SinkhornParams,
    pub plan_gradient: PlanGradient,
    /// Model selection: keep the parameters with the lowest mean training loss over this many
    /// recent steps (paper: a windowed mean; review code: 1, a single batch).
    pub selection_window: usize,
    /// Check for a new best model every this many steps (review code: 10).
    pub selection_every: usize,
    /// Review code: draw a pool of this many prior vectors once and sample batches from it.
    pub prior_pool: Option<usize>,
    /// Write a metrics line every this many steps.
    pub log_every: usize,
}

impl Default for MatchingParams {
    fn default() -> Self {
        MatchingParams {
            loss: MatchingLoss::Cgsk,
            init: ClassifierInit::Centroids,
            init_scale: 1.0,
            batch_size: 500,
            steps: 10_000,
            learning_rate: 1e-5,
            optimizer: OptimizerKind::Adam,
            grad_clip: 100.0,
            sinkhorn: SinkhornParams::default(),
            plan_gradient: PlanGradient::Constant,
            selection_window: 100,
            selection_every: 10,
            prior_pool: None,
            log_every: 100,
        }
    }
}

impl MatchingParams {
    pub fn check(&self) -> Result<()> {
        if self.batch_size < 2 {
            return Err(Error::invalid("batch_size", self.batch_size, "at least 2"));
        }
        if self.steps == 0 {
            return Err(Error::invalid("steps", 0, "at least 1"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::invalid("learning_rate", self.learning_rate, "a positive number"));
        }
        if !(self.grad_clip > 0.0) {
            return Err(Error::invalid("grad_clip", self.grad_clip, "a positive number"));
        }
        if !(self.init_scale > 0.0 && self.init_scale.is_finite()) {
            return Err(Error::invalid("init_scale", self.init_scale, "a positive number"));
        }
        if self.selection_window == 0 || self.selection_every == 0 || self.log_every == 0 {
            return Err(Error::invalid("selection_window/selection_every/log_every", 0, "at least 1"));
        }
        if self.prior_pool == Some(0) {
            return Err(Error::invalid("prior_pool", 0, "at least 1"));
        }
        self.sinkhorn.check()
    }
}

/// The classifier fC: logits = x W^T + b.
pub struct Classifier {
    /// (c, D) f32.
    pub weight: Tensor,
    /// (c) f32.
    pub bias: Tensor,
}

impl Classifier {
    /// (N, c) raw logits of (N, D) features.
    pub fn logits(&self, features: &Tensor) -> Tensor {
        features.matmul(&self.weight.tr()) + &self.bias
    }

    /// The predicted class of each row: argmax of the logits. No matching, no labels.
    pub fn predict(&self, features: &Tensor) -> Vec<i64> {
        tch::no_grad(|| Vec::<i64>::try_from(self.logits(features).argmax(1, false)).unwrap_or_default())
    }

    /// PyTorch's nn.Linear default initialisation (the paper's "Random" fC), from our seed.
    pub fn random(n_classes: usize, feat_dim: usize, rng: &mut Rng) -> Self {
        let bound = 1.0 / (feat_dim as f64).sqrt();
        let mut draw = |n: usize| -> Vec<f32> { (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect() };
        let weight = Tensor::from_slice(&draw(n_classes * feat_dim)).view([n_classes as i64, feat_dim as i64]);
        let bias = Tensor::from_slice(&draw(n_classes));
        Classifier { weight, bias }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_safetensors_atomic(path, &[("weight", &self.weight), ("bias", &self.bias)])
    }

    pub fn load(path: &Path) -> Result<Self> {
        crate::data::checked::open_regular(path)?; // a FIFO would block libtorch's reader
        let tensors = Tensor::read_safetensors(path)
            .map_err(|e| Error::format(path, format!("not a classifier checkpoint: {e}")))?;
        let get = |name: &str| {
            tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone()).ok_or_else(|| {
                Error::format(path, format!("no tensor '{name}' in the classifier checkpoint"))
            })
        };
        Ok(Classifier { weight: get("weight")?, bias: get("bias")? })
    }

    fn copy(&self) -> Self {
        Classifier { weight: self.weight.detach().copy(), bias: self.bias.detach().copy() }
    }

    /// An independent copy (detached from any graph).
    pub fn clone_detached(&self) -> Self {
        self.copy()
    }
}

/// The nearest-centroid rule as a linear classifier: argmin_k |x - z_k|^2 = argmax_k
/// (2 x.z_k - |z_k|^2), so row k is 2 z_k and its bias -|z_k|^2 (`centroids` (c, D), row k the
/// centroid of class k). Lets a naming-only model be saved and applied like any other fC.
pub fn nearest_centroid_classifier(centroids: &Tensor) -> Classifier {
    let z = centroids.detach().to_device(tch::Device::Cpu).to_kind(Kind::Float);
    let bias = -(&z * &z).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
    Classifier { weight: &z * 2.0, bias }
}

/// One logged point of training.
#[derive(Clone, Debug, Serialize)]
pub struct StepLog {
    pub step: usize,
    pub loss: f64,
    pub window_mean: f64,
    pub sinkhorn_iterations: f64,
    pub sinkhorn_converged: f64,
    pub elapsed_s: f64,
}

/// The result of stage III.
pub struct Matching {
    /// The selected (lowest windowed training loss) classifier.
    pub classifier: Classifier,
    pub best_step: usize,
    pub best_window_loss: f64,
    /// The classifier at initialisation (for reports and ablations).
    pub initial: Classifier,
    pub curve: Vec<StepLog>,
}

/// Cost (eq. 3) between logits S (B, c) and atoms T (K, c) with the atoms' weights W: (B, K).
///
/// M_ij = sum_k W_jk (S_ik - T_jk)^2 = (S^2 W^T)_ij - 2 (S (W T)^T)_ij + sum_k W_jk T_jk^2:
/// three small matrix products instead of a (B, K, c) broadcast, forward and backward.
pub fn weighted_cost(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Tensor {
    let weighted_targets = weights * targets;
    let constant = (&weighted_targets * targets).sum_dim_intlist([1i64].as_slice(), false, logits.kind());
    logits.square().matmul(&weights.tr()) - logits.matmul(&weighted_targets.tr()) * 2.0 + constant.unsqueeze(0)
}

/// Eq. 3 written out as a (B, K, c) broadcast: the reference for `weighted_cost`.
pub fn weighted_cost_direct(logits: &Tensor, targets: &Tensor, weights: &Tensor) -> Tensor {
    let diff = logits.unsqueeze(1) - targets.unsqueeze(0);
    (diff.square() * weights.unsqueeze(0)).sum_dim_intlist([2i64].as_slice(), false, logits.kind())
}

/// A_B A_B^T R: row i becomes the sum of the plan rows of the batch samples in i's cluster.
pub fn cluster_guided_plan(plan: &Tensor, batch_clusters: &Tensor, n_clusters: i64) -> Tensor {
    let per_cluster = Tensor::zeros([n_clusters, plan.size()[1]], (plan.kind(), plan.device()))
        .index_add(0, batch_clusters, plan);
    per_cluster.index_select(0, batch_clusters)
}

/// The loss of one step, given logits and a prior batch as (atom index, probability) pairs.
/// Returns the loss, the Sinkhorn solution's g (per present atom), iterations and convergence.
#[allow(clippy::too_many_arguments)]
pub fn step_loss(
    logits: &Tensor,
    atoms: &PriorAtoms,
    present: &Tensor,
    prior_mass: &Tensor,
    batch_clusters: Option<(&Tensor, i64)>,
    params: &MatchingParams,
    warm_g: Option<&Tensor>,
) -> (Tensor, Tensor, usize, bool) {
    let targets = atoms.targets.to_device(logits.device()).index_select(0, present).to_kind(logits.kind());
    let weights = atoms.weights.to_device(logits.device()).index_select(0, present).to_kind(logits.kind());
    let cost = weighted_cost(logits, &targets, &weights);
    let batch = logits.size()[0];
    let a = ot::uniform(batch, &cost);
    // Each atom stands for (its mass x B) identical prior samples of the B x B problem.
    let copies: Vec<f64> = Vec::<f64>::try_from(prior_mass.to_kind(Kind::Double).to_device(tch::Device::Cpu))
        .unwrap_or_default()
        .into_iter()
        .map(|mass| (mass * batch as f64).round())
        .collect();
    let transport = match params.plan_gradient {
        PlanGradient::Constant => {
            tch::no_grad(|| ot::sinkhorn_with_copies(&cost.detach(), &a, prior_mass, Some(&copies), &params.sinkhorn, warm_g))
        }
        PlanGradient::Unrolled => ot::sinkhorn_with_copies(&cost, &a, prior_mass, Some(&copies), &params.sinkhorn, warm_g),
    };
    let plan = match (params.loss, batch_clusters) {
        (MatchingLoss::Cgsk, Some((clusters, k))) => cluster_guided_plan(&transport.plan, clusters, k),
        _ => transport.plan.shallow_clone(),
    };
    let loss = (plan * &cost).sum(cost.kind());
    (loss, transport.g, transport.iterations, transport.converged)
}

/// fC before training: random, or the centroids (row k = centroid k) times `init_scale`.
fn initial_classifier(centroids: Option<&Tensor>, n_classes: usize, d: usize, params: &MatchingParams, seed: u64) -> Result<Classifier> {
    match params.init {
        ClassifierInit::Random => Ok(Classifier::random(n_classes, d, &mut Rng::derive(seed, "match-init"))),
        ClassifierInit::Centroids => {
            let z = centroids.ok_or_else(|| Error::invalid("init", "centroids", "stage II centroids (none were given)"))?;
            if z.size() != [n_classes as i64, d as i64] {
                return Err(Error::Shape {
                    what: "centroids for the classifier initialisation".into(),
                    expected: format!("({n_classes}, {d}): one centroid per class"),
                    got: format!("{:?}", z.size()),
                });
            }
            Ok(Classifier { weight: z.to_device(tch::Device::Cpu) * params.init_scale, bias: Tensor::zeros([n_classes as i64], (Kind::Float, tch::Device::Cpu)) })
        }
    }
}

/// The cluster of every training sample as a tensor, where the loss (L_cgsk) needs it.
fn cluster_tensor(clusters: Option<&[i64]>, n: usize, params: &MatchingParams, device: tch::Device) -> Result<Option<Tensor>> {
    match (params.loss, clusters) {
        (MatchingLoss::Cgsk, None) => Err(Error::invalid("loss", "cgsk", "stage II cluster assignments (none were given)")),
        (MatchingLoss::Cgsk, Some(c)) if c.len() != n => Err(Error::Shape { what: "cluster assignments".into(), expected: format!("{n}"), got: format!("{}", c.len()) }),
        (MatchingLoss::Cgsk, Some(c)) => Ok(Some(Tensor::from_slice(c).to_device(device))),
        (MatchingLoss::Sk, _) => Ok(None),
    }
}

/// Label-free model selection: the parameters with the lowest mean training loss over the last
/// `window` steps, checked every `every` steps (paper: windowed mean; review code: window 1,
/// every 10).
struct ModelSelection {
    window: usize,
    every: usize,
    recent: std::collections::VecDeque<f64>,
    window_sum: f64,
    best: Classifier,
    best_step: usize,
    best_window_loss: f64,
}

impl ModelSelection {
    fn new(initial: Classifier, params: &MatchingParams) -> Self {
        ModelSelection { window: params.selection_window, every: params.selection_every, recent: Default::default(), window_sum: 0.0, best: initial, best_step: 0, best_window_loss: f64::INFINITY }
    }

    /// Adds step `step`'s loss; keeps the current parameters if their window is the best so
    /// far. Returns the window mean.
    fn observe(&mut self, step: usize, loss: f64, weight: &Tensor, bias: &Tensor) -> f64 {
        self.recent.push_back(loss);
        self.window_sum += loss;
        if self.recent.len() > self.window {
            self.window_sum -= self.recent.pop_front().unwrap_or(0.0);
        }
        let window_mean = self.window_sum / self.recent.len() as f64;
        let full = self.recent.len() == self.window.min(step + 1);
        if (step + 1) % self.every == 0 && full && window_mean < self.best_window_loss {
            self.best_window_loss = window_mean;
            self.best_step = step + 1;
            self.best = Classifier { weight: weight.detach().to_device(tch::Device::Cpu).copy(), bias: bias.detach().to_device(tch::Device::Cpu).copy() };
        }
        window_mean
    }
}

/// Sinkhorn statistics averaged between two log lines.
#[derive(Default)]
struct SinkhornStats {
    iterations: usize,
    converged: usize,
    steps: usize,
}

impl SinkhornStats {
    fn add(&mut self, iterations: usize, converged: bool) {
        self.iterations += iterations;
        self.converged += converged as usize;
        self.steps += 1;
    }

    fn means(&self) -> (f64, f64) {
        (self.iterations as f64 / self.steps as f64, self.converged as f64 / self.steps as f64)
    }
}

/// Trains fC. `features` (N, D) f32 L2-normalised rows; `clusters` (N) the stage II
/// assignments (needed by L_cgsk); `centroids` (c, D) (needed by the centroid initialisation).
#[allow(clippy::too_many_arguments)]
pub fn train(
    features: &Tensor,
    clusters: Option<&[i64]>,
    centroids: Option<&Tensor>,
    atoms: &PriorAtoms,
    n_classes: usize,
    params: &MatchingParams,
    seed: u64,
    mut on_step: impl FnMut(&StepLog, bool) -> Result<()>,
) -> Result<Matching> {
    params.check()?;
    let device = features.device();
    let (n, d) = (features.size()[0] as usize, features.size()[1] as usize);
    let mut rng = Rng::derive(seed, "match-batches");
    let initial = initial_classifier(centroids, n_classes, d, params, seed)?;
    let cluster_tensor = cluster_tensor(clusters, n, params, device)?;
    let n_clusters = clusters.and_then(|c| c.iter().max()).map_or(0, |m| m + 1);

    let vs = nn::VarStore::new(device);
    let weight = vs.root().var_copy("weight", &initial.weight.to_device(device));
    let bias = vs.root().var_copy("bias", &initial.bias.to_device(device));
    let mut opt = match params.optimizer {
        OptimizerKind::Adam => nn::Adam::default().build(&vs, params.learning_rate)?,
        OptimizerKind::Sgd => nn::Sgd { momentum: 0.9, dampening: 0.0, wd: 5e-4, nesterov: false }.build(&vs, params.learning_rate)?,
    };
    let mut sampler = PriorSampler::new(atoms, params.prior_pool, Rng::derive(seed, "match-prior"));
    let batch = params.batch_size.min(n);
    let mut warm_g_all = Tensor::zeros([atoms.len() as i64], (Kind::Float, device));
    let mut scratch = Vec::new();
    let mut selection = ModelSelection::new(initial.copy(), params);
    let mut stats = SinkhornStats::default();
    let mut curve = Vec::new();
    let start = std::time::Instant::now();
    for step in 0..params.steps {
        let index = Tensor::from_slice(&rng.sample_without_replacement(&mut scratch, n, batch)).to_device(device);
        let logits = features.index_select(0, &index).matmul(&weight.tr()) + &bias;
        let counts = sampler.sample_counts(batch);
        let present_idx: Vec<i64> = (0..counts.len() as i64).filter(|&a| counts[a as usize] > 0).collect();
        let mass: Vec<f32> = present_idx.iter().map(|&a| counts[a as usize] as f32 / batch as f32).collect();
        let present = Tensor::from_slice(&present_idx).to_device(device);
        let prior_mass = Tensor::from_slice(&mass).to_device(device);
        let warm = warm_g_all.index_select(0, &present);
        let batch_clusters = cluster_tensor.as_ref().map(|c| (c.index_select(0, &index), n_clusters));
        let (loss, g, iterations, converged) =
            step_loss(&logits, atoms, &present, &prior_mass, batch_clusters.as_ref().map(|(t, k)| (t, *k)), params, Some(&warm));
        warm_g_all = warm_g_all.index_copy(0, &present, &g);
        opt.backward_step_clip_norm(&loss, params.grad_clip);
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(Error::NonFinite { what: format!("matching loss at step {step}"), row: 0, col: 0 });
        }
        let window_mean = selection.observe(step, value, &weight, &bias);
        stats.add(iterations, converged);
        let log_now = (step + 1) % params.log_every == 0 || step + 1 == params.steps;
        let (sinkhorn_iterations, sinkhorn_converged) = stats.means();
        let entry = StepLog { step: step + 1, loss: value, window_mean, sinkhorn_iterations, sinkhorn_converged, elapsed_s: start.elapsed().as_secs_f64() };
        if log_now {
            curve.push(entry.clone());
            stats = SinkhornStats::default();
        }
        on_step(&entry, log_now)?;
    }
    Ok(Matching { classifier: selection.best, best_step: selection.best_step, best_window_loss: selection.best_window_loss, initial, curve })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_params() {
        let ok = MatchingParams::default();
        assert!(ok.check().is_ok());
        assert!(MatchingParams { batch_size: 1, ..ok.clone() }.check().is_err());
        assert!(MatchingParams { learning_rate: f64::NAN, ..ok.clone() }.check().is_err());
        assert!(MatchingParams { grad_clip: 0.0, ..ok.clone() }.check().is_err());
        assert!(MatchingParams { selection_window: 0, ..ok.clone() }.check().is_err());
        assert!(MatchingParams { prior_pool: Some(0), ..ok }.check().is_err());
    }

    #[test]
    fn expanded_cost_equals_equation_three() {
        let mut rng = Rng::new(4);
        let mut t = |r: i64, c: i64| Tensor::from_slice(&(0..r * c).map(|_| rng.normal()).collect::<Vec<_>>()).view([r, c]);
        let (s, targets, w) = (t(7, 5), t(4, 5), t(4, 5).abs());
        let diff = (weighted_cost(&s, &targets, &w) - weighted_cost_direct(&s, &targets, &w)).abs().max().double_value(&[]);
        assert!(diff < 1e-12, "{diff}");
    }

    #[test]
    fn nearest_centroid_classifier_predicts_the_nearest_centroid() {
        let mut rng = Rng::new(9);
        let mut t = |r: i64, c: i64| Tensor::from_slice(&(0..r * c).map(|_| rng.normal() as f32).collect::<Vec<_>>()).view([r, c]);
        let (z, x) = (t(6, 5), t(200, 5));
        let nearest: Vec<i64> = Vec::try_from(x.unsqueeze(1).f_sub(&z.unsqueeze(0)).unwrap().square().sum_dim_intlist([2i64].as_slice(), false, Kind::Float).argmin(1, false)).unwrap();
        assert_eq!(nearest_centroid_classifier(&z).predict(&x), nearest);
    }

    #[test]
    fn cluster_guided_plan_sums_cluster_mates() {
        let plan = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 2.0, 3.0, 0.0]).view([3, 2]);
        let clusters = Tensor::from_slice(&[0i64, 1, 0]);
        let q = Vec::<Vec<f32>>::try_from(cluster_guided_plan(&plan, &clusters, 2)).unwrap();
        assert_eq!(q, vec![vec![4.0, 0.0], vec![0.0, 2.0], vec![4.0, 0.0]]);
    }
}
