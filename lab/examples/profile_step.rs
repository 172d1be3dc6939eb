//! A steady loop of one workload, for profilers (`perf record`, `valgrind --tool=callgrind`):
//! `profile_step train [steps]` runs the base size's pretrain step (16 × 128 tokens, micro-batches
//! of 8), `profile_step generate [rounds]` samples 8 × 128 tokens with the KV cache and
//! `profile_step rollout [rounds]` samples GRPO's rollout at the TRL comparison's sizes and
//! `profile_step update [rounds]` runs GRPO's policy update on one such rollout.
//! `LAB_THREADS=1` keeps the profile on one thread.

mod common;

use burn::prelude::*;
use common::{random_prompts, GrpoBench, PretrainStep, GRPO_COMPLETION, GRPO_GROUP, QUESTION};
use lab::generate::{generate, GenerationConfig};
use lab::model::{AdamW, ModelConfig};
use lab::stages::grpo::policy_update;
use lab::tokenizer::{Tokenizer, WorldTokenizer, BOS_ID};

fn main() {
    // As the `lab` binary runs its stages.
    lab::alloc::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("train");
    let count: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
    let tokenizer = WorldTokenizer::build(999, [QUESTION]);
    let config = ModelConfig {
        vocab_size: tokenizer.vocab_size(),
        ..ModelConfig::default()
    };
    match what {
        "train" => {
            let mut step = PretrainStep::new(&config, 16, 128);
            for _ in 0..count {
                step.run();
            }
            eprintln!("{count} steps of {} tokens", step.tokens());
        }
        "generate" => {
            let policy = config.init(&Device::flex());
            let mut prompt = vec![BOS_ID];
            prompt.extend(tokenizer.encode(QUESTION));
            let generation = GenerationConfig::sampling(128);
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
            let prompts = random_prompts(8, 516, config.vocab_size);
            let generation = GenerationConfig::sampling(64);
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
        "update" => {
            // GRPO's policy update at the TRL comparison's sizes, on one fixed rollout.
            let bench = GrpoBench::new(516);
            let device = Device::flex().autodiff();
            let mut model = bench.config.init(&device);
            let mut optimizer = AdamW::new(bench.grpo.optimizer.clone());
            let policy = model.valid();
            let generation = GenerationConfig::sampling(GRPO_COMPLETION);
            let completions = generate(
                &policy,
                &bench.tokenizer,
                &bench.prompts,
                GRPO_GROUP,
                &generation,
                0,
            );
            let advantages: Vec<f64> = (0..completions.len())
                .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
                .collect();
            let include = vec![true; completions.len()];
            for _ in 0..count {
                let (next, _) = policy_update(
                    &bench.grpo,
                    &mut optimizer,
                    1e-6,
                    model,
                    &policy,
                    &policy,
                    &bench.prompts,
                    &completions,
                    &advantages,
                    &include,
                );
                model = next;
            }
        }
        other => panic!("unknown workload {other:?}: train, generate, rollout or update"),
    }
}
