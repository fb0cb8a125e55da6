use anyhow::{Context, Result};
use std::path::PathBuf;
use tch::{Kind, Tensor};
use zerolabel::data::features::load_features;
use zerolabel::prior::sentence_encoder::{default_model_dir, default_mpnet_dir, default_templates, SentenceEncoder};
use zerolabel::prior::word_vectors::{WordVectorSource, WordVectors};
#[path = "common/kmeans.rs"]
mod kmeans;
use kmeans::{cached_kmeans, member_means};
fn rows(t: &Tensor) -> Vec<Vec<f64>> { Vec::<Vec<f64>>::try_from(&t.to_kind(Kind::Double)).expect("rows") }
fn main() -> Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).context("path")?);
    let names: Vec<String> = std::fs::read_to_string(std::env::args().nth(2).context("classes")?)?.lines().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let out = PathBuf::from(std::env::args().nth(3).context("out")?);
    let file = load_features(&path, None)?;
    let labels = file.labels.context("labels")?;
    let x = zerolabel::data::features::l2_normalize(&file.features);
    let c = names.len();
    let assign = cached_kmeans(&x, c as i64, 0, "train")?;
    let centroids = rows(&member_means(&x, &Tensor::from_slice(&assign), c as i64));
    let raw = file.features.to_kind(Kind::Float);
    let centroids_raw = rows(&member_means(&raw, &Tensor::from_slice(&assign), c as i64));
    let oracle_raw = rows(&member_means(&raw, &Tensor::from_slice(&labels), c as i64));
    let oracle = rows(&member_means(&x, &Tensor::from_slice(&labels), c as i64));
    let mut conf = vec![vec![0u64; c]; c];
    for (a, l) in assign.iter().zip(&labels) { conf[*a as usize][*l as usize] += 1; }
    let glove = WordVectors::load_for_classes(&WordVectorSource::default_glove(), &names)?;
    let glove: Vec<Vec<f32>> = names.iter().map(|n| glove.embed_class(n)).collect::<Result<_, _>>()?;
    let minilm = SentenceEncoder::load(&default_model_dir())?;
    let mut enc = serde_json::Map::new();
    enc.insert("glove".into(), serde_json::json!(glove));
    enc.insert("minilm".into(), serde_json::json!(minilm.encode(&names)?));
    enc.insert("minilm18".into(), serde_json::json!(minilm.encode_classes(&names, &default_templates())?));
    if let Ok(mp) = SentenceEncoder::load(&default_mpnet_dir()) {
        enc.insert("mpnet".into(), serde_json::json!(mp.encode(&names)?));
        enc.insert("mpnet18".into(), serde_json::json!(mp.encode_classes(&names, &default_templates())?));
    }
    let j = serde_json::json!({"confusion": conf, "centroids": centroids, "oracle": oracle, "centroids_raw": centroids_raw, "oracle_raw": oracle_raw, "encoders": enc, "names": names});
    std::fs::write(out, j.to_string())?;
    Ok(())
}
