//! The `grpo` stage: reinforcement learning with Group Relative Policy Optimization
//! (DeepSeekMath; R1 §2.2.1) and rule-based rewards.
//!
//! Inputs: `model` (the starting checkpoint, also the frozen KL reference) and `world` (its
//! training problems are the prompts; its benchmarks serve the periodic evaluation). Each step:
//! sample prompts, G completions each from the current policy (KV cache, no autodiff), score
//! them, compute group-relative advantages, then `mu` optimisation steps on that batch with the
//! clipped surrogate; the "old" log-probs are the sampling policy's.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::checkpointing::{self, InputModel, ModelSource};
use super::eval::evaluate_benchmark;
use super::{shuffled_problems, validation, StageContext, StageError, StageKind};
use crate::causal_lm::{CausalLm, TrainableLm};
use crate::evaluation::{Prompter, Prompting};
use crate::generate::{generate, Completion, GenerationConfig};
use crate::grpo::{
    advantages, group_has_signal, grpo_objective, micro_batch_share, Advantages, LossType,
    ObjectiveConfig, ObjectiveInputs, ObjectiveStats, ScaleRewards,
};
use crate::language::{chain_of_thought, count_words};
use crate::model::{token_logprobs, tokens_tensor, AdamW, AdamWConfig};
use crate::parallel;
use crate::rewards::{most_common_answer_share, score, RewardConfig, RewardParts};
use crate::rng::Rng;
use crate::store::TraceRecord;
use crate::tokenizer::{Tokenizer, PAD_ID};
use crate::trace::{LanguageScores, TraceLabels, TraceRewards};
use crate::train::{accumulate, learning_rate, Interval, IntervalMeter};
use crate::world::{Lang, Problem};

/// What happens to completions cut by the length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlong {
    /// Scored like any other completion.
    Keep,
    /// Left out of the loss (DAPO's overlong filtering).
    Mask,
    /// Their reward is set to 0.
    Penalize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpoConfig {
    pub steps: usize,
    pub prompts_per_step: usize,
    /// G: completions per prompt.
    pub group_size: usize,
    /// Optimisation steps per sampled batch.
    pub mu: usize,
    /// DAPO's dynamic sampling: groups whose rewards are all equal (no gradient) are replaced
    /// by groups of other training problems, sampled in up to `dynamic_sampling_rounds` extra
    /// rounds per step; a step still short of `prompts_per_step` groups trains on what it has.
    pub dynamic_sampling: bool,
    pub dynamic_sampling_rounds: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    pub optimizer: AdamWConfig,
    pub temperature: f64,
    pub top_p: f64,
    pub max_completion_length: usize,
    pub prompting: Prompting,
    pub loss_type: LossType,
    pub scale_rewards: ScaleRewards,
    pub epsilon_low: f64,
    pub epsilon_high: f64,
    /// KL coefficient against the reference (k3 estimator).
    pub beta: f64,
    /// Multiply the KL term by the importance ratio (TRL's `use_bias_correction_kl`).
    pub kl_ratio_correction: bool,
    /// Replace the reference by the current policy every N steps (0 = never).
    pub reference_reset_every: usize,
    pub overlong: Overlong,
    pub rewards: RewardConfig,
    /// Training problems used as prompts: operation counts and languages.
    pub min_operations: usize,
    pub max_operations: usize,
    pub languages: Vec<Lang>,
    pub seed: u64,
    pub log_every: usize,
    pub checkpoint_every: usize,
    /// Store the completions of the first prompt group every N steps (0 = never).
    pub trace_every: usize,
    /// Evaluate pass@1 on `eval_benchmarks` every N steps (0 = never).
    pub eval_every: usize,
    pub eval_benchmarks: Vec<String>,
    pub eval_problems: usize,
    pub eval_samples: usize,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        GrpoConfig {
            steps: 60,
            prompts_per_step: 8,
            group_size: 8,
            mu: 1,
            dynamic_sampling: false,
            dynamic_sampling_rounds: 3,
            lr: 2e-5,
            warmup_steps: 5,
            min_lr_ratio: 1.0,
            optimizer: AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
            temperature: 1.0,
            top_p: 1.0,
            max_completion_length: 160,
            prompting: Prompting::Compact,
            loss_type: LossType::Grpo,
            scale_rewards: ScaleRewards::Group,
            epsilon_low: 0.2,
            epsilon_high: 0.2,
            beta: 0.02,
            kl_ratio_correction: true,
            reference_reset_every: 0,
            overlong: Overlong::Keep,
            rewards: RewardConfig::default(),
            min_operations: 1,
            max_operations: 4,
            languages: vec![Lang::En, Lang::Zh],
            seed: 0,
            log_every: 1,
            checkpoint_every: 20,
            trace_every: 5,
            eval_every: 0,
            eval_benchmarks: vec!["easy-en".into(), "hard-en".into(), "hard-zh".into()],
            eval_problems: 50,
            eval_samples: 4,
        }
    }
}

/// One prompt's group in the policy update, its micro-batch: the prompt runs once and its `G`
/// completions continue from the prompt's keys and values, fanned out like the sampler's
/// cache. Gradients flow through the cache into the prompt's positions, so the loss and its
/// gradient are those of the `G` full sequences (up to rounding), computed on `prompt + G ·
/// completion` positions instead of `G · (prompt + completion)`.
struct GroupPart {
    prompt: Vec<u32>,
    /// The completions right-padded to `width` tokens: the targets of the loss.
    targets: Vec<Vec<u32>>,
    /// `[G · width]`: 1 on the tokens of included completions.
    mask: Vec<f32>,
    width: usize,
    advantages: Vec<f32>,
    /// `[G, width]` constant log-probs of the reference and of the sampling policy.
    ref_logp: Option<Tensor<2>>,
    old_logp: Option<Tensor<2>>,
}

impl GroupPart {
    fn new(
        prompt: &[u32],
        completions: &[Completion],
        include: &[bool],
        advantages: &[f64],
    ) -> GroupPart {
        let width = completions
            .iter()
            .map(|c| c.tokens.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let mut targets = Vec::with_capacity(completions.len());
        let mut mask = Vec::with_capacity(completions.len() * width);
        for (c, &included) in completions.iter().zip(include) {
            let mut row = c.tokens.clone();
            row.resize(width, PAD_ID);
            targets.push(row);
            let n = if included { c.tokens.len() } else { 0 };
            mask.extend((0..width).map(|t| if t < n { 1.0f32 } else { 0.0 }));
        }
        GroupPart {
            prompt: prompt.to_vec(),
            targets,
            mask,
            width,
            advantages: advantages.iter().map(|&a| a as f32).collect(),
            ref_logp: None,
            old_logp: None,
        }
    }

    fn rows(&self) -> usize {
        self.targets.len()
    }

    fn scored_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }

    /// Positions through the model: the prompt once, then the completions but their last token.
    fn positions(&self) -> usize {
        self.prompt.len() + self.rows() * (self.width - 1)
    }

    fn mask_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.mask.clone(), [self.rows(), self.width]),
            device,
        )
    }

    /// `[G, width, vocab]` logits predicting each completion token under `model`, divided by
    /// the sampling temperature: log-probs are taken under the distribution the completions
    /// were sampled from (as TRL does).
    fn logits<M: TrainableLm>(&self, model: &M, temperature: f64) -> Tensor<3> {
        let device = model.device();
        let g = self.rows();
        let mut cache = model.new_cache();
        // The last prompt position predicts every completion's first token. A few before it
        // keep the output projection on gemm's common path, so its logits are bit for bit those
        // of a projection of every prompt position.
        let vocab = model.vocab_size();
        let tail = crate::generate::min_positions(vocab).min(self.prompt.len());
        let prompt_logits = model.forward_cached_tail(
            tokens_tensor(std::slice::from_ref(&self.prompt), &device),
            &mut cache,
            tail,
        );
        let first = prompt_logits.narrow(1, tail - 1, 1).expand([g, 1, vocab]);
        let logits = if self.width > 1 {
            let mut cache = M::fan_out(&cache, g);
            let inputs: Vec<Vec<u32>> = self
                .targets
                .iter()
                .map(|t| t[..self.width - 1].to_vec())
                .collect();
            let rest = model.forward_cached_tail(
                tokens_tensor(&inputs, &device),
                &mut cache,
                self.width - 1,
            );
            Tensor::cat(vec![first, rest], 1)
        } else {
            first
        };
        if temperature == 1.0 {
            logits
        } else {
            logits / temperature
        }
    }

    fn logprobs(&self, logits: Tensor<3>) -> Tensor<2> {
        let device = logits.device();
        token_logprobs(logits, tokens_tensor(&self.targets, &device))
    }
}

/// Mean entropy of the next-token distributions at the masked positions (no gradient).
fn masked_entropy(logits: &Tensor<3>, mask: &Tensor<2>) -> f64 {
    let detached = logits.clone().detach();
    let per_token = -(softmax(detached.clone(), 2) * log_softmax(detached, 2)).sum_dim(2);
    let per_token: Tensor<2> = per_token.squeeze_dim(2);
    let total = (per_token * mask.clone()).sum().into_scalar::<f32>() as f64;
    total / (mask.clone().sum().into_scalar::<f32>() as f64).max(1.0)
}

/// The same numbers on another device (reference and old log-probs enter the loss as constants).
fn to_device(tensor: Tensor<2>, device: &Device) -> Tensor<2> {
    Tensor::from_data(tensor.into_data(), device)
}

/// The sampled and scored completions of a step, `G` per problem, grouped by problem.
struct Rollout<'a> {
    problems: Vec<&'a Problem>,
    prompts: Vec<Vec<u32>>,
    completions: Vec<Completion>,
    parts: Vec<RewardParts>,
    /// The reward each completion trains on (overlong handling applied).
    rewards: Vec<f64>,
}

impl<'a> Rollout<'a> {
    /// `G` completions of each problem from `policy`, drawn from generation seed `seed`, and
    /// their rewards.
    fn sample<M: CausalLm>(
        config: &GrpoConfig,
        policy: &M,
        speaker: Speaker,
        problems: Vec<&'a Problem>,
        seed: u64,
        first_sample: u64,
    ) -> Rollout<'a> {
        let prompts: Vec<Vec<u32>> = problems
            .iter()
            .map(|p| {
                speaker
                    .prompter
                    .prompt_ids(config.prompting, &p.question, p.lang)
                    .expect("every pool problem's prompt was made once already")
            })
            .collect();
        let generation = GenerationConfig {
            max_new_tokens: config.max_completion_length,
            temperature: config.temperature,
            top_p: config.top_p,
            seed,
        };
        let completions = generate(
            policy,
            speaker.tokenizer,
            &prompts,
            config.group_size,
            &generation,
            first_sample,
        );
        let prefix = config.prompting.response_prefix();
        let parts: Vec<RewardParts> = completions
            .iter()
            .map(|c| {
                let p = problems[c.prompt_index];
                score(&c.text, prefix, p.answer, p.lang, &config.rewards)
            })
            .collect();
        let rewards: Vec<f64> = completions
            .iter()
            .zip(&parts)
            .map(|(c, r)| {
                if !c.finished && config.overlong == Overlong::Penalize {
                    0.0
                } else {
                    r.total
                }
            })
            .collect();
        Rollout {
            problems,
            prompts,
            completions,
            parts,
            rewards,
        }
    }

    fn groups(&self) -> usize {
        self.problems.len()
    }

    fn group_size(&self) -> usize {
        self.completions.len() / self.problems.len().max(1)
    }

    fn groups_with_signal(&self) -> usize {
        let g = self.group_size().max(1);
        self.rewards
            .chunks(g)
            .filter(|r| group_has_signal(r))
            .count()
    }

    /// Keeps the groups for which `keep(group)` holds, in order.
    fn retain_groups(&mut self, keep: impl Fn(&Rollout, usize) -> bool) {
        let g = self.group_size();
        let kept: Vec<usize> = (0..self.groups()).filter(|&i| keep(self, i)).collect();
        let mut out = Rollout {
            problems: Vec::new(),
            prompts: Vec::new(),
            completions: Vec::new(),
            parts: Vec::new(),
            rewards: Vec::new(),
        };
        for (new_index, &i) in kept.iter().enumerate() {
            out.problems.push(self.problems[i]);
            out.prompts.push(self.prompts[i].clone());
            for row in i * g..(i + 1) * g {
                let mut c = self.completions[row].clone();
                c.prompt_index = new_index;
                out.completions.push(c);
                out.parts.push(self.parts[row].clone());
                out.rewards.push(self.rewards[row]);
            }
        }
        *self = out;
    }

    fn keep_groups_with_signal(&mut self) {
        let g = self.group_size().max(1);
        self.retain_groups(|r, i| group_has_signal(&r.rewards[i * g..(i + 1) * g]));
    }

    fn truncate_groups(&mut self, groups: usize) {
        if self.groups() > groups {
            self.retain_groups(|_, i| i < groups);
        }
    }

    /// The groups of `other` after this one's.
    fn append(&mut self, other: Rollout<'a>) {
        let offset = self.groups();
        self.problems.extend(other.problems);
        self.prompts.extend(other.prompts);
        self.completions
            .extend(other.completions.into_iter().map(|mut c| {
                c.prompt_index += offset;
                c
            }));
        self.parts.extend(other.parts);
        self.rewards.extend(other.rewards);
    }
}

/// What one policy update did (over its `mu` optimisation steps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyUpdate {
    /// Loss of the last optimisation step.
    pub loss: f64,
    /// Mean entropy of the policy's next-token distributions over the scored tokens (first
    /// optimisation step).
    pub entropy: f64,
    /// Clip and KL statistics of the first optimisation step.
    pub stats: ObjectiveStats,
    /// Gradient norm of the last optimisation step.
    pub grad_norm: f64,
    /// Completion tokens in the loss.
    pub scored_tokens: usize,
    /// Positions through the policy's training forward per optimisation step (padding included).
    pub trained_positions: usize,
}

/// GRPO's policy update on one sampled batch: `config.mu` optimisation steps of `model` with
/// the clipped surrogate (and the KL to `reference` when `beta > 0`), in micro-batches of
/// prompt groups computed on every core (see [`crate::train`]): each prompt runs once and its
/// `G` completions continue from its cached keys and values.
/// `policy` is the sampling policy (the old log-probs when `mu > 1`); `advantages` and
/// `include` (false: left out of the loss) go with `completions`, which continue `prompts`.
#[allow(clippy::too_many_arguments)]
pub fn policy_update<M: TrainableLm>(
    config: &GrpoConfig,
    optimizer: &mut AdamW,
    lr: f64,
    model: M,
    policy: &M,
    reference: &M,
    prompts: &[Vec<u32>],
    completions: &[Completion],
    advantages: &[f64],
    include: &[bool],
) -> (M, PolicyUpdate) {
    let objective_config = config.objective();
    let mut model = model;
    let rows = completions.len();
    let g = config.group_size;
    let t = config.temperature;
    let parts: Vec<GroupPart> = (0..rows / g)
        .map(|p| {
            let range = p * g..(p + 1) * g;
            GroupPart::new(
                &prompts[completions[range.start].prompt_index],
                &completions[range.clone()],
                &include[range.clone()],
                &advantages[range],
            )
        })
        .collect();
    // The reference's and the sampling policy's log-probs enter the loss as constants.
    let parts = parallel::map_ordered(parts, |_, mut part| {
        if config.beta > 0.0 {
            part.ref_logp = Some(part.logprobs(part.logits(reference, t)));
        }
        if config.mu > 1 {
            part.old_logp = Some(part.logprobs(part.logits(policy, t)));
        }
        part
    });
    let batch_tokens: usize = parts.iter().map(GroupPart::scored_tokens).sum();
    let mut loss_value = 0.0;
    let mut entropy = 0.0;
    let mut stats = None;
    let mut grad_norm = 0.0;
    for inner in 0..config.mu {
        let step_result = accumulate(&model, parts.len(), |replica, i| {
            let part = &parts[i];
            let device = replica.device();
            let mask = part.mask_tensor(&device);
            let logits = part.logits(replica, t);
            let part_entropy = if inner == 0 {
                masked_entropy(&logits, &mask)
            } else {
                0.0
            };
            let logp = part.logprobs(logits);
            let old = match &part.old_logp {
                Some(old) => to_device(old.clone(), &device),
                // With one optimisation step the sampling policy is the current one.
                None => logp.clone().detach(),
            };
            let part_rows = part.rows();
            let objective = grpo_objective(
                ObjectiveInputs {
                    logp,
                    old_logp: old,
                    ref_logp: part.ref_logp.clone().map(|r| to_device(r, &device)),
                    mask,
                    advantages: Tensor::from_data(
                        TensorData::new(part.advantages.clone(), [part_rows]),
                        &device,
                    ),
                },
                &objective_config,
            );
            let tokens = part.scored_tokens();
            let share = micro_batch_share(config.loss_type, part_rows, tokens, rows, batch_tokens);
            let loss = if share == 1.0 {
                objective.loss
            } else {
                objective.loss.mul_scalar(share)
            };
            (loss, (objective.stats, part_entropy, tokens))
        });
        if inner == 0 {
            let weighted: Vec<(ObjectiveStats, usize)> =
                step_result.reports.iter().map(|r| (r.0, r.2)).collect();
            stats = Some(ObjectiveStats::merge(&weighted));
            entropy = step_result
                .reports
                .iter()
                .map(|r| r.1 * r.2 as f64)
                .sum::<f64>()
                / batch_tokens.max(1) as f64;
        }
        loss_value = step_result.loss;
        let (next, step_stats) = optimizer.step_named(lr, model, step_result.grads);
        model = next;
        grad_norm = step_stats.grad_norm;
    }
    let trained_positions: usize = parts.iter().map(GroupPart::positions).sum();
    (
        model,
        PolicyUpdate {
            loss: loss_value,
            entropy,
            stats: stats.expect("mu >= 1"),
            grad_norm,
            scored_tokens: batch_tokens,
            trained_positions,
        },
    )
}

/// The end of every step, trained on or not: the periodic evaluation, progress and the
/// periodic checkpoint.
fn finish_step<S: ModelSource>(
    config: &GrpoConfig,
    ctx: &mut StageContext,
    done: usize,
    model: &S::Model,
    optimizer: &AdamW,
    source: &S,
    eval_sets: &[(String, Vec<Problem>)],
) -> Result<(), StageError> {
    if config.eval_every > 0 && (done.is_multiple_of(config.eval_every) || done == config.steps) {
        let policy = model.valid();
        let generation = GenerationConfig {
            max_new_tokens: config.max_completion_length,
            temperature: crate::evaluation::EVAL_TEMPERATURE,
            top_p: crate::evaluation::EVAL_TOP_P,
            seed: config.seed,
        };
        for (bench, problems) in eval_sets {
            let scores = evaluate_benchmark(
                &policy,
                source.tokenizer(),
                source.prompter(),
                bench,
                problems,
                config.prompting,
                config.eval_samples,
                &generation,
                0,
                0,
            )?;
            for r in scores.records {
                if ["pass@1", "format_rate", "mixed_rate", "mean_length"]
                    .contains(&r.metric.as_str())
                {
                    ctx.log(format!("eval/{bench}/{}", r.metric), done as i64, r.value);
                }
            }
        }
    }
    ctx.progress(
        done as f64 / config.steps as f64,
        &format!("step {done}/{}", config.steps),
    )?;
    if done.is_multiple_of(config.checkpoint_every) || done == config.steps {
        source.save(ctx, done as i64, model, Some(optimizer))?;
    }
    Ok(())
}

impl GrpoConfig {
    fn objective(&self) -> ObjectiveConfig {
        ObjectiveConfig {
            loss_type: self.loss_type,
            epsilon_low: self.epsilon_low,
            epsilon_high: self.epsilon_high,
            beta: self.beta,
            kl_ratio_correction: self.kl_ratio_correction,
            max_completion_length: self.max_completion_length,
        }
    }
}

impl StageKind for GrpoConfig {
    const KIND: &'static str = "grpo";
    const INPUTS: &'static [&'static str] = &["model", "world"];
    /// 2: special tokens such as `<eos>` no longer count as English words in language scores.
    /// 3: burn-flex's SIMD and AVX-512 kernels round differently; the update runs each prompt
    /// once under its completions.
    /// 4: a decode step attends over the KV cache in place; sampled tokens round differently.
    const NUMERICS_VERSION: u32 = 4;
    const RUNS_MODELS: bool = true;

    fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = validation::positive(&[
            ("steps", self.steps),
            ("prompts_per_step", self.prompts_per_step),
            ("mu", self.mu),
            ("max_completion_length", self.max_completion_length),
            ("log_every", self.log_every),
            ("checkpoint_every", self.checkpoint_every),
            ("eval_problems", self.eval_problems),
            ("eval_samples", self.eval_samples),
        ]);
        problems.extend(validation::schedule(
            self.lr,
            self.min_lr_ratio,
            self.log_every,
            self.checkpoint_every,
        ));
        problems.extend(validation::sampling(self.temperature, self.top_p));
        problems.extend(validation::operations(
            self.min_operations,
            self.max_operations,
        ));
        let mut bad = |field: &str, reason: String| problems.push((field.to_string(), reason));
        if self.group_size < 2 {
            bad(
                "group_size",
                format!(
                    "must be at least 2 (advantages compare a group), got {}",
                    self.group_size
                ),
            );
        }
        if self.temperature == 0.0 {
            bad(
                "temperature",
                "must be > 0 (RL samples; greedy has no variety)".into(),
            );
        }
        for (field, value) in [
            ("epsilon_low", self.epsilon_low),
            ("epsilon_high", self.epsilon_high),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                bad(field, format!("must be >= 0, got {value}"));
            }
        }
        if self.epsilon_low >= 1.0 {
            bad(
                "epsilon_low",
                "must be < 1 (the ratio's lower clip is 1 - epsilon_low)".into(),
            );
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            bad("beta", format!("must be >= 0, got {}", self.beta));
        }
        if self.languages.is_empty() {
            bad("languages", "needs at least one of \"en\", \"zh\"".into());
        }
        if self.reference_reset_every > 0
            && self.checkpoint_every > 0
            && !self
                .reference_reset_every
                .is_multiple_of(self.checkpoint_every)
        {
            bad(
                "reference_reset_every",
                format!(
                    "must be a multiple of checkpoint_every ({}) so a resumed run finds its reference",
                    self.checkpoint_every
                ),
            );
        }
        problems.extend(validation::nested("optimizer", self.optimizer.validate()));
        problems.extend(validation::nested("rewards", self.rewards.validate()));
        validation::finish(problems)
    }

    fn run(&self, ctx: &mut StageContext) -> Result<(), StageError> {
        run(self, ctx)
    }
}

pub fn run(config: &GrpoConfig, ctx: &mut StageContext) -> Result<(), StageError> {
    match InputModel::of(ctx, "model")? {
        InputModel::Lab(checkpoint) => run_from(config, ctx, &checkpoint),
        InputModel::Hf(hf) => run_from(config, ctx, &hf),
    }
}

/// What turns problems into prompts and tokens into text for a model.
#[derive(Clone, Copy)]
struct Speaker<'a> {
    tokenizer: &'a dyn Tokenizer,
    prompter: &'a dyn Prompter,
}

/// The GRPO loop on the model of `source`, the lab's or a Hugging Face one.
fn run_from<S: ModelSource>(
    config: &GrpoConfig,
    ctx: &mut StageContext,
    source: &S,
) -> Result<(), StageError> {
    let speaker = Speaker {
        tokenizer: source.tokenizer(),
        prompter: source.prompter(),
    };
    let pool = prompt_pool(config, ctx, speaker.prompter, source.max_seq_len())?;
    ctx.log("prompt_pool", 0, pool.len() as f64);
    let eval_sets = eval_sets(config, ctx)?;

    let device = ctx.training_device();
    let plain = ctx.device();
    let mut reference = source.start(&plain)?;
    let (mut model, mut optimizer, start, resumed) =
        checkpointing::resume_or_start_from(ctx, source, &config.optimizer, &device)?;
    if let Some(checkpoint) = resumed {
        if config.reference_reset_every > 0 && start >= config.reference_reset_every {
            // The reference was last reset at a checkpointed step (validated above).
            let (bytes, hash, owner) = (&checkpoint.bytes, &checkpoint.hash, &checkpoint.owner);
            reference = source.restore(bytes, hash, owner, &plain)?.0;
        }
    }

    let mut meter = IntervalMeter::new();
    for step in start..config.steps {
        let started = Instant::now();
        let done = step + 1;
        let log_now = done.is_multiple_of(config.log_every) || done == config.steps;
        let lr = learning_rate(
            step,
            config.steps,
            config.lr,
            config.warmup_steps,
            config.min_lr_ratio,
        );

        // 1. Sample G completions per prompt from the current policy, and score them.
        let policy = model.valid();
        let (batch, sampling) = rollout(config, &policy, speaker, &pool, step);
        let sampling_seconds = started.elapsed().as_secs_f64();
        if config.dynamic_sampling {
            sampling.measure(&mut meter, batch.groups());
        }
        if batch.completions.is_empty() {
            // Every group was filtered out (`dynamic_sampling/groups` is 0): nothing to learn.
            meter.end_step();
            if log_now {
                log_interval(ctx, done, meter.close());
            }
            finish_step(config, ctx, done, &model, &optimizer, source, &eval_sets)?;
            continue;
        }

        // 2. Group-relative advantages.
        let adv = advantages(&batch.rewards, config.group_size, config.scale_rewards);
        let include: Vec<bool> = batch
            .completions
            .iter()
            .map(|c| c.finished || config.overlong != Overlong::Mask)
            .collect();

        // 3. mu optimisation steps on the batch.
        let (next, update) = policy_update(
            config,
            &mut optimizer,
            lr,
            model,
            &policy,
            &reference,
            &batch.prompts,
            &batch.completions,
            &adv.values,
            &include,
        );
        model = next;
        if config.reference_reset_every > 0 && done.is_multiple_of(config.reference_reset_every) {
            reference = model.valid();
        }

        // 4. Record what happened, averaged over the log interval.
        let timing = StepTiming {
            seconds: started.elapsed().as_secs_f64(),
            sampling_seconds,
        };
        measure_step(&mut meter, config, &batch, &adv, &update, lr, timing);
        meter.end_step();
        if log_now {
            log_interval(ctx, done, meter.close());
        }
        if config.trace_every > 0 && (done.is_multiple_of(config.trace_every) || done == 1) {
            trace_step(ctx, config, done, &batch, &adv, speaker.prompter);
        }
        finish_step(config, ctx, done, &model, &optimizer, source, &eval_sets)?;
    }
    Ok(())
}

/// The training problems the run draws its prompts from, in this run's order: those with the
/// configured number of operations, in a language asked for, whose prompt leaves room for a
/// completion.
fn prompt_pool(
    config: &GrpoConfig,
    ctx: &StageContext,
    prompter: &dyn Prompter,
    max_seq_len: usize,
) -> Result<Vec<Problem>, StageError> {
    let train: Vec<Problem> = ctx.input_rows("world", "train")?;
    // A prompt the template cannot put is an error of the stage (the first one is reported),
    // not a panic of a later step.
    let refusal = std::cell::RefCell::new(None);
    let pool = shuffled_problems(
        &train,
        config.min_operations..=config.max_operations,
        |p| {
            if !config.languages.contains(&p.lang) {
                return false;
            }
            match prompter.prompt_ids(config.prompting, &p.question, p.lang) {
                Ok(ids) => ids.len() + 8 < max_seq_len,
                Err(e) => {
                    let mut refusal = refusal.borrow_mut();
                    refusal
                        .get_or_insert_with(|| format!("training problem {:?}: {e}", p.question));
                    false
                }
            }
        },
        config.seed,
        "grpo/prompt-order",
    );
    if let Some(reason) = refusal.into_inner() {
        return Err(StageError::Failed(reason));
    }
    if pool.is_empty() {
        return Err(StageError::Failed(
            "no training problem matches min_operations/max_operations/languages".into(),
        ));
    }
    Ok(pool)
}

/// The benchmarks the periodic evaluation measures (none when it is off).
fn eval_sets(
    config: &GrpoConfig,
    ctx: &StageContext,
) -> Result<Vec<(String, Vec<Problem>)>, StageError> {
    if config.eval_every == 0 {
        return Ok(Vec::new());
    }
    config
        .eval_benchmarks
        .iter()
        .map(|b| {
            let problems: Vec<Problem> = ctx.input_rows("world", &format!("bench/{b}"))?;
            Ok((
                b.clone(),
                problems.into_iter().take(config.eval_problems).collect(),
            ))
        })
        .collect()
}

/// What dynamic sampling did in a step.
struct Sampling {
    /// Groups of the first rollout whose rewards were all equal, before any was replaced.
    first_zero_std_groups: usize,
    /// Extra rollouts drawn to replace them.
    extra_rounds: usize,
}

impl Sampling {
    fn measure(&self, meter: &mut IntervalMeter, groups: usize) {
        meter.add(
            "dynamic_sampling/first_zero_std_groups",
            self.first_zero_std_groups as f64,
        );
        meter.add("dynamic_sampling/extra_rounds", self.extra_rounds as f64);
        meter.add("dynamic_sampling/groups", groups as f64);
    }
}

/// The step's batch: G completions of each of the step's prompts from `policy`, scored. With
/// dynamic sampling (DAPO), groups whose rewards are all equal give no gradient and are
/// replaced by groups of other prompts, drawn from a stream of this step (so a resumed run
/// draws the same), until the batch is full or the rounds run out.
fn rollout<'a, M: CausalLm>(
    config: &GrpoConfig,
    policy: &M,
    speaker: Speaker,
    pool: &'a [Problem],
    step: usize,
) -> (Rollout<'a>, Sampling) {
    let problems: Vec<&Problem> = (0..config.prompts_per_step)
        .map(|i| &pool[(step * config.prompts_per_step + i) % pool.len()])
        .collect();
    let first_sample = (step * config.prompts_per_step * config.group_size) as u64;
    let mut batch = Rollout::sample(config, policy, speaker, problems, config.seed, first_sample);
    let mut sampling = Sampling {
        first_zero_std_groups: batch.groups() - batch.groups_with_signal(),
        extra_rounds: 0,
    };
    if config.dynamic_sampling {
        batch.keep_groups_with_signal();
        while batch.groups() < config.prompts_per_step
            && sampling.extra_rounds < config.dynamic_sampling_rounds
        {
            sampling.extra_rounds += 1;
            let label = format!("grpo/dynamic-sampling/{step}/{}", sampling.extra_rounds);
            let mut rng = Rng::derive(config.seed, &label);
            let more: Vec<&Problem> = (0..config.prompts_per_step)
                .map(|_| &pool[rng.below(pool.len() as u64) as usize])
                .collect();
            let seed = rng.next_u64();
            let mut extra = Rollout::sample(config, policy, speaker, more, seed, first_sample);
            extra.keep_groups_with_signal();
            batch.append(extra);
        }
        batch.truncate_groups(config.prompts_per_step);
    }
    (batch, sampling)
}

/// Wall-clock time of a step, for the `perf/` metrics.
struct StepTiming {
    seconds: f64,
    sampling_seconds: f64,
}

/// Logs an interval's numbers at step `done`.
fn log_interval(ctx: &mut StageContext, done: usize, interval: Interval) {
    for (name, value) in interval.values() {
        ctx.log(name, done as i64, value);
    }
}

/// The step's metrics into the log interval's meter, named as TRL's GRPOTrainer logs them where
/// it has them.
fn measure_step(
    meter: &mut IntervalMeter,
    config: &GrpoConfig,
    batch: &Rollout,
    adv: &Advantages,
    update: &PolicyUpdate,
    lr: f64,
    timing: StepTiming,
) {
    let Rollout {
        problems,
        completions,
        parts,
        rewards,
        ..
    } = batch;
    let prefix = config.prompting.response_prefix();
    let rows = completions.len();
    let n = rows as f64;
    let mean = |f: &dyn Fn(usize) -> f64| (0..rows).map(f).sum::<f64>() / n;
    let reward_mean = mean(&|i| rewards[i]);
    let reward_std =
        (mean(&|i| (rewards[i] - reward_mean).powi(2)) * n / (n - 1.0).max(1.0)).sqrt();
    let lengths: Vec<f64> = completions.iter().map(|c| c.tokens.len() as f64).collect();
    let languages: Vec<_> = completions
        .iter()
        .map(|c| {
            let words = count_words(chain_of_thought(&format!("{prefix}{}", c.text)));
            let lang = problems[c.prompt_index].lang;
            (words.consistency(lang), words.mixed(lang))
        })
        .collect();
    let answers: Vec<Option<i64>> = parts.iter().map(|p| p.answer).collect();
    meter.add("reward", reward_mean);
    meter.add("reward_std", reward_std);
    meter.add("rewards/accuracy/mean", mean(&|i| parts[i].accuracy));
    meter.add("rewards/format/mean", mean(&|i| parts[i].format));
    meter.add("rewards/language/mean", mean(&|i| parts[i].language));
    meter.add(
        "frac_reward_zero_std",
        adv.zero_std_groups as f64 / (rows / config.group_size) as f64,
    );
    meter.add("completions/mean_length", mean(&|i| lengths[i]));
    meter.add(
        "completions/min_length",
        lengths.iter().cloned().fold(f64::INFINITY, f64::min),
    );
    meter.add(
        "completions/max_length",
        lengths.iter().cloned().fold(0.0, f64::max),
    );
    meter.add(
        "completions/clipped_ratio",
        mean(&|i| f64::from(u8::from(!completions[i].finished))),
    );
    meter.add("kl", update.stats.kl_mean);
    meter.add("entropy", update.entropy);
    meter.add("clip_ratio/low_mean", update.stats.clip_ratio_low);
    meter.add("clip_ratio/high_mean", update.stats.clip_ratio_high);
    meter.add("clip_ratio/region_mean", update.stats.clip_ratio_region);
    meter.add("lang/consistency", mean(&|i| languages[i].0));
    meter.add(
        "lang/mixed_rate",
        mean(&|i| f64::from(u8::from(languages[i].1))),
    );
    meter.add(
        "collapse/top_answer_share",
        most_common_answer_share(&answers),
    );
    meter.add("loss", update.loss);
    meter.last("grad_norm", update.grad_norm);
    meter.last("learning_rate", lr);
    meter.add("perf/step_seconds", timing.seconds);
    meter.add("perf/sampling_seconds", timing.sampling_seconds);
    meter.add(
        "perf/tokens_per_second",
        update.scored_tokens as f64 / timing.seconds,
    );
    // Compute budget of this step: tokens sampled plus tokens through the policy's training
    // forward (a run's budget is SUM(tokens/step) × log_every).
    let sampled: usize = completions.iter().map(|c| c.tokens.len()).sum();
    meter.add(
        "tokens/step",
        (sampled + update.trained_positions * config.mu) as f64,
    );
}

/// The first group's completions of the step as traces, with their reward parts.
fn trace_step(
    ctx: &mut StageContext,
    config: &GrpoConfig,
    done: usize,
    batch: &Rollout,
    adv: &Advantages,
    prompter: &dyn Prompter,
) {
    let prefix = config.prompting.response_prefix();
    for (i, c) in batch.completions.iter().enumerate().take(config.group_size) {
        let p = batch.problems[c.prompt_index];
        let parts = &batch.parts[i];
        let words = count_words(chain_of_thought(&format!("{prefix}{}", c.text)));
        ctx.trace(TraceRecord {
            step: done as i64,
            sample: i as i64,
            prompt: prompter.prompt_text(config.prompting, &p.question, p.lang),
            completion: c.text.clone(),
            rewards: TraceRewards {
                accuracy: Some(parts.accuracy),
                format: Some(parts.format),
                language: Some(parts.language),
                total: Some(batch.rewards[i]),
                advantage: Some(adv.values[i]),
            },
            language: LanguageScores::of(&words, p.lang),
            labels: TraceLabels {
                lang: Some(p.lang),
                truth: Some(p.answer),
                answer: parts.answer,
                operations: Some(p.operations),
                finished: Some(c.finished),
                ..Default::default()
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{named_grads, ModelConfig};
    use crate::train::{LossBatch, ScoredRow};

    fn completion(prompt_index: usize, sample_index: usize, tokens: Vec<u32>) -> Completion {
        Completion {
            prompt_index,
            sample_index,
            text: String::new(),
            finished: true,
            logprobs: vec![0.0; tokens.len()],
            tokens,
        }
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn dynamic_sampling_keeps_groups_with_signal_and_renumbers_prompts() {
        let world = crate::world::generate(&crate::world::WorldConfig {
            web_documents: 10,
            train_problems: 4,
            benchmark_size: 2,
            ..crate::world::WorldConfig::default()
        });
        let rollout = |problems: &[usize], rewards: &[f64]| Rollout {
            problems: problems.iter().map(|&i| &world.train[i]).collect(),
            prompts: problems.iter().map(|&i| vec![1, i as u32]).collect(),
            completions: (0..rewards.len())
                .map(|r| completion(r / 2, r % 2, vec![r as u32]))
                .collect(),
            parts: rewards
                .iter()
                .map(|_| score("", "<think>", 1, Lang::En, &RewardConfig::default()))
                .collect(),
            rewards: rewards.to_vec(),
        };
        // Groups of 2: group 0 has signal, group 1 is all 1, group 2 has signal.
        let mut batch = rollout(&[0, 1, 2], &[0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(batch.groups_with_signal(), 2);
        batch.keep_groups_with_signal();
        assert_eq!(batch.groups(), 2);
        assert_eq!(batch.prompts, vec![vec![1, 0], vec![1, 2]]);
        assert_eq!(batch.rewards, vec![0.0, 1.0, 1.0, 0.0]);
        let prompt_of: Vec<usize> = batch.completions.iter().map(|c| c.prompt_index).collect();
        assert_eq!(prompt_of, vec![0, 0, 1, 1]);
        batch.append(rollout(&[3], &[0.5, 0.0]));
        assert_eq!(batch.completions[4].prompt_index, 2);
        assert_eq!(batch.completions[4].tokens, vec![0]);
        batch.truncate_groups(2);
        assert_eq!(batch.groups(), 2);
        assert_eq!(batch.completions.len(), 4);
    }

    #[test]
    fn a_shared_prompt_gives_the_log_probs_and_gradients_of_the_full_sequences() {
        let config = ModelConfig {
            vocab_size: 29,
            d_model: 16,
            n_layers: 2,
            n_heads: 2,
            d_ff: 32,
            max_seq_len: 32,
            init_seed: 3,
            ..ModelConfig::default()
        };
        shared_prompt_matches_full_sequences(&config.init(&Device::flex().autodiff()));
        // The Hugging Face models train through the same cache path (GQA, biases, untied head).
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf");
        for name in ["llama", "qwen2"] {
            let model =
                crate::hf::HfModel::read(&fixtures.join(name), &Device::flex().autodiff()).unwrap();
            shared_prompt_matches_full_sequences(&model);
        }
    }

    /// Log-probs and every parameter's gradient of a group scored through the prompt's shared
    /// cache equal those of the full sequences.
    fn shared_prompt_matches_full_sequences<M: TrainableLm>(model: &M) {
        let prompt = vec![1u32, 7, 9, 4, 12];
        let completions = vec![
            completion(0, 0, vec![5, 6, 7]),
            completion(0, 1, vec![8]),
            completion(0, 2, vec![9, 10, 11, 3]),
        ];
        let include = [true, true, false];
        let part = GroupPart::new(&prompt, &completions, &include, &[0.5, -1.0, 0.5]);
        assert_eq!(part.positions(), 5 + 3 * 3);

        // Full sequences, as a plain layout: prompt + completion, scored on the completion.
        let rows: Vec<ScoredRow> = completions
            .iter()
            .zip(include)
            .map(|(c, included)| ScoredRow {
                tokens: [prompt.clone(), c.tokens.clone()].concat(),
                scored_from: prompt.len(),
                included,
            })
            .collect();
        let full = LossBatch::new(&rows);
        let t = 0.7;

        let shared_model = model.valid().train();
        let device = shared_model.device();
        let shared_logp = part.logprobs(part.logits(&shared_model, t));
        let shared_loss = (shared_logp.clone() * part.mask_tensor(&device)).sum();
        let shared_grads = named_grads(&shared_model, shared_loss.backward());

        let full_model = model.valid().train();
        let logits = CausalLm::forward(&full_model, full.inputs_tensor(&device)) / t;
        let full_logp = token_logprobs(logits, full.targets_tensor(&device));
        let full_loss = (full_logp.clone() * full.mask_tensor(&device)).sum();
        let full_grads = named_grads(&full_model, full_loss.backward());

        // Completion token j of row r is target prompt_len - 1 + j of the full layout.
        let shared = values(shared_logp);
        let full_values = values(full_logp);
        for (r, c) in completions.iter().enumerate() {
            for j in 0..c.tokens.len() {
                let a = shared[r * part.width + j];
                let b = full_values[r * full.width + prompt.len() - 1 + j];
                assert!((a - b).abs() < 1e-5, "row {r} token {j}: {a} vs {b}");
            }
        }
        assert_eq!(shared_grads.len(), full_grads.len());
        for (name, g) in &shared_grads {
            let a = values(g.clone());
            let b = values(full_grads[name].clone());
            let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-6);
            let diff = a
                .iter()
                .zip(&b)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                diff <= 1e-4 * scale,
                "{name}: max diff {diff}, scale {scale}"
            );
        }
    }
}
