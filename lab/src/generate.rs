//! Batched sampling with a KV cache from any [`CausalLm`] (the lab's transformer, or a Hugging
//! Face model): the rollouts of evaluation and of GRPO, and `lab generate`.
//!
//! [`generate`] samples `G` completions of each prompt:
//! - prompts are grouped by exact length (the transformer has no padding mask, so rows batched
//!   into one forward pass must share positions); a group of `P` prompts is prefilled once as a
//!   `[P, len]` batch, then its cache is fanned out into the `G` samples of each prompt (as
//!   [`crate::model::KvCache::repeat_each`]), which decode in lockstep, one token per row and step;
//! - a row stops at `<eos>` or at the `</answer>` tag (the stop token is kept, `finished`; in a
//!   vocabulary where `</answer>` is several tokens, at the token that completes its text), or at
//!   `max_new_tokens` or the model's `max_seq_len` (prompt + completion never exceed it; not
//!   `finished`). Stopped rows leave the batch ([`CausalLm::select_cache_rows`]), so they cost
//!   nothing;
//! - each row samples with [`LogitsProcessor`] from its own stream,
//!   [`sample_seed`]`(seed, global_sample_id)`, where the sample `s` of prompt `p` has the global
//!   id `first_sample_id + p·G + s` ([`global_sample_id`]). A row draws exactly one number per
//!   token (none when greedy), so its tokens do not depend on which rows it was batched with:
//!   [`generate_one`] regenerates any sample alone.
//!
//! On the flex backend batch-independence is exact: a sample's logits are bit-identical whatever
//! it is batched with, because burn-flex's matmul rounds every output row the same way whatever
//! the number of rows, except in products of a single row or of tiny size (such steps are padded
//! with copies of a row, see `Job::min_positions`). So its tokens and log-probabilities are too,
//! and rollouts do not depend on how prompts were grouped or chunked. (Another backend may round
//! by batch shape; tokens would then still agree unless a draw falls within rounding of a
//! boundary of the sampling distribution.)
//!
//! [`Completion::logprobs`] are the log-probabilities of the sampled tokens under the model
//! itself, `log_softmax(logits)` of the raw logits (not tempered, not cut by top-p): what GRPO
//! needs as the old policy's log-probabilities and what `model::token_logprobs` gives on a full
//! forward over prompt + completion.
//!
//! Run it on a model without autodiff (`model.valid()`, or one built on `Device::flex()`);
//! on an autodiff device every step would record a graph for nothing.
//!
//! [`full_reforward_generate`] is the same sampler without a cache (every step re-runs the whole
//! sequence): the baseline of the KV-cache speed-up, and a check of the cached path.

use std::collections::BTreeMap;

use burn::prelude::*;

use crate::causal_lm::CausalLm;
use crate::model::tokens_tensor;
use crate::rng::Rng;
use crate::sampling::{sample_seed, LogitsProcessor};
use crate::tokenizer::Tokenizer;

/// The tag whose token ends a completion, besides `<eos>`.
pub use crate::response::ANSWER_CLOSE;

/// Most rows decoded together: a length group of prompts is split into chunks of at most
/// `max(1, MAX_BATCH_ROWS / G)` prompts, which bounds the KV cache's memory. Chunking changes no
/// token (see the module docs on batch-independence).
pub const MAX_BATCH_ROWS: usize = 256;

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationConfig {
    /// Most tokens generated per completion (the stop token included).
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 is greedy decoding.
    pub temperature: f64,
    /// Nucleus mass in `(0, 1]`; 1 keeps every token.
    pub top_p: f64,
    /// Seed of every sample's stream ([`sample_seed`]).
    pub seed: u64,
}

impl GenerationConfig {
    /// Sampling from the model's own distribution (temperature 1, no top-p cut), seed 0: what
    /// RL rollouts at default settings and the benchmarks draw.
    pub fn sampling(max_new_tokens: usize) -> Self {
        GenerationConfig {
            max_new_tokens,
            temperature: 1.0,
            top_p: 1.0,
            seed: 0,
        }
    }

    /// Greedy decoding of up to `max_new_tokens` tokens.
    pub fn greedy(max_new_tokens: usize) -> Self {
        GenerationConfig {
            max_new_tokens,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// One sampled completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Index of its prompt in the `prompts` passed to [`generate`].
    pub prompt_index: usize,
    /// Which of the prompt's `samples_per_prompt` samples it is.
    pub sample_index: usize,
    /// The generated token ids (the prompt excluded; the stop token included).
    pub tokens: Vec<u32>,
    /// `tokens` decoded (a stop `<eos>` is written `<eos>` by the world tokenizer).
    pub text: String,
    /// Stopped at `<eos>` or `</answer>`, not by `max_new_tokens` or `max_seq_len`.
    pub finished: bool,
    /// `log_softmax(logits)[token]` of each generated token under the model's raw logits (not
    /// tempered, not cut by top-p): GRPO's old-policy log-probabilities.
    pub logprobs: Vec<f32>,
}

/// The global id of sample `sample_index` of prompt `prompt_index`: its stream is
/// `sample_seed(seed, id)`.
pub fn global_sample_id(
    first_sample_id: u64,
    prompt_index: usize,
    samples_per_prompt: usize,
    sample_index: usize,
) -> u64 {
    first_sample_id + (prompt_index * samples_per_prompt + sample_index) as u64
}

/// Samples `samples_per_prompt` completions of each prompt (token ids, already including `<bos>`
/// and the rendered prompt), with a KV cache. The result is ordered by prompt, then sample:
/// completion `p·G + s` is sample `s` of prompt `p`, drawn from
/// `sample_seed(config.seed, first_sample_id + p·G + s)`.
///
/// # Panics
/// If a prompt is empty, longer than the model's `max_seq_len`, or holds an id outside the
/// vocabulary; if the tokenizer and the model disagree on the vocabulary size; on an invalid
/// temperature or top-p ([`LogitsProcessor::new`]).
pub fn generate<M: CausalLm>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompts: &[Vec<u32>],
    samples_per_prompt: usize,
    config: &GenerationConfig,
    first_sample_id: u64,
) -> Vec<Completion> {
    run(
        model,
        tokenizer,
        prompts,
        samples_per_prompt,
        config,
        first_sample_id,
        Decoding::Cached,
    )
}

/// The sample with global id `global_sample_id` of `prompt`, alone: the same tokens as that
/// sample in any batch of [`generate`] (its `prompt_index` and `sample_index` here are 0).
pub fn generate_one<M: CausalLm>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompt: &[u32],
    config: &GenerationConfig,
    global_sample_id: u64,
) -> Completion {
    generate(
        model,
        tokenizer,
        &[prompt.to_vec()],
        1,
        config,
        global_sample_id,
    )
    .pop()
    .expect("one completion")
}

/// [`generate`] without a KV cache: every step re-runs the full forward over prompt + tokens so
/// far (the rows of a prompt group still in lockstep, batched). Same sampling, seeds, stopping
/// and results (up to floating point); the baseline for the cache's speed-up.
///
/// # Panics
/// As [`generate`].
pub fn full_reforward_generate<M: CausalLm>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompts: &[Vec<u32>],
    samples_per_prompt: usize,
    config: &GenerationConfig,
    first_sample_id: u64,
) -> Vec<Completion> {
    run(
        model,
        tokenizer,
        prompts,
        samples_per_prompt,
        config,
        first_sample_id,
        Decoding::FullReforward,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoding {
    Cached,
    FullReforward,
}

/// Everything a chunk of prompts needs to decode.
struct Job<'a, M: CausalLm> {
    model: &'a M,
    prompts: &'a [Vec<u32>],
    samples_per_prompt: usize,
    config: &'a GenerationConfig,
    first_sample_id: u64,
    decoding: Decoding,
    processor: LogitsProcessor,
    stops: Vec<u32>,
    /// Text that ends a completion when no single token spells it (`</answer>` in a
    /// byte-pair vocabulary): the completion stops at the token that completes it.
    stop_text: Option<&'static str>,
    tokenizer: &'a dyn Tokenizer,
    vocab: usize,
    device: Device,
}

/// A sample being generated.
struct Row {
    prompt_index: usize,
    sample_index: usize,
    rng: Rng,
    tokens: Vec<u32>,
    logprobs: Vec<f32>,
    finished: bool,
}

fn run<M: CausalLm>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    prompts: &[Vec<u32>],
    samples_per_prompt: usize,
    config: &GenerationConfig,
    first_sample_id: u64,
    decoding: Decoding,
) -> Vec<Completion> {
    let processor = LogitsProcessor::new(config.temperature, config.top_p);
    let vocab = model.vocab_size();
    let max_seq_len = model.max_seq_len();
    assert_eq!(
        tokenizer.vocab_size(),
        vocab,
        "the tokenizer has {} ids, the model {vocab}",
        tokenizer.vocab_size()
    );
    for (i, prompt) in prompts.iter().enumerate() {
        assert!(!prompt.is_empty(), "prompt {i} is empty (it needs <bos>)");
        assert!(
            prompt.len() <= max_seq_len,
            "prompt {i} has {} tokens, above max_seq_len {max_seq_len}",
            prompt.len(),
        );
        if let Some(id) = prompt.iter().find(|&&id| id as usize >= vocab) {
            panic!("prompt {i} holds token id {id}, outside the vocabulary of {vocab}");
        }
    }
    let g = samples_per_prompt;
    if g == 0 || prompts.is_empty() {
        return Vec::new();
    }

    let mut stops = vec![tokenizer.eos_id()];
    let answer_close = tokenizer.token_id(ANSWER_CLOSE);
    stops.extend(answer_close);
    let job = Job {
        model,
        prompts,
        samples_per_prompt: g,
        config,
        first_sample_id,
        decoding,
        processor,
        stops,
        stop_text: answer_close.is_none().then_some(ANSWER_CLOSE),
        tokenizer,
        vocab,
        device: model.device(),
    };

    let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, prompt) in prompts.iter().enumerate() {
        by_length.entry(prompt.len()).or_default().push(i);
    }
    // Chunks run on every core (see `crate::parallel`); a big length group is cut so that each
    // thread gets a share. Chunking changes no token (batch-independence), so neither does the
    // number of threads.
    let threads = crate::parallel::threads();
    let chunks: Vec<Vec<usize>> = by_length
        .values()
        .flat_map(|group| {
            let per_chunk = (MAX_BATCH_ROWS / g)
                .max(1)
                .min(group.len().div_ceil(threads));
            group.chunks(per_chunk).map(<[usize]>::to_vec)
        })
        .collect();
    let decoded = crate::parallel::map_ordered(chunks, |_, chunk| job.decode(&chunk));
    let mut completions: Vec<Option<Completion>> = vec![None; prompts.len() * g];
    for row in decoded.into_iter().flatten() {
        let slot = row.prompt_index * g + row.sample_index;
        completions[slot] = Some(Completion {
            prompt_index: row.prompt_index,
            sample_index: row.sample_index,
            text: tokenizer.decode(&row.tokens),
            tokens: row.tokens,
            finished: row.finished,
            logprobs: row.logprobs,
        });
    }
    completions
        .into_iter()
        .map(|c| c.expect("every sample is generated"))
        .collect()
}

impl<M: CausalLm> Job<'_, M> {
    /// All samples of `chunk`, prompts of one length.
    fn decode(&self, chunk: &[usize]) -> Vec<Row> {
        let g = self.samples_per_prompt;
        let prompt_len = self.prompts[chunk[0]].len();
        let limit = self
            .config
            .max_new_tokens
            .min(self.model.max_seq_len() - prompt_len);
        let mut rows: Vec<Row> = chunk
            .iter()
            .flat_map(|&p| (0..g).map(move |s| (p, s)))
            .map(|(p, s)| Row {
                prompt_index: p,
                sample_index: s,
                rng: sample_seed(
                    self.config.seed,
                    global_sample_id(self.first_sample_id, p, g, s),
                ),
                tokens: Vec::new(),
                logprobs: Vec::new(),
                finished: false,
            })
            .collect();
        if limit == 0 {
            return rows;
        }

        // Prefill each prompt once; row r continues prompt r / g.
        let prompt_rows: Vec<Vec<u32>> = chunk.iter().map(|&p| self.prompts[p].clone()).collect();
        let mut cache = self.model.new_cache();
        let prefill = match self.decoding {
            Decoding::Cached => self.forward_cached(&prompt_rows, &mut cache),
            Decoding::FullReforward => self.forward(&prompt_rows),
        };
        let v = self.vocab;
        let mut logits: Vec<f32> = (0..rows.len())
            .flat_map(|r| prefill[(r / g) * v..(r / g + 1) * v].iter().copied())
            .collect();
        if self.decoding == Decoding::Cached {
            // `repeat_each(g)`, through `select_rows` to keep small batches padded.
            let fan_out = self.padded((0..rows.len()).map(|r| r / g).collect(), 1);
            if fan_out != (0..M::cache_rows(&cache)).collect::<Vec<_>>() {
                cache = M::select_cache_rows(&cache, &fan_out);
            }
        }

        // `active[i]` is the row in batch position i (row i of the cache and of `logits`).
        let mut active: Vec<usize> = (0..rows.len()).collect();
        loop {
            let mut keep = Vec::with_capacity(active.len());
            for (position, &r) in active.iter().enumerate() {
                let row = &mut rows[r];
                let row_logits = &logits[position * v..(position + 1) * v];
                let token = self.processor.sample(row_logits, &mut row.rng);
                row.logprobs.push(logprob(row_logits, token));
                row.tokens.push(token);
                if self.stops.contains(&token) || self.completes_stop_text(&row.tokens) {
                    row.finished = true;
                } else if row.tokens.len() < limit {
                    keep.push(position);
                }
            }
            if keep.is_empty() {
                return rows;
            }
            if keep.len() < active.len() {
                active = keep.iter().map(|&position| active[position]).collect();
                if self.decoding == Decoding::Cached {
                    cache = M::select_cache_rows(&cache, &self.padded(keep, 1));
                }
            }
            logits = match self.decoding {
                Decoding::Cached => {
                    let next: Vec<Vec<u32>> = active
                        .iter()
                        .map(|&r| vec![*rows[r].tokens.last().expect("a token was sampled")])
                        .collect();
                    self.forward_cached(&next, &mut cache)
                }
                Decoding::FullReforward => {
                    let sequences: Vec<Vec<u32>> = active
                        .iter()
                        .map(|&r| {
                            let mut sequence = self.prompts[rows[r].prompt_index].clone();
                            sequence.extend(&rows[r].tokens);
                            sequence
                        })
                        .collect();
                    self.forward(&sequences)
                }
            };
        }
    }

    /// Last-position logits of `rows` (equal lengths), `[rows · vocab]`, by a full forward.
    fn forward(&self, rows: &[Vec<u32>]) -> Vec<f32> {
        let batch = self.padded(rows.to_vec(), rows[0].len());
        let logits = last_logits(self.model.forward(tokens_tensor(&batch, &self.device)));
        truncated(logits, rows.len() * self.vocab)
    }

    /// Last-position logits of `rows` (equal lengths) placed after `cache`: empty for a prefill,
    /// else holding their rows in order, padded as [`Job::padded`] pads them.
    fn forward_cached(&self, rows: &[Vec<u32>], cache: &mut M::Cache) -> Vec<f32> {
        let batch = self.padded(rows.to_vec(), rows[0].len());
        let tokens = tokens_tensor(&batch, &self.device);
        // Only the last positions go through the output projection, enough of them that it
        // keeps the rows it needs for batch-independence.
        let tail = self
            .min_positions()
            .div_ceil(batch.len())
            .min(rows[0].len());
        let logits = last_logits(self.model.forward_cached_tail(tokens, cache, tail));
        truncated(logits, rows.len() * self.vocab)
    }

    /// Whether the last token of `tokens` completes [`Job::stop_text`]: its text is in the
    /// decoded tail that ends with that token and not in the one before it.
    fn completes_stop_text(&self, tokens: &[u32]) -> bool {
        let Some(stop) = self.stop_text else {
            return false;
        };
        // A few tokens spell any stop text; decoding only the tail keeps this O(1) a step.
        let window = |end: usize| {
            self.tokenizer
                .decode(&tokens[end.saturating_sub(stop.len() + 1)..end])
        };
        window(tokens.len()).contains(stop) && !window(tokens.len() - 1).contains(stop)
    }

    /// `rows` (of `positions` tokens each), padded with copies of the first row so that a
    /// forward pass over them has at least [`Job::min_positions`] positions.
    fn padded<T: Clone>(&self, mut rows: Vec<T>, positions: usize) -> Vec<T> {
        let min_rows = self.min_positions().div_ceil(positions);
        while rows.len() < min_rows {
            rows.push(rows[0].clone());
        }
        rows
    }

    /// The fewest positions (rows × tokens) a forward pass runs, for batch-independence.
    ///
    /// burn-flex's matmul (`gemm`) rounds each output row identically whatever the number of
    /// rows of the product (for inner dimensions up to 512, which `gemm` never splits), with two
    /// exceptions: a single row takes a matrix-vector path, and a
    /// product with at most 16 × 16 outputs whose right side is column-major (the logits, `x ·
    /// embedᵀ`) a horizontal kernel. Every matmul of the model has `rows × tokens` rows
    /// (attention runs per row and head), so padding small batches with copies of a row keeps
    /// all of them on the common path: a sample's logits, log-probabilities and tokens are then
    /// bit-identical whether it was decoded alone or in any batch.
    fn min_positions(&self) -> usize {
        min_positions(self.vocab)
    }
}

/// The fewest positions a forward pass over a model with `vocab` tokens runs so that every
/// matmul stays on gemm's common path, where a row rounds alike in any product (see
/// `Job::min_positions`).
pub fn min_positions(vocab: usize) -> usize {
    (GEMM_SMALL_OUTPUTS / vocab + 1).max(2)
}

/// Products with at most this many outputs take `gemm`'s horizontal kernel (see
/// [`Job::min_positions`]).
const GEMM_SMALL_OUTPUTS: usize = 16 * 16;

fn truncated(mut values: Vec<f32>, len: usize) -> Vec<f32> {
    values.truncate(len);
    values
}

/// The logits of the last position of each row, `[batch · vocab]` row-major.
fn last_logits(logits: Tensor<3>) -> Vec<f32> {
    let [batch, seq, vocab] = logits.dims();
    logits
        .narrow(1, seq - 1, 1)
        .reshape([batch, vocab])
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float logits")
}

/// `log_softmax(logits)[token]`, computed in `f64`.
fn logprob(logits: &[f32], token: u32) -> f32 {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &l| m.max(l as f64));
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    (logits[token as usize] as f64 - max - sum.ln()) as f32
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::evaluation::{render_prompt, template_texts, Prompting};
    use crate::model::init::initial_values;
    use crate::model::{token_logprobs, ModelConfig, Transformer};
    use crate::sampling::argmax;
    use crate::tokenizer::{WorldTokenizer, BOS_ID, EOS_ID};
    use crate::world::Lang;

    /// Questions 0 and 3 render to prompts of equal length (batched in one prefill).
    const QUESTIONS: [(&str, Lang); 4] = [
        (
            "Natalia had 12 clips and sold 5. How many clips are left?",
            Lang::En,
        ),
        (
            "Tom has 3 boxes of 4 apples. How many apples does he have?",
            Lang::En,
        ),
        ("小明有 8 个苹果，又买了 3 个。他有几个苹果？", Lang::Zh),
        (
            "Sara had 9 pens and lost 2. How many pens are left?",
            Lang::En,
        ),
    ];

    fn world_tokenizer(max_number: u32) -> WorldTokenizer {
        let mut texts: Vec<String> = QUESTIONS.iter().map(|(q, _)| q.to_string()).collect();
        texts.extend(template_texts());
        texts.push("<think> 12 - 5 = 7 </think> <answer> 7 </answer>".into());
        WorldTokenizer::build(max_number, texts)
    }

    fn prompt(tokenizer: &dyn Tokenizer, question: usize) -> Vec<u32> {
        let (q, lang) = QUESTIONS[question];
        let mut ids = vec![BOS_ID];
        ids.extend(tokenizer.encode(&render_prompt(Prompting::Compact, q, lang)));
        ids
    }

    fn all_prompts(tokenizer: &dyn Tokenizer) -> Vec<Vec<u32>> {
        (0..QUESTIONS.len()).map(|q| prompt(tokenizer, q)).collect()
    }

    /// A model with its matrices scaled up from the usual initialisation (embedding ×10, blocks
    /// ×30), so that its distributions are far from uniform and greedy decoding wanders instead of
    /// repeating the last token (tied embeddings favour it at small scale).
    fn model_with(config: ModelConfig) -> Transformer {
        Transformer::build(&config, &Device::flex(), &mut |name, shape| {
            let scale = match (shape.len(), name) {
                (1, _) => 1.0,
                (_, "embed.weight") => 10.0,
                _ => 30.0,
            };
            let values = initial_values(&config, name, shape);
            Ok::<_, Infallible>(values.into_iter().map(|x| x * scale).collect())
        })
        .unwrap_or_else(|never| match never {})
    }

    fn tiny_model(tokenizer: &dyn Tokenizer, max_seq_len: usize) -> Transformer {
        model_with(ModelConfig {
            vocab_size: tokenizer.vocab_size(),
            d_model: 32,
            n_layers: 2,
            n_heads: 2,
            d_ff: 64,
            max_seq_len,
            init_seed: 3,
            ..ModelConfig::default()
        })
    }

    /// The world tokenizer with other stop tokens: `eos` `u32::MAX` stops at nothing, and
    /// `answer_close` `None` is a vocabulary with no `</answer>` at all, as a token or as text.
    /// `spelled`: the `answer_close` token is not known as `</answer>` (`token_id` says none)
    /// but writes its text, as several tokens of a byte-pair vocabulary do.
    struct Stops<'a> {
        inner: &'a WorldTokenizer,
        eos: u32,
        answer_close: Option<u32>,
        spelled: bool,
    }

    const NO_STOP: u32 = u32::MAX;

    impl Tokenizer for Stops<'_> {
        fn encode(&self, text: &str) -> Vec<u32> {
            self.inner.encode(text)
        }
        fn decode(&self, ids: &[u32]) -> String {
            if self.spelled {
                let words: Vec<&str> = ids
                    .iter()
                    .map(|&id| match self.answer_close {
                        Some(close) if id == close => ANSWER_CLOSE,
                        // The world's own `</answer>` tag is not this vocabulary's.
                        _ if Some(id) == self.inner.token_id(ANSWER_CLOSE) => "<tag>",
                        _ => self.inner.token(id),
                    })
                    .collect();
                return words.join(" ");
            }
            let text = self.inner.decode(ids);
            match self.answer_close {
                Some(_) => text,
                None => text.replace(ANSWER_CLOSE, ""),
            }
        }
        fn vocab_size(&self) -> usize {
            self.inner.vocab_size()
        }
        fn token_id(&self, token: &str) -> Option<u32> {
            if token == ANSWER_CLOSE {
                self.answer_close.filter(|_| !self.spelled)
            } else {
                self.inner.token_id(token)
            }
        }
        fn token(&self, id: u32) -> &str {
            self.inner.token(id)
        }
        fn bos_id(&self) -> u32 {
            self.inner.bos_id()
        }
        fn eos_id(&self) -> u32 {
            self.eos
        }
        fn pad_id(&self) -> u32 {
            self.inner.pad_id()
        }
        fn unk_id(&self) -> u32 {
            self.inner.unk_id()
        }
    }

    fn sampled(max_new_tokens: usize, seed: u64) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens,
            temperature: 1.0,
            top_p: 1.0,
            seed,
        }
    }

    fn tokens_of(completions: &[Completion]) -> Vec<Vec<u32>> {
        completions.iter().map(|c| c.tokens.clone()).collect()
    }

    fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tolerance, "{a:?} vs {b:?}");
        }
    }

    /// Greedy decoding by re-running the whole sequence each step, independent of the module.
    fn naive_greedy(model: &Transformer, prompt: &[u32], steps: usize) -> Vec<u32> {
        let device = Device::flex();
        let mut sequence = prompt.to_vec();
        for _ in 0..steps {
            let logits =
                last_logits(model.forward(tokens_tensor(std::slice::from_ref(&sequence), &device)));
            sequence.push(argmax(&logits));
        }
        sequence[prompt.len()..].to_vec()
    }

    #[test]
    fn generate_is_deterministic_and_seeded() {
        let tokenizer = world_tokenizer(20);
        let model = tiny_model(&tokenizer, 64);
        let prompts = all_prompts(&tokenizer);
        let config = sampled(16, 5);
        let a = generate(&model, &tokenizer, &prompts, 3, &config, 0);
        let b = generate(&model, &tokenizer, &prompts, 3, &config, 0);
        assert_eq!(a, b);
        assert_eq!(a.len(), 12);
        for (i, c) in a.iter().enumerate() {
            assert_eq!((c.prompt_index, c.sample_index), (i / 3, i % 3));
            assert_eq!(c.logprobs.len(), c.tokens.len());
            assert_eq!(c.text, tokenizer.decode(&c.tokens));
            assert!(!c.tokens.is_empty() && c.tokens.len() <= 16);
        }
        // Samples of one prompt differ from each other, and with the seed.
        assert_ne!(a[0].tokens, a[1].tokens);
        let other = generate(&model, &tokenizer, &prompts, 3, &sampled(16, 6), 0);
        assert_ne!(tokens_of(&a), tokens_of(&other));
        // Shifting first_sample_id shifts which stream each sample draws from.
        let shifted = generate(&model, &tokenizer, &prompts[..1], 2, &config, 1);
        assert_eq!(shifted[0].tokens, a[1].tokens);
        assert_eq!(shifted[1].tokens, a[2].tokens);
        // Degenerate requests.
        assert!(generate(&model, &tokenizer, &prompts, 0, &config, 0).is_empty());
        assert!(generate(&model, &tokenizer, &[], 4, &config, 0).is_empty());
    }

    #[test]
    fn generate_one_regenerates_any_sample_of_a_batch() {
        let tokenizer = world_tokenizer(20);
        let model = tiny_model(&tokenizer, 64);
        let mut prompts = all_prompts(&tokenizer);
        // Prompts 0 and 3 share a prefill; 1 and 2 have lengths of their own; the last is bare.
        assert_eq!(prompts[0].len(), prompts[3].len());
        assert_ne!(prompts[0].len(), prompts[1].len());
        prompts.push(vec![BOS_ID]);
        let config = GenerationConfig {
            max_new_tokens: 20,
            temperature: 0.8,
            top_p: 0.95,
            seed: 11,
        };
        let (g, first) = (3, 1000);
        // The tiny model, and one of the default width (other matmul shapes).
        let wide = model_with(ModelConfig {
            vocab_size: tokenizer.vocab_size(),
            n_layers: 1,
            max_seq_len: 64,
            ..ModelConfig::default()
        });
        for model in [&model, &wide] {
            let batch = generate(model, &tokenizer, &prompts, g, &config, first);
            for c in &batch {
                let id = global_sample_id(first, c.prompt_index, g, c.sample_index);
                let alone = generate_one(model, &tokenizer, &prompts[c.prompt_index], &config, id);
                // Bit-identical, log-probabilities included.
                assert_eq!(
                    (&alone.tokens, alone.finished, &alone.logprobs),
                    (&c.tokens, c.finished, &c.logprobs),
                    "sample {id}"
                );
            }
        }
    }

    #[test]
    fn generate_splits_large_groups_into_chunks() {
        let tokenizer = world_tokenizer(20);
        let model = tiny_model(&tokenizer, 64);
        let prompts = vec![prompt(&tokenizer, 0), prompt(&tokenizer, 3)];
        let g = MAX_BATCH_ROWS / 2 + 1; // one prompt per chunk
        let config = sampled(3, 4);
        let batch = generate(&model, &tokenizer, &prompts, g, &config, 5);
        assert_eq!(batch.len(), 2 * g);
        for i in [0, g - 1, g, 2 * g - 1] {
            let c = &batch[i];
            assert_eq!((c.prompt_index, c.sample_index), (i / g, i % g));
            let alone = generate_one(&model, &tokenizer, &prompts[i / g], &config, 5 + i as u64);
            assert_eq!((&alone.tokens, &alone.logprobs), (&c.tokens, &c.logprobs));
        }
    }

    #[test]
    fn generate_batched_rows_equal_single_rows_and_the_naive_sampler() {
        let tokenizer = world_tokenizer(20);
        let model = tiny_model(&tokenizer, 64);
        let p = prompt(&tokenizer, 1);
        let config = sampled(24, 3);
        let batch = generate(&model, &tokenizer, std::slice::from_ref(&p), 8, &config, 40);
        for (i, c) in batch.iter().enumerate() {
            let single = generate_one(&model, &tokenizer, &p, &config, 40 + i as u64);
            assert_eq!((&single.tokens, &single.logprobs), (&c.tokens, &c.logprobs));
        }

        // Greedy: cached path = naive full re-forward, token for token.
        let no_stop = Stops {
            inner: &tokenizer,
            eos: NO_STOP,
            answer_close: None,
            spelled: false,
        };
        for q in 0..QUESTIONS.len() {
            let p = prompt(&tokenizer, q);
            let greedy = generate_one(&model, &no_stop, &p, &GenerationConfig::greedy(12), 0);
            let naive = naive_greedy(&model, &p, 12);
            assert_eq!(greedy.tokens, naive);
            assert!(!greedy.finished);
        }
    }

    #[test]
    fn generate_full_reforward_gives_the_same_tokens() {
        let tokenizer = world_tokenizer(20);
        let model = tiny_model(&tokenizer, 64);
        let prompts = all_prompts(&tokenizer);
        let no_stop = Stops {
            inner: &tokenizer,
            eos: NO_STOP,
            answer_close: None,
            spelled: false,
        };
        for (tok, config) in [
            (&no_stop as &dyn Tokenizer, GenerationConfig::greedy(20)),
            (&tokenizer as &dyn Tokenizer, sampled(20, 9)),
        ] {
            let cached = generate(&model, tok, &prompts, 2, &config, 7);
            let full = full_reforward_generate(&model, tok, &prompts, 2, &config, 7);
            assert_eq!(tokens_of(&cached), tokens_of(&full));
            for (c, f) in cached.iter().zip(&full) {
                assert_eq!(c.finished, f.finished);
                assert_close(&c.logprobs, &f.logprobs, 1e-4);
            }
        }
    }

    #[test]
    fn generate_stops_at_eos_and_answer_close() {
        let tokenizer = world_tokenizer(20);
        let model = tiny_model(&tokenizer, 64);
        let p = prompt(&tokenizer, 0);
        let config = sampled(30, 21);
        let open = Stops {
            inner: &tokenizer,
            eos: NO_STOP,
            answer_close: None,
            spelled: false,
        };
        let free = generate(&model, &open, std::slice::from_ref(&p), 8, &config, 0);
        assert!(free.iter().all(|c| c.tokens.len() == 30 && !c.finished));

        // A stop token that some rows sample (at different steps) and others never do.
        let appears = |t: u32| free.iter().filter(|c| c.tokens.contains(&t)).count();
        let stop = (0..tokenizer.vocab_size() as u32)
            .filter(|&t| (1..8).contains(&appears(t)))
            .max_by_key(|&t| {
                let mut firsts: Vec<usize> = free
                    .iter()
                    .filter_map(|c| c.tokens.iter().position(|&x| x == t))
                    .collect();
                firsts.sort();
                firsts.dedup();
                firsts.len()
            })
            .expect("a token sampled by some rows only");

        let as_eos = Stops {
            inner: &tokenizer,
            eos: stop,
            answer_close: None,
            spelled: false,
        };
        let as_answer_close = Stops {
            inner: &tokenizer,
            eos: NO_STOP,
            answer_close: Some(stop),
            spelled: false,
        };
        // `</answer>` as text that no single token is known to spell stops where it is written.
        let as_answer_text = Stops {
            inner: &tokenizer,
            eos: NO_STOP,
            answer_close: Some(stop),
            spelled: true,
        };
        for tok in [&as_eos, &as_answer_close, &as_answer_text] {
            let stopped = generate(&model, tok, std::slice::from_ref(&p), 8, &config, 0);
            for (s, f) in stopped.iter().zip(&free) {
                match f.tokens.iter().position(|&x| x == stop) {
                    Some(at) => {
                        assert!(s.finished);
                        assert_eq!(s.tokens, f.tokens[..=at]);
                        assert_eq!(*s.tokens.last().unwrap(), stop);
                    }
                    None => {
                        assert!(!s.finished);
                        assert_eq!(s.tokens, f.tokens);
                    }
                }
                assert_eq!(s.logprobs, f.logprobs[..s.tokens.len()]);
                assert_eq!(s.text, tok.decode(&s.tokens));
            }
        }

        // The real tokenizer stops at <eos> and </answer>.
        let answer_close = tokenizer.token_id(ANSWER_CLOSE).unwrap();
        let real = generate(&model, &tokenizer, std::slice::from_ref(&p), 8, &config, 0);
        for (c, f) in real.iter().zip(&free) {
            let stop_at = f
                .tokens
                .iter()
                .position(|&t| t == EOS_ID || t == answer_close);
            assert_eq!(c.finished, stop_at.is_some());
            assert_eq!(c.tokens.len(), stop_at.map_or(30, |at| at + 1));
        }
    }

    #[test]
    fn generate_respects_max_new_tokens_and_max_seq_len() {
        let tokenizer = world_tokenizer(20);
        let open = Stops {
            inner: &tokenizer,
            eos: NO_STOP,
            answer_close: None,
            spelled: false,
        };
        let p = prompt(&tokenizer, 1);
        let roomy = tiny_model(&tokenizer, 64);
        let reference = generate(
            &roomy,
            &open,
            std::slice::from_ref(&p),
            3,
            &sampled(10, 1),
            0,
        );
        for c in &reference {
            assert_eq!((c.tokens.len(), c.finished), (10, false));
        }
        let none = generate(
            &roomy,
            &tokenizer,
            std::slice::from_ref(&p),
            2,
            &sampled(0, 1),
            0,
        );
        assert!(none.iter().all(|c| c.tokens.is_empty() && !c.finished));

        // Weights and positions do not depend on max_seq_len: a shorter window cuts the same
        // completions, so that prompt + completion fits.
        for room in [0, 1, 4] {
            let tight = tiny_model(&tokenizer, p.len() + room);
            let cut = generate(
                &tight,
                &open,
                std::slice::from_ref(&p),
                3,
                &sampled(10, 1),
                0,
            );
            for (c, r) in cut.iter().zip(&reference) {
                assert_eq!(c.tokens, r.tokens[..room]);
                assert!(!c.finished);
            }
        }
    }

    #[test]
    fn generate_logprobs_match_a_full_forward() {
        let tokenizer = world_tokenizer(20);
        let model = tiny_model(&tokenizer, 64);
        let prompts = all_prompts(&tokenizer);
        // A temperature and top-p away from 1: logprobs are the model's own, not the sampler's.
        let config = GenerationConfig {
            max_new_tokens: 20,
            temperature: 0.7,
            top_p: 0.9,
            seed: 2,
        };
        let device = Device::flex();
        for c in generate(&model, &tokenizer, &prompts, 2, &config, 0) {
            let p = &prompts[c.prompt_index];
            let mut sequence = p.clone();
            sequence.extend(&c.tokens);
            let logits = model.forward(tokens_tensor(&[sequence], &device));
            let n = c.tokens.len();
            let expected = token_logprobs(
                logits.narrow(1, p.len() - 1, n),
                tokens_tensor(std::slice::from_ref(&c.tokens), &device),
            );
            let expected = expected.into_data().try_into_vec_as::<f32>().unwrap();
            assert_close(&c.logprobs, &expected, 1e-4);
            assert!(c.logprobs.iter().all(|l| *l <= 0.0));
        }
    }

    #[test]
    #[should_panic(expected = "above max_seq_len")]
    fn generate_refuses_a_prompt_longer_than_the_window() {
        let tokenizer = world_tokenizer(20);
        let p = prompt(&tokenizer, 0);
        let model = tiny_model(&tokenizer, p.len() - 1);
        generate(&model, &tokenizer, &[p], 1, &sampled(4, 0), 0);
    }
}
