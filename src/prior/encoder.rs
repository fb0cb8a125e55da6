//! Class names -> one vector per class. Every text encoder implements [`TextEncoder`]; the
//! nominal prior ranks classes by the cosine similarity of these vectors.
use super::word_vectors::{WordVectorSource, WordVectors};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A text encoder for class names.
pub trait TextEncoder {
    /// One vector per class name, in the order given (all of one dimension).
    fn encode(&self, class_names: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Where the vectors come from, for messages and reports.
    fn describe(&self) -> String;
}

/// Which encoder `[classes] encoder` / `--encoder` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    /// Static word vectors averaged over the words of a name (the paper's choice): GloVe 6B 50d
    /// by default, or the file/folder in `word_vectors`.
    #[default]
    Glove,
    /// The sentence encoder all-MiniLM-L6-v2 (installed by scripts/setup.sh), averaged over
    /// prompt templates (`templates`; an empty list: the names alone).
    Minilm,
    /// The sentence encoder all-mpnet-base-v2 (MPNet, 110M parameters; installed by
    /// `scripts/setup.sh --mpnet`, 440 MB), averaged over the same templates.
    Mpnet,
    /// One vector per class given by the user (`class_vectors`: one line of numbers per class,
    /// in class order).
    Vectors,
}

/// The encoder of a config, with its files (`templates`: the sentence encoders' prompt
/// templates, None for the default set).
pub fn build_encoder(kind: EncoderKind, word_vectors: Option<&Path>, class_vectors: Option<&Path>, templates: Option<&[String]>) -> Result<Box<dyn TextEncoder>> {
    match kind {
        EncoderKind::Minilm | EncoderKind::Mpnet => {
            use super::sentence_encoder::{default_model_dir, default_mpnet_dir, default_templates, SentenceClassEncoder};
            let templates = templates.map_or_else(default_templates, <[String]>::to_vec);
            let dir = if kind == EncoderKind::Mpnet { default_mpnet_dir() } else { default_model_dir() };
            Ok(Box::new(SentenceClassEncoder::load(&dir, templates)?))
        }
        EncoderKind::Glove => {
            let source = word_vectors.map_or_else(WordVectorSource::default_glove, WordVectorSource::from_path);
            Ok(Box::new(WordVectorEncoder { source }))
        }
        EncoderKind::Vectors => {
            let path = class_vectors.ok_or_else(|| Error::invalid("encoder", "vectors", "a file of class vectors in `class_vectors` (--class-vectors)"))?;
            Ok(Box::new(ClassVectorFile { path: path.to_path_buf() }))
        }
    }
}

/// Static word vectors, averaged over the words of each name.
pub struct WordVectorEncoder {
    pub source: WordVectorSource,
}

impl TextEncoder for WordVectorEncoder {
    fn encode(&self, class_names: &[String]) -> Result<Vec<Vec<f32>>> {
        let vectors = WordVectors::load_for_classes(&self.source, class_names)?;
        class_names.iter().map(|n| vectors.embed_class(n)).collect()
    }

    fn describe(&self) -> String {
        self.source.describe()
    }
}

impl TextEncoder for super::sentence_encoder::SentenceClassEncoder {
    fn encode(&self, class_names: &[String]) -> Result<Vec<Vec<f32>>> {
        super::sentence_encoder::SentenceClassEncoder::encode(self, class_names)
    }

    fn describe(&self) -> String {
        super::sentence_encoder::SentenceClassEncoder::describe(self)
    }
}

/// One vector per class from a text file: line k holds class k's numbers, whitespace-separated.
pub struct ClassVectorFile {
    pub path: PathBuf,
}

impl TextEncoder for ClassVectorFile {
    fn encode(&self, class_names: &[String]) -> Result<Vec<Vec<f32>>> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let rows: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        if rows.len() != class_names.len() {
            return Err(Error::format(&self.path, format!("{} vectors, but there are {} class names (one line per class, in class order)", rows.len(), class_names.len())));
        }
        let mut vectors = Vec::with_capacity(rows.len());
        for (k, row) in rows.iter().enumerate() {
            let v = row
                .split_whitespace()
                .map(|x| x.parse::<f32>().ok().filter(|v| v.is_finite()))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| Error::format(&self.path, format!("vector {} (class '{}'): expected finite numbers", k + 1, class_names[k])))?;
            if let Some(first) = vectors.first().map(Vec::len) {
                if v.len() != first {
                    return Err(Error::format(&self.path, format!("vector {} has {} numbers, the first has {first}", k + 1, v.len())));
                }
            }
            if v.is_empty() || v.iter().all(|&x| x == 0.0) {
                return Err(Error::format(&self.path, format!("vector {} (class '{}') is empty or all zero", k + 1, class_names[k])));
            }
            vectors.push(v);
        }
        Ok(vectors)
    }

    fn describe(&self) -> String {
        format!("class vectors in {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_vector_files_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("zl-class-vectors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names: Vec<String> = ["cat", "dog"].iter().map(|s| s.to_string()).collect();
        let write = |text: &str| {
            let p = dir.join("v.txt");
            std::fs::write(&p, text).unwrap();
            ClassVectorFile { path: p }
        };
        assert_eq!(write("1 0\n# comment\n0 1\n").encode(&names).unwrap(), vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!(write("1 0\n").encode(&names).unwrap_err().to_string().contains("1 vectors, but there are 2 class names"));
        assert!(write("1 0\n0 nan\n").encode(&names).unwrap_err().to_string().contains("vector 2 (class 'dog'): expected finite numbers"));
        assert!(write("1 0\n0 1 2\n").encode(&names).unwrap_err().to_string().contains("vector 2 has 3 numbers, the first has 2"));
        assert!(write("1 0\n0 0\n").encode(&names).unwrap_err().to_string().contains("all zero"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
