//! The decoder-only transformer: pre-norm blocks of causal self-attention with rotary positions
//! and a SwiGLU MLP, tied input/output embedding.
//!
//! ```text
//! x = embed[tokens]
//! per block:  x = x + Attn(RMSNorm(x))         causal, multi-head, RoPE on q and k
//!             x = x + MLP(RMSNorm(x))          W_down · (silu(W_gate·x) ⊙ W_up·x)
//! logits = RMSNorm(x) · embedᵀ
//! ```
//!
//! Conventions (kept stable: they are what checkpoints mean):
//! - a `Linear` weight is `[d_in, d_out]` and applies as `x · W` (no biases anywhere);
//! - RoPE rotates the two halves of each head (`rotate_half`, as GPT-NeoX and HF Llama/Qwen2),
//!   frequency `theta^(-2i/head_dim)` for pair `i`, positions counted from 0 at the first token;
//! - attention is burn's `module::attention` with `is_causal` (aligned bottom-right, so a query
//!   block appended after a cache sees every cached key and the earlier new ones).
//!
//! Padding: right padding is always safe (causality means padded positions never influence
//! earlier ones; mask them out of the loss). Left padding is not supported: rows batched into one
//! [`Transformer::forward_cached`] call share positions, so prompts generated together must have
//! equal length (the sampler groups prompts by length, and `KvCache::repeat_each` fans one prompt
//! out into G samples).

use burn::module::{Param, ParamId};
use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;

use super::config::ModelConfig;
use super::kv_cache::{KvCache, LayerKv};

/// A bias-free linear map, weight `[d_in, d_out]`.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
}

impl Linear {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, d_in] = x.dims();
        let weight = self.weight.val();
        let d_out = weight.dims()[1];
        x.reshape([batch * seq, d_in])
            .matmul(weight)
            .reshape([batch, seq, d_out])
    }
}

/// RMSNorm: `x / sqrt(mean(x²) + eps) · weight`, over the last dimension.
#[derive(Module, Debug)]
pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    pub eps: f64,
}

impl RmsNorm {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let rms = x.clone().square().mean_dim(2).add_scalar(self.eps).sqrt();
        x / rms * self.weight.val().unsqueeze::<3>()
    }
}

/// Token embedding `[vocab, d_model]`, also the output projection (tied).
#[derive(Module, Debug)]
pub struct Embedding {
    pub weight: Param<Tensor<2>>,
}

/// Causal multi-head self-attention with rotary positions.
#[derive(Module, Debug)]
pub struct Attention {
    pub wq: Linear,
    pub wk: Linear,
    pub wv: Linear,
    pub wo: Linear,
    pub n_heads: usize,
}

/// SwiGLU feed-forward: `W_down · (silu(W_gate·x) ⊙ W_up·x)`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub w_gate: Linear,
    pub w_up: Linear,
    pub w_down: Linear,
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub attn_norm: RmsNorm,
    pub attn: Attention,
    pub mlp_norm: RmsNorm,
    pub mlp: Mlp,
}

/// The language model. Build with [`ModelConfig::init`] or `checkpoint::load_named`.
#[derive(Module, Debug)]
pub struct Transformer {
    pub embed: Embedding,
    pub blocks: Vec<Block>,
    pub norm_final: RmsNorm,
    #[module(skip)]
    config: ModelConfig,
}

/// Where [`Transformer::build`] (and [`crate::hf::HfModel::build`]) gets each tensor's values:
/// `(name, shape) -> row-major values`.
pub type TensorSource<'a, E> = &'a mut dyn FnMut(&str, &[usize]) -> Result<Vec<f32>, E>;

/// The stable parameter id of the tensor `name`: the first 8 bytes of
/// `blake3("r1lab/param/" + name)`. burn's optimisers key their state by parameter id, so stable
/// ids keep burn-optim records meaningful across processes too.
pub fn param_id(name: &str) -> ParamId {
    let digest = blake3::hash(format!("r1lab/param/{name}").as_bytes());
    let bytes: [u8; 8] = digest.as_bytes()[..8].try_into().expect("8 bytes");
    ParamId::from(u64::from_le_bytes(bytes))
}

/// Cosine and sine of the rotary angles for positions `start..start + len`, `[1, 1, len, half]`.
struct Rope {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl Rope {
    fn new(config: &ModelConfig, start: usize, len: usize, device: &Device) -> Rope {
        let half = config.head_dim() / 2;
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for pos in start..start + len {
            for i in 0..half {
                let inv_freq = config
                    .rope_theta
                    .powf(-((2 * i) as f64) / config.head_dim() as f64);
                let angle = pos as f64 * inv_freq;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let table =
            |values| Tensor::<4>::from_data(TensorData::new(values, [1, 1, len, half]), device);
        Rope {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// Rotate `x` `[batch, heads, seq, head_dim]`: halves `(a, b)` become
    /// `(a·cos − b·sin, b·cos + a·sin)`.
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let half = x.dims()[3] / 2;
        let a = x.clone().narrow(3, 0, half);
        let b = x.narrow(3, half, half);
        let rotated_a = a.clone() * self.cos.clone() - b.clone() * self.sin.clone();
        let rotated_b = b * self.cos.clone() + a * self.sin.clone();
        Tensor::cat(vec![rotated_a, rotated_b], 3)
    }
}

impl Attention {
    fn forward(&self, x: Tensor<3>, rope: &Rope, cache: Option<&mut Option<LayerKv>>) -> Tensor<3> {
        let [batch, seq, d_model] = x.dims();
        let heads = self.n_heads;
        let head_dim = d_model / heads;
        let split = |y: Tensor<3>| y.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);

        let q = rope.apply(split(self.wq.forward(x.clone())));
        let k = rope.apply(split(self.wk.forward(x.clone())));
        let v = split(self.wv.forward(x));

        let out = match cache {
            None => attention(q, k, v, None, None, CAUSAL),
            Some(slot) => {
                let kv = match slot.take() {
                    None => LayerKv::new(k, v),
                    Some(past) => past.append(k, v),
                };
                let (k, v) = (kv.keys(), kv.values());
                *slot = Some(kv);
                if seq == 1 {
                    decode_attention(q, k, v)
                } else {
                    attention(q, k, v, None, None, CAUSAL)
                }
            }
        };
        self.wo
            .forward(out.swap_dims(1, 2).reshape([batch, seq, d_model]))
    }
}

const CAUSAL: AttentionModuleOptions = AttentionModuleOptions {
    scale: None,
    softcap: None,
    is_causal: true,
};

/// Attention of one new position `q` `[batch, heads, 1, head_dim]` over every cached position
/// (no mask: the new position sees them all). The fused kernel would first copy `k` and `v`,
/// views into the cache's spare capacity, to contiguous buffers; the matmuls read them in place.
fn decode_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    let head_dim = q.dims()[3];
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
    softmax(scores, 3).matmul(v)
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(self.w_gate.forward(x.clone()));
        self.w_down.forward(gate * self.w_up.forward(x))
    }
}

impl Block {
    fn forward(&self, x: Tensor<3>, rope: &Rope, cache: Option<&mut Option<LayerKv>>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.attn_norm.forward(x), rope, cache);
        x.clone() + self.mlp.forward(self.mlp_norm.forward(x))
    }
}

impl Transformer {
    /// Build the model, asking `source` for each tensor's values by name and shape (row-major).
    /// Shared by initialisation and checkpoint loading, so both use the same names.
    pub(crate) fn build<E>(
        config: &ModelConfig,
        device: &Device,
        source: TensorSource<'_, E>,
    ) -> Result<Transformer, E> {
        let (d, f) = (config.d_model, config.d_ff);
        let embed = Embedding {
            weight: fetch(source, "embed.weight", [config.vocab_size, d], device)?,
        };
        let mut blocks = Vec::with_capacity(config.n_layers);
        for layer in 0..config.n_layers {
            let p = format!("blocks.{layer}");
            let mut linear = |name: &str, shape: [usize; 2]| -> Result<Linear, E> {
                Ok(Linear {
                    weight: fetch(source, &format!("{p}.{name}.weight"), shape, device)?,
                })
            };
            let attn = Attention {
                wq: linear("attn.wq", [d, d])?,
                wk: linear("attn.wk", [d, d])?,
                wv: linear("attn.wv", [d, d])?,
                wo: linear("attn.wo", [d, d])?,
                n_heads: config.n_heads,
            };
            let mlp = Mlp {
                w_gate: linear("mlp.w_gate", [d, f])?,
                w_up: linear("mlp.w_up", [d, f])?,
                w_down: linear("mlp.w_down", [f, d])?,
            };
            let mut norm = |name: &str| -> Result<RmsNorm, E> {
                Ok(RmsNorm {
                    weight: fetch(source, &format!("{p}.{name}.weight"), [d], device)?,
                    eps: config.norm_eps,
                })
            };
            blocks.push(Block {
                attn_norm: norm("attn_norm")?,
                attn,
                mlp_norm: norm("mlp_norm")?,
                mlp,
            });
        }
        let norm_final = RmsNorm {
            weight: fetch(source, "norm_final.weight", [d], device)?,
            eps: config.norm_eps,
        };
        Ok(Transformer {
            embed,
            blocks,
            norm_final,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the parameters live on (an autodiff device while training).
    pub fn device(&self) -> Device {
        self.embed.weight.val().device()
    }

    /// Logits `[batch, seq, vocab]` for every position of `tokens` `[batch, seq]`, causal:
    /// position `t` sees tokens `0..=t`. Works with and without autodiff.
    ///
    /// # Panics
    /// If `seq` is 0 or above `max_seq_len`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let seq = tokens.dims()[1];
        self.run(tokens, 0, None, seq)
    }

    /// Logits `[batch, new, vocab]` for `tokens` `[batch, new]` placed after the positions already
    /// in `cache`, which is extended with their keys and values. Meant for generation without
    /// autodiff: prefill the prompt, then feed one sampled token per row at a time.
    ///
    /// # Panics
    /// If the cache was made for another layer count or batch size, or the total length would
    /// exceed `max_seq_len`.
    pub fn forward_cached(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<3> {
        let new = tokens.dims()[1];
        self.forward_cached_tail(tokens, cache, new)
    }

    /// As [`Transformer::forward_cached`], but the logits `[batch, tail, vocab]` of the last
    /// `tail` new positions only: a prefill needs the last position's, and the output
    /// projection of the others (a `vocab`-wide product per position) is most of its cost. Each
    /// returned logit is bit-identical to `forward_cached`'s as long as the projection keeps at
    /// least two rows (`batch · tail ≥ 2`; gemm rounds a row alike in any product of two or more
    /// rows, see `generate`'s batch-independence).
    ///
    /// # Panics
    /// As [`Transformer::forward_cached`], or if `tail` is 0 or above the new positions.
    pub fn forward_cached_tail(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut KvCache,
        tail: usize,
    ) -> Tensor<3> {
        let [batch, new] = tokens.dims();
        assert!(
            tail > 0 && tail <= new,
            "tail of {tail} positions out of {new} new ones"
        );
        assert_eq!(
            cache.layers.len(),
            self.blocks.len(),
            "KvCache has {} layers, the model {}",
            cache.layers.len(),
            self.blocks.len()
        );
        if !cache.is_empty() {
            assert_eq!(
                cache.batch_size(),
                batch,
                "KvCache holds {} rows, the tokens have {batch}",
                cache.batch_size()
            );
        }
        let start = cache.len();
        let logits = self.run(tokens, start, Some(&mut cache.layers), tail);
        cache.len = start + new;
        cache.batch = batch;
        logits
    }

    /// An empty cache for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.blocks.len())
    }

    fn run(
        &self,
        tokens: Tensor<2, Int>,
        start: usize,
        mut cache: Option<&mut Vec<Option<LayerKv>>>,
        tail: usize,
    ) -> Tensor<3> {
        let [batch, seq] = tokens.dims();
        assert!(seq > 0, "forward on an empty sequence");
        assert!(
            start + seq <= self.config.max_seq_len,
            "sequence of {} tokens exceeds max_seq_len {}",
            start + seq,
            self.config.max_seq_len
        );
        let weight = self.embed.weight.val();
        let device = weight.device();
        let rope = Rope::new(&self.config, start, seq, &device);

        let mut x = embedding(weight.clone(), tokens);
        for (layer, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|layers| &mut layers[layer]);
            x = block.forward(x, &rope, slot);
        }
        let x = if tail < seq {
            x.narrow(1, seq - tail, tail)
        } else {
            x
        };
        let x = self.norm_final.forward(x);
        let [_, _, d_model] = x.dims();
        let vocab = weight.dims()[0];
        x.reshape([batch * tail, d_model])
            .matmul(weight.transpose())
            .reshape([batch, tail, vocab])
    }
}

/// Ask `source` for the tensor `name` and make it a trainable parameter with a stable id.
pub(crate) fn fetch<E, const D: usize>(
    source: TensorSource<'_, E>,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Param<Tensor<D>>, E> {
    let values = source(name, &shape)?;
    let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), device);
    // `from_tensor` marks the parameter trainable (gradients on an autodiff device, and restored
    // by `train()` after `valid()`); the id is then made stable.
    let mut param = Param::from_tensor(tensor);
    param.id = param_id(name);
    Ok(param)
}
