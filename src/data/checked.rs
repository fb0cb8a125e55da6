//! The one checked layer under every reader of user files.
//!
//! A damaged download, a half-copied folder or a hostile file must give an error that names the
//! file and what was expected, never a panic, an abort, a hang or a silent wrong result. So:
//! - only regular files are opened (a FIFO named `x.png` would block forever, a device never end);
//! - sizes declared in headers are multiplied with checked arithmetic, compared with the bytes
//!   actually there and with the memory budget ([`crate::memory`]) before anything is allocated;
//! - decompression stops at a limit instead of following a bomb;
//! - folders are walked following each real path once (symlink loops, repeated links).
use crate::error::{Error, Result};
use crate::memory;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

fn not_regular(path: &Path, meta: &std::fs::Metadata) -> Error {
    let what = if meta.is_dir() { "a folder" } else { "not a regular file (a FIFO, socket or device?)" };
    Error::format(path, format!("{what}; expected a regular file"))
}

/// Opens a regular file for reading (checked before opening: opening a FIFO blocks).
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

/// Reads a whole regular file, its size checked against the memory budget first.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut file = open_regular(path)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    memory::ensure_fits(len as u128, &format!("reading {}", path.display()), "use a smaller file")?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Reads a whole regular file as UTF-8 text.
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|e| Error::format(path, format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))
}

/// A dataset path must exist before its files are looked for, so that a typo in the folder is
/// reported as the folder, not as the first file missing inside it.
pub fn require_exists(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::io(path, std::io::Error::new(e.kind(), format!("{what} does not exist"))))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The byte size of an array of `shape` with `element` bytes per value, as declared by a header:
/// checked multiplication (a header of 2^31 x 2^31 must not wrap to 0) and checked against the
/// memory budget before anything is allocated.
pub fn declared_bytes(path: &Path, shape: &[usize], element: usize) -> Result<usize> {
    let bytes = shape.iter().try_fold(element, |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
        Error::format(path, format!("declared shape {shape:?} of {element}-byte values is too large (the size overflows)"))
    })?;
    memory::ensure_fits(bytes as u128, &format!("the array of shape {shape:?} declared by {}", path.display()), "check the file (a damaged header?)")?;
    Ok(bytes)
}

/// Decompresses `reader` into memory, refusing more than `limit` bytes (a zip or gzip bomb, or
/// a damaged size field, must not exhaust memory). `what` names the data in errors.
pub fn inflate_limited(reader: impl Read, limit: usize, path: &Path, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::format(path, format!("{what}: corrupt or truncated compressed data ({e})")))?;
    if out.len() > limit {
        return Err(Error::format(path, format!("{what}: decompresses to more than {limit} bytes (corrupt compressed data or a damaged size field?)")));
    }
    Ok(out)
}

/// The decompression limit: the memory budget, capped so that one file never takes it all.
pub fn inflate_limit() -> usize {
    let (budget, _) = memory::budget();
    budget.min(usize::MAX as u64) as usize
}

/// What a folder entry is, symlinks followed.
pub enum Entry {
    Dir(PathBuf),
    File(PathBuf),
    /// Neither a regular file nor a folder (FIFO, socket, device), or unreadable (a dangling
    /// link, a symlink loop): the reason.
    Other(PathBuf, String),
}

/// The entries of `dir`, sorted by path; hidden entries (names starting with '.') skipped.
pub fn list_dir(dir: &Path) -> Result<Vec<Entry>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        paths.push(path);
    }
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => Entry::Dir(path),
            Ok(m) if m.is_file() => Entry::File(path),
            Ok(_) => Entry::Other(path, "not a regular file (a FIFO, socket or device?)".into()),
            Err(e) => Entry::Other(path, format!("cannot be read ({e}): a dangling link or a symlink loop?")),
        })
        .collect())
}

/// Remembers real (canonical) paths, so that each file and folder is visited once however many
/// links lead to it.
#[derive(Default)]
pub struct Visited(HashSet<PathBuf>);

impl Visited {
    /// True the first time the real path behind `path` is seen.
    pub fn first_visit(&mut self, path: &Path) -> bool {
        match std::fs::canonicalize(path) {
            Ok(real) => self.0.insert(real),
            Err(_) => false,
        }
    }
}

/// Every regular file under `root` (or `root` itself), sorted, each real path once; hidden
/// entries skipped. Special files and unreadable links are returned apart with the reason.
pub fn walk_files(root: &Path) -> Result<(Vec<PathBuf>, Vec<(PathBuf, String)>)> {
    let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if meta.is_file() {
        return Ok((vec![root.to_path_buf()], vec![]));
    }
    if !meta.is_dir() {
        return Err(not_regular(root, &meta));
    }
    let (mut files, mut skipped) = (Vec::new(), Vec::new());
    let mut visited = Visited::default();
    visited.first_visit(root);
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in list_dir(&dir)? {
            match entry {
                Entry::Dir(p) if visited.first_visit(&p) => stack.push(p),
                Entry::File(p) if visited.first_visit(&p) => files.push(p),
                Entry::Dir(_) | Entry::File(_) => {}
                Entry::Other(p, why) => skipped.push((p, why)),
            }
        }
    }
    files.sort();
    Ok((files, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_sizes_overflow_is_an_error() {
        let e = declared_bytes(Path::new("x.idx"), &[4, 1 << 31, 1 << 31, 1 << 31], 8).unwrap_err().to_string();
        assert!(e.contains("x.idx") && e.contains("overflows"), "{e}");
        assert_eq!(declared_bytes(Path::new("x"), &[2, 3], 4).unwrap(), 24);
    }

    #[test]
    fn inflate_stops_at_the_limit() {
        let zeros = vec![0u8; 10_000];
        let e = inflate_limited(&zeros[..], 100, Path::new("z.gz"), "member").unwrap_err().to_string();
        assert!(e.contains("more than 100 bytes"), "{e}");
        assert_eq!(inflate_limited(&zeros[..], 10_000, Path::new("z"), "m").unwrap().len(), 10_000);
    }
}
