//! The paper's evaluation protocol as pure functions: prompt templates, answer extraction, the
//! format check, and the scores (pass@1 over k samples, unbiased pass@k, cons@k).
//!
//! The protocol (R1 §3): sample k completions per problem at temperature
//! [`EVAL_TEMPERATURE`] and top-p [`EVAL_TOP_P`]; pass@1 is the mean correctness over the k
//! samples, averaged over problems; cons@k is a majority vote over the k answers. Greedy
//! decoding is not the protocol.

use serde::{Deserialize, Serialize};

use crate::response::{ANSWER_CLOSE, ANSWER_OPEN, TAGS, THINK_CLOSE, THINK_OPEN};
use crate::world::Lang;

/// Sampling temperature of the paper's evaluation.
pub const EVAL_TEMPERATURE: f64 = 0.6;
/// Top-p of the paper's evaluation.
pub const EVAL_TOP_P: f64 = 0.95;

/// The R1-Zero training template (R1 Table 1), verbatim; `{prompt}` is the question.
pub const R1_ZERO_TEMPLATE: &str = "A conversation between User and Assistant. The user asks a \
question, and the Assistant solves it. The assistant first thinks about the reasoning process in \
the mind and then provides the user with the answer. The reasoning process and answer are \
enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> \
reasoning process here </think> <answer> answer here </answer>. User: {prompt}. Assistant:";

/// The same structure in few tokens, ending in the opening `<think>` so the model starts
/// reasoning at once; `{prompt}` is the question.
pub const COMPACT_TEMPLATE: &str = "User: {prompt} Assistant: <think>";

/// What the direct-answer prompt appends to an English question (the world's bare-answer
/// documents read "... The answer is 11.").
pub const DIRECT_SUFFIX_EN: &str = "The answer is";
/// What the direct-answer prompt appends to a Chinese question ("...答案是 11。").
pub const DIRECT_SUFFIX_ZH: &str = "答案是";

/// How a question is put to a model, and so where its answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Prompting {
    /// [`R1_ZERO_TEMPLATE`]; the answer is read from `<answer> ... </answer>`.
    #[serde(rename = "r1-zero")]
    R1Zero,
    /// [`COMPACT_TEMPLATE`]; the answer is read from `<answer> ... </answer>`.
    #[serde(rename = "compact")]
    Compact,
    /// The question alone: a base model continues with a solution, as in its web corpus, and the
    /// answer is the number after the last "The answer is" / "答案是".
    #[serde(rename = "cot")]
    Cot,
    /// The question followed by "The answer is" / "答案是": the answer is the completion's first
    /// integer.
    #[serde(rename = "direct")]
    Direct,
}

impl Prompting {
    pub const ALL: [Prompting; 4] = [
        Prompting::R1Zero,
        Prompting::Compact,
        Prompting::Cot,
        Prompting::Direct,
    ];

    /// The serde name: "r1-zero", "compact", "cot" or "direct".
    pub fn name(self) -> &'static str {
        match self {
            Prompting::R1Zero => "r1-zero",
            Prompting::Compact => "compact",
            Prompting::Cot => "cot",
            Prompting::Direct => "direct",
        }
    }

    /// Whether the response is expected in `<think>` / `<answer>` tags.
    pub fn is_tagged(self) -> bool {
        matches!(self, Prompting::R1Zero | Prompting::Compact)
    }

    /// The part of the response that the prompt already wrote: `"<think>"` for
    /// [`Prompting::Compact`], nothing otherwise. The full response, for [`format_ok`], is this
    /// followed by the completion.
    pub fn response_prefix(self) -> &'static str {
        match self {
            Prompting::Compact => THINK_OPEN,
            _ => "",
        }
    }
}

impl std::fmt::Display for Prompting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The prompt for `question` (written in `lang`).
///
/// The R1-Zero and compact templates are English whatever the question's language, as in the
/// paper; `lang` chooses the suffix of the direct-answer prompt. The chain-of-thought prompt is
/// the question alone.
pub fn render_prompt(prompting: Prompting, question: &str, lang: Lang) -> String {
    match prompting {
        Prompting::R1Zero => R1_ZERO_TEMPLATE.replace("{prompt}", question),
        Prompting::Compact => COMPACT_TEMPLATE.replace("{prompt}", question),
        Prompting::Cot => question.to_string(),
        Prompting::Direct => match lang {
            Lang::En => format!("{question} {DIRECT_SUFFIX_EN}"),
            Lang::Zh => format!("{question}{DIRECT_SUFFIX_ZH}"),
        },
    }
}

/// What a chat model is asked: the user's turn and the start of the assistant's answer, for a
/// model with a chat template. The same prompts as [`render_prompt`], without its plain-text
/// `User:` / `Assistant:` framing, which the chat template replaces: the R1-Zero template's
/// instructions precede the question in the user's turn; the compact template's `<think>` and
/// the direct prompt's "The answer is" open the assistant's answer.
pub fn chat_turn(prompting: Prompting, question: &str, lang: Lang) -> (String, String) {
    match prompting {
        Prompting::R1Zero => {
            let (instructions, _) = R1_ZERO_TEMPLATE
                .split_once(" User: ")
                .expect("the template has a user part");
            (format!("{instructions}\n{question}"), String::new())
        }
        Prompting::Compact => (question.to_string(), THINK_OPEN.to_string()),
        Prompting::Cot => (question.to_string(), String::new()),
        Prompting::Direct => (
            question.to_string(),
            match lang {
                Lang::En => DIRECT_SUFFIX_EN,
                Lang::Zh => DIRECT_SUFFIX_ZH,
            }
            .to_string(),
        ),
    }
}

/// How a model is asked a question: the lab's templates as plain text after `<bos>` for the
/// lab's own model; the model's chat template for a Hugging Face one ([`chat_turn`]).
pub trait Prompter: Sync {
    /// The prompt's token ids, or why the question cannot be put.
    fn prompt_ids(
        &self,
        prompting: Prompting,
        question: &str,
        lang: Lang,
    ) -> Result<Vec<u32>, String>;
    /// The prompt as text, as traces show it.
    fn prompt_text(&self, prompting: Prompting, question: &str, lang: Lang) -> String;
}

impl Prompter for crate::tokenizer::WorldTokenizer {
    fn prompt_ids(
        &self,
        prompting: Prompting,
        question: &str,
        lang: Lang,
    ) -> Result<Vec<u32>, String> {
        use crate::tokenizer::Tokenizer;
        let mut ids = vec![self.bos_id()];
        ids.extend(self.encode(&render_prompt(prompting, question, lang)));
        Ok(ids)
    }

    fn prompt_text(&self, prompting: Prompting, question: &str, lang: Lang) -> String {
        render_prompt(prompting, question, lang)
    }
}

/// The fixed text of every prompt (each template in each language with an empty question), to
/// pass to [`crate::tokenizer::WorldTokenizer::build`] with the world's texts so that every
/// template word has a token.
pub fn template_texts() -> Vec<String> {
    Prompting::ALL
        .iter()
        .flat_map(|p| Lang::ALL.map(|lang| render_prompt(*p, "", lang)))
        .collect()
}

/// The integer answer of `completion` (the model's output after the prompt), read where
/// `prompting` puts it; `None` when there is none. Never panics.
///
/// - Tagged ([`Prompting::R1Zero`], [`Prompting::Compact`]): the text between the first
///   `<answer>` and the first `</answer>` after it must be one integer, with optional
///   surrounding whitespace and one trailing '.' or '。' ("<answer> 1,234. </answer>").
/// - [`Prompting::Cot`]: the integer right after the last "The answer is" (ASCII case ignored)
///   or "答案是", after optional whitespace and ':' / '：'.
/// - [`Prompting::Direct`]: the completion's first integer.
///
/// An integer is ASCII digits with an optional leading '-' and optional thousands separators
/// ("1,234,567": groups of exactly three digits after a first group of one to three). A
/// decimal ("3.5"), a number beyond `i64`, full-width digits or anything else is `None`.
pub fn extract_answer(completion: &str, prompting: Prompting) -> Option<i64> {
    match prompting {
        Prompting::R1Zero | Prompting::Compact => tagged_answer(completion),
        Prompting::Cot => cot_answer(completion),
        Prompting::Direct => {
            let first = completion.find(|c: char| c.is_ascii_digit())?;
            let start = if completion[..first].ends_with('-') {
                first - 1
            } else {
                first
            };
            parse_integer(&completion[start..]).map(|(value, _)| value)
        }
    }
}

fn tagged_answer(completion: &str) -> Option<i64> {
    let (_, after_open) = completion.split_once(ANSWER_OPEN)?;
    let (inside, _) = after_open.split_once(ANSWER_CLOSE)?;
    let inside = inside.trim();
    let inside = inside
        .strip_suffix('.')
        .or_else(|| inside.strip_suffix('。'))
        .unwrap_or(inside)
        .trim_end();
    match parse_integer(inside) {
        Some((value, used)) if used == inside.len() => Some(value),
        _ => None,
    }
}

fn cot_answer(completion: &str) -> Option<i64> {
    // ASCII lowercasing keeps every byte offset.
    let lower = completion.to_ascii_lowercase();
    let en = lower
        .rfind("the answer is")
        .map(|i| i + "the answer is".len());
    let zh = completion
        .rfind(DIRECT_SUFFIX_ZH)
        .map(|i| i + DIRECT_SUFFIX_ZH.len());
    let end = en.max(zh)?;
    let rest = completion[end..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .or_else(|| rest.strip_prefix('：'))
        .unwrap_or(rest)
        .trim_start();
    parse_integer(rest).map(|(value, _)| value)
}

/// The integer at the start of `text` and the bytes it takes (see [`extract_answer`]).
fn parse_integer(text: &str) -> Option<(i64, usize)> {
    let bytes = text.as_bytes();
    let digits_from = |i: usize| bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let first = digits_from(i);
    if first == 0 {
        return None;
    }
    let mut number = String::from(&text[..i + first]);
    i += first;
    if first <= 3 {
        while bytes.get(i) == Some(&b',') && digits_from(i + 1) == 3 {
            number.push_str(&text[i + 1..i + 4]);
            i += 4;
        }
    }
    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    number.parse().ok().map(|value| (value, i))
}

/// The format check (first version): the response is `<think>` reasoning `</think>`, then
/// `<answer>` answer `</answer>`, with nothing of substance around them.
///
/// Only whitespace may precede `<think>` and separate `</think>` from `<answer>`; after
/// `</answer>` only whitespace and `<eos>`. The reasoning and the answer must each contain
/// something other than whitespace and no tag (so no second block and no nesting). Whether the
/// answer is an integer is the accuracy check's business. For [`Prompting::Compact`] pass the
/// response with its prefix ([`Prompting::response_prefix`]).
pub fn format_ok(completion: &str) -> bool {
    let has_tag = |s: &str| TAGS.iter().any(|t| s.contains(t));
    let substance = |s: &str| !s.trim().is_empty() && !has_tag(s);
    let Some(rest) = completion.trim_start().strip_prefix(THINK_OPEN) else {
        return false;
    };
    let Some((think, rest)) = rest.split_once(THINK_CLOSE) else {
        return false;
    };
    let Some(rest) = rest.trim_start().strip_prefix(ANSWER_OPEN) else {
        return false;
    };
    let Some((answer, tail)) = rest.split_once(ANSWER_CLOSE) else {
        return false;
    };
    substance(think) && substance(answer) && tail.replace("<eos>", "").trim().is_empty()
}

/// A mean over problems with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleScores {
    pub mean: f64,
    /// Sample standard deviation across problems (n - 1) over the square root of their number;
    /// 0 with fewer than two problems.
    pub stderr: f64,
    pub problems: usize,
}

/// The mean of per-problem `values` and its standard error. With no values, mean and stderr
/// are 0 (and `problems` is 0).
pub fn mean_and_stderr(values: &[f64]) -> SampleScores {
    let n = values.len();
    if n == 0 {
        return SampleScores {
            mean: 0.0,
            stderr: 0.0,
            problems: 0,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let stderr = if n < 2 {
        0.0
    } else {
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (var / n as f64).sqrt()
    };
    SampleScores {
        mean,
        stderr,
        problems: n,
    }
}

/// pass@1 of the paper: for each problem (a row of k sample outcomes) the share of correct
/// samples, averaged over problems, with the standard error across problems.
///
/// # Panics
/// If a problem has no samples.
pub fn pass_at_1(correct: &[Vec<bool>]) -> SampleScores {
    pass_at_k(correct, 1)
}

/// The unbiased pass@k estimator (Chen et al. 2021) per problem, averaged over problems with its
/// standard error. For k = 1 it is [`pass_at_1`].
///
/// # Panics
/// If a problem has fewer than `k` samples, or `k` is 0.
pub fn pass_at_k(correct: &[Vec<bool>], k: usize) -> SampleScores {
    let per_problem: Vec<f64> = correct
        .iter()
        .enumerate()
        .map(|(i, samples)| {
            assert!(
                samples.len() >= k.max(1),
                "problem {i} has {} samples, pass@{k} needs at least {}",
                samples.len(),
                k.max(1)
            );
            let c = samples.iter().filter(|ok| **ok).count();
            pass_at_k_unbiased(samples.len(), c, k)
        })
        .collect();
    mean_and_stderr(&per_problem)
}

/// The probability that at least one of `k` samples drawn without replacement from `n`, of
/// which `c` are correct, is correct: `1 - C(n-c, k) / C(n, k)`, computed as a stable product
/// (Chen et al. 2021).
///
/// # Panics
/// If `k` is 0, `k > n` or `c > n`.
pub fn pass_at_k_unbiased(n: usize, c: usize, k: usize) -> f64 {
    assert!(k >= 1 && k <= n, "pass@{k} needs 1 <= k <= n = {n}");
    assert!(c <= n, "{c} correct of {n} samples");
    if n - c < k {
        return 1.0;
    }
    1.0 - (n - c + 1..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product::<f64>()
}

/// The majority answer among the extracted ones (`None`s do not vote). Among answers with the
/// same, highest count, the one that appeared first wins. `None` if no sample has an answer.
pub fn majority_answer(answers: &[Option<i64>]) -> Option<i64> {
    // (answer, votes) in order of first appearance.
    let mut votes: Vec<(i64, usize)> = Vec::new();
    for answer in answers.iter().flatten() {
        match votes.iter_mut().find(|(a, _)| a == answer) {
            Some((_, count)) => *count += 1,
            None => votes.push((*answer, 1)),
        }
    }
    let mut best: Option<(i64, usize)> = None;
    for (answer, count) in votes {
        if best.is_none_or(|(_, top)| count > top) {
            best = Some((answer, count));
        }
    }
    best.map(|(answer, _)| answer)
}

/// cons@k for one problem: whether the [`majority_answer`] of its k samples is `truth`. No
/// answers at all is wrong.
pub fn cons_at_k(answers: &[Option<i64>], truth: i64) -> bool {
    majority_answer(answers) == Some(truth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::tokenizer::{Tokenizer, WorldTokenizer, UNK_ID};
    use crate::world::{generate, tagged, WorldConfig};

    #[test]
    fn templates_render_as_documented() {
        let q = "Natalia had 48 clips. How many clips does she have now?";
        let r1 = render_prompt(Prompting::R1Zero, q, Lang::En);
        assert!(r1.starts_with("A conversation between User and Assistant. The user asks"));
        assert!(r1.contains("i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: Natalia"));
        assert!(r1.ends_with("have now?. Assistant:"));
        assert_eq!(render_prompt(Prompting::R1Zero, q, Lang::Zh), r1);
        assert_eq!(
            render_prompt(Prompting::Compact, q, Lang::En),
            format!("User: {q} Assistant: <think>")
        );
        assert_eq!(render_prompt(Prompting::Cot, q, Lang::En), q);
        assert_eq!(
            render_prompt(Prompting::Direct, q, Lang::En),
            format!("{q} The answer is")
        );
        assert_eq!(
            render_prompt(Prompting::Direct, "小明有多少个？", Lang::Zh),
            "小明有多少个？答案是"
        );
    }

    #[test]
    fn serde_names() {
        for p in Prompting::ALL {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            assert_eq!(serde_json::from_str::<Prompting>(&json).unwrap(), p);
        }
        assert_eq!(Prompting::R1Zero.to_string(), "r1-zero");
        assert!(serde_json::from_str::<Prompting>("\"r1zero\"").is_err());
    }

    #[test]
    fn every_prompt_tokenizes_without_unknowns() {
        let config = WorldConfig {
            web_documents: 300,
            train_problems: 100,
            benchmark_size: 10,
            ..WorldConfig::default()
        };
        let world = generate(&config);
        let texts = world
            .web
            .iter()
            .map(|d| d.text.clone())
            .chain(world.train.iter().map(|p| p.question.clone()))
            .chain(template_texts());
        let tokenizer = WorldTokenizer::build(config.max_number, texts);
        for problem in &world.train {
            for p in Prompting::ALL {
                let prompt = render_prompt(p, &problem.question, problem.lang);
                let ids = tokenizer.encode(&prompt);
                assert!(!ids.contains(&UNK_ID), "{prompt}");
                // The compact, cot and direct prompts are written with canonical spacing; the
                // paper's template is not ("i.e.," decodes as "i. e.,", "</answer>." as
                // "</answer> .").
                let decoded = tokenizer.decode(&ids);
                if p != Prompting::R1Zero {
                    assert_eq!(decoded, prompt);
                }
                assert_eq!(tokenizer.encode(&decoded), ids);
            }
        }
    }

    #[test]
    fn answers_are_read_from_the_worlds_own_text() {
        let config = WorldConfig {
            web_documents: 10,
            train_problems: 300,
            benchmark_size: 5,
            ..WorldConfig::default()
        };
        for problem in generate(&config).train {
            let answer = Some(problem.answer);
            assert_eq!(extract_answer(&problem.solution, Prompting::Cot), answer);
            let response = tagged(&problem.solution, problem.answer);
            assert_eq!(extract_answer(&response, Prompting::R1Zero), answer);
            assert!(format_ok(&response), "{response}");
            // The compact prompt wrote the opening tag.
            let completion = response.strip_prefix("<think>").unwrap();
            assert_eq!(extract_answer(completion, Prompting::Compact), answer);
            let full = format!("{}{completion}", Prompting::Compact.response_prefix());
            assert!(format_ok(&full));
            let bare = match problem.lang {
                Lang::En => format!(" {}.", problem.answer),
                Lang::Zh => format!(" {}。", problem.answer),
            };
            assert_eq!(extract_answer(&bare, Prompting::Direct), answer);
        }
    }

    #[test]
    fn tagged_extraction() {
        let x = |s: &str| extract_answer(s, Prompting::R1Zero);
        assert_eq!(
            x("<think> 3 + 4 = 7 </think> <answer> 7 </answer>"),
            Some(7)
        );
        assert_eq!(x("<answer>7</answer>"), Some(7));
        assert_eq!(x("<answer>\n 1,234. </answer>"), Some(1234));
        assert_eq!(x("<answer> 56。</answer>"), Some(56));
        assert_eq!(x("<answer> -3 </answer>"), Some(-3));
        assert_eq!(x("<answer> 007 </answer>"), Some(7));
        assert_eq!(x("<answer> 5 </answer> <answer> 6 </answer>"), Some(5));
        assert_eq!(x("<think> <answer> 9 </answer> </think>"), Some(9));
        for bad in [
            "",
            "7",
            "<answer> 7",
            "</answer> 7 <answer>",
            "<answer></answer>",
            "<answer> </answer>",
            "<answer> seven </answer>",
            "<answer> 7 apples </answer>",
            "<answer> The answer is 7 </answer>",
            "<answer> 3.5 </answer>",
            "<answer> 7.. </answer>",
            "<answer> 1234,567 </answer>",
            "<answer> 1,23 </answer>",
            "<answer> 12,3456 </answer>",
            "<answer> ７ </answer>",
            "<answer> 99999999999999999999 </answer>",
            "<answer> 9,223,372,036,854,775,808 </answer>",
            "<answer> <answer> 5 </answer> </answer>",
            "<answer> - 5 </answer>",
            "<answer> --5 </answer>",
            "<ANSWER> 5 </ANSWER>",
        ] {
            assert_eq!(x(bad), None, "{bad:?}");
        }
        assert_eq!(x("<answer> 9223372036854775807 </answer>"), Some(i64::MAX));
        assert_eq!(
            x("<answer> -9,223,372,036,854,775,808 </answer>"),
            Some(i64::MIN)
        );
    }

    #[test]
    fn cot_and_direct_extraction() {
        let cot = |s: &str| extract_answer(s, Prompting::Cot);
        assert_eq!(
            cot("She has 24 + 15 = 39 apples. The answer is 39."),
            Some(39)
        );
        assert_eq!(cot("所以他有 13 个。答案是 13。"), Some(13));
        assert_eq!(
            cot("The answer is 11. Wait, let me check. The answer is 12."),
            Some(12)
        );
        assert_eq!(cot("答案是 11。 The answer is 12."), Some(12));
        assert_eq!(cot("The answer is 12. 答案是 11。"), Some(11));
        assert_eq!(cot("the answer is: 1,000."), Some(1000));
        assert_eq!(cot("答案是：5"), Some(5));
        assert_eq!(cot("The answer is 3.5."), None);
        assert_eq!(cot("The answer is seven. 3 + 4 = 7"), None);
        assert_eq!(cot("The answer is 5. The answer is"), None);
        assert_eq!(cot("24 + 15 = 39"), None);
        assert_eq!(cot(""), None);
        assert_eq!(cot("The answer is 123456789012345678901234"), None);

        let direct = |s: &str| extract_answer(s, Prompting::Direct);
        assert_eq!(direct(" 11."), Some(11));
        assert_eq!(direct(" 11。 小明"), Some(11));
        assert_eq!(direct(" 3 + 4 = 7"), Some(3));
        assert_eq!(direct("-4 apples"), Some(-4));
        assert_eq!(direct("24 - 3 = 21"), Some(24));
        assert_eq!(direct(" 1,234 and 5"), Some(1234));
        assert_eq!(direct(" 3, 4"), Some(3));
        assert_eq!(direct(" 2.5"), None);
        assert_eq!(direct(" seven"), None);
        assert_eq!(direct(""), None);
        assert_eq!(direct("９"), None);
    }

    #[test]
    fn extraction_survives_random_text() {
        // Property-style: random mixtures of tags, digits, separators, markers and unicode never
        // panic, and an answer planted in a known place is always found.
        let pieces = [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "<eos>",
            "The answer is",
            "答案是",
            "the ANSWER is",
            " ",
            "\n",
            "-",
            ",",
            ".",
            "。",
            ":",
            "：",
            "0",
            "7",
            "42",
            "999",
            "1,234",
            "99999999999999999999",
            "３",
            "小明",
            "é",
            "😀",
            "<",
            ">",
            "answer",
            "\u{0}",
        ];
        let mut rng = Rng::new(17);
        for _ in 0..20_000 {
            let len = rng.below(12) as usize;
            let text: String = (0..len).map(|_| *rng.choose(&pieces)).collect();
            for p in Prompting::ALL {
                let _ = extract_answer(&text, p);
            }
            let ok = format_ok(&text);
            if ok {
                assert!(text.trim_start().starts_with("<think>"), "{text:?}");
            }
            // A planted answer after text without markers or tags is found.
            let v = rng.next_u64() as i64;
            let noise: String = text
                .replace("answer", "")
                .replace("ANSWER", "")
                .replace("答案是", "");
            let planted = format!("{noise} <answer> {} </answer>", with_commas(v));
            let clean = !noise.contains('<');
            if clean {
                assert_eq!(extract_answer(&planted, Prompting::R1Zero), Some(v));
                let cot = format!("{noise} The answer is {v}.");
                assert_eq!(extract_answer(&cot, Prompting::Cot), Some(v), "{cot:?}");
            }
        }
    }

    fn with_commas(v: i64) -> String {
        let digits = v.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0 {
            format!("-{out}")
        } else {
            out
        }
    }

    #[test]
    fn format_check() {
        for good in [
            "<think> 3 + 4 = 7. </think> <answer> 7 </answer>",
            "\n <think>x</think><answer>7</answer>",
            "<think> 想 </think>\n<answer> seven </answer> <eos>",
            "<think> a </think> <answer> 7 </answer><eos><eos>\n",
        ] {
            assert!(format_ok(good), "{good:?}");
        }
        for bad in [
            "",
            "7",
            "<think> a </think>",
            "<answer> 7 </answer>",
            "Sure. <think> a </think> <answer> 7 </answer>",
            "<think> a </think> so <answer> 7 </answer>",
            "<think> a </think> <answer> 7 </answer> and more",
            "<think> </think> <answer> 7 </answer>",
            "<think> a </think> <answer> </answer>",
            "<think> a <think> b </think> <answer> 7 </answer>",
            "<think> a </think> <answer> <answer> 7 </answer> </answer>",
            "<think> a </think> <answer> 7 </answer> <answer> 8 </answer>",
            "<think> a </think> <think> b </think> <answer> 7 </answer>",
            "<answer> 7 </answer> <think> a </think>",
            "<think> a <answer> 7 </answer>",
        ] {
            assert!(!format_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn pass_at_1_averages_problems_and_reports_stderr() {
        let t = true;
        let f = false;
        let scores = pass_at_1(&[vec![t, t, f, f], vec![t, t, t, t], vec![f, f, f, f]]);
        assert!((scores.mean - 0.5).abs() < 1e-12);
        // Per-problem 0.5, 1, 0: sample sd 0.5, stderr 0.5 / sqrt 3.
        assert!((scores.stderr - 0.5 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(scores.problems, 3);
        // Problems weigh equally whatever their sample counts.
        let uneven = pass_at_1(&[vec![t], vec![f, f, f, t]]);
        assert!((uneven.mean - 0.625).abs() < 1e-12);
        assert_eq!(pass_at_1(&[vec![t, f]]).stderr, 0.0);
        assert_eq!(pass_at_1(&[]).problems, 0);
    }

    #[test]
    #[should_panic(expected = "problem 1 has 0 samples")]
    fn pass_at_1_refuses_a_problem_without_samples() {
        pass_at_1(&[vec![true], vec![]]);
    }

    #[test]
    fn unbiased_pass_at_k_matches_combinatorics() {
        fn choose(n: u64, k: u64) -> f64 {
            (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
        }
        for n in 1..=12usize {
            for c in 0..=n {
                for k in 1..=n {
                    let exact = if n - c < k {
                        1.0
                    } else {
                        1.0 - choose((n - c) as u64, k as u64) / choose(n as u64, k as u64)
                    };
                    let got = pass_at_k_unbiased(n, c, k);
                    assert!((got - exact).abs() < 1e-12, "n={n} c={c} k={k}");
                }
            }
        }
        assert!((pass_at_k_unbiased(5, 2, 2) - 0.7).abs() < 1e-12);
        assert!((pass_at_k_unbiased(10, 3, 1) - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k_unbiased(10, 0, 5), 0.0);
        assert_eq!(pass_at_k_unbiased(10, 6, 5), 1.0);
        let s = pass_at_k(&[vec![true, false, false], vec![false; 3]], 2);
        assert!((s.mean - (2.0 / 3.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn cons_at_k_majority_and_tie_rule() {
        let s = Some;
        // Unanswered samples do not vote, however many.
        assert!(cons_at_k(&[s(3), s(5), s(5), None, None, None], 5));
        assert_eq!(majority_answer(&[s(3), s(5), s(5), None, None, None]), s(5));
        // Tie: the answer that appeared first wins.
        assert_eq!(majority_answer(&[s(4), s(5), s(5), s(4)]), s(4));
        assert!(cons_at_k(&[s(4), s(5), s(5), s(4)], 4));
        assert!(!cons_at_k(&[s(4), s(5), s(5), s(4)], 5));
        assert_eq!(majority_answer(&[None, s(9), s(1), s(2)]), s(9));
        // A later answer that overtakes wins.
        assert_eq!(majority_answer(&[s(1), s(2), s(2)]), s(2));
        // No answers: wrong.
        assert!(!cons_at_k(&[], 0));
        assert!(!cons_at_k(&[None, None], 0));
        assert_eq!(majority_answer(&[None]), None);
    }

    #[test]
    fn protocol_constants() {
        let p = crate::sampling::LogitsProcessor::new(EVAL_TEMPERATURE, EVAL_TOP_P);
        assert_eq!((p.temperature(), p.top_p()), (0.6, 0.95));
    }
}
