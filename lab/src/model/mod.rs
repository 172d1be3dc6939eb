//! The language model: a small decoder-only transformer in burn 0.22, its KV cache, checkpoints
//! and optimizer.
//!
//! - [`config`]: [`ModelConfig`] (sizes, spec-facing), parameter count and FLOPs.
//! - [`transformer`]: [`Transformer`] (pre-norm, RoPE, causal MHA, SwiGLU, tied embedding).
//! - [`kv_cache`]: [`KvCache`] for generation.
//! - [`init`]: deterministic initialisation from `init_seed`.
//! - [`checkpoint`]: named tensors, content hash, file format, loading.
//! - [`optim`]: [`AdamW`] with state saved by name.
//!
//! # burn 0.22 in this lab
//! Tensors are `Tensor<D>` (float), `Tensor<D, Int>`, `Tensor<D, Bool>`; the backend is a runtime
//! [`Device`], not a type parameter.
//! ```ignore
//! let device = Device::flex();                 // CPU, burn's pure-Rust backend; no autodiff
//! let train_device = Device::flex().autodiff(); // same CPU, gradients recorded
//! let mut model = config.init(&train_device);
//! let mut opt = AdamW::new(AdamWConfig::default());
//! // one step
//! let tokens = tokens_tensor(&rows, &train_device);            // [batch, seq] Int
//! let logp = token_logprobs(model.forward(inputs), targets);   // [batch, seq]
//! let loss = -(logp * mask).sum() / n_tokens;                  // Tensor<1>, one element
//! let loss_value: f32 = loss.clone().into_scalar();
//! let (next, stats) = opt.step(lr, model, loss.backward());    // backward() -> Gradients
//! model = next;
//! // inference / generation: drop autodiff (cheap, no copy of the weights)
//! let policy = model.valid();                                  // params on Device::flex()
//! let mut cache = policy.new_cache();
//! let logits = policy.forward_cached(prompt_tokens, &mut cache);  // tokens on Device::flex()
//! ```
//! Read values with `tensor.into_data().try_into_vec_as::<f32>()` (or `to_data()` to keep the
//! tensor), a single value with `tensor.into_scalar::<f32>()`.
//!
//! # Determinism
//! The lab builds burn with `default-features = false`, so burn-flex has neither its `rayon` nor
//! its `simd` feature: every kernel, `gemm`'s matmul included (`Parallelism::None`), runs on one
//! thread in a fixed order. Results are therefore bit-identical across runs and processes on one
//! machine type; `gemm` picks its kernel by CPU features at run time, so another ISA may differ
//! in the last bits. Enabling burn's `rayon` feature would make reductions depend on the thread
//! count: don't, or re-verify. Initial weights come from [`crate::rng::Rng`], never burn's RNG.

pub mod checkpoint;
pub mod config;
pub mod init;
pub mod kv_cache;
pub mod optim;
pub mod transformer;

#[cfg(test)]
mod tests;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

pub use checkpoint::{
    content_hash, decode, decode_expecting, encode, load_named, named_tensors, CheckpointError,
    NamedTensor,
};
pub use config::ModelConfig;
pub use kv_cache::KvCache;
pub use optim::{named_grads, AdamW, AdamWConfig, NamedGrads, StepStats};
pub use transformer::Transformer;

/// `log softmax(logits)[b, t, targets[b, t]]`: the log-probability of each target token,
/// `[batch, seq]`, differentiable. `logits` is `[batch, seq, vocab]`; align targets yourself
/// (for next-token prediction, logits of positions `0..n-1` against tokens `1..n`).
pub fn token_logprobs(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    log_softmax(logits, 2)
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2)
}

/// A `[rows, len]` token tensor on `device`.
///
/// # Panics
/// If `rows` is empty or the rows differ in length.
pub fn tokens_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    assert!(!rows.is_empty(), "no rows");
    let len = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == len), "rows differ in length");
    let flat: Vec<i64> = rows.iter().flatten().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), len]), device)
}
