//! Command-line interface: raw flags (clap) turned into checked parameters, then one function
//! per subcommand. Errors travel up to `main`, which prints them once.
use crate::backbone::pretrain::{self, KnnMonitor, PretrainOptions};
use crate::backbone::resnet::{Depth, ResNetConfig, Stem};
use crate::backbone::simclr::{self, SimclrModel, SimclrParams};
use crate::cluster::{AssignmentRule, ClusteringParams};
use crate::data::images::{read_dataset, DatasetFormat, ImageSet, Split};
use crate::data::features::{self, check_labels, l2_normalize};
use crate::device::{self, DeviceChoice};
use crate::error::Error;
use crate::eval;
use crate::experiment::{self, Inputs, PipelineParams, SeedMetrics, ABLATIONS};
use crate::io::{self, JsonLines};
use crate::naming::NamingParams;
use crate::matching::{ClassifierInit, MatchingLoss, MatchingParams, OptimizerKind, PlanGradient};
use crate::prior::sampler::PriorAtoms;
use crate::prior::word_vectors::WordVectorSource;
use crate::prior::{nominal, ordinal, LabelPrior, PriorParams, TargetScheme};
use crate::progress::status;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};
use tch::Tensor;

#[derive(Parser, Debug)]
#[command(name = "zerolabel", version, about = "Train an image classifier from unlabelled images and class names only")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// No progress bars or status lines (results are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the label prior: per class its nearest and farthest classes, and the t^ matrix.
    Prior(PriorArgs),
    /// Stages II-III on feature files: clustering, distribution matching, evaluation over seeds.
    Match(MatchArgs),
    /// The paper's ablations (A)-(E) on the same features and seeds, as a table.
    Ablate(AblateArgs),
    /// Features from raw pixels (PCA) of an MNIST-layout folder: a stand-in for stage I.
    PixelFeatures(PixelFeatureArgs),
    /// Stage I: SimCLR pretraining of a ResNet backbone on unlabelled images.
    Pretrain(PretrainArgs),
    /// Stage I output: L2-normalised backbone features of un-augmented train and test images.
    Features(FeaturesArgs),
    /// kNN accuracy (k = 200, cosine) of labelled test features against labelled train features.
    Knn(KnnArgs),
}

#[derive(Args, Debug)]
pub struct KnnArgs {
    /// Train features with labels (.safetensors).
    #[arg(long)]
    pub train: PathBuf,
    /// Test features with labels (.safetensors).
    #[arg(long)]
    pub test: PathBuf,
    #[arg(long, default_value_t = 200)]
    pub k: i64,
}

#[derive(Args, Debug)]
pub struct DatasetArgs {
    /// Dataset format.
    #[arg(long, value_enum)]
    pub format: DatasetFormat,
    /// Dataset folder (or the .npz file for MedMNIST).
    #[arg(long)]
    pub data: PathBuf,
    /// Use only the first N images of each split (quick runs).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Side of the square images a folder dataset is resized to on reading [64].
    #[arg(long)]
    pub folder_size: Option<usize>,
}

impl DatasetArgs {
    fn read(&self, split: Split) -> Result<ImageSet> {
        let set = read_dataset(&self.format, &self.data, split, self.folder_size)?;
        Ok(match self.limit {
            Some(n) => set.take(n),
            None => set,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StemChoice {
    /// CIFAR stem for images up to 64 pixels, ImageNet stem above.
    Auto,
    Cifar,
    Imagenet,
}

#[derive(Args, Debug)]
pub struct PretrainArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
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
    #[arg(long, default_value_t = 1e-6)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.5)]
    pub temperature: f64,
    /// Training resolution [the dataset's image size].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Threads computing augmentations beside training.
    #[arg(long, default_value_t = 1)]
    pub loader_threads: usize,
    /// kNN monitor every N epochs where the dataset has labels (0: never).
    #[arg(long, default_value_t = 1)]
    pub knn_every: usize,
    /// Continue from OUT/checkpoint.safetensors.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// libtorch CPU threads [all cores].
    #[arg(long)]
    pub threads: Option<i32>,
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// A checkpoint written by `pretrain` (e.g. RUN/best.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Output folder: train.safetensors and test.safetensors.
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The values of the paper's text.
    Paper,
    /// The values of the review-time code (SGD, unrolled Sinkhorn gradient, pool of 40K prior samples, ...).
    ReviewCode,
}

#[derive(Args, Debug)]
pub struct ClassArgs {
    /// Class names in label order, comma-separated ("cat,dog,ankle boot").
    #[arg(long, value_delimiter = ',', conflicts_with = "classes_file")]
    pub classes: Vec<String>,
    /// A file with one class name per line, in label order.
    #[arg(long)]
    pub classes_file: Option<PathBuf>,
    /// The classes are ordered (grades, age groups): ranks follow |i - j|, no word vectors.
    #[arg(long)]
    pub ordinal: bool,
    /// Word vectors: a GloVe/word2vec text file, or the folder of the kumo GloVe package
    /// [default: GloVe 6B 50d installed by scripts/setup.sh].
    #[arg(long)]
    pub word_vectors: Option<PathBuf>,
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
}

#[derive(Args, Debug)]
pub struct PriorArgs {
    #[command(flatten)]
    pub classes: ClassArgs,
}

#[derive(Args, Debug)]
pub struct FeatureArgs {
    /// Training features (.safetensors with tensor `features`, or .npy), N x D.
    #[arg(long)]
    pub train: PathBuf,
    /// Test features, same layout; with labels for evaluation.
    #[arg(long)]
    pub test: PathBuf,
    /// Labels of the test features as .npy (when not inside the test file).
    #[arg(long)]
    pub test_labels: Option<PathBuf>,
    /// Output folder.
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct StageArgs {
    /// Number of seeds; results are reported as mean ± std.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// First seed; seeds are seed, seed+1, ...
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// CPU threads for libtorch. Stages II-III work on small matrices, where more threads only
    /// add synchronisation (and OpenMP threads spin when the cores are shared), so 1 is fastest.
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Threads of the CPU Sinkhorn solver (1 or 2). 2 is ~1.6x faster on an idle 2-core
    /// machine, but its threads spin-wait, which hurts when the cores are shared.
    #[arg(long, default_value_t = 1)]
    pub sinkhorn_threads: usize,
    /// Stage II: Adam steps [5000].
    #[arg(long)]
    pub cluster_steps: Option<usize>,
    /// Stage II: features per step [1000].
    #[arg(long)]
    pub cluster_batch_size: Option<usize>,
    /// Stage II: learning rate [paper 0.1, review code 0.01].
    #[arg(long)]
    pub cluster_lr: Option<f64>,
    /// Stage II: how training samples get their cluster [paper: plan, review code: nearest].
    #[arg(long, value_enum)]
    pub assign: Option<AssignmentRule>,
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
    /// Beyond the paper: start stage III from the clusters named by geometry (centroid
    /// similarities matched to class-name similarities) instead of the arbitrary cluster order.
    #[arg(long)]
    pub naming_init: bool,
    /// Weight of the cluster-size term in the naming objective [0].
    #[arg(long, default_value_t = 0.0)]
    pub naming_size_weight: f64,
}

#[derive(Args, Debug)]
pub struct MatchArgs {
    #[command(flatten)]
    pub classes: ClassArgs,
    #[command(flatten)]
    pub features: FeatureArgs,
    #[command(flatten)]
    pub stages: StageArgs,
}

#[derive(Args, Debug)]
pub struct AblateArgs {
    #[command(flatten)]
    pub classes: ClassArgs,
    #[command(flatten)]
    pub features: FeatureArgs,
    #[command(flatten)]
    pub stages: StageArgs,
    /// Training features of a randomly initialised backbone, for ablation (A).
    #[arg(long, requires = "random_backbone_test")]
    pub random_backbone_train: Option<PathBuf>,
    /// Test features of a randomly initialised backbone, for ablation (A).
    #[arg(long, requires = "random_backbone_train")]
    pub random_backbone_test: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PixelFeatureArgs {
    /// Dataset format.
    #[arg(long, value_enum, default_value = "idx")]
    pub format: DatasetFormat,
    /// Dataset folder (or .npz file).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    /// Number of principal components (0: all pixels, centred).
    #[arg(long, default_value_t = 50)]
    pub pca: usize,
    /// Output folder: train.safetensors and test.safetensors.
    #[arg(long, short)]
    pub out: PathBuf,
}

pub fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Prior(args) => cmd_prior(args),
        Command::Match(args) => cmd_match(args, quiet),
        Command::Ablate(args) => cmd_ablate(args, quiet),
        Command::PixelFeatures(args) => cmd_pixel_features(args, quiet),
        Command::Pretrain(args) => cmd_pretrain(args, quiet),
        Command::Features(args) => cmd_features(args, quiet),
        Command::Knn(args) => cmd_knn(args),
    }
}

fn class_names(args: &ClassArgs) -> Result<Vec<String>> {
    let names: Vec<String> = match &args.classes_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::io(path, e))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => args.classes.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    };
    if names.is_empty() {
        bail!("no class names: pass --classes a,b,c or --classes-file FILE");
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.to_lowercase())) {
        bail!("class name '{dup}' is given twice");
    }
    Ok(names)
}

/// Builds the label prior from the class arguments.
pub fn build_prior(args: &ClassArgs) -> Result<LabelPrior> {
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
        let source = args.word_vectors.as_deref().map_or_else(WordVectorSource::default_glove, WordVectorSource::from_path);
        nominal::nominal_prior(&names, &source, params).with_context(|| format!("building the label prior from {}", source.describe()))?
    };
    Ok(prior)
}

fn cmd_prior(args: PriorArgs) -> Result<()> {
    let prior = build_prior(&args.classes)?;
    print!("{}", prior.describe());
    Ok(())
}

/// Turns the stage flags into checked parameters (preset first, then explicit flags).
pub fn pipeline_params(args: &StageArgs, preset: Preset, n_classes: usize) -> Result<PipelineParams> {
    let mut clustering = ClusteringParams::default_for(n_classes);
    let mut matching = MatchingParams::default();
    if preset == Preset::ReviewCode {
        clustering.learning_rate = 0.01;
        clustering.assignment = AssignmentRule::Nearest;
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
    set!(clustering.steps, args.cluster_steps);
    set!(clustering.batch_size, args.cluster_batch_size);
    set!(clustering.learning_rate, args.cluster_lr);
    set!(clustering.assignment, args.assign);
    set!(clustering.sinkhorn.epsilon, args.epsilon);
    set!(clustering.sinkhorn.tolerance, args.sinkhorn_tol);
    set!(matching.loss, args.loss);
    set!(matching.init, args.init);
    set!(matching.init_scale, args.init_scale);
    set!(matching.batch_size, args.batch_size);
    set!(matching.steps, args.steps);
    set!(matching.learning_rate, args.lr);
    set!(matching.optimizer, args.optimizer);
    set!(matching.grad_clip, args.grad_clip);
    set!(matching.sinkhorn.epsilon, args.epsilon);
    set!(matching.sinkhorn.tolerance, args.sinkhorn_tol);
    set!(matching.sinkhorn.max_iters, args.sinkhorn_iters);
    set!(matching.plan_gradient, args.plan_gradient);
    set!(matching.selection_window, args.selection_window);
    if args.prior_pool.is_some() {
        matching.prior_pool = args.prior_pool;
    }
    if matching.steps < matching.log_every {
        matching.log_every = matching.steps.max(1);
    }
    matching.check()?;
    if args.seeds == 0 {
        return Err(Error::invalid("seeds", 0, "at least 1").into());
    }
    if !(args.naming_size_weight >= 0.0 && args.naming_size_weight.is_finite()) {
        return Err(Error::invalid("naming_size_weight", args.naming_size_weight, "a non-negative number").into());
    }
    let naming = NamingParams { init_stage_three: args.naming_init, size_weight: args.naming_size_weight, ..NamingParams::default() };
    Ok(PipelineParams { clustering, matching, naming })
}

/// Loaded, checked and normalised train/test features.
struct Data {
    train: Tensor,
    test: Tensor,
    test_labels: Option<Vec<i64>>,
}

fn load_data(args: &FeatureArgs, n_classes: usize, device: tch::Device) -> Result<Data> {
    let train = features::load_features(&args.train, None)?;
    let test = features::load_features(&args.test, args.test_labels.as_deref())?;
    let (dtrain, dtest) = (train.features.size()[1], test.features.size()[1]);
    if dtrain != dtest {
        return Err(Error::Shape {
            what: format!("feature dimension of {} vs {}", args.test.display(), args.train.display()),
            expected: format!("{dtrain} (as in the training features)"),
            got: dtest.to_string(),
        }
        .into());
    }
    let n_train = train.features.size()[0] as usize;
    if n_train < n_classes {
        bail!("{}: {n_train} training samples cannot form {n_classes} clusters", args.train.display());
    }
    if let Some(labels) = &test.labels {
        let source = args.test_labels.as_deref().unwrap_or(&args.test);
        check_labels(labels, n_classes, source)?;
    }
    Ok(Data {
        train: l2_normalize(&train.features).to_device(device),
        test: l2_normalize(&test.features).to_device(device),
        test_labels: test.labels,
    })
}

fn setup_device(args: &StageArgs, quiet: bool) -> Result<tch::Device> {
    if args.threads < 1 {
        return Err(Error::invalid("threads", args.threads, "at least 1").into());
    }
    tch::set_num_threads(args.threads);
    if !(1..=2).contains(&args.sinkhorn_threads) {
        return Err(Error::invalid("sinkhorn_threads", args.sinkhorn_threads, "1 or 2").into());
    }
    crate::ot::set_solver_threads(args.sinkhorn_threads);
    let device = args.device.resolve()?;
    status("Device", &device::describe(device), quiet);
    Ok(device)
}

fn cmd_match(args: MatchArgs, quiet: bool) -> Result<()> {
    let prior = build_prior(&args.classes)?;
    let c = prior.n_classes();
    let params = pipeline_params(&args.stages, args.classes.preset, c)?;
    let device = setup_device(&args.stages, quiet)?;
    let data = load_data(&args.features, c, device)?;
    let atoms = PriorAtoms::new(&prior);
    let inputs = Inputs { train: &data.train, test: &data.test, atoms: &atoms, n_classes: c, class_similarity: &prior.similarity, alpha: &prior.alpha };
    let out = &args.features.out;
    let mut log = JsonLines::create(&out.join("train_log.jsonl"))?;
    status(
        "Training",
        &format!("{} samples x {} features, {c} classes, {} seed(s) -> {}", data.train.size()[0], data.train.size()[1], args.stages.seeds, out.display()),
        quiet,
    );
    let mut metrics: Vec<SeedMetrics> = Vec::new();
    for seed in (0..args.stages.seeds as u64).map(|k| args.stages.seed + k) {
        let run = experiment::run_seed(&inputs, &params, seed, &mut log, quiet)?;
        save_seed_artifacts(out, &run)?;
        let line = match &data.test_labels {
            Some(labels) => {
                let m = experiment::evaluate(&run, &data.test, labels, c);
                let line = format!(
                    "seed {seed}: accuracy {:.1}% (random fC {:.1}%, clusters matched {:.1}%), best step {}, {:.1}s + {:.1}s",
                    100.0 * m.accuracy, 100.0 * m.random_baseline_accuracy, 100.0 * m.cluster_hungarian_accuracy,
                    m.best_step, m.cluster_seconds, m.match_seconds
                );
                metrics.push(m);
                line
            }
            None => format!("seed {seed}: done (no test labels, accuracy not measured)"),
        };
        status("Seed", &line, quiet);
    }
    let summary = (!metrics.is_empty()).then(|| experiment::summarize(&metrics, c));
    let report = json!({
        "command": "match",
        "version": env!("CARGO_PKG_VERSION"),
        "classes": prior.class_names,
        "train": args.features.train,
        "test": args.features.test,
        "n_train": data.train.size()[0],
        "n_test": data.test.size()[0],
        "feat_dim": data.train.size()[1],
        "device": device::describe(device),
        "params": params,
        "prior": prior,
        "accuracy": summary.as_ref().map(|s| s.accuracy),
        "summary": summary,
        "seeds": metrics,
    });
    io::write_json_atomic(&out.join("metrics.json"), &report)?;
    let text = match &summary {
        Some(s) => match_summary_text(&prior, s, &metrics),
        None => "No test labels: predictions and classifiers were written, accuracy was not measured.\n".into(),
    };
    io::write_atomic(&out.join("summary.md"), text.as_bytes())?;
    print!("{text}");
    Ok(())
}

fn save_seed_artifacts(out: &Path, run: &experiment::SeedRun) -> Result<()> {
    let dir = out.join(format!("seed-{}", run.seed));
    run.matching.classifier.save(&dir.join("classifier.safetensors"))?;
    io::write_safetensors_atomic(
        &dir.join("clusters.safetensors"),
        &[("centroids", &run.clustering.centroids), ("assignments", &Tensor::from_slice(&run.clustering.assignments))],
    )?;
    crate::data::npy::write_npy_i64(&dir.join("test_predictions.npy"), &[run.test_predictions.len()], &run.test_predictions)?;
    Ok(())
}

fn match_summary_text(prior: &LabelPrior, s: &experiment::Summary, seeds: &[SeedMetrics]) -> String {
    use std::fmt::Write;
    let c = prior.n_classes();
    let mut t = String::new();
    let _ = writeln!(t, "# Zero-label classification ({} seed(s))\n", s.accuracy.n);
    let _ = writeln!(t, "| metric | mean ± std (%) |\n| --- | --- |");
    let _ = writeln!(t, "| zero-label accuracy (argmax fC, no matching) | {} |", s.accuracy);
    let _ = writeln!(t, "| Random baseline (random fC) | {} |", s.random_baseline);
    let _ = writeln!(t, "| classifier at initialisation (before stage III) | {} |", s.initial_accuracy);
    let _ = writeln!(t, "| naming by geometry alone (beyond the paper; nearest centroid -> named cluster) | {} |", s.naming_accuracy);
    let _ = writeln!(t, "| clusters, Hungarian-matched (reference; ceiling for naming) | {} |", s.cluster_hungarian_accuracy);
    let _ = writeln!(t, "| classifier, Hungarian-matched (reference) | {} |", s.classifier_hungarian_accuracy);
    let _ = writeln!(t, "| cluster NMI | {} |", s.cluster_nmi);
    let _ = writeln!(t, "| cluster ARI | {} |", s.cluster_ari);
    let _ = writeln!(t, "\nSeeds whose classifier predicts all {c} classes: {}/{}", s.seeds_without_collapse, s.accuracy.n);
    let _ = writeln!(t, "Per seed accuracy (%): {}", seeds.iter().map(|m| format!("{:.1}", 100.0 * m.accuracy)).collect::<Vec<_>>().join(", "));
    if let Some(last) = seeds.last() {
        let _ = writeln!(t, "\nPer-class accuracy, seed {} (%):", last.seed);
        for (name, acc) in prior.class_names.iter().zip(&last.report.per_class_accuracy) {
            let _ = writeln!(t, "- {name}: {:.1}", 100.0 * acc);
        }
    }
    t
}

fn cmd_ablate(args: AblateArgs, quiet: bool) -> Result<()> {
    let prior = build_prior(&args.classes)?;
    let c = prior.n_classes();
    let base = pipeline_params(&args.stages, args.classes.preset, c)?;
    let device = setup_device(&args.stages, quiet)?;
    let data = load_data(&args.features, c, device)?;
    let labels = data.test_labels.clone().ok_or_else(|| {
        anyhow::anyhow!("{}: ablations need test labels (a `labels` tensor or --test-labels)", args.features.test.display())
    })?;
    let random_backbone = match (&args.random_backbone_train, &args.random_backbone_test) {
        (Some(train), Some(test)) => {
            let fa = FeatureArgs { train: train.clone(), test: test.clone(), test_labels: None, out: args.features.out.clone() };
            let d = load_data(&fa, c, device)?;
            if d.test.size()[0] != data.test.size()[0] {
                bail!("{}: {} rows, but the test features have {}", test.display(), d.test.size()[0], data.test.size()[0]);
            }
            Some(d)
        }
        _ => None,
    };
    let atoms = PriorAtoms::new(&prior);
    let inputs = Inputs { train: &data.train, test: &data.test, atoms: &atoms, n_classes: c, class_similarity: &prior.similarity, alpha: &prior.alpha };
    let out = &args.features.out;
    let mut log = JsonLines::create(&out.join("train_log.jsonl"))?;
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); ABLATIONS.len()];
    let mut randoms = Vec::new();
    for seed in (0..args.stages.seeds as u64).map(|k| args.stages.seed + k) {
        let clustering = experiment::run_clustering(&inputs, &base.clustering, seed, &mut log, quiet)?;
        randoms.push(experiment::random_baseline(&data.test, &labels, c, seed));
        for (v, variant) in ABLATIONS.iter().enumerate() {
            let mut params = base.matching.clone();
            params.loss = variant.loss;
            params.init = variant.init;
            let (train, test) = if variant.random_backbone {
                match &random_backbone {
                    Some(d) => (&d.train, &d.test),
                    None => continue,
                }
            } else {
                (&data.train, &data.test)
            };
            let label = format!("({}) {}", variant.key, variant.name);
            let matching = experiment::run_matching(train, Some(&clustering), &inputs, &params, seed, &label, &mut log, quiet)?;
            let pred = matching.classifier.predict(&test.to_device(tch::Device::Cpu));
            let accuracy = eval::classification_report(&pred, &labels, c).accuracy;
            status("Seed", &format!("{seed} {label}: accuracy {:.1}%", 100.0 * accuracy), quiet);
            results[v].push(accuracy);
        }
    }
    use std::fmt::Write;
    let mut table = String::new();
    let _ = writeln!(table, "# Ablations ({} seed(s); accuracy %, mean ± std)\n", args.stages.seeds);
    let _ = writeln!(table, "| variant | ours | paper, CIFAR-10 |\n| --- | --- | --- |");
    let mut rows = Vec::new();
    for (variant, accs) in ABLATIONS.iter().zip(&results) {
        let ours = if accs.is_empty() {
            "skipped: needs --random-backbone-train/--random-backbone-test".to_string()
        } else {
            eval::mean_std(accs).to_string()
        };
        let _ = writeln!(table, "| ({}) {} | {ours} | {} |", variant.key, variant.name, experiment::paper_ablation_result(variant.key));
        rows.push(json!({"key": variant.key, "name": variant.name, "loss": variant.loss, "init": variant.init,
            "accuracy": (!accs.is_empty()).then(|| eval::mean_std(accs)), "per_seed": accs}));
    }
    let random = eval::mean_std(&randoms);
    let _ = writeln!(table, "| Random fC | {random} | 11.2 |");
    let e_accuracy = (!results[4].is_empty()).then(|| eval::mean_std(&results[4]));
    io::write_json_atomic(
        &out.join("metrics.json"),
        &json!({"command": "ablate", "classes": prior.class_names, "params": base, "accuracy": e_accuracy,
            "random_baseline": random, "ablations": rows,
            "seeds": (0..args.stages.seeds as u64).map(|k| args.stages.seed + k).collect::<Vec<_>>()}),
    )?;
    io::write_atomic(&out.join("summary.md"), table.as_bytes())?;
    print!("{table}");
    Ok(())
}

fn cmd_pixel_features(args: PixelFeatureArgs, quiet: bool) -> Result<()> {
    use crate::pixel_features::{pca_features, pixels};
    let train = read_dataset(&args.format, &args.data, Split::Train, None)?;
    let test = read_dataset(&args.format, &args.data, Split::Test, None)?;
    status("Read", &format!("{} train and {} test images from {}", train.count, test.count, args.data.display()), quiet);
    let (ftrain, ftest) = pca_features(&pixels(&train), &pixels(&test), args.pca)?;
    features::save_features(&args.out.join("train.safetensors"), &ftrain, train.labels.as_deref())?;
    features::save_features(&args.out.join("test.safetensors"), &ftest, test.labels.as_deref())?;
    status("Wrote", &format!("{} (PCA {}, L2-normalised)", args.out.display(), args.pca), quiet);
    Ok(())
}

fn cmd_pretrain(args: PretrainArgs, quiet: bool) -> Result<()> {
    if let Some(t) = args.threads {
        if t < 1 {
            return Err(Error::invalid("threads", t, "at least 1").into());
        }
        tch::set_num_threads(t);
    }
    let device = args.device.resolve()?;
    let train = args.dataset.read(Split::Train)?;
    status("Read", &format!("{} training images ({}x{}x{}) from {}", train.count, train.height, train.width, train.channels, args.dataset.data.display()), quiet);
    let test = if args.knn_every > 0 && train.labels.is_some() { args.dataset.read(Split::Test).ok() } else { None };
    let image_size = args.image_size.unwrap_or(train.height.max(train.width));
    let stem = match args.stem {
        StemChoice::Cifar => Stem::Cifar,
        StemChoice::Imagenet => Stem::Imagenet,
        StemChoice::Auto if image_size <= 64 => Stem::Cifar,
        StemChoice::Auto => Stem::Imagenet,
    };
    if !(args.width > 0.0 && args.width <= 4.0) {
        return Err(Error::invalid("width", args.width, "a multiplier in (0, 4]").into());
    }
    let config = ResNetConfig { depth: args.arch, stem, width: args.width, in_channels: train.channels as i64 };
    let params = SimclrParams {
        batch_size: args.batch_size,
        epochs: args.epochs,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        temperature: args.temperature,
        image_size,
        loader_threads: args.loader_threads.max(1),
        ..SimclrParams::default()
    };
    status("Device", &device::describe(device), quiet);
    let knn = test.as_ref().map(|t| KnnMonitor { train: &train, test: t, every: args.knn_every });
    let opts = PretrainOptions { out: &args.out, seed: args.seed, resume: args.resume, device, quiet, knn, interrupt_after_steps: None };
    let outcome = pretrain::pretrain(&train, &config, &params, &opts)?;
    status("Finished", &format!("{} epoch(s); best model {}", outcome.epochs_run, outcome.best.display()), quiet);
    Ok(())
}

fn cmd_features(args: FeaturesArgs, quiet: bool) -> Result<()> {
    let device = args.device.resolve()?;
    let meta = simclr::read_meta(&args.checkpoint)?;
    let mut model = SimclrModel::new(&meta.backbone, &meta.params, device);
    simclr::load_checkpoint(&args.checkpoint, &mut model, None)?;
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let set = args.dataset.read(split)?;
        if set.channels as i64 != meta.backbone.in_channels {
            bail!("{}: {} channels, but the checkpoint's backbone takes {}", args.dataset.data.display(), set.channels, meta.backbone.in_channels);
        }
        let bar = crate::progress::bar(set.count as u64, "Features", quiet);
        let features = simclr::extract_features(&model.backbone, &set, &meta.normalization, meta.params.image_size, device, |n| bar.inc(n as u64));
        bar.finish_and_clear();
        let path = args.out.join(format!("{name}.safetensors"));
        features::save_features(&path, &features, set.labels.as_deref().filter(|l| l.iter().all(|&x| x >= 0)))?;
        status("Wrote", &format!("{} ({} x {})", path.display(), features.size()[0], features.size()[1]), quiet);
    }
    Ok(())
}

fn cmd_knn(args: KnnArgs) -> Result<()> {
    let train = features::load_features(&args.train, None)?;
    let test = features::load_features(&args.test, None)?;
    let (Some(train_labels), Some(test_labels)) = (&train.labels, &test.labels) else {
        bail!("kNN accuracy needs labels in both {} and {}", args.train.display(), args.test.display());
    };
    if train.features.size()[1] != test.features.size()[1] {
        bail!("{}: {} features per row, but {} has {}", args.test.display(), test.features.size()[1], args.train.display(), train.features.size()[1]);
    }
    if args.k < 1 {
        return Err(Error::invalid("k", args.k, "at least 1").into());
    }
    let classes = train_labels.iter().chain(test_labels).max().map_or(1, |m| m + 1);
    let accuracy = simclr::knn_accuracy(&l2_normalize(&train.features), train_labels, &l2_normalize(&test.features), test_labels, args.k, classes);
    println!("kNN accuracy (k = {}, cosine): {:.2}%", args.k, 100.0 * accuracy);
    Ok(())
}
