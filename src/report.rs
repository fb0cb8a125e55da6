//! The run report: `report.md` with the results, the paper's Figure 4 and the naming confidence,
//! and PNG plots in `plots/`. Labels (where the dataset has them) are read here only to measure.
use crate::backbone::simclr::CheckpointMeta;
use crate::config::RunConfig;
use crate::experiment::{SeedMetrics, Summary};
use crate::matching::Classifier;
use crate::pipeline::{self, SeedRecord};
use crate::plot::{self, Font, Series, PALETTE};
use crate::prior::LabelPrior;
use crate::run::StageRecord;
use anyhow::Result;
use std::fmt::Write;
use std::path::Path;
use tch::Tensor;

/// The results table of `match` and `run`.
pub fn summary_text(prior: &LabelPrior, s: &Summary, seeds: &[SeedMetrics]) -> String {
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

pub struct ReportInputs<'a> {
    pub out: &'a Path,
    pub config: &'a RunConfig,
    pub prior: &'a LabelPrior,
    pub records: &'a [SeedRecord],
    pub summary: Option<&'a Summary>,
    /// The seed `predict` uses (lowest training loss).
    pub selected_seed: u64,
    pub pretrain_log: &'a Path,
    /// The backbone checkpoint's metadata: the values stage I resolved.
    pub backbone: Option<&'a CheckpointMeta>,
    pub match_dir: &'a Path,
    /// L2-normalised test features.
    pub test: &'a Tensor,
    pub test_labels: Option<&'a [i64]>,
    pub sk_classifier: Option<&'a Path>,
    pub stages: &'a [StageRecord],
}

/// The name a setting has in configs and flags (e.g. `resnet18`).
fn value_name(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// (x, y) points of `y_key` against `x_key` from the lines where `filter` holds.
fn curve(lines: &[serde_json::Value], x_key: &str, y_key: &str, filter: impl Fn(&serde_json::Value) -> bool) -> Vec<(f64, f64)> {
    lines.iter().filter(|l| filter(l)).filter_map(|l| Some((l.get(x_key)?.as_f64()?, l.get(y_key)?.as_f64()?))).collect()
}

fn argmax_excluding(v: &[f64], skip: usize) -> usize {
    (0..v.len()).filter(|&j| j != skip).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

fn argmin(v: &[f64]) -> usize {
    (0..v.len()).min_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap_or(0)
}

/// Mean logit vector of the test samples of each true class: rows = true classes.
fn mean_logits(classifier: &Classifier, test: &Tensor, labels: &[i64], c: usize) -> Vec<Vec<f64>> {
    let logits = tch::no_grad(|| classifier.logits(&test.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float)));
    let logits: Vec<Vec<f64>> = Vec::<Vec<f64>>::try_from(logits.to_kind(tch::Kind::Double)).unwrap_or_default();
    let mut sums = vec![vec![0.0; c]; c];
    let mut counts = vec![0usize; c];
    for (row, &y) in logits.iter().zip(labels) {
        counts[y as usize] += 1;
        for (s, v) in sums[y as usize].iter_mut().zip(row) {
            *s += v;
        }
    }
    for (row, &n) in sums.iter_mut().zip(&counts) {
        row.iter_mut().for_each(|v| *v /= n.max(1) as f64);
    }
    sums
}

/// Writes report.md and plots/*.png; returns notes on what could not be drawn.
pub fn write_report(r: &ReportInputs) -> Result<Vec<String>> {
    let prior = r.prior;
    let c = prior.n_classes();
    let names = &prior.class_names;
    let plots = r.out.join("plots");
    let mut notes: Vec<String> = Vec::new();
    let font = match Font::find() {
        Ok(f) => Some(f),
        Err(e) => {
            notes.push(format!("plots not drawn: {e}"));
            None
        }
    };
    let mut md = String::new();
    let cfg = r.config;
    let _ = writeln!(md, "# zerolabel run: {}\n", cfg.name);
    if !cfg.description.is_empty() {
        let _ = writeln!(md, "{}\n", cfg.description);
    }
    let p = &cfg.pretrain;
    let _ = writeln!(
        md,
        "Data: {} at `{}`{}. Backbone: {} width {} trained with SimCLR for {} epoch(s) (batch {}, seed {}{}). Classes ({c}): {}.{}\n",
        value_name(&cfg.data.format),
        cfg.data.data.display(),
        cfg.data.limit.map(|n| format!(" (first {n} images of each split)")).unwrap_or_default(),
        value_name(&p.arch),
        p.width,
        p.epochs,
        p.batch_size,
        p.seed,
        // The values training resolved (precision "auto" -> fp32 or bf16).
        r.backbone
            .map(|m| {
                format!(
                    ", {} precision, crop scale {}-{}, temperature {}, lr {} ({})",
                    value_name(&m.params.precision),
                    m.params.augment.crop_scale.0,
                    m.params.augment.crop_scale.1,
                    m.params.temperature,
                    m.params.learning_rate,
                    value_name(&m.params.lr_schedule)
                )
            })
            .unwrap_or_default(),
        names.join(", "),
        if cfg.classes.ordinal { " Ordinal prior (class order)." } else { "" }
    );
    let _ = writeln!(md, "No image-label pair was used for training, clustering or model selection; labels are read only below, to measure.\n");

    // Results.
    match r.summary {
        Some(s) => {
            let metrics: Vec<SeedMetrics> = r.records.iter().filter_map(|x| x.metrics.clone()).collect();
            md.push_str(&summary_text(prior, s, &metrics).replacen("# ", "## ", 1));
        }
        None => md.push_str("## Results\n\nThe dataset has no test labels: accuracy is not measured.\n"),
    }
    let choice = if cfg.stages.naming_only { "the highest naming objective (stage III skipped: the classifier is the named nearest centroid)" } else { "the lowest stage-III training loss" };
    let _ = writeln!(md, "\nThe classifier `zerolabel predict` uses is seed {}'s, the seed with {choice} (a label-free choice).\n", r.selected_seed);

    // Stages.
    let _ = writeln!(md, "## Stages\n\n| stage | folder | reused | wall time (s) | peak memory (MiB) |\n| --- | --- | --- | --- | --- |");
    for s in r.stages {
        let _ = writeln!(md, "| {} | `{}` | {} | {:.1} | {} |", s.name, s.dir.display(), if s.reused { "yes" } else { "no" }, s.wall_s, s.peak_rss_mb.map(|m| format!("{m:.0}")).unwrap_or("-".into()));
    }
    let _ = writeln!(md, "\n(For a reused stage, the time and memory are those of the run that computed it.)\n");

    // Loss curves.
    let _ = writeln!(md, "## Training curves\n");
    let pre = read_jsonl(r.pretrain_log);
    let seed_logs: Vec<(u64, Vec<serde_json::Value>)> = r.records.iter().map(|x| (x.seed, read_jsonl(&pipeline::seed_dir(r.match_dir, x.seed).join("train_log.jsonl")))).collect();
    if let Some(font) = &font {
        let loss = Series { name: "SimCLR loss".into(), points: curve(&pre, "epoch", "loss", |_| true), color: PALETTE[0] };
        let knn = Series { name: "kNN accuracy".into(), points: curve(&pre, "epoch", "knn_accuracy", |_| true), color: PALETTE[1] };
        let mut panels = vec![plot::line_chart(font, "Stage I: SimCLR training loss", "epoch", "NT-Xent loss", &[loss], 520, 340)];
        if !knn.points.is_empty() {
            panels.push(plot::line_chart(font, "Stage I: kNN accuracy (k = 200, labels used only here)", "epoch", "accuracy", &[knn], 520, 340));
        }
        let clustering: Vec<Series> = seed_logs.iter().enumerate().map(|(k, (seed, lines))| Series {
            name: format!("seed {seed}"),
            points: curve(lines, "step", "loss", |l| l["stage"] == "cluster"),
            color: PALETTE[k % PALETTE.len()],
        }).collect();
        let matching: Vec<Series> = seed_logs.iter().enumerate().map(|(k, (seed, lines))| Series {
            name: format!("seed {seed}"),
            points: curve(lines, "step", "window_mean", |l| l["stage"] == "match"),
            color: PALETTE[k % PALETTE.len()],
        }).collect();
        plot::save_png(&plot::hstack(&panels), &plots.join("loss_pretrain.png"))?;
        plot::save_png(&plot::line_chart(font, "Stage II: Sinkhorn clustering OT cost", "step", "OT cost", &clustering, 640, 360), &plots.join("loss_clustering.png"))?;
        plot::save_png(&plot::line_chart(font, "Stage III: L_cgsk (mean over the selection window)", "step", "loss", &matching, 640, 360), &plots.join("loss_matching.png"))?;
        let _ = writeln!(md, "![stage I](plots/loss_pretrain.png)\n\n![stage II](plots/loss_clustering.png)\n\n![stage III](plots/loss_matching.png)\n");
    }
    if let Some(last) = pre.last() {
        let _ = writeln!(md, "Stage I, last epoch: loss {:.4}, {:.0} images/s{}.\n", last["loss"].as_f64().unwrap_or(f64::NAN), last["images_per_s"].as_f64().unwrap_or(f64::NAN),
            last.get("knn_accuracy").and_then(|v| v.as_f64()).map(|a| format!(", kNN accuracy {:.1}%", 100.0 * a)).unwrap_or_default());
    }

    let selected = pipeline::load_classifier(r.match_dir, r.selected_seed)?;
    let record = r.records.iter().find(|x| x.seed == r.selected_seed).expect("selected seed has a record");

    // Confusion matrix and accuracy across seeds.
    if let (Some(labels), Some(metrics)) = (r.test_labels, record.metrics.as_ref()) {
        let _ = writeln!(md, "## Confusion matrix (seed {}, test set)\n", r.selected_seed);
        let conf = &metrics.report.confusion;
        if let Some(font) = &font {
            let norm: Vec<Vec<f64>> = conf.iter().map(|row| {
                let n = row.iter().sum::<u64>().max(1) as f64;
                row.iter().map(|&v| v as f64 / n).collect()
            }).collect();
            let cells: Vec<Vec<String>> = conf.iter().map(|row| row.iter().map(|v| v.to_string()).collect()).collect();
            let cell = if c <= 12 { 46.0 } else if c <= 25 { 26.0 } else { 10.0 };
            let img = plot::heatmap(font, &format!("Confusion matrix, seed {} (rows: true class, share of the row)", r.selected_seed), "true class", "predicted class", names, names, &norm, false, (c <= 25).then_some(&cells[..]), cell);
            plot::save_png(&img, &plots.join("confusion.png"))?;
            let _ = writeln!(md, "![confusion matrix](plots/confusion.png)\n");
        }
        let _ = writeln!(md, "Accuracy {:.1}%; {} of {c} classes predicted at least once.\n", 100.0 * metrics.accuracy, metrics.report.predicted_classes);

        let seeds: Vec<&SeedMetrics> = r.records.iter().filter_map(|x| x.metrics.as_ref()).collect();
        if let Some(font) = &font {
            let cats: Vec<String> = seeds.iter().map(|m| format!("seed {}", m.seed)).collect();
            let pct = |f: fn(&SeedMetrics) -> f64| seeds.iter().map(|m| 100.0 * f(m)).collect::<Vec<f64>>();
            let series = vec![
                ("zero-label (stage III)".to_string(), pct(|m| m.accuracy)),
                ("Random fC".to_string(), pct(|m| m.random_baseline_accuracy)),
                ("naming by geometry alone".to_string(), pct(|m| m.naming_accuracy)),
            ];
            let ceiling = seeds.iter().map(|m| m.cluster_hungarian_accuracy).sum::<f64>() / seeds.len().max(1) as f64 * 100.0;
            let refs = vec![("clusters Hungarian-matched (ceiling for naming)".to_string(), ceiling, plot::BLACK), ("chance".to_string(), 100.0 / c as f64, plot::GREY)];
            let img = plot::bar_chart(font, "Accuracy across seeds (%)", "accuracy (%)", &cats, &series, Some((0.0, 100.0)), &refs, (140 + 90 * cats.len()).max(620) as u32, 380);
            plot::save_png(&img, &plots.join("accuracy_seeds.png"))?;
            let _ = writeln!(md, "## Accuracy across seeds\n\n![accuracy across seeds](plots/accuracy_seeds.png)\n");
        }

        // Figure 4A: does each class's mean logit vector rank classes as the prior does?
        let mean = mean_logits(&selected, r.test, labels, c);
        let _ = writeln!(md, "## Figure 4A: mean logit vector per true class vs the prior (seed {})\n", r.selected_seed);
        let _ = writeln!(md, "| true class | prior: nearest | logits: highest other | prior: farthest | logits: lowest |\n| --- | --- | --- | --- | --- |");
        let (mut near_hits, mut far_hits) = (0, 0);
        for i in 0..c {
            let prior_near = prior.ranks[i].get(1).copied().unwrap_or(i);
            let prior_far = prior.ranks[i].last().copied().unwrap_or(i);
            let (logit_near, logit_far) = (argmax_excluding(&mean[i], i), argmin(&mean[i]));
            near_hits += (prior_near == logit_near) as usize;
            far_hits += (prior_far == logit_far) as usize;
            let _ = writeln!(md, "| {} | {} | {} | {} | {} |", names[i], names[prior_near], names[logit_near], names[prior_far], names[logit_far]);
        }
        let _ = writeln!(md, "\nThe learned logits agree with the prior's nearest class for {near_hits}/{c} classes and with its farthest for {far_hits}/{c}.\n");
        if let Some(font) = &font {
            let standardize = |m: &[Vec<f64>]| -> Vec<Vec<f64>> {
                m.iter().map(|row| {
                    let mu = row.iter().sum::<f64>() / row.len() as f64;
                    let sd = (row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / row.len() as f64).sqrt().max(1e-12);
                    row.iter().map(|v| (v - mu) / sd).collect()
                }).collect()
            };
            let cell = if c <= 12 { 40.0 } else if c <= 25 { 24.0 } else { 9.0 };
            let left = plot::heatmap(font, "Prior: class-name similarity (row z-scores)", "class", "class", names, names, &standardize(&prior.similarity), true, None, cell);
            let right = plot::heatmap(font, "Learned: mean logits per true class (row z-scores)", "true class", "logit of class", names, names, &standardize(&mean), true, None, cell);
            plot::save_png(&plot::hstack(&[left, right]), &plots.join("figure4a.png"))?;
            let _ = writeln!(md, "![Figure 4A](plots/figure4a.png)\n");
        }
    } else {
        notes.push("no test labels: confusion matrix, accuracy across seeds and Figure 4A are not drawn".into());
    }

    // Figure 4B: predicted-class distribution of a few clusters under L_sk and L_cgsk.
    if let Some(sk_path) = r.sk_classifier {
        let sk = Classifier::load(sk_path)?;
        let clustering = pipeline::load_clusters(r.match_dir, r.selected_seed)?;
        let test = r.test.to_device(tch::Device::Cpu);
        let members = clustering.predict(&test);
        let (pred_cgsk, pred_sk) = (selected.predict(&test), sk.predict(&test));
        let k = clustering.n_clusters();
        let mut sizes: Vec<(usize, usize)> = (0..k).map(|j| (members.iter().filter(|&&m| m as usize == j).count(), j)).collect();
        sizes.sort_by(|a, b| b.cmp(a));
        let shown: Vec<usize> = sizes.iter().take(cfg.report.figure_clusters.max(1)).map(|s| s.1).collect();
        let _ = writeln!(md, "## Figure 4B: predicted classes within clusters, L_sk vs L_cgsk (seed {})\n", r.selected_seed);
        let _ = writeln!(md, "| cluster (test members) | L_sk: top class (share) | L_cgsk: top class (share) |\n| --- | --- | --- |");
        let mut panels = Vec::new();
        for &j in &shown {
            let idx: Vec<usize> = members.iter().enumerate().filter(|(_, m)| **m as usize == j).map(|(i, _)| i).collect();
            let hist = |pred: &[i64]| -> Vec<f64> {
                let mut h = vec![0.0; c];
                idx.iter().for_each(|&i| h[pred[i] as usize] += 1.0);
                h.iter().map(|v| v / idx.len().max(1) as f64).collect()
            };
            let (h_sk, h_cg) = (hist(&pred_sk), hist(&pred_cgsk));
            let top = |h: &[f64]| {
                let t = (0..c).max_by(|&a, &b| h[a].total_cmp(&h[b])).unwrap_or(0);
                format!("{} ({:.0}%)", names[t], 100.0 * h[t])
            };
            let _ = writeln!(md, "| {j} ({}) | {} | {} |", idx.len(), top(&h_sk), top(&h_cg));
            if let Some(font) = &font {
                panels.push(plot::bar_chart(font, &format!("Cluster {j} ({} test images)", idx.len()), "share of the cluster", names,
                    &[("L_sk".into(), h_sk), ("L_cgsk".into(), h_cg)], Some((0.0, 1.0)), &[], 520, 340));
            }
        }
        let _ = writeln!(md, "\nUnder L_cgsk the members of a cluster should share one predicted class; under L_sk they may spread.\n");
        if !panels.is_empty() {
            let rows: Vec<_> = panels.chunks(2).map(plot::hstack).collect();
            plot::save_png(&plot::vstack(&rows), &plots.join("figure4b.png"))?;
            let _ = writeln!(md, "![Figure 4B](plots/figure4b.png)\n");
        }
    } else {
        notes.push(if cfg.stages.naming_only { "Figure 4B skipped (naming only: no stage III)" } else { "Figure 4B skipped ([report] sk_comparison = false)" }.into());
    }

    // Naming confidence.
    let _ = writeln!(md, "## Naming the clusters by geometry (beyond the paper)\n");
    let _ = writeln!(md, "The naming step assigns class names to clusters by matching the centroids' similarity matrix to the class names' similarity matrix (a quadratic assignment problem). The gap is the objective difference between the best and the second-best assignment; a small gap means a low-confidence naming.\n");
    let _ = writeln!(md, "| seed | objective | gap to runner-up | naming accuracy (%) |\n| --- | --- | --- | --- |");
    for x in r.records {
        let gap = x.naming_second_score.map(|s| format!("{:.3}", x.naming_score - s)).unwrap_or("- (approximate solver)".into());
        let acc = x.metrics.as_ref().map(|m| format!("{:.1}", 100.0 * m.naming_accuracy)).unwrap_or("-".into());
        let _ = writeln!(md, "| {} | {:.3} | {gap} | {acc} |", x.seed, x.naming_score);
    }
    let pairs: Vec<String> = record.naming_interchangeable.iter().take(10).map(|(a, b, loss)| format!("{} <-> {} ({loss:.3})", names[*a], names[*b])).collect();
    let _ = writeln!(
        md,
        "\nInterchangeable names, seed {} (swapping them costs at most 2% of the largest possible objective): {}.\n",
        r.selected_seed,
        if pairs.is_empty() { "none".to_string() } else { pairs.join(", ") }
    );

    // Files.
    let _ = writeln!(md, "## Files\n");
    let _ = writeln!(md, "- `manifest.json`: configuration, seeds, versions, per-stage wall time and peak memory");
    let _ = writeln!(md, "- `metrics.json`: accuracy (mean, std) under `accuracy`, per-seed metrics under `seeds`");
    let _ = writeln!(md, "- `model.json`: the backbone and classifier `zerolabel predict` uses");
    let _ = writeln!(md, "- `stages/pretrain-*/`: SimCLR checkpoints (`checkpoint.safetensors`, `best.safetensors`) and `pretrain_log.jsonl`");
    let _ = writeln!(md, "- `stages/features-*/`: `train.safetensors`, `test.safetensors` (L2-normalised features, labels where known)");
    let _ = writeln!(md, "- `stages/match-*/seed-N/`: `classifier.safetensors`, `clusters.safetensors`, `test_predictions.npy`, `train_log.jsonl`, `seed.json`");
    if !notes.is_empty() {
        let _ = writeln!(md, "\nNotes: {}.", notes.join("; "));
    }
    crate::io::write_atomic(&r.out.join("report.md"), md.as_bytes())?;
    Ok(notes)
}
