//! The side-by-side comparisons of the benchmarks: where the peers' Python is, running a peer
//! (PyTorch, TRL) and reading what it prints, and the lab's side of the GRPO comparison.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lab::causal_lm::TrainableLm;
use lab::generate::{generate, GenerationConfig};
use lab::grpo::advantages;
use lab::model::AdamW;
use lab::rewards::{score, RewardConfig};
use lab::stages::grpo::{policy_update, GrpoConfig};
use lab::tokenizer::Tokenizer;
use lab::world::Lang;

/// The peers' Python: `PEER_PYTHON`, or `.peer-venv/bin/python` (made by `just bench-peers`).
pub fn peer_python_path() -> PathBuf {
    std::env::var_os("PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.peer-venv/bin/python"))
}

/// [`peer_python_path`] where it exists.
pub fn peer_python() -> Option<PathBuf> {
    let path = peer_python_path();
    path.exists().then_some(path)
}

/// Median seconds of the lab's GRPO step over `steps` steps (the first, a warm-up, dropped), and
/// of its sampling, as the `grpo` stage runs it: `grpo.group_size` completions of each prompt
/// (full length, so `tokenizer` must have no stop), rule-based scores of the response
/// `prefix + completion` against `answers` (one per prompt), group advantages, one policy update.
#[allow(clippy::too_many_arguments)]
pub fn timed_grpo_steps<M: TrainableLm>(
    model: &mut M,
    optimizer: &mut AdamW,
    grpo: &GrpoConfig,
    tokenizer: &dyn Tokenizer,
    prompts: &[Vec<u32>],
    answers: &[i64],
    prefix: &str,
    steps: usize,
) -> (f64, f64) {
    let (p, g) = (prompts.len(), grpo.group_size);
    let generation = GenerationConfig::sampling(grpo.max_completion_length);
    let rewards_config = RewardConfig::default();
    let mut seconds = Vec::new();
    let mut sampling = Vec::new();
    for step in 0..steps {
        let start = Instant::now();
        let policy = model.valid();
        let first = (step * p * g) as u64;
        let completions = generate(&policy, tokenizer, prompts, g, &generation, first);
        assert!(completions
            .iter()
            .all(|c| c.tokens.len() == grpo.max_completion_length));
        let sampled = start.elapsed().as_secs_f64();
        let rewards: Vec<f64> = completions
            .iter()
            .map(|c| {
                let answer = answers[c.prompt_index];
                score(&c.text, prefix, answer, Lang::En, &rewards_config).total
            })
            .collect();
        let adv = advantages(&rewards, g, grpo.scale_rewards);
        let include = vec![true; completions.len()];
        let (next, _) = policy_update(
            grpo,
            optimizer,
            1e-6,
            model.clone(),
            &policy,
            &policy,
            prompts,
            &completions,
            &adv.values,
            &include,
        );
        *model = next;
        if step > 0 {
            seconds.push(start.elapsed().as_secs_f64());
            sampling.push(sampled);
        }
    }
    (median(&mut seconds), median(&mut sampling))
}

/// A size from the environment variable `name` (`LAB_BENCH_ROUNDS`, `LAB_BENCH_P`, ...), else
/// `default`.
pub fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The middle value (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What a TRL peer script printed: all of it, and its last `TRL_GRPO ...` summary line.
pub struct TrlOutput {
    pub stdout: String,
    pub line: String,
}

impl TrlOutput {
    /// Runs a peer script (`command`, started from `python`) and keeps its output, or says why
    /// it gave none.
    pub fn run(
        command: &mut std::process::Command,
        python: &std::path::Path,
    ) -> Result<TrlOutput, String> {
        let out = command
            .output()
            .map_err(|e| format!("could not start {}: {e}", python.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "TRL bench failed: {}",
                stderr.lines().last().unwrap_or("")
            ));
        }
        let line = stdout
            .lines()
            .rfind(|l| l.starts_with("TRL_GRPO"))
            .ok_or("no TRL_GRPO line in TRL's output")?
            .to_string();
        Ok(TrlOutput { stdout, line })
    }

    /// The number printed as `name=VALUE` anywhere in the output.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        self.stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in TRL's output"))
    }
}
