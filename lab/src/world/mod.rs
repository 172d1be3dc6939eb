//! The generated world: bilingual (English/Chinese) arithmetic word problems.
//!
//! Everything here is pure and deterministic: [`generate`] turns a [`WorldConfig`] into the
//! pretraining "web" corpus, the training problems and the named benchmarks, drawing each part
//! from its own labelled stream (`Rng::derive(seed, "world/web")`, ...), so parts are
//! independent of each other's sizes.
//!
//! - A problem's [`Structure`] (start value and operations, no names, items or language) is what
//!   it *is*; its hash decides train versus test ([`Structure::is_test`]). The web corpus and the
//!   training problems only use train structures, benchmarks only test structures, so no test
//!   problem appears in training in any language or wording.
//! - Solutions write their arithmetic identically in both languages (`a + b = c`, `a - b = c`,
//!   `a × b = c`, `a ÷ b = c`, see [`Equation`]) and end with "The answer is N." / "答案是 N。".
//! - [`split_tokens`] is the pre-tokenizer; every number in rendered text is at most
//!   `max_number`.

pub mod config;
pub mod corpus;
pub mod equations;
pub mod problem;
mod render;
mod render_en;
mod render_zh;
pub mod tokens;

use std::collections::HashSet;

use crate::rng::Rng;

pub use config::{ConfigProblem, CorpusShares, OperationWeights, WorldConfig};
pub use corpus::{chat, tagged, Style, WebDocument};
pub use equations::{find_equation_spans, find_equations, Equation};
pub use problem::{Difficulty, Lang, Op, Problem, Structure};
pub use render::worked_solution;
pub use tokens::split_tokens;

/// A named benchmark: a fixed set of test-side problems in one language and difficulty.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct Benchmark {
    /// `"{difficulty}-{lang}"`: "easy-en", "easy-zh", "hard-en", "hard-zh", "ood-en", "ood-zh".
    pub name: String,
    pub problems: Vec<Problem>,
}

/// Everything a world config generates.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct GeneratedWorld {
    pub web: Vec<WebDocument>,
    pub train: Vec<Problem>,
    pub benchmarks: Vec<Benchmark>,
}

/// Generates the world for `config`. Pure and deterministic.
///
/// # Panics
/// If `config.validate()` fails, or if the test side of a benchmark's space cannot supply
/// `benchmark_size` distinct problems (tiny `test_share` with a large `benchmark_size`).
pub fn generate(config: &WorldConfig) -> GeneratedWorld {
    generate_with_progress(config, &mut |_, _| {})
}

/// [`generate`], calling `progress(done, total)` as items are produced (total = web documents +
/// training problems + all benchmark problems) and once at the end with `done == total`.
pub fn generate_with_progress(
    config: &WorldConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> GeneratedWorld {
    if let Err(problems) = config.validate() {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        panic!("invalid world config: {}", list.join("; "));
    }
    let benchmark_count = Difficulty::ALL.len() * Lang::ALL.len();
    let total =
        config.web_documents + config.train_problems + benchmark_count * config.benchmark_size;
    let mut done = 0usize;
    let mut tick = |done: &mut usize| {
        *done += 1;
        if done.is_multiple_of(1000) && *done < total {
            progress(*done, total);
        }
    };

    let mut rng = Rng::derive(config.seed, "world/web");
    let mut web = Vec::with_capacity(config.web_documents);
    for _ in 0..config.web_documents {
        web.push(corpus::web_document(&mut rng, config).0);
        tick(&mut done);
    }

    let mut rng = Rng::derive(config.seed, "world/train");
    let mut train = Vec::with_capacity(config.train_problems);
    for _ in 0..config.train_problems {
        train.push(corpus::train_problem(&mut rng, config));
        tick(&mut done);
    }

    let mut benchmarks = Vec::with_capacity(benchmark_count);
    for difficulty in Difficulty::ALL {
        for lang in Lang::ALL {
            let name = format!("{}-{}", difficulty.name(), lang.code());
            let problems =
                benchmark_problems(config, &name, difficulty, lang, &mut || tick(&mut done));
            benchmarks.push(Benchmark { name, problems });
        }
    }
    progress(total, total);
    GeneratedWorld {
        web,
        train,
        benchmarks,
    }
}

/// `benchmark_size` distinct test-side problems of one difficulty and language.
fn benchmark_problems(
    config: &WorldConfig,
    name: &str,
    difficulty: Difficulty,
    lang: Lang,
    tick: &mut dyn FnMut(),
) -> Vec<Problem> {
    let mut rng = Rng::derive(config.seed, &format!("world/benchmark/{name}"));
    let (min_ops, max_ops) = difficulty.operations();
    let number_max = difficulty.number_max(config);
    let value_max = difficulty.value_max(config);
    let mut seen = HashSet::new();
    let mut problems = Vec::with_capacity(config.benchmark_size);
    let budget = 100_000 + 2_000 * config.benchmark_size;
    for _ in 0..budget {
        if problems.len() == config.benchmark_size {
            break;
        }
        let operations = rng.range_inclusive(min_ops as i64, max_ops as i64) as usize;
        let structure =
            problem::random_structure(&mut rng, operations, number_max, value_max, config);
        if !structure.is_test(config.test_share) || !seen.insert(structure.structure_hash()) {
            continue;
        }
        let plan = render::Plan::random(&mut rng, &structure);
        problems.push(corpus::render_problem(&structure, lang, &plan, config));
        tick();
    }
    assert!(
        problems.len() == config.benchmark_size,
        "benchmark {name}: the test side ({} of the structure space) only yielded {} distinct \
         problems of the {} requested; raise test_share or the number ranges, or lower \
         benchmark_size",
        config.test_share,
        problems.len(),
        config.benchmark_size
    );
    problems
}

#[cfg(test)]
mod tests;
