//! The world's pre-tokenizer: how rendered text splits into tokens.

use unicode_script::{Script, UnicodeScript};

/// The tags of the R1 response format; each is one token.
pub use crate::response::TAGS;

/// Splits `text` into tokens: one per tag (`<think>`, `</think>`, `<answer>`, `</answer>`), per
/// maximal run of ASCII letters (a word), per maximal run of ASCII digits (a number), per Chinese
/// (Han) character, and per any other character (punctuation marks and symbols, ASCII or
/// full-width such as '，' '。' '：' '？', '×' and '÷'). Whitespace separates tokens and is dropped.
pub fn split_tokens(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().expect("i is on a char boundary");
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if c == '<' {
            if let Some(tag) = TAGS.iter().find(|t| rest.starts_with(**t)) {
                tokens.push(&rest[..tag.len()]);
                i += tag.len();
                continue;
            }
        }
        let run = |pred: fn(&u8) -> bool| bytes[i..].iter().take_while(|b| pred(b)).count();
        let len = if c.is_ascii_alphabetic() {
            run(u8::is_ascii_alphabetic)
        } else if c.is_ascii_digit() {
            run(u8::is_ascii_digit)
        } else {
            // A Han character, a punctuation mark, a symbol, or any other single character.
            c.len_utf8()
        };
        tokens.push(&rest[..len]);
        i += len;
    }
    tokens
}

/// Whether `token` is a Chinese (Han) character.
pub fn is_han(token: &str) -> bool {
    let mut chars = token.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.script() == Script::Han)
}

/// Whether `token` is a number (a run of ASCII digits).
pub fn is_number(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `token` is an English word (a run of ASCII letters).
pub fn is_word(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_numbers_and_punctuation() {
        assert_eq!(
            split_tokens("Natalia had 48 clips. How many?"),
            vec!["Natalia", "had", "48", "clips", ".", "How", "many", "?"]
        );
        assert_eq!(
            split_tokens("24 + 15 = 39, 3 × 5 = 15; 40 ÷ 4 = 10"),
            vec![
                "24", "+", "15", "=", "39", ",", "3", "×", "5", "=", "15", ";", "40", "÷", "4",
                "=", "10"
            ]
        );
        assert_eq!(split_tokens("abc123def"), vec!["abc", "123", "def"]);
        assert_eq!(split_tokens("  \n\t "), Vec::<&str>::new());
        assert_eq!(split_tokens("a-b"), vec!["a", "-", "b"]);
    }

    #[test]
    fn chinese_characters_and_full_width_punctuation() {
        assert_eq!(
            split_tokens("小明有 48 个苹果。他又买了 3 盒，每盒 5 个。"),
            vec![
                "小", "明", "有", "48", "个", "苹", "果", "。", "他", "又", "买", "了", "3", "盒",
                "，", "每", "盒", "5", "个", "。"
            ]
        );
        assert_eq!(
            split_tokens("等等，我检查一下：23 - 20 = 3。多少？"),
            vec![
                "等", "等", "，", "我", "检", "查", "一", "下", "：", "23", "-", "20", "=", "3",
                "。", "多", "少", "？"
            ]
        );
        assert!(is_han("果"));
        assert!(!is_han("，"));
        assert!(!is_han("ab"));
    }

    #[test]
    fn tags_are_single_tokens() {
        assert_eq!(
            split_tokens("<think> 2 + 2 = 4. </think> <answer> 4 </answer>"),
            vec![
                "<think>",
                "2",
                "+",
                "2",
                "=",
                "4",
                ".",
                "</think>",
                "<answer>",
                "4",
                "</answer>"
            ]
        );
        assert_eq!(
            split_tokens("<answer>11</answer>"),
            vec!["<answer>", "11", "</answer>"]
        );
        // Not a tag: split into characters and words.
        assert_eq!(split_tokens("<thin>"), vec!["<", "thin", ">"]);
        assert_eq!(split_tokens("a < b"), vec!["a", "<", "b"]);
    }

    #[test]
    fn token_classes() {
        assert!(is_number("007"));
        assert!(!is_number("7a"));
        assert!(is_word("Wait"));
        assert!(!is_word("小"));
    }
}
