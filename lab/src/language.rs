//! Language scoring of chains of thought (R1 §2.3.2): which words are in which language.
//!
//! A *word* is defined precisely so scores mean the same everywhere:
//! - a maximal run of Latin letters is one English word, except a run right after a backslash,
//!   which is a LaTeX command (`\frac`) and counts for no language;
//! - each Han character is one Chinese word;
//! - digits, punctuation (ASCII or full-width), symbols, emoji, the letters of tags and special
//!   tokens (`<think>`, `</answer>`, `<eos>`, ...) and every other script are neutral.
//!
//! The *consistency* of a text for a target language is the share of its words in that
//! language (R1's language-consistency reward); a text *mixes* languages when it has any word
//! of the other language. A text with no words at all is consistent and unmixed.

use serde::{Deserialize, Serialize};
use unicode_script::{Script, UnicodeScript};

use crate::world::Lang;

/// Word counts of a text by language.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordCounts {
    pub en: usize,
    pub zh: usize,
}

impl WordCounts {
    pub fn total(&self) -> usize {
        self.en + self.zh
    }

    pub fn of(&self, lang: Lang) -> usize {
        match lang {
            Lang::En => self.en,
            Lang::Zh => self.zh,
        }
    }

    /// Share of words in `target`; 1 when there are no words.
    pub fn consistency(&self, target: Lang) -> f64 {
        match self.total() {
            0 => 1.0,
            total => self.of(target) as f64 / total as f64,
        }
    }

    /// Whether any word is in the language other than `target`.
    pub fn mixed(&self, target: Lang) -> bool {
        self.of(target.other()) > 0
    }
}

/// Counts English and Chinese words as defined in the module documentation.
pub fn count_words(text: &str) -> WordCounts {
    let mut counts = WordCounts::default();
    let mut chars = text.chars().peekable();
    let mut previous: Option<char> = None;
    let mut in_tag = false;
    while let Some(c) = chars.next() {
        if c == '<' {
            // `<think>`, `</answer>` and the like are markup, not words.
            let rest: String = chars.clone().take(8).collect();
            if [
                "think>", "/think>", "answer>", "/answer>", "eos>", "bos>", "pad>", "unk>",
            ]
            .iter()
            .any(|t| rest.starts_with(t))
            {
                in_tag = true;
            }
        } else if c == '>' && in_tag {
            in_tag = false;
        } else if !in_tag && is_latin_letter(c) {
            let after_backslash = previous == Some('\\');
            while let Some(&next) = chars.peek() {
                if is_latin_letter(next) {
                    chars.next();
                } else {
                    break;
                }
            }
            if !after_backslash {
                counts.en += 1;
            }
            previous = Some('a');
            continue;
        } else if !in_tag && c.script() == Script::Han {
            counts.zh += 1;
        }
        previous = Some(c);
    }
    counts
}

fn is_latin_letter(c: char) -> bool {
    c.is_alphabetic() && c.script() == Script::Latin
}

/// The chain of thought of a completion: the text inside `<think>…</think>` when present
/// (up to the end when it is never closed), else the whole completion.
pub fn chain_of_thought(completion: &str) -> &str {
    use crate::response::{THINK_CLOSE, THINK_OPEN};
    match completion.find(THINK_OPEN) {
        Some(start) => {
            let inner = &completion[start + THINK_OPEN.len()..];
            match inner.find(THINK_CLOSE) {
                Some(end) => &inner[..end],
                None => inner,
            }
        }
        None => completion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_by_definition() {
        assert_eq!(
            count_words("He has 12 apples."),
            WordCounts { en: 3, zh: 0 }
        );
        assert_eq!(
            count_words("小明有 48 个苹果。"),
            WordCounts { en: 0, zh: 6 }
        );
        assert_eq!(
            count_words("9 × 7 = 63，所以 she has"),
            WordCounts { en: 2, zh: 2 }
        );
        // LaTeX commands, tags, numbers with separators, emoji and full-width punctuation are neutral.
        assert_eq!(count_words(r"\frac{1}{2} x"), WordCounts { en: 1, zh: 0 });
        assert_eq!(
            count_words("<think> </think> <answer> 1,234 </answer>"),
            WordCounts::default()
        );
        assert_eq!(count_words("🙂！？（）"), WordCounts::default());
        assert_eq!(count_words("答案是 7。 <eos>"), WordCounts { en: 0, zh: 3 });
        assert_eq!(count_words("café"), WordCounts { en: 1, zh: 0 });
    }

    #[test]
    fn consistency_and_mixing() {
        let c = count_words("The answer is 5 答案");
        assert!((c.consistency(Lang::En) - 3.0 / 5.0).abs() < 1e-12);
        assert!(c.mixed(Lang::En) && c.mixed(Lang::Zh));
        assert_eq!(count_words("").consistency(Lang::Zh), 1.0);
        assert!(!count_words("123").mixed(Lang::En));
    }

    #[test]
    fn chain_is_inside_think_when_present() {
        assert_eq!(
            chain_of_thought("x <think> a b </think> <answer> 3 </answer>"),
            " a b "
        );
        assert_eq!(chain_of_thought("<think> open"), " open");
        assert_eq!(chain_of_thought("plain"), "plain");
    }
}
