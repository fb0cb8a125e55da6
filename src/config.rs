//! Settings shared by the subcommands and the `run` configuration files.
//!
//! Each settings group is both a set of command-line flags (clap) and a TOML table (serde), so
//! `zerolabel match --lr 1e-4` and `[stages] lr = 1e-4` mean the same thing. A run config
//! (`configs/*.toml`) is one table per group; `--set TABLE.KEY=VALUE` overrides any field.
//! Settings are checked once (ripgrep's pattern): [`StageArgs::validate`] turns the raw flags
//! into the [`StageSettings`] every command uses, with the same rules everywhere.
use crate::backbone::resnet::{Depth, ResNetConfig, Stem};
use crate::backbone::simclr::{LrSchedule, Precision, SimclrParams};
use crate::backbone::torchscript::{InputNormalization, Preprocessing};
use crate::clustering::{AssignmentRule, ClusteringKind, CostScale, ClusteringMethod, KMeansParams, ScanHeadKind, ScanObjective, ScanParams, SinkhornClusteringParams};
use crate::data::augment::AugmentParams;
use crate::data::images::{read_dataset, DatasetFormat, ImageSet, Split};
use crate::device::DeviceChoice;
use crate::error::Error;
use crate::matching::{ClassifierInit, MatchingLoss, MatchingParams, OptimizerKind, PlanGradient};
use crate::naming::{GeometryParams, NamingCentres, NamingKernel, NamingKind, NamingSettings};
use crate::prior::encoder::{build_encoder, EncoderKind};
use crate::prior::{nominal, ordinal, LabelPrior, PriorParams, TargetScheme};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which images: `[data]` in a run config.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetArgs {
    /// Dataset format.
    #[arg(long, value_enum)]
    pub format: DatasetFormat,
    /// Dataset folder (or the .npz file for MedMNIST).
    #[arg(long)]
    #[serde(rename = "path")]
    pub data: PathBuf,
    /// Use only the first N images of each split (quick runs).
    #[arg(long)]
    #[serde(default)]
    pub limit: Option<usize>,
    /// Side of the square images a folder dataset is resized to on reading [64].
    #[arg(long)]
    #[serde(default)]
    pub folder_size: Option<usize>,
}

impl DatasetArgs {
    pub fn read(&self, split: Split) -> crate::Result<ImageSet> {
        if self.limit == Some(0) {
            return Err(Error::invalid("data.limit", 0, "at least 1 image"));
        }
        let set = read_dataset(&self.format, &self.data, split, self.folder_size)?;
        Ok(match self.limit {
            Some(n) => set.take(n),
            None => set,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StemChoice {
    /// CIFAR stem for images up to 64 pixels, ImageNet stem above.
    Auto,
    Cifar,
    Imagenet,
}

/// Stage I hyper-parameters: `[pretrain]` in a run config.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainSettings {
    #[arg(long, value_enum, default_value = "resnet18")]
    pub arch: Depth,
    /// Channel width multiplier (1.0 = standard ResNet).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    #[arg(long, value_enum, default_value = "auto")]
    pub stem: StemChoice,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Learning-rate schedule over the epoch budget.
    #[arg(long, value_enum, default_value = "constant")]
    pub lr_schedule: LrSchedule,
    #[arg(long, default_value_t = 1e-6)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.5)]
    pub temperature: f64,
    /// Smallest area fraction of RandomResizedCrop (SimCLR: 0.08).
    #[arg(long, default_value_t = 0.08)]
    pub crop_min_scale: f64,
    /// Training resolution [the dataset's image size].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Threads computing augmentations beside training.
    #[arg(long, default_value_t = 1)]
    pub loader_threads: usize,
    /// kNN monitor every N epochs where the dataset has labels (0: never).
    #[arg(long, default_value_t = 1)]
    pub knn_every: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// libtorch CPU threads [all cores].
    #[arg(long)]
    pub threads: Option<i32>,
    /// Training arithmetic [auto: bf16 on CPUs with bfloat16 matrix units (Intel AMX), else fp32].
    #[arg(long, value_enum, default_value = "auto")]
    pub precision: PrecisionChoice,
    /// Wall-clock budget of this invocation in minutes: stop after the epoch past which another
    /// epoch (as long as the last one) would overrun it, checkpoint written (`--resume`
    /// continues). Command line only: a run config's stage I is defined by its epochs.
    #[arg(long)]
    #[serde(skip)]
    pub max_minutes: Option<f64>,
}

/// `--precision`: the arithmetic of stage I's training passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrecisionChoice {
    /// bf16 on a CPU with bfloat16 matrix units (Intel AMX), else fp32 (GPUs: ask for bf16).
    Auto,
    /// f32 throughout.
    Fp32,
    /// bfloat16 mixed precision (autocast-style; weights, optimiser and loss in f32).
    Bf16,
}

impl PrecisionChoice {
    pub fn resolve(self, device: tch::Device) -> Precision {
        match self {
            PrecisionChoice::Fp32 => Precision::Fp32,
            PrecisionChoice::Bf16 => Precision::Bf16,
            PrecisionChoice::Auto if device == tch::Device::Cpu && crate::device::cpu_has_bf16_matrix_units() => Precision::Bf16,
            PrecisionChoice::Auto => Precision::Fp32,
        }
    }
}

impl Default for PretrainSettings {
    fn default() -> Self {
        PretrainSettings {
            arch: Depth::Resnet18,
            width: 1.0,
            stem: StemChoice::Auto,
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            lr_schedule: LrSchedule::Constant,
            weight_decay: 1e-6,
            temperature: 0.5,
            crop_min_scale: 0.08,
            image_size: None,
            loader_threads: 1,
            knn_every: 1,
            seed: 0,
            threads: None,
            precision: PrecisionChoice::Auto,
            max_minutes: None,
        }
    }
}

/// A float setting as it will be used: in f32 tensors. It must be finite and in `lo..=hi`, and
/// survive the conversion to f32 (1e300 passes an f64 finite check, then overflows f32; 1e-50
/// becomes 0). Checked before any work starts.
pub fn check_f32(name: &'static str, value: f64, lo: f64, hi: f64, expected: &'static str) -> crate::Result<()> {
    let as_f32 = value as f32;
    let survives = as_f32.is_finite() && (value == 0.0 || as_f32 != 0.0);
    if !(value.is_finite() && survives && value >= lo && value <= hi) {
        // 1e300 as "1e300", not as 301 digits.
        let text = if value.is_finite() && value != 0.0 && (value.abs() >= 1e6 || value.abs() < 1e-4) { format!("{value:e}") } else { value.to_string() };
        return Err(Error::invalid(name, text, expected));
    }
    Ok(())
}

impl PretrainSettings {
    /// Sets libtorch's CPU thread count for stage I and feature extraction: `threads`, or
    /// `default` when unset (process-wide, so commands call it once, visibly).
    pub fn apply_threads(&self, default: i32) -> Result<()> {
        let threads = self.threads.unwrap_or(default);
        if threads < 1 {
            return Err(Error::invalid("threads", threads, "at least 1").into());
        }
        tch::set_num_threads(threads);
        Ok(())
    }

    /// Every number checked up front (before a `--force` run deletes anything, before reading data).
    pub fn check(&self) -> crate::Result<()> {
        check_f32("pretrain.lr", self.lr, 1e-12, 10.0, "a learning rate in [1e-12, 10]")?;
        check_f32("pretrain.weight_decay", self.weight_decay, 0.0, 100.0, "a weight decay in [0, 100]")?;
        check_f32("pretrain.temperature", self.temperature, 1e-3, 1e3, "a temperature in [0.001, 1000]")?;
        // Below 0.1 the first stage has 4-5 channels, which aborts inside libtorch's CPU training
        // (heap corruption, measured at widths 0.05 and 0.0625): refused instead.
        check_f32("pretrain.width", self.width, 0.1, 4.0, "a multiplier in [0.1, 4]")?;
        check_f32("pretrain.crop_min_scale", self.crop_min_scale, 1e-6, 1.0, "an area fraction in (0, 1]")?;
        if self.batch_size < 2 {
            return Err(Error::invalid("pretrain.batch_size", self.batch_size, "at least 2"));
        }
        if self.epochs == 0 || self.epochs > 1_000_000 {
            return Err(Error::invalid("pretrain.epochs", self.epochs, "between 1 and 1000000"));
        }
        if let Some(size) = self.image_size.filter(|s| !(8..=4096).contains(s)) {
            return Err(Error::invalid("pretrain.image_size", size, "between 8 and 4096"));
        }
        if let Some(t) = self.threads.filter(|&t| !(1..=1024).contains(&t)) {
            return Err(Error::invalid("pretrain.threads", t, "between 1 and 1024"));
        }
        if !(1..=256).contains(&self.loader_threads) {
            return Err(Error::invalid("pretrain.loader_threads", self.loader_threads, "between 1 and 256"));
        }
        Ok(())
    }

    /// The backbone and SimCLR parameters for images of this shape on this device, checked.
    pub fn backbone(&self, set: &ImageSet, device: tch::Device) -> Result<(ResNetConfig, SimclrParams)> {
        self.check()?;
        if !(self.width > 0.0 && self.width <= 4.0) {
            return Err(Error::invalid("width", self.width, "a multiplier in (0, 4]").into());
        }
        if !(self.crop_min_scale > 0.0 && self.crop_min_scale <= 1.0) {
            return Err(Error::invalid("crop_min_scale", self.crop_min_scale, "an area fraction in (0, 1]").into());
        }
        if let Some(t) = self.threads.filter(|&t| t < 1) {
            return Err(Error::invalid("threads", t, "at least 1").into());
        }
        let image_size = self.image_size.unwrap_or(set.height.max(set.width));
        let stem = match self.stem {
            StemChoice::Cifar => Stem::Cifar,
            StemChoice::Imagenet => Stem::Imagenet,
            StemChoice::Auto if image_size <= 64 => Stem::Cifar,
            StemChoice::Auto => Stem::Imagenet,
        };
        let config = ResNetConfig { depth: self.arch, stem, width: self.width, in_channels: set.channels as i64 };
        let params = SimclrParams {
            batch_size: self.batch_size,
            epochs: self.epochs,
            learning_rate: self.lr,
            lr_schedule: self.lr_schedule,
            weight_decay: self.weight_decay,
            temperature: self.temperature,
            image_size,
            loader_threads: self.loader_threads.max(1),
            precision: self.precision.resolve(device),
            augment: AugmentParams { crop_scale: (self.crop_min_scale, 1.0), ..AugmentParams::default() },
            ..SimclrParams::default()
        };
        params.check(set.count)?;
        Ok((config, params))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The values of the paper's text.
    Paper,
    /// The values of the review-time code (SGD, unrolled Sinkhorn gradient, pool of 40K prior samples, ...).
    ReviewCode,
}

/// The class names and the label prior built from them: `[classes]` in a run config.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassArgs {
    /// Class names in label order, comma-separated ("cat,dog,ankle boot").
    #[arg(long, value_delimiter = ',', conflicts_with = "classes_file")]
    #[serde(rename = "names")]
    pub classes: Vec<String>,
    /// A file with one class name per line, in label order.
    #[arg(long)]
    #[serde(rename = "file")]
    pub classes_file: Option<PathBuf>,
    /// The classes are ordered (grades, age groups): ranks follow |i - j|, no word vectors.
    #[arg(long)]
    pub ordinal: bool,
    /// How class names become vectors: glove (static word vectors, averaged over a name's
    /// words), minilm or mpnet (the sentence encoders all-MiniLM-L6-v2 and all-mpnet-base-v2 over
    /// prompt templates) or vectors
    /// (one vector per class from `--class-vectors`).
    #[arg(long, value_enum, default_value = "glove")]
    pub encoder: EncoderKind,
    /// Prompt templates for `minilm` and `mpnet`, each with one `{}` for the class name (repeatable; in a
    /// config a list, `[]` for the names alone) [default: 18 CLIP CIFAR templates].
    #[arg(long = "template")]
    pub templates: Option<Vec<String>>,
    /// Word vectors for `glove`: a GloVe/word2vec text file, or the folder of the kumo GloVe
    /// package [default: GloVe 6B 50d installed by scripts/setup.sh].
    #[arg(long)]
    pub word_vectors: Option<PathBuf>,
    /// Vectors for `--encoder vectors`: a text file with one line of numbers per class, in
    /// class order.
    #[arg(long)]
    pub class_vectors: Option<PathBuf>,
    /// Target values along the rank order.
    #[arg(long, value_enum)]
    pub targets: Option<TargetScheme>,
    /// Floor on the weights of eq. 2 [paper: 0, review code: 0.01].
    #[arg(long)]
    pub weight_floor: Option<f64>,
    /// How many most dissimilar positions each prior sample permutes [3].
    #[arg(long)]
    pub shuffle_tail: Option<usize>,
    /// Class proportions alpha, comma-separated, in class order [uniform].
    #[arg(long, value_delimiter = ',')]
    pub class_proportions: Option<Vec<f64>>,
    /// Paper or review-code defaults for every value not given explicitly.
    #[arg(long, value_enum, default_value = "paper")]
    pub preset: Preset,
    /// Naming by a person (run configs; `run --cluster-names FILE`): one class name per cluster
    /// of `cluster_names_seed`, in cluster order, as seen on the sheets of `zerolabel clusters`.
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_names: Option<Vec<String>>,
    /// The seed whose clusters `cluster_names` names [the run's selected seed].
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_names_seed: Option<u64>,
}

impl Default for ClassArgs {
    fn default() -> Self {
        ClassArgs {
            classes: Vec::new(),
            classes_file: None,
            ordinal: false,
            encoder: EncoderKind::Glove,
            templates: None,
            word_vectors: None,
            class_vectors: None,
            targets: None,
            weight_floor: None,
            shuffle_tail: None,
            class_proportions: None,
            preset: Preset::Paper,
            cluster_names: None,
            cluster_names_seed: None,
        }
    }
}

/// Stages II-III (and the naming step): `[stages]` in a run config.
#[derive(Args, Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageArgs {
    /// Number of seeds; results are reported as mean ± std.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// First seed; seeds are seed, seed+1, ...
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// (In a run config, the top-level `device` applies to every stage.)
    #[arg(long, value_enum, default_value = "auto")]
    #[serde(skip)]
    pub device: DeviceChoice,
    /// CPU threads for libtorch. Stages II-III work on small matrices, where more threads only
    /// add synchronisation (and OpenMP threads spin when the cores are shared), so 1 is fastest.
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Stage II: Adam steps [5000].
    #[arg(long)]
    pub cluster_steps: Option<usize>,
    /// Stage II: features per step [1000].
    #[arg(long)]
    pub cluster_batch_size: Option<usize>,
    /// Stage II: learning rate [paper 0.1, review code 0.01].
    #[arg(long)]
    pub cluster_lr: Option<f64>,
    /// Stage II: how training samples get their cluster [default and review code: nearest; the paper: plan].
    #[arg(long, value_enum)]
    pub assign: Option<AssignmentRule>,
    /// Stage II: the unit of the transport cost [spread: half the features' mean pairwise squared
    /// distance, so that epsilon means the same whatever their spread; none: the paper's literal
    /// squared distances].
    #[arg(long, value_enum)]
    pub cluster_cost_scale: Option<CostScale>,
    /// Stage III loss [cgsk].
    #[arg(long, value_enum)]
    pub loss: Option<MatchingLoss>,
    /// Stage III classifier initialisation [centroids].
    #[arg(long, value_enum)]
    pub init: Option<ClassifierInit>,
    /// Stage III: scale of the centroids at initialisation [paper 1, review code 0.1].
    #[arg(long)]
    pub init_scale: Option<f64>,
    /// Stage III: batch size B [500].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Stage III: training steps [10000].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Stage III: learning rate [1e-5].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Stage III optimiser [paper: adam, review code: sgd].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Gradient-norm clipping [100].
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Sinkhorn epsilon, both stages [0.01].
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// Sinkhorn tolerance on the summed change of the duals, both stages [0.1].
    #[arg(long)]
    pub sinkhorn_tol: Option<f64>,
    /// Sinkhorn iteration cap in stage III [700] (stage II uses 1000).
    #[arg(long)]
    pub sinkhorn_iters: Option<usize>,
    /// How the plan enters the gradient [paper default here: constant; review code: unrolled].
    #[arg(long, value_enum)]
    pub plan_gradient: Option<PlanGradient>,
    /// Model selection window in steps [paper: 100, review code: 1].
    #[arg(long)]
    pub selection_window: Option<usize>,
    /// Review code: size of the prior-sample pool drawn once [none: fresh samples every step].
    #[arg(long)]
    pub prior_pool: Option<usize>,
    /// Stage II method: sinkhorn (the paper's OT clustering), kmeans (k-means++, 10 restarts)
    /// or scan (SCAN heads on the frozen features, beyond the paper).
    #[arg(long, value_enum, default_value = "sinkhorn")]
    pub clustering: ClusteringKind,
    /// SCAN: mined nearest neighbours per sample [20].
    #[arg(long)]
    pub scan_neighbours: Option<usize>,
    /// SCAN: heads trained together, the lowest-loss one kept [10].
    #[arg(long)]
    pub scan_heads: Option<usize>,
    /// SCAN: head architecture [linear].
    #[arg(long, value_enum)]
    pub scan_head: Option<ScanHeadKind>,
    /// SCAN: the heads' loss, scan (neighbour consistency + entropy) or temi (TEMI's weighted
    /// PMI with an EMA teacher) [scan].
    #[arg(long, value_enum)]
    pub scan_objective: Option<ScanObjective>,
    /// SCAN: epochs of the SCAN step [100].
    #[arg(long)]
    pub scan_epochs: Option<usize>,
    /// SCAN: weight of the entropy of the mean prediction [5].
    #[arg(long)]
    pub scan_entropy_weight: Option<f64>,
    /// SCAN: fine-tune the kept head on its confident predictions (threshold 0.99) [false].
    #[arg(long)]
    pub scan_self_label: Option<bool>,
    /// How clusters get their names, as a chain of methods, comma-separated: geometry (the
    /// default, the best measured: docs/naming-study.md), stage3 (the paper's, always trained
    /// beside another chain), or geometry,stage3 (stage III from the named clusters).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "geometry")]
    pub naming: Vec<NamingKind>,
    /// Also train the paper's stage III where the naming chain is another, so that the paper's
    /// method is always reported beside it [true].
    #[arg(long = "no-paper-reference", action = clap::ArgAction::SetFalse)]
    pub paper_reference: bool,
    /// Where the names of Sinkhorn clusters are not trusted, or the clusters come out of very
    /// unequal sizes (the sign of unbalanced classes), cluster again with k-means and keep its
    /// clusters if their names are trusted [true].
    #[arg(long = "no-kmeans-fallback", action = clap::ArgAction::SetFalse)]
    pub kmeans_fallback: bool,
    /// With several seeds, vote the seeds' geometry names (clusters aligned by their centres);
    /// with the geometry chain the voted names make the classifier `predict` uses [true].
    #[arg(long = "no-naming-consensus", action = clap::ArgAction::SetFalse)]
    pub naming_consensus: bool,
    /// Weight of the cluster-size term in the geometry naming's objective [0].
    #[arg(long, default_value_t = 0.0)]
    pub naming_size_weight: f64,
    /// How the geometry naming turns cluster centres and class vectors into the similarities it
    /// matches: centred-cosine (invariant to rotation, scale and a common offset), cosine, rank,
    /// centred-rank, blind-match (z-scored distances of normalised vectors), centred-blind-match,
    /// euclidean. Ordered classes always use euclidean.
    #[arg(long, value_enum, default_value = "centred-cosine", alias = "naming-similarity")]
    #[serde(alias = "naming_similarity")]
    pub naming_kernel: NamingKernel,
    /// Which cluster centres the geometry naming compares: member-means (the mean of each
    /// cluster's members) or learned (the clustering's own centres, where it has them).
    #[arg(long, value_enum, default_value = "member-means")]
    pub naming_centres: NamingCentres,
    /// The geometry's names are trusted when the posterior probability of the chosen names
    /// averages at least this under every kernel of naming_trust_kernels [0.8, the threshold
    /// measured in docs/naming-study.md].
    #[arg(long, default_value_t = 0.8)]
    pub naming_trust_threshold: f64,
    /// Seconds the certified naming search may take for more than 10 classes; when it stops
    /// there, the naming is the best it found, without the proof that none is better [15;
    /// docs/benchmarks.md: most real 20-class namings are proven optimal within 15 s].
    #[arg(long, default_value_t = 15.0)]
    pub naming_time_limit: f64,
    /// The kernels whose Gibbs posteriors must each support the geometry's names before they are
    /// trusted (the naming kernel always counts), comma-separated [centred-cosine,centred-rank,
    /// centred-blind-match,euclidean: every invariant kernel; measured in docs/naming-study.md].
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = crate::naming::geometry::invariant_kernels())]
    #[serde(default = "crate::naming::geometry::invariant_kernels")]
    pub naming_trust_kernels: Vec<NamingKernel>,
    /// Replaced by `naming = ["geometry", "stage3"]` (`--naming geometry,stage3`).
    #[arg(long, hide = true)]
    #[serde(skip_serializing)]
    pub naming_init: bool,
    /// Replaced by `naming = ["geometry"]` (`--naming geometry`).
    #[arg(long, hide = true)]
    #[serde(skip_serializing)]
    pub naming_only: bool,
}

impl Default for StageArgs {
    fn default() -> Self {
        StageArgs {
            seeds: 1,
            seed: 0,
            device: DeviceChoice::Auto,
            threads: 1,
            cluster_steps: None,
            cluster_batch_size: None,
            cluster_lr: None,
            assign: None,
            cluster_cost_scale: None,
            loss: None,
            init: None,
            init_scale: None,
            batch_size: None,
            steps: None,
            lr: None,
            optimizer: None,
            grad_clip: None,
            epsilon: None,
            sinkhorn_tol: None,
            sinkhorn_iters: None,
            plan_gradient: None,
            selection_window: None,
            prior_pool: None,
            clustering: ClusteringKind::Sinkhorn,
            scan_neighbours: None,
            scan_heads: None,
            scan_head: None,
            scan_objective: None,
            scan_epochs: None,
            scan_entropy_weight: None,
            scan_self_label: None,
            naming: vec![NamingKind::Geometry],
            paper_reference: true,
            kmeans_fallback: true,
            naming_consensus: true,
            naming_size_weight: 0.0,
            naming_kernel: NamingKernel::CentredCosine,
            naming_centres: NamingCentres::MemberMeans,
            naming_trust_threshold: 0.8,
            naming_time_limit: 15.0,
            naming_trust_kernels: crate::naming::geometry::invariant_kernels(),
            naming_init: false,
            naming_only: false,
        }
    }
}

impl StageArgs {
    /// Every number of stages II-III checked up front, in the precision it is used in (f32).
    pub fn check_numbers(&self) -> crate::Result<()> {
        let optional = [
            ("stages.cluster_lr", self.cluster_lr, 1e-12, 1e3, "a learning rate in [1e-12, 1000]"),
            ("stages.lr", self.lr, 1e-12, 1e3, "a learning rate in [1e-12, 1000]"),
            ("stages.init_scale", self.init_scale, 1e-12, 1e6, "a scale in [1e-12, 1e6]"),
            ("stages.grad_clip", self.grad_clip, 1e-12, 1e12, "a norm in [1e-12, 1e12]"),
            ("stages.epsilon", self.epsilon, 1e-6, 1e6, "a Sinkhorn epsilon in [1e-6, 1e6]"),
            ("stages.sinkhorn_tol", self.sinkhorn_tol, 1e-12, 1e12, "a tolerance in [1e-12, 1e12]"),
        ];
        for (name, value, lo, hi, expected) in optional {
            if let Some(v) = value {
                check_f32(name, v, lo, hi, expected)?;
            }
        }
        check_f32("stages.naming_size_weight", self.naming_size_weight, 0.0, 1e6, "a weight in [0, 1e6]")?;
        let counts = [
            ("stages.cluster_steps", self.cluster_steps, 1),
            ("stages.cluster_batch_size", self.cluster_batch_size, 2),
            ("stages.steps", self.steps, 1),
            ("stages.batch_size", self.batch_size, 2),
            ("stages.sinkhorn_iters", self.sinkhorn_iters, 1),
            ("stages.selection_window", self.selection_window, 1),
            ("stages.prior_pool", self.prior_pool, 1),
        ];
        for (name, value, least) in counts {
            if let Some(v) = value.filter(|&v| v < least || v > 100_000_000) {
                return Err(Error::invalid(name, v, if least == 1 { "between 1 and 1e8" } else { "between 2 and 1e8" }));
            }
        }
        if self.seeds == 0 || self.seeds > 100_000 {
            return Err(Error::invalid("stages.seeds", self.seeds, "between 1 and 100000"));
        }
        if self.seed.checked_add(self.seeds as u64).is_none() {
            return Err(Error::invalid("stages.seed", self.seed, "a first seed that leaves room for the seed count"));
        }
        if !(1..=1024).contains(&self.threads) {
            return Err(Error::invalid("stages.threads", self.threads, "between 1 and 1024"));
        }
        check_f32("stages.naming_trust_threshold", self.naming_trust_threshold, 0.0, 1.0, "a probability in [0, 1]")?;
        check_f32("stages.naming_time_limit", self.naming_time_limit, 0.001, 86_400.0, "seconds between 0.001 and 86400")?;
        Ok(())
    }

    /// The seeds this run covers: seed, seed+1, ...
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds as u64).map(|k| self.seed + k).collect()
    }
}

/// The name a setting has in configs and flags (e.g. `resnet18`, `minilm`).
pub fn value_name(v: &impl Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl ClassArgs {
    /// A setting of one class-name encoder given with another, or with ordered classes (which
    /// use none), is refused rather than silently ignored.
    pub fn check_encoder_settings(&self) -> Result<()> {
        let encoder = value_name(&self.encoder);
        let sentence = matches!(self.encoder, EncoderKind::Minilm | EncoderKind::Mpnet);
        let settings = [
            ("templates", self.templates.is_some(), sentence, "encoder = \"minilm\" or \"mpnet\""),
            ("word_vectors", self.word_vectors.is_some(), self.encoder == EncoderKind::Glove, "encoder = \"glove\""),
            ("class_vectors", self.class_vectors.is_some(), self.encoder == EncoderKind::Vectors, "encoder = \"vectors\""),
        ];
        if self.ordinal {
            let given = settings.iter().find(|(_, given, _, _)| *given).map(|(name, ..)| *name);
            let given = given.or((self.encoder != EncoderKind::Glove).then_some("encoder"));
            if let Some(name) = given {
                bail!("classes.{name} has no effect with ordinal = true: ordered classes are ranked by their order, not by their names");
            }
        }
        for (name, given, belongs, owner) in settings {
            if given && !belongs {
                bail!("classes.{name} is a setting of {owner}, but encoder is \"{encoder}\"");
            }
        }
        Ok(())
    }

    /// The prior's numbers checked up front, in f32.
    pub fn check_numbers(&self) -> crate::Result<()> {
        if let Some(f) = self.weight_floor {
            check_f32("classes.weight_floor", f, 0.0, 0.999_999, "a value in [0, 1)")?;
        }
        for &a in self.class_proportions.iter().flatten() {
            check_f32("classes.class_proportions", a, 0.0, 1e12, "non-negative finite numbers")?;
        }
        if let Some(t) = self.shuffle_tail.filter(|&t| t > 100_000) {
            return Err(Error::invalid("classes.shuffle_tail", t, "at most 100000"));
        }
        Ok(())
    }
}

/// The class names, from `--classes` or a file with one name per line.
pub fn class_names(args: &ClassArgs) -> Result<Vec<String>> {
    let names: Vec<String> = match &args.classes_file {
        Some(path) => crate::data::checked::read_text(path)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => {
            // An empty entry ("cat,,dog", names = ["cat", ""]) is a typo that may hide a class.
            if let Some(k) = args.classes.iter().position(|s| s.trim().is_empty()).filter(|_| args.classes.len() > 1) {
                bail!("class name {} of {} is empty (in {:?}); give every class a name", k + 1, args.classes.len(), args.classes.join(","));
            }
            args.classes.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
        }
    };
    if names.is_empty() {
        bail!("no class names: pass --classes a,b,c or --classes-file FILE (in a run config: [classes] names = [...] or file = \"...\")");
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.to_lowercase())) {
        bail!("class name '{dup}' is given twice");
    }
    Ok(names)
}

/// Builds the label prior from the class settings.
pub fn build_prior(args: &ClassArgs) -> Result<LabelPrior> {
    args.check_numbers()?;
    args.check_encoder_settings()?;
    let names = class_names(args)?;
    let mut params = match args.preset {
        Preset::Paper => PriorParams::default(),
        Preset::ReviewCode => PriorParams { targets: TargetScheme::ReviewCode, weight_floor: 0.01, ..Default::default() },
    };
    if let Some(t) = args.targets {
        params.targets = t;
    }
    if let Some(f) = args.weight_floor {
        params.weight_floor = f;
    }
    if let Some(s) = args.shuffle_tail {
        params.shuffle_tail = s;
    }
    params.class_proportions = args.class_proportions.clone();
    let prior = if args.ordinal {
        ordinal::ordinal_prior(&names, params)?
    } else {
        let encoder = build_encoder(args.encoder, args.word_vectors.as_deref(), args.class_vectors.as_deref(), args.templates.as_deref())?;
        nominal::nominal_prior(&names, encoder.as_ref(), params).with_context(|| format!("building the label prior from {}", encoder.describe()))?
    };
    Ok(prior)
}

/// The checked settings of stages II-III: what every command that clusters and names uses.
#[derive(Clone, Debug, Serialize)]
pub struct StageSettings {
    /// libtorch CPU threads for stages II-III (checked; results do not depend on it).
    #[serde(skip)]
    pub threads: i32,
    pub clustering: ClusteringMethod,
    pub naming: NamingSettings,
    /// Train the paper's stage III beside a naming chain that is not the paper's.
    pub paper_reference: bool,
    /// Try k-means where the names of Sinkhorn clusters are not trusted or the clusters come
    /// out of very unequal sizes.
    pub kmeans_fallback: bool,
    /// Vote the seeds' geometry names after the seeds (a step after stages II-III, so not part
    /// of their cache key).
    #[serde(skip)]
    pub naming_consensus: bool,
}

impl StageSettings {
    /// The settings of the paper's stage III on these clusters (for the reference and Figure 4B).
    pub fn paper_naming(&self) -> NamingSettings {
        NamingSettings { chain: vec![NamingKind::Stage3], ..self.naming.clone() }
    }

    /// Sets libtorch's CPU thread count for stages II-III (process-wide, so the command does it,
    /// once, where everyone can see it).
    pub fn apply_threads(&self) {
        tch::set_num_threads(self.threads);
    }

    /// The k-means clustering to fall back on, where it is wanted and stage II is Sinkhorn's.
    pub fn fallback_clustering(&self) -> Option<ClusteringMethod> {
        match (&self.clustering, self.kmeans_fallback) {
            (ClusteringMethod::Sinkhorn(p), true) => Some(ClusteringMethod::Kmeans(KMeansParams::new(p.n_clusters))),
            _ => None,
        }
    }

    /// Whether the paper's stage III is trained beside the chain.
    pub fn trains_paper_reference(&self) -> bool {
        self.paper_reference && !self.naming.is_paper()
    }

    /// Whether some stage III is trained: in the chain, or as the paper's reference beside it
    /// (what Figure 4B and the matching-loss plot show).
    pub fn trains_stage3(&self) -> bool {
        self.naming.chain.contains(&NamingKind::Stage3) || self.trains_paper_reference()
    }
}

impl StageArgs {
    /// Checks every value once, with the same rules for `run`, `match` and `ablate`: the preset
    /// first, then explicit values; an invalid value is an error naming it, never clamped.
    pub fn validate(&self, preset: Preset, n_classes: usize) -> Result<StageSettings> {
        if self.naming_only {
            bail!("stages.naming_only (--naming-only) was replaced: use naming = [\"geometry\"] (--naming geometry)");
        }
        if self.naming_init {
            bail!("stages.naming_init (--naming-init) was replaced: use naming = [\"geometry\", \"stage3\"] (--naming geometry,stage3)");
        }
        self.check_numbers()?;
        if self.seeds == 0 {
            return Err(Error::invalid("seeds", 0, "at least 1").into());
        }
        if self.threads < 1 {
            return Err(Error::invalid("threads", self.threads, "at least 1").into());
        }
        let (clustering, matching) = self.stage_params(preset, n_classes);
        let clustering = match self.clustering {
            ClusteringKind::Sinkhorn => ClusteringMethod::Sinkhorn(clustering),
            ClusteringKind::Kmeans => ClusteringMethod::Kmeans(KMeansParams::new(n_classes)),
            ClusteringKind::Scan => ClusteringMethod::Scan(self.scan_params(n_classes)),
        };
        if self.clustering != ClusteringKind::Scan {
            let given = [("scan_neighbours", self.scan_neighbours.is_some()), ("scan_heads", self.scan_heads.is_some()), ("scan_head", self.scan_head.is_some()), ("scan_objective", self.scan_objective.is_some()),
                ("scan_epochs", self.scan_epochs.is_some()), ("scan_entropy_weight", self.scan_entropy_weight.is_some()), ("scan_self_label", self.scan_self_label.is_some())];
            if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
                bail!("stages.{name} is a setting of clustering = \"scan\", but clustering is \"{}\"", value_name(&self.clustering));
            }
        }
        clustering.build()?;
        let geometry = GeometryParams {
            size_weight: self.naming_size_weight,
            kernel: self.naming_kernel,
            centres: self.naming_centres,
            trust_threshold: self.naming_trust_threshold,
            solver_seconds: self.naming_time_limit,
            trust_kernels: self.naming_trust_kernels.clone(),
            ..GeometryParams::default()
        };
        let naming = NamingSettings { chain: self.naming.clone(), geometry, stage3: matching };
        naming.check()?;
        Ok(StageSettings { threads: self.threads, clustering, naming, paper_reference: self.paper_reference, kmeans_fallback: self.kmeans_fallback, naming_consensus: self.naming_consensus })
    }

    /// SCAN's recipe (`ScanParams::default_for`), then the explicit `scan_*` values.
    fn scan_params(&self, n_classes: usize) -> ScanParams {
        let d = ScanParams::default_for(n_classes);
        ScanParams {
            neighbours: self.scan_neighbours.unwrap_or(d.neighbours),
            heads: self.scan_heads.unwrap_or(d.heads),
            head: self.scan_head.unwrap_or(d.head),
            objective: self.scan_objective.unwrap_or(d.objective),
            epochs: self.scan_epochs.unwrap_or(d.epochs),
            entropy_weight: self.scan_entropy_weight.unwrap_or(d.entropy_weight),
            self_label: self.scan_self_label.unwrap_or(d.self_label),
            ..d
        }
    }

    /// Stage II and III parameters: the preset's values, then the explicit ones.
    fn stage_params(&self, preset: Preset, n_classes: usize) -> (SinkhornClusteringParams, MatchingParams) {
        let mut clustering = SinkhornClusteringParams::default_for(n_classes);
        let mut matching = MatchingParams::default();
        if preset == Preset::ReviewCode {
            clustering.learning_rate = 0.01;
            clustering.assignment = AssignmentRule::Nearest;
            clustering.cost_scale = CostScale::None;
            matching.init_scale = 0.1;
            matching.optimizer = OptimizerKind::Sgd;
            matching.plan_gradient = PlanGradient::Unrolled;
            matching.selection_window = 1;
            matching.prior_pool = Some(40_000);
        }
        macro_rules! set {
            ($target:expr, $value:expr) => {
                if let Some(v) = $value {
                    $target = v;
                }
            };
        }
        set!(clustering.steps, self.cluster_steps);
        set!(clustering.batch_size, self.cluster_batch_size);
        set!(clustering.learning_rate, self.cluster_lr);
        set!(clustering.assignment, self.assign);
        set!(clustering.cost_scale, self.cluster_cost_scale);
        set!(clustering.sinkhorn.epsilon, self.epsilon);
        set!(clustering.sinkhorn.tolerance, self.sinkhorn_tol);
        set!(matching.loss, self.loss);
        set!(matching.init, self.init);
        set!(matching.init_scale, self.init_scale);
        set!(matching.batch_size, self.batch_size);
        set!(matching.steps, self.steps);
        set!(matching.learning_rate, self.lr);
        set!(matching.optimizer, self.optimizer);
        set!(matching.grad_clip, self.grad_clip);
        set!(matching.sinkhorn.epsilon, self.epsilon);
        set!(matching.sinkhorn.tolerance, self.sinkhorn_tol);
        set!(matching.sinkhorn.max_iters, self.sinkhorn_iters);
        set!(matching.plan_gradient, self.plan_gradient);
        set!(matching.selection_window, self.selection_window);
        if self.prior_pool.is_some() {
            matching.prior_pool = self.prior_pool;
        }
        if matching.steps < matching.log_every {
            matching.log_every = matching.steps.max(1);
        }
        (clustering, matching)
    }
}

/// Report options: `[report]` in a run config.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Train one extra L_sk classifier (first seed) for Figure 4B, the predicted-class
    /// distribution of a few clusters under L_sk next to L_cgsk.
    pub sk_comparison: bool,
    /// How many clusters Figure 4B shows.
    pub figure_clusters: usize,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings { sk_comparison: true, figure_clusters: 4 }
    }
}

fn default_device() -> DeviceChoice {
    DeviceChoice::Auto
}

/// A pretrained encoder instead of SimCLR: `[backbone]` in a run config (stage I is skipped;
/// features are extracted with the model, see `zerolabel features --torchscript`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackboneSettings {
    /// A TorchScript image encoder (torch.jit.save) returning (N, D) features.
    pub torchscript: Option<PathBuf>,
    /// Input side: the centred square of each image resized to it.
    pub image_size: usize,
    /// imagenet, none, or "MEAN,STD" (comma lists per channel).
    pub normalize: InputNormalization,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Average (N, C, H, W) maps over space instead of refusing them.
    pub global_pool: bool,
}

impl Default for BackboneSettings {
    fn default() -> Self {
        BackboneSettings { torchscript: None, image_size: 224, normalize: InputNormalization::Imagenet, batch_size: 64, global_pool: false }
    }
}

impl BackboneSettings {
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing { image_size: self.image_size, normalize: self.normalize.clone(), batch_size: self.batch_size, global_pool: self.global_pool }
    }
}

/// Feature files computed elsewhere: `[features]` in a run config (stage I and feature
/// extraction are skipped; the layout is `zerolabel match`'s: safetensors or .npy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedFeatures {
    pub train: PathBuf,
    pub test: PathBuf,
    /// Labels of the test features as .npy, when not inside the test file (evaluation only).
    #[serde(default)]
    pub test_labels: Option<PathBuf>,
}

/// A run configuration (`configs/<name>.toml`): every stage from images to report.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Short name; the default output folder is runs/<name>.
    pub name: String,
    /// One line on what this config is for.
    #[serde(default)]
    pub description: String,
    /// Compute device for every stage.
    #[serde(default = "default_device")]
    pub device: DeviceChoice,
    /// The images (not needed when `[features]` imports feature files).
    #[serde(default)]
    pub data: Option<DatasetArgs>,
    pub classes: ClassArgs,
    /// A pretrained TorchScript backbone instead of stage I.
    #[serde(default)]
    pub backbone: BackboneSettings,
    /// Feature files computed elsewhere instead of stage I and feature extraction.
    #[serde(default)]
    pub features: Option<ImportedFeatures>,
    #[serde(default)]
    pub pretrain: PretrainSettings,
    #[serde(default)]
    pub stages: StageArgs,
    #[serde(default)]
    pub report: ReportSettings,
}

impl RunConfig {
    /// Reads a config file, resolves its relative paths against the file's folder, then applies
    /// `TABLE.KEY=VALUE` overrides (values in TOML syntax; bare words are taken as strings;
    /// relative paths in overrides are relative to the current folder).
    pub fn load(path: &Path, overrides: &[String]) -> Result<RunConfig> {
        let text = crate::data::checked::read_text(path)?;
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::format(path, format!("not valid TOML: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let paths = [("data", "path"), ("classes", "file"), ("classes", "word_vectors"), ("classes", "class_vectors"), ("backbone", "torchscript"),
            ("features", "train"), ("features", "test"), ("features", "test_labels")];
        for (section, key) in paths {
            if let Some(toml::Value::String(p)) = table.get_mut(section).and_then(|s| s.get_mut(key)) {
                if Path::new(p.as_str()).is_relative() {
                    *p = base.join(p.as_str()).to_string_lossy().into_owned();
                }
            }
        }
        for item in overrides {
            apply_override(&mut table, item)?;
        }
        let config: RunConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| Error::format(path, format!("{} (with overrides {overrides:?})", e.message())))?;
        config.check_sources().map_err(|e| Error::format(path, e))?;
        config.check()?;
        Ok(config)
    }

    /// Exactly one source of features: images (`[data]`, through SimCLR or `[backbone]`), or
    /// `[features]`.
    fn check_sources(&self) -> std::result::Result<(), String> {
        match (&self.data, &self.features, &self.backbone.torchscript) {
            (_, Some(_), Some(_)) => Err("[features] imports feature files and [backbone] torchscript computes them: give one".into()),
            (Some(_), Some(_), None) => Err("[features] imports feature files, so [data] would be unused: remove one of them".into()),
            (None, None, _) => Err("no [data] table (the images) and no [features] table (feature files computed elsewhere)".into()),
            _ => Ok(()),
        }
    }

    /// The images, which every source but `[features]` needs.
    pub fn dataset(&self) -> crate::Result<&DatasetArgs> {
        self.data.as_ref().ok_or_else(|| Error::invalid("data", "missing", "a [data] table with the images"))
    }
    /// Parses a config's text (no relative-path resolution, no overrides) and checks it; the
    /// fuzz harness's entry point.
    pub fn parse(text: &str, path: &Path) -> Result<RunConfig> {
        let config: RunConfig = toml::from_str(text).map_err(|e: toml::de::Error| Error::format(path, format!("not a valid run config: {}", e.message())))?;
        config.check()?;
        Ok(config)
    }

    /// Everything that can be checked without reading data: the name (it becomes a folder) and
    /// every number of every stage.
    pub fn check(&self) -> crate::Result<()> {
        check_run_name(&self.name)?;
        self.pretrain.check()?;
        self.stages.check_numbers()?;
        self.classes.check_numbers()?;
        if let Some(data) = &self.data {
            if let Some(size) = data.folder_size.filter(|s| !(1..=crate::data::images::MAX_FOLDER_SIZE).contains(s)) {
                return Err(Error::invalid("data.folder_size", size, "between 1 and 65535 pixels"));
            }
            if data.limit == Some(0) {
                return Err(Error::invalid("data.limit", 0, "at least 1 image"));
            }
        }
        if self.report.figure_clusters > 1000 {
            return Err(Error::invalid("report.figure_clusters", self.report.figure_clusters, "at most 1000"));
        }
        Ok(())
    }
}

/// A run's name becomes the folder `runs/<name>`: it must be one plain folder name, so that it
/// cannot escape `runs/` (no `..`, no separators, not absolute, not hidden).
pub fn check_run_name(name: &str) -> crate::Result<()> {
    let plain = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0', ':'])
        && !name.chars().any(char::is_control)
        && Path::new(name).components().count() == 1;
    if !plain {
        return Err(Error::invalid("name", format!("{name:?}"), "a plain folder name (letters, digits, '-', '_'; no '/', '..' or leading '.')"));
    }
    Ok(())
}

/// Sets `TABLE.KEY` (or a top-level `KEY`) to a value parsed as TOML, or as a string when it is
/// not valid TOML (so `--set data.format=idx` works without quotes).
fn apply_override(table: &mut toml::Table, item: &str) -> Result<()> {
    let Some((key, raw)) = item.split_once('=') else {
        bail!("--set {item}: expected TABLE.KEY=VALUE, e.g. pretrain.epochs=4");
    };
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut cursor = table;
    for part in &parts[..parts.len() - 1] {
        let entry = cursor.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cursor = match entry {
            toml::Value::Table(t) => t,
            _ => bail!("--set {item}: '{part}' is a value, not a table"),
        };
    }
    cursor.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zl-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    const MINIMAL: &str = "name = \"t\"\n[data]\nformat = \"idx\"\npath = \"data\"\n[classes]\nfile = \"t.classes\"\n";

    #[test]
    fn an_encoder_setting_given_with_another_encoder_is_refused_by_name() {
        let with = |f: &dyn Fn(&mut ClassArgs)| {
            let mut args = ClassArgs::default();
            f(&mut args);
            args.check_encoder_settings().err().map(|e| e.to_string())
        };
        assert_eq!(with(&|a| a.word_vectors = Some("w.txt".into())), None);
        assert_eq!(with(&|a| (a.encoder, a.templates) = (EncoderKind::Mpnet, Some(vec![]))), None);
        assert_eq!(with(&|a| (a.encoder, a.class_vectors) = (EncoderKind::Vectors, Some("v.txt".into()))), None);
        assert_eq!(with(&|a| a.templates = Some(vec!["a {}".into()])).unwrap(), "classes.templates is a setting of encoder = \"minilm\" or \"mpnet\", but encoder is \"glove\"");
        assert_eq!(with(&|a| (a.encoder, a.word_vectors) = (EncoderKind::Minilm, Some("w.txt".into()))).unwrap(), "classes.word_vectors is a setting of encoder = \"glove\", but encoder is \"minilm\"");
        assert!(with(&|a| a.class_vectors = Some("v.txt".into())).unwrap().contains("classes.class_vectors is a setting of encoder = \"vectors\""));
        let ordinal = with(&|a| (a.ordinal, a.encoder) = (true, EncoderKind::Mpnet)).unwrap();
        assert!(ordinal.contains("classes.encoder has no effect with ordinal = true"), "{ordinal}");
        assert!(with(&|a| (a.ordinal, a.word_vectors) = (true, Some("w.txt".into()))).unwrap().contains("classes.word_vectors has no effect"));
        assert_eq!(with(&|a| a.ordinal = true), None);
    }

    #[test]
    fn relative_paths_follow_the_config_file_and_overrides_apply() {
        let path = write("ok", MINIMAL);
        let c = RunConfig::load(&path, &["pretrain.epochs=7".into(), "stages.naming=[\"geometry\", \"stage3\"]".into(), "data.format=cifar10".into()]).unwrap();
        let data = c.data.as_ref().unwrap();
        assert_eq!(data.data, path.parent().unwrap().join("data"));
        assert_eq!(c.classes.classes_file.as_deref(), Some(path.parent().unwrap().join("t.classes").as_path()));
        assert_eq!(c.pretrain.epochs, 7);
        assert_eq!(c.stages.naming, [NamingKind::Geometry, NamingKind::Stage3]);
        assert_eq!(data.format, DatasetFormat::Cifar10);
        assert_eq!(c.stages.seeds, 1);
        assert!(c.report.sk_comparison);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_that_name_them() {
        let path = write("bad", MINIMAL);
        let e = RunConfig::load(&path, &["pretrain.epoch=7".into()]).unwrap_err().to_string();
        assert!(e.contains("epoch") && e.contains("c.toml"), "{e}");
        let e = RunConfig::load(&path, &["pretrain.epochs=many".into()]).unwrap_err().to_string();
        assert!(e.contains("epochs") || e.contains("integer"), "{e}");
        let e = RunConfig::load(&path, &["epochs".into()]).unwrap_err().to_string();
        assert!(e.contains("TABLE.KEY=VALUE"), "{e}");
        let path = write("notoml", "name = ");
        let e = RunConfig::load(&path, &[]).unwrap_err().to_string();
        assert!(e.contains("not valid TOML"), "{e}");
    }

    /// The naming search's time limit reaches the geometry naming, and a limit that is not a
    /// positive number of seconds is refused by name before anything runs.
    #[test]
    fn the_naming_time_limit_is_checked_and_reaches_the_naming() {
        let path = write("time-limit", MINIMAL);
        let c = RunConfig::load(&path, &["stages.naming_time_limit=60".into()]).unwrap();
        let settings = c.stages.validate(Preset::Paper, 20).unwrap();
        assert_eq!(settings.naming.geometry.solver_seconds, 60.0);
        for bad in ["0", "-1", "nan", "1e9"] {
            let e = RunConfig::load(&path, &[format!("stages.naming_time_limit={bad}")]).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains("stages.naming_time_limit"), "{bad}: {e}");
        }
    }
}

#[cfg(test)]
mod shipped_configs {
    use super::*;

    /// Every config in configs/ parses, and its class names can be read.
    #[test]
    fn every_shipped_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let config = RunConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                let names = class_names(&config.classes).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert!(names.len() >= 2, "{}", path.display());
                assert!(config.pretrain.epochs >= 1 && config.stages.seeds >= 1);
                n += 1;
            }
        }
        assert!(n >= 7, "{n} configs");
    }
}
