//! The run report: `report.md` with the results, the paper's Figure 4 and the naming confidence,
//! and PNG plots in `plots/`. It renders the [`ReportData`] it is handed: it reads no files and
//! computes nothing (the run gathers the data, [`crate::diagnostics`] does the label-using maths).
use crate::backbone::simclr::CheckpointMeta;
use crate::config::{value_name, RunConfig};
use crate::diagnostics::{ClusterPredictions, Figure4a};
use crate::eval::{SeedMetrics, Summary};
use crate::orchestrator::SeedRecord;
use crate::plot::{self, Font, Series, PALETTE};
use crate::run::manifest::StageRecord;
use anyhow::Result;
use std::fmt::Write;
use std::path::Path;

/// Everything the report shows.
pub struct ReportData<'a> {
    pub config: &'a RunConfig,
    pub class_names: &'a [String],
    /// The backbone checkpoint's metadata: the values stage I resolved.
    pub backbone: Option<&'a CheckpointMeta>,
    /// Where the features came from when not from this run's SimCLR stage I (a TorchScript
    /// model, imported files), in words: replaces the stage-I sentence.
    pub features_from: Option<String>,
    /// Which naming produced the classifier, in words.
    pub naming: String,
    /// True where the classifier is the paper's stage III.
    pub naming_is_paper: bool,
    pub records: &'a [SeedRecord],
    pub summary: Option<&'a Summary>,
    /// The seed `predict` uses (lowest label-free selection score, trusted names first).
    pub selected_seed: u64,
    pub stages: &'a [StageRecord],
    pub curves: Curves,
    /// Label-using diagnostics of the selected seed, where the test split has labels.
    pub figure_4a: Option<Figure4a>,
    /// Figure 4B, where an L_sk classifier was trained beside the chain's stage III.
    pub figure_4b: Option<Vec<ClusterPredictions>>,
    /// The geometry naming of the true classes' centres (label-using diagnostic).
    pub oracle: Option<crate::diagnostics::OracleNaming>,
    /// The geometry naming's kernel, in words.
    pub naming_kernel: String,
    /// The seeds' geometry names voted, where the run had several seeds.
    pub consensus: Option<&'a crate::naming::consensus::ConsensusRun>,
}

/// Training curves as (x, y) points.
#[derive(Default)]
pub struct Curves {
    pub pretrain_loss: Vec<(f64, f64)>,
    pub knn_accuracy: Vec<(f64, f64)>,
    /// Per seed: stage II's OT cost and stage III's windowed loss against the step.
    pub clustering: Vec<(u64, Vec<(f64, f64)>)>,
    pub matching: Vec<(u64, Vec<(f64, f64)>)>,
    /// Stage I's last epoch: loss, images/s, kNN accuracy.
    pub last_epoch: Option<(f64, f64, Option<f64>)>,
}

/// The results table of `match` and `run`.
pub fn summary_text(class_names: &[String], naming: &str, s: &Summary, seeds: &[SeedMetrics]) -> String {
    let c = class_names.len();
    let mut t = String::new();
    let _ = writeln!(t, "# Zero-label classification ({} seed(s))\n", s.accuracy.n);
    let _ = writeln!(t, "Classifier: {naming}.\n");
    let _ = writeln!(t, "| metric | mean ± std (%) |\n| --- | --- |");
    let _ = writeln!(t, "| zero-label accuracy (argmax of the classifier, no matching); classifier: {naming} | {} |", s.accuracy);
    if let Some(paper) = &s.paper_accuracy {
        let _ = writeln!(t, "| the paper's stage III on the same clusters | {paper} |");
    }
    if let Some(voted) = &s.consensus_accuracy {
        let _ = writeln!(t, "| names voted over the seeds (each seed's clusters under the consensus names) | {voted} |");
    }
    let _ = writeln!(t, "| Random baseline (random fC) | {} |", s.random_baseline);
    let _ = writeln!(t, "| classifier at initialisation (before training) | {} |", s.initial_accuracy);
    let _ = writeln!(t, "| naming by geometry alone (beyond the paper; nearest centroid -> named cluster) | {} |", s.naming_accuracy);
    let _ = writeln!(t, "| clusters, Hungarian-matched (reference; ceiling for naming) | {} |", s.cluster_hungarian_accuracy);
    let _ = writeln!(t, "| classifier, Hungarian-matched (reference) | {} |", s.classifier_hungarian_accuracy);
    let _ = writeln!(t, "| cluster NMI | {} |", s.cluster_nmi);
    let _ = writeln!(t, "| cluster ARI | {} |", s.cluster_ari);
    let _ = writeln!(t, "\nSeeds whose classifier predicts all {c} classes: {}/{}", s.seeds_without_collapse, s.accuracy.n);
    let _ = writeln!(t, "Per seed accuracy (%): {}", seeds.iter().map(|m| format!("{:.1}", 100.0 * m.accuracy)).collect::<Vec<_>>().join(", "));
    if let Some(last) = seeds.last() {
        let _ = writeln!(t, "\nPer-class accuracy, seed {} (%):", last.seed);
        for (name, acc) in class_names.iter().zip(&last.report.per_class_accuracy) {
            let _ = writeln!(t, "- {name}: {:.1}", 100.0 * acc);
        }
    }
    t
}

/// Where the report is written, and the font of its plots (None: plots are skipped, noted).
struct Canvas<'a> {
    plots: &'a Path,
    font: Option<Font>,
    md: String,
    notes: Vec<String>,
}

impl Canvas<'_> {
    fn save(&self, image: &image::RgbImage, name: &str) -> Result<()> {
        Ok(plot::save_png(image, &self.plots.join(format!("{name}.png")))?)
    }
}

/// Writes `report.md` (at `report_path`) and `plots/*.png`; returns notes on what could not
/// be drawn.
pub fn write_report(r: &ReportData, report_path: &Path, plots: &Path) -> Result<Vec<String>> {
    let (font, mut notes) = match Font::find() {
        Ok(f) => (Some(f), vec![]),
        Err(e) => (None, vec![format!("plots not drawn: {e}")]),
    };
    notes.extend(r.figure_4a.is_none().then(|| "no test labels: confusion matrix, accuracy across seeds and Figure 4A are not drawn".to_string()));
    let mut canvas = Canvas { plots, font, md: String::new(), notes };
    header(&mut canvas, r);
    results(&mut canvas, r);
    person(&mut canvas, r);
    stages(&mut canvas, r);
    curves(&mut canvas, r)?;
    confusion_and_seeds(&mut canvas, r)?;
    figure_4a(&mut canvas, r)?;
    figure_4b(&mut canvas, r)?;
    naming(&mut canvas, r);
    files(&mut canvas);
    crate::io::write_atomic(report_path, canvas.md.as_bytes())?;
    Ok(canvas.notes)
}

fn header(canvas: &mut Canvas, r: &ReportData) {
    let (cfg, md) = (r.config, &mut canvas.md);
    let _ = writeln!(md, "# zerolabel run: {}\n", cfg.name);
    if !cfg.description.is_empty() {
        let _ = writeln!(md, "{}\n", cfg.description);
    }
    let p = &cfg.pretrain;
    // The values training resolved (precision "auto" -> fp32 or bf16).
    let resolved = r.backbone.map(|m| {
        format!(
            ", {} precision, crop scale {}-{}, temperature {}, lr {} ({})",
            value_name(&m.params.precision),
            m.params.augment.crop_scale.0,
            m.params.augment.crop_scale.1,
            m.params.temperature,
            m.params.learning_rate,
            value_name(&m.params.lr_schedule)
        )
    });
    let data = match &cfg.data {
        Some(d) => format!("Data: {} at `{}`{}. ", value_name(&d.format), d.data.display(), d.limit.map(|n| format!(" (first {n} images of each split)")).unwrap_or_default()),
        None => String::new(),
    };
    let ordinal = if cfg.classes.ordinal { " Ordinal prior (class order)." } else { "" };
    if let Some(source) = &r.features_from {
        let _ = writeln!(md, "{data}Features from {source}. Classes ({}): {}.{ordinal}\n", r.class_names.len(), r.class_names.join(", "));
        let _ = writeln!(md, "No image-label pair was used for clustering or model selection; labels are read only below, to measure.\n");
        return;
    }
    let _ = writeln!(
        md,
        "{data}Backbone: {} width {} trained with SimCLR for {} epoch(s) (batch {}, seed {}{}). Classes ({}): {}.{ordinal}\n",
        value_name(&p.arch),
        p.width,
        p.epochs,
        p.batch_size,
        p.seed,
        resolved.unwrap_or_default(),
        r.class_names.len(),
        r.class_names.join(", "),
    );
    let _ = writeln!(md, "No image-label pair was used for training, clustering or model selection; labels are read only below, to measure.\n");
}

fn results(canvas: &mut Canvas, r: &ReportData) {
    let md = &mut canvas.md;
    match r.summary {
        Some(s) => {
            let metrics: Vec<SeedMetrics> = r.records.iter().filter_map(|x| x.metrics.clone()).collect();
            md.push_str(&summary_text(r.class_names, &r.naming, s, &metrics).replacen("# ", "## ", 1));
        }
        None => md.push_str("## Results\n\nThe dataset has no test labels: accuracy is not measured.\n"),
    }
    let choice = if r.naming_is_paper {
        "the lowest stage-III training loss"
    } else if r.records.iter().any(|x| x.person.is_some()) {
        "the clusters the person named"
    } else {
        "the best label-free selection score of its naming"
    };
    let _ = writeln!(md, "\nThe classifier `zerolabel predict` uses is seed {}'s ({}), the seed with {choice} (a label-free choice; seeds whose names the jury trusts come first).\n", r.selected_seed, r.naming);
}

/// Naming by a person: the names given to the named seed's clusters beside the geometry's
/// proposals, and how every other seed's clusters were aligned to them.
fn person(canvas: &mut Canvas, r: &ReportData) {
    let Some(named) = r.records.iter().find_map(|x| x.person.as_ref().filter(|p| p.named_seed == x.seed).map(|p| (x, p))) else { return };
    let (record, p) = named;
    let (names, md) = (r.class_names, &mut canvas.md);
    let _ = writeln!(md, "## Named by a person\n");
    let _ = writeln!(md, "The classifier was named by a person from the cluster sheets (`zerolabel clusters`): {} decisions on seed {}'s clusters, no image label. A test image gets the name of its nearest cluster centre (member mean).\n", p.names.len(), p.named_seed);
    let _ = writeln!(md, "| cluster | training members | named by the person | geometry proposed (posterior) |\n| --- | --- | --- | --- |");
    for (k, name) in p.names.iter().enumerate() {
        let proposed = record.naming_class_of.get(k).map(|&c| names[c].clone()).unwrap_or("-".into());
        let posterior = record.naming_trust.as_ref().and_then(|t| t.posterior.get(k)).map(|v| format!(" ({v:.2})")).unwrap_or_default();
        let _ = writeln!(md, "| {k} | {} | {name} | {proposed}{posterior} |", p.cluster_sizes.get(k).copied().unwrap_or(0));
    }
    let others: Vec<String> = r.records.iter().filter_map(|x| x.person.as_ref().filter(|q| q.named_seed != x.seed).map(|q| format!("seed {} {:.3}", x.seed, q.alignment))).collect();
    if !others.is_empty() {
        let _ = writeln!(md, "\nThe other seeds' clusters took the names of the named clusters they align to (Hungarian assignment on the cosine similarity of member means); mean cosine of the aligned pairs: {}.", others.join(", "));
    }
    let _ = writeln!(md, "\nThe paper's stage III and the geometry naming on the same clusters are reported beside it above.\n");
}

fn stages(canvas: &mut Canvas, r: &ReportData) {
    let md = &mut canvas.md;
    let _ = writeln!(md, "## Stages\n\n| stage | folder | reused | wall time (s) | peak memory (MiB) |\n| --- | --- | --- | --- | --- |");
    for s in r.stages {
        let memory = s.peak_rss_mb.map(|m| format!("{m:.0}")).unwrap_or("-".into());
        let _ = writeln!(md, "| {} | `{}` | {} | {:.1} | {memory} |", s.name, s.dir.display(), if s.reused { "yes" } else { "no" }, s.wall_s);
    }
    let _ = writeln!(md, "\n(For a reused stage, the time and memory are those of the run that computed it.)\n");
}

fn per_seed_series(curves: &[(u64, Vec<(f64, f64)>)]) -> Vec<Series> {
    curves.iter().enumerate().map(|(k, (seed, points))| Series { name: format!("seed {seed}"), points: points.clone(), color: PALETTE[k % PALETTE.len()] }).collect()
}

fn curves(canvas: &mut Canvas, r: &ReportData) -> Result<()> {
    let _ = writeln!(canvas.md, "## Training curves\n");
    let c = &r.curves;
    if let Some(font) = &canvas.font {
        let loss = Series { name: "SimCLR loss".into(), points: c.pretrain_loss.clone(), color: PALETTE[0] };
        let knn = Series { name: "kNN accuracy".into(), points: c.knn_accuracy.clone(), color: PALETTE[1] };
        let mut panels = vec![plot::line_chart(font, "Stage I: SimCLR training loss", "epoch", "NT-Xent loss", &[loss], 520, 340)];
        if !knn.points.is_empty() {
            panels.push(plot::line_chart(font, "Stage I: kNN accuracy (k = 200, labels used only here)", "epoch", "accuracy", &[knn], 520, 340));
        }
        // Without a stage I here (a pretrained model, imported features): no stage-I curves.
        if !c.pretrain_loss.is_empty() {
            canvas.save(&plot::hstack(&panels), "loss_pretrain")?;
            let _ = writeln!(canvas.md, "![stage I](plots/loss_pretrain.png)\n");
        }
        let (title, y_label) = match r.config.stages.clustering {
            crate::clustering::ClusteringKind::Sinkhorn => ("Stage II: Sinkhorn clustering OT cost", "OT cost"),
            crate::clustering::ClusteringKind::Kmeans => ("Stage II: k-means inertia", "inertia"),
            crate::clustering::ClusteringKind::Scan => ("Stage II: SCAN loss", "loss"),
        };
        canvas.save(&plot::line_chart(font, title, "step", y_label, &per_seed_series(&c.clustering), 640, 360), "loss_clustering")?;
        canvas.save(&plot::line_chart(font, "Stage III: L_cgsk (mean over the selection window)", "step", "loss", &per_seed_series(&c.matching), 640, 360), "loss_matching")?;
        let _ = writeln!(canvas.md, "![stage II](plots/loss_clustering.png)\n\n![stage III](plots/loss_matching.png)\n");
    }
    if let Some((loss, rate, knn)) = c.last_epoch {
        let knn = knn.map(|a| format!(", kNN accuracy {:.1}%", 100.0 * a)).unwrap_or_default();
        let _ = writeln!(canvas.md, "Stage I, last epoch: loss {loss:.4}, {rate:.0} images/s{knn}.\n");
    }
    Ok(())
}

fn confusion_and_seeds(canvas: &mut Canvas, r: &ReportData) -> Result<()> {
    let (Some(summary), Some(metrics)) = (r.summary, r.records.iter().find(|x| x.seed == r.selected_seed).and_then(|x| x.metrics.as_ref())) else {
        return Ok(());
    };
    let (names, c) = (r.class_names, r.class_names.len());
    let _ = writeln!(canvas.md, "## Confusion matrix (seed {}, test set)\n", r.selected_seed);
    if let Some(font) = &canvas.font {
        let conf = &metrics.report.confusion;
        let cells: Vec<Vec<String>> = conf.iter().map(|row| row.iter().map(|v| v.to_string()).collect()).collect();
        let cell = if c <= 12 { 46.0 } else if c <= 25 { 26.0 } else { 10.0 };
        let title = format!("Confusion matrix, seed {} (rows: true class, share of the row)", r.selected_seed);
        let img = plot::heatmap(font, &title, "true class", "predicted class", names, names, &crate::diagnostics::row_shares(conf), false, (c <= 25).then_some(&cells[..]), cell);
        canvas.save(&img, "confusion")?;
        let _ = writeln!(canvas.md, "![confusion matrix](plots/confusion.png)\n");
    }
    let _ = writeln!(canvas.md, "Accuracy {:.1}%; {} of {c} classes predicted at least once.\n", 100.0 * metrics.accuracy, metrics.report.predicted_classes);
    if let Some(font) = &canvas.font {
        let seeds: Vec<&SeedMetrics> = r.records.iter().filter_map(|x| x.metrics.as_ref()).collect();
        let cats: Vec<String> = seeds.iter().map(|m| format!("seed {}", m.seed)).collect();
        let pct = |f: fn(&SeedMetrics) -> f64| seeds.iter().map(|m| 100.0 * f(m)).collect::<Vec<f64>>();
        let mut series = vec![(format!("zero-label ({})", if r.naming_is_paper { "stage III" } else { "ours" }), pct(|m| m.accuracy))];
        if summary.paper_accuracy.is_some() {
            series.push(("the paper's stage III".into(), pct(|m| m.paper_accuracy.unwrap_or(0.0))));
        }
        series.push(("Random fC".into(), pct(|m| m.random_baseline_accuracy)));
        series.push(("naming by geometry alone".into(), pct(|m| m.naming_accuracy)));
        let refs = vec![
            ("clusters Hungarian-matched (ceiling for naming)".to_string(), 100.0 * summary.cluster_hungarian_accuracy.mean, plot::BLACK),
            ("chance".to_string(), 100.0 / c as f64, plot::GREY),
        ];
        let img = plot::bar_chart(font, "Accuracy across seeds (%)", "accuracy (%)", &cats, &series, Some((0.0, 100.0)), &refs, (140 + 90 * cats.len()).max(620) as u32, 380);
        canvas.save(&img, "accuracy_seeds")?;
        let _ = writeln!(canvas.md, "## Accuracy across seeds\n\n![accuracy across seeds](plots/accuracy_seeds.png)\n");
    }
    Ok(())
}

fn figure_4a(canvas: &mut Canvas, r: &ReportData) -> Result<()> {
    let Some(fig) = &r.figure_4a else { return Ok(()) };
    let (names, c) = (r.class_names, r.class_names.len());
    let md = &mut canvas.md;
    let _ = writeln!(md, "## Figure 4A: mean logit vector per true class vs the prior (seed {})\n", r.selected_seed);
    let _ = writeln!(md, "| true class | prior: nearest | logits: highest other | prior: farthest | logits: lowest |\n| --- | --- | --- | --- | --- |");
    for row in &fig.rows {
        let _ = writeln!(md, "| {} | {} | {} | {} | {} |", names[row.class], names[row.prior_nearest], names[row.logits_nearest], names[row.prior_farthest], names[row.logits_farthest]);
    }
    let _ = writeln!(md, "\nThe learned logits agree with the prior's nearest class for {}/{c} classes and with its farthest for {}/{c}.\n", fig.nearest_agree, fig.farthest_agree);
    if let Some(font) = &canvas.font {
        let cell = if c <= 12 { 40.0 } else if c <= 25 { 24.0 } else { 9.0 };
        let left = plot::heatmap(font, "Prior: class-name similarity (row z-scores)", "class", "class", names, names, &fig.prior_z, true, None, cell);
        let right = plot::heatmap(font, "Learned: mean logits per true class (row z-scores)", "true class", "logit of class", names, names, &fig.logits_z, true, None, cell);
        canvas.save(&plot::hstack(&[left, right]), "figure4a")?;
        let _ = writeln!(canvas.md, "![Figure 4A](plots/figure4a.png)\n");
    }
    Ok(())
}

fn top_class(names: &[String], shares: &[f64]) -> String {
    let t = (0..shares.len()).max_by(|&a, &b| shares[a].total_cmp(&shares[b])).unwrap_or(0);
    format!("{} ({:.0}%)", names[t], 100.0 * shares[t])
}

fn figure_4b(canvas: &mut Canvas, r: &ReportData) -> Result<()> {
    let Some(clusters) = &r.figure_4b else {
        canvas.notes.push(if r.config.report.sk_comparison { "Figure 4B skipped (no stage III was trained: the naming chain has none and the paper's reference is off)" } else { "Figure 4B skipped ([report] sk_comparison = false)" }.into());
        return Ok(());
    };
    let names = r.class_names;
    let _ = writeln!(canvas.md, "## Figure 4B: predicted classes within clusters, L_sk vs L_cgsk (seed {})\n", r.selected_seed);
    let _ = writeln!(canvas.md, "| cluster (test members) | L_sk: top class (share) | L_cgsk: top class (share) |\n| --- | --- | --- |");
    let mut panels = Vec::new();
    for cp in clusters {
        let _ = writeln!(canvas.md, "| {} ({}) | {} | {} |", cp.cluster, cp.test_members, top_class(names, &cp.sk), top_class(names, &cp.cgsk));
        if let Some(font) = &canvas.font {
            let title = format!("Cluster {} ({} test images)", cp.cluster, cp.test_members);
            panels.push(plot::bar_chart(font, &title, "share of the cluster", names, &[("L_sk".into(), cp.sk.clone()), ("L_cgsk".into(), cp.cgsk.clone())], Some((0.0, 1.0)), &[], 520, 340));
        }
    }
    let _ = writeln!(canvas.md, "\nUnder L_cgsk the members of a cluster should share one predicted class; under L_sk they may spread.\n");
    if !panels.is_empty() {
        let rows: Vec<_> = panels.chunks(2).map(plot::hstack).collect();
        canvas.save(&plot::vstack(&rows), "figure4b")?;
        let _ = writeln!(canvas.md, "![Figure 4B](plots/figure4b.png)\n");
    }
    Ok(())
}

/// Whether the selected classifier's names can be trusted, in one sentence for the summary.
pub fn trust_sentence(record: &SeedRecord, names: &[String]) -> Option<String> {
    let t = record.classifier_trust.as_ref()?;
    let ties: Vec<String> = t.near_ties.iter().map(|g| g.iter().map(|&k| names[k].as_str()).collect::<Vec<_>>().join(" / ")).collect();
    let mut ties = if ties.is_empty() { String::new() } else { format!("; classes the geometry cannot tell apart: {}", ties.join(", ")) };
    if t.reverse_fits_equally {
        ties += "; the classes are ordered, and the clusters fit their order read backwards as well as forwards, so the direction is a guess (unequal class proportions compared with the cluster sizes, --class-proportions with --naming-size-weight, or a person naming one end from the cluster sheets can settle it)";
    }
    let jury = kernel_support_text(t);
    Some(if t.trusted {
        format!("Names trusted: every kernel's posterior gives the classifier's names a mean probability of at least {:.2} (threshold {:.2}; {jury}; z = {:.1}){ties}", t.verdict_support(), t.threshold, t.z)
    } else if t.too_few_classes {
        format!(
            "Names NOT to be trusted: with {} classes the clusters' few pairwise similarities fit some naming closely by chance, whatever the clusters are, so the geometry cannot vouch for names (support {:.2}; {jury}; z = {:.1}){ties}. Inspect the clusters and name them yourself",
            t.posterior.len(), t.verdict_support(), t.z
        )
    } else {
        format!(
            "Names NOT to be trusted: the most sceptical kernel's posterior gives the classifier's names a mean probability of only {:.2} (threshold {:.2}; {jury}; z = {:.1}){ties}. The clusters may still be good; inspect them and name them yourself",
            t.verdict_support(), t.threshold, t.z
        )
    })
}

/// What stage II did about cluster sizes, in one sentence for the summary: where k-means
/// clusters replaced the Sinkhorn clusters of the seed, that and why; else, where untrusted
/// names come from clusters of very unequal sizes made by a method that learns equal-sized
/// ones, that k-means was tried (`kmeans_fallback`) or a pointer to it; None otherwise.
pub fn cluster_sizes_sentence(record: &SeedRecord, stages: &crate::config::StageArgs) -> Option<String> {
    if let Some(ratio) = record.kmeans_fallback {
        let why = match ratio >= crate::clustering::UNEQUAL_SIZES_RATIO {
            true => format!("the Sinkhorn clusters' sizes differed up to {ratio:.1}:1, a sign of unbalanced classes, which Sinkhorn clustering learns as equal ones"),
            false => format!("the jury did not trust the names of the Sinkhorn clusters (sizes up to {ratio:.1}:1), which are learned as clusters of equal sizes; classes of unequal sizes are split and merged by them"),
        };
        return Some(format!("Stage II: k-means clusters, not Sinkhorn's: {why}; the jury trusts the names of the k-means clusters of the same features (--no-kmeans-fallback keeps Sinkhorn's)"));
    }
    unequal_sizes_sentence(record.classifier_trust.as_ref()?, stages.clustering, stages.kmeans_fallback)
}

/// Untrusted names of clusters of very unequal sizes from a method that learns equal-sized ones.
fn unequal_sizes_sentence(trust: &crate::naming::NameTrust, clustering: crate::clustering::ClusteringKind, kmeans_fallback: bool) -> Option<String> {
    if trust.trusted || !clustering.learns_equal_sizes() || trust.cluster_size_ratio < crate::clustering::UNEQUAL_SIZES_RATIO {
        return None;
    }
    let ratio = trust.cluster_size_ratio;
    Some(match kmeans_fallback {
        true => format!("The clusters' sizes differ up to {ratio:.1}:1, a sign of unbalanced classes, which Sinkhorn clustering learns as equal ones; k-means clusters of the same features were tried, and the jury did not trust their names either"),
        false => format!("The clusters' sizes differ up to {ratio:.1}:1, while Sinkhorn clustering learns its centroids for clusters of equal sizes: if the classes are unbalanced, k-means (clustering = \"kmeans\", or --clustering kmeans) may separate them better"),
    })
}

/// Whether the branch and bound proved the geometry naming optimal, in one sentence for the
/// summary; None where every naming was enumerated (c <= 10 by default) or nothing was named.
pub fn optimality_sentence(record: &SeedRecord, n_classes: usize) -> Option<String> {
    use crate::naming::qap::Optimality;
    let optimality = record.naming_optimality?;
    let text = optimality.describe(n_classes, record.naming_score);
    match optimality {
        Optimality::Enumerated => None,
        Optimality::Certified { .. } => Some(format!("Naming by geometry: {text}")),
        Optimality::Bounded { .. } | Optimality::Unknown => Some(format!("Naming by geometry: {text}; a better naming may exist (--naming-time-limit, or [stages] naming_time_limit, gives the search more time)")),
    }
}

/// "centred-cosine 0.62, centred-rank 0.21, ..." (the naming kernel first).
fn kernel_support_text(t: &crate::naming::NameTrust) -> String {
    if t.support_by_kernel.is_empty() {
        return format!("posterior {:.2}", t.mean_posterior);
    }
    t.support_by_kernel.iter().map(|(k, s)| format!("{} {s:.2}", k.name())).collect::<Vec<_>>().join(", ")
}

fn naming(canvas: &mut Canvas, r: &ReportData) {
    let (names, md) = (r.class_names, &mut canvas.md);
    let _ = writeln!(md, "## Can the names be trusted? Naming the clusters by geometry (beyond the paper)\n");
    let _ = writeln!(md, "The geometry naming assigns class names to clusters by matching the clusters' similarity matrix (member means, {}) to the class vectors' (a quadratic assignment problem). Its label-free alignment score: z, how far a naming's objective stands above random namings (in standard deviations of 10,000 random permutations); posterior, the mean probability of its names under a Gibbs posterior over all namings (the expected share of clusters named right if the geometry is to be believed). Names are trusted when that posterior averages at least the threshold under every judging kernel (the naming's own and the other kernels invariant to rotation, scale and offset): support, the least of those averages.\n", r.naming_kernel);
    let _ = writeln!(md, "| seed | geometry: z | geometry: posterior | classifier's names: posterior | classifier's names: support | trusted | gap to runner-up | geometry naming optimal? | naming accuracy (%) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for x in r.records {
        let gap = x.naming_second_score.map(|s| format!("{:.3}", x.naming_score - s)).unwrap_or("- (approximate solver)".into());
        let acc = x.metrics.as_ref().map(|m| format!("{:.1}", 100.0 * m.naming_accuracy)).unwrap_or("-".into());
        let (z, own) = x.naming_trust.as_ref().map_or(("-".into(), "-".into()), |t| (format!("{:.1}", t.z), format!("{:.2}", t.mean_posterior)));
        let (classifier, support, trusted) =
            x.classifier_trust.as_ref().map_or(("-".into(), "-".into(), "-"), |t| (format!("{:.2}", t.mean_posterior), format!("{:.2}", t.verdict_support()), if t.trusted { "yes" } else { "no" }));
        let optimal = x.naming_optimality.map_or("-".into(), |o| o.describe(names.len(), x.naming_score));
        let _ = writeln!(md, "| {} | {z} | {own} | {classifier} | {support} | {trusted} | {gap} | {optimal} | {acc} |", x.seed);
    }
    let selected = r.records.iter().find(|x| x.seed == r.selected_seed);
    if let Some(sentence) = selected.and_then(|s| trust_sentence(s, names)) {
        let _ = writeln!(md, "\n**{sentence}.**\n");
    }
    if let Some(sentence) = selected.and_then(|s| cluster_sizes_sentence(s, &r.config.stages)) {
        let _ = writeln!(md, "{sentence}.\n");
    }
    if let Some(sentence) = selected.and_then(|s| optimality_sentence(s, names.len())) {
        let _ = writeln!(md, "{sentence}.\n");
    }
    let pairs: Vec<String> = selected.map(|s| s.naming_interchangeable.iter().take(10).map(|(a, b, loss)| format!("{} <-> {} ({loss:.3})", names[*a], names[*b])).collect()).unwrap_or_default();
    let _ = writeln!(
        md,
        "Interchangeable names, seed {} (swapping them costs at most 2% of the largest possible objective): {}.\n",
        r.selected_seed,
        if pairs.is_empty() { "none".to_string() } else { pairs.join(", ") }
    );
    if let Some(c) = r.consensus {
        consensus_paragraph(md, names, c);
    }
    if let Some(oracle) = &r.oracle {
        let wrong: Vec<String> = oracle.class_of.iter().enumerate().filter(|(k, c)| k != *c).map(|(k, &c)| format!("{} -> {}", names[k], names[c])).collect();
        let _ = writeln!(
            md,
            "Diagnostic that uses the test labels: with each true class's mean test feature as its centre, the same naming gets {} of {} names right (posterior {:.2}){}. This is the ceiling of naming by geometry for these features and class vectors; the clusters' Hungarian-matched accuracy is the ceiling for any naming of the clusters.\n",
            oracle.names_right,
            names.len(),
            oracle.mean_posterior,
            if wrong.is_empty() { String::new() } else { format!("; wrong: {}", wrong.join(", ")) }
        );
    }
}

fn consensus_paragraph(md: &mut String, names: &[String], c: &crate::naming::consensus::ConsensusRun) {
    let v = &c.consensus;
    let reference = v.seeds.iter().position(|&s| s == v.reference_seed).unwrap_or(0);
    let clusters: Vec<String> = v.class_of[reference].iter().zip(&v.per_cluster_agreement).enumerate().map(|(j, (&k, a))| format!("{j}: {} ({:.0}%)", names[k], 100.0 * a)).collect();
    let _ = writeln!(
        md,
        "Consensus over {} seeds: every seed's clusters were aligned to seed {}'s by their centres and {} voted; the voters agree on {:.0}% of (seed, cluster) names. Consensus names of seed {}'s clusters (share of voters agreeing): {}. {}\n",
        v.seeds.len(),
        v.reference_seed,
        match v.voters.len() {
            n if n > 0 && n < v.seeds.len() => format!("the geometry names of the {n} seed(s) whose names the jury trusted ({})", v.voters.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
            _ => "the seeds' geometry names".to_string(),
        },
        100.0 * v.agreement,
        v.reference_seed,
        clusters.join(", "),
        if c.is_model { "The classifier `predict` uses carries these names." } else { "The classifier keeps its own chain's names (the consensus is reported only)." }
    );
}

fn files(canvas: &mut Canvas) {
    let md = &mut canvas.md;
    let _ = writeln!(md, "## Files\n");
    let _ = writeln!(md, "- `manifest.json`: configuration, seeds, versions, per-stage wall time and peak memory");
    let _ = writeln!(md, "- `metrics.json`: accuracy (mean, std) under `accuracy`, per-seed metrics under `seeds`");
    let _ = writeln!(md, "- `model.json`: the backbone and classifier `zerolabel predict` uses");
    let _ = writeln!(md, "- `stages/pretrain-*/`: SimCLR checkpoints (`checkpoint.safetensors`, `best.safetensors`) and `pretrain_log.jsonl`");
    let _ = writeln!(md, "- `stages/features-*/`: `train.safetensors`, `test.safetensors` (L2-normalised features, labels where known)");
    let _ = writeln!(md, "- `stages/match-*/seed-N/`: `classifier.safetensors`, `clusters.safetensors`, `test_predictions.npy`, `train_log.jsonl`, `seed.json`");
    if !canvas.notes.is_empty() {
        let _ = writeln!(md, "\nNotes: {}.", canvas.notes.join("; "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clustering::ClusteringKind;
    use crate::naming::NameTrust;

    fn trust(trusted: bool, cluster_size_ratio: f64) -> NameTrust {
        NameTrust {
            z: 3.0,
            mean_posterior: 0.3,
            posterior: vec![0.3; 6],
            near_ties: vec![],
            reverse_fits_equally: false,
            support_by_kernel: vec![],
            support: 0.3,
            too_few_classes: false,
            cluster_size_ratio,
            trusted,
            threshold: 0.8,
        }
    }

    #[test]
    fn very_unequal_sinkhorn_clusters_of_untrusted_names_point_to_kmeans() {
        let sentence = unequal_sizes_sentence(&trust(false, 4.04), ClusteringKind::Sinkhorn, false).expect("a hint");
        assert!(sentence.contains("4.0:1") && sentence.contains("clustering = \"kmeans\""), "{sentence}");
        // Where the run already tried k-means, it says so instead.
        let sentence = unequal_sizes_sentence(&trust(false, 4.04), ClusteringKind::Sinkhorn, true).expect("a note");
        assert!(sentence.contains("4.0:1") && sentence.contains("were tried"), "{sentence}");
        // Balanced real classes give Sinkhorn clusters of up to about 1.7:1: no hint there.
        assert_eq!(unequal_sizes_sentence(&trust(false, 1.7), ClusteringKind::Sinkhorn, false), None);
        // Trusted names, or a method that does not assume equal sizes, need no hint.
        assert_eq!(unequal_sizes_sentence(&trust(true, 4.0), ClusteringKind::Sinkhorn, false), None);
        assert_eq!(unequal_sizes_sentence(&trust(false, 4.0), ClusteringKind::Kmeans, false), None);
        // Records written before the ratio was kept read it as 0.
        assert_eq!(unequal_sizes_sentence(&trust(false, 0.0), ClusteringKind::Sinkhorn, false), None);
        // Where k-means replaced the Sinkhorn clusters, the summary says that alone, even where
        // the k-means clusters are themselves unequal and the classifier's names untrusted.
        let record: SeedRecord = serde_json::from_value(serde_json::json!({
            "seed": 0, "naming_chain": ["geometry", "stage3"], "selection_score": 1.0, "best_step": 0, "class_of": [0, 1],
            "naming_class_of": [0, 1], "naming_score": 1.0, "naming_interchangeable": [], "cluster_seconds": 0.0, "match_seconds": 0.0,
            "classifier_trust": serde_json::to_value(trust(false, 4.0)).unwrap(), "kmeans_fallback": 5.8,
        }))
        .unwrap();
        let sentence = cluster_sizes_sentence(&record, &crate::config::StageArgs::default()).expect("a sentence");
        assert!(sentence.starts_with("Stage II: k-means clusters") && sentence.contains("5.8:1") && sentence.contains("a sign of unbalanced classes") && !sentence.contains("were tried"), "{sentence}");
        // Where the Sinkhorn clusters' sizes were not far apart, k-means replaced them because
        // their names were not trusted, and the sentence says that instead.
        let mut second_opinion = record.clone();
        second_opinion.kmeans_fallback = Some(1.9);
        let sentence = cluster_sizes_sentence(&second_opinion, &crate::config::StageArgs::default()).expect("a sentence");
        assert!(sentence.contains("did not trust the names of the Sinkhorn clusters (sizes up to 1.9:1)") && !sentence.contains("a sign of unbalanced"), "{sentence}");
    }
}
