//! A steady loop of one workload, for profilers (`perf record`, `valgrind --tool=callgrind`):
//! `profile_step train [steps]` runs the base size's pretrain step (16 × 128 tokens, micro-batches
//! of 8), `profile_step generate [rounds]` samples 8 × 128 tokens with the KV cache and
//! `profile_step rollout [rounds]` samples GRPO's rollout at the TRL comparison's sizes.
//! `LAB_THREADS=1` keeps the profile on one thread.

use burn::prelude::*;
use lab::generate::{generate, GenerationConfig};
use lab::model::{AdamW, AdamWConfig, ModelConfig};
use lab::rng::Rng;
use lab::tokenizer::{Tokenizer, WorldTokenizer, BOS_ID};
use lab::train::{accumulate, micro_batches, next_token_loss};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("train");
    let count: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
    let text = "Tom had 3 apples . He got 4 more . How many apples does he have ?";
    let tokenizer = WorldTokenizer::build(999, [text]);
    let config = ModelConfig {
        vocab_size: tokenizer.vocab_size(),
        ..ModelConfig::default()
    };
    match what {
        "train" => {
            let device = Device::flex().autodiff();
            let mut model = config.init(&device);
            let mut optimizer = AdamW::new(AdamWConfig::default());
            let (batch, seq) = (16, 128);
            let mut rng = Rng::new(1);
            let rows: Vec<Vec<u32>> = (0..batch)
                .map(|_| {
                    (0..=seq)
                        .map(|_| rng.below(config.vocab_size as u64) as u32)
                        .collect()
                })
                .collect();
            let parts = micro_batches(batch, 8);
            for _ in 0..count {
                let result = accumulate(&model, parts.len(), |replica, i| {
                    (
                        next_token_loss(replica, &rows[parts[i].clone()], (batch * seq) as f64),
                        (),
                    )
                });
                model = optimizer.step_named(1e-3, model, result.grads).0;
            }
        }
        "generate" => {
            let policy = config.init(&Device::flex());
            let mut prompt = vec![BOS_ID];
            prompt.extend(tokenizer.encode(text));
            let generation = GenerationConfig {
                max_new_tokens: 128,
                temperature: 1.0,
                top_p: 1.0,
                seed: 0,
            };
            for round in 0..count {
                let _ = generate(
                    &policy,
                    &tokenizer,
                    &[prompt.clone()],
                    8,
                    &generation,
                    round as u64 * 8,
                );
            }
        }
        "rollout" => {
            // GRPO's rollout at the TRL comparison's sizes: 8 prompts of 516 tokens, 8 samples
            // each, 64 new tokens.
            let config = ModelConfig {
                max_seq_len: 600,
                ..config
            };
            let policy = config.init(&Device::flex());
            let mut rng = Rng::new(3);
            let prompts: Vec<Vec<u32>> = (0..8)
                .map(|_| {
                    let mut p = vec![BOS_ID];
                    p.extend((1..516).map(|_| 4 + rng.below(config.vocab_size as u64 - 4) as u32));
                    p
                })
                .collect();
            let generation = GenerationConfig {
                max_new_tokens: 64,
                temperature: 1.0,
                top_p: 1.0,
                seed: 0,
            };
            for round in 0..count {
                let _ = generate(
                    &policy,
                    &tokenizer,
                    &prompts,
                    8,
                    &generation,
                    round as u64 * 64,
                );
            }
        }
        other => panic!("unknown workload {other:?}: train, generate or rollout"),
    }
}
