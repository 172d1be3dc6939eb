//! The `sft` stage: supervised fine-tuning of a checkpoint on prompt → completion pairs, with the
//! loss on the completion tokens only.
//!
//! Inputs: `model` (the checkpoint to start from, its tokenizer kept; or a Hugging Face model,
//! asked through its chat template) and `data` (an
//! experiment holding a problems data set, named by `dataset`). Each problem becomes a pair
//! rendered in the `prompting` style: `cot` (question → step-by-step solution), `r1-zero` or
//! `compact` (template → `<think> solution </think> <answer> N </answer>`), `direct` (question
//! and "The answer is" → the number). Later stages (cold start, rejection sampling,
//! distillation) feed their own data sets through the same stage.

use serde::{Deserialize, Serialize};

use super::checkpointing::{self, InputModel, ModelSource};
use super::validation;
use super::{StageContext, StageError, StageKind};
use crate::causal_lm::CausalLm;
use crate::evaluation::Prompting;
use crate::model::{token_logprobs, AdamWConfig};
use crate::rng::Rng;
use crate::train::{accumulate, learning_rate, micro_batches, IntervalMeter, LossBatch, ScoredRow};
use crate::world::{self, Problem};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// Name of the problems data set of the `data` input (`train` for a world).
    pub dataset: String,
    pub prompting: Prompting,
    /// Use at most this many examples (0 = all).
    pub max_examples: usize,
    pub optimizer: AdamWConfig,
    pub steps: usize,
    pub batch_size: usize,
    /// Rows per micro-batch (see `train`): part of the id, the thread count is not.
    pub micro_batch_size: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    pub data_seed: u64,
    pub log_every: usize,
    pub checkpoint_every: usize,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig {
            dataset: "train".into(),
            prompting: Prompting::Compact,
            max_examples: 0,
            optimizer: AdamWConfig::default(),
            steps: 300,
            batch_size: 16,
            micro_batch_size: 8,
            lr: 5e-4,
            warmup_steps: 20,
            min_lr_ratio: 0.1,
            data_seed: 0,
            log_every: 10,
            checkpoint_every: 100,
        }
    }
}

/// The completion a problem is taught with, in `prompting`'s response format. For the compact
/// template the prompt already ends with `<think>`, so the completion starts inside it.
pub fn target_completion(problem: &Problem, prompting: Prompting) -> String {
    let tagged = world::tagged(&problem.solution, problem.answer);
    match prompting {
        Prompting::Cot => problem.solution.clone(),
        Prompting::Direct => problem.answer.to_string(),
        Prompting::R1Zero => tagged,
        Prompting::Compact => crate::response::after_think_open(&tagged),
    }
}

/// A prompt → response pair that is not a plain world problem: cold-start data, a
/// rejection-sampled completion, a teacher's trace. `response` is the whole response in the
/// tagged format (`<think> … </think> <answer> N </answer>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftExample {
    pub question: String,
    pub lang: world::Lang,
    pub answer: i64,
    pub response: String,
}

/// A data set row: a ready-made example, or a world problem taught with its own solution.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SftRow {
    Example(SftExample),
    Problem(Problem),
}

impl SftRow {
    fn question(&self) -> (&str, world::Lang) {
        match self {
            SftRow::Example(e) => (&e.question, e.lang),
            SftRow::Problem(p) => (&p.question, p.lang),
        }
    }

    fn completion(&self, prompting: Prompting) -> String {
        match self {
            SftRow::Problem(p) => target_completion(p, prompting),
            // The compact template's prompt already opened the chain of thought.
            SftRow::Example(e) if prompting == Prompting::Compact => {
                crate::response::after_think_open(&e.response)
            }
            SftRow::Example(e) => e.response.clone(),
        }
    }
}

/// One training row: `<bos> prompt completion <eos>` and the mask of completion targets.
struct Example {
    tokens: Vec<u32>,
    /// Index of the first completion token in `tokens`.
    completion_start: usize,
}

impl StageKind for SftConfig {
    const KIND: &'static str = "sft";
    const INPUTS: &'static [&'static str] = &["model", "data"];
    /// 2: burn-flex's SIMD and AVX-512 kernels round differently; a training step sums its
    /// micro-batches' gradients.
    const NUMERICS_VERSION: u32 = 2;
    const RUNS_MODELS: bool = true;

    fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        problems.extend(validation::nested("optimizer", self.optimizer.validate()));
        problems.extend(validation::positive(&[
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("micro_batch_size", self.micro_batch_size),
            ("log_every", self.log_every),
            ("checkpoint_every", self.checkpoint_every),
        ]));
        problems.extend(validation::schedule(
            self.lr,
            self.min_lr_ratio,
            self.log_every,
            self.checkpoint_every,
        ));
        validation::finish(problems)
    }

    fn run(&self, ctx: &mut StageContext) -> Result<(), StageError> {
        run(self, ctx)
    }
}

pub fn run(config: &SftConfig, ctx: &mut StageContext) -> Result<(), StageError> {
    match InputModel::of(ctx, "model")? {
        InputModel::Lab(checkpoint) => run_from(config, ctx, &checkpoint),
        InputModel::Hf(hf) => run_from(config, ctx, &hf),
    }
}

/// Fine-tunes the model of `source`, the lab's or a Hugging Face one (whose prompts go through
/// its chat template and whose completions end with its end-of-sequence token).
fn run_from<S: ModelSource>(
    config: &SftConfig,
    ctx: &mut StageContext,
    source: &S,
) -> Result<(), StageError> {
    let (tokenizer, prompter) = (source.tokenizer(), source.prompter());
    let max_len = source.max_seq_len();
    let problems: Vec<SftRow> = ctx.input_rows("data", &config.dataset)?;
    let mut examples = Vec::with_capacity(problems.len());
    for row in &problems {
        let (question, lang) = row.question();
        let mut tokens = prompter
            .prompt_ids(config.prompting, question, lang)
            .map_err(|e| StageError::Failed(format!("data set `{}`: {e}", config.dataset)))?;
        let completion_start = tokens.len();
        tokens.extend(tokenizer.encode(&row.completion(config.prompting)));
        tokens.push(tokenizer.eos_id());
        if tokens.len() <= max_len + 1 && completion_start < tokens.len() {
            examples.push(Example {
                tokens,
                completion_start,
            });
        }
    }
    let dropped = problems.len() - examples.len();
    Rng::derive(config.data_seed, "sft/order").shuffle(&mut examples);
    if config.max_examples > 0 {
        examples.truncate(config.max_examples);
    }
    if examples.is_empty() {
        return Err(StageError::Failed(format!(
            "no example of data set `{}` fits in {max_len} tokens",
            config.dataset
        )));
    }
    ctx.log("examples", 0, examples.len() as f64);
    ctx.log("examples_dropped_too_long", 0, dropped as f64);

    let device = ctx.training_device();
    let (mut model, mut optimizer, start, _) =
        checkpointing::resume_or_start_from(ctx, source, &config.optimizer, &device)?;

    let mut meter = IntervalMeter::new();
    for step in start..config.steps {
        let lr = learning_rate(
            step,
            config.steps,
            config.lr,
            config.warmup_steps,
            config.min_lr_ratio,
        );
        let rows: Vec<ScoredRow> = (0..config.batch_size)
            .map(|i| {
                let e = &examples[(step * config.batch_size + i) % examples.len()];
                ScoredRow {
                    tokens: e.tokens.clone(),
                    scored_from: e.completion_start,
                    included: true,
                }
            })
            .collect();
        // Each micro-batch, padded to its own longest row, adds its share of the mean over the
        // whole batch's completion tokens.
        let parts: Vec<LossBatch> = micro_batches(rows.len(), config.micro_batch_size)
            .into_iter()
            .map(|range| LossBatch::new(&rows[range]))
            .collect();
        let completion_tokens: usize = parts.iter().map(LossBatch::scored_tokens).sum();
        let step_result = accumulate(&model, parts.len(), |replica, i| {
            let part = &parts[i];
            let device = replica.device();
            let logits = CausalLm::forward(replica, part.inputs_tensor(&device));
            let logp = token_logprobs(logits, part.targets_tensor(&device));
            let loss = -(logp * part.mask_tensor(&device))
                .sum()
                .div_scalar(completion_tokens.max(1) as f64);
            (loss, ())
        });
        meter.add("loss", step_result.loss);
        let (next, stats) = optimizer.step_named(lr, model, step_result.grads);
        model = next;
        meter.last("learning_rate", lr);
        meter.last("grad_norm", stats.grad_norm);
        let tokens: usize = parts.iter().map(|p| p.rows() * p.width).sum();
        meter.count("tokens", tokens as f64);
        meter.end_step();

        let done = step + 1;
        if done % config.log_every == 0 || done == config.steps {
            let interval = meter.close();
            let step_id = done as i64;
            let interval_tokens = interval.total("tokens") as usize;
            for (name, value) in interval.values() {
                ctx.log(name, step_id, value);
            }
            ctx.log(
                "perf/tokens_per_second",
                step_id,
                interval_tokens as f64 / interval.seconds,
            );
            ctx.log(
                "perf/step_seconds",
                step_id,
                interval.seconds / interval.steps as f64,
            );
            // Whole tokens per step over the log interval: a run's budget is
            // SUM(tokens/step) × log_every.
            ctx.log(
                "tokens/step",
                step_id,
                (interval_tokens / interval.steps) as f64,
            );
            ctx.progress(
                done as f64 / config.steps as f64,
                &format!("step {done}/{}", config.steps),
            )?;
        }
        if done % config.checkpoint_every == 0 || done == config.steps {
            source.save(ctx, done as i64, &model, Some(&optimizer))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{generate, WorldConfig};

    #[test]
    fn completions_follow_the_prompting_format() {
        let config = WorldConfig {
            web_documents: 10,
            train_problems: 3,
            benchmark_size: 2,
            ..WorldConfig::default()
        };
        let problem = &generate(&config).train[0];
        let compact = target_completion(problem, Prompting::Compact);
        assert!(!compact.starts_with("<think>"));
        assert!(compact.ends_with(&format!("<answer> {} </answer>", problem.answer)));
        assert!(crate::evaluation::format_ok(&format!("<think> {compact}")));
        assert_eq!(
            target_completion(problem, Prompting::Direct),
            problem.answer.to_string()
        );
        assert_eq!(
            crate::evaluation::extract_answer(
                &target_completion(problem, Prompting::Cot),
                Prompting::Cot
            ),
            Some(problem.answer)
        );
    }
}
