//! The library's one error type. Every variant names the file, value or word at fault and what
//! was expected, so that the command line can print it once and exit (see `main.rs`).
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },

    /// A file exists but is not what it should be: wrong magic, truncated, unsupported dtype.
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },

    #[error("{what}: expected {expected}, got {got}")]
    Shape { what: String, expected: String, got: String },

    #[error("{what} contains a non-finite value (NaN or infinity) at row {row}, column {col}")]
    NonFinite { what: String, row: usize, col: usize },

    #[error("word '{word}' of class name '{class}' is not in the word-vector vocabulary ({source_name})")]
    UnknownWord { word: String, class: String, source_name: String },

    #[error("{what}: {got} classes given, but {expected}")]
    ClassCount { what: String, expected: String, got: usize },

    #[error("invalid parameter {name} = {value}: expected {expected}")]
    InvalidParam { name: &'static str, value: String, expected: String },

    /// A step would need more memory than the budget (see `crate::memory`).
    #[error("not enough memory: {0}")]
    Memory(String),

    #[error("device: {0}")]
    Device(String),

    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format { path: path.into(), message: message.into() }
    }
    pub fn invalid(name: &'static str, value: impl std::fmt::Display, expected: impl Into<String>) -> Self {
        Error::InvalidParam { name, value: value.to_string(), expected: expected.into() }
    }
}
