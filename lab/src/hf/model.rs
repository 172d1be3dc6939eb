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
//! causal with `heads / kv_heads` query heads per key/value head. Inference only: the weights are
//! plain tensors, not trainable parameters.

use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};

use super::config::HfConfig;
use super::weights::HfWeights;
use super::HfError;

/// `y = x · Wᵀ + b`, with `W` `[out, in]` as stored.
#[derive(Debug, Clone)]
struct Linear {
    weight_t: Tensor<2>,
    bias: Option<Tensor<1>>,
}

impl Linear {
    fn read(
        weights: &mut HfWeights,
        name: &str,
        out: usize,
        inp: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Linear, HfError> {
        let w = weights.take(&format!("{name}.weight"), &[out, inp])?;
        let weight_t = Tensor::<2>::from_data(TensorData::new(w, [out, inp]), device).transpose();
        let bias = if bias {
            let b = weights.take(&format!("{name}.bias"), &[out])?;
            Some(Tensor::<1>::from_data(TensorData::new(b, [out]), device))
        } else {
            None
        };
        Ok(Linear { weight_t, bias })
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = x.matmul(self.weight_t.clone());
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor<1>,
    eps: f64,
}

impl RmsNorm {
    fn read(
        weights: &mut HfWeights,
        name: &str,
        size: usize,
        eps: f64,
        device: &Device,
    ) -> Result<RmsNorm, HfError> {
        let w = weights.take(&format!("{name}.weight"), &[size])?;
        Ok(RmsNorm {
            weight: Tensor::<1>::from_data(TensorData::new(w, [size]), device),
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
        x * inv_rms * self.weight.clone().unsqueeze::<2>()
    }
}

#[derive(Debug, Clone)]
struct Layer {
    input_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// A Llama or Qwen2 causal language model read from a Hugging Face directory.
#[derive(Debug, Clone)]
pub struct HfModel {
    pub config: HfConfig,
    /// blake3 of the weights' content ([`HfWeights::content_hash`]).
    pub weights_hash: String,
    embed: Tensor<2>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    /// `[hidden, vocab]`: the output projection, transposed once.
    lm_head_t: Tensor<2>,
}

impl HfModel {
    /// Reads `dir/config.json` and its weights onto `device`. Every tensor the architecture
    /// needs must be there with its shape, and no other may be left over.
    pub fn read(dir: &std::path::Path, device: &Device) -> Result<HfModel, HfError> {
        let config = HfConfig::read(dir)?;
        let mut weights = HfWeights::read(dir)?;
        let weights_hash = weights.content_hash.clone();
        let c = &config;
        let (hidden, q_out, kv_out) =
            (c.hidden_size, c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let embed_values = weights.take("model.embed_tokens.weight", &[c.vocab_size, hidden])?;
        let embed = Tensor::<2>::from_data(
            TensorData::new(embed_values, [c.vocab_size, hidden]),
            device,
        );
        let mut layers = Vec::with_capacity(c.layers);
        for i in 0..c.layers {
            let p = format!("model.layers.{i}");
            let linear = |w: &mut HfWeights, name: &str, out, inp, bias| {
                Linear::read(w, &format!("{p}.{name}"), out, inp, bias, device)
            };
            layers.push(Layer {
                input_norm: RmsNorm::read(
                    &mut weights,
                    &format!("{p}.input_layernorm"),
                    hidden,
                    c.rms_norm_eps,
                    device,
                )?,
                q: linear(
                    &mut weights,
                    "self_attn.q_proj",
                    q_out,
                    hidden,
                    c.attention_bias,
                )?,
                k: linear(
                    &mut weights,
                    "self_attn.k_proj",
                    kv_out,
                    hidden,
                    c.attention_bias,
                )?,
                v: linear(
                    &mut weights,
                    "self_attn.v_proj",
                    kv_out,
                    hidden,
                    c.attention_bias,
                )?,
                // Qwen2 has no bias on the output projection; Llama's follows attention_bias.
                o: linear(
                    &mut weights,
                    "self_attn.o_proj",
                    hidden,
                    q_out,
                    c.attention_bias && c.architecture == super::Architecture::Llama,
                )?,
                post_norm: RmsNorm::read(
                    &mut weights,
                    &format!("{p}.post_attention_layernorm"),
                    hidden,
                    c.rms_norm_eps,
                    device,
                )?,
                gate: linear(
                    &mut weights,
                    "mlp.gate_proj",
                    c.intermediate_size,
                    hidden,
                    c.mlp_bias,
                )?,
                up: linear(
                    &mut weights,
                    "mlp.up_proj",
                    c.intermediate_size,
                    hidden,
                    c.mlp_bias,
                )?,
                down: linear(
                    &mut weights,
                    "mlp.down_proj",
                    hidden,
                    c.intermediate_size,
                    c.mlp_bias,
                )?,
            });
        }
        let norm = RmsNorm::read(&mut weights, "model.norm", hidden, c.rms_norm_eps, device)?;
        let lm_head_t = if c.tie_word_embeddings {
            // Some tied checkpoints also store the head; it must then equal the embedding.
            weights.tensors.remove("lm_head.weight");
            embed.clone().transpose()
        } else {
            let head = weights.take("lm_head.weight", &[c.vocab_size, hidden])?;
            Tensor::<2>::from_data(TensorData::new(head, [c.vocab_size, hidden]), device)
                .transpose()
        };
        if let Some(name) = weights.tensors.keys().next() {
            return Err(HfError::UnusedTensor { name: name.clone() });
        }
        Ok(HfModel {
            config,
            weights_hash,
            embed,
            layers,
            norm,
            lm_head_t,
        })
    }

    /// Logits `[tokens, vocab]` of one sequence, each position predicting the next token.
    ///
    /// # Panics
    /// If `tokens` is empty, longer than `max_position_embeddings`, or holds an id outside the
    /// vocabulary.
    pub fn forward(&self, tokens: &[u32]) -> Tensor<2> {
        let c = &self.config;
        let seq = tokens.len();
        assert!(seq > 0, "forward on an empty sequence");
        assert!(
            seq <= c.max_position_embeddings,
            "{seq} tokens exceed max_position_embeddings {}",
            c.max_position_embeddings
        );
        assert!(
            tokens.iter().all(|&t| (t as usize) < c.vocab_size),
            "a token id is outside the vocabulary of {}",
            c.vocab_size
        );
        let device = self.embed.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [seq]), &device);
        let mut x = self.embed.clone().select(0, ids);
        let (cos, sin) = rope_tables(c, seq, &device);
        let mask = causal_mask(seq, &device);
        for layer in &self.layers {
            let n = layer.input_norm.forward(x.clone());
            let heads =
                |t: Tensor<2>, count: usize| t.reshape([seq, count, c.head_dim]).swap_dims(0, 1);
            let q = rotate(heads(layer.q.forward(n.clone()), c.heads), &cos, &sin);
            let k = rotate(heads(layer.k.forward(n.clone()), c.kv_heads), &cos, &sin);
            let v = heads(layer.v.forward(n), c.kv_heads);
            // Grouped-query attention: query head h reads key/value head h / (heads / kv_heads).
            let group = c.heads / c.kv_heads;
            let expand = |t: Tensor<3>| {
                t.unsqueeze_dim::<4>(1)
                    .repeat_dim(1, group)
                    .reshape([c.heads, seq, c.head_dim])
            };
            let (k, v) = (expand(k), expand(v));
            let scores = q
                .matmul(k.swap_dims(1, 2))
                .div_scalar((c.head_dim as f64).sqrt())
                + mask.clone().unsqueeze::<3>();
            let attended = softmax(scores, 2)
                .matmul(v)
                .swap_dims(0, 1)
                .reshape([seq, c.heads * c.head_dim]);
            x = x + layer.o.forward(attended);
            let n = layer.post_norm.forward(x.clone());
            let hidden = silu(layer.gate.forward(n.clone())) * layer.up.forward(n);
            x = x + layer.down.forward(hidden);
        }
        self.norm.forward(x).matmul(self.lm_head_t.clone())
    }

    /// A sampled continuation of `prompt`: up to `max_new_tokens` tokens drawn by `processor`
    /// from `rng` (full re-forward each step), ending early after a token of `stop_ids` or once
    /// `stop_text(tokens so far)` says so. The stop token is kept.
    pub fn sample(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        processor: &crate::sampling::LogitsProcessor,
        rng: &mut crate::rng::Rng,
        stop_ids: &[u32],
        stop_text: &dyn Fn(&[u32]) -> bool,
    ) -> Vec<u32> {
        let mut sequence = prompt.to_vec();
        let limit = max_new_tokens.min(
            self.config
                .max_position_embeddings
                .saturating_sub(prompt.len()),
        );
        for _ in 0..limit {
            let seq = sequence.len();
            let last: Vec<f32> = self
                .forward(&sequence)
                .narrow(0, seq - 1, 1)
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("float logits");
            let token = processor.sample(&last, rng);
            sequence.push(token);
            if stop_ids.contains(&token) || stop_text(&sequence[prompt.len()..]) {
                break;
            }
        }
        sequence[prompt.len()..].to_vec()
    }

    /// The `new` tokens greedy decoding appends to `prompt` (no stop token).
    pub fn greedy(&self, prompt: &[u32], new: usize) -> Vec<u32> {
        // Greedy decoding draws nothing from the stream.
        let greedy = crate::sampling::LogitsProcessor::new(0.0, 1.0);
        let mut unused = crate::rng::Rng::new(0);
        self.sample(prompt, new, &greedy, &mut unused, &[], &|_| false)
    }
}

/// `cos` and `sin` `[seq, head_dim]` of positions `0..seq`, each half repeating the
/// frequencies, computed in `f32` as transformers does.
fn rope_tables(c: &HfConfig, seq: usize, device: &Device) -> (Tensor<3>, Tensor<3>) {
    let half = c.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / (c.rope_theta as f32).powf((2 * i) as f32 / c.head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(seq * c.head_dim);
    let mut sin = Vec::with_capacity(seq * c.head_dim);
    for pos in 0..seq {
        for i in 0..c.head_dim {
            let angle = pos as f32 * inv_freq[i % half];
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    let table = |v| Tensor::<2>::from_data(TensorData::new(v, [seq, c.head_dim]), device);
    (table(cos).unsqueeze::<3>(), table(sin).unsqueeze::<3>())
}

/// `x·cos + rotate_half(x)·sin` for `x` `[heads, seq, head_dim]`, where `rotate_half(a, b) =
/// (−b, a)`.
fn rotate(x: Tensor<3>, cos: &Tensor<3>, sin: &Tensor<3>) -> Tensor<3> {
    let half = x.dims()[2] / 2;
    let a = x.clone().narrow(2, 0, half);
    let b = x.clone().narrow(2, half, half);
    let rotated = Tensor::cat(vec![b.neg(), a], 2);
    x * cos.clone() + rotated * sin.clone()
}

/// 0 on and below the diagonal, −∞ above: position `i` attends to `0..=i`.
fn causal_mask(seq: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..seq)
        .flat_map(|i| (0..seq).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
        .collect();
    Tensor::<2>::from_data(TensorData::new(values, [seq, seq]), device)
}
