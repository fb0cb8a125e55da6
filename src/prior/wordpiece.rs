//! BERT's uncased WordPiece tokenizer, as the `tokenizers` library runs it for
//! all-MiniLM-L6-v2 (`BertNormalizer` + `BertPreTokenizer` + `WordPiece`), read from `vocab.txt`.
//!
//! Written here instead of depending on the `tokenizers` crate (large, with its own native
//! dependencies) because the uncased BERT pipeline is short: clean the text, space out CJK
//! ideographs, strip accents (NFD, drop non-spacing marks), lower-case, split on whitespace and
//! punctuation, then greedy longest-match WordPiece with `##` continuations. The Unicode tables
//! (NFD, general categories) come from the same two small crates the `tokenizers` library uses,
//! so the ids agree on every input; `tests/minilm_reference.rs` checks them against the
//! reference tokenizer on tricky strings.
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// Words longer than this (in chars) become `[UNK]` (`max_input_chars_per_word` of the model's
/// tokenizer.json).
pub const MAX_CHARS_PER_WORD: usize = 100;

/// BERT's start, end and unknown tokens.
pub const BERT_SPECIALS: [&str; 3] = ["[CLS]", "[SEP]", "[UNK]"];

/// The vocabulary and the ids of the special tokens.
#[derive(Clone, Debug)]
pub struct WordPieceTokenizer {
    vocab: HashMap<String, i64>,
    cls: i64,
    sep: i64,
    unk: i64,
    /// Longest id sequence returned, [CLS] and [SEP] included (sentence-transformers: 256).
    max_len: usize,
}

impl WordPieceTokenizer {
    /// Reads `vocab.txt` (one token a line, the line number is the id); `specials` names the
    /// start, end and unknown tokens ([`BERT_SPECIALS`] for BERT).
    pub fn from_vocab_file(path: &Path, max_len: usize, specials: [&str; 3]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let tokens: Vec<String> = text.lines().map(str::to_string).collect();
        Self::with_specials(tokens, max_len, specials).map_err(|message| Error::format(path, message))
    }

    /// A tokenizer over `tokens` (id = position); errors name the special token that is missing.
    pub fn from_tokens(tokens: Vec<String>, max_len: usize) -> std::result::Result<Self, String> {
        Self::with_specials(tokens, max_len, BERT_SPECIALS)
    }

    /// `from_tokens` with other names for the start, end and unknown tokens (MPNet's
    /// tokenizer: `<s>`, `</s>`, `[UNK]`).
    pub fn with_specials(tokens: Vec<String>, max_len: usize, [cls, sep, unk]: [&str; 3]) -> std::result::Result<Self, String> {
        if max_len < 2 {
            return Err(format!("max_len {max_len} leaves no room for {cls} and {sep}"));
        }
        let vocab: HashMap<String, i64> = tokens.into_iter().enumerate().map(|(id, t)| (t, id as i64)).collect();
        let special = |name: &str| vocab.get(name).copied().ok_or_else(|| format!("the vocabulary has no {name} token"));
        Ok(WordPieceTokenizer { cls: special(cls)?, sep: special(sep)?, unk: special(unk)?, vocab, max_len })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// `[CLS] pieces... [SEP]`, the pieces cut to `max_len - 2` (the model's truncation).
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let mut ids = vec![self.cls];
        for word in pre_tokenize(&normalize(text)) {
            self.push_word_pieces(&word, &mut ids);
            if ids.len() > self.max_len - 1 {
                break;
            }
        }
        ids.truncate(self.max_len - 1);
        ids.push(self.sep);
        ids
    }

    /// Greedy longest-match-first split of one word; a word with any unmatched rest, or longer
    /// than `MAX_CHARS_PER_WORD`, is one `[UNK]`.
    fn push_word_pieces(&self, word: &str, ids: &mut Vec<i64>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_CHARS_PER_WORD {
            ids.push(self.unk);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let prefix = if start > 0 { "##" } else { "" };
            let found = (start + 1..=chars.len()).rev().find_map(|end| {
                let piece: String = prefix.chars().chain(chars[start..end].iter().copied()).collect();
                self.vocab.get(&piece).map(|&id| (id, end))
            });
            match found {
                Some((id, end)) => {
                    pieces.push(id);
                    start = end;
                }
                None => {
                    ids.push(self.unk);
                    return;
                }
            }
        }
        ids.extend(pieces);
    }
}

/// BertNormalizer with clean_text, handle_chinese_chars, strip_accents and lowercase on.
pub fn normalize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|&c| !(c == '\0' || c == '\u{fffd}' || is_control(c)))
        .map(|c| if is_whitespace(c) { ' ' } else { c })
        .collect();
    let mut spaced = String::with_capacity(cleaned.len());
    for c in cleaned.chars() {
        if is_chinese_char(c) {
            spaced.extend([' ', c, ' ']);
        } else {
            spaced.push(c);
        }
    }
    // Accents are stripped before lower-casing ("İ" -> "I" + dot -> "I" -> "i"), as the reference does.
    let stripped: String = spaced.nfd().filter(|c| !c.is_mark_nonspacing()).collect();
    stripped.chars().flat_map(char::to_lowercase).collect()
}

/// BertPreTokenizer: whitespace separates words and is dropped; each punctuation char is a word.
pub fn pre_tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_whitespace() || is_punctuation(c) {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            if !c.is_whitespace() {
                words.push(c.to_string());
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Tab, newline and carriage return count as whitespace, not as control characters.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Unicode "Other" (Cc, Cf, Cn, Co, Cs) except tab, newline and carriage return: removed.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK Unified Ideograph blocks that BERT splits into one token per character (the
/// ranges of the reference tokenizer, including its 0x2B920 start of extension E).
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(max_len: usize) -> WordPieceTokenizer {
        let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ankle", "boot", "t", "-", "shirt", "/", "top", "un", "##aff", "##able", "cafe", "東"];
        WordPieceTokenizer::from_tokens(tokens.iter().map(|s| s.to_string()).collect(), max_len).unwrap()
    }

    #[test]
    fn normalizes_like_bert_uncased() {
        assert_eq!(normalize("Café\tCRÈME\u{0}\u{200b}"), "cafe creme");
        assert_eq!(normalize("İstanbul"), "istanbul");
        assert_eq!(normalize("東京"), " 東  京 ");
    }

    #[test]
    fn splits_on_punctuation_and_whitespace() {
        assert_eq!(pre_tokenize("t-shirt/top  ankle boot!"), vec!["t", "-", "shirt", "/", "top", "ankle", "boot", "!"]);
        assert_eq!(pre_tokenize("   "), Vec::<String>::new());
    }

    #[test]
    fn greedy_longest_match_with_continuations_and_unknowns() {
        let t = toy(64);
        assert_eq!(t.encode("T-shirt/top"), vec![2, 6, 7, 8, 9, 10, 3]);
        assert_eq!(t.encode("unaffable Ankle"), vec![2, 11, 12, 13, 4, 3]);
        // "bootx" has no "##x": the whole word is [UNK], not "boot" + [UNK].
        assert_eq!(t.encode("bootx café 東"), vec![2, 1, 14, 15, 3]);
        assert_eq!(t.encode(""), vec![2, 3]);
        assert_eq!(t.encode(&"t".repeat(MAX_CHARS_PER_WORD + 1)), vec![2, 1, 3]);
    }

    #[test]
    fn truncates_to_max_len_with_sep_last() {
        let t = toy(5);
        assert_eq!(t.encode("ankle boot ankle boot ankle"), vec![2, 4, 5, 4, 3]);
    }

    #[test]
    fn missing_special_token_is_named() {
        let err = WordPieceTokenizer::from_tokens(vec!["[CLS]".into(), "[SEP]".into()], 8).unwrap_err();
        assert!(err.contains("[UNK]"), "{err}");
    }
}
