//! The `pretrain` stage: next-token training of the base model on the world's web corpus.
//!
//! Input `world`: a world experiment (its `web` corpus, and all its text for the vocabulary).
//! Documents are shuffled once by `data_seed`, wrapped in `<bos> … <eos>`, concatenated and cut
//! into windows of `seq_len + 1` tokens; step `s` takes windows `s·B … s·B + B - 1` (cycling), so
//! a resumed run sees exactly the batches an uninterrupted one would.

use serde::{Deserialize, Serialize};

use super::{checkpointing, validation, StageKind};
use super::{StageContext, StageError};
use crate::evaluation::template_texts;
use crate::model::{AdamWConfig, ModelConfig};
use crate::rng::Rng;
use crate::tokenizer::{Tokenizer, WorldTokenizer};
use crate::train::{accumulate, learning_rate, micro_batches, next_token_loss, IntervalMeter};
use crate::world::{Problem, WebDocument};

/// Settings of a pretraining run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    /// Model sizes. `vocab_size` is left at 0: it comes from the tokenizer built on the world.
    pub model: ModelConfig,
    pub optimizer: AdamWConfig,
    pub steps: usize,
    pub batch_size: usize,
    /// Rows per micro-batch: the batch's gradient is the sum of its micro-batches', computed
    /// on every core (see `train`). Changes the rounding, so it is part of the id; the number
    /// of threads is not.
    pub micro_batch_size: usize,
    /// Tokens per training row (at most `model.max_seq_len`).
    pub seq_len: usize,
    /// Peak learning rate, reached after `warmup_steps` of linear warmup; cosine decay to
    /// `lr · min_lr_ratio` at the last step.
    pub lr: f64,
    pub warmup_steps: usize,
    pub min_lr_ratio: f64,
    /// Seed of the document order.
    pub data_seed: u64,
    pub log_every: usize,
    /// Checkpoint period (a multiple of `log_every`); the last step is always checkpointed.
    pub checkpoint_every: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            model: ModelConfig::default(),
            optimizer: AdamWConfig::default(),
            steps: 2000,
            batch_size: 16,
            micro_batch_size: 8,
            seq_len: 128,
            lr: 2e-3,
            warmup_steps: 100,
            min_lr_ratio: 0.1,
            data_seed: 0,
            log_every: 10,
            checkpoint_every: 500,
        }
    }
}

/// The world tokenizer over every text a world experiment holds, plus the prompt templates.
pub fn world_tokenizer(ctx: &StageContext, role: &str) -> Result<WorldTokenizer, StageError> {
    let web: Vec<WebDocument> = ctx.input_rows(role, "web")?;
    let train: Vec<Problem> = ctx.input_rows(role, "train")?;
    let mut texts: Vec<String> = web.into_iter().map(|d| d.text).collect();
    for p in train {
        texts.push(p.question);
        texts.push(p.solution);
    }
    for name in crate::world::Difficulty::ALL
        .iter()
        .flat_map(|d| crate::world::Lang::ALL.map(|l| format!("{}-{}", d.name(), l.code())))
    {
        let problems: Vec<Problem> = ctx.input_rows(role, &format!("bench/{name}"))?;
        for p in problems {
            texts.push(p.question);
            texts.push(p.solution);
        }
    }
    texts.extend(template_texts());
    let max_number = max_number_in(&texts);
    Ok(WorldTokenizer::build(max_number, texts))
}

/// The largest number written in `texts` (the world keeps them below its `max_number`).
fn max_number_in(texts: &[String]) -> u32 {
    texts
        .iter()
        .flat_map(|t| crate::world::split_tokens(t))
        .filter_map(|tok| tok.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

/// The packed token windows of the corpus.
fn training_windows(
    docs: &[WebDocument],
    tokenizer: &WorldTokenizer,
    seq_len: usize,
    data_seed: u64,
) -> Vec<Vec<u32>> {
    let mut order: Vec<usize> = (0..docs.len()).collect();
    Rng::derive(data_seed, "pretrain/document-order").shuffle(&mut order);
    let mut stream = Vec::new();
    for i in order {
        stream.push(tokenizer.bos_id());
        stream.extend(tokenizer.encode(&docs[i].text));
        stream.push(tokenizer.eos_id());
    }
    stream
        .chunks_exact(seq_len + 1)
        .map(|w| w.to_vec())
        .collect()
}

impl StageKind for PretrainConfig {
    const KIND: &'static str = "pretrain";
    const INPUTS: &'static [&'static str] = &["world"];
    /// 2: burn-flex's SIMD and AVX-512 kernels round differently; a training step sums its
    /// micro-batches' gradients.
    const NUMERICS_VERSION: u32 = 2;
    const RUNS_MODELS: bool = true;

    fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        if self.model.vocab_size != 0 {
            problems.push((
                "model.vocab_size".into(),
                "is set from the world's tokenizer; leave it out".into(),
            ));
        }
        let sized = ModelConfig {
            vocab_size: 1,
            ..self.model.clone()
        };
        problems.extend(validation::nested("model", sized.validate()));
        problems.extend(validation::nested("optimizer", self.optimizer.validate()));
        problems.extend(validation::positive(&[
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("micro_batch_size", self.micro_batch_size),
            ("seq_len", self.seq_len),
            ("log_every", self.log_every),
            ("checkpoint_every", self.checkpoint_every),
        ]));
        if self.seq_len > self.model.max_seq_len {
            problems.push((
                "seq_len".into(),
                format!(
                    "{} exceeds model.max_seq_len {}",
                    self.seq_len, self.model.max_seq_len
                ),
            ));
        }
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

pub fn run(config: &PretrainConfig, ctx: &mut StageContext) -> Result<(), StageError> {
    let tokenizer = world_tokenizer(ctx, "world")?;
    let docs: Vec<WebDocument> = ctx.input_rows("world", "web")?;
    let windows = training_windows(&docs, &tokenizer, config.seq_len, config.data_seed);
    if windows.len() < config.batch_size {
        return Err(StageError::Failed(format!(
            "the corpus makes {} windows of {} tokens, fewer than one batch of {}",
            windows.len(),
            config.seq_len + 1,
            config.batch_size
        )));
    }
    let model_config = ModelConfig {
        vocab_size: tokenizer.vocab_size(),
        ..config.model.clone()
    };
    ctx.log("vocab_size", 0, tokenizer.vocab_size() as f64);
    ctx.log("parameters", 0, model_config.parameter_count() as f64);
    ctx.log("corpus_windows", 0, windows.len() as f64);

    let device = ctx.training_device();
    let (mut model, mut optimizer, start, _) =
        checkpointing::resume_or_start(ctx, &config.optimizer, &device, || {
            Ok(model_config.init(&device))
        })?;

    let flops_per_token = model_config.flops_per_token_training(config.seq_len);
    let mut meter = IntervalMeter::new();
    for step in start..config.steps {
        let lr = learning_rate(
            step,
            config.steps,
            config.lr,
            config.warmup_steps,
            config.min_lr_ratio,
        );
        let rows: Vec<&[u32]> = (0..config.batch_size)
            .map(|i| windows[(step * config.batch_size + i) % windows.len()].as_slice())
            .collect();
        // Each micro-batch contributes its tokens' share of the step's mean loss.
        let total_tokens = (config.batch_size * config.seq_len) as f64;
        let parts = micro_batches(rows.len(), config.micro_batch_size);
        let step_result = accumulate(&model, parts.len(), |replica, i| {
            (
                next_token_loss(replica, &rows[parts[i].clone()], total_tokens),
                (),
            )
        });
        meter.add("loss", step_result.loss);
        let (next, stats) = optimizer.step_named(lr, model, step_result.grads);
        model = next;
        meter.last("learning_rate", lr);
        meter.last("grad_norm", stats.grad_norm);
        meter.end_step();

        let done = step + 1;
        if done % config.log_every == 0 || done == config.steps {
            let interval = meter.close();
            let seconds = interval.seconds;
            let tokens = (interval.steps * config.batch_size * config.seq_len) as f64;
            let step_id = done as i64;
            for (name, value) in interval.values() {
                ctx.log(name, step_id, value);
            }
            ctx.log(
                "tokens",
                step_id,
                (done * config.batch_size * config.seq_len) as f64,
            );
            ctx.log("perf/tokens_per_second", step_id, tokens / seconds);
            ctx.log(
                "perf/gflops_per_second",
                step_id,
                tokens * flops_per_token / seconds / 1e9,
            );
            ctx.log(
                "perf/step_seconds",
                step_id,
                seconds / interval.steps as f64,
            );
            ctx.progress(
                done as f64 / config.steps as f64,
                &format!("step {done}/{}", config.steps),
            )?;
        }
        if done % config.checkpoint_every == 0 || done == config.steps {
            checkpointing::save(ctx, done as i64, &model, Some(&optimizer), &tokenizer)?;
        }
    }
    if start >= config.steps {
        // Resumed after the last checkpoint was written: nothing left to train.
        ctx.progress(1.0, "done")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_fields() {
        let bad = PretrainConfig {
            seq_len: 1000,
            checkpoint_every: 15,
            ..PretrainConfig::default()
        };
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert!(fields.contains(&"seq_len".to_string()));
        assert!(fields.contains(&"checkpoint_every".to_string()));
        let with_vocab = PretrainConfig {
            model: ModelConfig {
                vocab_size: 5,
                ..ModelConfig::default()
            },
            ..PretrainConfig::default()
        };
        assert_eq!(with_vocab.validate().unwrap_err()[0].0, "model.vocab_size");
    }
}
