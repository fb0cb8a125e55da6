//! Throughput of the SimCLR augmentation pipeline alone (images/s, one view each), on
//! CIFAR-10-sized images: `cargo run --release --example bench_augment -- [DATA_DIR] [THREADS]`.
use zerolabel::data::augment::{two_view_batch, AugmentParams};
use zerolabel::data::images::{read_cifar10, Split};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("../shared/data/cifar10", String::as_str);
    let threads: usize = args.get(2).map_or(Ok(1), |t| t.parse())?;
    let set = read_cifar10(std::path::Path::new(dir), Split::Test)?;
    let indices: Vec<usize> = (0..set.count).collect();
    let start = std::time::Instant::now();
    let mut views = 0;
    for (epoch, chunk) in indices.chunks(1000).enumerate() {
        let _ = two_view_batch(&set, chunk, 32, &AugmentParams::default(), 0, epoch, threads);
        views += 2 * chunk.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{}", serde_json::json!({"implementation": "zerolabel", "threads": threads, "augment_images_per_s": views as f64 / seconds}));
    Ok(())
}
