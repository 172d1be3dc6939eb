//! What generation needs of a model, whichever it is: the lab's own transformer or a Hugging
//! Face Llama / Qwen2 ([`crate::hf::HfModel`]). Sampling, stopping, seeds and batching live in
//! [`crate::generate`] once; a model supplies forward passes and a key/value cache.

use burn::prelude::*;

pub trait CausalLm: Sync {
    /// Keys and values of the positions seen so far, per row of a batch.
    type Cache: Send;

    /// Logits per position; every token id is below it.
    fn vocab_size(&self) -> usize;
    /// The most positions a sequence may hold.
    fn max_seq_len(&self) -> usize;
    fn device(&self) -> Device;

    /// Logits `[batch, seq, vocab]` of every position of `tokens` `[batch, seq]`.
    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3>;

    /// An empty cache.
    fn new_cache(&self) -> Self::Cache;
    /// Rows a cache holds (0 while empty).
    fn cache_rows(cache: &Self::Cache) -> usize;
    /// A cache whose rows are `rows` of `cache`, in that order (repeats allowed).
    fn select_cache_rows(cache: &Self::Cache, rows: &[usize]) -> Self::Cache;
    /// Logits `[batch, tail, vocab]` of the last `tail` of `tokens` `[batch, new]`, placed after
    /// the positions in `cache`, which is extended with theirs.
    fn forward_cached_tail(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut Self::Cache,
        tail: usize,
    ) -> Tensor<3>;
}

/// A model the lab trains: a burn module (parameters by path, `valid()` / `train()`) whose
/// cached forward carries gradients into the cached positions, so GRPO runs a prompt once under
/// its `G` completions.
pub trait TrainableLm: CausalLm + burn::module::Module {
    /// A one-row cache repeated `rows` times: a prompt's keys and values under each of its
    /// completions. The gradient of every copy flows back into the one row.
    fn fan_out(cache: &Self::Cache, rows: usize) -> Self::Cache {
        Self::select_cache_rows(cache, &vec![0; rows])
    }
}

impl TrainableLm for crate::model::Transformer {
    /// The cache's own fan-out, whose backward adds whole slices (see [`crate::model::KvCache`]).
    fn fan_out(cache: &Self::Cache, rows: usize) -> Self::Cache {
        cache.repeat_each(rows)
    }
}

impl TrainableLm for crate::hf::HfModel {}

impl CausalLm for crate::model::Transformer {
    type Cache = crate::model::KvCache;

    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn max_seq_len(&self) -> usize {
        self.config().max_seq_len
    }

    fn device(&self) -> Device {
        crate::model::Transformer::device(self)
    }

    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        crate::model::Transformer::forward(self, tokens)
    }

    fn new_cache(&self) -> Self::Cache {
        crate::model::Transformer::new_cache(self)
    }

    fn cache_rows(cache: &Self::Cache) -> usize {
        cache.batch_size()
    }

    fn select_cache_rows(cache: &Self::Cache, rows: &[usize]) -> Self::Cache {
        cache.select_rows(rows)
    }

    fn forward_cached_tail(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut Self::Cache,
        tail: usize,
    ) -> Tensor<3> {
        crate::model::Transformer::forward_cached_tail(self, tokens, cache, tail)
    }
}
