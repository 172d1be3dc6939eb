//! Byte-level BPE tokenizers of the GPT-2 / Qwen2 / Llama-3 kind, read from a Hugging Face
//! `tokenizer.json` and encoding as the `tokenizers` library does:
//!
//! 1. added tokens (`<|im_start|>`, `<think>`, …) are cut out of the text first, longest match
//!    first, and map to their ids;
//! 2. the rest is NFC-normalised (the `NFC` normalizer) and split by the pre-tokenizer's
//!    pattern, each match its own piece (`Split`, behaviour `Isolated`);
//! 3. each piece's UTF-8 bytes become the byte-level alphabet's characters (`ByteLevel`, bytes
//!    that print as themselves and the rest shifted past 255: a space is `Ġ`);
//! 4. byte-pair merges, lowest rank first, then each symbol's id.
//!
//! Decoding maps ids back to their strings and the byte-level characters back to bytes.
//!
//! The split is a `Split` step's pattern (Qwen2, Llama 3) or, for a `ByteLevel` pre-tokenizer
//! with `use_regex` (GPT-2, SmolLM2), GPT-2's pattern. Both end `\s+(?!\S)|\s+`: a run of
//! white space not followed by a non-space. The `regex` crate has no look-ahead, so that
//! alternative is matched by hand, in its place between the others (leftmost-first, as
//! `tokenizers`' backtracking engine prefers alternatives).

use std::collections::HashMap;
use std::path::Path;

use regex::Regex;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use super::HfError;

/// The split of a `ByteLevel` pre-tokenizer with `use_regex` (GPT-2's, as `tokenizers` has it).
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The pattern's alternative that needs look-ahead, as `tokenizers` writes it.
const LOOKAHEAD_ALTERNATIVE: &str = r"|\s+(?!\S)|\s+";

#[derive(Debug)]
pub struct HfTokenizer {
    vocab: HashMap<String, u32>,
    tokens: HashMap<u32, String>,
    merges: HashMap<(String, String), usize>,
    /// Whether text is NFC-normalised before it is split.
    nfc: bool,
    /// Added tokens, longest first (matched before anything else).
    added: Vec<(String, u32)>,
    /// The pattern's alternatives before `\s+(?!\S)`, anchored at a position.
    head: Regex,
    /// Whether the pattern ends with the look-ahead alternatives (else `head` is all of it).
    lookahead_tail: bool,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
}

impl HfTokenizer {
    /// Reads `dir/tokenizer.json`. What this reader does not implement (another model type,
    /// normalizer or pre-tokenizer) is refused by name.
    pub fn read(dir: &Path) -> Result<HfTokenizer, HfError> {
        super::read_json(dir.join("tokenizer.json"), HfTokenizer::from_json)
    }

    pub fn from_json(json: &Value) -> Result<HfTokenizer, String> {
        let model = &json["model"];
        if model["type"].as_str() != Some("BPE") {
            return Err(format!("model type {} is not BPE", model["type"]));
        }
        if model["byte_fallback"].as_bool() == Some(true) {
            return Err("BPE with byte_fallback (SentencePiece style) is not read".into());
        }
        match (&json["normalizer"], json["normalizer"]["type"].as_str()) {
            (Value::Null, _) | (_, Some("NFC")) => {}
            (_, other) => return Err(format!("normalizer {other:?} is not implemented")),
        }
        let pattern = split_pattern(&json["pre_tokenizer"])?;
        let (head_pattern, lookahead_tail) = match pattern.strip_suffix(LOOKAHEAD_ALTERNATIVE) {
            Some(head) => (head.to_string(), true),
            None => (pattern.clone(), false),
        };
        let head = Regex::new(&format!("^(?:{head_pattern})"))
            .map_err(|e| format!("the split pattern does not compile: {e}"))?;

        let vocab: HashMap<String, u32> = model["vocab"]
            .as_object()
            .ok_or("model.vocab is not an object")?
            .iter()
            .map(|(token, id)| {
                Ok((
                    token.clone(),
                    id.as_u64().ok_or("a vocab id is not a number")? as u32,
                ))
            })
            .collect::<Result<_, String>>()?;
        let mut merges = HashMap::new();
        for (rank, merge) in model["merges"]
            .as_array()
            .ok_or("model.merges is not a list")?
            .iter()
            .enumerate()
        {
            let pair = match merge {
                Value::String(s) => s
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string())),
                Value::Array(p) if p.len() == 2 => Some((
                    p[0].as_str().unwrap_or_default().to_string(),
                    p[1].as_str().unwrap_or_default().to_string(),
                )),
                _ => None,
            }
            .ok_or_else(|| format!("merge {rank} is not a pair: {merge}"))?;
            merges.entry(pair).or_insert(rank);
        }
        let mut added: Vec<(String, u32)> = json["added_tokens"]
            .as_array()
            .map(|tokens| {
                tokens
                    .iter()
                    .filter_map(|t| {
                        Some((t["content"].as_str()?.to_string(), t["id"].as_u64()? as u32))
                    })
                    .collect()
            })
            .unwrap_or_default();
        added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut tokens: HashMap<u32, String> =
            vocab.iter().map(|(t, id)| (*id, t.clone())).collect();
        for (content, id) in &added {
            tokens.insert(*id, content.clone());
        }
        let byte_to_char = byte_alphabet();
        let char_to_byte = byte_to_char
            .iter()
            .enumerate()
            .map(|(b, c)| (*c, b as u8))
            .collect();
        Ok(HfTokenizer {
            nfc: json["normalizer"]["type"].as_str() == Some("NFC"),
            vocab,
            tokens,
            merges,
            added,
            head,
            lookahead_tail,
            byte_to_char,
            char_to_byte,
        })
    }

    /// The ids of `text` (no special tokens added around it).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            // The nearest added token, the longest where several start at one place.
            let next = self
                .added
                .iter()
                .filter_map(|(content, id)| {
                    rest.find(content.as_str()).map(|at| (at, content, *id))
                })
                .min_by_key(|(at, content, _)| (*at, std::cmp::Reverse(content.len())));
            match next {
                Some((at, content, id)) => {
                    self.encode_plain(&rest[..at], &mut ids)?;
                    ids.push(id);
                    rest = &rest[at + content.len()..];
                }
                None => {
                    self.encode_plain(rest, &mut ids)?;
                    rest = "";
                }
            }
        }
        Ok(ids)
    }

    /// The text of `ids`: added tokens as written, the rest from its bytes (invalid UTF-8
    /// replaced, as `tokenizers` does).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for id in ids {
            let Some(token) = self.tokens.get(id) else {
                continue;
            };
            if self
                .added
                .iter()
                .any(|(content, added)| added == id && content == token)
            {
                bytes.extend_from_slice(token.as_bytes());
            } else {
                for c in token.chars() {
                    match self.char_to_byte.get(&c) {
                        Some(b) => bytes.push(*b),
                        None => bytes.extend_from_slice(c.to_string().as_bytes()),
                    }
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) -> Result<(), String> {
        if text.is_empty() {
            return Ok(());
        }
        let normalized: String = if self.nfc {
            text.nfc().collect()
        } else {
            text.to_string()
        };
        for piece in self.pieces(&normalized) {
            let symbols: Vec<String> = piece
                .bytes()
                .map(|b| self.byte_to_char[b as usize].to_string())
                .collect();
            for symbol in self.merge(symbols) {
                let id = self
                    .vocab
                    .get(&symbol)
                    .ok_or_else(|| format!("`{symbol}` is not in the vocabulary"))?;
                ids.push(*id);
            }
        }
        Ok(())
    }

    /// The split pattern's matches, in order, with any text between them as pieces too.
    fn pieces<'a>(&self, text: &'a str) -> Vec<&'a str> {
        let mut pieces = Vec::new();
        let mut at = 0;
        let mut gap_start = 0;
        while at < text.len() {
            match self.match_at(&text[at..]) {
                Some(len) if len > 0 => {
                    if gap_start < at {
                        pieces.push(&text[gap_start..at]);
                    }
                    pieces.push(&text[at..at + len]);
                    at += len;
                    gap_start = at;
                }
                _ => at += text[at..].chars().next().map_or(1, char::len_utf8),
            }
        }
        if gap_start < text.len() {
            pieces.push(&text[gap_start..]);
        }
        pieces
    }

    /// The length of the pattern's match at the start of `rest`, alternatives tried in order.
    fn match_at(&self, rest: &str) -> Option<usize> {
        if let Some(m) = self.head.find(rest) {
            return Some(m.end());
        }
        if !self.lookahead_tail {
            return None;
        }
        // `\s+(?!\S)`: the longest white-space run that ends the text or is followed by more
        // white space; backtracking gives up its last character when a non-space follows.
        let run: usize = rest
            .chars()
            .take_while(|c| c.is_whitespace())
            .map(char::len_utf8)
            .sum();
        if run == 0 {
            return None;
        }
        if run == rest.len() {
            return Some(run);
        }
        let last = rest[..run].chars().next_back().map_or(0, char::len_utf8);
        if run > last {
            return Some(run - last);
        }
        // `\s+`: the single white-space character before a non-space.
        Some(run)
    }

    /// Byte-pair merges of one piece's symbols: the adjacent pair of lowest rank, leftmost on a
    /// tie, until no pair has a rank.
    fn merge(&self, mut symbols: Vec<String>) -> Vec<String> {
        loop {
            let best = symbols
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| {
                    self.merges
                        .get(&(pair[0].clone(), pair[1].clone()))
                        .map(|rank| (*rank, i))
                })
                .min();
            let Some((_, i)) = best else {
                return symbols;
            };
            let right = symbols.remove(i + 1);
            symbols[i].push_str(&right);
        }
    }
}

/// The pre-tokenizer's split pattern: a `Split` with behaviour `Isolated`, alone or followed by
/// a `ByteLevel` that does not split itself.
fn split_pattern(pre: &Value) -> Result<String, String> {
    let steps: Vec<&Value> = match pre["type"].as_str() {
        Some("Sequence") => pre["pretokenizers"]
            .as_array()
            .ok_or("pre_tokenizer.pretokenizers is not a list")?
            .iter()
            .collect(),
        Some(_) => vec![pre],
        None => return Err("no pre_tokenizer".into()),
    };
    let mut pattern = None;
    for step in steps {
        match step["type"].as_str() {
            Some("Split") => {
                if step["behavior"].as_str() != Some("Isolated")
                    || step["invert"].as_bool() == Some(true)
                {
                    return Err("only a Split with behavior Isolated, not inverted, is read".into());
                }
                pattern = Some(
                    step["pattern"]["Regex"]
                        .as_str()
                        .ok_or("the Split pattern is not a Regex")?
                        .to_string(),
                );
            }
            Some("ByteLevel") => {
                if step["add_prefix_space"].as_bool() == Some(true) {
                    return Err(
                        "a ByteLevel pre-tokenizer that adds a prefix space is not read".into(),
                    );
                }
                // Its own split (GPT-2's pattern), unless a Split step did the splitting.
                if step["use_regex"].as_bool() != Some(false) {
                    if pattern.is_some() {
                        return Err("a Split followed by a splitting ByteLevel is not read".into());
                    }
                    pattern = Some(GPT2_PATTERN.to_string());
                }
            }
            other => return Err(format!("pre-tokenizer {other:?} is not implemented")),
        }
    }
    pattern.ok_or_else(|| "the pre-tokenizer has no Split pattern".into())
}

/// GPT-2's map of bytes to printable characters: printable Latin-1 bytes stand for themselves,
/// the others take the characters from U+0100 on, in byte order.
fn byte_alphabet() -> [char; 256] {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut map = ['\0'; 256];
    let mut shifted = 0;
    for b in 0..256u32 {
        map[b as usize] = if printable(b) {
            char::from_u32(b).expect("Latin-1")
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).expect("below U+0200")
        };
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf")
    }

    /// Ids equal the `tokenizers` library's on a mixed corpus (English, Chinese, digits, emoji,
    /// code, white space of every kind, contractions, the R1 tags and chat markers), and decoding
    /// gives the text back.
    #[test]
    fn ids_equal_the_tokenizers_librarys() {
        let tokenizer = HfTokenizer::read(&fixtures().join("qwen2")).unwrap();
        let cases: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join("tokenizer/encodings.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cases.len(), 13);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let got = tokenizer.encode(text).unwrap();
            assert_eq!(got, want, "{text:?}");
            assert_eq!(
                tokenizer.decode(&got),
                case["decoded"].as_str().unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn the_byte_alphabet_is_gpt2s() {
        let map = byte_alphabet();
        assert_eq!(map[b' ' as usize], 'Ġ');
        assert_eq!(map[b'\n' as usize], 'Ċ');
        assert_eq!(map[b'a' as usize], 'a');
        let distinct: std::collections::HashSet<char> = map.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn what_is_not_implemented_is_refused_by_name() {
        let text = std::fs::read_to_string(fixtures().join("qwen2/tokenizer.json")).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        let mut sentencepiece = json.clone();
        sentencepiece["model"]["byte_fallback"] = Value::Bool(true);
        assert!(HfTokenizer::from_json(&sentencepiece)
            .unwrap_err()
            .contains("byte_fallback"));
        let mut nfkc = json.clone();
        nfkc["normalizer"] = serde_json::json!({"type": "NFKC"});
        assert!(HfTokenizer::from_json(&nfkc).unwrap_err().contains("NFKC"));
        let mut unigram = json;
        unigram["model"]["type"] = Value::String("Unigram".into());
        assert!(HfTokenizer::from_json(&unigram)
            .unwrap_err()
            .contains("Unigram"));
    }
}

/// An [`HfTokenizer`] with the special tokens of its model directory, as the lab's
/// [`crate::tokenizer::Tokenizer`]: what generation and evaluation ask of a tokenizer. A special
/// token the directory does not name (many have no `<pad>` or `<unk>`) is the end-of-sequence
/// token.
#[derive(Debug)]
pub struct HfText {
    tokenizer: HfTokenizer,
    vocab_size: usize,
    bos: u32,
    eos: u32,
    pad: u32,
    unk: u32,
}

impl HfText {
    /// `vocab_size` is the model's (a model may have more logits than the tokenizer has
    /// tokens). Fails when the end-of-sequence token is not one token of the vocabulary.
    pub fn new(
        tokenizer: HfTokenizer,
        template: &super::ChatTemplate,
        vocab_size: usize,
    ) -> Result<HfText, String> {
        let id = |name: &str| {
            let text = template.special_token(name)?;
            match tokenizer.encode(text) {
                Ok(ids) if ids.len() == 1 => Some(ids[0]),
                _ => None,
            }
        };
        let eos = id("eos_token").ok_or("tokenizer_config.json names no single-token eos_token")?;
        Ok(HfText {
            bos: id("bos_token").unwrap_or(eos),
            pad: id("pad_token").unwrap_or(eos),
            unk: id("unk_token").unwrap_or(eos),
            eos,
            vocab_size,
            tokenizer,
        })
    }

    pub fn inner(&self) -> &HfTokenizer {
        &self.tokenizer
    }
}

impl crate::tokenizer::Tokenizer for HfText {
    /// # Panics
    /// On text the vocabulary cannot spell (a byte-level BPE spells every text).
    fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenizer
            .encode(text)
            .unwrap_or_else(|e| panic!("encoding {text:?}: {e}"))
    }

    fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids)
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer
            .added
            .iter()
            .find(|(content, _)| content == token)
            .map(|(_, id)| *id)
            .or_else(|| self.tokenizer.vocab.get(token).copied())
    }

    fn token(&self, id: u32) -> &str {
        self.tokenizer.tokens.get(&id).map_or("", String::as_str)
    }

    fn bos_id(&self) -> u32 {
        self.bos
    }

    fn eos_id(&self) -> u32 {
        self.eos
    }

    fn pad_id(&self) -> u32 {
        self.pad
    }

    fn unk_id(&self) -> u32 {
        self.unk
    }
}
