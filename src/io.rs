//! Writing results without ever leaving a half-written file: write beside the target, then
//! rename (atomic on POSIX file systems), so an interrupted run keeps the previous version.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The name a file is written under before it is renamed to `path` (hidden, beside it).
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Creates the folder that will hold `path`.
fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::Write { path: parent.into(), source: e })?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    create_parent(path)?;
    let tmp = temporary_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write { path: path.into(), source: e }
    })
}

/// Renames staged files (temporary, final) in order; on failure removes the staged files not yet
/// renamed.
pub fn rename_all(staged: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (k, (tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            for (t, _) in &staged[k..] {
                let _ = std::fs::remove_file(t);
            }
            return Err(Error::Write { path: path.clone(), source: e });
        }
    }
    Ok(())
}

/// `run --force`: removes the stage results and the model file that points into them (after
/// the caller has validated everything). The stages folder is first renamed aside, so a
/// failure half-way never leaves a half-deleted folder under its real name.
pub fn remove_for_rerun(stages: &Path, model: &Path) -> Result<()> {
    if model.exists() {
        std::fs::remove_file(model).map_err(|e| Error::Write { path: model.into(), source: e })?;
    }
    if stages.exists() {
        let aside = temporary_path(stages);
        std::fs::rename(stages, &aside).map_err(|e| Error::Write { path: stages.into(), source: e })?;
        std::fs::remove_dir_all(&aside).map_err(|e| Error::Write { path: aside.clone(), source: e })?;
    }
    Ok(())
}

pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Write {
        path: path.into(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Saves named f32 tensors as safetensors, atomically.
pub fn write_safetensors_atomic(path: &Path, tensors: &[(&str, &tch::Tensor)]) -> Result<()> {
    let tmp = temporary_path(path);
    create_parent(path)?;
    let owned: Vec<(&str, tch::Tensor)> =
        tensors.iter().map(|(n, t)| (*n, t.to_device(tch::Device::Cpu).contiguous())).collect();
    tch::Tensor::write_safetensors(&owned, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write { path: path.into(), source: e }
    })
}

/// A JSON-lines metrics file (one object a line) that a user can plot while a run is going.
/// The lines are kept in memory and the whole file is replaced atomically at every `flush`, so
/// the file under its final name is always complete (never empty or cut mid-line), even when
/// the run fails or is killed.
pub struct JsonLines {
    path: PathBuf,
    text: String,
}

impl JsonLines {
    /// Starts a new file (the old one stays until the first `flush`).
    pub fn create(path: &Path) -> Result<Self> {
        create_parent(path)?;
        Ok(JsonLines { path: path.into(), text: String::new() })
    }

    /// Continues the existing file (a resumed run continues its log).
    pub fn append(path: &Path) -> Result<Self> {
        create_parent(path)?;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        Ok(JsonLines { path: path.into(), text })
    }

    pub fn write(&mut self, value: &serde_json::Value) -> Result<()> {
        let line = serde_json::to_string(value).map_err(|e| Error::Write { path: self.path.clone(), source: std::io::Error::other(e) })?;
        self.text.push_str(&line);
        self.text.push('\n');
        Ok(())
    }

    /// Keeps only the lines that `keep` accepts (lines that are not JSON are dropped).
    pub fn retain(&mut self, keep: impl Fn(&serde_json::Value) -> bool) {
        let mut kept = String::new();
        for line in self.text.lines() {
            if serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| keep(&v)) {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        self.text = kept;
    }

    pub fn flush(&mut self) -> Result<()> {
        write_atomic(&self.path, self.text.as_bytes())
    }
}
