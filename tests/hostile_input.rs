//! Hostile input, fuzzed: every parser and decoder that reads what a person or a file hands the
//! lab either answers or returns an error; none panics, none allocates what the input claims.
//!
//! Each target starts from valid inputs (the seed corpus: `tests/fuzz-corpus/` and the tiny
//! specs) and applies seeded mutations a fuzzer would try: flipped bits, edge bytes, cut and
//! repeated spans, digits replaced by huge or negative numbers (so shapes, lengths and offsets
//! become absurd). The seeds are fixed, so a failure names a case that replays exactly.
//! `LAB_FUZZ_CASES=N` sets the cases per target (default 5000), `LAB_FUZZ_SECONDS=S` a time per
//! target instead (`just soak` gives each ten minutes).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use lab::evaluation::{extract_answer, Prompting};
use lab::language::count_words;
use lab::model::checkpoint::{self, CheckpointError, NamedTensor};
use lab::rewards::{score, score_langmix, score_langmix_lines, RewardConfig};
use lab::rng::Rng;
use lab::spec::Spec;
use lab::tokenizer::{Tokenizer, WorldTokenizer};
use lab::world::Lang;

/// The cases of one target: `LAB_FUZZ_CASES` of them (default 5000), or, with
/// `LAB_FUZZ_SECONDS`, as many as that many seconds allow. Says on drop how many ran and how long
/// (`--nocapture`, as `just soak` runs them).
struct Campaign {
    target: &'static str,
    started: std::time::Instant,
    limit: usize,
    seconds: Option<f64>,
    done: usize,
}

impl Campaign {
    fn new(target: &'static str) -> Campaign {
        let env = |name: &str| std::env::var(name).ok();
        let seconds = env("LAB_FUZZ_SECONDS").and_then(|v| v.parse().ok());
        let cases = env("LAB_FUZZ_CASES").and_then(|v| v.parse().ok());
        Campaign {
            target,
            started: std::time::Instant::now(),
            limit: cases.unwrap_or(if seconds.is_some() { usize::MAX } else { 5000 }),
            seconds,
            done: 0,
        }
    }
}

impl Iterator for Campaign {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let out_of_time = self.done.is_multiple_of(64)
            && self
                .seconds
                .is_some_and(|s| self.started.elapsed().as_secs_f64() >= s);
        if self.done >= self.limit || out_of_time {
            return None;
        }
        self.done += 1;
        Some(self.done - 1)
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        eprintln!(
            "{}: {} cases in {:.1} s",
            self.target,
            self.done,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

const HUGE: [&str; 7] = [
    "18446744073709551615",
    "18446744073709551616",
    "4611686018427387904",
    "9223372036854775807",
    "-1",
    "1e308",
    "0",
];

/// One to five mutations of `input`.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(5) {
        if out.is_empty() {
            out.push(b'0');
        }
        let i = rng.below(out.len() as u64) as usize;
        match rng.below(7) {
            0 => out[i] ^= 1 << rng.below(8),
            1 => out[i] = *rng.choose(&[0u8, 0x7f, 0x80, 0xff, b'"', b'{', b']', b'9', b'-', b'=']),
            2 => out.truncate(i),
            3 => {
                let end = (i + 1 + rng.below(24) as usize).min(out.len());
                let span = out[i..end].to_vec();
                out.splice(i..i, span);
            }
            4 | 5 => {
                // Replace the number at `i` (if any) with an absurd one.
                let start = (0..=i)
                    .rev()
                    .take_while(|&j| out[j].is_ascii_digit())
                    .last();
                match start {
                    Some(start) => {
                        let end = (start..out.len())
                            .find(|&j| !out[j].is_ascii_digit())
                            .unwrap_or(out.len());
                        out.splice(start..end, rng.choose(&HUGE).bytes());
                    }
                    None => {
                        out.remove(i);
                    }
                }
            }
            _ => {
                let end = (i + rng.below(48) as usize).min(out.len());
                out.drain(i..end);
            }
        }
    }
    out
}

/// Runs `f`, turning a panic into a failure that names the target, the case and the input.
fn must_not_panic<T>(target: &str, case: usize, input: &[u8], f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(_) => panic!(
            "{target}: case {case} panicked on {:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn valid_checkpoint() -> Vec<u8> {
    let tensors = vec![
        NamedTensor::f32(
            "blocks.0.w",
            vec![2, 3],
            vec![0.5, -1.0, 2.0, 0.0, 1e-3, 7.0],
        ),
        NamedTensor::f32("embed.weight", vec![4], vec![1.0, 2.0, 3.0, 4.0]),
    ];
    checkpoint::encode(
        &tensors,
        &serde_json::json!({ "step": 3, "config": { "d_model": 2 } }),
    )
}

#[test]
fn checkpoint_decoding_refuses_corrupt_files_without_panicking() {
    let mut campaign = Campaign::new("checkpoint");
    let valid = valid_checkpoint();
    let (tensors, _) = checkpoint::decode(&valid).unwrap();
    let mut rng = Rng::derive(1, "fuzz/checkpoint");
    let mut refused = 0;
    for case in campaign.by_ref() {
        let input = mutate(&mut rng, &valid);
        let answer = must_not_panic("checkpoint", case, &input, || checkpoint::decode(&input));
        match answer {
            Err(_) => refused += 1,
            // A mutation that decodes must give the very tensors back (the content hash
            // guards them): only header bytes that do not matter (JSON spacing) may change.
            Ok((decoded, _)) => assert_eq!(decoded, tensors, "case {case} decoded other tensors"),
        }
    }
    assert!(
        refused * 10 >= campaign.done * 9,
        "only {refused} of {} refused",
        campaign.done
    );

    // Every single flipped byte of the tensor data is caught by the content hash.
    let data_start = valid.len() - 10 * 4;
    for i in data_start..valid.len() {
        let mut input = valid.clone();
        input[i] ^= 0x01;
        assert!(
            matches!(
                checkpoint::decode(&input),
                Err(CheckpointError::HashMismatch { .. })
            ),
            "flipped byte {i} was not refused"
        );
    }
    // Every truncation is refused.
    for len in 0..valid.len() {
        assert!(
            checkpoint::decode(&valid[..len]).is_err(),
            "truncated to {len}"
        );
    }
}

/// The header's numbers set to absurd values one at a time: shapes whose element count or byte
/// length overflows, offsets and lengths past the end, a header longer than the file.
#[test]
fn checkpoint_headers_with_absurd_numbers_are_refused() {
    let valid = valid_checkpoint();
    let header_len = u64::from_le_bytes(valid[8..16].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&valid[16..16 + header_len]).unwrap();
    let data = &valid[16 + header_len..];
    let file = |header: &serde_json::Value, claimed_len: Option<u64>| {
        let text = serde_json::to_vec(header).unwrap();
        let mut out = b"R1LCKPT1".to_vec();
        out.extend_from_slice(&claimed_len.unwrap_or(text.len() as u64).to_le_bytes());
        out.extend_from_slice(&text);
        out.extend_from_slice(data);
        out
    };
    let absurd: [u64; 6] = [u64::MAX, u64::MAX - 3, 1 << 62, 1 << 63, (1 << 61) + 1, 0];
    for tensor in 0..2 {
        for field in ["offset", "nbytes"] {
            for &value in &absurd {
                let mut h = header.clone();
                h["tensors"][tensor][field] = value.into();
                let input = file(&h, None);
                let answer = must_not_panic(field, tensor, &input, || checkpoint::decode(&input));
                assert!(answer.is_err() || value == 0 && field == "offset" && tensor == 0);
            }
        }
        for &value in &absurd {
            for dim in 0..2 {
                let mut h = header.clone();
                if h["tensors"][tensor]["shape"].get(dim).is_none() {
                    continue;
                }
                h["tensors"][tensor]["shape"][dim] = value.into();
                let input = file(&h, None);
                let answer = must_not_panic("shape", tensor, &input, || checkpoint::decode(&input));
                assert!(answer.is_err(), "shape[{dim}] = {value} accepted");
            }
            // A rank in the millions is refused as a mismatch, not allocated.
            let mut h = header.clone();
            h["tensors"][tensor]["shape"] = vec![1u64; 1 << 16].into();
            let input = file(&h, None);
            assert!(checkpoint::decode(&input).is_err());
        }
    }
    for claimed in [u64::MAX, u64::MAX - 15, 1 << 40, header_len as u64 + 1] {
        let input = file(&header, Some(claimed));
        let answer = must_not_panic("header_len", 0, &input, || checkpoint::decode(&input));
        assert!(answer.is_err(), "header_len {claimed} accepted");
    }
}

#[test]
fn spec_parsing_and_overrides_refuse_bad_input_without_panicking() {
    let mut campaign = Campaign::new("spec and --set");
    let specs = corpus("experiments/tiny");
    let overrides = [
        "seed=1",
        "model.d_model=64",
        "train.steps=10",
        "benchmark_size=8",
        "name=\"x\"",
        "rewards.language=0.5",
    ];
    let mut rng = Rng::derive(2, "fuzz/spec");
    for case in campaign.by_ref() {
        let valid = rng.choose(&specs).clone();
        let text = mutate(&mut rng, &valid);
        let text = String::from_utf8_lossy(&text).to_string();
        must_not_panic("spec", case, text.as_bytes(), || {
            let _ = Spec::parse(&text, "fuzz.toml", &[]);
        });
        let set = *rng.choose(&overrides);
        let set = mutate(&mut rng, set.as_bytes());
        let set = String::from_utf8_lossy(&set).to_string();
        let original = String::from_utf8_lossy(&valid).to_string();
        must_not_panic("--set", case, set.as_bytes(), || {
            let _ = Spec::parse(&original, "fuzz.toml", std::slice::from_ref(&set));
        });
    }
}

#[test]
fn tokenizer_encodes_any_text_and_decodes_any_ids() {
    let mut campaign = Campaign::new("tokenizer");
    let texts = corpus("tests/fuzz-corpus");
    let strings: Vec<String> = texts
        .iter()
        .map(|t| String::from_utf8_lossy(t).to_string())
        .collect();
    let tokenizer = WorldTokenizer::build(999, &strings);
    let mut rng = Rng::derive(3, "fuzz/tokenizer");
    for case in campaign.by_ref() {
        let seed = rng.choose(&texts);
        let input = mutate(&mut rng, seed);
        let text = String::from_utf8_lossy(&input).to_string();
        let ids = must_not_panic("encode", case, &input, || tokenizer.encode(&text));
        assert!(ids.iter().all(|&id| (id as usize) < tokenizer.vocab_size()));
        must_not_panic("decode", case, &input, || tokenizer.decode(&ids));
        // Ids from a corrupt data set: anything a u32 holds.
        let noise: Vec<u32> = (0..rng.below(40))
            .map(|_| match rng.below(3) {
                0 => rng.below(tokenizer.vocab_size() as u64) as u32,
                1 => u32::MAX - rng.below(8) as u32,
                _ => rng.next_u64() as u32,
            })
            .collect();
        must_not_panic("decode of foreign ids", case, &input, || {
            tokenizer.decode(&noise)
        });
        // A stored vocabulary that was tampered with is refused, not trusted.
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        // Small vocabularies, or a `max_number` above the limit that must be refused (one near
        // the limit is legal and only slow: a million number tokens).
        let max_number = match rng.below(4) {
            0 => lab::tokenizer::MAX_NUMBER_LIMIT + 1 + rng.below(1 << 31) as u32,
            _ => rng.below(2000) as u32,
        };
        must_not_panic("vocabulary", case, &input, || {
            let _ = WorldTokenizer::from_tokens(max_number, words);
        });
    }
}

#[test]
fn answers_rewards_and_language_scores_take_any_completion() {
    let mut campaign = Campaign::new("answers, rewards, language");
    let texts = corpus("tests/fuzz-corpus");
    let config = RewardConfig::default();
    let mut rng = Rng::derive(4, "fuzz/rewards");
    for case in campaign.by_ref() {
        let seed = rng.choose(&texts);
        let input = mutate(&mut rng, seed);
        let completion = String::from_utf8_lossy(&input).to_string();
        must_not_panic("rewards", case, &input, || {
            for prompting in Prompting::ALL {
                let _ = extract_answer(&completion, prompting);
            }
            let _ = count_words(&completion);
            let parts = score(&completion, "<think>", 42, Lang::En, &config);
            assert!(parts.total.is_finite());
            let _ = score_langmix(&completion, &completion, None);
            let _ = score_langmix("Tom had 3 apples.", &completion, Some(Lang::Zh));
        });
    }
}

/// `lab langmix` input: JSON lines of any shape, any bytes; answered or refused naming a line.
#[test]
fn langmix_input_is_scored_or_refused_naming_the_line() {
    let mut campaign = Campaign::new("langmix input");
    let mut seeds = corpus("tests/fuzz-corpus");
    // Every text of the corpus as a completion, in JSON lines as `lab langmix` reads them.
    let lines: Vec<u8> = seeds
        .iter()
        .map(|t| {
            let text = String::from_utf8_lossy(t);
            serde_json::json!({ "prompt": "Tom had 3 apples.", "completion": text }).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes();
    seeds.push(lines);
    let mut rng = Rng::derive(5, "fuzz/langmix-input");
    let mut answered = 0;
    for case in campaign.by_ref() {
        let seed = rng.choose(&seeds).clone();
        let input = mutate(&mut rng, &seed);
        let text = String::from_utf8_lossy(&input).to_string();
        for target in [None, Some(Lang::En), Some(Lang::Zh)] {
            match must_not_panic("langmix input", case, &input, || {
                score_langmix_lines(&text, target)
            }) {
                Ok(scores) => {
                    answered += 1;
                    assert!(scores
                        .iter()
                        .all(|(_, s)| (0.0..=1.0).contains(&s.consistency)));
                }
                Err(e) => assert!(e.starts_with("line "), "case {case}: {e}"),
            }
        }
    }
    assert!(answered > 0, "no mutated input was valid");
}
