//! NumPy `.npz` archives (MedMNIST): a zip of `.npy` members, stored or deflated. A small zip
//! reader (central directory + local headers) over flate2, instead of a zip crate.
use super::npy::{parse_npy, NpyArray};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}
fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Reads every member of an `.npz` file, in archive order, as (name without `.npy`, array).
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |m: &str| Error::format(path, format!("not a readable .npz (zip) archive: {m}"));
    // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (search_from..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| bad("no end-of-central-directory record (truncated?)"))?;
    let entries = u16_at(&bytes, eocd + 10);
    let mut at = u32_at(&bytes, eocd + 16);
    let mut members = Vec::with_capacity(entries);
    for _ in 0..entries {
        if at + 46 > bytes.len() || bytes[at..at + 4] != [0x50, 0x4b, 0x01, 0x02] {
            return Err(bad("corrupt central directory"));
        }
        let method = u16_at(&bytes, at + 10);
        let compressed = u32_at(&bytes, at + 20);
        let size = u32_at(&bytes, at + 24);
        let (name_len, extra_len, comment_len) = (u16_at(&bytes, at + 28), u16_at(&bytes, at + 30), u16_at(&bytes, at + 32));
        let local = u32_at(&bytes, at + 42);
        let name = String::from_utf8_lossy(&bytes[at + 46..at + 46 + name_len]).into_owned();
        at += 46 + name_len + extra_len + comment_len;
        if local + 30 > bytes.len() || bytes[local..local + 4] != [0x50, 0x4b, 0x03, 0x04] {
            return Err(bad(&format!("member {name}: corrupt local header")));
        }
        let data_start = local + 30 + u16_at(&bytes, local + 26) + u16_at(&bytes, local + 28);
        let data = bytes.get(data_start..data_start + compressed).ok_or_else(|| bad(&format!("member {name} is truncated")))?;
        let raw = match method {
            0 => data.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(size);
                flate2::read::DeflateDecoder::new(data)
                    .read_to_end(&mut out)
                    .map_err(|e| bad(&format!("member {name}: corrupt deflate data ({e})")))?;
                out
            }
            m => return Err(bad(&format!("member {name}: compression method {m} is not supported (stored or deflate)"))),
        };
        let member_path = path.join(&name);
        let array = parse_npy(&raw, &member_path)?;
        members.push((name.trim_end_matches(".npy").to_string(), array));
    }
    Ok(members)
}
