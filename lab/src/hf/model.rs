//! The forward pass of Llama and Qwen2 as transformers computes it, on burn tensors:
//!
//! ```text
//! x = embed[tokens]
//! per layer:  x = x + o_proj(attention(RoPE(q_proj(n)), RoPE(k_proj(n)), v_proj(n)))   n = RMSNorm(x)
//!             x = x + down_proj(silu(gate_proj(n)) ⊙ up_proj(n))                       n = RMSNorm(x)
//! logits = lm_head(RMSNorm(x))        (lm_head = embed when the embeddings are tied)
//! ```
//!
//! RoPE rotates the two halves of each head (`rotate_half`, not interleaved pairs); attention is
//! causal with `heads / kv_heads` query heads per key/value head. The weights are burn
//! parameters under transformers' names, so the model trains like the lab's own (on an autodiff
//! device, gradients flow through the key/value cache too).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};

use super::config::HfConfig;
use super::weights::HfWeights;
use super::HfError;
use crate::model::transformer::{fetch, TensorSource};

/// `y = x · Wᵀ + b`, with `W` `[out, in]` as stored.
#[derive(Module, Debug)]
struct Linear {
    weight: Param<Tensor<2>>,
    bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    fn build<E>(
        source: TensorSource<'_, E>,
        name: &str,
        out: usize,
        inp: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Linear, E> {
        let weight = fetch(source, &format!("{name}.weight"), [out, inp], device)?;
        let bias = if bias {
            Some(fetch(source, &format!("{name}.bias"), [out], device)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight.val().transpose());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze::<2>(),
            None => y,
        }
    }
}

#[derive(Module, Debug)]
struct RmsNorm {
    weight: Param<Tensor<1>>,
    eps: f64,
}

impl RmsNorm {
    fn build<E>(
        source: TensorSource<'_, E>,
        name: &str,
        size: usize,
        eps: f64,
        device: &Device,
    ) -> Result<RmsNorm, E> {
        Ok(RmsNorm {
            weight: fetch(source, &format!("{name}.weight"), [size], device)?,
            eps,
        })
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let inv_rms = x
            .clone()
            .square()
            .mean_dim(1)
            .add_scalar(self.eps)
            .sqrt()
            .recip();
        x * inv_rms * self.weight.val().unsqueeze::<2>()
    }
}

#[derive(Module, Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
}

#[derive(Module, Debug)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

#[derive(Module, Debug)]
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

#[derive(Module, Debug)]
struct Embedding {
    weight: Param<Tensor<2>>,
}

/// The decoder, named as transformers names it (`model.` in the weights' names).
#[derive(Module, Debug)]
struct Decoder {
    embed_tokens: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
}

/// A Llama or Qwen2 causal language model read from a Hugging Face directory: a burn module
/// whose parameter paths are transformers' tensor names (`model.layers.0.self_attn.q_proj.weight`),
/// trainable on an autodiff device.
#[derive(Module, Debug)]
pub struct HfModel {
    model: Decoder,
    /// The output projection; `None` when it is the token embedding (tied).
    lm_head: Option<Linear>,
    #[module(skip)]
    pub config: HfConfig,
    /// blake3 of the weights' content as read ([`HfWeights::content_hash`]); a trained model
    /// keeps its origin's.
    #[module(skip)]
    pub weights_hash: String,
}

impl HfModel {
    /// Reads `dir/config.json` and its weights onto `device`. Every tensor the architecture
    /// needs must be there with its shape, and no other may be left over.
    pub fn read(dir: &std::path::Path, device: &Device) -> Result<HfModel, HfError> {
        let config = HfConfig::read(dir)?;
        let mut weights = HfWeights::read(dir)?;
        if config.tie_word_embeddings {
            // Some tied checkpoints also store the head; it must then equal the embedding.
            weights.tensors.remove("lm_head.weight");
        }
        let weights_hash = weights.content_hash.clone();
        let model = HfModel::build(
            config,
            weights_hash,
            &mut |name, shape| weights.take(name, shape),
            device,
        )?;
        if let Some(name) = weights.tensors.keys().next() {
            return Err(HfError::UnusedTensor { name: name.clone() });
        }
        Ok(model)
    }

    /// The model of `config` with every tensor from `source`, by transformers' names.
    pub fn build<E>(
        config: HfConfig,
        weights_hash: String,
        source: TensorSource<'_, E>,
        device: &Device,
    ) -> Result<HfModel, E> {
        let c = &config;
        let (hidden, q_out, kv_out) =
            (c.hidden_size, c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let embed_tokens = Embedding {
            weight: fetch(
                source,
                "model.embed_tokens.weight",
                [c.vocab_size, hidden],
                device,
            )?,
        };
        let mut layers = Vec::with_capacity(c.layers);
        for i in 0..c.layers {
            let p = format!("model.layers.{i}");
            let norm = |source: TensorSource<'_, E>, name: &str| {
                RmsNorm::build(
                    source,
                    &format!("{p}.{name}"),
                    hidden,
                    c.rms_norm_eps,
                    device,
                )
            };
            let linear = |source: TensorSource<'_, E>, name: &str, out, inp, bias| {
                Linear::build(source, &format!("{p}.{name}"), out, inp, bias, device)
            };
            layers.push(Layer {
                input_layernorm: norm(source, "input_layernorm")?,
                self_attn: Attention {
                    q_proj: linear(source, "self_attn.q_proj", q_out, hidden, c.attention_bias)?,
                    k_proj: linear(source, "self_attn.k_proj", kv_out, hidden, c.attention_bias)?,
                    v_proj: linear(source, "self_attn.v_proj", kv_out, hidden, c.attention_bias)?,
                    // Qwen2 has no bias on the output projection; Llama's follows attention_bias.
                    o_proj: linear(
                        source,
                        "self_attn.o_proj",
                        hidden,
                        q_out,
                        c.attention_bias && c.architecture == super::Architecture::Llama,
                    )?,
                },
                post_attention_layernorm: norm(source, "post_attention_layernorm")?,
                mlp: Mlp {
                    gate_proj: linear(
                        source,
                        "mlp.gate_proj",
                        c.intermediate_size,
                        hidden,
                        c.mlp_bias,
                    )?,
                    up_proj: linear(
                        source,
                        "mlp.up_proj",
                        c.intermediate_size,
                        hidden,
                        c.mlp_bias,
                    )?,
                    down_proj: linear(
                        source,
                        "mlp.down_proj",
                        hidden,
                        c.intermediate_size,
                        c.mlp_bias,
                    )?,
                },
            });
        }
        let norm = RmsNorm::build(source, "model.norm", hidden, c.rms_norm_eps, device)?;
        let lm_head = if c.tie_word_embeddings {
            None
        } else {
            Some(Linear::build(
                source,
                "lm_head",
                c.vocab_size,
                hidden,
                false,
                device,
            )?)
        };
        Ok(HfModel {
            model: Decoder {
                embed_tokens,
                layers,
                norm,
            },
            lm_head,
            config,
            weights_hash,
        })
    }

    fn embed(&self) -> Tensor<2> {
        self.model.embed_tokens.weight.val()
    }

    /// Logits `[tokens, vocab]` of one sequence, each position predicting the next token.
    ///
    /// # Panics
    /// If `tokens` is empty, longer than `max_position_embeddings`, or holds an id outside the
    /// vocabulary.
    pub fn forward(&self, tokens: &[u32]) -> Tensor<2> {
        let seq = tokens.len();
        assert!(
            tokens
                .iter()
                .all(|&t| (t as usize) < self.config.vocab_size),
            "a token id is outside the vocabulary of {}",
            self.config.vocab_size
        );
        let mut cache = HfCache::new(self.model.layers.len());
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let ids =
            Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq]), &self.embed().device());
        self.run(ids, &mut cache, seq)
            .reshape([seq, self.config.vocab_size])
    }

    /// Logits `[batch, tail, vocab]` of the last `tail` of `tokens` `[batch, new]`, after the
    /// positions in `cache` (extended with the new ones): rotary positions continue from the
    /// cache's length, and each new position attends to the cached ones and the new ones up
    /// to itself. Token ids are the caller's to check ([`HfModel::forward`],
    /// [`crate::generate`]).
    fn run(&self, tokens: Tensor<2, Int>, cache: &mut HfCache, tail: usize) -> Tensor<3> {
        let c = &self.config;
        let [batch, seq] = tokens.dims();
        let start = cache.len;
        let total = start + seq;
        assert!(seq > 0, "forward on an empty sequence");
        assert!(
            tail > 0 && tail <= seq,
            "tail of {tail} positions out of {seq} new ones"
        );
        assert!(
            total <= c.max_position_embeddings,
            "{total} tokens exceed max_position_embeddings {}",
            c.max_position_embeddings
        );
        if start > 0 {
            assert_eq!(cache.batch, batch, "the cache holds {} rows", cache.batch);
        }
        let ids = tokens.reshape([batch * seq]);
        let device = self.embed().device();
        let mut x = self.embed().select(0, ids);
        let (cos, sin) = rope_tables(c, start, seq, &device);
        let mask = causal_mask(start, seq, &device).unsqueeze::<4>();
        let group = c.heads / c.kv_heads;
        for (layer, kv) in self.model.layers.iter().zip(cache.layers.iter_mut()) {
            let n = layer.input_layernorm.forward(x.clone());
            let attn = &layer.self_attn;
            // `[batch, heads, seq, head_dim]`.
            let heads = |t: Tensor<2>, count: usize| {
                t.reshape([batch, seq, count, c.head_dim]).swap_dims(1, 2)
            };
            let q = rotate(heads(attn.q_proj.forward(n.clone()), c.heads), &cos, &sin);
            let k = rotate(
                heads(attn.k_proj.forward(n.clone()), c.kv_heads),
                &cos,
                &sin,
            );
            let v = heads(attn.v_proj.forward(n), c.kv_heads);
            let (k, v) = match kv.take() {
                Some((past_k, past_v)) => (
                    Tensor::cat(vec![past_k, k], 2),
                    Tensor::cat(vec![past_v, v], 2),
                ),
                None => (k, v),
            };
            *kv = Some((k.clone(), v.clone()));
            // Grouped-query attention: query head h reads key/value head h / (heads / kv_heads).
            let expand = |t: Tensor<4>| {
                t.unsqueeze_dim::<5>(2)
                    .repeat_dim(2, group)
                    .reshape([batch, c.heads, total, c.head_dim])
            };
            let scores = q
                .matmul(expand(k).swap_dims(2, 3))
                .div_scalar((c.head_dim as f64).sqrt())
                + mask.clone();
            let attended = softmax(scores, 3)
                .matmul(expand(v))
                .swap_dims(1, 2)
                .reshape([batch * seq, c.heads * c.head_dim]);
            x = x + attn.o_proj.forward(attended);
            let n = layer.post_attention_layernorm.forward(x.clone());
            let mlp = &layer.mlp;
            let hidden = silu(mlp.gate_proj.forward(n.clone())) * mlp.up_proj.forward(n);
            x = x + mlp.down_proj.forward(hidden);
        }
        cache.len = total;
        cache.batch = batch;
        // Only the positions asked for go through the output projection.
        let x = self
            .model
            .norm
            .forward(x)
            .reshape([batch, seq, c.hidden_size])
            .narrow(1, seq - tail, tail)
            .reshape([batch * tail, c.hidden_size]);
        let logits = match &self.lm_head {
            Some(head) => head.forward(x),
            None => x.matmul(self.embed().transpose()),
        };
        logits.reshape([batch, tail, c.vocab_size])
    }

    /// The `new` tokens greedy decoding appends to `prompt` (no stop token), with the cache.
    pub fn greedy(&self, prompt: &[u32], new: usize) -> Vec<u32> {
        let device = self.embed().device();
        let mut cache = HfCache::new(self.model.layers.len());
        let mut next = prompt.to_vec();
        let mut out = Vec::with_capacity(new);
        for _ in 0..new {
            let ids: Vec<i64> = next.iter().map(|&t| i64::from(t)).collect();
            let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, next.len()]), &device);
            let logits: Vec<f32> = self
                .run(ids, &mut cache, 1)
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("float logits");
            let token = crate::sampling::argmax(&logits);
            out.push(token);
            next = vec![token];
        }
        out
    }
}

/// Keys and values `[batch, kv_heads, positions, head_dim]` of every layer.
#[derive(Debug, Clone)]
pub struct HfCache {
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    len: usize,
    batch: usize,
}

impl HfCache {
    fn new(layers: usize) -> HfCache {
        HfCache {
            layers: vec![None; layers],
            len: 0,
            batch: 0,
        }
    }
}

impl crate::causal_lm::CausalLm for HfModel {
    type Cache = HfCache;

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn max_seq_len(&self) -> usize {
        self.config.max_position_embeddings
    }

    fn device(&self) -> Device {
        self.embed().device()
    }

    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let seq = tokens.dims()[1];
        self.run(tokens, &mut HfCache::new(self.model.layers.len()), seq)
    }

    fn new_cache(&self) -> HfCache {
        HfCache::new(self.model.layers.len())
    }

    fn cache_rows(cache: &HfCache) -> usize {
        cache.batch
    }

    fn select_cache_rows(cache: &HfCache, rows: &[usize]) -> HfCache {
        let select = |t: &Tensor<4>| {
            let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(ids, [rows.len()]), &t.device());
            t.clone().select(0, index)
        };
        HfCache {
            layers: cache
                .layers
                .iter()
                .map(|kv| kv.as_ref().map(|(k, v)| (select(k), select(v))))
                .collect(),
            len: cache.len,
            batch: rows.len(),
        }
    }

    fn forward_cached_tail(
        &self,
        tokens: Tensor<2, Int>,
        cache: &mut HfCache,
        tail: usize,
    ) -> Tensor<3> {
        self.run(tokens, cache, tail)
    }
}

/// `cos` and `sin` `[1, 1, seq, head_dim]` of positions `start..start + seq`, each half
/// repeating the frequencies, computed in `f32` as transformers does.
fn rope_tables(c: &HfConfig, start: usize, seq: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let half = c.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (c.rope_theta as f32).powf((2 * i) as f32 / c.head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(seq * c.head_dim);
    let mut sin = Vec::with_capacity(seq * c.head_dim);
    for pos in start..start + seq {
        for i in 0..c.head_dim {
            let angle = pos as f32 * inv_freq[i % half];
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    let table = |v| Tensor::<2>::from_data(TensorData::new(v, [seq, c.head_dim]), device);
    (table(cos).unsqueeze::<4>(), table(sin).unsqueeze::<4>())
}

/// `x·cos + rotate_half(x)·sin` for `x` `[batch, heads, seq, head_dim]`, where
/// `rotate_half(a, b) = (−b, a)`.
fn rotate(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let half = x.dims()[3] / 2;
    let a = x.clone().narrow(3, 0, half);
    let b = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![b.neg(), a], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// `[seq, start + seq]`: new position `i` (at `start + i`) attends to positions
/// `0..=start + i` (0), not to later ones (−∞).
fn causal_mask(start: usize, seq: usize, device: &Device) -> Tensor<2> {
    let total = start + seq;
    let values: Vec<f32> = (0..seq)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j <= start + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::<2>::from_data(TensorData::new(values, [seq, total]), device)
}
