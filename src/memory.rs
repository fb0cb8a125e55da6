//! The memory guard: the largest allocations (datasets read from declared sizes, decoded images,
//! PCA covariances, kNN distance blocks) are sized before they happen and refused when they
//! would not fit, with a message that says how much, why, and which setting lowers it. A refusal
//! in seconds beats an abort (or the OOM killer) after an hour.
//!
//! The budget is `--max-memory` (or `$ZEROLABEL_MAX_MEMORY`) when set, else the kernel's
//! `MemAvailable` estimate from `/proc/meminfo`.
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};

/// 0: not set (use the machine's available memory).
static MAX_MEMORY: AtomicU64 = AtomicU64::new(0);

/// Sets the budget for this process (`--max-memory`); `None` returns to the machine's.
pub fn set_max_memory(bytes: Option<u64>) {
    MAX_MEMORY.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

/// Parses a size such as `512M`, `4G`, `1.5GiB`, `2T` or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: f64 = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(Error::invalid("max-memory", text, "a size such as 512M, 4G or a byte count")),
    };
    let value: f64 = number.parse().map_err(|_| Error::invalid("max-memory", text, "a size such as 512M, 4G or a byte count"))?;
    let bytes = value * factor;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(Error::invalid("max-memory", text, "a positive size below 16 EiB"));
    }
    Ok(bytes as u64)
}

/// `MemAvailable` of /proc/meminfo in bytes (None where there is no such file).
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// The budget in bytes and where it comes from.
pub fn budget() -> (u64, &'static str) {
    let set = MAX_MEMORY.load(Ordering::Relaxed);
    if set > 0 {
        return (set, "--max-memory");
    }
    if let Some(bytes) = std::env::var("ZEROLABEL_MAX_MEMORY").ok().and_then(|v| parse_size(&v).ok()) {
        return (bytes, "$ZEROLABEL_MAX_MEMORY");
    }
    match available_bytes() {
        Some(bytes) => (bytes, "the memory available on this machine (MemAvailable)"),
        None => (u64::MAX, "no known limit"),
    }
}

/// Human-readable bytes (MiB / GiB).
pub fn human(bytes: u128) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// Refuses an allocation of `bytes` for `what` that would exceed the budget; `lower` says which
/// setting makes it smaller (e.g. "lower data.folder_size").
pub fn ensure_fits(bytes: u128, what: &str, lower: &str) -> Result<()> {
    let (limit, source) = budget();
    if bytes > limit as u128 {
        return Err(Error::Memory(format!(
            "{what} needs {} but the limit is {} ({source}); {lower}, or raise the limit with --max-memory",
            human(bytes),
            human(limit as u128)
        )));
    }
    Ok(())
}

/// `a * b * ...` in u128 (never overflows for the sizes a reader sees: at most 8 factors of u64).
pub fn product(factors: &[usize]) -> u128 {
    factors.iter().fold(1u128, |acc, &f| acc.saturating_mul(f as u128))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_guard_refuses_with_the_setting() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("lots").is_err() && parse_size("-1G").is_err() && parse_size("0").is_err());
        set_max_memory(Some(1 << 20));
        let e = ensure_fits(2 << 20, "the test images", "lower data.limit").unwrap_err().to_string();
        assert!(e.contains("2.0 MiB") && e.contains("1.0 MiB") && e.contains("data.limit") && e.contains("--max-memory"), "{e}");
        assert!(ensure_fits(1 << 19, "x", "y").is_ok());
        set_max_memory(None);
    }
}
