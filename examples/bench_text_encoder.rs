//! Speed of a sentence encoder in tch (all-MiniLM-L6-v2 by default, or the model folder given,
//! e.g. .deps/all-mpnet-base-v2): the one-off load time, and class names per second with the
//! names alone and averaged over the 18 CIFAR templates.
//!
//!   OMP_NUM_THREADS=1 cargo run --release --example bench_text_encoder [-- MODEL_DIR]
//!
//! Names: the 100 CIFAR-100 classes (underscores as spaces). Each timing is the best of 3.
use anyhow::Result;
use std::time::Instant;
use zerolabel::prior::sentence_encoder::{default_model_dir, default_templates, SentenceEncoder};

const CIFAR100: [&str; 100] = [
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy", "bridge",
    "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud",
    "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion", "lizard", "lobster",
    "man", "maple tree", "motorcycle", "mountain", "mouse", "mushroom", "oak tree", "orange", "orchid", "otter",
    "palm tree", "pear", "pickup truck", "pine tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit",
    "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
];

fn best_of_three(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).map_or_else(default_model_dir, std::path::PathBuf::from);
    let t = Instant::now();
    let encoder = SentenceEncoder::load(&dir)?;
    let load = t.elapsed().as_secs_f64();
    println!("{}", encoder.describe());
    println!("libtorch threads: {}", tch::get_num_threads());
    println!("load (config, vocab.txt, model.safetensors): {:.3} s\n", load);
    let names: Vec<String> = CIFAR100.iter().map(|s| s.to_string()).collect();
    let templates = default_templates();
    println!("| input | class names | sentences | time (s) | class names / s | sentences / s |\n| --- | --- | --- | --- | --- | --- |");
    let alone = best_of_three(|| encoder.encode(&names).map(drop).map_err(Into::into))?;
    println!("| names alone | {} | {} | {alone:.3} | {:.0} | {:.0} |", names.len(), names.len(), names.len() as f64 / alone, names.len() as f64 / alone);
    let sentences = names.len() * templates.len();
    let templated = best_of_three(|| encoder.encode_classes(&names, &templates).map(drop).map_err(Into::into))?;
    println!(
        "| {} templates | {} | {sentences} | {templated:.3} | {:.1} | {:.0} |",
        templates.len(),
        names.len(),
        names.len() as f64 / templated,
        sentences as f64 / templated
    );
    Ok(())
}
