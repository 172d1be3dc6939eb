//! Splits a text into pieces labelled with the language of their words, by the same definition
//! of a word as [`crate::language::count_words`] (tests check that the two agree), so the Traces
//! view and `lab report` can highlight the words of the non-target language.

use crate::language::count_words;
use crate::world::Lang;

/// A piece of text and the language of the word it is, if it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub lang: Option<Lang>,
}

/// A character is a Latin letter (or Han) exactly when `count_words` counts it alone as an
/// English (or Chinese) word; asking it keeps one definition of a word.
fn is_latin_letter(c: char) -> bool {
    let mut buf = [0u8; 4];
    c.is_alphabetic() && count_words(c.encode_utf8(&mut buf)).en == 1
}

fn is_han(c: char) -> bool {
    let mut buf = [0u8; 4];
    count_words(c.encode_utf8(&mut buf)).zh == 1
}

/// Tags (after their `<`) whose letters are markup, not words: as in `count_words` (the
/// agreement test below fails if the two drift apart).
const MARKUP: [&str; 8] = [
    "think>", "/think>", "answer>", "/answer>", "eos>", "bos>", "pad>", "unk>",
];

/// The pieces of `text`, in order; concatenated they give `text` back.
pub fn pieces(text: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut push = |s: &str, lang: Option<Lang>| match out.last_mut() {
        Some(last) if last.lang.is_none() && lang.is_none() => last.text.push_str(s),
        _ => out.push(Piece {
            text: s.to_string(),
            lang,
        }),
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    let mut previous: Option<char> = None;
    let mut in_tag = false;
    while i < chars.len() {
        let (at, c) = chars[i];
        let end_of = |j: usize| chars.get(j).map(|x| x.0).unwrap_or(text.len());
        if c == '<' {
            let rest = &text[at + 1..];
            if MARKUP.iter().any(|t| rest.starts_with(t)) {
                in_tag = true;
            }
            push(&text[at..end_of(i + 1)], None);
        } else if c == '>' && in_tag {
            in_tag = false;
            push(&text[at..end_of(i + 1)], None);
        } else if !in_tag && is_latin_letter(c) {
            let after_backslash = previous == Some('\\');
            let mut j = i + 1;
            while j < chars.len() && is_latin_letter(chars[j].1) {
                j += 1;
            }
            let lang = (!after_backslash).then_some(Lang::En);
            push(&text[at..end_of(j)], lang);
            previous = Some('a');
            i = j;
            continue;
        } else if !in_tag && is_han(c) {
            push(&text[at..end_of(i + 1)], Some(Lang::Zh));
        } else {
            push(&text[at..end_of(i + 1)], None);
        }
        previous = Some(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    fn count(text: &str, lang: Lang) -> usize {
        pieces(text).iter().filter(|p| p.lang == Some(lang)).count()
    }

    #[test]
    fn agrees_with_the_lab_word_definition() {
        for text in [
            "He has 12 apples.",
            "小明有 48 个苹果。",
            "9 × 7 = 63，所以 she has",
            r"\frac{1}{2} x",
            "<think> </think> <answer> 1,234 </answer>",
            "🙂！？（）café",
            "got 糖 254 632 254 Lily 气 98 <bos> Wait 621 针 166",
            "<think>a b 你好</think><answer> 3 </answer> end",
            "",
        ] {
            let c = count_words(text);
            assert_eq!(count(text, Lang::En), c.en, "{text}");
            assert_eq!(count(text, Lang::Zh), c.zh, "{text}");
            let joined: String = pieces(text).iter().map(|p| p.text.as_str()).collect();
            assert_eq!(joined, text);
        }
    }
}
