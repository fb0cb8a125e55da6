//! A mutation fuzzer for every parser that reads user files (issue 12): small valid seed files,
//! mutated (bit flips, truncation, header fields set to 0 / max / negative / inflated, repeated
//! and deleted chunks, numbers in text replaced by hostile ones), fed to the parser's bytes entry
//! point. A parser may return any error; it must not panic, abort, hang or allocate more than the
//! budget. Driven by `examples/fuzz_readers.rs` (long runs) and `tests/fuzz_smoke.rs` (CI).
use crate::data::{features, idx, images, npy, npz};
use crate::rng::Rng;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The parsers under test, by name.
pub const PARSERS: [&str; 13] =
    ["idx", "idx-gz", "cifar10", "cifar100", "stl10", "npy", "npz", "safetensors", "image-png", "image-jpeg", "word-vectors", "config-toml", "checkpoint-json"];

/// The memory budget the fuzzed readers run under: declared sizes above it are refused.
pub const FUZZ_MEMORY_BUDGET: u64 = 64 << 20;

/// Any single allocation above this is a failure (checked by [`CapAllocator`]).
pub const ALLOCATION_CAP: usize = 128 << 20;

/// Counts allocations above [`ALLOCATION_CAP`]; install it as the `#[global_allocator]` of a
/// fuzz binary.
pub struct CapAllocator;
pub static OVERSIZED_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for CapAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > ALLOCATION_CAP {
            OVERSIZED_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOCATION_CAP {
            OVERSIZED_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

fn idx_seed() -> Vec<u8> {
    let mut b = vec![0u8, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4];
    b.extend((0..48u8).map(|k| k.wrapping_mul(37)));
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

fn npy_seed(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    b.extend(data);
    b
}

/// A zip of `.npy` members, deflated (`deflate`) or stored.
pub fn zip_members(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let stored = if deflate {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = e.write_all(data);
            e.finish().unwrap_or_default()
        } else {
            data.clone()
        };
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            v.extend(20u16.to_le_bytes());
            v.extend(0u16.to_le_bytes());
            v.extend(if deflate { 8u16 } else { 0 }.to_le_bytes());
            v.extend([0u8; 4]);
            v.extend(crc.sum().to_le_bytes());
            v.extend((stored.len() as u32).to_le_bytes());
            v.extend((data.len() as u32).to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes());
        };
        out.extend([0x50, 0x4b, 0x03, 0x04]);
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(&stored);
        central.extend([0x50, 0x4b, 0x01, 0x02]);
        central.extend(20u16.to_le_bytes());
        common(&mut central);
        central.extend([0u8; 10]);
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend([0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

fn image_seed(jpeg: bool) -> Vec<u8> {
    let img = image::RgbImage::from_fn(6, 5, |x, y| image::Rgb([(x * 40) as u8, (y * 50) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    let format = if jpeg { image::ImageFormat::Jpeg } else { image::ImageFormat::Png };
    let _ = img.write_to(&mut out, format);
    out.into_inner()
}

const CONFIG_SEED: &str = "name = \"tiny\"\ndevice = \"cpu\"\n[data]\nformat = \"idx\"\npath = \"data\"\nlimit = 300\n\
[classes]\nnames = [\"cat\", \"dog\", \"car\"]\nword_vectors = \"words.txt\"\n\
[pretrain]\nwidth = 0.25\nepochs = 2\nbatch_size = 32\nlr = 1e-3\ntemperature = 0.5\nweight_decay = 1e-6\n\
[stages]\nseeds = 2\ncluster_steps = 20\nsteps = 20\nlr = 1e-5\nepsilon = 0.01\n[report]\nsk_comparison = false\n";

const META_SEED: &str = r#"{"epoch":1,"adam_step":9,"seed":0,"best_loss":5.2,"best_epoch":1,
"backbone":{"depth":"resnet18","stem":"cifar","width":0.25,"in_channels":1},
"params":{"batch_size":32,"epochs":2,"learning_rate":0.001,"weight_decay":1e-6,"temperature":0.5,"projection_hidden":128,
"projection_dim":64,"image_size":28,"augment":{"crop_scale":[0.3,1.0],"crop_ratio":[0.75,1.333],"flip_p":0.5,"jitter_p":0.8,
"brightness":0.4,"contrast":0.4,"saturation":0.4,"hue":0.1,"grayscale_p":0.2},"loader_threads":1,"precision":"fp32","lr_schedule":"constant"},
"normalization":{"mean":[0.28],"std":[0.35]}}"#;

/// The seed file of a parser (small, so that each execution is fast).
pub fn seed_file(parser: &str) -> Vec<u8> {
    match parser {
        "idx" => idx_seed(),
        "idx-gz" => gzip(&idx_seed()),
        "cifar10" => (0..2 * 3073).map(|k| if k % 3073 == 0 { 3 } else { (k % 251) as u8 }).collect(),
        "cifar100" => (0..2 * 3074).map(|k| if k % 3074 < 2 { 7 } else { (k % 251) as u8 }).collect(),
        "stl10" => {
            let mut b: Vec<u8> = (0..96 * 96 * 3).map(|k| (k % 253) as u8).collect();
            b.push(4); // the label, last byte (split off by the harness)
            b
        }
        "npy" => npy_seed("<f4", &[3, 4], &(0..12).flat_map(|k| (k as f32 * 0.5).to_le_bytes()).collect::<Vec<_>>()),
        "npz" => zip_members(
            &[
                ("train_images.npy", npy_seed("|u1", &[2, 4, 4], &[9; 32])),
                ("train_labels.npy", npy_seed("<i8", &[2, 1], &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])),
            ],
            true,
        ),
        "safetensors" => {
            let x = tch::Tensor::from_slice(&[0.5f32, 1.0, -1.0, 2.0, 0.25, 3.0]).view([3, 2]);
            let labels = tch::Tensor::from_slice(&[0i64, 1, 2]);
            let dir = std::env::temp_dir().join(format!("zl-fuzz-seed-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join("f.safetensors");
            let _ = tch::Tensor::write_safetensors(&[("features", &x), ("labels", &labels)], &path);
            let bytes = std::fs::read(&path).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
            bytes
        }
        "image-png" => image_seed(false),
        "image-jpeg" => image_seed(true),
        "word-vectors" => b"3 4\ncat 0.1 0.2 -0.3 0.4\ndog 0.2 0.1 -0.2 0.5\ncar -1 0 1e-3 2\n".to_vec(),
        "config-toml" => CONFIG_SEED.as_bytes().to_vec(),
        "checkpoint-json" => META_SEED.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

const HOSTILE_NUMBERS: [&str; 12] = ["nan", "inf", "-inf", "-1", "0", "1e309", "1e-320", "99999999999999999999", "-9223372036854775808", "4294967296", "1e300", "NaN"];

/// One mutation of `seed`.
pub fn mutate(seed: &[u8], rng: &mut Rng, text: bool) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let len = b.len().max(1);
        match rng.below(if text { 10 } else { 9 }) {
            0 => {
                // Bit flips.
                for _ in 0..1 + rng.below(8) {
                    if !b.is_empty() {
                        let i = rng.below(b.len());
                        b[i] ^= 1 << rng.below(8);
                    }
                }
            }
            1 => b.truncate(rng.below(len)),
            2 | 3 => {
                // A header field (in the first 64 bytes) set to 0, max, negative or inflated.
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let at = rng.below(len.min(64));
                let value: u64 = match rng.below(5) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => 1 << (width * 8 - 1),
                    3 => 1u64 << rng.below(64),
                    _ => rng.next_u64(),
                };
                let big_endian = rng.below(2) == 0;
                for k in 0..width {
                    if at + k < b.len() {
                        let shift = if big_endian { 8 * (width - 1 - k) } else { 8 * k };
                        b[at + k] = (value >> shift) as u8;
                    }
                }
            }
            4 => {
                // Repeat a chunk (repeated records, members, lines).
                if !b.is_empty() {
                    let start = rng.below(b.len());
                    let end = (start + 1 + rng.below(256)).min(b.len());
                    let chunk = b[start..end].to_vec();
                    let at = rng.below(b.len() + 1);
                    b.splice(at..at, chunk);
                }
            }
            5 => {
                // Delete a chunk.
                if !b.is_empty() {
                    let start = rng.below(b.len());
                    let end = (start + 1 + rng.below(64)).min(b.len());
                    b.drain(start..end);
                }
            }
            6 => b.extend((0..rng.below(64)).map(|_| rng.next_u64() as u8)),
            7 => {
                // Random bytes overwritten.
                for _ in 0..1 + rng.below(4) {
                    if !b.is_empty() {
                        let i = rng.below(b.len());
                        b[i] = rng.next_u64() as u8;
                    }
                }
            }
            8 => {
                // Interesting byte values.
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] = [0u8, 0xff, 0x7f, 0x80, b'\n', b'"', b'\'', b'(', b',', b'-'][rng.below(10)];
                }
            }
            _ => {
                // Text: a number replaced by a hostile one.
                let s = String::from_utf8_lossy(&b).into_owned();
                let starts: Vec<usize> = s.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
                if !starts.is_empty() {
                    let i = starts[rng.below(starts.len())];
                    let end = s[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).map_or(s.len(), |e| i + e);
                    let replaced = format!("{}{}{}", &s[..i], HOSTILE_NUMBERS[rng.below(HOSTILE_NUMBERS.len())], &s[end..]);
                    b = replaced.into_bytes();
                }
            }
        }
    }
    b
}

/// Runs one parser on `bytes`; Ok(true) when the input was accepted, Ok(false) when refused
/// with an error. A panic propagates (the caller catches it).
pub fn parse(parser: &str, bytes: &[u8]) -> bool {
    let p = Path::new("fuzz-input");
    match parser {
        "idx" | "idx-gz" => idx::parse_idx_file_bytes(bytes.to_vec(), p).is_ok(),
        "cifar10" => images::parse_cifar10_bytes(bytes, p).is_ok(),
        "cifar100" => images::parse_cifar100_bytes(bytes, p, bytes.len() % 2 == 0).is_ok(),
        "stl10" => {
            let cut = bytes.len().saturating_sub(1).min(96 * 96 * 3);
            images::parse_stl10_bytes(&bytes[..cut], p, Some((p, &bytes[cut..]))).is_ok()
        }
        "npy" => npy::parse_npy(bytes, p).map(|a| a.to_f32_c_order().len()).is_ok(),
        "npz" => npz::parse_npz(bytes, p).and_then(|m| images::parse_medmnist(m, p, images::Split::Train)).is_ok(),
        "safetensors" => features::parse_features(bytes, p, false).is_ok(),
        "image-png" | "image-jpeg" => images::decode_image(bytes, p).map(|img| img.resize_exact(8, 8, image::imageops::FilterType::Triangle)).is_ok(),
        "word-vectors" => {
            let wanted: HashSet<String> = ["cat", "dog", "car"].iter().map(|s| s.to_string()).collect();
            crate::prior::word_vectors::parse_text_vectors(bytes, p, &wanted).is_ok()
        }
        "config-toml" => match std::str::from_utf8(bytes) {
            Ok(text) => crate::config::RunConfig::parse(text, p).is_ok(),
            Err(_) => false,
        },
        "checkpoint-json" => match std::str::from_utf8(bytes) {
            Ok(text) => crate::backbone::simclr::parse_meta(text, p).is_ok(),
            Err(_) => false,
        },
        other => panic!("unknown parser {other}"),
    }
}

/// Per-parser totals.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub executions: u64,
    pub accepted: u64,
    pub refused: u64,
    pub panics: u64,
    pub oversized_allocations: u64,
    /// The slowest case, in seconds (a hang shows here, or trips the caller's watchdog).
    pub slowest_s: f64,
    /// The first failing inputs (mutation index, panic message).
    pub failures: Vec<(u64, String)>,
}

/// Runs `cases` mutations of `parser`'s seed, with the memory budget set to
/// [`FUZZ_MEMORY_BUDGET`]. `on_case` is called before each case with its index (a watchdog
/// uses it to detect hangs); failing inputs are written to `keep` when given.
pub fn fuzz(parser: &str, cases: u64, seed: u64, keep: Option<&Path>, mut on_case: impl FnMut(u64)) -> Tally {
    crate::memory::set_max_memory(Some(FUZZ_MEMORY_BUDGET));
    let text = matches!(parser, "word-vectors" | "config-toml" | "checkpoint-json");
    let seed_bytes = seed_file(parser);
    let mut rng = Rng::derive(seed, parser);
    let mut tally = Tally::default();
    for case in 0..cases {
        on_case(case);
        let input = if case == 0 { seed_bytes.clone() } else { mutate(&seed_bytes, &mut rng, text) };
        let before = OVERSIZED_ALLOCATIONS.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(|| parse(parser, &input));
        tally.slowest_s = tally.slowest_s.max(started.elapsed().as_secs_f64());
        tally.executions += 1;
        let oversized = OVERSIZED_ALLOCATIONS.load(Ordering::Relaxed) > before;
        match outcome {
            Ok(true) => tally.accepted += 1,
            Ok(false) => tally.refused += 1,
            Err(payload) => {
                tally.panics += 1;
                let message = payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                if tally.failures.len() < 10 {
                    tally.failures.push((case, message));
                    if let Some(dir) = keep {
                        let _ = std::fs::create_dir_all(dir);
                        let _ = std::fs::write(dir.join(format!("{parser}-{case}.bin")), &input);
                    }
                }
            }
        }
        if oversized {
            tally.oversized_allocations += 1;
        }
    }
    crate::memory::set_max_memory(None);
    tally
}
