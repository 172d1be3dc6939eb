//! GRPO on a real model, side by side with TRL: the lab's GRPO step (sampling P × G completions
//! of a forced full length, scoring, group advantages, one policy update with the dapo loss and
//! beta 0, as the `grpo` stage runs it) on a Hugging Face model directory, against TRL's
//! `GRPOTrainer` on CPU on the same directory with the same prompt texts and settings
//! (`lab/benches/peers/trl_grpo_hf.py`, from `PEER_PYTHON`, default `.peer-venv/bin/python`).
//!
//! `bench_hf [DIR]`: DIR defaults to `.real-models/smollm2` (SmolLM2-135M-Instruct, made by
//! `just test-real-model`). `LAB_BENCH_P` (prompts per step, 2), `LAB_BENCH_G` (group size, 4),
//! `LAB_BENCH_TOKENS` (completion length, 32) set the sizes. The two alternate over rounds, and
//! the ratio is the median of the rounds' ratios, since this machine's speed drifts.

use std::path::{Path, PathBuf};
use std::process::Command;

// Only the stop-less tokenizer and the GRPO settings of the shared workloads are used here.
#[allow(dead_code)]
mod common;
mod peers;

use burn::prelude::*;
use common::NoStop;
use lab::evaluation::{Prompter, Prompting};
use lab::hf::{HfBundle, HfModel};
use lab::model::AdamW;
use lab::world::Lang;

/// Word problems of the world's kind, asked through the R1-Zero template.
const QUESTIONS: [(&str, i64); 4] = [
    (
        "Tom had 3 apples. He got 4 more. How many apples does he have?",
        7,
    ),
    (
        "Anna has 12 pencils. She gives 5 to a friend. How many pencils are left?",
        7,
    ),
    (
        "A box holds 6 rows of 4 eggs. How many eggs are in the box?",
        24,
    ),
    (
        "Mia shares 20 stickers equally among 4 friends. How many does each get?",
        5,
    ),
];

fn main() {
    lab::alloc::keep_freed_memory();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".real-models/smollm2"));
    if !dir.join("config.json").exists() {
        println!(
            "GRPO on a real model: no model at {} (`just test-real-model` makes SmolLM2-135M there)",
            dir.display()
        );
        return;
    }
    let (p, g, tokens) = (
        peers::env_size("LAB_BENCH_P", 2),
        peers::env_size("LAB_BENCH_G", 4),
        peers::env_size("LAB_BENCH_TOKENS", 32),
    );
    let threads = lab::parallel::threads();
    let bundle = HfBundle::read(&dir, &Device::flex()).expect("the model directory reads");
    let questions: Vec<(&str, i64)> = (0..p).map(|i| QUESTIONS[i % QUESTIONS.len()]).collect();
    let prompts: Vec<Vec<u32>> = questions
        .iter()
        .map(|(q, _)| bundle.prompt_ids(Prompting::R1Zero, q, Lang::En).unwrap())
        .collect();
    let texts: Vec<String> = questions
        .iter()
        .map(|(q, _)| bundle.prompt_text(Prompting::R1Zero, q, Lang::En))
        .collect();
    let prompt_file =
        std::env::temp_dir().join(format!("bench_hf_prompts.{}.json", std::process::id()));
    std::fs::write(&prompt_file, serde_json::to_string(&texts).unwrap()).unwrap();
    println!(
        "model: {} ({} parameters); P={p}, G={g}, {tokens} tokens forced, prompts of up to {} tokens, dapo, beta 0, {threads} threads",
        dir.display(),
        bundle.model.config.parameters(),
        prompts.iter().map(Vec::len).max().unwrap_or(0)
    );
    let trained = HfModel::read(&dir, &Device::flex().autodiff()).expect("the model reads");
    let HfBundle { tokenizer, .. } = bundle;
    let tokenizer = NoStop(tokenizer);
    let grpo = common::bench_grpo_config(p, g, tokens);
    let mut model = trained;
    let mut optimizer = AdamW::new(grpo.optimizer.clone());
    let answers: Vec<i64> = questions.iter().map(|(_, answer)| *answer).collect();
    let mut lab_round = || {
        peers::timed_grpo_steps(
            &mut model,
            &mut optimizer,
            &grpo,
            &tokenizer,
            &prompts,
            &answers,
            "",
            3,
        )
    };
    let script = root.join("lab/benches/peers/trl_grpo_hf.py");
    let python = peers::peer_python();
    let rounds = peers::env_size("LAB_BENCH_ROUNDS", 2);
    let (mut labs, mut trls, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (lab, sampling) = lab_round();
        println!("round {round}: lab {lab:.2} s a step (sampling {sampling:.2} s)");
        labs.push(lab);
        let Some(python) = &python else {
            println!(
                "TRL: peer missing (no {}; `just bench-peers` makes it)",
                peers::peer_python_path().display()
            );
            continue;
        };
        match run_trl(python, &script, &dir, &prompt_file, (p, g, tokens), threads) {
            Ok((trl, line)) => {
                println!("round {round}: TRL {trl:.2} s a step   [{line}]");
                trls.push(trl);
                ratios.push(trl / lab);
            }
            Err(e) => println!("TRL: {e}"),
        }
    }
    std::fs::remove_file(&prompt_file).ok();
    let lab = peers::median(&mut labs);
    if ratios.is_empty() {
        println!("GRPO step on {}: lab {lab:.2} s (median)", dir.display());
        return;
    }
    let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "GRPO step on {} vs TRL GRPOTrainer ({threads} threads, {} alternating rounds): TRL {:.2} s / lab {lab:.2} s (medians) = lab {:.2}x faster (rounds {})",
        dir.display(),
        ratios.len(),
        peers::median(&mut trls),
        peers::median(&mut ratios),
        shown.join(", ")
    );
}

/// TRL's median seconds a step, and its summary line.
fn run_trl(
    python: &Path,
    script: &Path,
    dir: &Path,
    prompts: &Path,
    (p, g, tokens): (usize, usize, usize),
    threads: usize,
) -> Result<(f64, String), String> {
    let output = peers::TrlOutput::run(
        Command::new(python)
            .arg(script)
            .arg("--model")
            .arg(dir)
            .arg("--prompts")
            .arg(prompts)
            .args(["--prompts-per-step", &p.to_string(), "-G", &g.to_string()])
            .args(["--max-completion-length", &tokens.to_string()])
            .args(["--steps", "3", "--threads", &threads.to_string()]),
        python,
    )?;
    Ok((output.number("median_step_s")?, output.line))
}
