//! Properties of the parsers and decoders that read outside input, checked by proptest over
//! generated cases that shrink to a smallest failing one. Where `tests/hostile_input.rs` asks
//! "does anything panic", these ask "is the answer right": round trips, refusals of any damage,
//! invariance of identity.
//!
//! Failing cases found once are kept in `tests/properties.proptest-regressions` (committed) and
//! replayed first on every run. `PROPTEST_CASES=N` sets the cases per property (256 by default).

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;

use lab::evaluation::{extract_answer, format_ok, Prompting};
use lab::identity::experiment_id;
use lab::model::checkpoint::{self, CheckpointError, NamedTensor};
use lab::rewards::{score, score_langmix, RewardConfig};
use lab::spec::Spec;
use lab::tokenizer::{Tokenizer, WorldTokenizer, FIRST_TAG_ID, UNK_ID};
use lab::world::Lang;

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// Text from a small alphabet that hits the parsers' edges: digits, separators, signs, both
/// languages, full-width punctuation, and pieces of tags.
fn messy_text(max_len: usize) -> impl Strategy<Value = String> {
    let pieces = vec![
        "0",
        "7",
        "42",
        "-",
        ",",
        ".",
        "。",
        " ",
        "\n",
        "a",
        "Tom",
        "answer",
        "is",
        "The",
        "答案是",
        "苹",
        "果",
        "，",
        "：",
        ":",
        "<",
        ">",
        "/",
        "think",
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "<eos>",
        "+",
        "=",
        "×",
        "1,234",
        "3.5",
        "😀",
    ];
    prop::collection::vec(select(pieces), 0..max_len).prop_map(|p| p.concat())
}

/// Reasoning text with no tag in it.
fn reasoning() -> impl Strategy<Value = String> {
    let pieces = vec![
        "3 + 4 = 7",
        "so",
        "he",
        "has",
        "apples",
        "他",
        "有",
        "个",
        "，",
        ".",
        "12 × 3 = 36",
    ];
    prop::collection::vec(select(pieces), 1..12).prop_map(|p| p.join(" "))
}

/// An integer as a model may write it: plain, or with thousands separators.
fn written(n: i64, separators: bool) -> String {
    if !separators {
        return n.to_string();
    }
    let digits = n.unsigned_abs().to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    format!("{}{}", if n < 0 { "-" } else { "" }, groups.join(","))
}

fn tensors() -> impl Strategy<Value = Vec<NamedTensor>> {
    let one = (prop::collection::vec(1usize..5, 0..4), any::<u64>()).prop_map(|(shape, seed)| {
        let len: usize = shape.iter().product();
        let mut rng = lab::rng::Rng::new(seed);
        let data = (0..len)
            .map(|_| (rng.below(2001) as f32 - 1000.0) / 7.0)
            .collect();
        (shape, data)
    });
    prop::collection::btree_map("[a-z]{1,6}(\\.[0-9])?", one, 1..5).prop_map(|named| {
        named
            .into_iter()
            .map(|(name, (shape, data))| NamedTensor::f32(name, shape, data))
            .collect()
    })
}

proptest! {
    #![proptest_config(config())]

    /// Any tensors come back exactly, with the same content hash; any byte of the tensor data
    /// flipped is refused by the hash, and any cut of the file is refused.
    #[test]
    fn checkpoints_round_trip_and_refuse_any_damage(
        tensors in tensors(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let extra = serde_json::json!({ "step": 1 });
        let bytes = checkpoint::encode(&tensors, &extra);
        let (decoded, decoded_extra) = checkpoint::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &tensors);
        prop_assert_eq!(decoded_extra, extra);
        prop_assert_eq!(checkpoint::content_hash(&decoded), checkpoint::content_hash(&tensors));

        let data_bytes: usize = tensors.iter().map(|t| t.data.len() * 4).sum();
        if data_bytes > 0 {
            let mut damaged = bytes.clone();
            let i = bytes.len() - data_bytes + flip.index(data_bytes);
            damaged[i] ^= 1 << bit;
            let refused = checkpoint::decode(&damaged);
            prop_assert!(
                matches!(refused, Err(CheckpointError::HashMismatch { .. })),
                "flipped data byte {} accepted", i
            );
        }
        let cut = cut.index(bytes.len());
        prop_assert!(checkpoint::decode(&bytes[..cut]).is_err(), "cut at {} accepted", cut);
    }

    /// Any sequence of the vocabulary's own tokens (tags, numbers, words) decodes to text that
    /// encodes to the very same ids: the world's spacing never merges or splits tokens.
    #[test]
    fn token_ids_survive_decoding_and_encoding(ids in prop::collection::vec(any::<prop::sample::Index>(), 0..40)) {
        let tokenizer = tokenizer();
        let first = FIRST_TAG_ID as usize;
        let ids: Vec<u32> = ids
            .iter()
            .map(|i| (first + i.index(tokenizer.vocab_size() - first)) as u32)
            .collect();
        let text = tokenizer.decode(&ids);
        prop_assert_eq!(tokenizer.encode(&text), ids, "text {:?}", text);
    }

    /// Whitespace only separates: the vocabulary's tokens joined by any runs of spaces, tabs
    /// and newlines encode to their own ids. Of any text, the ids that are not `<unk>` survive
    /// decoding and encoding (`<unk>` stands for text the vocabulary lacks and decodes to its
    /// name, which is no token of its own).
    #[test]
    fn whitespace_only_separates_and_known_ids_survive(
        picks in prop::collection::vec((any::<prop::sample::Index>(), select(vec![" ", "  ", "\n", "\t", " \n "])), 1..30),
        text in messy_text(30),
    ) {
        let tokenizer = tokenizer();
        let first = FIRST_TAG_ID as usize;
        let mut joined = String::new();
        let mut expected = Vec::new();
        for (pick, gap) in &picks {
            let id = (first + pick.index(tokenizer.vocab_size() - first)) as u32;
            joined.push_str(tokenizer.token(id));
            joined.push_str(gap);
            expected.push(id);
        }
        prop_assert_eq!(tokenizer.encode(&joined), expected, "text {:?}", joined);

        let ids = tokenizer.encode(&text);
        prop_assert!(ids.iter().all(|&id| (id as usize) < tokenizer.vocab_size()));
        let known: Vec<u32> = ids.into_iter().filter(|&id| id != UNK_ID).collect();
        prop_assert_eq!(tokenizer.encode(&tokenizer.decode(&known)), known);
    }

    /// A well-formed response gives back its answer however the integer is written, and the
    /// reward's accuracy part is 1 exactly for the true answer.
    #[test]
    fn a_tagged_answer_is_read_back_and_rewarded(
        n in any::<i64>(),
        separators in any::<bool>(),
        think in reasoning(),
        period in select(vec!["", ".", "。"]),
        truth_offset in -2i64..=2,
    ) {
        let response = format!(
            "<think> {think} </think> <answer> {}{period} </answer>",
            written(n, separators)
        );
        prop_assert_eq!(extract_answer(&response, Prompting::R1Zero), Some(n));
        prop_assert!(format_ok(&response));
        let truth = n.saturating_add(truth_offset);
        let config = RewardConfig::default();
        let parts = score(&response, "", truth, Lang::En, &config);
        prop_assert_eq!(parts.answer, Some(n));
        prop_assert_eq!(parts.accuracy, if truth == n { 1.0 } else { 0.0 });
        let expected = parts.accuracy * config.accuracy
            + parts.format * config.format
            + parts.language * config.language;
        prop_assert!((parts.total - expected).abs() < 1e-12);
        let cot = format!("{think} The answer is {}.", written(n, separators));
        prop_assert_eq!(extract_answer(&cot, Prompting::Cot), Some(n));
    }

    /// Any completion gets rewards and language scores in range; its answer, if any, is one
    /// that the completion spells out.
    #[test]
    fn rewards_and_language_scores_stay_in_range(text in messy_text(40), truth in -5i64..50) {
        let parts = score(&text, "<think>", truth, Lang::Zh, &RewardConfig::default());
        for part in [parts.accuracy, parts.format, parts.language] {
            prop_assert!((0.0..=1.0).contains(&part), "{:?}", parts);
        }
        if let Some(answer) = parts.answer {
            prop_assert!(text.contains(&answer.unsigned_abs().to_string()) || text.contains(','));
        }
        // An English prompt: the chain is measured against English.
        let line = score_langmix("Tom had 3 apples.", &text, None);
        prop_assert_eq!(line.target, Lang::En);
        prop_assert!((0.0..=1.0).contains(&line.consistency));
        prop_assert_eq!(line.mixed, line.zh_words > 0);
        let words = line.en_words + line.zh_words;
        if words > 0 {
            prop_assert!((line.consistency - line.en_words as f64 / words as f64).abs() < 1e-12);
        }
    }

    /// Writing any subset of the resolved settings explicitly, in any order, gives the same
    /// resolved spec and the same id; so does `--set` of a key to the value it already has.
    #[test]
    fn spec_identity_ignores_order_and_explicit_defaults(
        spec in select(vec!["world.toml", "pretrain.toml"]),
        subset in any::<u64>(),
        order in any::<u64>(),
        set in any::<prop::sample::Index>(),
    ) {
        let path = repo_root().join("experiments/tiny").join(spec);
        let text = std::fs::read_to_string(&path).unwrap();
        let base = Spec::load(&path, &[]).unwrap();
        let resolved = base.resolved_json();
        let mut leaves = Vec::new();
        flatten("", &resolved, &mut leaves);
        leaves.retain(|(key, _)| key != "kind");
        prop_assert!(leaves.len() >= 5, "{:?}", leaves);
        // A chosen subset of every setting, written out as the defaults they resolve to.
        let mut chosen: Vec<(String, toml::Value)> = leaves
            .iter()
            .enumerate()
            .filter(|(i, _)| subset >> (i % 64) & 1 == 1)
            .map(|(_, leaf)| leaf.clone())
            .collect();
        lab::rng::Rng::new(order).shuffle(&mut chosen);
        let overrides: Vec<String> = chosen
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(spec);
        std::fs::write(&copy, &text).unwrap();
        for sibling in ["world.toml", "pretrain.toml"] {
            std::fs::copy(repo_root().join("experiments/tiny").join(sibling), dir.path().join(sibling)).unwrap();
        }
        let explicit = Spec::load(&copy, &overrides)
            .map_err(|e| TestCaseError::fail(format!("{overrides:?}: {e}")))?;
        prop_assert_eq!(explicit.resolved_json(), resolved.clone());
        let inputs = BTreeMap::new();
        prop_assert_eq!(
            experiment_id(&explicit.resolved_json(), &inputs),
            experiment_id(&resolved, &inputs)
        );
        if !leaves.is_empty() {
            let (key, value) = &leaves[set.index(leaves.len())];
            let one = Spec::load(&copy, &[format!("{key}={value}")]).unwrap();
            prop_assert_eq!(one.resolved_json(), resolved);
        }
    }
}

/// Every leaf of a resolved spec as a `--set` key path and its TOML value (arrays are leaves).
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, toml::Value)>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, item, out);
            }
        }
        serde_json::Value::Null => {}
        leaf => {
            if let Ok(value) = toml::Value::try_from(leaf) {
                out.push((prefix.to_string(), value));
            }
        }
    }
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A tokenizer over a small world's texts, built once.
fn tokenizer() -> &'static WorldTokenizer {
    static TOKENIZER: std::sync::OnceLock<WorldTokenizer> = std::sync::OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let texts: Vec<String> = std::fs::read_dir(repo_root().join("tests/fuzz-corpus"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .chain(lab::evaluation::template_texts())
            .collect();
        WorldTokenizer::build(120, &texts)
    })
}
