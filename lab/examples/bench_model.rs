//! Benchmarks of the model, each figure a ratio against a baseline measured in the same run:
//!
//! - **sgemm peak** of the machine: burn-flex's matmul (512³, f32) on one thread, then on every
//!   thread at once (independent products): the ceiling for the achieved GFLOP/s below;
//! - **training step** at the base spec's size (16 × 128 tokens, forward, backward, AdamW) on one
//!   thread and on every thread (micro-batches of 8 rows), with the CPU utilisation of the
//!   process and the achieved GFLOP/s as a share of the sgemm peak; against **PyTorch eager** on
//!   the same model (`lab/benches/peers/torch_train_step.py`) when the peer venv exists;
//! - **generation**: the KV cache against full re-forward at 128 new tokens;
//! - **GRPO step** (sampling P × G completions of a forced full length, scoring, advantages, the
//!   policy update) against **TRL's `GRPOTrainer`** on CPU at the same settings
//!   (`../shared/peers/trl_grpo_bench.py`), when the peer venv and the script exist.
//!
//! Peers run from `PEER_PYTHON` (default `.peer-venv/bin/python`, made by `just bench-peers`).
//! `bench_model grpo` (or `train`, `generate`) runs only those sections; the sgemm peak always
//! runs, as the training figure's baseline.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;
mod peers;

use peers::{median, peer_python, peer_python_path};

use burn::prelude::*;
use common::{GrpoBench, PretrainStep, GRPO_COMPLETION, GRPO_GROUP, GRPO_PROMPTS, QUESTION};
use lab::generate::{full_reforward_generate, generate, Completion, GenerationConfig};
use lab::model::{AdamW, ModelConfig, Transformer};
use lab::parallel::{self, THREADS_ENV};
use lab::rng::Rng;
use lab::tokenizer::{Tokenizer, WorldTokenizer, BOS_ID};

fn main() {
    // As the `lab` binary runs its stages.
    lab::alloc::keep_freed_memory();
    let sections: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| sections.is_empty() || sections.iter().any(|s| s == name);
    let threads = parallel::threads();
    println!("threads: {threads} ({THREADS_ENV} or every core); kernels single-threaded, work split by item");

    // 1. The machine's sgemm peak with the lab's kernels.
    let peak_one = sgemm_gflops(1);
    let peak_all = sgemm_gflops(threads);
    println!(
        "sgemm 512^3: {peak_one:.1} GFLOP/s on 1 thread, {peak_all:.1} GFLOP/s on {threads} ({:.2}x)",
        peak_all / peak_one
    );

    // 2. The training step at the base size.
    let tokenizer = WorldTokenizer::build(999, [QUESTION]);
    let config = ModelConfig {
        vocab_size: tokenizer.vocab_size(),
        ..ModelConfig::default()
    };
    println!(
        "model: {} parameters, vocab {}, d_model {}, {} layers, {} heads, d_ff {}",
        config.parameter_count(),
        config.vocab_size,
        config.d_model,
        config.n_layers,
        config.n_heads,
        config.d_ff
    );
    if wanted("train") {
        training(&config, threads, peak_all);
    }

    // 3. Generation: cached against full re-forward, 1 prompt x 8 samples, 128 new tokens.
    if wanted("generate") {
        generation_speedup(&config.init(&Device::flex()), &tokenizer);
    }

    // 4. A GRPO step against TRL at the same settings.
    if wanted("grpo") {
        grpo_against_trl(threads);
    }
}

/// The training step at the base size on one thread and on all, and against PyTorch eager.
fn training(config: &ModelConfig, threads: usize, peak_all: f64) {
    let config = config.clone();
    let (batch, seq) = (16usize, 128usize);
    let single = with_threads(1, || train_step_rate(&config, batch, seq));
    let all = with_threads(threads, || train_step_rate(&config, batch, seq));
    println!(
        "training {batch}x{seq}: {:.0} tokens/s on 1 thread, {:.0} tokens/s on {threads} ({:.2}x), CPU {:.0}%",
        single.tokens_per_second,
        all.tokens_per_second,
        all.tokens_per_second / single.tokens_per_second,
        all.cpu_percent
    );
    // Every measurement on all threads counts toward the achieved GFLOP/s (their median), so
    // one slow moment of the shared host does not make the figure.
    let mut rates = vec![all.tokens_per_second];
    // Against PyTorch: this machine's speed drifts by tens of percent over minutes (shared
    // hosts), so the two run in alternation and the ratio is the median of each round's ratio.
    match peer_python() {
        None => println!(
            "training vs PyTorch: peer missing (no {}; `just bench-peers` makes it)",
            peer_python_path().display()
        ),
        Some(python) => {
            let mut ratios = Vec::new();
            let (mut labs, mut torches) = (Vec::new(), Vec::new());
            let mut last_line = String::new();
            for _round in 0..rounds() {
                let lab = with_threads(threads, || train_step_rate(&config, batch, seq));
                rates.push(lab.tokens_per_second);
                match torch_train_rate(&python, &config, batch, seq, threads) {
                    Ok((rate, line)) => {
                        ratios.push(lab.tokens_per_second / rate);
                        labs.push(lab.tokens_per_second);
                        torches.push(rate);
                        last_line = line;
                    }
                    Err(e) => {
                        println!("training vs PyTorch: peer failed: {e}");
                        break;
                    }
                }
            }
            if !ratios.is_empty() {
                let rounds: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
                println!(
                    "training vs PyTorch eager ({threads} threads, same model and batch, {} alternating rounds): lab {:.0} / torch {:.0} tokens/s (medians) = {:.2}x (rounds {})   [{last_line}]",
                    ratios.len(),
                    median(&mut labs),
                    median(&mut torches),
                    median(&mut ratios),
                    rounds.join(", ")
                );
            }
        }
    }
    let flops = config.flops_per_token_training(seq);
    let gflops = flops * median(&mut rates) / 1e9;
    println!(
        "training GFLOP/s: {gflops:.1} achieved (median of {} measurements on {threads} threads) = {:.0}% of the {threads}-thread sgemm peak ({peak_all:.1})",
        rates.len(),
        100.0 * gflops / peak_all
    );
}

/// Alternating rounds of each comparison with a peer: `LAB_BENCH_ROUNDS` (at least 1), 3 by
/// default.
fn rounds() -> usize {
    peers::env_size("LAB_BENCH_ROUNDS", 3).max(1)
}

/// Runs `f` with `LAB_THREADS` set to `threads` (the bench is the only thread of the process).
fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    std::env::set_var(THREADS_ENV, threads.to_string());
    let out = f();
    std::env::remove_var(THREADS_ENV);
    out
}

/// GFLOP/s of `threads` independent 512³ f32 matmuls at once (best of 5 rounds).
fn sgemm_gflops(threads: usize) -> f64 {
    let n = 512usize;
    let device = Device::flex();
    let mut rng = Rng::new(7);
    let values: Vec<f32> = (0..n * n).map(|_| rng.next_f64() as f32 - 0.5).collect();
    let a = Tensor::<2>::from_data(TensorData::new(values.clone(), [n, n]), &device);
    let b = Tensor::<2>::from_data(TensorData::new(values, [n, n]), &device);
    let reps = 4;
    let mut best = f64::INFINITY;
    // The first round warms up the allocator and the clock; the best of the others counts.
    for _ in 0..6 {
        let start = Instant::now();
        parallel::map_ordered_on(threads, vec![(); threads], |_, ()| {
            for _ in 0..reps {
                let c = a.clone().matmul(b.clone());
                let _ = c.into_data();
            }
        });
        best = best.min(start.elapsed().as_secs_f64());
    }
    (threads * reps) as f64 * 2.0 * (n * n * n) as f64 / best / 1e9
}

struct TrainRate {
    tokens_per_second: f64,
    cpu_percent: f64,
}

/// Median tokens/s of the pretrain step (micro-batches of 8 rows) and the process's CPU use.
fn train_step_rate(config: &ModelConfig, batch: usize, seq: usize) -> TrainRate {
    let mut step = PretrainStep::new(config, batch, seq);
    let steps = 6;
    let mut seconds = Vec::new();
    let (mut cpu, mut wall) = (0.0, 0.0);
    for i in 0..=steps {
        let cpu_start = process_cpu_seconds();
        let start = Instant::now();
        step.run();
        if i > 0 {
            // The first step warms up allocations and is not counted.
            let elapsed = start.elapsed().as_secs_f64();
            seconds.push(elapsed);
            wall += elapsed;
            cpu += process_cpu_seconds() - cpu_start;
        }
    }
    TrainRate {
        tokens_per_second: step.tokens() as f64 / median(&mut seconds),
        cpu_percent: 100.0 * cpu / wall,
    }
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`), 0 elsewhere.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

fn generation_speedup(policy: &Transformer, tokenizer: &WorldTokenizer) {
    let mut prompt = vec![BOS_ID];
    prompt.extend(tokenizer.encode(QUESTION));
    let generation = GenerationConfig::sampling(128);
    // Random weights rarely stop early, so both paths generate (nearly) all 128 tokens.
    let time = |f: &dyn Fn() -> Vec<Completion>| {
        let start = Instant::now();
        let out = f();
        let tokens: usize = out.iter().map(|c| c.tokens.len()).sum();
        (tokens, start.elapsed().as_secs_f64())
    };
    let prompts = [prompt];
    let (cached_tokens, cached_seconds) =
        time(&|| generate(policy, tokenizer, &prompts, 8, &generation, 0));
    let (full_tokens, full_seconds) =
        time(&|| full_reforward_generate(policy, tokenizer, &prompts, 8, &generation, 0));
    let cached_rate = cached_tokens as f64 / cached_seconds;
    let full_rate = full_tokens as f64 / full_seconds;
    println!(
        "generation: KV cache {cached_rate:.0} tokens/s = {:.1}x full re-forward ({full_rate:.0} tokens/s), 8 samples x 128 new tokens",
        cached_rate / full_rate
    );
}

/// One GRPO step of the lab against TRL's `GRPOTrainer` at the sizes of [`GrpoBench`].
fn grpo_against_trl(threads: usize) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/trl_grpo_bench.py");
    let trl = match (peer_python(), script.exists()) {
        (Some(python), true) => run_trl(&python, &script, threads),
        (None, _) => Err(format!(
            "peer missing (no {}; `just bench-peers` makes it)",
            peer_python_path().display()
        )),
        (_, false) => Err(format!("peer script missing: {}", script.display())),
    };
    // TRL's prompts are the R1-Zero template in characters; the lab's prompts get the same
    // number of tokens (its longest prompt), so both models run the same sequence lengths.
    let prompt_tokens = trl.as_ref().map(|t| t.longest_prompt).unwrap_or(450);
    let (lab_seconds, sampling_seconds) = lab_grpo_step_seconds(prompt_tokens);
    println!(
        "GRPO step (P={GRPO_PROMPTS}, G={GRPO_GROUP}, {GRPO_COMPLETION} tokens forced, prompts of {prompt_tokens} tokens, dapo, beta 0): lab {lab_seconds:.3} s (median; sampling {sampling_seconds:.3} s)"
    );
    let first = match trl {
        Ok(t) => t,
        Err(e) => {
            println!("GRPO step vs TRL: {e}");
            return;
        }
    };
    // The machine's speed drifts over minutes, so the two alternate, as for training: the
    // ratio is the median of each round's ratio.
    let (mut labs, mut trls, mut ratios) = (vec![lab_seconds], vec![first.median_step], vec![]);
    ratios.push(first.median_step / lab_seconds);
    let mut line = first.line;
    for _round in 1..rounds() {
        let (lab, _) = lab_grpo_step_seconds(prompt_tokens);
        let python = peer_python().expect("the peer ran in the first round");
        match run_trl(&python, &script, threads) {
            Ok(t) => {
                labs.push(lab);
                trls.push(t.median_step);
                ratios.push(t.median_step / lab);
                line = t.line;
            }
            Err(e) => {
                println!("GRPO step vs TRL: peer failed: {e}");
                break;
            }
        }
    }
    let rounds: Vec<String> = ratios.iter().map(|r| format!("{r:.1}")).collect();
    println!(
        "GRPO step vs TRL GRPOTrainer ({threads} threads, {} alternating rounds): TRL {:.3} s / lab {:.3} s (medians) = lab {:.1}x faster (rounds {})   [{line}]",
        ratios.len(),
        median(&mut trls),
        median(&mut labs),
        median(&mut ratios),
        rounds.join(", ")
    );
}

struct TrlResult {
    median_step: f64,
    longest_prompt: usize,
    line: String,
}

fn run_trl(python: &Path, script: &Path, threads: usize) -> Result<TrlResult, String> {
    let output = peers::TrlOutput::run(
        Command::new(python)
            .arg(script)
            .args(["--prompts-per-step", &GRPO_PROMPTS.to_string()])
            .args(["-G", &GRPO_GROUP.to_string()])
            .args(["--max-completion-length", &GRPO_COMPLETION.to_string()])
            .args(["--steps", "4", "--threads", &threads.to_string()])
            .args([
                "--hidden",
                "128",
                "--layers",
                "4",
                "--heads",
                "4",
                "--intermediate",
                "512",
            ])
            .arg("--force-full-length"),
        python,
    )?;
    Ok(TrlResult {
        median_step: output.number("median_step_s")?,
        longest_prompt: output.number("longest_prompt_tokens")?,
        line: output.line,
    })
}

/// Median seconds of the lab's GRPO step at the comparison's sizes (P × G completions of
/// exactly `GRPO_COMPLETION` tokens, dapo, beta 0) on a fresh model, and of its sampling.
fn lab_grpo_step_seconds(prompt_tokens: usize) -> (f64, f64) {
    let GrpoBench {
        tokenizer,
        config,
        grpo,
        prompts,
    } = GrpoBench::new(prompt_tokens);
    let mut model = config.init(&Device::flex().autodiff());
    let mut optimizer = AdamW::new(grpo.optimizer.clone());
    let answers = vec![7; prompts.len()];
    peers::timed_grpo_steps(
        &mut model,
        &mut optimizer,
        &grpo,
        &tokenizer,
        &prompts,
        &answers,
        "<think>",
        4,
    )
}

fn torch_train_rate(
    python: &Path,
    config: &ModelConfig,
    batch: usize,
    seq: usize,
    threads: usize,
) -> Result<(f64, String), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/torch_train_step.py");
    let out = Command::new(python)
        .arg(&script)
        .args(["--vocab", &config.vocab_size.to_string()])
        .args(["--d-model", &config.d_model.to_string()])
        .args(["--layers", &config.n_layers.to_string()])
        .args(["--heads", &config.n_heads.to_string()])
        .args(["--d-ff", &config.d_ff.to_string()])
        .args(["--batch", &batch.to_string(), "--seq", &seq.to_string()])
        .args(["--threads", &threads.to_string()])
        .output()
        .map_err(|e| format!("could not start {}: {e}", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with("TORCH_TRAIN"))
        .ok_or_else(|| {
            format!(
                "no TORCH_TRAIN line: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )
        })?;
    let rate = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("tokens_per_second="))
        .and_then(|v| v.parse().ok())
        .ok_or("no tokens_per_second")?;
    Ok((rate, line.to_string()))
}
