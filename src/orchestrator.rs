//! The one orchestrator of stages II-III, used by `run`, `match` and `ablate`:
//! features -> [`Clusterer`] -> clusters -> naming chain ([`Namer`]s) -> named classifier ->
//! test predictions -> evaluation (labels enter only there) -> per-seed records on disk.
use crate::clustering::{Clusterer, Clusters, UNEQUAL_SIZES_RATIO};
use crate::config::StageSettings;
use crate::error::{Error, Result};
use crate::eval::{self, SeedMetrics};
use crate::io::{self, JsonLines};
use crate::layout::SeedsLayout;
use crate::matching::{Classifier, MatchingLoss, StepLog};
use crate::naming::person::PersonNamer;
use crate::naming::{GeometryNamer, NamedClassifier, Namer, NamingChain, NamingContext, NamingKind, NamingSettings};
use crate::prior::sampler::PriorAtoms;
use crate::prior::LabelPrior;
use crate::progress::{self, status};
use crate::stages::FeatureData;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use tch::Tensor;

/// What one seed produced.
pub struct SeedRun {
    pub seed: u64,
    pub clusters: Clusters,
    /// The naming chain's result: the classifier this seed contributes.
    pub named: NamedClassifier,
    /// The clusters named by geometry (beyond the paper), reported as "naming alone" whatever
    /// the chain.
    pub geometry: NamedClassifier,
    /// The paper's stage III, where the chain is another and the reference is wanted.
    pub paper: Option<NamedClassifier>,
    /// Predicted class of each test sample (argmax of the chain's classifier).
    pub test_predictions: Vec<i64>,
    /// Nearest-centre cluster of each test sample.
    pub test_clusters: Vec<i64>,
    /// Test predictions of the geometry naming alone (the nearest of the centres it named).
    pub naming_predictions: Vec<i64>,
    pub paper_predictions: Option<Vec<i64>>,
    /// Where k-means replaced the Sinkhorn clusters: the Sinkhorn clusters' size ratio.
    pub kmeans_fallback: Option<f64>,
    pub cluster_seconds: f64,
    pub match_seconds: f64,
}

/// What one seed leaves in `seed-N/seed.json` (its presence marks the seed done).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedRecord {
    pub seed: u64,
    pub naming_chain: Vec<NamingKind>,
    /// Label-free model-selection value, lower is better: stage III's lowest windowed training
    /// loss, or minus the naming objective where the chain ends with the geometry naming.
    pub selection_score: f64,
    pub best_step: usize,
    /// class_of[cluster] of the chain's classifier.
    pub class_of: Vec<usize>,
    /// class_of[cluster] found by naming the clusters by geometry, its objective and runner-up.
    pub naming_class_of: Vec<usize>,
    pub naming_score: f64,
    pub naming_second_score: Option<f64>,
    /// Whether the geometry naming is proven optimal, or how far from it it may be (absent in
    /// records written before it was kept).
    #[serde(default)]
    pub naming_optimality: Option<crate::naming::qap::Optimality>,
    /// (class a, class b, objective lost by swapping them).
    pub naming_interchangeable: Vec<(usize, usize, f64)>,
    /// How far the geometry's names can be trusted (label-free alignment score).
    #[serde(default)]
    pub naming_trust: Option<crate::naming::NameTrust>,
    /// How far the classifier's names (the chain's `class_of`) can be trusted, judged by the
    /// same posterior over namings.
    #[serde(default)]
    pub classifier_trust: Option<crate::naming::NameTrust>,
    /// Where k-means clusters replaced the configured Sinkhorn clusters: how much the Sinkhorn
    /// clusters' sizes differed (largest over smallest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kmeans_fallback: Option<f64>,
    pub cluster_seconds: f64,
    pub match_seconds: f64,
    /// Accuracy and the rest, where test labels exist.
    pub metrics: Option<SeedMetrics>,
    /// Naming by a person: which seed's clusters the names refer to and how this seed's
    /// clusters were aligned to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonRecord>,
    /// Read back from an earlier invocation rather than computed now.
    #[serde(skip)]
    pub reused: bool,
}

/// How a seed's clusters got a person's names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PersonRecord {
    /// The seed whose clusters the person named (from its cluster sheets).
    pub named_seed: u64,
    /// The names as given, in the named seed's cluster order.
    pub names: Vec<String>,
    /// reference_of[cluster]: the named seed's cluster this seed's cluster is aligned to.
    pub reference_of: Vec<usize>,
    /// Mean cosine similarity of the aligned member means (1 for the named seed).
    pub alignment: f64,
    /// Training members per cluster of this seed.
    pub cluster_sizes: Vec<usize>,
}

/// Stages II-III with checked settings, for one prior.
pub struct Orchestrator<'a> {
    prior: &'a LabelPrior,
    atoms: PriorAtoms,
    settings: &'a StageSettings,
    clusterer: Box<dyn Clusterer>,
    /// k-means, tried where the names of Sinkhorn clusters are not trusted or the clusters come
    /// out of very unequal sizes.
    fallback: Option<Box<dyn Clusterer>>,
    chain: NamingChain,
    geometry: GeometryNamer,
    quiet: bool,
}

impl<'a> Orchestrator<'a> {
    pub fn new(prior: &'a LabelPrior, settings: &'a StageSettings, quiet: bool) -> Result<Self> {
        if settings.clustering.n_clusters() != prior.n_classes() {
            return Err(Error::invalid("n_clusters", settings.clustering.n_clusters(), format!("the number of classes ({})", prior.n_classes())));
        }
        Ok(Orchestrator {
            prior,
            atoms: PriorAtoms::new(prior),
            settings,
            clusterer: settings.clustering.build()?,
            fallback: settings.fallback_clustering().map(|k| k.build()).transpose()?,
            chain: settings.naming.build()?,
            geometry: GeometryNamer::new(settings.naming.geometry.clone())?,
            quiet,
        })
    }

    pub fn settings(&self) -> &StageSettings {
        self.settings
    }

    /// Stage II for one seed, with a progress bar and metrics lines.
    pub fn cluster(&self, train: &Tensor, seed: u64, log: &mut JsonLines) -> Result<Clusters> {
        self.cluster_with(self.clusterer.as_ref(), train, seed, log)
    }

    fn cluster_with(&self, clusterer: &dyn Clusterer, train: &Tensor, seed: u64, log: &mut JsonLines) -> Result<Clusters> {
        let steps = clusterer.steps();
        let bar = progress::bar(steps as u64, "Clustering", self.quiet);
        let mut log_error = None;
        let clusters = clusterer.fit(train, seed, &mut |s| {
            bar.inc(1);
            // About 50 lines a seed: every 100th of Sinkhorn's 5000 steps, every SCAN epoch.
            if s.step % (steps / 50).max(1) == 0 || s.step + 1 == steps {
                bar.set_message(format!("{} loss {:.4}", clusterer.name(), s.loss));
                let line = json!({"stage": "cluster", "method": clusterer.name(), "seed": seed, "step": s.step + 1, "loss": s.loss, "sinkhorn_iterations": s.inner_iterations});
                if let Err(e) = log.write(&line) {
                    log_error.get_or_insert(e);
                }
            }
        });
        bar.finish_and_clear();
        match log_error {
            Some(e) => Err(e),
            None => clusters,
        }
    }

    /// One naming method from `start`, with a progress bar and metrics lines labelled `variant`.
    pub fn name_with(&self, namer: &dyn Namer, ctx: &NamingContext, start: Option<&[usize]>, seed: u64, variant: &str, log: &mut JsonLines) -> Result<NamedClassifier> {
        let bar = progress::bar(namer.steps() as u64, "Matching", self.quiet || namer.steps() == 0);
        let result = namer.name_clusters(ctx, start, seed, &mut |entry: &StepLog, log_now| {
            bar.inc(1);
            if log_now {
                bar.set_message(format!("loss {:.4}", entry.window_mean));
                log.write(&json!({"stage": "match", "variant": variant, "seed": seed, "step": entry.step,
                    "loss": entry.loss, "window_mean": entry.window_mean,
                    "sinkhorn_iterations": entry.sinkhorn_iterations,
                    "sinkhorn_converged": entry.sinkhorn_converged, "elapsed_s": entry.elapsed_s}))?;
            }
            Ok(())
        });
        bar.finish_and_clear();
        log.flush()?;
        result
    }

    fn context<'c>(&'c self, data: &'c FeatureData, clusters: &'c Clusters) -> NamingContext<'c> {
        NamingContext { train: &data.train, train_raw: data.train_raw.as_ref(), clusters, prior: self.prior, atoms: &self.atoms }
    }

    /// The naming chain on one seed's clusters; a leading geometry step reuses `geometry`.
    fn run_chain(&self, ctx: &NamingContext, geometry: &NamedClassifier, seed: u64, log: &mut JsonLines) -> Result<NamedClassifier> {
        let mut last: Option<NamedClassifier> = None;
        for (i, &kind) in self.settings.naming.chain.iter().enumerate() {
            last = Some(if i == 0 && kind == NamingKind::Geometry {
                geometry.clone()
            } else {
                let variant = if last.is_some() { "named" } else { "main" };
                self.name_with(self.chain.step(i), ctx, last.as_ref().map(|l| l.class_of.as_slice()), seed, variant, log)?
            });
        }
        last.ok_or_else(|| Error::invalid("naming", "[]", "at least one method"))
    }

    /// Stage II and the geometry naming for one seed: the configured clustering, or k-means
    /// where the jury trusts the k-means clusters' names and either does not trust the
    /// configured clustering's, or those clusters are of very unequal sizes. Sinkhorn
    /// clustering learns clusters of equal sizes: with unbalanced classes it splits large ones
    /// and merges small ones (classes 4.3:1 in size gave clusters 2.3:1 whose names were all
    /// wrong, flagged, where k-means named every class right, trusted), and a centroid left with
    /// a handful of members gave a trusted naming 6 % right where k-means named 100 %.
    /// Returns the Sinkhorn clusters' size ratio with them when k-means replaced them.
    fn cluster_and_name(&self, data: &FeatureData, seed: u64, log: &mut JsonLines) -> Result<(Clusters, NamedClassifier, Option<f64>)> {
        let clusters = self.cluster(&data.train, seed, log)?;
        let geometry = self.name_with(&self.geometry, &self.context(data, &clusters), None, seed, "geometry", log)?;
        let Some(fallback) = &self.fallback else { return Ok((clusters, geometry, None)) };
        let own_trust = |named: &NamedClassifier| named.geometry.as_ref().map(|g| g.trust_of(&g.solution.class_of));
        let suspect = |t: &crate::naming::NameTrust| !t.trusted || t.cluster_size_ratio >= UNEQUAL_SIZES_RATIO;
        let Some(trust) = own_trust(&geometry).filter(suspect) else { return Ok((clusters, geometry, None)) };
        let kmeans = self.cluster_with(fallback.as_ref(), &data.train, seed, log)?;
        let kmeans_geometry = self.name_with(&self.geometry, &self.context(data, &kmeans), None, seed, "geometry-kmeans", log)?;
        match own_trust(&kmeans_geometry).is_some_and(|t| t.trusted) {
            true => Ok((kmeans, kmeans_geometry, Some(trust.cluster_size_ratio))),
            false => Ok((clusters, geometry, None)),
        }
    }

    /// Stages II and III for one seed.
    pub fn run_seed(&self, data: &FeatureData, seed: u64, log: &mut JsonLines) -> Result<SeedRun> {
        let t0 = Instant::now();
        let (clusters, geometry, kmeans_fallback) = self.cluster_and_name(data, seed, log)?;
        let cluster_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let ctx = self.context(data, &clusters);
        let named = self.run_chain(&ctx, &geometry, seed, log)?;
        let paper = match self.settings.trains_paper_reference() {
            true => Some(self.name_with(self.settings.paper_naming().namer(NamingKind::Stage3)?.as_ref(), &ctx, None, seed, "paper", log)?),
            false => None,
        };
        let match_seconds = t1.elapsed().as_secs_f64();
        let test = data.test.to_device(tch::Device::Cpu);
        let test_clusters = clusters.predict(&data.test);
        // The geometry's own classifier: the nearest of the centres it named.
        let naming_predictions = geometry.classifier.predict(&test);
        Ok(SeedRun {
            seed,
            test_predictions: named.classifier.predict(&test),
            paper_predictions: paper.as_ref().map(|p| p.classifier.predict(&test)),
            test_clusters,
            naming_predictions,
            clusters,
            named,
            geometry,
            paper,
            kmeans_fallback,
            cluster_seconds,
            match_seconds,
        })
    }

    /// Stages II-III and evaluation for every seed, into `layout`: classifier, clusters, test
    /// predictions, training log and `seed.json`. With `reuse`, a seed whose `seed.json` exists
    /// is read back instead of recomputed (an interrupted run resumes at the first unfinished seed).
    pub fn run_seeds(&self, data: &FeatureData, layout: &SeedsLayout, seeds: &[u64], reuse: bool) -> Result<Vec<SeedRecord>> {
        let mut records = Vec::new();
        for &seed in seeds {
            let record_path = layout.seed_record(seed);
            if reuse && record_path.exists() {
                records.push(read_seed_record(&record_path)?);
                status("Reused", &format!("seed {seed} from {}", layout.seed(seed).display()), self.quiet);
                continue;
            }
            let mut log = JsonLines::create(&layout.train_log(seed))?;
            let run = self.run_seed(data, seed, &mut log)?;
            save_seed(layout, &run)?;
            let metrics = data.test_labels.as_ref().map(|labels| evaluate(&run, &data.test, labels, self.prior.n_classes()));
            let record = seed_record(&run, &self.settings.naming.chain, metrics);
            io::write_json_atomic(&record_path, &record)?;
            status("Seed", &seed_line(&record), self.quiet);
            records.push(record);
        }
        Ok(records)
    }

    /// The L_cgsk stage III classifier Figure 4B compares with L_sk: the chain's own where the
    /// chain has a stage III, else the paper's reference trained beside it.
    pub fn cgsk_classifier(&self, layout: &SeedsLayout, seed: u64) -> PathBuf {
        match self.settings.naming.chain.contains(&NamingKind::Stage3) {
            true => layout.classifier(seed),
            false => layout.paper_classifier(seed),
        }
    }

    /// Naming by a person on the clusters stage II already made (`base`, whose seeds
    /// `base_records` describe, named by this orchestrator's chain): per
    /// seed, the person's names (aligned from the named seed), the nearest-centre classifier, its
    /// test predictions and `seed.json` into `layout`. The clusters' metrics, the geometry's and
    /// the paper's accuracy are the base seed's. A seed whose record exists is read back.
    pub fn name_by_person(&self, namer: &PersonNamer, data: &FeatureData, base: &SeedsLayout, base_records: &[SeedRecord], layout: &SeedsLayout) -> Result<Vec<SeedRecord>> {
        let base_is_paper = self.settings.naming.is_paper();
        let names: Vec<String> = namer.class_of().iter().map(|&k| self.prior.class_names[k].clone()).collect();
        let mut records = Vec::new();
        for base_record in base_records {
            let seed = base_record.seed;
            let record_path = layout.seed_record(seed);
            if record_path.exists() {
                records.push(read_seed_record(&record_path)?);
                status("Reused", &format!("seed {seed} from {}", layout.seed(seed).display()), self.quiet);
                continue;
            }
            let started = Instant::now();
            let clusters = load_clusters(base, seed, &data.train)?;
            let ctx = self.context(data, &clusters);
            let named = namer.name_clusters(&ctx, None, seed, &mut |_, _| Ok(()))?;
            let aligned = namer.names_for(seed, &crate::naming::person::rows_f64(&clusters.member_means)?)?;
            let predictions = named.classifier.predict(&data.test.to_device(tch::Device::Cpu));
            named.classifier.save(&layout.classifier(seed))?;
            crate::data::npy::write_npy_i64(&layout.test_predictions(seed), &[predictions.len()], &predictions)?;
            let seconds = started.elapsed().as_secs_f64();
            let metrics = match (&data.test_labels, &base_record.metrics) {
                (Some(labels), Some(base_metrics)) => {
                    let metrics = SeedMetrics {
                        paper_accuracy: if base_is_paper { Some(base_metrics.accuracy) } else { base_metrics.paper_accuracy },
                        best_step: 0,
                        selection_score: named.selection_score,
                        match_seconds: seconds,
                        ..base_metrics.clone()
                    }
                    .with_classifier_predictions(&predictions, labels, self.prior.n_classes());
                    Some(SeedMetrics { initial_accuracy: metrics.accuracy, ..metrics })
                }
                _ => None,
            };
            let record = SeedRecord {
                naming_chain: vec![NamingKind::Person],
                selection_score: named.selection_score,
                best_step: 0,
                class_of: named.class_of.clone(),
                // The trust score judges names by the geometry's posterior; a person's names
                // are not the geometry's guess (the geometry's own trust stays in naming_trust).
                classifier_trust: None,
                match_seconds: seconds,
                metrics,
                person: Some(PersonRecord { named_seed: namer.named_seed(), names: names.clone(), reference_of: aligned.reference_of, alignment: aligned.alignment, cluster_sizes: clusters.cluster_sizes() }),
                reused: false,
                ..base_record.clone()
            };
            io::write_json_atomic(&record_path, &record)?;
            status("Seed", &seed_line(&record), self.quiet);
            records.push(record);
        }
        Ok(records)
    }

    /// Figure 4B's second classifier: the paper's stage III with the plain Sinkhorn loss L_sk on
    /// `record`'s clusters, from the same start as the L_cgsk classifier it is compared with,
    /// into `layout.sk(seed)` (reused when present).
    pub fn sk_classifier(&self, data: &FeatureData, layout: &SeedsLayout, record: &SeedRecord) -> Result<PathBuf> {
        let seed = record.seed;
        let path = layout.sk_classifier(seed);
        if path.exists() {
            return Ok(path);
        }
        let clusters = load_clusters(layout, seed, &data.train)?;
        let mut sk = self.settings.paper_naming();
        sk.stage3.loss = MatchingLoss::Sk;
        let namer = sk.namer(NamingKind::Stage3)?;
        let ctx = self.context(data, &clusters);
        let start = (self.settings.naming.chain == [NamingKind::Geometry, NamingKind::Stage3]).then_some(record.naming_class_of.as_slice());
        let mut log = JsonLines::create(&layout.sk_train_log(seed))?;
        let named = self.name_with(namer.as_ref(), &ctx, start, seed, "sk", &mut log)?;
        named.classifier.save(&path)?;
        Ok(path)
    }
}

/// Writes a seed's classifier(s), clusters and test predictions.
fn save_seed(layout: &SeedsLayout, run: &SeedRun) -> Result<()> {
    let seed = run.seed;
    run.named.classifier.save(&layout.classifier(seed))?;
    if let Some(paper) = &run.paper {
        paper.classifier.save(&layout.paper_classifier(seed))?;
    }
    let assignments = Tensor::from_slice(&run.clusters.assignments);
    let head = run.clusters.head.as_ref().map(|h| h.named_tensors()).unwrap_or_default();
    let mut tensors = vec![("centroids", run.clusters.centres()), ("member_means", &run.clusters.member_means), ("assignments", &assignments)];
    if let Some(learned) = &run.clusters.learned_centres {
        tensors.push(("learned_centres", learned));
    }
    tensors.extend(head.iter().map(|(name, t)| (name.as_str(), *t)));
    io::write_safetensors_atomic(&layout.clusters(seed), &tensors)?;
    crate::data::npy::write_npy_i64(&layout.test_predictions(seed), &[run.test_predictions.len()], &run.test_predictions)
}

fn seed_record(run: &SeedRun, chain: &[NamingKind], metrics: Option<SeedMetrics>) -> SeedRecord {
    let geometry = run.geometry.geometry.as_ref();
    SeedRecord {
        seed: run.seed,
        naming_chain: chain.to_vec(),
        selection_score: run.named.selection_score,
        best_step: run.named.best_step,
        class_of: run.named.class_of.clone(),
        naming_class_of: run.geometry.class_of.clone(),
        naming_score: geometry.map_or(f64::NAN, |g| g.solution.score),
        naming_second_score: geometry.and_then(|g| g.solution.second_score),
        naming_optimality: geometry.map(|g| g.solution.optimality),
        naming_interchangeable: geometry.map(|g| g.interchangeable.clone()).unwrap_or_default(),
        naming_trust: geometry.map(|g| g.trust_of(&g.solution.class_of)),
        classifier_trust: geometry.map(|g| g.trust_of(&run.named.class_of)),
        kmeans_fallback: run.kmeans_fallback,
        cluster_seconds: run.cluster_seconds,
        match_seconds: run.match_seconds,
        metrics,
        person: None,
        reused: false,
    }
}

fn seed_line(record: &SeedRecord) -> String {
    let seed = record.seed;
    let mut trust = record.classifier_trust.as_ref().map(|t| format!(", names {} (support {:.2})", if t.trusted { "trusted" } else { "NOT trusted" }, t.verdict_support())).unwrap_or_default();
    if let Some(ratio) = record.kmeans_fallback {
        trust += &format!(", k-means clusters (Sinkhorn's were {ratio:.1}:1 in size)");
    }
    if let Some(p) = &record.person {
        trust = match p.named_seed == seed {
            true => ", named by a person".into(),
            false => format!(", named by a person via seed {} (alignment cosine {:.2})", p.named_seed, p.alignment),
        };
    }
    match &record.metrics {
        Some(m) => format!(
            "seed {seed}: accuracy {:.1}% (random fC {:.1}%, naming alone {:.1}%{}, clusters matched {:.1}%){trust}, best step {}, {:.1}s + {:.1}s",
            100.0 * m.accuracy,
            100.0 * m.random_baseline_accuracy,
            100.0 * m.naming_accuracy,
            m.paper_accuracy.map(|a| format!(", paper's stage III {:.1}%", 100.0 * a)).unwrap_or_default(),
            100.0 * m.cluster_hungarian_accuracy,
            record.best_step,
            record.cluster_seconds,
            record.match_seconds
        ),
        None => format!("seed {seed}: done{trust} (no test labels, accuracy not measured)"),
    }
}

pub fn read_seed_record(path: &std::path::Path) -> Result<SeedRecord> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut record: SeedRecord = serde_json::from_str(&text).map_err(|e| Error::format(path, format!("unreadable seed record: {e}")))?;
    record.reused = true;
    Ok(record)
}

/// Per-seed metrics against the test labels (the only place a seed's labels are read).
pub fn evaluate(run: &SeedRun, test: &Tensor, labels: &[i64], n_classes: usize) -> SeedMetrics {
    let k = run.clusters.n_clusters();
    let accuracy_of = |pred: &[i64]| eval::classification_report(pred, labels, n_classes).accuracy;
    let initial_pred = run.named.initial.predict(&test.to_device(tch::Device::Cpu));
    let report = eval::classification_report(&run.test_predictions, labels, n_classes);
    SeedMetrics {
        seed: run.seed,
        accuracy: report.accuracy,
        random_baseline_accuracy: eval::random_baseline(test, labels, n_classes, run.seed),
        cluster_hungarian_accuracy: eval::hungarian_accuracy(&run.test_clusters, labels, k, n_classes),
        cluster_nmi: eval::nmi(&run.test_clusters, labels, k, n_classes),
        cluster_ari: eval::ari(&run.test_clusters, labels, k, n_classes),
        classifier_hungarian_accuracy: eval::hungarian_accuracy(&run.test_predictions, labels, n_classes, n_classes),
        classifier_nmi: eval::nmi(&run.test_predictions, labels, n_classes, n_classes),
        classifier_ari: eval::ari(&run.test_predictions, labels, n_classes, n_classes),
        initial_accuracy: accuracy_of(&initial_pred),
        naming_accuracy: accuracy_of(&run.naming_predictions),
        naming_gap: run.geometry.geometry.as_ref().and_then(|g| g.solution.second_score.map(|s| g.solution.score - s)),
        paper_accuracy: run.paper_predictions.as_deref().map(accuracy_of),
        best_step: run.named.best_step,
        selection_score: run.named.selection_score,
        cluster_seconds: run.cluster_seconds,
        match_seconds: run.match_seconds,
        report,
    }
}

/// The stage II result of a seed saved by `run_seeds` (centres on the CPU, member means
/// recomputed from `train` for files written before they were saved, the cluster head where the
/// method learned one, so that `predict` assigns new samples as the run did).
pub fn load_clusters(layout: &SeedsLayout, seed: u64, train: &Tensor) -> Result<Clusters> {
    let path = layout.clusters(seed);
    let tensors = Tensor::read_safetensors(&path).map_err(|e| Error::format(&path, format!("not a clusters file: {e}")))?;
    let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone());
    let (Some(assignments), Some(centroids)) = (get("assignments"), get("centroids")) else {
        return Err(Error::format(&path, "no centroids/assignments tensors"));
    };
    let assignments = Vec::<i64>::try_from(&assignments)?;
    // Files written before member means were saved hold the learned centres as `centroids`.
    let learned = get("learned_centres").or_else(|| get("member_means").is_none().then_some(centroids));
    let mut clusters = Clusters::new(&train.to_device(tch::Device::Cpu), assignments, learned, vec![])?;
    clusters.head = crate::clustering::ClusterHead::from_named(get);
    Ok(clusters)
}

/// Loads a classifier saved by `run_seeds`.
pub fn load_classifier(layout: &SeedsLayout, seed: u64) -> Result<Classifier> {
    Classifier::load(&layout.classifier(seed))
}

/// The seed whose classifier `predict` uses: among the seeds whose names the jury trusts where
/// there are any, the lowest label-free selection score (scores of different clusterings are
/// not comparable, trust is).
pub fn selected_seed(records: &[SeedRecord]) -> Option<&SeedRecord> {
    records.iter().min_by(|a, b| names_trusted(b).cmp(&names_trusted(a)).then(a.selection_score.total_cmp(&b.selection_score)))
}

fn names_trusted(record: &SeedRecord) -> bool {
    record.classifier_trust.as_ref().is_some_and(|t| t.trusted)
}

/// Which naming produced a classifier, for reports.
pub fn describe_naming(settings: &NamingSettings) -> String {
    settings.describe()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A geometry-chain record with this selection score and, where given, the jury's verdict.
    fn record(seed: u64, selection_score: f64, trusted: Option<bool>) -> SeedRecord {
        let trust = trusted.map(|t| serde_json::json!({"z": 3.0, "mean_posterior": 0.5, "posterior": [0.5, 0.5], "near_ties": [], "trusted": t, "threshold": 0.8}));
        serde_json::from_value(serde_json::json!({
            "seed": seed, "naming_chain": ["geometry"], "selection_score": selection_score, "best_step": 0,
            "class_of": [0, 1], "naming_class_of": [0, 1], "naming_score": -selection_score, "naming_interchangeable": [],
            "classifier_trust": trust, "cluster_seconds": 0.0, "match_seconds": 0.0,
        }))
        .unwrap()
    }

    #[test]
    fn the_selected_seed_is_a_trusted_one_where_there_is_one() {
        // Without a verdict (or with none trusted) the lowest selection score wins.
        assert_eq!(selected_seed(&[record(0, -3.0, None), record(1, -5.0, None)]).unwrap().seed, 1);
        assert_eq!(selected_seed(&[record(0, -3.0, Some(false)), record(1, -5.0, Some(false))]).unwrap().seed, 1);
        // A trusted seed comes first, whatever the scores of the others.
        assert_eq!(selected_seed(&[record(0, -3.0, Some(true)), record(1, -5.0, Some(false))]).unwrap().seed, 0);
        assert_eq!(selected_seed(&[record(0, -3.0, Some(true)), record(1, -5.0, Some(false)), record(2, -4.0, Some(true))]).unwrap().seed, 2);
        assert!(selected_seed(&[]).is_none());
    }
}
