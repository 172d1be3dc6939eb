//! A Hugging Face `config.json` of the Llama and Qwen2 families, resolved to what the forward
//! pass needs. Keys that change the numerics and that this reader does not implement (RoPE
//! scaling, sliding windows, another activation) are refused by name rather than ignored.

use std::path::Path;

use serde_json::Value;

use super::HfError;

/// The architectures read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `LlamaForCausalLM`: no biases unless `attention_bias` / `mlp_bias` say so.
    Llama,
    /// `Qwen2ForCausalLM`: biases on the query, key and value projections.
    Qwen2,
}

/// The sizes and constants of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub layers: usize,
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// The output projection is the token embedding.
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    pub max_position_embeddings: usize,
}

impl HfConfig {
    /// Parameters of the model, the head counted once when it is tied to the embedding.
    pub fn parameters(&self) -> u64 {
        let (h, q, kv, m) = (
            self.hidden_size as u64,
            (self.heads * self.head_dim) as u64,
            (self.kv_heads * self.head_dim) as u64,
            self.intermediate_size as u64,
        );
        let attention_bias = if self.attention_bias { q + 2 * kv } else { 0 };
        let o_bias = u64::from(self.attention_bias && self.architecture == Architecture::Llama) * h;
        let mlp_bias = if self.mlp_bias { 2 * m + h } else { 0 };
        let layer =
            h * q + 2 * h * kv + q * h + attention_bias + o_bias + 3 * h * m + mlp_bias + 2 * h;
        let embed = self.vocab_size as u64 * h;
        let head = if self.tie_word_embeddings { 0 } else { embed };
        embed + self.layers as u64 * layer + h + head
    }

    /// Reads `dir/config.json`.
    pub fn read(dir: &Path) -> Result<HfConfig, HfError> {
        super::read_json(dir.join("config.json"), HfConfig::from_json)
    }

    /// The config of a parsed `config.json`; the error names the key.
    pub fn from_json(json: &Value) -> Result<HfConfig, String> {
        let usize_of = |key: &str| -> Result<usize, String> {
            json.get(key)
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| format!("`{key}` is missing or not a whole number"))
        };
        let f64_or = |key: &str, default: f64| -> Result<f64, String> {
            match json.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| format!("`{key}` is not a number: {v}")),
            }
        };
        let bool_or = |key: &str, default: bool| -> Result<bool, String> {
            match json.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => v
                    .as_bool()
                    .ok_or_else(|| format!("`{key}` is not true or false: {v}")),
            }
        };
        let architecture = match json.get("model_type").and_then(Value::as_str) {
            Some("llama") => Architecture::Llama,
            Some("qwen2") => Architecture::Qwen2,
            Some(other) => {
                return Err(format!(
                    "`model_type` is `{other}`; the architectures read are `llama` and `qwen2`"
                ))
            }
            None => return Err("`model_type` is missing".into()),
        };
        if let Some(act) = json.get("hidden_act").and_then(Value::as_str) {
            if act != "silu" {
                return Err(format!(
                    "`hidden_act` is `{act}`; only `silu` is implemented"
                ));
            }
        }
        // transformers ≥ 5 keeps RoPE's settings under `rope_parameters`; older files use
        // `rope_theta` and `rope_scaling` at the top level.
        let rope = json.get("rope_parameters").unwrap_or(json);
        let rope_type = rope
            .get("rope_type")
            .or_else(|| json.get("rope_scaling").and_then(|s| s.get("rope_type")))
            .and_then(Value::as_str)
            .unwrap_or("default");
        if rope_type != "default" {
            return Err(format!(
                "`rope_type` is `{rope_type}`; only unscaled RoPE (`default`) is implemented"
            ));
        }
        let rope_theta = match rope.get("rope_theta").or_else(|| json.get("rope_theta")) {
            None => 10_000.0,
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("`rope_theta` is not a number: {v}"))?,
        };
        if bool_or("use_sliding_window", false)? {
            return Err(
                "`use_sliding_window` is true; sliding-window attention is not implemented".into(),
            );
        }
        let hidden_size = usize_of("hidden_size")?;
        let heads = usize_of("num_attention_heads")?;
        let kv_heads = match json.get("num_key_value_heads") {
            None | Some(Value::Null) => heads,
            Some(_) => usize_of("num_key_value_heads")?,
        };
        let head_dim = match json.get("head_dim") {
            None | Some(Value::Null) => hidden_size / heads.max(1),
            Some(_) => usize_of("head_dim")?,
        };
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
            return Err(format!(
                "`num_attention_heads` ({heads}) must be a positive multiple of `num_key_value_heads` ({kv_heads})"
            ));
        }
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(format!("`head_dim` ({head_dim}) must be even and positive"));
        }
        Ok(HfConfig {
            architecture,
            vocab_size: usize_of("vocab_size")?,
            hidden_size,
            intermediate_size: usize_of("intermediate_size")?,
            layers: usize_of("num_hidden_layers")?,
            heads,
            kv_heads,
            head_dim,
            rms_norm_eps: f64_or("rms_norm_eps", 1e-6)?,
            rope_theta,
            tie_word_embeddings: bool_or("tie_word_embeddings", false)?,
            attention_bias: match architecture {
                Architecture::Qwen2 => true,
                Architecture::Llama => bool_or("attention_bias", false)?,
            },
            mlp_bias: bool_or("mlp_bias", false)?,
            max_position_embeddings: usize_of("max_position_embeddings")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn qwen2() -> Value {
        json!({
            "model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 516, "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
            "tie_word_embeddings": true, "hidden_act": "silu"
        })
    }

    #[test]
    fn a_qwen2_config_resolves_its_defaults() {
        let c = HfConfig::from_json(&qwen2()).unwrap();
        assert_eq!(c.architecture, Architecture::Qwen2);
        assert_eq!((c.heads, c.kv_heads, c.head_dim), (4, 2, 16));
        assert_eq!(c.rope_theta, 1e6);
        assert!(c.attention_bias && c.tie_word_embeddings && !c.mlp_bias);
    }

    #[test]
    fn what_is_not_implemented_is_refused_by_name() {
        let mut scaled = qwen2();
        scaled["rope_parameters"]["rope_type"] = json!("yarn");
        assert!(HfConfig::from_json(&scaled).unwrap_err().contains("yarn"));
        let mut other = qwen2();
        other["model_type"] = json!("gpt2");
        assert!(HfConfig::from_json(&other).unwrap_err().contains("gpt2"));
        let mut missing = qwen2();
        missing.as_object_mut().unwrap().remove("hidden_size");
        assert!(HfConfig::from_json(&missing)
            .unwrap_err()
            .contains("hidden_size"));
        let mut odd = qwen2();
        odd["num_key_value_heads"] = json!(3);
        assert!(HfConfig::from_json(&odd)
            .unwrap_err()
            .contains("num_key_value_heads"));
    }
}
