//! IDX files (MNIST, Fashion-MNIST), gzipped or not: big-endian header with magic
//! 0x0000080x (x = number of dimensions), then unsigned bytes.
use super::checked;
use crate::error::{Error, Result};
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Debug)]
pub struct IdxArray {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an `.idx*-ubyte` file; a `.gz` file (or any file starting with the gzip magic) is
/// decompressed first (up to the memory budget).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx_file_bytes(checked::read_file(path)?, path)
}

/// The bytes of an IDX file as stored (raw or gzip); `path` only names the source in errors.
pub fn parse_idx_file_bytes(raw: Vec<u8>, path: &Path) -> Result<IdxArray> {
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        checked::inflate_limited(flate2::read::MultiGzDecoder::new(&raw[..]), checked::inflate_limit(), path, "gzip data")?
    } else {
        raw
    };
    parse_idx(&bytes, path)
}

pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(path, "not an IDX file (the magic number must start with two zero bytes)"));
    }
    if bytes[2] != 0x08 {
        return Err(Error::format(path, format!("IDX data type 0x{:02x} is not supported (expected 0x08, unsigned byte)", bytes[2])));
    }
    let dims = bytes[3] as usize;
    if dims == 0 || bytes.len() < 4 + 4 * dims {
        return Err(Error::format(path, format!("truncated IDX header ({dims} dimensions, {} bytes)", bytes.len())));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|k| u32::from_be_bytes([bytes[4 + 4 * k], bytes[5 + 4 * k], bytes[6 + 4 * k], bytes[7 + 4 * k]]) as usize)
        .collect();
    let body = &bytes[4 + 4 * dims..];
    // Checked: 4 x 2^31 x 2^31 must not wrap to a small number.
    let needed = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::format(path, format!("declared shape {shape:?} is too large (the size overflows)")))?;
    if body.len() < needed {
        return Err(Error::format(path, format!("truncated: shape {shape:?} needs {needed} data bytes, file has {}", body.len())));
    }
    if body.len() > needed {
        return Err(Error::format(path, format!("{} unexpected bytes after the data of shape {shape:?}", body.len() - needed)));
    }
    Ok(IdxArray { shape, data: body.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let p = Path::new("t.idx");
        let mut ok = vec![0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        ok.extend([1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&ok, p).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert!(parse_idx(&ok[..15], p).unwrap_err().to_string().contains("truncated"));
        assert!(parse_idx(b"\x1f\x8bxxxx", p).unwrap_err().to_string().contains("magic"));
        let mut wrong_type = ok.clone();
        wrong_type[2] = 0x0d;
        assert!(parse_idx(&wrong_type, p).unwrap_err().to_string().contains("0x0d"));
    }
}
