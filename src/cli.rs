//! Command-line interface: raw flags (clap) turned into checked parameters, then one function
//! per subcommand. Errors travel up to `main`, which prints them once.
use crate::ablation::{self, ABLATIONS};
use crate::backbone::simclr;
use crate::backbone::torchscript::{InputNormalization, Preprocessing};
use crate::config::{build_prior, ClassArgs, DatasetArgs, PretrainSettings, RunConfig, StageArgs, StageSettings};
use crate::data::features::{self, l2_normalize};
use crate::data::images::{read_dataset, DatasetFormat, Split};
use crate::device::{self, DeviceChoice};
use crate::error::Error;
use crate::eval::{self, SeedMetrics};
use crate::io::{self, JsonLines};
use crate::layout::SeedsLayout;
use crate::orchestrator::Orchestrator;
use crate::progress::status;
use crate::stages::{self, FeatureData};
use crate::{predict, report, run};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "zerolabel", version, about = "Train an image classifier from unlabelled images and class names only")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// No progress bars or status lines (results are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Memory budget (e.g. 8G, 512M): steps that would need more are refused before they
    /// allocate [the memory available on this machine; also $ZEROLABEL_MAX_MEMORY].
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_memory: Option<String>,
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
    /// Everything from images to a named-class classifier and its report, from a config file;
    /// finished stages are reused, an interrupted run resumes.
    Run(RunArgs),
    /// Classify PNG/JPEG images with the classifier of a finished `run`.
    Predict(PredictArgs),
    /// Cluster sheets of a finished `run`: per cluster a PNG of the training images nearest its
    /// centre, and an index page, so that a person can name the clusters (`--cluster-names`).
    Clusters(crate::sheets::ClustersArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A run configuration, e.g. configs/fashion-mnist.toml.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Override any config field: TABLE.KEY=VALUE (e.g. pretrain.epochs=4, stages.seeds=10,
    /// data.limit=2000); repeatable.
    #[arg(long = "set", value_name = "TABLE.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run folder [runs/<config name>].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Shorthand for --set device=... (cpu, cuda, auto).
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// Shorthand for --set pretrain.epochs=N.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Shorthand for --set stages.seeds=N.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Shorthand for --set data.limit=N (first N images of each split).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Redo every stage, ignoring finished results in the run folder.
    #[arg(long)]
    pub force: bool,
    /// Name the clusters yourself: one class name per line, in cluster order (see `zerolabel
    /// clusters`); sets [classes] cluster_names.
    #[arg(long, value_name = "FILE")]
    pub cluster_names: Option<PathBuf>,
    /// The seed whose clusters --cluster-names names [the run's selected seed]; sets [classes]
    /// cluster_names_seed.
    #[arg(long, value_name = "SEED", requires = "cluster_names")]
    pub cluster_names_seed: Option<u64>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A run folder written by `zerolabel run` (holds model.json).
    #[arg(long)]
    pub run: PathBuf,
    /// An image file, or a folder searched recursively for images.
    #[arg(long)]
    pub images: PathBuf,
    /// Output CSV: path, class, confidence.
    #[arg(long, short)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
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
    /// Subtract the train features' mean before the cosine (as `pixel-features` does to pixels).
    #[arg(long)]
    pub centre: bool,
}

#[derive(Args, Debug)]
pub struct PretrainArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[command(flatten)]
    pub settings: PretrainSettings,
    /// Continue from OUT/checkpoint.safetensors.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    #[arg(long, short)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("backbone").required(true).args(["checkpoint", "torchscript"])))]
pub struct FeaturesArgs {
    #[command(flatten)]
    pub dataset: DatasetArgs,
    /// A checkpoint written by `pretrain` (e.g. RUN/best.safetensors).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// A pretrained image encoder saved with torch.jit.save, returning (N, D) features, instead
    /// of a checkpoint (see the README, "Use a pretrained backbone").
    #[arg(long, requires = "image_size")]
    pub torchscript: Option<PathBuf>,
    /// TorchScript input side: the centred square of each image is resized (bilinear) to it.
    #[arg(long, requires = "torchscript")]
    pub image_size: Option<usize>,
    /// TorchScript input normalisation: imagenet, none, or MEAN,STD (comma lists per channel,
    /// e.g. 0.5,0.5,0.5,0.25,0.25,0.25).
    #[arg(long, default_value = "imagenet", requires = "torchscript")]
    pub normalize: InputNormalization,
    /// Images per TorchScript forward pass.
    #[arg(long, default_value_t = 64, requires = "torchscript")]
    pub batch_size: usize,
    /// Average a TorchScript model's (N, C, H, W) feature maps over space (otherwise such an
    /// output is an error).
    #[arg(long, requires = "torchscript")]
    pub global_pool: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// Output folder: train.safetensors and test.safetensors.
    #[arg(long, short)]
    pub out: PathBuf,
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
    /// The pixels as they are, only L2-normalised: no centring, no PCA (`knn --centre` then
    /// centres them at evaluation, like learned features).
    #[arg(long, conflicts_with = "pca")]
    pub raw: bool,
    /// Output folder: train.safetensors and test.safetensors.
    #[arg(long, short)]
    pub out: PathBuf,
}

/// An error and its causes, each printed once: a cause whose text the message already holds
/// (an OS error embedded in "cannot read X: ...") is not repeated.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

pub fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    if let Some(size) = &cli.max_memory {
        crate::memory::set_max_memory(Some(crate::memory::parse_size(size)?));
    }
    match cli.command {
        Command::Prior(args) => cmd_prior(args),
        Command::Match(args) => cmd_match(args, quiet),
        Command::Ablate(args) => cmd_ablate(args, quiet),
        Command::PixelFeatures(args) => cmd_pixel_features(args, quiet),
        Command::Pretrain(args) => cmd_pretrain(args, quiet),
        Command::Features(args) => cmd_features(args, quiet),
        Command::Knn(args) => cmd_knn(args),
        Command::Run(args) => cmd_run(args, quiet),
        Command::Predict(args) => predict::predict_command(&args.run, &args.images, &args.out, args.device, args.batch_size, quiet),
        Command::Clusters(args) => crate::sheets::clusters_command(&args, quiet),
    }
}

fn cmd_prior(args: PriorArgs) -> Result<()> {
    let prior = build_prior(&args.classes)?;
    print!("{}", prior.describe());
    Ok(())
}

/// The checked stage settings and the device, with libtorch's threads set from them.
fn stage_setup(args: &StageArgs, classes: &ClassArgs, n_classes: usize, quiet: bool) -> Result<(StageSettings, tch::Device)> {
    let settings = args.validate(classes.preset, n_classes)?;
    let device = args.device.resolve()?;
    settings.apply_threads();
    status("Device", &device::describe(device), quiet);
    Ok((settings, device))
}

fn cmd_match(args: MatchArgs, quiet: bool) -> Result<()> {
    let prior = build_prior(&args.classes)?;
    let c = prior.n_classes();
    let (settings, device) = stage_setup(&args.stages, &args.classes, c, quiet)?;
    let f = &args.features;
    let data = FeatureData::load(&f.train, &f.test, f.test_labels.as_deref(), c, device)?;
    let layout = SeedsLayout::new(&f.out);
    status(
        "Training",
        &format!("{} samples x {} features, {c} classes, {} seed(s) -> {}", data.train.size()[0], data.train.size()[1], args.stages.seeds, f.out.display()),
        quiet,
    );
    let records = Orchestrator::new(&prior, &settings, quiet)?.run_seeds(&data, &layout, &args.stages.seed_list(), false)?;
    let metrics: Vec<SeedMetrics> = records.iter().filter_map(|r| r.metrics.clone()).collect();
    let summary = (!metrics.is_empty()).then(|| eval::summarize(&metrics, c));
    let report = json!({
        "command": "match",
        "version": env!("CARGO_PKG_VERSION"),
        "classes": prior.class_names,
        "train": f.train,
        "test": f.test,
        "n_train": data.train.size()[0],
        "n_test": data.test.size()[0],
        "feat_dim": data.train.size()[1],
        "device": device::describe(device),
        "params": settings,
        "naming": settings.naming.describe(),
        "prior": prior,
        "accuracy": summary.as_ref().map(|s| s.accuracy),
        "summary": summary,
        "seeds": metrics,
    });
    io::write_json_atomic(&layout.metrics(), &report)?;
    let mut text = match &summary {
        Some(s) => report::summary_text(&prior.class_names, &settings.naming.describe(), s, &metrics),
        None => "No test labels: predictions and classifiers were written, accuracy was not measured.\n".into(),
    };
    for record in &records {
        if let Some(sentence) = report::trust_sentence(record, &prior.class_names) {
            text.push_str(&format!("\nSeed {}: {sentence}.\n", record.seed));
        }
        if let Some(sentence) = report::cluster_sizes_sentence(record, &args.stages) {
            text.push_str(&format!("Seed {}: {sentence}.\n", record.seed));
        }
        if let Some(sentence) = report::optimality_sentence(record, prior.n_classes()) {
            text.push_str(&format!("Seed {}: {sentence}.\n", record.seed));
        }
    }
    io::write_atomic(&layout.summary(), text.as_bytes())?;
    print!("{text}");
    Ok(())
}

fn cmd_ablate(args: AblateArgs, quiet: bool) -> Result<()> {
    let prior = build_prior(&args.classes)?;
    let c = prior.n_classes();
    let (settings, device) = stage_setup(&args.stages, &args.classes, c, quiet)?;
    let f = &args.features;
    let data = FeatureData::load(&f.train, &f.test, f.test_labels.as_deref(), c, device)?;
    let labels = data.test_labels.clone().ok_or_else(|| anyhow::anyhow!("{}: ablations need test labels (a `labels` tensor or --test-labels)", f.test.display()))?;
    let random_backbone = match (&args.random_backbone_train, &args.random_backbone_test) {
        (Some(train), Some(test)) => {
            let d = FeatureData::load(train, test, None, c, device)?;
            if d.test.size()[0] != data.test.size()[0] || d.train.size()[0] != data.train.size()[0] {
                bail!("{}: {} train and {} test rows, but the features have {} and {}", test.display(), d.train.size()[0], d.test.size()[0], data.train.size()[0], data.test.size()[0]);
            }
            Some(d)
        }
        _ => None,
    };
    let layout = SeedsLayout::new(&f.out);
    let mut log = JsonLines::create(&layout.ablation_log())?;
    let seeds = args.stages.seed_list();
    let results = ablation::run_ablations(&prior, &settings, &data, &labels, random_backbone.as_ref(), &seeds, &mut log, quiet)?;
    let table = ablation_table(&results, seeds.len());
    let rows: Vec<_> = ABLATIONS.iter().enumerate().map(|(v, variant)| json!({"key": variant.key, "name": variant.name, "loss": variant.loss, "init": variant.init,
        "accuracy": results.summary(v), "per_seed": results.per_variant[v]})).collect();
    io::write_json_atomic(
        &layout.metrics(),
        &json!({"command": "ablate", "classes": prior.class_names, "params": settings, "accuracy": results.summary(4),
            "random_baseline": eval::mean_std(&results.random), "ablations": rows, "seeds": seeds}),
    )?;
    io::write_atomic(&layout.summary(), table.as_bytes())?;
    print!("{table}");
    Ok(())
}

/// The ablation table next to the paper's numbers.
fn ablation_table(results: &ablation::AblationResults, seeds: usize) -> String {
    use std::fmt::Write;
    let mut table = String::new();
    let _ = writeln!(table, "# Ablations ({seeds} seed(s); accuracy %, mean ± std)\n");
    let _ = writeln!(table, "| variant | ours | paper, CIFAR-10 |\n| --- | --- | --- |");
    for (v, variant) in ABLATIONS.iter().enumerate() {
        let ours = results.summary(v).map_or_else(|| "skipped: needs --random-backbone-train/--random-backbone-test".to_string(), |m| m.to_string());
        let _ = writeln!(table, "| ({}) {} | {ours} | {} |", variant.key, variant.name, ablation::paper_ablation_result(variant.key));
    }
    let _ = writeln!(table, "| Random fC | {} | 11.2 |", eval::mean_std(&results.random));
    table
}

fn cmd_pixel_features(args: PixelFeatureArgs, quiet: bool) -> Result<()> {
    use crate::pixel_features::{pca_features, pixels};
    let train = read_dataset(&args.format, &args.data, Split::Train, None)?;
    let test = read_dataset(&args.format, &args.data, Split::Test, None)?;
    crate::data::images::check_same_shape(&train, &test, &args.data)?;
    let values = crate::memory::product(&[train.count + test.count, train.height * train.width * train.channels]);
    crate::memory::ensure_fits(values * 4 * 3, &format!("the pixels of {} as f32 (and their centred copies)", args.data.display()), "use a smaller dataset")?;
    status("Read", &format!("{} train and {} test images from {}", train.count, test.count, args.data.display()), quiet);
    let (ftrain, ftest) = if args.raw {
        (l2_normalize(&pixels(&train)), l2_normalize(&pixels(&test)))
    } else {
        pca_features(&pixels(&train), &pixels(&test), args.pca)?
    };
    let (train_path, test_path) = (args.out.join("train.safetensors"), args.out.join("test.safetensors"));
    features::save_features_together(&[(train_path.as_path(), &ftrain, train.labels.as_deref()), (test_path.as_path(), &ftest, test.labels.as_deref())])?;
    let how = if args.raw { "raw pixels".to_string() } else { format!("PCA {}", args.pca) };
    status("Wrote", &format!("{} ({how}, L2-normalised)", args.out.display()), quiet);
    Ok(())
}

fn cmd_pretrain(args: PretrainArgs, quiet: bool) -> Result<()> {
    let device = args.device.resolve()?;
    status("Device", &device::describe(device), quiet);
    args.settings.apply_threads(tch::get_num_threads())?;
    let outcome = stages::pretrain_stage(&args.dataset, &args.settings, device, &args.out, args.resume, None, quiet)?;
    status("Finished", &format!("{} epoch(s); best model {}", outcome.epochs_run, outcome.best.display()), quiet);
    Ok(())
}

fn cmd_features(args: FeaturesArgs, quiet: bool) -> Result<()> {
    let device = args.device.resolve()?;
    match (&args.torchscript, &args.checkpoint) {
        (Some(model), _) => {
            let prep = Preprocessing {
                image_size: args.image_size.unwrap_or(224),
                normalize: args.normalize.clone(),
                batch_size: args.batch_size,
                global_pool: args.global_pool,
            };
            stages::torchscript_features_stage(&args.dataset, model, &prep, device, &args.out, quiet)
        }
        (None, Some(checkpoint)) => stages::features_stage(&args.dataset, checkpoint, device, &args.out, quiet),
        (None, None) => bail!("features: give --checkpoint or --torchscript"),
    }
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
    simclr::check_knn_memory(train.features.size()[0], classes)?;
    let (train_x, test_x) = if args.centre {
        features::centre_on_train(&train.features, &test.features)
    } else {
        (train.features.shallow_clone(), test.features.shallow_clone())
    };
    let accuracy = simclr::knn_accuracy(&l2_normalize(&train_x), train_labels, &l2_normalize(&test_x), test_labels, args.k, classes);
    let centred = if args.centre { ", centred on the train mean" } else { "" };
    println!("kNN accuracy (k = {}, cosine{centred}): {:.2}%", args.k, 100.0 * accuracy);
    Ok(())
}

fn cmd_run(args: RunArgs, quiet: bool) -> Result<()> {
    let mut overrides = args.overrides.clone();
    if let Some(d) = args.device {
        overrides.push(format!("device=\"{}\"", serde_json::to_value(d)?.as_str().unwrap_or("auto")));
    }
    if let Some(n) = args.epochs {
        overrides.push(format!("pretrain.epochs={n}"));
    }
    if let Some(n) = args.seeds {
        overrides.push(format!("stages.seeds={n}"));
    }
    if let Some(n) = args.limit {
        overrides.push(format!("data.limit={n}"));
    }
    let mut config = RunConfig::load(&args.config, &overrides)?;
    if let Some(file) = &args.cluster_names {
        let names = crate::naming::person::read_names_file(file)?;
        let classes = crate::config::class_names(&config.classes)?;
        crate::naming::person::parse_cluster_names(&names, &classes).with_context(|| file.display().to_string())?;
        config.classes.cluster_names = Some(names);
        config.classes.cluster_names_seed = args.cluster_names_seed.or(config.classes.cluster_names_seed);
    }
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
    let opts = run::RunOptions { config_path: args.config.clone(), overrides, out, force: args.force, quiet };
    let outcome = run::run(&config, &opts)?;
    print!("{}", outcome.headline);
    Ok(())
}
