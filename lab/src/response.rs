//! The R1 response format, owned in one place: `<think> reasoning </think> <answer> N </answer>`
//! (R1 Table 1). Generation stops at [`ANSWER_CLOSE`]; the tokenizer gives each tag a token of
//! its own; rewards, evaluation and the SFT data read and write responses through these.

/// Opens the chain of thought.
pub const THINK_OPEN: &str = "<think>";
/// Closes the chain of thought.
pub const THINK_CLOSE: &str = "</think>";
/// Opens the answer.
pub const ANSWER_OPEN: &str = "<answer>";
/// Closes the answer; a completion ends at its token (or at `<eos>`).
pub const ANSWER_CLOSE: &str = "</answer>";
/// The four tags, in their token order.
pub const TAGS: [&str; 4] = [THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE];

/// A response: `<think> reasoning </think> <answer> answer </answer>` (`<think> </think>` when
/// there is no reasoning).
pub fn tagged(reasoning: &str, answer: impl std::fmt::Display) -> String {
    let reasoning = if reasoning.is_empty() {
        String::new()
    } else {
        format!("{reasoning} ")
    };
    format!("{THINK_OPEN} {reasoning}{THINK_CLOSE} {ANSWER_OPEN} {answer} {ANSWER_CLOSE}")
}

/// A response without its opening `<think>` (and the space after it), for prompts that already
/// opened the chain of thought (the compact template); a response that does not open one is
/// returned as it is.
pub fn after_think_open(response: &str) -> String {
    response
        .trim_start()
        .strip_prefix(THINK_OPEN)
        .map(|s| s.trim_start().to_string())
        .unwrap_or_else(|| response.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_and_its_continuation() {
        let response = tagged("3 + 4 = 7", 7);
        assert_eq!(response, "<think> 3 + 4 = 7 </think> <answer> 7 </answer>");
        assert_eq!(
            after_think_open(&response),
            "3 + 4 = 7 </think> <answer> 7 </answer>"
        );
        assert_eq!(after_think_open("  <think>x"), "x");
        assert_eq!(after_think_open("7"), "7");
        assert_eq!(tagged("", 7), "<think> </think> <answer> 7 </answer>");
    }
}
