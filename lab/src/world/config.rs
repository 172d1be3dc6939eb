//! The world's knobs, their defaults and their validation.

use std::fmt;

/// Everything that shapes a generated world. Two equal configs generate byte-identical worlds.
///
/// Every field has a default, so a config file only names what it changes; unknown fields are
/// rejected so a misspelt knob cannot silently fall back to its default.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorldConfig {
    /// Seed of every random stream in the world (each part derives its own labelled stream).
    pub seed: u64,
    /// Largest number that appears anywhere in rendered text (the tokenizer has one token per
    /// number `0..=max_number`). Every quantity, at every step, stays in `0..=max_number`.
    pub max_number: u32,
    /// Number of documents in the pretraining "web" corpus.
    pub web_documents: usize,
    /// Number of structured training problems (prompts for SFT and RL).
    pub train_problems: usize,
    /// Problems in each named benchmark (`easy-en`, `easy-zh`, `hard-en`, ...).
    pub benchmark_size: usize,
    /// Share of the structure-hash space reserved for test: a structure whose hash maps below
    /// this value in `[0, 1)` only ever appears in benchmarks.
    pub test_share: f64,
    /// Mix of response styles in the web corpus.
    pub shares: CorpusShares,
    /// Probability that a web document or training problem is rendered in Chinese.
    pub zh_share: f64,
    /// Largest number stated in easy problems (1-2 operations; also web/train problems with 1-2
    /// operations).
    pub easy_number_max: u32,
    /// Largest number stated in hard problems (3-4 operations; also web/train problems with 3-4
    /// operations).
    pub hard_number_max: u32,
    /// Largest number stated in out-of-distribution problems (5 operations, benchmarks only).
    pub ood_number_max: u32,
    /// Largest quantity the protagonist holds at any step of an easy problem (and of web/train
    /// problems with 1-2 operations). It bounds the addition and division facts a model must
    /// learn: with one token per number, every `a + b = c` is a fact of its own.
    pub easy_value_max: u32,
    /// Largest quantity at any step of a hard problem (web/train problems with 3-4 operations).
    pub hard_value_max: u32,
    /// Largest quantity at any step of an out-of-distribution problem.
    pub ood_value_max: u32,
    /// Largest number of items in one box ("3 boxes of 8 each"): box products stay inside this
    /// times table.
    pub box_size_max: u32,
    /// Probability that a web document is framed as a chat whose answer is tagged, exactly as
    /// the compact R1-Zero template asks: `User: {question} Assistant: <think> {response}
    /// </think> <answer> N </answer>`, whatever its style (a bare answer thinks one sentence, a
    /// self-check thinks long). Without it the template is out of the corpus's distribution.
    pub chat_share: f64,
    /// Probability that a web document works out every two-digit addition and subtraction tens
    /// first (`38 + 45`: `38 + 40 = 78, 78 + 5 = 83.` before the step): a careful writer. With
    /// one token per number every `a + b = c` is a fact of its own, and the big ones are too
    /// many to learn; worked out, a step needs only the small facts of adding tens and units.
    /// The hope was that a longer chain is a more accurate one, which RL could discover; as the
    /// models learn it, it is not (see `worked_inline`).
    pub worked_share: f64,
    /// Where the careful writer works a step out. `false` (the default): in a sentence of its
    /// own *before* the step, which then states its result from the single fact anyway, so the
    /// working feeds nothing forward and must guess the step's operand (for boxes, a product
    /// not yet written); measured with `lab habits`, such chains are right less often. `true`:
    /// inside the step, in place of its single equation (`she gets 45 more, so she has 38 + 40 =
    /// 78, 78 + 5 = 83 apples.`), after the operand is known and as the way to the result.
    /// Left out of the resolved spec when `false`, so the worlds from before it keep their ids.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub worked_inline: bool,
    /// How a self-repairing writer notices its wrong step. `false` (the default): it just says
    /// the step is wrong and writes it again, with nothing in the text that tells a right step
    /// from a wrong one, so a model that imitates it repairs at random. `true`: it checks the
    /// wrong step by its inverse, computed correctly, and the check disagrees with the number
    /// it started from (`38 + 45 = 81. Wait, let me check: 81 - 45 = 36, not 38. Wait, that is
    /// wrong: 38 + 45 = 83.`), while the self-checking writer's checks of right steps agree. A
    /// check then carries evidence a model can act on: repair where the check disagrees. As the
    /// models here learn it, it does not pay: their checks err as often as their steps (a wrong
    /// inverse called right, a right step called wrong), and RL drops them (see the README).
    /// Left out of the resolved spec when `false`, so the worlds from before it keep their ids.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub checked_repair: bool,
    /// Probability that a step-by-step document is written by a terse writer, who merges every
    /// two consecutive gains or losses into one equation and never writes the quantity between
    /// them (`now she has 48 + 24 - 12 = 60 apples.` for two steps). Its chains are shorter, and
    /// each merged step needs two facts at once in one token, so they should be right less
    /// often than the full chains: writing every step is then a longer chain that is a more
    /// accurate one. Left out of the resolved spec when 0 (the default), so the worlds from
    /// before it keep their ids.
    #[serde(skip_serializing_if = "is_zero")]
    pub terse_share: f64,
    /// Relative weights of operation kinds when a problem is built (normalised by their sum
    /// over the kinds possible at that step).
    pub operation_weights: OperationWeights,
    /// Relative weights of 1, 2, 3 and 4 operations in web documents and training problems
    /// (normalised by their sum). Five operations never appear in training: they are the ood
    /// benchmarks.
    pub train_operation_weights: [f64; 4],
    /// In a code-switched document, probability that each solution sentence is written in the
    /// other language (at least one always is).
    pub code_switch_rate: f64,
    /// In a self-check document, probability that each step is followed by a check (at least
    /// one always is).
    pub self_check_rate: f64,
}

/// Weights of the response styles in the web corpus.
///
/// These are weights of a categorical mix: each document's style is drawn with probability
/// `weight / sum of all weights`, so they need not sum to one. Each must lie in `[0, 1]` and at
/// least one must be positive.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorpusShares {
    /// The question followed by only "The answer is 11."
    pub bare_answer: f64,
    /// A correct step-by-step solution in the problem's language.
    pub step_by_step: f64,
    /// A correct solution whose sentences switch between English and Chinese.
    pub code_switched: f64,
    /// A correct solution that checks some steps ("Wait, let me check: 23 - 20 = 3.").
    pub self_check: f64,
    /// A solution that writes one step wrong, notices, and repairs it.
    pub self_repair: f64,
    /// A correct solution wrapped in `<think> ... </think> <answer> 11 </answer>`.
    pub tagged: f64,
    /// A step-by-step solution with one arithmetic error carried to a wrong final answer.
    pub wrong_answer: f64,
}

/// Relative weights of the operation kinds (see [`super::Op`]). Non-negative and finite; gain and
/// lose cannot both be zero, since they keep every step possible.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperationWeights {
    pub gain: f64,
    pub lose: f64,
    pub boxes: f64,
    pub share: f64,
}

/// One thing wrong with a config: the dotted path of the field and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigProblem {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Smallest `max_number` accepted: below it the number ranges have no room.
pub const MIN_MAX_NUMBER: u32 = 50;
/// Largest `max_number` accepted (one tokenizer entry per number).
pub const MAX_MAX_NUMBER: u32 = 100_000;
/// Smallest accepted per-difficulty number maximum.
pub const MIN_NUMBER_MAX: u32 = 10;
/// Smallest accepted `box_size_max` (boxes hold at least 2 items).
pub const MIN_BOX_SIZE_MAX: u32 = 5;
/// Largest accepted benchmark size (the test side of the easy space is finite).
pub const MAX_BENCHMARK_SIZE: usize = 10_000;

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: 0,
            max_number: 200,
            web_documents: 60_000,
            train_problems: 20_000,
            benchmark_size: 200,
            test_share: 0.1,
            shares: CorpusShares::default(),
            zh_share: 0.5,
            easy_number_max: 20,
            hard_number_max: 40,
            ood_number_max: 40,
            easy_value_max: 50,
            hard_value_max: 120,
            ood_value_max: 120,
            box_size_max: 10,
            chat_share: 0.3,
            worked_share: 0.5,
            worked_inline: false,
            checked_repair: false,
            terse_share: 0.0,
            operation_weights: OperationWeights::default(),
            train_operation_weights: [1.0, 1.0, 1.0, 1.0],
            code_switch_rate: 0.4,
            self_check_rate: 0.5,
        }
    }
}

impl Default for CorpusShares {
    fn default() -> Self {
        CorpusShares {
            bare_answer: 0.08,
            step_by_step: 0.64,
            code_switched: 0.08,
            self_check: 0.12,
            self_repair: 0.05,
            tagged: 0.0,
            wrong_answer: 0.03,
        }
    }
}

impl Default for OperationWeights {
    fn default() -> Self {
        OperationWeights {
            gain: 1.0,
            lose: 1.0,
            boxes: 1.0,
            share: 1.0,
        }
    }
}

impl CorpusShares {
    /// The weights in the order of [`super::Style::ALL`].
    pub fn weights(&self) -> [f64; 7] {
        [
            self.bare_answer,
            self.step_by_step,
            self.code_switched,
            self.self_check,
            self.self_repair,
            self.tagged,
            self.wrong_answer,
        ]
    }

    fn named(&self) -> [(&'static str, f64); 7] {
        [
            ("bare_answer", self.bare_answer),
            ("step_by_step", self.step_by_step),
            ("code_switched", self.code_switched),
            ("self_check", self.self_check),
            ("self_repair", self.self_repair),
            ("tagged", self.tagged),
            ("wrong_answer", self.wrong_answer),
        ]
    }
}

impl OperationWeights {
    /// The weights in the order gain, lose, boxes, share.
    pub fn weights(&self) -> [f64; 4] {
        [self.gain, self.lose, self.boxes, self.share]
    }
}

impl WorldConfig {
    /// Checks every field and returns all problems found, not just the first.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, reason: String| {
            problems.push(ConfigProblem {
                field: field.to_string(),
                reason,
            })
        };

        if !(MIN_MAX_NUMBER..=MAX_MAX_NUMBER).contains(&self.max_number) {
            bad(
                "max_number",
                format!(
                    "must be in {MIN_MAX_NUMBER}..={MAX_MAX_NUMBER}, got {}",
                    self.max_number
                ),
            );
        }
        for (field, value) in [
            ("easy_number_max", self.easy_number_max),
            ("hard_number_max", self.hard_number_max),
            ("ood_number_max", self.ood_number_max),
        ] {
            if value < MIN_NUMBER_MAX || value > self.max_number {
                bad(
                    field,
                    format!(
                        "must be in {MIN_NUMBER_MAX}..=max_number ({}), got {value}",
                        self.max_number
                    ),
                );
            }
        }
        for (field, value, number_field, number_max) in [
            (
                "easy_value_max",
                self.easy_value_max,
                "easy_number_max",
                self.easy_number_max,
            ),
            (
                "hard_value_max",
                self.hard_value_max,
                "hard_number_max",
                self.hard_number_max,
            ),
            (
                "ood_value_max",
                self.ood_value_max,
                "ood_number_max",
                self.ood_number_max,
            ),
        ] {
            if value < number_max.max(MIN_NUMBER_MAX) || value > self.max_number {
                bad(
                    field,
                    format!(
                        "must be in {number_field} ({number_max})..=max_number ({}), got {value}",
                        self.max_number
                    ),
                );
            }
        }
        if !(MIN_BOX_SIZE_MAX..=self.max_number).contains(&self.box_size_max) {
            bad(
                "box_size_max",
                format!(
                    "must be in {MIN_BOX_SIZE_MAX}..=max_number ({}), got {}",
                    self.max_number, self.box_size_max
                ),
            );
        }
        if self.web_documents == 0 {
            bad("web_documents", "must be at least 1".into());
        }
        if self.train_problems == 0 {
            bad("train_problems", "must be at least 1".into());
        }
        if self.benchmark_size == 0 || self.benchmark_size > MAX_BENCHMARK_SIZE {
            bad(
                "benchmark_size",
                format!(
                    "must be in 1..={MAX_BENCHMARK_SIZE}, got {}",
                    self.benchmark_size
                ),
            );
        }
        if !(self.test_share > 0.0 && self.test_share < 1.0) {
            bad(
                "test_share",
                format!("must be strictly between 0 and 1, got {}", self.test_share),
            );
        }
        for (field, value) in [
            ("zh_share", self.zh_share),
            ("code_switch_rate", self.code_switch_rate),
            ("self_check_rate", self.self_check_rate),
            ("chat_share", self.chat_share),
            ("worked_share", self.worked_share),
            ("terse_share", self.terse_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                bad(
                    field,
                    format!("is a probability and must be in [0, 1], got {value}"),
                );
            }
        }

        let shares = self.shares.named();
        for (name, value) in shares {
            if !(0.0..=1.0).contains(&value) {
                bad(
                    &format!("shares.{name}"),
                    format!("must be in [0, 1], got {value}"),
                );
            }
        }
        if shares.iter().all(|(_, v)| *v <= 0.0 || v.is_nan()) {
            bad("shares", "at least one share must be positive".into());
        }

        let ops = &self.operation_weights;
        for (name, value) in [
            ("gain", ops.gain),
            ("lose", ops.lose),
            ("boxes", ops.boxes),
            ("share", ops.share),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                bad(
                    &format!("operation_weights.{name}"),
                    format!("must be finite and non-negative, got {value}"),
                );
            }
        }
        if !(ops.gain > 0.0 || ops.lose > 0.0) {
            bad(
                "operation_weights",
                "gain and lose cannot both be zero (one of them is always possible)".into(),
            );
        }

        for (i, value) in self.train_operation_weights.iter().enumerate() {
            if !(value.is_finite() && *value >= 0.0) {
                bad(
                    &format!("train_operation_weights.{i}"),
                    format!("must be finite and non-negative, got {value}"),
                );
            }
        }
        if !self.train_operation_weights.iter().any(|w| *w > 0.0) {
            bad(
                "train_operation_weights",
                "at least one weight must be positive".into(),
            );
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A share of 0 is left out of the resolved spec (`terse_share`), so worlds from before the
/// knob keep their ids.
fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &WorldConfig) -> Vec<String> {
        match config.validate() {
            Ok(()) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| p.field).collect(),
        }
    }

    #[test]
    fn default_is_valid_and_shares_sum_to_one() {
        assert_eq!(WorldConfig::default().validate(), Ok(()));
        let sum: f64 = CorpusShares::default().weights().iter().sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }

    type Mutation = Box<dyn Fn(&mut WorldConfig)>;

    #[test]
    fn each_bad_value_is_named() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("max_number", Box::new(|c| c.max_number = 20)),
            ("max_number", Box::new(|c| c.max_number = 1_000_000)),
            ("easy_number_max", Box::new(|c| c.easy_number_max = 3)),
            ("hard_number_max", Box::new(|c| c.hard_number_max = 5000)),
            ("ood_number_max", Box::new(|c| c.ood_number_max = 0)),
            ("hard_value_max", Box::new(|c| c.hard_value_max = 30)),
            ("easy_value_max", Box::new(|c| c.easy_value_max = 500)),
            ("box_size_max", Box::new(|c| c.box_size_max = 1)),
            ("chat_share", Box::new(|c| c.chat_share = 1.5)),
            ("web_documents", Box::new(|c| c.web_documents = 0)),
            ("train_problems", Box::new(|c| c.train_problems = 0)),
            ("benchmark_size", Box::new(|c| c.benchmark_size = 0)),
            ("benchmark_size", Box::new(|c| c.benchmark_size = 1 << 20)),
            ("test_share", Box::new(|c| c.test_share = 0.0)),
            ("test_share", Box::new(|c| c.test_share = 1.0)),
            ("test_share", Box::new(|c| c.test_share = f64::NAN)),
            ("zh_share", Box::new(|c| c.zh_share = 1.5)),
            ("code_switch_rate", Box::new(|c| c.code_switch_rate = -0.1)),
            (
                "self_check_rate",
                Box::new(|c| c.self_check_rate = f64::NAN),
            ),
            ("shares.tagged", Box::new(|c| c.shares.tagged = 2.0)),
            (
                "shares.wrong_answer",
                Box::new(|c| c.shares.wrong_answer = -1.0),
            ),
            (
                "operation_weights.share",
                Box::new(|c| c.operation_weights.share = -1.0),
            ),
            (
                "operation_weights",
                Box::new(|c| {
                    c.operation_weights.gain = 0.0;
                    c.operation_weights.lose = 0.0;
                }),
            ),
            (
                "train_operation_weights.2",
                Box::new(|c| c.train_operation_weights[2] = f64::INFINITY),
            ),
            (
                "train_operation_weights",
                Box::new(|c| c.train_operation_weights = [0.0; 4]),
            ),
        ];
        for (field, mutate) in cases {
            let mut config = WorldConfig::default();
            mutate(&mut config);
            let found = fields(&config);
            assert!(
                found.iter().any(|f| f == field),
                "{field} not named in {found:?}"
            );
        }
    }

    #[test]
    fn all_zero_shares_rejected_and_all_problems_collected() {
        let config = WorldConfig {
            shares: CorpusShares {
                bare_answer: 0.0,
                step_by_step: 0.0,
                code_switched: 0.0,
                self_check: 0.0,
                self_repair: 0.0,
                tagged: 0.0,
                wrong_answer: 0.0,
            },
            benchmark_size: 0,
            test_share: 1.2,
            ..WorldConfig::default()
        };
        let found = fields(&config);
        for field in ["shares", "benchmark_size", "test_share"] {
            assert!(
                found.iter().any(|f| f == field),
                "{field} missing from {found:?}"
            );
        }
    }

    #[test]
    fn serde_fills_defaults_and_rejects_unknown_fields() {
        let config: WorldConfig =
            serde_json::from_str(r#"{"seed": 7, "shares": {"tagged": 0.5}}"#).unwrap();
        assert_eq!(config.seed, 7);
        assert_eq!(config.shares.tagged, 0.5);
        assert_eq!(
            config.shares.bare_answer,
            CorpusShares::default().bare_answer
        );
        assert_eq!(config.max_number, 200);
        assert!(serde_json::from_str::<WorldConfig>(r#"{"sead": 7}"#).is_err());
        assert!(serde_json::from_str::<WorldConfig>(r#"{"shares": {"taged": 1}}"#).is_err());
        let round: WorldConfig =
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(round, config);
    }
}
