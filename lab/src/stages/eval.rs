//! The `eval` stage: the paper's protocol on the named benchmarks.
//!
//! Inputs: `model` (any experiment with checkpoints, whose last one is evaluated, or a Hugging
//! Face model of an `hf` stage, asked through its chat template) and `world` (the benchmarks). For every prompting style and benchmark, `samples` completions per problem at
//! the paper's temperature 0.6 and top-p 0.95: pass@1 = mean correctness over the k samples
//! (with its standard error across problems), cons@k = majority vote, pass@k (unbiased), format
//! rate, mean response length, language consistency and mixed-language rate.

use serde::{Deserialize, Serialize};

use super::checkpointing::{InputModel, ModelSource};
use super::{validation, StageContext, StageError, StageKind};
use crate::causal_lm::CausalLm;
use crate::evaluation::{
    cons_at_k, extract_answer, format_ok, mean_and_stderr, pass_at_1, pass_at_k, Prompter,
    Prompting, EVAL_TEMPERATURE, EVAL_TOP_P,
};
use crate::generate::{generate, GenerationConfig};
use crate::language::{chain_of_thought, count_words};
use crate::store::{EvalRecord, TraceRecord};
use crate::tokenizer::Tokenizer;
use crate::trace::{LanguageScores, TraceLabels, TraceRewards};
use crate::world::Problem;

/// Settings of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Benchmark names (`easy-en`, `hard-zh`, `ood-en`, ...).
    pub benchmarks: Vec<String>,
    /// Problems taken from the start of each benchmark.
    pub problems: usize,
    /// k: completions per problem.
    pub samples: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub promptings: Vec<Prompting>,
    pub seed: u64,
    /// Completions stored as traces per benchmark and prompting.
    pub traces_per_benchmark: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            benchmarks: [
                "easy-en", "easy-zh", "hard-en", "hard-zh", "ood-en", "ood-zh",
            ]
            .map(String::from)
            .to_vec(),
            problems: 100,
            samples: 8,
            temperature: EVAL_TEMPERATURE,
            top_p: EVAL_TOP_P,
            max_new_tokens: 160,
            promptings: vec![Prompting::Cot, Prompting::Direct],
            seed: 0,
            traces_per_benchmark: 3,
        }
    }
}

/// What one benchmark under one prompting style scored, with a few completions to keep.
pub struct BenchmarkScores {
    pub records: Vec<EvalRecord>,
    pub traces: Vec<TraceRecord>,
}

/// Samples `samples` completions per problem and scores them by the paper's protocol. Samples
/// are seeded from `sample_base` on, so every (benchmark, prompting) gets its own streams.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_benchmark<M: CausalLm>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompter: &dyn Prompter,
    bench: &str,
    problems: &[Problem],
    prompting: Prompting,
    samples: usize,
    generation: &GenerationConfig,
    sample_base: u64,
    traces: usize,
) -> Result<BenchmarkScores, StageError> {
    let max_prompt = model.max_seq_len();
    let prompts = problems
        .iter()
        .map(|p| {
            let mut ids = prompter
                .prompt_ids(prompting, &p.question, p.lang)
                .map_err(|e| StageError::Failed(format!("{bench}: {e}")))?;
            ids.truncate(max_prompt.saturating_sub(1));
            Ok(ids)
        })
        .collect::<Result<Vec<Vec<u32>>, StageError>>()?;
    let completions = generate(model, tokenizer, &prompts, samples, generation, sample_base);

    let prefix = prompting.response_prefix();
    let mut correct: Vec<Vec<bool>> = vec![Vec::new(); problems.len()];
    let mut answers: Vec<Vec<Option<i64>>> = vec![Vec::new(); problems.len()];
    let (mut formatted, mut lengths, mut consistency, mut mixed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut kept = Vec::new();
    for c in &completions {
        let problem = &problems[c.prompt_index];
        let response = format!("{prefix}{}", c.text);
        let answer = extract_answer(&c.text, prompting);
        correct[c.prompt_index].push(answer == Some(problem.answer));
        answers[c.prompt_index].push(answer);
        formatted.push(f64::from(u8::from(format_ok(&response))));
        lengths.push(c.tokens.len() as f64);
        let words = count_words(chain_of_thought(&response));
        consistency.push(words.consistency(problem.lang));
        mixed.push(f64::from(u8::from(words.mixed(problem.lang))));
        if c.sample_index == 0 && c.prompt_index < traces {
            kept.push(TraceRecord {
                prompt: prompter.prompt_text(prompting, &problem.question, problem.lang),
                completion: c.text.clone(),
                rewards: TraceRewards {
                    accuracy: Some(f64::from(u8::from(answer == Some(problem.answer)))),
                    format: Some(f64::from(u8::from(format_ok(&response)))),
                    ..Default::default()
                },
                language: LanguageScores::of(&words, problem.lang),
                labels: TraceLabels {
                    benchmark: Some(bench.to_string()),
                    prompting: Some(prompting.name().to_string()),
                    lang: Some(problem.lang),
                    truth: Some(problem.answer),
                    answer,
                    finished: Some(c.finished),
                    ..Default::default()
                },
                ..Default::default()
            });
        }
    }
    let k = samples as i64;
    let record = |metric: &str, value: f64, stderr: f64| EvalRecord {
        benchmark: bench.to_string(),
        prompting: prompting.name().to_string(),
        metric: metric.to_string(),
        k,
        value,
        stderr: Some(stderr),
    };
    let mut records = Vec::new();
    let pass1 = pass_at_1(&correct);
    records.push(record("pass@1", pass1.mean, pass1.stderr));
    let passk = pass_at_k(&correct, samples);
    records.push(record(&format!("pass@{k}"), passk.mean, passk.stderr));
    let cons: Vec<f64> = answers
        .iter()
        .zip(problems)
        .map(|(a, p)| f64::from(u8::from(cons_at_k(a, p.answer))))
        .collect();
    let cons = mean_and_stderr(&cons);
    records.push(record(&format!("cons@{k}"), cons.mean, cons.stderr));
    for (metric, values) in [
        ("format_rate", &formatted),
        ("mean_length", &lengths),
        ("lang_consistency", &consistency),
        ("mixed_rate", &mixed),
    ] {
        let s = mean_and_stderr(values);
        records.push(record(metric, s.mean, s.stderr));
    }
    Ok(BenchmarkScores {
        records,
        traces: kept,
    })
}

impl StageKind for EvalConfig {
    const KIND: &'static str = "eval";
    const INPUTS: &'static [&'static str] = &["model", "world"];
    /// 2: special tokens such as `<eos>` no longer count as English words in language scores.
    /// 3: burn-flex's SIMD and AVX-512 kernels round differently.
    /// 4: a decode step attends over the KV cache in place (two matmuls and a softmax on views
    /// of the cache) instead of the fused kernel over a copy; sampled tokens round differently.
    const NUMERICS_VERSION: u32 = 4;
    const RUNS_MODELS: bool = true;

    fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        let known = ["easy", "hard", "ood"];
        for (i, name) in self.benchmarks.iter().enumerate() {
            let ok = name
                .split_once('-')
                .is_some_and(|(d, l)| known.contains(&d) && (l == "en" || l == "zh"));
            if !ok {
                problems.push((
                    format!("benchmarks[{i}]"),
                    format!("unknown benchmark `{name}`; names are easy|hard|ood-en|zh"),
                ));
            }
        }
        if self.benchmarks.is_empty() {
            problems.push(("benchmarks".into(), "needs at least one".into()));
        }
        if self.promptings.is_empty() {
            problems.push(("promptings".into(), "needs at least one".into()));
        }
        problems.extend(validation::positive(&[
            ("problems", self.problems),
            ("samples", self.samples),
            ("max_new_tokens", self.max_new_tokens),
        ]));
        problems.extend(validation::sampling(self.temperature, self.top_p));
        validation::finish(problems)
    }

    fn run(&self, ctx: &mut StageContext) -> Result<(), StageError> {
        run(self, ctx)
    }
}

pub fn run(config: &EvalConfig, ctx: &mut StageContext) -> Result<(), StageError> {
    match InputModel::of(ctx, "model")? {
        InputModel::Lab(checkpoint) => {
            let model = checkpoint.start(&ctx.device())?;
            evaluate_all(config, ctx, &model, &checkpoint)
        }
        InputModel::Hf(hf) => evaluate_all(config, ctx, &hf.bundle.model, &hf),
    }
}

/// Every benchmark under every prompting style, recorded into `ctx`.
fn evaluate_all<S: ModelSource>(
    config: &EvalConfig,
    ctx: &mut StageContext,
    model: &S::Model,
    source: &S,
) -> Result<(), StageError> {
    let (tokenizer, prompter) = (source.tokenizer(), source.prompter());
    let generation = GenerationConfig {
        max_new_tokens: config.max_new_tokens,
        temperature: config.temperature,
        top_p: config.top_p,
        seed: config.seed,
    };
    let total = config.promptings.len() * config.benchmarks.len();
    let mut records = Vec::new();
    let mut sample_base = 0u64;
    let mut trace_index = 0i64;
    for (pi, prompting) in config.promptings.iter().enumerate() {
        for (bi, bench) in config.benchmarks.iter().enumerate() {
            let problems: Vec<Problem> = ctx.input_rows("world", &format!("bench/{bench}"))?;
            let problems: Vec<Problem> = problems.into_iter().take(config.problems).collect();
            let scores = evaluate_benchmark(
                model,
                tokenizer,
                prompter,
                bench,
                &problems,
                *prompting,
                config.samples,
                &generation,
                sample_base,
                config.traces_per_benchmark,
            )?;
            sample_base += (problems.len() * config.samples) as u64;
            records.extend(scores.records);
            for mut trace in scores.traces {
                trace.sample = trace_index;
                trace_index += 1;
                ctx.trace(trace);
            }
            ctx.progress(
                ((pi * config.benchmarks.len() + bi + 1) as f64) / total as f64,
                &format!("{} {bench}", prompting.name()),
            )?;
        }
    }
    ctx.record_evaluations(&records)?;
    Ok(())
}
