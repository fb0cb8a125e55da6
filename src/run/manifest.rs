//! What a run records about itself: one [`StageRecord`] per stage (also kept as `stage.json`
//! in the stage's folder) and `manifest.json` (configuration, seeds, versions, wall times, peak
//! memory). [`Stages`] runs a cached stage and records it.
use crate::error::Result;
use crate::io;
use crate::layout::RunLayout;
use crate::progress::status;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One stage's line in the manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub key: String,
    /// Relative to the run folder.
    pub dir: PathBuf,
    /// True when this invocation found the result finished and did not recompute it.
    #[serde(default)]
    pub reused: bool,
    /// Wall time and peak resident memory of the invocation that computed it.
    pub wall_s: f64,
    pub peak_rss_mb: Option<f64>,
}

/// FNV-1a (64 bit) of a JSON value's text: a short, stable key for a stage's inputs.
pub fn stage_key(value: &Value) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in value.to_string().bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Resets the kernel's peak-RSS counter of this process (Linux), so each stage's peak is its own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory since the last reset, in MiB (Linux; None elsewhere).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The stages of one invocation, in order.
pub struct Stages<'a> {
    layout: &'a RunLayout,
    quiet: bool,
    pub records: Vec<StageRecord>,
}

impl<'a> Stages<'a> {
    pub fn new(layout: &'a RunLayout, quiet: bool) -> Self {
        Stages { layout, quiet, records: Vec::new() }
    }

    /// Runs `work` in `stages/<name>-<key>/` unless `finished` says its result is already
    /// there; records either way and returns the folder.
    pub fn run(&mut self, name: &str, key: &str, finished: bool, work: impl FnOnce(&Path) -> Result<(), anyhow::Error>) -> Result<PathBuf, anyhow::Error> {
        let dir = self.layout.stage(name, key);
        let record_path = RunLayout::stage_record(&dir);
        if finished {
            if let Some(mut record) = std::fs::read_to_string(&record_path).ok().and_then(|t| serde_json::from_str::<StageRecord>(&t).ok()) {
                status("Reused", &format!("{name} ({})", dir.display()), self.quiet);
                record.reused = true;
                self.records.push(record);
                return Ok(dir);
            }
        }
        status("Stage", &format!("{name} -> {}", dir.display()), self.quiet);
        reset_peak_rss();
        let started = Instant::now();
        work(&dir)?;
        let record = StageRecord {
            name: name.into(),
            key: key.into(),
            dir: RunLayout::stage_relative(name, key),
            reused: false,
            wall_s: started.elapsed().as_secs_f64(),
            peak_rss_mb: peak_rss_mb(),
        };
        io::write_json_atomic(&record_path, &record)?;
        self.records.push(record);
        Ok(dir)
    }

    /// The record of the stage just run, for adjustments (a name, reuse of its seeds).
    pub fn last_mut(&mut self) -> Option<&mut StageRecord> {
        self.records.last_mut()
    }

    /// Records a step that is not cached (the report).
    pub fn record_uncached(&mut self, name: &str, dir: PathBuf, started: Instant) {
        self.records.push(StageRecord { name: name.into(), key: String::new(), dir, reused: false, wall_s: started.elapsed().as_secs_f64(), peak_rss_mb: peak_rss_mb() });
    }
}

/// The libtorch version of the wheel this binary was built against, when its files are found.
pub fn libtorch_version() -> Option<String> {
    let lib = std::env::var_os("LIBTORCH").map(|d| PathBuf::from(d).join("lib")).or_else(|| option_env!("ZEROLABEL_LIBTORCH_LIB").map(PathBuf::from))?;
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split('\'').nth(1)?.to_string())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
