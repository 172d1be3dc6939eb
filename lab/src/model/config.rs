//! The model's sizes, as written in a spec: serde, unknown keys rejected, every default filled in.

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use super::transformer::Transformer;

/// Sizes of the decoder-only transformer. Part of an experiment's identity, so every field is
/// explicit and defaults are filled in before hashing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Number of token ids. Set by the stage from the tokenizer; 0 (the default) is refused by
    /// [`ModelConfig::validate`] so a forgotten assignment cannot slip through.
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// Hidden width of the SwiGLU MLP (three `d_model × d_ff` matrices per block).
    pub d_ff: usize,
    /// Longest sequence (prompt + completion) the model accepts, in tokens.
    pub max_seq_len: usize,
    /// Base of the rotary position frequencies.
    pub rope_theta: f64,
    /// Epsilon inside RMSNorm's square root.
    pub norm_eps: f64,
    /// Seed of the weight initialisation (see `model::init`).
    pub init_seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            vocab_size: 0,
            d_model: 128,
            n_layers: 4,
            n_heads: 4,
            d_ff: 512,
            max_seq_len: 256,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
            init_seed: 0,
        }
    }
}

impl ModelConfig {
    /// Every problem at once, as `(field, reason)`.
    pub fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, reason: String| problems.push((field.to_string(), reason));

        if self.vocab_size == 0 {
            bad(
                "vocab_size",
                "must be > 0 (the stage sets it from the tokenizer)".into(),
            );
        }
        for (field, value) in [
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
            ("max_seq_len", self.max_seq_len),
        ] {
            if value == 0 {
                bad(field, "must be > 0".into());
            }
        }
        if self.n_heads > 0 && self.d_model > 0 {
            if !self.d_model.is_multiple_of(self.n_heads) {
                bad(
                    "n_heads",
                    format!(
                        "must divide d_model ({}), got {}",
                        self.d_model, self.n_heads
                    ),
                );
            } else if !(self.d_model / self.n_heads).is_multiple_of(2) {
                bad(
                    "n_heads",
                    format!(
                        "head size d_model / n_heads = {} must be even for rotary positions",
                        self.d_model / self.n_heads
                    ),
                );
            }
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            bad(
                "rope_theta",
                format!("must be finite and > 1, got {}", self.rope_theta),
            );
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            bad(
                "norm_eps",
                format!("must be finite and > 0, got {}", self.norm_eps),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// A freshly initialised model on `device` (use `device.autodiff()` to train it).
    /// Weights depend only on `init_seed` and the sizes, never on burn's RNG.
    ///
    /// # Panics
    /// If the config is invalid: call [`ModelConfig::validate`] first (specs do).
    pub fn init(&self, device: &Device) -> Transformer {
        if let Err(problems) = self.validate() {
            panic!("invalid ModelConfig: {problems:?}");
        }
        Transformer::build(self, device, &mut |name, shape| {
            Ok::<_, std::convert::Infallible>(super::init::initial_values(self, name, shape))
        })
        .unwrap_or_else(|never| match never {})
    }

    /// Every parameter tensor the model has, as `(name, shape)`, sorted by name. These names are
    /// the checkpoint names.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (self.d_model, self.d_ff);
        let mut shapes = vec![
            ("embed.weight".to_string(), vec![self.vocab_size, d]),
            ("norm_final.weight".to_string(), vec![d]),
        ];
        for layer in 0..self.n_layers {
            let p = format!("blocks.{layer}");
            shapes.extend([
                (format!("{p}.attn_norm.weight"), vec![d]),
                (format!("{p}.attn.wq.weight"), vec![d, d]),
                (format!("{p}.attn.wk.weight"), vec![d, d]),
                (format!("{p}.attn.wv.weight"), vec![d, d]),
                (format!("{p}.attn.wo.weight"), vec![d, d]),
                (format!("{p}.mlp_norm.weight"), vec![d]),
                (format!("{p}.mlp.w_gate.weight"), vec![d, f]),
                (format!("{p}.mlp.w_up.weight"), vec![d, f]),
                (format!("{p}.mlp.w_down.weight"), vec![f, d]),
            ]);
        }
        shapes.sort();
        shapes
    }

    /// Number of parameters (the tied embedding counted once).
    /// `V·d + L·(4·d² + 3·d·d_ff + 2·d) + d`.
    pub fn parameter_count(&self) -> usize {
        let (d, f, l) = (self.d_model, self.d_ff, self.n_layers);
        self.vocab_size * d + l * (4 * d * d + 3 * d * f + 2 * d) + d
    }

    /// Training FLOPs per token at context length `seq_len`, the PaLM (Chowdhery et al. 2022,
    /// appendix B) estimate `6·N + 12·L·d·T`:
    /// - `N` = parameters that take part in a matmul per token: the blocks' matrices plus the
    ///   output projection (the tied embedding, `V·d`); the input lookup and the norms are free.
    ///   Forward is `2·N`, backward `4·N`.
    /// - `12·L·d·T`: attention scores `QKᵀ` and `A·V`, `2·T·d` each forward, ×3 for training.
    ///   Causal masking is ignored (an upper bound by up to 2× on that term), as in PaLM.
    pub fn flops_per_token_training(&self, seq_len: usize) -> f64 {
        let (d, f, l) = (self.d_model as f64, self.d_ff as f64, self.n_layers as f64);
        let n = l * (4.0 * d * d + 3.0 * d * f) + self.vocab_size as f64 * d;
        6.0 * n + 12.0 * l * d * seq_len as f64
    }
}
