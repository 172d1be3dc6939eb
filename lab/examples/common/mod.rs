//! Workloads shared by the benchmark and the profiling loop, so both measure the same thing.

use burn::prelude::*;
use lab::grpo::{LossType, ScaleRewards};
use lab::model::{AdamW, AdamWConfig, ModelConfig, Transformer};
use lab::rng::Rng;
use lab::stages::grpo::GrpoConfig;
use lab::tokenizer::BOS_ID;
use lab::tokenizer::{Tokenizer, WorldTokenizer};
use lab::train::{accumulate, micro_batches, next_token_loss};

/// The question the benchmarks' tokenizer is built on and prompted with.
pub const QUESTION: &str = "Tom had 3 apples . He got 4 more . How many apples does he have ?";

/// The pretrain stage's step on fixed random windows: micro-batches of 8 rows, AdamW.
pub struct PretrainStep {
    model: Transformer,
    optimizer: AdamW,
    windows: Vec<Vec<u32>>,
    tokens: usize,
}

impl PretrainStep {
    /// A fresh model of `config` on the autodiff CPU device and `batch` windows of `seq + 1`.
    pub fn new(config: &ModelConfig, batch: usize, seq: usize) -> PretrainStep {
        let mut rng = Rng::new(1);
        let windows = (0..batch)
            .map(|_| {
                (0..=seq)
                    .map(|_| rng.below(config.vocab_size as u64) as u32)
                    .collect()
            })
            .collect();
        PretrainStep {
            model: config.init(&Device::flex().autodiff()),
            optimizer: AdamW::new(AdamWConfig::default()),
            windows,
            tokens: batch * seq,
        }
    }

    /// Tokens trained on per step.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// One step: forward, backward and AdamW over the micro-batches.
    pub fn run(&mut self) {
        let parts = micro_batches(self.windows.len(), 8);
        let total = self.tokens as f64;
        let windows = &self.windows;
        let result = accumulate(&self.model, parts.len(), |replica, i| {
            (
                next_token_loss(replica, &windows[parts[i].clone()], total),
                (),
            )
        });
        let model = self.model.clone();
        self.model = self.optimizer.step_named(1e-3, model, result.grads).0;
    }
}

/// `count` prompts of `len` random tokens after `<bos>` (ids from 4 on: no special token), as
/// long as the TRL comparison's prompts.
pub fn random_prompts(count: usize, len: usize, vocab: usize) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(3);
    (0..count)
        .map(|_| {
            let mut p = vec![BOS_ID];
            p.extend((1..len).map(|_| 4 + rng.below(vocab as u64 - 4) as u32));
            p
        })
        .collect()
}

/// A tokenizer with no stop token: `<eos>` is an id past the vocabulary and `</answer>` is
/// another, so no completion stops (not by token, not by text) and every one runs to
/// `max_new_tokens`, like TRL's `min_new_tokens = max_completion_length` (its
/// `--force-full-length`).
pub struct NoStop<T>(pub T);

impl<T: Tokenizer> Tokenizer for NoStop<T> {
    fn encode(&self, text: &str) -> Vec<u32> {
        self.0.encode(text)
    }
    fn decode(&self, ids: &[u32]) -> String {
        self.0.decode(ids)
    }
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn token_id(&self, token: &str) -> Option<u32> {
        if token == "</answer>" {
            Some(self.0.vocab_size() as u32 + 1)
        } else {
            self.0.token_id(token)
        }
    }
    fn token(&self, id: u32) -> &str {
        self.0.token(id)
    }
    fn bos_id(&self) -> u32 {
        self.0.bos_id()
    }
    fn eos_id(&self) -> u32 {
        self.0.vocab_size() as u32
    }
    fn pad_id(&self) -> u32 {
        self.0.pad_id()
    }
    fn unk_id(&self) -> u32 {
        self.0.unk_id()
    }
}

/// The GRPO settings of the comparisons with TRL's `GRPOTrainer`: `prompts` × `group`
/// completions of `tokens` tokens, sampled at temperature 1 without top-p, the dapo loss, no
/// reference model (beta 0), one optimisation step per batch.
pub fn bench_grpo_config(prompts: usize, group: usize, tokens: usize) -> GrpoConfig {
    GrpoConfig {
        prompts_per_step: prompts,
        group_size: group,
        max_completion_length: tokens,
        loss_type: LossType::Dapo,
        scale_rewards: ScaleRewards::Group,
        beta: 0.0,
        mu: 1,
        temperature: 1.0,
        top_p: 1.0,
        ..GrpoConfig::default()
    }
}

/// Prompts, completions and group of the GRPO comparison with TRL (`../shared/peers/trl_grpo_bench.py`).
pub const GRPO_PROMPTS: usize = 8;
pub const GRPO_GROUP: usize = 8;
pub const GRPO_COMPLETION: usize = 64;

/// The GRPO step of the TRL comparison: the base model's size with a vocabulary of the
/// templates, P × G completions forced to full length, DAPO loss, no KL term.
pub struct GrpoBench {
    pub tokenizer: NoStop<WorldTokenizer>,
    pub config: ModelConfig,
    pub grpo: GrpoConfig,
    pub prompts: Vec<Vec<u32>>,
}

impl GrpoBench {
    pub fn new(prompt_tokens: usize) -> GrpoBench {
        let tokenizer = NoStop(WorldTokenizer::build(
            99,
            [
                lab::evaluation::template_texts().join(" ").as_str(),
                QUESTION,
            ],
        ));
        let config = ModelConfig {
            vocab_size: tokenizer.vocab_size(),
            max_seq_len: prompt_tokens + GRPO_COMPLETION,
            ..ModelConfig::default()
        };
        let grpo = bench_grpo_config(GRPO_PROMPTS, GRPO_GROUP, GRPO_COMPLETION);
        let prompts = random_prompts(GRPO_PROMPTS, prompt_tokens, config.vocab_size);
        GrpoBench {
            tokenizer,
            config,
            grpo,
            prompts,
        }
    }
}
