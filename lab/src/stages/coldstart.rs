//! The `coldstart` stage: R1's cold-start data (§2.3.1), a few hundred to a few thousand
//! readable long chains of thought generated from the world.
//!
//! Each example answers a training problem in the problem's own language only (no
//! code-switching), reasons step by step, then closes its chain with a short summary that
//! re-checks every step: the paper's "reasoning process, then summary" pattern, written inside
//! `<think>` so the response keeps the R1-Zero format `<think> … </think> <answer> N </answer>`.
//! With `worked`, the chain is the web corpus's careful writer's: every two-digit addition and
//! subtraction worked out tens first. Off by default, because it measured worse: after
//! cold-start SFT of the paper's base (150 steps of 16), 1000 worked chains left it at 6.2 / 7.2 %
//! pass@1 on hard-en / hard-zh, 1000 plain ones at 13.6 / 9.9 % and 3000 at 15.8 / 12.5 % (100
//! problems a benchmark); and within GRPO groups of the base model (`lab habits`) the completions that work
//! a step out are right less often than the others.
//! With `recheck = false`, the chain closes with its own answer sentence and no re-check: the
//! re-check copies every equation of the chain again, the small models miscopy an operand there
//! (`3 × 4 = 12` in the chain, `2 × 4 = 8` in the check) and answer what the check computed.
//! Input: `world` (its training problems). Output: the data set `coldstart` of `SftExample`s.

use serde::{Deserialize, Serialize};

use super::sft::SftExample;
use super::{shuffled_problems, validation, StageContext, StageError, StageKind};
use crate::world::{find_equations, worked_solution, Lang, Problem};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColdStartConfig {
    pub examples: usize,
    pub min_operations: usize,
    pub max_operations: usize,
    /// Work two-digit additions and subtractions out tens first ([`worked_solution`]).
    pub worked: bool,
    /// Close each chain with a summary that re-checks every step (`Let me check: 3 × 4 = 12, 23 +
    /// 12 = 35. The answer is 35.`). `false`: the chain's own `The answer is 35.` closes it. Left
    /// out of the resolved spec when `true`, so the cold-start data from before it keep their ids.
    #[serde(skip_serializing_if = "is_true")]
    pub recheck: bool,
    pub seed: u64,
}

fn is_true(value: &bool) -> bool {
    *value
}

impl Default for ColdStartConfig {
    fn default() -> Self {
        ColdStartConfig {
            examples: 1000,
            min_operations: 1,
            max_operations: 4,
            worked: false,
            recheck: true,
            seed: 0,
        }
    }
}

/// The readable response for a problem: its solution (worked out tens first if `worked`), then,
/// if `recheck`, a summary re-checking each step of the plain solution.
pub fn cold_start_response(problem: &Problem, worked: bool, recheck: bool) -> String {
    let solution = if worked {
        worked_solution(problem.lang, &problem.solution)
    } else {
        problem.solution.clone()
    };
    if !recheck {
        return crate::response::tagged(&solution, problem.answer);
    }
    let equations: Vec<String> = find_equations(&problem.solution)
        .iter()
        .map(|e| e.to_string())
        .collect();
    let summary = match problem.lang {
        Lang::En => format!(
            "Let me check: {}. The answer is {}.",
            equations.join(", "),
            problem.answer
        ),
        Lang::Zh => format!(
            "验算一下：{}。答案是 {}。",
            equations.join("，"),
            problem.answer
        ),
    };
    crate::response::tagged(&format!("{solution} {summary}"), problem.answer)
}

impl StageKind for ColdStartConfig {
    const KIND: &'static str = "coldstart";
    const INPUTS: &'static [&'static str] = &["world"];
    const NUMERICS_VERSION: u32 = 1;

    fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = validation::positive(&[("examples", self.examples)]);
        problems.extend(validation::operations(
            self.min_operations,
            self.max_operations,
        ));
        validation::finish(problems)
    }

    fn run(&self, ctx: &mut StageContext) -> Result<(), StageError> {
        run(self, ctx)
    }
}

pub fn run(config: &ColdStartConfig, ctx: &mut StageContext) -> Result<(), StageError> {
    let train: Vec<Problem> = ctx.input_rows("world", "train")?;
    let pool = shuffled_problems(
        &train,
        config.min_operations..=config.max_operations,
        |_| true,
        config.seed,
        "coldstart/order",
    );
    let examples: Vec<SftExample> = pool
        .iter()
        .take(config.examples)
        .map(|p| SftExample {
            question: p.question.clone(),
            lang: p.lang,
            answer: p.answer,
            response: cold_start_response(p, config.worked, config.recheck),
        })
        .collect();
    ctx.log("examples", 0, examples.len() as f64);
    for lang in Lang::ALL {
        let n = examples.iter().filter(|e| e.lang == lang).count();
        ctx.log(format!("examples/{}", lang.code()), 0, n as f64);
    }
    ctx.store_dataset("coldstart", "sft", &examples)?;
    ctx.progress(1.0, "done")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{extract_answer, format_ok, Prompting};
    use crate::language::{chain_of_thought, count_words};
    use crate::world::{generate, WorldConfig};

    #[test]
    fn responses_are_formatted_single_language_and_summarised() {
        let world = generate(&WorldConfig {
            web_documents: 10,
            train_problems: 40,
            benchmark_size: 2,
            ..WorldConfig::default()
        });
        for p in &world.train {
            let plain = cold_start_response(p, false, true);
            let worked = cold_start_response(p, true, true);
            let bare = cold_start_response(p, false, false);
            for response in [&plain, &worked, &bare] {
                assert!(format_ok(response), "{response}");
                assert_eq!(extract_answer(response, Prompting::R1Zero), Some(p.answer));
                let words = count_words(chain_of_thought(response));
                assert!(!words.mixed(p.lang), "{response}");
                assert!(find_equations(response).iter().all(|e| e.is_correct()));
            }
            // The summary re-checks every step of the solution.
            let steps = find_equations(&p.solution).len();
            assert_eq!(find_equations(&plain).len(), 2 * steps, "{plain}");
            // Without the re-check, the chain's equations only, closed by its answer sentence.
            assert_eq!(find_equations(&bare).len(), steps, "{bare}");
            assert!(bare.contains(p.solution.as_str()), "{bare}");
            let worked_steps = find_equations(&worked_solution(p.lang, &p.solution)).len();
            assert_eq!(
                find_equations(&worked).len(),
                worked_steps + steps,
                "{worked}"
            );
        }
    }
}
