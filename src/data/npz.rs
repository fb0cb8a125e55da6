//! NumPy `.npz` archives (MedMNIST): a zip of `.npy` members, stored or deflated. A small zip
//! reader (central directory + local headers) over flate2, instead of a zip crate. Every offset
//! and size read from the archive is bounds-checked, each member's declared size is checked
//! against the memory budget before it is inflated, and its CRC-32 is verified, so corrupt
//! compressed data is reported as such (not as a garbled `.npy` header).
use super::checked;
use super::npy::{parse_npy, NpyArray};
use crate::error::{Error, Result};
use std::path::Path;

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
}
fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]) as usize)
}

/// Reads every member of an `.npz` file, in archive order, as (name without `.npy`, array).
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    parse_npz(&checked::read_file(path)?, path)
}

/// Parses the bytes of an `.npz` archive; `path` only names the source in errors.
pub fn parse_npz(bytes: &[u8], path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let bad = |m: &str| Error::format(path, format!("not a readable .npz (zip) archive: {m}"));
    // End of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes.
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (search_from..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or_else(|| bad("no end-of-central-directory record (truncated?)"))?;
    let corrupt_directory = || bad("corrupt central directory");
    let entries = u16_at(bytes, eocd + 10).ok_or_else(corrupt_directory)?;
    let mut at = u32_at(bytes, eocd + 16).ok_or_else(corrupt_directory)?;
    let mut members: Vec<(String, NpyArray)> = Vec::new();
    for _ in 0..entries {
        if bytes.get(at..at + 4) != Some(&[0x50, 0x4b, 0x01, 0x02][..]) || at + 46 > bytes.len() {
            return Err(corrupt_directory());
        }
        let field = |offset: usize, width: usize| if width == 2 { u16_at(bytes, at + offset) } else { u32_at(bytes, at + offset) };
        let (Some(method), Some(crc), Some(compressed), Some(size), Some(name_len), Some(extra_len), Some(comment_len), Some(local)) =
            (field(10, 2), field(16, 4), field(20, 4), field(24, 4), field(28, 2), field(30, 2), field(32, 2), field(42, 4))
        else {
            return Err(corrupt_directory());
        };
        let name_bytes = bytes.get(at + 46..at + 46 + name_len).ok_or_else(corrupt_directory)?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        at += 46 + name_len + extra_len + comment_len;
        let stem = name.trim_end_matches(".npy").to_string();
        if members.iter().any(|(n, _)| *n == stem) {
            return Err(bad(&format!("member {name} appears twice")));
        }
        if bytes.get(local..local + 4) != Some(&[0x50, 0x4b, 0x03, 0x04][..]) {
            return Err(bad(&format!("member {name}: corrupt local header")));
        }
        let (Some(local_name), Some(local_extra)) = (u16_at(bytes, local + 26), u16_at(bytes, local + 28)) else {
            return Err(bad(&format!("member {name}: corrupt local header")));
        };
        let data_start = local + 30 + local_name + local_extra;
        let data = bytes.get(data_start..data_start + compressed).ok_or_else(|| bad(&format!("member {name} is truncated")))?;
        let what = format!("member {name}");
        let raw = match method {
            0 => data.to_vec(),
            8 => {
                crate::memory::ensure_fits(size as u128, &format!("{what} of {}", path.display()), "check the file (a damaged size field?)")?;
                checked::inflate_limited(flate2::read::DeflateDecoder::new(data), size, path, &what)?
            }
            m => return Err(bad(&format!("member {name}: compression method {m} is not supported (stored or deflate)"))),
        };
        if raw.len() != size {
            return Err(bad(&format!("member {name}: {} bytes after decompression, the directory says {size} (corrupt compressed data)", raw.len())));
        }
        let mut hasher = flate2::Crc::new();
        hasher.update(&raw);
        if hasher.sum() as usize != crc {
            return Err(bad(&format!("member {name}: CRC-32 mismatch (corrupt compressed data)")));
        }
        let member_path = path.join(&name);
        let array = parse_npy(&raw, &member_path)?;
        members.push((stem, array));
    }
    Ok(members)
}
