//! Real models: Llama and Qwen2 read from a Hugging Face model directory (`config.json`,
//! `model.safetensors` or its shards), with their forward pass checked against transformers'
//! logits (`tests/fixtures/hf`, made by `../shared/peers/make_tiny_qwen2.py`).
//!
//! Chat templates render as transformers renders them ([`ChatTemplate`]); byte-level BPE
//! tokenizers encode as the `tokenizers` library does ([`HfTokenizer`]).
//!
//! [`HfBundle`] holds all three; it asks questions through the chat template
//! ([`crate::evaluation::Prompter`]), generates through [`crate::causal_lm::CausalLm`] and
//! trains through [`crate::causal_lm::TrainableLm`], so every stage that reads a model (eval,
//! grpo, sft, reject) takes a model directory as its `model` input (the `hf` stage kind,
//! [`crate::stages::hf_model`]).

mod chat;
mod config;
mod model;
mod tokenizer;
mod weights;

use std::path::{Path, PathBuf};

pub use chat::{ChatTemplate, Message};
pub use config::{Architecture, HfConfig};
pub use model::{HfCache, HfModel};
pub use tokenizer::{HfText, HfTokenizer};
pub use weights::{HfTensor, HfWeights};

/// Reads the JSON file `path` and takes what `parse` makes of it; every error names the file.
fn read_json<T>(
    path: PathBuf,
    parse: impl FnOnce(&serde_json::Value) -> Result<T, String>,
) -> Result<T, HfError> {
    let text = std::fs::read_to_string(&path).map_err(|source| HfError::Io {
        path: path.clone(),
        source,
    })?;
    let json = serde_json::from_str(&text).map_err(|e| HfError::Config {
        path: path.clone(),
        message: e.to_string(),
    })?;
    parse(&json).map_err(|message| HfError::Config { path, message })
}

/// The files of a model directory, besides its weights, that change what the lab computes with
/// it: the architecture, the tokenizer and the chat template.
pub const TEXT_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
];

/// blake3 over the name and bytes of each of [`TEXT_FILES`] that `dir` has.
pub fn text_files_hash(dir: &Path) -> Result<String, HfError> {
    let mut hasher = blake3::Hasher::new();
    for name in TEXT_FILES {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                hasher.update(format!("{name}\t{}\n", bytes.len()).as_bytes());
                hasher.update(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(HfError::Io { path, source }),
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Writes `model` as a model directory that transformers reads: every file of `origin` but its
/// weights (config, tokenizer, chat template, ...), and `model.safetensors` with the model's
/// parameters in f32 under transformers' names. `out` must not exist yet or be empty, so
/// nothing is overwritten.
pub fn write_directory(origin: &Path, model: &HfModel, out: &Path) -> Result<(), HfError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HfError::Io { path, source }
    };
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(HfError::Config {
            path: out.to_path_buf(),
            message: "not empty; the model is written into a new or empty folder".into(),
        });
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    for entry in std::fs::read_dir(origin).map_err(io(origin))? {
        let path = entry.map_err(io(origin))?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let weights = name.ends_with(".safetensors") || name == "model.safetensors.index.json";
        if path.is_file() && !weights {
            std::fs::copy(&path, out.join(&name)).map_err(io(&path))?;
        }
    }
    let tensors = crate::model::named_tensors(model);
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors.iter().zip(&bytes).map(|(t, data)| {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), data)
                .expect("a tensor's bytes fit its shape");
        (t.name.clone(), view)
    });
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let path = out.join("model.safetensors");
    let file =
        safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| HfError::Weights {
            path: path.clone(),
            message: e.to_string(),
        })?;
    std::fs::write(&path, file).map_err(io(&path))
}

/// A model directory read whole: the model on a device, its tokenizer and its chat template.
#[derive(Debug)]
pub struct HfBundle {
    pub model: HfModel,
    pub tokenizer: HfText,
    pub template: ChatTemplate,
}

impl HfBundle {
    pub fn read(dir: &Path, device: &burn::prelude::Device) -> Result<HfBundle, HfError> {
        let model = HfModel::read(dir, device)?;
        let template = ChatTemplate::read(dir)?;
        let tokenizer = HfText::new(HfTokenizer::read(dir)?, &template, model.config.vocab_size)
            .map_err(|message| HfError::Config {
                path: dir.join("tokenizer_config.json"),
                message,
            })?;
        Ok(HfBundle {
            model,
            tokenizer,
            template,
        })
    }

    /// `messages` through the chat template with the assistant's turn opened, followed by
    /// `opening` (the start of the assistant's answer).
    pub fn chat_text(&self, messages: &[Message], opening: &str) -> Result<String, String> {
        let mut text = self
            .template
            .render(messages, true, &Default::default())
            .map_err(|e| format!("the chat template failed: {e}"))?;
        text.push_str(opening);
        Ok(text)
    }

    /// [`HfBundle::chat_text`] as token ids.
    pub fn chat_ids(&self, messages: &[Message], opening: &str) -> Result<Vec<u32>, String> {
        self.tokenizer
            .inner()
            .encode(&self.chat_text(messages, opening)?)
    }

    /// The user's turn and the opening of the answer that `prompting` makes of a question.
    fn question_turn(
        prompting: crate::evaluation::Prompting,
        question: &str,
        lang: crate::world::Lang,
    ) -> ([Message; 1], String) {
        let (user, opening) = crate::evaluation::chat_turn(prompting, question, lang);
        let turn = [Message {
            role: "user".into(),
            content: user,
        }];
        (turn, opening)
    }
}

impl crate::evaluation::Prompter for HfBundle {
    /// The question as a user turn of the chat template ([`crate::evaluation::chat_turn`]).
    fn prompt_ids(
        &self,
        prompting: crate::evaluation::Prompting,
        question: &str,
        lang: crate::world::Lang,
    ) -> Result<Vec<u32>, String> {
        let (turn, opening) = HfBundle::question_turn(prompting, question, lang);
        self.chat_ids(&turn, &opening)
    }

    /// The rendered chat, or the template's error in its place.
    fn prompt_text(
        &self,
        prompting: crate::evaluation::Prompting,
        question: &str,
        lang: crate::world::Lang,
    ) -> String {
        let (turn, opening) = HfBundle::question_turn(prompting, question, lang);
        self.chat_text(&turn, &opening).unwrap_or_else(|e| e)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HfError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("the weights have no tensor `{name}`")]
    MissingTensor { name: String },
    #[error("tensor `{name}` has shape {found:?}, the config needs {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor `{name}` is not part of the architecture the config names")]
    UnusedTensor { name: String },
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use burn::prelude::*;
    use safetensors::{Dtype, SafeTensors};

    use super::*;

    /// The device the model tests run on: flex, or `LAB_TEST_DEVICE` (`just test-tch` runs
    /// them on LibTorch's CPU backend; `cuda:0` on a GPU machine).
    fn test_device() -> Device {
        let name = std::env::var("LAB_TEST_DEVICE").unwrap_or_default();
        crate::device::parse(&name).unwrap_or_else(|e| panic!("LAB_TEST_DEVICE: {e}"))
    }

    /// transformers' outputs on the fixtures: the tensors' bytes and the JSON beside them.
    fn reference_files() -> (Vec<u8>, serde_json::Value) {
        let bytes = std::fs::read(fixtures().join("reference.safetensors")).unwrap();
        let json = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join("reference.json")).unwrap(),
        )
        .unwrap();
        (bytes, json)
    }

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf")
    }

    /// transformers' logits are matched to this (max abs, f32), as the issue asks.
    const TOLERANCE: f32 = 1e-4;

    /// The token ids `name` (stored as i64) of a reference file.
    fn reference_ids(file: &SafeTensors, name: &str) -> Vec<u32> {
        let view = file.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::I64, "{name}");
        view.data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
            .collect()
    }

    /// The shape and f32 values of the tensor `name` of a reference file.
    fn reference_floats(file: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
        let view = file.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{name}");
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        (view.shape().to_vec(), values)
    }

    /// Token ids written as a JSON list.
    fn json_ids(value: &serde_json::Value) -> Vec<u32> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    }

    /// The largest absolute difference between `logits` and `want`, whose shape it must have.
    fn max_abs_diff(logits: Tensor<2>, shape: &[usize], want: &[f32]) -> f32 {
        assert_eq!(logits.dims().as_slice(), shape);
        let got = logits.into_data().try_into_vec_as::<f32>().unwrap();
        got.iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    }

    /// Every fixture model's logits on the three reference prompts (English with an R1 tag, a
    /// chat turn, Chinese mixed with English) equal transformers' to 1e-4, and greedy decoding
    /// continues each prompt with transformers' tokens.
    #[test]
    fn the_parameter_count_is_the_stored_tensors_count() {
        for name in ["llama", "qwen2", "qwen2-bf16"] {
            let dir = fixtures().join(name);
            let config = HfConfig::read(&dir).unwrap();
            let weights = HfWeights::read(&dir).unwrap();
            let stored: u64 = weights
                .tensors
                .iter()
                .filter(|(n, _)| !(config.tie_word_embeddings && *n == "lm_head.weight"))
                .map(|(_, t)| t.shape.iter().product::<usize>() as u64)
                .sum();
            assert_eq!(config.parameters(), stored, "{name}");
        }
    }

    /// A question put through the chat template: the R1-Zero instructions and the question in
    /// the user's turn, the compact template's `<think>` after the assistant's turn opens.
    #[test]
    fn questions_are_put_through_the_chat_template() {
        use crate::evaluation::{Prompter, Prompting};
        let bundle = HfBundle::read(&fixtures().join("llama"), &Device::flex()).unwrap();
        let text = |p| bundle.prompt_text(p, "What is 2 + 3?", crate::world::Lang::En);
        let r1_zero = text(Prompting::R1Zero);
        assert!(
            r1_zero.starts_with("<|im_start|>user\nA conversation between User and Assistant.")
                && r1_zero.ends_with(
                    "<answer> answer here </answer>.\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
                ),
            "{r1_zero:?}"
        );
        assert!(text(Prompting::Compact).ends_with("<|im_start|>assistant\n<think>"));
        assert!(text(Prompting::Direct).ends_with("<|im_start|>assistant\nThe answer is"));
        let ids = bundle
            .prompt_ids(Prompting::Compact, "What is 2 + 3?", crate::world::Lang::En)
            .unwrap();
        assert_eq!(
            ids,
            bundle
                .tokenizer
                .inner()
                .encode(&text(Prompting::Compact))
                .unwrap()
        );
    }

    #[test]
    fn logits_and_greedy_continuations_match_transformers() {
        let (bytes, json) = reference_files();
        let reference = SafeTensors::deserialize(&bytes).unwrap();
        let device = test_device();
        for name in ["qwen2", "qwen2-bf16", "llama"] {
            let model = HfModel::read(&fixtures().join(name), &device).unwrap();
            let outputs = json["models"][name]["outputs"].as_array().unwrap();
            for (i, expected) in outputs.iter().enumerate() {
                let ids = reference_ids(&reference, &format!("input_ids.{i}"));
                let (shape, want) = reference_floats(&reference, &format!("{name}.logits.{i}"));
                let worst = max_abs_diff(model.forward(&ids), &shape, &want);
                eprintln!("{name} prompt {i}: max abs logit difference {worst:.1e}");
                assert!(
                    worst <= TOLERANCE,
                    "{name} prompt {i}: max abs diff {worst}"
                );

                let greedy = json_ids(&expected["greedy_new_ids"]);
                assert_eq!(
                    model.greedy(&ids, greedy.len()),
                    greedy,
                    "{name} prompt {i}"
                );
            }
        }
    }

    /// The lab's sampler ([`crate::generate`]) drives a Hugging Face model through the model's
    /// own cache: greedy generation of the reference prompts in one call (prompts of different
    /// lengths) continues each with transformers' greedy tokens, and each sampled completion of
    /// a batch is the one drawn alone.
    #[test]
    fn the_labs_sampler_decodes_hugging_face_models() {
        use crate::generate::{generate, generate_one, global_sample_id, GenerationConfig};
        use crate::tokenizer::Tokenizer;
        let (bytes, json) = reference_files();
        let reference = SafeTensors::deserialize(&bytes).unwrap();
        for name in ["qwen2", "llama"] {
            let dir = fixtures().join(name);
            let model = HfModel::read(&dir, &test_device()).unwrap();
            let template = ChatTemplate::read(&dir).unwrap();
            let text = HfText::new(
                HfTokenizer::read(&dir).unwrap(),
                &template,
                model.config.vocab_size,
            )
            .unwrap();
            let outputs = json["models"][name]["outputs"].as_array().unwrap();
            let prompts: Vec<Vec<u32>> = (0..outputs.len())
                .map(|i| reference_ids(&reference, &format!("input_ids.{i}")))
                .collect();
            let want: Vec<Vec<u32>> = outputs
                .iter()
                .map(|o| json_ids(&o["greedy_new_ids"]))
                .collect();
            let new = want.iter().map(Vec::len).min().unwrap();
            let got = generate(
                &model,
                &text,
                &prompts,
                1,
                &GenerationConfig::greedy(new),
                0,
            );
            for (i, (c, w)) in got.iter().zip(&want).enumerate() {
                // Greedy decoding ends early only at the end-of-sequence token.
                assert_eq!(c.tokens[..], w[..c.tokens.len()], "{name} prompt {i}");
                assert!(c.finished || c.tokens.len() == new, "{name} prompt {i}");
                assert_eq!(c.text, text.decode(&c.tokens));
            }

            let sampling = GenerationConfig {
                max_new_tokens: 12,
                temperature: 1.0,
                top_p: 0.95,
                seed: 7,
            };
            // Batched, a row's attention products change shape, so its logits may round apart
            // from alone (unlike the lab's transformer, whose rows are bit-identical in any
            // batch); the draws still fall alike.
            for c in generate(&model, &text, &prompts, 3, &sampling, 100) {
                let id = global_sample_id(100, c.prompt_index, 3, c.sample_index);
                let alone = generate_one(&model, &text, &prompts[c.prompt_index], &sampling, id);
                assert_eq!(alone.tokens, c.tokens, "{name} sample {id}");
                let worst = alone
                    .logprobs
                    .iter()
                    .zip(&c.logprobs)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 1e-4,
                    "{name} sample {id}: log-probabilities {worst} apart"
                );
            }
        }
    }

    /// The same weights hash alike in f32 files of any tensor order, and bf16 storage is other
    /// content; a tensor the architecture lacks, or of the wrong shape, is an error naming it.
    #[test]
    fn identity_and_bad_weights() {
        let f32_hash = HfWeights::read(&fixtures().join("qwen2"))
            .unwrap()
            .content_hash;
        let bf16_hash = HfWeights::read(&fixtures().join("qwen2-bf16"))
            .unwrap()
            .content_hash;
        assert_ne!(f32_hash, bf16_hash);

        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            fixtures().join("qwen2/config.json"),
            dir.path().join("config.json"),
        )
        .unwrap();
        let mut weights = HfWeights::read(&fixtures().join("qwen2")).unwrap();
        let write = |tensors: &std::collections::BTreeMap<String, HfTensor>| {
            let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
                .iter()
                .rev()
                .map(|(n, t)| {
                    let bytes = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    (n.clone(), bytes, t.shape.clone())
                })
                .collect();
            let views: Vec<(String, safetensors::tensor::TensorView)> = data
                .iter()
                .map(|(n, b, s)| {
                    (
                        n.clone(),
                        safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
                    )
                })
                .collect();
            safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors"))
                .unwrap();
        };
        write(&weights.tensors);
        assert_eq!(
            HfWeights::read(dir.path()).unwrap().content_hash,
            f32_hash,
            "file order does not matter"
        );
        let device = test_device();
        assert!(HfModel::read(dir.path(), &device).is_ok());

        weights.tensors.get_mut("model.norm.weight").unwrap().shape = vec![32, 2];
        write(&weights.tensors);
        let err = HfModel::read(dir.path(), &device).unwrap_err().to_string();
        assert!(
            err.contains("model.norm.weight") && err.contains("[32, 2]"),
            "{err}"
        );

        weights.tensors.get_mut("model.norm.weight").unwrap().shape = vec![64];
        weights.tensors.insert(
            "model.extra.weight".into(),
            HfTensor {
                shape: vec![1],
                values: vec![0.0],
            },
        );
        write(&weights.tensors);
        let err = HfModel::read(dir.path(), &device).unwrap_err().to_string();
        assert!(err.contains("model.extra.weight"), "{err}");

        weights.tensors.remove("model.extra.weight");
        weights
            .tensors
            .remove("model.layers.1.self_attn.q_proj.bias");
        write(&weights.tensors);
        let err = HfModel::read(dir.path(), &device).unwrap_err().to_string();
        assert!(
            err.contains("model.layers.1.self_attn.q_proj.bias"),
            "{err}"
        );
    }

    /// The pieces together, as a stage will use them: a question rendered with the model's chat
    /// template and the R1 `<think>` opening, encoded by the model's tokenizer, gives the ids
    /// transformers ran, and greedy decoding from them continues with transformers' tokens.
    #[test]
    fn chat_template_tokenizer_and_model_together() {
        let dir = fixtures().join("qwen2");
        let template = ChatTemplate::read(&dir).unwrap();
        let tokenizer = HfTokenizer::read(&dir).unwrap();
        let model = HfModel::read(&dir, &test_device()).unwrap();
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join("reference.json")).unwrap(),
        )
        .unwrap();
        let question = [Message {
            role: "user".into(),
            content: "Solve 3*x = 12.".into(),
        }];
        let prompt = template
            .render(&question, true, &Default::default())
            .unwrap()
            + "<think>\n";
        assert_eq!(prompt, json["prompts"][1].as_str().unwrap());
        let ids = tokenizer.encode(&prompt).unwrap();
        assert_eq!(ids, json_ids(&json["tokenizer"]["encodings"][1]["ids"]));
        let greedy = json_ids(&json["models"]["qwen2"]["outputs"][1]["greedy_new_ids"]);
        let continuation = model.greedy(&ids, greedy.len());
        assert_eq!(continuation, greedy);
        assert_eq!(
            tokenizer.decode(&continuation),
            json["models"]["qwen2"]["outputs"][1]["greedy_new_text"]
                .as_str()
                .unwrap()
        );
    }

    /// The opt-in real-model check (`just test-real-model`): a Hugging Face directory, with
    /// transformers' token ids, logits and greedy continuations written beside it by
    /// `lab/benches/peers/hf_reference.py`, read and run here, its tokenizer too.
    #[test]
    #[ignore = "opt-in: `just test-real-model` makes the model directory and its reference"]
    fn a_real_model_matches_transformers() {
        let dir = PathBuf::from(
            std::env::var("LAB_HF_MODEL_DIR").expect("LAB_HF_MODEL_DIR names the model directory"),
        );
        let started = std::time::Instant::now();
        let model = HfModel::read(&dir, &test_device()).unwrap();
        eprintln!(
            "read {} layers, vocab {}, in {:.1} s; weights {}",
            model.config.layers,
            model.config.vocab_size,
            started.elapsed().as_secs_f64(),
            &model.weights_hash[..12]
        );
        // The tokenizer is checked where it is of a kind read here; the ids come from
        // transformers either way.
        let tokenizer = match HfTokenizer::read(&dir) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("tokenizer not checked: {e}");
                None
            }
        };
        let bytes = std::fs::read(dir.join("lab-reference.safetensors")).unwrap();
        let reference = SafeTensors::deserialize(&bytes).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("lab-reference.json")).unwrap())
                .unwrap();
        for (i, expected) in json["outputs"].as_array().unwrap().iter().enumerate() {
            let ids = reference_ids(&reference, &format!("input_ids.{i}"));
            if let Some(tokenizer) = &tokenizer {
                let text = expected["text"].as_str().unwrap();
                assert_eq!(tokenizer.encode(text).unwrap(), ids, "ids of prompt {i}");
            }
            let (shape, want) = reference_floats(&reference, &format!("logits.{i}"));
            let worst = max_abs_diff(model.forward(&ids), &shape, &want);
            eprintln!(
                "prompt {i} ({} tokens): max abs logit difference {worst:.1e}",
                ids.len()
            );
            assert!(worst <= TOLERANCE, "prompt {i}: max abs diff {worst}");
            let greedy = json_ids(&expected["greedy_new_ids"]);
            assert_eq!(model.greedy(&ids, greedy.len()), greedy, "prompt {i}");
        }
    }
}
