//! Cluster sheets (`zerolabel clusters`): what each cluster of a finished run holds, so that a
//! person can name it. For one seed's stage II clusters:
//!
//! - `cluster-KK.png` per cluster: the training images nearest the cluster's centre (the mean
//!   of its members), nearest first, row by row, under a caption with the cluster's index, size
//!   and the name the geometry naming proposes with its posterior probability (the caption is
//!   left out where no font is installed; the index pages always have it). An empty cluster
//!   gets a sheet too: one grey tile with a cross;
//! - `index.md` and `index.html`: one row per cluster (sheet, size, proposed name, posterior) and
//!   the seed;
//! - `cluster_names.txt`: the geometry's proposals in cluster order, one per line, with comments:
//!   correct it and pass it to `zerolabel run --cluster-names` (see [`crate::naming::person`]).
//!
//! Labels are never read here.
use crate::clustering::{member_means, squared_distances};
use crate::config::RunConfig;
use crate::data::features::{l2_normalize, load_features};
use crate::data::images::{ImageSet, Split};
use crate::error::Error;
use crate::io;
use crate::layout::{RunLayout, SeedsLayout};
use crate::orchestrator::{read_seed_record, SeedRecord};
use crate::plot::{self, Align, Canvas, Font};
use crate::progress::status;
use anyhow::{bail, Context, Result};
use image::{Rgb, RgbImage};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use tch::Tensor;

#[derive(clap::Args, Debug)]
pub struct ClustersArgs {
    /// A run folder written by `zerolabel run` (holds manifest.json).
    #[arg(long)]
    pub run: PathBuf,
    /// Output folder: cluster-KK.png, index.md, index.html, cluster_names.txt.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Whose clusters [the run's selected seed, the one `predict` uses].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training images per sheet, nearest the cluster's centre first.
    #[arg(long, default_value_t = 64)]
    pub per_cluster: usize,
    /// The run's images, where they have moved since the run (same format, same images).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Most images a sheet shows.
pub const MAX_PER_CLUSTER: usize = 1024;
/// Images per row of a sheet.
const COLUMNS: usize = 8;

/// One cluster's sheet.
#[derive(Clone, Debug, Serialize)]
pub struct SheetEntry {
    pub cluster: usize,
    /// Training members.
    pub size: usize,
    /// Training images nearest the centre, nearest first (indices into the training split).
    pub nearest: Vec<usize>,
    /// The class the geometry naming proposes, and its posterior probability.
    pub proposed: Option<String>,
    pub posterior: Option<f64>,
    /// The sheet's file name, e.g. `cluster-03.png`.
    pub file: String,
}

/// Where the sheets come from, for the index pages.
#[derive(Clone, Debug)]
pub struct SheetSource {
    pub run: PathBuf,
    pub seed: u64,
    /// The run's config file and `--set` overrides, for the suggested command (the same
    /// settings, so that every stage but the naming is reused).
    pub config_file: Option<PathBuf>,
    pub overrides: Vec<String>,
    pub class_names: Vec<String>,
    pub per_cluster: usize,
}

/// Per cluster, the training rows nearest the mean of its members, nearest first (at most
/// `per_cluster`; none for an empty cluster). `features` (N, D) f32; `assignments` one cluster
/// in 0..k per row.
pub fn nearest_members(features: &Tensor, assignments: &[i64], k: usize, per_cluster: usize) -> crate::Result<Vec<Vec<usize>>> {
    let means = member_means(features, assignments, k as i64)?;
    let index = Tensor::from_slice(assignments).to_device(features.device()).unsqueeze(1);
    let own = squared_distances(&features.to_kind(tch::Kind::Float), &means).gather(1, &index, false).squeeze_dim(1);
    let distances = Vec::<f64>::try_from(own.to_kind(tch::Kind::Double).to_device(tch::Device::Cpu))?;
    let mut members: Vec<Vec<(f64, usize)>> = vec![Vec::new(); k];
    for (i, (&a, &d)) in assignments.iter().zip(&distances).enumerate() {
        members[a as usize].push((d, i));
    }
    Ok(members
        .into_iter()
        .map(|mut m| {
            m.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            m.into_iter().take(per_cluster).map(|(_, i)| i).collect()
        })
        .collect())
}

/// Image `index` as RGB, scaled to a tile: small images are enlarged by a whole factor to at
/// least 48 pixels (nearest neighbour, so pixels stay sharp), large ones shrunk to 128.
fn tile(images: &ImageSet, index: usize) -> RgbImage {
    let (h, w, ch) = (images.height, images.width, images.channels);
    let pixels = images.image(index);
    let img = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let at = (y as usize * w + x as usize) * ch;
        if ch >= 3 { Rgb([pixels[at], pixels[at + 1], pixels[at + 2]]) } else { Rgb([pixels[at]; 3]) }
    });
    let side = h.max(w).max(1);
    if side < 48 {
        let factor = 48usize.div_ceil(side) as u32;
        image::imageops::resize(&img, w as u32 * factor, h as u32 * factor, image::imageops::FilterType::Nearest)
    } else if side > 128 {
        let scale = 128.0 / side as f64;
        image::imageops::resize(&img, ((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1), image::imageops::FilterType::Triangle)
    } else {
        img
    }
}

/// The grid of a sheet: `members`' images row by row, 8 to a row; for no member, one grey tile
/// with a cross (a blank sheet says "empty" without a font).
pub fn grid(images: &ImageSet, members: &[usize]) -> RgbImage {
    let sample = tile(images, 0);
    let (tw, th) = (sample.width(), sample.height());
    let gap = 2u32;
    let n = members.len().max(1);
    let (cols, rows) = (n.min(COLUMNS) as u32, n.div_ceil(COLUMNS) as u32);
    let mut out = RgbImage::from_pixel(cols * (tw + gap) + gap, rows * (th + gap) + gap, Rgb(plot::WHITE));
    if members.is_empty() {
        for y in 0..th {
            for x in 0..tw {
                let on_cross = (x as i64 * th as i64 - y as i64 * tw as i64).abs() <= tw.max(th) as i64 || ((tw - 1 - x) as i64 * th as i64 - y as i64 * tw as i64).abs() <= tw.max(th) as i64;
                out.put_pixel(gap + x, gap + y, Rgb(if on_cross { plot::GREY } else { plot::LIGHT }));
            }
        }
        return out;
    }
    for (k, &i) in members.iter().enumerate() {
        let (col, row) = ((k % COLUMNS) as u32, (k / COLUMNS) as u32);
        image::imageops::overlay(&mut out, &tile(images, i), (gap + col * (tw + gap)) as i64, (gap + row * (th + gap)) as i64);
    }
    out
}

/// The caption lines of a sheet.
pub fn caption(entry: &SheetEntry) -> Vec<String> {
    let proposal = match (&entry.proposed, entry.posterior) {
        (Some(name), Some(p)) => format!("geometry proposes: {name} (posterior {p:.2})"),
        (Some(name), None) => format!("geometry proposes: {name}"),
        _ => "no proposal".into(),
    };
    vec![format!("Cluster {}: {} training image(s)", entry.cluster, entry.size), proposal]
}

/// A sheet: the caption (with a font) above the grid.
pub fn sheet(images: &ImageSet, entry: &SheetEntry, font: Option<&Font>) -> RgbImage {
    let grid = grid(images, &entry.nearest);
    let Some(font) = font else { return grid };
    let lines = caption(entry);
    let (size, line_height) = (15.0f32, 20.0);
    let text_width = lines.iter().map(|l| font.width(size, l) as f64).fold(0.0, f64::max);
    let width = grid.width().max(text_width.ceil() as u32 + 12);
    let header = (line_height * lines.len() as f64 + 10.0) as u32;
    let mut canvas = Canvas::new(width, header + grid.height(), font);
    for (k, line) in lines.iter().enumerate() {
        canvas.text(6.0, 5.0 + line_height * k as f64, size, line, plot::BLACK, Align::Start, Align::Start, false);
    }
    image::imageops::overlay(&mut canvas.img, &grid, 0, header as i64);
    canvas.img
}

/// `cluster-03.png` (two digits up to 100 clusters, more above).
pub fn sheet_file(cluster: usize, k: usize) -> String {
    let digits = k.saturating_sub(1).to_string().len().max(2);
    format!("cluster-{cluster:0digits$}.png")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A word for a shell command line: quoted where it holds anything but plain characters.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The suggested `run` command: the run's config and overrides, and the names.
fn rerun_command(source: &SheetSource, out: &Path) -> String {
    let config = source.config_file.as_ref().map_or("CONFIG.toml".to_string(), |c| c.display().to_string());
    let mut words = vec!["zerolabel".to_string(), "run".into(), "--config".into(), shell_word(&config), "--out".into(), shell_word(&source.run.display().to_string())];
    for o in &source.overrides {
        words.extend(["--set".to_string(), shell_word(o)]);
    }
    words.extend(["--cluster-names".to_string(), shell_word(&out.join("cluster_names.txt").display().to_string()), "--cluster-names-seed".into(), source.seed.to_string()]);
    words.join(" ")
}

/// `index.md`.
pub fn index_markdown(source: &SheetSource, entries: &[SheetEntry], out: &Path) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Clusters of `{}`, seed {}\n", source.run.display(), source.seed);
    let _ = writeln!(md, "Each sheet shows up to {} training images nearest the cluster's centre (the mean of its members), nearest first, row by row. The proposed name is the geometry naming's (label-free), with its posterior probability.\n", source.per_cluster);
    let _ = writeln!(md, "| cluster | sheet | training images | geometry proposes | posterior | seed |\n| --- | --- | --- | --- | --- | --- |");
    for e in entries {
        let posterior = e.posterior.map_or("-".into(), |p| format!("{p:.2}"));
        let _ = writeln!(md, "| {} | [{}]({}) | {} | {} | {posterior} | {} |", e.cluster, e.file, e.file, e.size, e.proposed.as_deref().unwrap_or("-"), source.seed);
    }
    let _ = writeln!(md, "\n## Name the clusters yourself\n");
    let _ = writeln!(md, "Edit `cluster_names.txt` (one class name per line, in cluster order; the geometry's proposals are filled in; each class once), then run again:\n");
    let _ = writeln!(md, "```sh\n{}\n```\n", rerun_command(source, out));
    let _ = writeln!(md, "or put `cluster_names = [...]` and `cluster_names_seed = {}` under `[classes]` in the config. Only the naming is redone; the classifier is then named by a person.\n", source.seed);
    let _ = writeln!(md, "Class names: {}.", source.class_names.join(", "));
    md
}

/// `index.html`: the same, with the sheets shown.
pub fn index_html(source: &SheetSource, entries: &[SheetEntry], out: &Path) -> String {
    let mut h = String::new();
    let title = format!("Clusters of {}, seed {}", source.run.display(), source.seed);
    let _ = writeln!(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>", html_escape(&title));
    let _ = writeln!(h, "<style>body{{font-family:sans-serif;margin:1em}} td,th{{border-bottom:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}} img{{max-width:520px}}</style></head><body>");
    let _ = writeln!(h, "<h1>{}</h1>", html_escape(&title));
    let _ = writeln!(h, "<p>Each sheet shows up to {} training images nearest the cluster's centre (the mean of its members), nearest first. The proposed name is the geometry naming's (label-free), with its posterior probability.</p>", source.per_cluster);
    let _ = writeln!(h, "<table><tr><th>cluster</th><th>training images</th><th>geometry proposes</th><th>posterior</th><th>seed</th><th>sheet</th></tr>");
    for e in entries {
        let posterior = e.posterior.map_or("-".into(), |p| format!("{p:.2}"));
        let file = html_escape(&e.file);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{posterior}</td><td>{}</td><td><a href=\"{file}\"><img src=\"{file}\" alt=\"cluster {}\"></a></td></tr>",
            e.cluster,
            e.size,
            html_escape(e.proposed.as_deref().unwrap_or("-")),
            source.seed,
            e.cluster
        );
    }
    let _ = writeln!(h, "</table>\n<h2>Name the clusters yourself</h2>\n<p>Edit <code>cluster_names.txt</code> (one class name per line, in cluster order, each class once), then run:</p>");
    let _ = writeln!(h, "<pre>{}</pre>", html_escape(&rerun_command(source, out)));
    let _ = writeln!(h, "<p>Class names: {}.</p>\n</body></html>", html_escape(&source.class_names.join(", ")));
    h
}

/// `cluster_names.txt`: the proposals, one per line in cluster order, with comments.
pub fn names_template(source: &SheetSource, entries: &[SheetEntry], out: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Class names of the clusters of seed {} of {}, one per line in cluster order, each class once.", source.seed, source.run.display());
    let _ = writeln!(t, "# Filled in: the geometry naming's proposals. Correct them from the sheets, then:");
    let _ = writeln!(t, "#   {}", rerun_command(source, out));
    let _ = writeln!(t, "# Class names: {}", source.class_names.join(", "));
    for e in entries {
        let posterior = e.posterior.map(|p| format!(", posterior {p:.2}")).unwrap_or_default();
        let _ = writeln!(t, "{}    # cluster {}: {} training image(s), see {}{posterior}", e.proposed.as_deref().unwrap_or("?"), e.cluster, e.size, e.file);
    }
    t
}

/// Writes every sheet, `index.md`, `index.html` and `cluster_names.txt` into `out` (each file
/// atomically); returns the paths written.
pub fn write_sheets(out: &Path, images: &ImageSet, entries: &[SheetEntry], source: &SheetSource, font: Option<&Font>) -> crate::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for e in entries {
        let path = out.join(&e.file);
        plot::save_png(&sheet(images, e, font), &path)?;
        written.push(path);
    }
    for (name, text) in [("index.md", index_markdown(source, entries, out)), ("index.html", index_html(source, entries, out)), ("cluster_names.txt", names_template(source, entries, out))] {
        let path = out.join(name);
        io::write_atomic(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// A finished run, as far as the sheets need it.
struct FinishedRun {
    config: RunConfig,
    config_file: Option<PathBuf>,
    overrides: Vec<String>,
    /// The match stage's seeds (clusters, records).
    seeds: SeedsLayout,
    /// The features stage's folder (None: the run imported feature files).
    features: Option<PathBuf>,
    seed_list: Vec<u64>,
    selected_seed: Option<u64>,
    class_names: Vec<String>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = crate::data::checked::read_text(path)?;
    Ok(serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not JSON: {e}")))?)
}

/// Reads what `zerolabel run` left in `run`, checking that it finished.
fn read_run(run: &Path) -> Result<FinishedRun> {
    if !run.is_dir() {
        bail!("{}: no such run folder (give the folder `zerolabel run` wrote, e.g. runs/fashion-mnist)", run.display());
    }
    let layout = RunLayout::new(run);
    let manifest_path = layout.manifest();
    if !manifest_path.exists() {
        bail!("{}: not found, so {} is not a finished run (`zerolabel run` writes manifest.json when it finishes)", manifest_path.display(), run.display());
    }
    let manifest = read_json(&manifest_path)?;
    let config: RunConfig = serde_json::from_value(manifest["config"].clone()).map_err(|e| Error::format(&manifest_path, format!("the run's config is unreadable: {e}")))?;
    let stages = manifest["stages"].as_array().cloned().unwrap_or_default();
    let stage_dir = |wanted: &dyn Fn(&str) -> bool| stages.iter().find(|s| s["name"].as_str().is_some_and(wanted)).and_then(|s| s["dir"].as_str()).map(|d| run.join(d));
    let Some(match_dir) = stage_dir(&|n| n == "match") else {
        bail!("{}: no match stage (stages II-III) recorded", manifest_path.display());
    };
    let seed_list: Vec<u64> = manifest["seeds"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
    let class_names = match read_json(&layout.model()).ok().and_then(|m| m["classes"].as_array().cloned()) {
        Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
        None => crate::config::class_names(&config.classes)?,
    };
    Ok(FinishedRun {
        config_file: manifest["config_file"].as_str().map(PathBuf::from),
        // The names set by an earlier --cluster-names are replaced by the new ones.
        overrides: manifest["overrides"].as_array().map(|a| a.iter().filter_map(Value::as_str).filter(|o| !o.starts_with("classes.cluster_names")).map(str::to_string).collect()).unwrap_or_default(),
        seeds: SeedsLayout::new(match_dir),
        features: stage_dir(&|n| n.starts_with("features")),
        selected_seed: manifest["selected_seed"].as_u64(),
        seed_list,
        class_names,
        config,
    })
}

/// Stage II's result of a seed: the cluster of every training image, and the cluster count.
fn read_assignments(path: &Path, k: usize) -> Result<(Vec<i64>, usize)> {
    let tensors = Tensor::read_safetensors(path).map_err(|e| Error::format(path, format!("not a clusters file: {e}")))?;
    let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone());
    let assignments = get("assignments").ok_or_else(|| Error::format(path, "no assignments tensor"))?;
    let k = get("member_means").or_else(|| get("centroids")).map_or(k, |t| t.size()[0] as usize);
    Ok((Vec::<i64>::try_from(&assignments)?, k))
}

/// `zerolabel clusters`.
pub fn clusters_command(args: &ClustersArgs, quiet: bool) -> Result<()> {
    // Everything is checked before the images are read.
    if !(1..=MAX_PER_CLUSTER).contains(&args.per_cluster) {
        return Err(Error::invalid("per-cluster", args.per_cluster, format!("between 1 and {MAX_PER_CLUSTER} images")).into());
    }
    if args.out.exists() && !args.out.is_dir() {
        bail!("{}: exists and is not a folder (--out is the folder the sheets are written to)", args.out.display());
    }
    let run = read_run(&args.run)?;
    let seed = match args.seed.or(run.selected_seed) {
        Some(s) => s,
        None => bail!("{}: no selected seed recorded; give --seed", args.run.display()),
    };
    if !run.seed_list.contains(&seed) {
        let list = run.seed_list.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        bail!("--seed {seed}: not a seed of the run {} (its seeds: {list})", args.run.display());
    }
    let record: SeedRecord = read_seed_record(&run.seeds.seed_record(seed)).with_context(|| format!("seed {seed} of {}", args.run.display()))?;
    let (assignments, k) = read_assignments(&run.seeds.clusters(seed), run.class_names.len())?;
    let Some(features_dir) = &run.features else {
        bail!("{}: the run imported feature files ([features]), so it has no images to show", args.run.display());
    };
    let mut data = run.config.dataset().context("the run's config")?.clone();
    if let Some(path) = &args.data {
        data.data = path.clone();
    }
    let train_path = RunLayout::features_train(features_dir);
    let train = l2_normalize(&load_features(&train_path, None)?.features);
    if train.size()[0] as usize != assignments.len() {
        bail!("{}: {} rows, but the clusters of seed {seed} assign {} training images", train_path.display(), train.size()[0], assignments.len());
    }
    let images = data.read(Split::Train).with_context(|| format!("the run's training images (if they moved, give --data PATH; the run read {})", data.data.display()))?;
    if images.count != assignments.len() {
        bail!("{}: {} training images, but the run clustered {} (not the images of this run?)", data.data.display(), images.count, assignments.len());
    }
    let nearest = nearest_members(&train, &assignments, k, args.per_cluster)?;
    let mut sizes = vec![0usize; k];
    for &a in &assignments {
        sizes[a as usize] += 1;
    }
    let entries: Vec<SheetEntry> = (0..k)
        .map(|cluster| SheetEntry {
            cluster,
            size: sizes[cluster],
            nearest: nearest[cluster].clone(),
            proposed: record.naming_class_of.get(cluster).and_then(|&c| run.class_names.get(c)).cloned(),
            posterior: record.naming_trust.as_ref().and_then(|t| t.posterior.get(cluster).copied()),
            file: sheet_file(cluster, k),
        })
        .collect();
    let font = Font::find().ok();
    if font.is_none() {
        status("Note", "no TrueType font found: sheets without captions (the index pages have them)", quiet);
    }
    let source = SheetSource { run: args.run.clone(), seed, config_file: run.config_file.clone(), overrides: run.overrides.clone(), class_names: run.class_names.clone(), per_cluster: args.per_cluster };
    write_sheets(&args.out, &images, &entries, &source, font.as_ref())?;
    status("Wrote", &format!("{k} cluster sheets of seed {seed} and {}", args.out.join("index.html").display()), quiet);
    println!("{}", args.out.join("index.md").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: usize) -> ImageSet {
        ImageSet { pixels: (0..n * 4 * 4).map(|v| (v * 7 % 256) as u8).collect(), count: n, height: 4, width: 4, channels: 1, labels: None, class_names: vec![] }
    }

    #[test]
    fn nearest_members_sort_by_distance_to_the_member_mean() {
        // Cluster 0: rows 0, 1, 3 (mean 1.0, distances 1.0, 0.1, 0.9); cluster 1: row 2;
        // cluster 2: empty.
        let x = Tensor::from_slice(&[2.0f32, 0.9, 9.0, 0.1]).view([4, 1]);
        let nearest = nearest_members(&x, &[0, 0, 1, 0], 3, 2).unwrap();
        assert_eq!(nearest, vec![vec![1, 3], vec![2], vec![]]);
    }

    #[test]
    fn an_empty_cluster_gets_a_blank_tile_and_file_names_sort() {
        let set = images(3);
        let empty = grid(&set, &[]);
        let full = grid(&set, &[0, 1, 2]);
        // 4-pixel images become 48-pixel tiles; one tile for the empty cluster, three in a row.
        assert_eq!((empty.width(), empty.height()), (52, 52));
        assert_eq!((full.width(), full.height()), (3 * 50 + 2, 52));
        assert_eq!(sheet_file(3, 10), "cluster-03.png");
        assert_eq!(sheet_file(7, 120), "cluster-007.png");
    }
}
