//! Mutation fuzzing of every reader of user files (issue 12): IDX (raw, gzip), CIFAR-10/100,
//! STL-10, .npy, .npz, safetensors features, PNG/JPEG images, word-vector text, run configs
//! (TOML) and checkpoint metadata (JSON). Every case must end in a value or an error: a panic,
//! an abort, a hang (a case over --timeout-ms) or an allocation over the cap is a failure.
//!
//!     cargo run --release --example fuzz_readers -- --cases 1000000 [--parsers idx,npz] [--seed 1] [--keep DIR]
//!
//! Prints one line per parser (executions, accepted, refused, panics, oversized allocations,
//! slowest case) and exits 1 on any failure.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zerolabel::fuzz::{self, CapAllocator};

#[global_allocator]
static ALLOCATOR: CapAllocator = CapAllocator;

static CASE_STARTED_MS: AtomicU64 = AtomicU64::new(0);
static CURRENT: Mutex<(String, u64)> = Mutex::new((String::new(), 0));

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let cases: u64 = value("--cases").and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let seed: u64 = value("--seed").and_then(|v| v.parse().ok()).unwrap_or(1);
    let timeout_ms: u64 = value("--timeout-ms").and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let keep = value("--keep").map(std::path::PathBuf::from);
    let parsers: Vec<String> = match value("--parsers") {
        Some(list) => list.split(',').map(str::to_string).collect(),
        None => fuzz::PARSERS.iter().map(|s| s.to_string()).collect(),
    };
    tch::set_num_threads(1);
    std::panic::set_hook(Box::new(|_| {})); // panics are counted, not printed
    let origin = Instant::now();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        let started = CASE_STARTED_MS.load(Ordering::Relaxed);
        let now = origin.elapsed().as_millis() as u64;
        if started > 0 && now.saturating_sub(started) > timeout_ms {
            let (parser, case) = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
            eprintln!("HANG: parser {parser}, case {case} ran over {timeout_ms} ms (seed {seed})");
            std::process::exit(3);
        }
    });
    println!("| parser | executions | accepted | refused | panics | oversized allocations | hangs | slowest case | wall |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut failed = false;
    for parser in &parsers {
        let started = Instant::now();
        let tally = fuzz::fuzz(parser, cases, seed, keep.as_deref(), |case| {
            if case % 64 == 0 {
                if let Ok(mut c) = CURRENT.lock() {
                    *c = (parser.clone(), case);
                }
            }
            CASE_STARTED_MS.store(origin.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        });
        CASE_STARTED_MS.store(0, Ordering::Relaxed);
        println!(
            "| {parser} | {} | {} | {} | {} | {} | 0 | {:.1} ms | {:.0} s |",
            tally.executions, tally.accepted, tally.refused, tally.panics, tally.oversized_allocations, tally.slowest_s * 1e3, started.elapsed().as_secs_f64()
        );
        for (case, message) in &tally.failures {
            eprintln!("  {parser} case {case}: panic: {message}");
        }
        failed |= tally.panics > 0 || tally.oversized_allocations > 0;
    }
    std::process::exit(if failed { 1 } else { 0 });
}
