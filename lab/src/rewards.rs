//! The rule-based rewards of R1-Zero and R1 (R1 §2.2.2, §2.3.2) as pure functions: no reward
//! model, only rules a reader can check by hand.
//!
//! - **Accuracy**: 1 when the integer in the first `<answer> … </answer>` equals the truth
//!   (read by [`extract_answer`] with a tagged prompting), else 0.
//! - **Format**: 1 when the response is `<think> … </think> <answer> … </answer>` with nothing
//!   of substance around it ([`format_ok`]) *and* the chain of thought contains at least
//!   [`RewardConfig::min_reasoning_steps`] arithmetic steps `a op b = c`
//!   ([`find_equations`]), right or wrong; else 0.
//! - **Language** (R1 §2.3.2): the share of the chain's words in the target language
//!   ([`count_words`], [`WordCounts::consistency`]); with `language_measure = "clean"`, 1 when
//!   no word is in the other language, else 0 ([`LanguageMeasure`]).
//!
//! The total is the weighted sum `accuracy·w_acc + format·w_fmt + language·w_lang`.
//!
//! # Why the format reward asks for reasoning
//!
//! A reward for the tags alone can be collected without solving anything: any text inside
//! `<think>` and any number inside `<answer>` qualify. Early in RL a small model is rarely
//! right, so in most groups the format reward is the only thing that varies, and GRPO's
//! group-relative advantage pushes every group towards the cheapest well-formed response. A
//! prototype of this lab with a 0.1 reward for format alone collapsed within 10 steps to
//! answering "1" with junk inside `<think>` (see [`most_common_answer_share`], the detector).
//! Requiring at least one arithmetic step, written as the world's solutions write it, makes
//! the format reward pay for responses on the path to accuracy rather than for the shortcut
//! around it. Steps count right or wrong: judging each step would be a process reward, which
//! R1 deliberately avoids (§4.2), and the accuracy reward already judges the result. The floor
//! is a floor, not a proof of reasoning: a chain of one memorised equation still passes, so
//! keep the format weight small against the accuracy weight.
//!
//! # Language consistency
//!
//! A chain with no words at all (only numbers and symbols) is consistent: the language reward
//! only ever penalises words of the other language, it never pays for writing more. Pair it
//! with the format reward's reasoning floor when words are scarce.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::evaluation::{extract_answer, format_ok, Prompting};
use crate::language::{chain_of_thought, count_words, WordCounts};
use crate::world::{find_equations, Lang};

/// Weights of the reward parts and the format reward's reasoning floor.
///
/// Every field has a default; unknown fields are rejected so a misspelt weight cannot silently
/// fall back to its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardConfig {
    /// Weight of the accuracy reward (default 1.0).
    pub accuracy: f64,
    /// Weight of the format reward (default 0.1).
    pub format: f64,
    /// Weight of the language-consistency reward (default 0.0; the R1 recipe's reasoning RL
    /// stage turns it on).
    pub language: f64,
    /// What the language reward measures: `"share"` (default, the paper's) or `"clean"`.
    /// Left out of the resolved spec when it is the default, so existing ids stay.
    #[serde(skip_serializing_if = "LanguageMeasure::is_share")]
    pub language_measure: LanguageMeasure,
    /// Arithmetic steps (`a op b = c`, right or wrong) the chain of thought needs for the
    /// format reward (default 1). 0 pays for the tags alone, which invites collapse (see the
    /// module documentation).
    pub min_reasoning_steps: usize,
}

impl Default for RewardConfig {
    fn default() -> Self {
        RewardConfig {
            accuracy: 1.0,
            format: 0.1,
            language: 0.0,
            language_measure: LanguageMeasure::Share,
            min_reasoning_steps: 1,
        }
    }
}

/// How the language reward scores a chain of thought.
///
/// The paper's `share` of target-language words gives a chain with one stray word among 40 a
/// reward of 0.975: within a group that differs in accuracy, that is no signal, and mixing
/// at T 1 stays at a few percent of samples under it. `clean` pays 1 for a chain with no word
/// of the other language and 0 otherwise, so one stray word costs as much as the whole reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LanguageMeasure {
    /// The share of the chain's words in the target language (R1 §2.3.2).
    #[default]
    Share,
    /// 1 when no word of the chain is in the other language, else 0.
    Clean,
}

impl LanguageMeasure {
    fn is_share(&self) -> bool {
        *self == LanguageMeasure::Share
    }
}

impl RewardConfig {
    /// Every weight must be finite and >= 0, and at least one must be positive. Problems are
    /// `(field, message)` pairs.
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        let weights = [
            ("accuracy", self.accuracy),
            ("format", self.format),
            ("language", self.language),
        ];
        for (field, value) in weights {
            if !(value.is_finite() && value >= 0.0) {
                problems.push((
                    field.to_string(),
                    format!("must be finite and >= 0, got {value}"),
                ));
            }
        }
        if problems.is_empty() && weights.iter().all(|(_, value)| *value == 0.0) {
            problems.push((
                "accuracy".to_string(),
                "the weights accuracy, format and language are all 0; at least one must be > 0"
                    .to_string(),
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// The reward of one completion, part by part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RewardParts {
    /// 1 when the answer equals the truth, else 0.
    pub accuracy: f64,
    /// 1 when the format is right and the chain has enough reasoning steps, else 0.
    pub format: f64,
    /// Share of the chain's words in the target language, in `[0, 1]` (1 without words).
    pub language: f64,
    /// `accuracy·w_acc + format·w_fmt + language·w_lang`.
    pub total: f64,
    /// The integer in the first `<answer> … </answer>`, if any.
    pub answer: Option<i64>,
    /// Equations `a op b = c` (right or wrong) in the chain of thought: inside `<think>` when
    /// the response has one, else in the whole response.
    pub reasoning_steps: usize,
}

/// Scores one completion.
///
/// `completion` is the model's response text; `prefix` is what the prompt already wrote of
/// the response (`"<think>"` for the compact template, see [`Prompting::response_prefix`]), so
/// the full response is `prefix + completion`, and every part is read from it. `target` is
/// the language of the prompt, for the language reward. All parts are computed whatever their
/// weights (they are logged); the config is not validated here. Never panics.
pub fn score(
    completion: &str,
    prefix: &str,
    truth: i64,
    target: Lang,
    config: &RewardConfig,
) -> RewardParts {
    let response = format!("{prefix}{completion}");
    let answer = extract_answer(&response, Prompting::R1Zero);
    let chain = chain_of_thought(&response);
    let reasoning_steps = find_equations(chain).len();
    let indicator = |ok: bool| if ok { 1.0 } else { 0.0 };
    let accuracy = indicator(answer == Some(truth));
    let format = indicator(format_ok(&response) && reasoning_steps >= config.min_reasoning_steps);
    let words = count_words(chain);
    let language = match config.language_measure {
        LanguageMeasure::Share => words.consistency(target),
        LanguageMeasure::Clean => indicator(!words.mixed(target)),
    };
    let total = accuracy * config.accuracy + format * config.format + language * config.language;
    RewardParts {
        accuracy,
        format,
        language,
        total,
        answer,
        reasoning_steps,
    }
}

/// The collapse detector: the share of all completions of a step (or group) that give the most
/// common answer. Completions without an answer (`None`) count in the denominator but never
/// as the most common answer. 0 for no completions or no answers; near 1 means the policy
/// answers the same whatever the question.
pub fn most_common_answer_share(answers: &[Option<i64>]) -> f64 {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for answer in answers.iter().flatten() {
        *counts.entry(*answer).or_insert(0) += 1;
    }
    match counts.values().max() {
        Some(&top) => top as f64 / answers.len() as f64,
        None => 0.0,
    }
}

/// The language scores of one arbitrary model output (`lab langmix`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LangMixLine {
    /// Share of the chain's words in `target`, in `[0, 1]` (1 without words).
    pub consistency: f64,
    /// Whether the chain has any word of the other language.
    pub mixed: bool,
    pub en_words: usize,
    pub zh_words: usize,
    /// The language the chain is measured against.
    pub target: Lang,
}

/// Scores the language of an arbitrary completion of `prompt`.
///
/// The chain is the text inside `<think> … </think>` when the completion opens one (up to the
/// end when it is never closed); the text before `</think>` when the completion closes a
/// `<think>` it never opened (the prompt opened it, as the compact template and R1's chat
/// template do); else the whole completion. `target` `None` means the prompt's language
/// ([`prompt_language`]). Words are those of [`count_words`]: punctuation of any width, digits
/// and separators, LaTeX commands, emoji, tags and other scripts count for no language. Never
/// panics, whatever the input.
pub fn score_langmix(prompt: &str, completion: &str, target: Option<Lang>) -> LangMixLine {
    let target = target.unwrap_or_else(|| prompt_language(prompt));
    let counts: WordCounts = count_words(langmix_chain(completion));
    LangMixLine {
        consistency: counts.consistency(target),
        mixed: counts.mixed(target),
        en_words: counts.en,
        zh_words: counts.zh,
        target,
    }
}

/// Scores each line of JSON-lines text whose objects have string fields `prompt` and
/// `completion` (`lab langmix`'s input), blank lines skipped: `(line number, scores)` by line,
/// or an error naming the first bad line (`line 3: not JSON: …`, `line 4: no string field
/// `prompt``). Never panics, whatever the text.
pub fn score_langmix_lines(
    text: &str,
    target: Option<Lang>,
) -> Result<Vec<(usize, LangMixLine)>, String> {
    let mut scores = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        let field = |name: &str| -> Result<&str, String> {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("line {}: no string field `{name}`", i + 1))
        };
        scores.push((
            i + 1,
            score_langmix(field("prompt")?, field("completion")?, target),
        ));
    }
    Ok(scores)
}

/// The language of a prompt: the majority language of its question's words ([`count_words`]),
/// English on a tie (and for a prompt without words).
///
/// The question is the text after the last "User:" up to the last "Assistant:" after it when
/// the prompt has a "User:" (the R1-Zero and compact templates are English whatever the
/// question's language, as in the paper, and must not outvote it); else the whole prompt.
pub fn prompt_language(prompt: &str) -> Lang {
    let question = match prompt.rfind("User:") {
        Some(start) => {
            let rest = &prompt[start + "User:".len()..];
            match rest.rfind("Assistant:") {
                Some(end) => &rest[..end],
                None => rest,
            }
        }
        None => prompt,
    };
    let counts = count_words(question);
    if counts.zh > counts.en {
        Lang::Zh
    } else {
        Lang::En
    }
}

/// The chain of thought of an arbitrary completion (see [`score_langmix`]).
fn langmix_chain(completion: &str) -> &str {
    match (
        completion.find(crate::response::THINK_OPEN),
        completion.find(crate::response::THINK_CLOSE),
    ) {
        (open, Some(close)) if open.is_none_or(|open| close < open) => &completion[..close],
        _ => chain_of_thought(completion),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const GOOD: &str = "<think> Natalia sold 48 ÷ 2 = 24 clips in May. 48 + 24 = 72. </think> \
                        <answer> 72 </answer>";

    fn en(completion: &str, truth: i64) -> RewardParts {
        score(completion, "", truth, Lang::En, &RewardConfig::default())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn right_answer_with_reasoning_gets_accuracy_and_format() {
        let parts = en(GOOD, 72);
        assert_eq!(
            parts,
            RewardParts {
                accuracy: 1.0,
                format: 1.0,
                language: 1.0,
                total: 1.1,
                answer: Some(72),
                reasoning_steps: 2,
            }
        );
    }

    #[test]
    fn format_needs_reasoning_steps_inside_think() {
        let no_steps = "<think> Natalia sold clips in May and more in June. </think> \
                        <answer> 72 </answer>";
        let parts = en(no_steps, 72);
        assert_eq!((parts.accuracy, parts.format), (1.0, 0.0));
        assert_eq!(parts.reasoning_steps, 0);
        // Without the floor the tags alone pay, which is what collapsed the prototype.
        let tags_only = RewardConfig {
            min_reasoning_steps: 0,
            ..RewardConfig::default()
        };
        assert_eq!(score(no_steps, "", 72, Lang::En, &tags_only).format, 1.0);
        // A higher floor.
        let three = RewardConfig {
            min_reasoning_steps: 3,
            ..RewardConfig::default()
        };
        assert_eq!(score(GOOD, "", 72, Lang::En, &three).format, 0.0);
        // Wrong arithmetic still counts as a step: the answer is judged by accuracy.
        let wrong_step = en("<think> 48 + 24 = 70 </think> <answer> 70 </answer>", 72);
        assert_eq!(
            (
                wrong_step.accuracy,
                wrong_step.format,
                wrong_step.reasoning_steps
            ),
            (0.0, 1.0, 1)
        );
        // Equations outside <think> do not count.
        let outside = en("<think> so </think> <answer> 48 + 24 = 72 </answer>", 72);
        assert_eq!((outside.format, outside.reasoning_steps), (0.0, 0));
        assert_eq!((outside.accuracy, outside.answer), (0.0, None));
    }

    #[test]
    fn junk_inside_think_earns_nothing() {
        // The collapsed prototype's response.
        for junk in [
            "<think> 1 1 1 ! ! ? </think> <answer> 1 </answer>",
            "<think> = = 5 + </think> <answer> 1 </answer>",
            "<think> 3 + = 4 </think> <answer> 1 </answer>",
            "<think> . </think> <answer> 1 </answer>",
        ] {
            let parts = en(junk, 72);
            assert_eq!((parts.accuracy, parts.format), (0.0, 0.0), "{junk}");
            assert_eq!(parts.answer, Some(1));
            assert_eq!(parts.total, 0.0);
        }
        assert_eq!(
            en("<think> 1 1 1 </think> <answer> 1 </answer>", 1).format,
            0.0
        );
    }

    #[test]
    fn wrong_or_unreadable_answers() {
        let wrong = en(GOOD, 73);
        assert_eq!(
            (wrong.accuracy, wrong.format, wrong.answer),
            (0.0, 1.0, Some(72))
        );
        assert!(close(wrong.total, 0.1));
        for bad in [
            "<think> 48 + 24 = 72 </think> <answer> 72 apples </answer>",
            "<think> 48 + 24 = 72 </think> <answer> 72.5 </answer>",
            "<think> 48 + 24 = 72 </think> <answer> seventy-two </answer>",
            "<think> 48 + 24 = 72 </think> <answer> ７２ </answer>",
            "<think> 48 + 24 = 72 </think> <answer> 99999999999999999999999 </answer>",
            "<think> 48 + 24 = 72 </think> <answer> 72",
            "<think> 48 + 24 = 72 </think> 72",
            "",
        ] {
            let parts = en(bad, 72);
            assert_eq!((parts.accuracy, parts.answer), (0.0, None), "{bad:?}");
        }
    }

    #[test]
    fn separators_and_a_trailing_period_are_read() {
        let parts = en(
            "<think> 1000 + 234 = 1234 </think> <answer> 1,234. </answer>",
            1234,
        );
        assert_eq!((parts.accuracy, parts.format), (1.0, 1.0));
        assert_eq!(parts.answer, Some(1234));
        let zh = score(
            "<think> 1000 + 234 = 1234 </think> <answer>\n1,234。 </answer>",
            "",
            1234,
            Lang::Zh,
            &RewardConfig::default(),
        );
        assert_eq!(zh.accuracy, 1.0);
    }

    #[test]
    fn only_whitespace_and_eos_may_follow_the_answer() {
        for ok in [
            GOOD.to_string(),
            format!("{GOOD} <eos>"),
            format!("{GOOD}\n\n<eos><eos> \n"),
        ] {
            assert_eq!(en(&ok, 72).format, 1.0, "{ok:?}");
        }
        for bad in [
            format!("{GOOD} Wait, 72."),
            format!("{GOOD} <answer> 5 </answer>"),
            format!("{GOOD} <eos> more"),
            format!("Sure! {GOOD}"),
        ] {
            let parts = en(&bad, 72);
            assert_eq!(parts.format, 0.0, "{bad:?}");
            // The answer is still read from the first <answer>.
            assert_eq!(parts.accuracy, 1.0, "{bad:?}");
        }
    }

    #[test]
    fn the_compact_prefix_is_part_of_the_response() {
        let prefix = Prompting::Compact.response_prefix();
        assert_eq!(prefix, "<think>");
        let completion = " 48 + 24 = 72 </think> <answer> 72 </answer>";
        let parts = score(completion, prefix, 72, Lang::En, &RewardConfig::default());
        assert_eq!((parts.accuracy, parts.format), (1.0, 1.0));
        assert_eq!((parts.reasoning_steps, parts.language), (1, 1.0));
        // Forgetting the prefix loses the format reward, not the answer.
        let bare = en(completion, 72);
        assert_eq!((bare.accuracy, bare.format), (1.0, 0.0));
        // The R1-Zero template writes no prefix.
        assert_eq!(Prompting::R1Zero.response_prefix(), "");
        // A model that repeats the prompt's <think> breaks the format.
        let twice = score(
            &format!("<think>{completion}"),
            prefix,
            72,
            Lang::En,
            &RewardConfig::default(),
        );
        assert_eq!((twice.accuracy, twice.format), (1.0, 0.0));
    }

    #[test]
    fn a_clean_language_reward_pays_nothing_for_one_stray_word() {
        let clean = RewardConfig {
            language: 1.0,
            language_measure: LanguageMeasure::Clean,
            ..RewardConfig::default()
        };
        let share = RewardConfig {
            language_measure: LanguageMeasure::Share,
            ..clean.clone()
        };
        // Six English words and one Chinese one.
        let stray = "<think> Tom has 48 apples and gets 24 more , 48 + 24 = 72 对 </think> \
                     <answer> 72 </answer>";
        assert!(close(
            score(stray, "", 72, Lang::En, &share).language,
            6.0 / 7.0
        ));
        let parts = score(stray, "", 72, Lang::En, &clean);
        assert_eq!((parts.language, parts.accuracy), (0.0, 1.0));
        let pure = "<think> Tom has 48 apples , 48 + 24 = 72 </think> <answer> 72 </answer>";
        assert_eq!(score(pure, "", 72, Lang::En, &clean).language, 1.0);
        // A chain without words has no word of the other language.
        let bare = "<think> 48 + 24 = 72 </think> <answer> 72 </answer>";
        assert_eq!(score(bare, "", 72, Lang::Zh, &clean).language, 1.0);

        // The paper's measure is the default, spelt out or not, and is left out of the spec.
        let default = serde_json::to_value(RewardConfig::default()).unwrap();
        assert!(default.get("language_measure").is_none(), "{default}");
        let spelt: RewardConfig =
            serde_json::from_value(serde_json::json!({ "language_measure": "share" })).unwrap();
        assert_eq!(spelt, RewardConfig::default());
        let clean_json = serde_json::to_value(&clean).unwrap();
        assert_eq!(clean_json["language_measure"], "clean");
        let unknown = serde_json::from_value::<RewardConfig>(
            serde_json::json!({ "language_measure": "all" }),
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown variant"));
    }

    #[test]
    fn language_reward_is_the_target_share_of_chain_words() {
        let config = RewardConfig {
            language: 1.0,
            ..RewardConfig::default()
        };
        let zh_chain = "<think> 小明有 48 个苹果，48 + 24 = 72。 </think> <answer> 72 </answer>";
        assert_eq!(score(zh_chain, "", 72, Lang::En, &config).language, 0.0);
        assert_eq!(score(zh_chain, "", 72, Lang::Zh, &config).language, 1.0);
        // 4 English words, 4 Chinese characters; the answer block is not part of the chain.
        let half = "<think> She has 48 + 24 = 72 apples now 所以她有 </think> \
                    <answer> 72 </answer>";
        let parts = score(half, "", 72, Lang::En, &config);
        assert!(close(parts.language, 0.5), "{parts:?}");
        assert!(close(parts.total, 1.0 + 0.1 + 0.5));
        // With the compact prefix the chain is still only the inside of <think>.
        let completion = " 她有 48 + 24 = 72 </think> <answer> The answer is 72 </answer>";
        let compact = score(completion, "<think>", 72, Lang::Zh, &config);
        assert_eq!(compact.language, 1.0);
        // A chain without words is consistent.
        assert_eq!(
            en("<think> 3 + 4 = 7 </think> <answer> 7 </answer>", 7).language,
            1.0
        );
    }

    #[test]
    fn weights_combine() {
        let config = RewardConfig {
            accuracy: 2.0,
            format: 0.5,
            language: 0.25,
            min_reasoning_steps: 1,
            ..RewardConfig::default()
        };
        let half = "<think> She has 48 + 24 = 72 apples now 所以她有 </think> \
                    <answer> 72 </answer>";
        let parts = score(half, "", 72, Lang::En, &config);
        assert!(close(parts.total, 2.0 + 0.5 + 0.125), "{parts:?}");
        let wrong = score(half, "", 5, Lang::En, &config);
        assert!(close(wrong.total, 0.5 + 0.125));
        let zh_junk = score("小明 <answer> 5 </answer>", "", 5, Lang::En, &config);
        assert_eq!(
            (zh_junk.accuracy, zh_junk.format, zh_junk.language),
            (1.0, 0.0, 0.0)
        );
        assert!(close(zh_junk.total, 2.0));
        let accuracy_only = RewardConfig {
            format: 0.0,
            ..RewardConfig::default()
        };
        assert_eq!(score(GOOD, "", 72, Lang::En, &accuracy_only).total, 1.0);
    }

    #[test]
    fn most_common_answer_share_cases() {
        let s = Some;
        assert_eq!(most_common_answer_share(&[]), 0.0);
        assert_eq!(most_common_answer_share(&[None, None]), 0.0);
        assert_eq!(most_common_answer_share(&[s(3)]), 1.0);
        assert_eq!(most_common_answer_share(&[s(1); 8]), 1.0);
        assert_eq!(most_common_answer_share(&[s(1), s(1), s(2), None]), 0.5);
        assert_eq!(most_common_answer_share(&[s(1), s(2), s(3), s(4)]), 0.25);
        assert!(close(
            most_common_answer_share(&[None, s(7), s(7), s(7), s(-1), None]),
            0.5
        ));
    }

    #[test]
    fn config_defaults_serde_and_validation() {
        let default = RewardConfig::default();
        assert_eq!(
            (default.accuracy, default.format, default.language),
            (1.0, 0.1, 0.0)
        );
        assert_eq!(default.min_reasoning_steps, 1);
        assert_eq!(default.validate(), Ok(()));
        let parsed: RewardConfig = serde_json::from_str(r#"{"language": 0.5}"#).unwrap();
        assert_eq!(
            parsed,
            RewardConfig {
                language: 0.5,
                ..default.clone()
            }
        );
        let err = serde_json::from_str::<RewardConfig>(r#"{"langauge": 0.5}"#).unwrap_err();
        assert!(err.to_string().contains("langauge"), "{err}");

        let bad = RewardConfig {
            accuracy: f64::NAN,
            format: -0.1,
            language: f64::INFINITY,
            min_reasoning_steps: 0,
            ..RewardConfig::default()
        };
        let problems = bad.validate().unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["accuracy", "format", "language"]);
        assert!(problems[1].1.contains("-0.1"), "{problems:?}");
        let zero = RewardConfig {
            accuracy: 0.0,
            format: 0.0,
            language: 0.0,
            min_reasoning_steps: 1,
            ..RewardConfig::default()
        };
        let problems = zero.validate().unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "accuracy");
        assert!(problems[0].1.contains("all 0"));
        let language_only = RewardConfig {
            language: 1.0,
            ..zero
        };
        assert_eq!(language_only.validate(), Ok(()));
    }

    #[test]
    fn reward_parts_serialize() {
        let json = serde_json::to_value(en(GOOD, 72)).unwrap();
        assert_eq!(json["answer"], 72);
        assert_eq!(json["reasoning_steps"], 2);
        assert_eq!(
            serde_json::to_value(en("x", 72)).unwrap()["answer"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn langmix_targets_and_chains() {
        let en_prompt = "Natalia had 48 clips. How many clips does she have now?";
        let zh_question = "小明有 48 个苹果，他又买了 24 个。他现在有多少个苹果？";
        let line = score_langmix(
            en_prompt,
            "<think> 小明有 </think> <answer> 5 </answer>",
            None,
        );
        assert_eq!(
            line,
            LangMixLine {
                consistency: 0.0,
                mixed: true,
                en_words: 0,
                zh_words: 3,
                target: Lang::En,
            }
        );
        // The English templates do not outvote a Chinese question.
        for prompting in [Prompting::R1Zero, Prompting::Compact] {
            let prompt = crate::evaluation::render_prompt(prompting, zh_question, Lang::Zh);
            assert_eq!(prompt_language(&prompt), Lang::Zh, "{prompt}");
            let prompt = crate::evaluation::render_prompt(prompting, en_prompt, Lang::En);
            assert_eq!(prompt_language(&prompt), Lang::En, "{prompt}");
        }
        assert_eq!(prompt_language(zh_question), Lang::Zh);
        // Ties and prompts without words are English.
        assert_eq!(prompt_language(""), Lang::En);
        assert_eq!(prompt_language("apples 苹"), Lang::En);
        assert_eq!(prompt_language("12 + 3 = ?"), Lang::En);
        // An explicit target wins.
        let line = score_langmix(en_prompt, "小明 has", Some(Lang::Zh));
        assert_eq!(line.target, Lang::Zh);
        assert!(close(line.consistency, 2.0 / 3.0));
        assert!(line.mixed);
        // Chains: inside <think>; before a </think> the prompt opened; else everything.
        let line = score_langmix("", "x <think> a b </think> <answer> 小明 </answer>", None);
        assert_eq!((line.en_words, line.zh_words), (2, 0));
        let line = score_langmix("", "a b </think> <answer> 小明 </answer>", None);
        assert_eq!((line.en_words, line.zh_words, line.mixed), (2, 0, false));
        let line = score_langmix("", "a </think> b <think> 小明", None);
        assert_eq!((line.en_words, line.zh_words), (1, 0));
        let line = score_langmix("", "<think> a 小 never closed", None);
        assert_eq!((line.en_words, line.zh_words), (3, 1));
        let line = score_langmix("", "all of it 小明", None);
        assert_eq!((line.en_words, line.zh_words), (3, 2));
        // No words: consistent and unmixed.
        let line = score_langmix("", "<think> 3 + 4 = 7 😀 </think>", None);
        assert_eq!((line.consistency, line.mixed), (1.0, false));
        let json = serde_json::to_value(&line).unwrap();
        assert_eq!(json["target"], "en");
    }

    /// Fragments of real model output that must count for no language.
    const NEUTRAL: [&str; 40] = [
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "，",
        "。",
        "！",
        "？",
        "：",
        "（",
        "）",
        "【",
        "】",
        "、",
        "“",
        "”",
        "\\frac{1}{2}",
        "\\times",
        "\\sqrt{2}",
        "$",
        "^{10}",
        "{ } ( ) ; == => -> && || //",
        "1,234,567",
        "3.14",
        "-42",
        "１２３",
        "😀",
        "🚀",
        "👨‍👩‍👧",
        "\u{200b}",
        "\u{0}",
        "\r\n",
        "\t",
        "ですね",
        "привет",
        "αβγ",
        "안녕",
        "مرحبا",
        "<",
        ">",
    ];

    /// Fragments with known word counts (en, zh) when set apart by spaces.
    const WORDY: [(&str, usize, usize); 10] = [
        ("apples", 1, 0),
        ("The answer is", 3, 0),
        ("café", 1, 0),
        ("na\u{ef}ve", 1, 0),
        ("ＡＢＣ", 1, 0),
        ("小明", 0, 2),
        ("所以他有", 0, 4),
        ("let x = 5;", 2, 0),
        ("\\frac{a}{b}", 2, 0),
        ("3 个 apples", 1, 1),
    ];

    /// Broken markup and code, with words in them.
    const MALFORMED: [&str; 9] = [
        "<think",
        "</thi",
        "<answer",
        "</answer",
        "<｜end▁of▁sentence｜>",
        "```python\nprint(1)\n```",
        "\\",
        "<<>>",
        "\\\\frac",
    ];

    #[test]
    fn langmix_survives_messy_output() {
        // Property-style: random mixtures of messy fragments never panic, always give a
        // consistency in [0, 1] that agrees with the counts, neutral fragments never count as
        // a language, and words set apart by spaces are counted exactly.
        let mut rng = Rng::new(29);
        let targets = [None, Some(Lang::En), Some(Lang::Zh)];
        let separators = ["", " ", "\n"];
        for round in 0..5_000 {
            let len = rng.below(16) as usize;
            // Any mixture, joined any way.
            let mut text = String::new();
            for _ in 0..len {
                let fragment = match rng.below(3) {
                    0 => *rng.choose(&NEUTRAL),
                    1 => rng.choose(&WORDY).0,
                    _ => *rng.choose(&MALFORMED),
                };
                text.push_str(fragment);
                let separator = *rng.choose(&separators);
                text.push_str(separator);
            }
            let prompt: String = text.chars().rev().collect();
            let target = *rng.choose(&targets);
            let line = score_langmix(&prompt, &text, target);
            assert!((0.0..=1.0).contains(&line.consistency), "{text:?}");
            let counts = WordCounts {
                en: line.en_words,
                zh: line.zh_words,
            };
            assert_eq!(line.consistency, counts.consistency(line.target));
            assert_eq!(line.mixed, counts.mixed(line.target));
            if let Some(target) = target {
                assert_eq!(line.target, target);
            }
            // The rewards take the same text without panicking.
            let parts = score(&text, "<think>", 7, Lang::Zh, &RewardConfig::default());
            assert!((0.0..=1.0).contains(&parts.language), "{text:?}");
            assert!(parts.total.is_finite() && parts.total >= 0.0);

            // Neutral fragments alone: no words, whatever the joins.
            let neutral: String = (0..len)
                .map(|_| format!("{}{}", rng.choose(&NEUTRAL), rng.choose(&separators)))
                .collect();
            let line = score_langmix(&neutral, &neutral, None);
            assert_eq!((line.en_words, line.zh_words), (0, 0), "{neutral:?}");
            assert_eq!((line.consistency, line.mixed), (1.0, false));

            // Words set apart by spaces count exactly among neutral fragments (without the
            // chain-choosing <think> tags, so the chain is the whole text).
            let (mut text, mut en, mut zh) = (String::new(), 0, 0);
            for _ in 0..len {
                if rng.chance(0.5) {
                    let fragment = *rng.choose(&NEUTRAL);
                    if !fragment.contains("think>") {
                        text.push_str(fragment);
                    }
                } else {
                    let (fragment, e, z) = *rng.choose(&WORDY);
                    text.push_str(fragment);
                    en += e;
                    zh += z;
                }
                text.push(' ');
            }
            let line = score_langmix("", &text, Some(Lang::En));
            assert_eq!(
                (line.en_words, line.zh_words),
                (en, zh),
                "round {round}: {text:?}"
            );
        }
    }

    #[test]
    fn huge_inputs_are_scored() {
        let mut rng = Rng::new(31);
        let mut text = String::from("<think>");
        let untagged: Vec<&str> = NEUTRAL
            .into_iter()
            .filter(|f| !f.contains("think>"))
            .collect();
        while text.len() < 1 << 20 {
            let fragment = *rng.choose(&untagged);
            text.push_str(fragment);
            text.push(' ');
            text.push_str(rng.choose(&WORDY).0);
            text.push(' ');
        }
        let line = score_langmix(&text, &text, None);
        assert!(line.en_words > 10_000 && line.zh_words > 10_000);
        assert!((0.0..=1.0).contains(&line.consistency));
        let parts = score(&text, "", 1, Lang::En, &RewardConfig::default());
        assert_eq!((parts.accuracy, parts.format), (0.0, 0.0));
    }
}
