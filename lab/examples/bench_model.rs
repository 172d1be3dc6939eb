//! Benchmarks of the model at the base spec's size: training throughput (tokens/s and achieved
//! GFLOP/s of a full step: forward, backward, AdamW) and generation with the KV cache against
//! full re-forward of the whole sequence for every token, at 128 new tokens. Figures are ratios
//! against a baseline measured in the same run where one exists.

use std::time::Instant;

use burn::prelude::*;
use lab::generate::{full_reforward_generate, generate, GenerationConfig};
use lab::model::{token_logprobs, tokens_tensor, AdamW, AdamWConfig, ModelConfig};
use lab::rng::Rng;
use lab::tokenizer::{Tokenizer, WorldTokenizer, BOS_ID};

fn main() {
    let tokenizer = WorldTokenizer::build(
        999,
        ["Tom had 3 apples . He got 4 more . How many apples does he have ?"],
    );
    let config = ModelConfig {
        vocab_size: tokenizer.vocab_size(),
        ..ModelConfig::default()
    };
    println!(
        "model: {} parameters, vocab {}, d_model {}, {} layers",
        config.parameter_count(),
        config.vocab_size,
        config.d_model,
        config.n_layers
    );

    // Training: the base spec's batch (16 x 128 tokens).
    let device = Device::flex().autodiff();
    let mut model = config.init(&device);
    let mut optimizer = AdamW::new(AdamWConfig::default());
    let (batch, seq) = (16usize, 128usize);
    let mut rng = Rng::new(1);
    let rows: Vec<Vec<u32>> = (0..batch)
        .map(|_| {
            (0..=seq)
                .map(|_| rng.below(config.vocab_size as u64) as u32)
                .collect()
        })
        .collect();
    let inputs: Vec<Vec<u32>> = rows.iter().map(|r| r[..seq].to_vec()).collect();
    let targets: Vec<Vec<u32>> = rows.iter().map(|r| r[1..].to_vec()).collect();
    let steps = 5;
    let mut seconds = 0.0;
    for step in 0..=steps {
        let start = Instant::now();
        let logits = model.forward(tokens_tensor(&inputs, &device));
        let loss = -token_logprobs(logits, tokens_tensor(&targets, &device)).mean();
        let _: f32 = loss.clone().into_scalar();
        model = optimizer.step(1e-3, model, loss.backward()).0;
        if step > 0 {
            // The first step warms up allocations and is not counted.
            seconds += start.elapsed().as_secs_f64();
        }
    }
    let tokens_per_second = (steps * batch * seq) as f64 / seconds;
    let gflops = config.flops_per_token_training(seq) * tokens_per_second / 1e9;
    println!(
        "training: {tokens_per_second:.0} tokens/s, {gflops:.2} GFLOP/s achieved ({:.3} s per step of {batch} x {seq})",
        seconds / steps as f64
    );

    // Generation: 1 prompt x 8 samples, 128 new tokens, cached vs full re-forward.
    let policy = model.valid();
    let mut prompt = vec![BOS_ID];
    prompt.extend(
        tokenizer.encode("Tom had 3 apples . He got 4 more . How many apples does he have ?"),
    );
    let generation = GenerationConfig {
        max_new_tokens: 128,
        temperature: 1.0,
        top_p: 1.0,
        seed: 0,
    };
    // Random weights rarely stop early, so both paths generate (nearly) all 128 tokens.
    let time = |f: &dyn Fn() -> Vec<lab::generate::Completion>| {
        let start = Instant::now();
        let out = f();
        let tokens: usize = out.iter().map(|c| c.tokens.len()).sum();
        (tokens, start.elapsed().as_secs_f64())
    };
    let prompts = [prompt];
    let (cached_tokens, cached_seconds) =
        time(&|| generate(&policy, &tokenizer, &prompts, 8, &generation, 0));
    let (full_tokens, full_seconds) =
        time(&|| full_reforward_generate(&policy, &tokenizer, &prompts, 8, &generation, 0));
    let cached_rate = cached_tokens as f64 / cached_seconds;
    let full_rate = full_tokens as f64 / full_seconds;
    println!(
        "generation: KV cache {cached_rate:.0} tokens/s = {:.1}x full re-forward ({full_rate:.0} tokens/s), 8 samples x 128 new tokens",
        cached_rate / full_rate
    );
}
