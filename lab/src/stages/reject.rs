//! The `reject` stage: rejection sampling (R1 §2.3.3). From a checkpoint, sample several
//! completions per training prompt and keep only the good ones: a correct answer, the
//! `<think>/<answer>` format with reasoning steps, one language, finished within the length
//! limit, no duplicate. A share of non-reasoning examples (bare answers to one-operation
//! problems) is added, as R1 adds non-reasoning data. Every filter's count is a metric; the kept
//! set is the data set `sft` of `SftExample`s, for an `sft` stage.
//!
//! Inputs: `model` (the checkpoint to sample from, or a Hugging Face model, asked through its
//! chat template) and `world` (its training problems).

use serde::{Deserialize, Serialize};

use super::checkpointing::{InputModel, ModelSource};
use super::sft::SftExample;
use super::{shuffled_problems, validation, StageContext, StageError, StageKind};
use crate::evaluation::Prompting;
use crate::generate::{generate, GenerationConfig};
use crate::language::{chain_of_thought, count_words};
use crate::rewards::{score, RewardConfig};
use crate::rng::Rng;
use crate::store::TraceRecord;
use crate::trace::TraceLabels;
use crate::world::{Lang, Problem};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RejectConfig {
    /// Training prompts sampled from.
    pub prompts: usize,
    pub samples_per_prompt: usize,
    pub temperature: f64,
    pub top_p: f64,
    pub max_completion_length: usize,
    pub prompting: Prompting,
    pub min_operations: usize,
    pub max_operations: usize,
    /// Drop chains with any word of the other language.
    pub drop_mixed: bool,
    /// Reasoning steps (equations) a kept chain must show.
    pub min_reasoning_steps: usize,
    /// Keep at most this many correct completions per prompt.
    pub keep_per_prompt: usize,
    /// Non-reasoning examples added, as a share of the kept reasoning examples...
    pub non_reasoning_share: f64,
    /// ...and at least this many.
    pub min_non_reasoning: usize,
    pub seed: u64,
}

impl Default for RejectConfig {
    fn default() -> Self {
        RejectConfig {
            prompts: 1000,
            samples_per_prompt: 4,
            temperature: 0.8,
            top_p: 0.95,
            max_completion_length: 160,
            prompting: Prompting::Compact,
            min_operations: 1,
            max_operations: 4,
            drop_mixed: true,
            min_reasoning_steps: 1,
            keep_per_prompt: 2,
            non_reasoning_share: 0.1,
            min_non_reasoning: 0,
            seed: 0,
        }
    }
}

/// Why a completion was not kept; the first failing filter wins, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Kept,
    Overlong,
    BadFormat,
    Wrong,
    Mixed,
    Duplicate,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Kept => "kept",
            Verdict::Overlong => "dropped_overlong",
            Verdict::BadFormat => "dropped_format",
            Verdict::Wrong => "dropped_wrong",
            Verdict::Mixed => "dropped_mixed",
            Verdict::Duplicate => "dropped_duplicate",
        }
    }
}

/// Judges one completion (`response` is the whole response, the prompt's prefix included).
pub fn judge(
    response: &str,
    finished: bool,
    truth: i64,
    lang: Lang,
    config: &RejectConfig,
    seen: &mut std::collections::HashSet<String>,
) -> Verdict {
    if !finished {
        return Verdict::Overlong;
    }
    let rewards = RewardConfig {
        min_reasoning_steps: config.min_reasoning_steps,
        ..RewardConfig::default()
    };
    let parts = score(response, "", truth, lang, &rewards);
    if parts.format < 1.0 {
        return Verdict::BadFormat;
    }
    if parts.accuracy < 1.0 {
        return Verdict::Wrong;
    }
    if config.drop_mixed && count_words(chain_of_thought(response)).mixed(lang) {
        return Verdict::Mixed;
    }
    if !seen.insert(response.split_whitespace().collect::<Vec<_>>().join(" ")) {
        return Verdict::Duplicate;
    }
    Verdict::Kept
}

impl StageKind for RejectConfig {
    const KIND: &'static str = "reject";
    const INPUTS: &'static [&'static str] = &["model", "world"];
    /// 2: special tokens such as `<eos>` no longer count as English words in language scores.
    /// 3: burn-flex's SIMD and AVX-512 kernels round differently.
    /// 4: a decode step attends over the KV cache in place; sampled tokens round differently.
    const NUMERICS_VERSION: u32 = 4;
    const RUNS_MODELS: bool = true;

    fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = validation::positive(&[
            ("prompts", self.prompts),
            ("samples_per_prompt", self.samples_per_prompt),
            ("max_completion_length", self.max_completion_length),
            ("keep_per_prompt", self.keep_per_prompt),
        ]);
        problems.extend(validation::sampling(self.temperature, self.top_p));
        if !(0.0..=1.0).contains(&self.non_reasoning_share) {
            problems.push(("non_reasoning_share".into(), "must be in [0, 1]".into()));
        }
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

pub fn run(config: &RejectConfig, ctx: &mut StageContext) -> Result<(), StageError> {
    match InputModel::of(ctx, "model")? {
        InputModel::Lab(checkpoint) => {
            let model = checkpoint.start(&ctx.device())?;
            run_on(config, ctx, &model, &checkpoint)
        }
        InputModel::Hf(hf) => run_on(config, ctx, &hf.bundle.model, &hf),
    }
}

/// Samples from `model` (of `source`, the lab's or a Hugging Face one) and keeps the good
/// completions.
fn run_on<S: ModelSource>(
    config: &RejectConfig,
    ctx: &mut StageContext,
    model: &S::Model,
    source: &S,
) -> Result<(), StageError> {
    let (tokenizer, prompter) = (source.tokenizer(), source.prompter());
    let max_seq_len = source.max_seq_len();
    // A finished completion ends with the end-of-sequence token's text, which is no part of
    // the response kept.
    let eos_text = tokenizer.token(tokenizer.eos_id()).to_string();
    let train: Vec<Problem> = ctx.input_rows("world", "train")?;
    let mut pool = shuffled_problems(
        &train,
        config.min_operations..=config.max_operations,
        |_| true,
        config.seed,
        "reject/order",
    );
    pool.truncate(config.prompts);

    let prefix = config.prompting.response_prefix();
    let generation = GenerationConfig {
        max_new_tokens: config.max_completion_length,
        temperature: config.temperature,
        top_p: config.top_p,
        seed: config.seed,
    };
    let mut kept: Vec<SftExample> = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut seen = std::collections::HashSet::new();
    let chunk = 32;
    let mut sample = 0i64;
    for (chunk_index, problems) in pool.chunks(chunk).enumerate() {
        let prompts = problems
            .iter()
            .map(|p| {
                let mut ids = prompter
                    .prompt_ids(config.prompting, &p.question, p.lang)
                    .map_err(|e| StageError::Failed(format!("problem {:?}: {e}", p.question)))?;
                ids.truncate(max_seq_len.saturating_sub(8));
                Ok(ids)
            })
            .collect::<Result<Vec<Vec<u32>>, StageError>>()?;
        let first = (chunk_index * chunk * config.samples_per_prompt) as u64;
        let completions = generate(
            model,
            tokenizer,
            &prompts,
            config.samples_per_prompt,
            &generation,
            first,
        );
        let mut kept_of_prompt = vec![0usize; problems.len()];
        for c in &completions {
            let p = &problems[c.prompt_index];
            let response = format!("{prefix} {}", c.text.trim_start())
                .trim()
                .trim_end_matches(eos_text.as_str())
                .trim()
                .to_string();
            let mut verdict = judge(&response, c.finished, p.answer, p.lang, config, &mut seen);
            if verdict == Verdict::Kept && kept_of_prompt[c.prompt_index] >= config.keep_per_prompt
            {
                verdict = Verdict::Duplicate;
            }
            *counts.entry(verdict.name()).or_default() += 1;
            if sample < 16 {
                ctx.trace(TraceRecord {
                    sample,
                    prompt: prompter.prompt_text(config.prompting, &p.question, p.lang),
                    completion: c.text.clone(),
                    labels: TraceLabels {
                        verdict: Some(verdict.name().to_string()),
                        truth: Some(p.answer),
                        lang: Some(p.lang),
                        ..Default::default()
                    },
                    ..Default::default()
                });
                sample += 1;
            }
            if verdict == Verdict::Kept {
                kept_of_prompt[c.prompt_index] += 1;
                kept.push(SftExample {
                    question: p.question.clone(),
                    lang: p.lang,
                    answer: p.answer,
                    response,
                });
            }
        }
        ctx.progress(
            ((chunk_index + 1) * chunk).min(pool.len()) as f64 / pool.len() as f64,
            "sampling",
        )?;
    }
    let reasoning = kept.len();
    // Non-reasoning data: bare answers to one-operation problems.
    let wanted = ((reasoning as f64 * config.non_reasoning_share).round() as usize)
        .max(config.min_non_reasoning);
    let mut trivial: Vec<&Problem> = train.iter().filter(|p| p.operations == 1).collect();
    Rng::derive(config.seed, "reject/non-reasoning").shuffle(&mut trivial);
    for p in trivial.into_iter().take(wanted) {
        kept.push(SftExample {
            question: p.question.clone(),
            lang: p.lang,
            answer: p.answer,
            response: crate::response::tagged("", p.answer),
        });
    }
    Rng::derive(config.seed, "reject/shuffle").shuffle(&mut kept);
    ctx.log(
        "sampled",
        0,
        (pool.len() * config.samples_per_prompt) as f64,
    );
    for verdict in [
        Verdict::Kept,
        Verdict::Overlong,
        Verdict::BadFormat,
        Verdict::Wrong,
        Verdict::Mixed,
        Verdict::Duplicate,
    ] {
        let n = counts.get(verdict.name()).copied().unwrap_or(0);
        ctx.log(verdict.name(), 0, n as f64);
    }
    ctx.log("non_reasoning_added", 0, (kept.len() - reasoning) as f64);
    ctx.log("examples", 0, kept.len() as f64);
    ctx.store_dataset("sft", "sft", &kept)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(response: &str, finished: bool, truth: i64, lang: Lang) -> Verdict {
        judge(
            response,
            finished,
            truth,
            lang,
            &RejectConfig::default(),
            &mut Default::default(),
        )
    }

    #[test]
    fn filters_on_hand_made_completions() {
        let good = "<think> 3 + 4 = 7, so he has 7 apples. </think> <answer> 7 </answer>";
        assert_eq!(verdict(good, true, 7, Lang::En), Verdict::Kept);
        assert_eq!(verdict(good, false, 7, Lang::En), Verdict::Overlong);
        assert_eq!(verdict(good, true, 8, Lang::En), Verdict::Wrong);
        assert_eq!(
            verdict(
                "<think> he has 7 </think> <answer> 7 </answer>",
                true,
                7,
                Lang::En
            ),
            Verdict::BadFormat,
            "no reasoning step"
        );
        assert_eq!(
            verdict("3 + 4 = 7. The answer is 7.", true, 7, Lang::En),
            Verdict::BadFormat
        );
        let mixed = "<think> 3 + 4 = 7，所以他有 7 个。 </think> <answer> 7 </answer>";
        assert_eq!(verdict(mixed, true, 7, Lang::En), Verdict::Mixed);
        let mut seen = Default::default();
        let config = RejectConfig::default();
        assert_eq!(
            judge(good, true, 7, Lang::En, &config, &mut seen),
            Verdict::Kept
        );
        let spaced = good.replace(' ', "  ");
        assert_eq!(
            judge(&spaced, true, 7, Lang::En, &config, &mut seen),
            Verdict::Duplicate
        );
        let lenient = RejectConfig {
            drop_mixed: false,
            ..RejectConfig::default()
        };
        assert_eq!(
            judge(mixed, true, 7, Lang::En, &lenient, &mut seen),
            Verdict::Kept
        );
    }
}
