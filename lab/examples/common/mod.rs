//! Workloads shared by the benchmark and the profiling loop, so both measure the same thing.

use burn::prelude::*;
use lab::model::{AdamW, AdamWConfig, ModelConfig, Transformer};
use lab::rng::Rng;
use lab::tokenizer::BOS_ID;
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
