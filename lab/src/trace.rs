//! The one schema of a stored trace: a text a stage keeps for reading (a sampled completion, a
//! web document, a benchmark's worked solution) with what was scored on it.
//!
//! Every stage writes [`TraceRecord`] and every reader (the Traces view, `lab report`,
//! `lab traces`) reads it, so no reader guesses at keys. The store keeps its three parts as JSON
//! columns (`reward_parts`, `language_scores`, `meta`) so SQL can reach into them
//! (`json_extract(language_scores, '$.mixed')`); a part's absent fields are left out of the JSON.

use serde::{Deserialize, Serialize};

use crate::language::WordCounts;
use crate::world::{Lang, Style};

/// A trace; it serializes with the store's column names (`lab export traces --format jsonl`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct TraceRecord {
    /// The training step it was sampled at (0 outside training).
    pub step: i64,
    /// Its index among the step's traces.
    pub sample: i64,
    pub prompt: String,
    pub completion: String,
    #[serde(rename = "reward_parts")]
    pub rewards: TraceRewards,
    #[serde(rename = "language_scores")]
    pub language: LanguageScores,
    #[serde(rename = "meta")]
    pub labels: TraceLabels,
}

/// The scores of a completion, as GRPO's rule-based rewards give them: each in [0, 1] (an
/// evaluation records accuracy and format as 0 or 1), the weighted `total`, and the
/// group-relative `advantage` it was trained with.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceRewards {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advantage: Option<f64>,
}

/// The language of a completion's chain of thought against the prompt's language.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageScores {
    /// Share of words in the target language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<f64>,
    /// Whether words of both languages appear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub en_words: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zh_words: Option<usize>,
}

/// What the trace is: where it came from and the problem behind it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraceLabels {
    /// Which collection a world trace shows: `web`, or `bench/NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    /// The benchmark an evaluation trace was sampled on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
    /// The prompting of an evaluation trace (`template`, `cot`, `direct`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompting: Option<String>,
    /// The response style of a web document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<Style>,
    /// The language the text should be in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<Lang>,
    /// Number of operations of the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<usize>,
    /// The problem's right answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<i64>,
    /// The answer the text gives (absent: none could be read, or none was asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<i64>,
    /// Whether a web document's stated answer is right (the world writes some wrong ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_correct: Option<bool>,
    /// Whether the completion ended by itself rather than at the length limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<bool>,
    /// Rejection sampling's verdict on the completion (`kept`, `dropped_wrong`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

impl LanguageScores {
    /// The scores of a chain of thought with `words`, written for a `target`-language prompt.
    pub fn of(words: &WordCounts, target: Lang) -> LanguageScores {
        LanguageScores {
            consistency: Some(words.consistency(target)),
            mixed: Some(words.mixed(target)),
            en_words: Some(words.en),
            zh_words: Some(words.zh),
        }
    }
}

impl TraceRewards {
    /// The recorded rewards by name, in the schema's order.
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        [
            ("accuracy", self.accuracy),
            ("format", self.format),
            ("language", self.language),
            ("total", self.total),
            ("advantage", self.advantage),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }
}

impl TraceRecord {
    /// Whether the text's answer is right, when the trace says: its accuracy reward, or for a web
    /// document whether its stated answer is.
    pub fn correct(&self) -> Option<bool> {
        self.rewards
            .accuracy
            .map(|a| a > 0.0)
            .or(self.labels.answer_correct)
    }

    /// The language the text should be in, when the trace says.
    pub fn target(&self) -> Option<Lang> {
        self.labels.lang
    }

    /// Share of the chain of thought's words in the target language; `None` when not scored.
    pub fn consistency(&self) -> Option<f64> {
        self.language.consistency
    }
}

/// A trace part that is not in the schema.
#[derive(Debug, thiserror::Error)]
#[error("`{column}` is not a trace's {column} ({source}): {text}")]
pub struct TraceSchemaError {
    pub column: &'static str,
    pub text: String,
    #[source]
    pub source: serde_json::Error,
}

/// One stored JSON part of a trace, read back into its type.
pub fn parse_part<T: serde::de::DeserializeOwned>(
    column: &'static str,
    text: &str,
) -> Result<T, TraceSchemaError> {
    serde_json::from_str(text).map_err(|source| TraceSchemaError {
        column,
        text: text.chars().take(200).collect(),
        source,
    })
}

/// One part as the JSON text the store keeps.
pub fn part_json<T: Serialize>(part: &T) -> String {
    serde_json::to_string(part).expect("trace parts are plain data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_left_out_and_read_back_as_absent() {
        let rewards = TraceRewards {
            accuracy: Some(1.0),
            format: Some(0.0),
            ..Default::default()
        };
        let text = part_json(&rewards);
        assert_eq!(text, r#"{"accuracy":1.0,"format":0.0}"#);
        assert_eq!(
            parse_part::<TraceRewards>("reward_parts", &text).unwrap(),
            rewards
        );
        assert_eq!(part_json(&LanguageScores::default()), "{}");
    }

    #[test]
    fn labels_use_the_world_names() {
        let labels = TraceLabels {
            style: Some(Style::BareAnswer),
            lang: Some(Lang::Zh),
            ..Default::default()
        };
        assert_eq!(part_json(&labels), r#"{"style":"bare_answer","lang":"zh"}"#);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_column() {
        let e = parse_part::<TraceLabels>("meta", r#"{"lang":"en","colour":"red"}"#).unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains("meta") && message.contains("colour"),
            "{message}"
        );
        let e = parse_part::<LanguageScores>("language_scores", r#"{"mixed":"yes"}"#).unwrap_err();
        assert!(e.to_string().contains("language_scores"), "{e}");
    }

    #[test]
    fn correctness_comes_from_the_accuracy_reward_or_the_stated_answer() {
        let mut t = TraceRecord::default();
        assert_eq!(t.correct(), None);
        t.labels.answer_correct = Some(false);
        assert_eq!(t.correct(), Some(false));
        t.rewards.accuracy = Some(1.0);
        assert_eq!(t.correct(), Some(true));
    }

    #[test]
    fn language_scores_of_a_chain() {
        let words = WordCounts { en: 3, zh: 1 };
        let scores = LanguageScores::of(&words, Lang::En);
        assert_eq!(scores.consistency, Some(0.75));
        assert_eq!(scores.mixed, Some(true));
        assert_eq!((scores.en_words, scores.zh_words), (Some(3), Some(1)));
    }
}
