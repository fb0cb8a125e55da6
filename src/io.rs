//! Writing results without ever leaving a half-written file: write beside the target, then
//! rename (atomic on POSIX file systems), so an interrupted run keeps the previous version.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

fn temporary_path(path: &Path) -> PathBuf {
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
pub struct JsonLines {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl JsonLines {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> Result<Self> {
        create_parent(path)?;
        let file = std::fs::File::create(path).map_err(|e| Error::Write { path: path.into(), source: e })?;
        Ok(JsonLines { path: path.into(), file: std::io::BufWriter::new(file) })
    }

    /// Opens the file for appending (a resumed run continues its log).
    pub fn append(path: &Path) -> Result<Self> {
        create_parent(path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::Write { path: path.into(), source: e })?;
        Ok(JsonLines { path: path.into(), file: std::io::BufWriter::new(file) })
    }

    pub fn write(&mut self, value: &serde_json::Value) -> Result<()> {
        let map = |e: std::io::Error| Error::Write { path: self.path.clone(), source: e };
        serde_json::to_writer(&mut self.file, value).map_err(|e| map(std::io::Error::other(e)))?;
        self.file.write_all(b"\n").map_err(map)
    }

    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| Error::Write { path: self.path.clone(), source: e })
    }
}
