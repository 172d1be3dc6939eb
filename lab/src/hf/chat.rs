//! A model's chat template, rendered as transformers' `apply_chat_template(tokenize=False)`
//! renders it: Jinja with `trim_blocks` and `lstrip_blocks`, loop controls, Python string
//! methods (`.split`, `.strip`), `raise_exception`, and the tokenizer's special tokens
//! (`bos_token`, `eos_token`, …) as variables.

use std::path::Path;

use minijinja::{Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;
use serde_json::Value;

use super::HfError;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl ChatTemplate {
    /// A special token of `tokenizer_config.json` (`eos_token`, …), where set.
    pub fn special_token(&self, name: &str) -> Option<&str> {
        self.special_tokens.get(name).and_then(Value::as_str)
    }
}

/// A chat template with the special tokens it may name.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    /// `bos_token`, `eos_token`, `pad_token`, `unk_token` of `tokenizer_config.json`, where set.
    special_tokens: serde_json::Map<String, Value>,
}

const TEMPLATE: &str = "chat";

impl ChatTemplate {
    /// The template of a model directory: `chat_template.jinja`, or the `chat_template` string
    /// of `tokenizer_config.json`; special tokens from `tokenizer_config.json`.
    pub fn read(dir: &Path) -> Result<ChatTemplate, HfError> {
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| HfError::Config {
                path: config_path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Null,
            Err(source) => {
                return Err(HfError::Io {
                    path: config_path,
                    source,
                })
            }
        };
        let file = dir.join("chat_template.jinja");
        let source = if file.exists() {
            std::fs::read_to_string(&file).map_err(|source| HfError::Io {
                path: file.clone(),
                source,
            })?
        } else {
            config
                .get("chat_template")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| HfError::Config {
                    path: config_path.clone(),
                    message: "no chat template (no chat_template.jinja, no `chat_template`)".into(),
                })?
        };
        let special_tokens = ["bos_token", "eos_token", "pad_token", "unk_token"]
            .iter()
            .filter_map(|key| {
                let value = config.get(*key)?;
                // A token may be a string or an added-token object with its `content`.
                let text = value
                    .as_str()
                    .or_else(|| value.get("content").and_then(Value::as_str))?;
                Some((key.to_string(), Value::String(text.to_string())))
            })
            .collect();
        ChatTemplate::new(&source, special_tokens).map_err(|message| HfError::Config {
            path: if file.exists() { file } else { config_path },
            message,
        })
    }

    /// A template from its Jinja source.
    pub fn new(
        source: &str,
        special_tokens: serde_json::Map<String, Value>,
    ) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, JinjaError> {
                Err(JinjaError::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(TEMPLATE, source.to_string())
            .map_err(|e| format!("the chat template does not parse: {e}"))?;
        Ok(ChatTemplate {
            env,
            special_tokens,
        })
    }

    /// The conversation as the model's prompt text; with `add_generation_prompt`, ending where
    /// the assistant's turn begins. `extra` variables override the special tokens. A
    /// `raise_exception` of the template is an error with its message.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, Value>,
    ) -> Result<String, String> {
        let mut context = self.special_tokens.clone();
        context.insert(
            "messages".into(),
            serde_json::to_value(messages).expect("plain data"),
        );
        context.insert(
            "add_generation_prompt".into(),
            Value::Bool(add_generation_prompt),
        );
        for (key, value) in extra {
            context.insert(key.clone(), value.clone());
        }
        let template = self.env.get_template(TEMPLATE).expect("added in new");
        template.render(Value::Object(context)).map_err(|e| {
            // The message of raise_exception, without minijinja's decoration.
            e.detail()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf")
    }

    /// The model's own template and an R1-distill-like one (system message first, the
    /// assistant's reasoning cut at `</think>` with Python's `split` and `strip`,
    /// `raise_exception`) render exactly as transformers renders them.
    #[test]
    fn templates_render_as_transformers_renders_them() {
        let cases: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(fixtures().join("chat/chat.json")).unwrap(),
        )
        .unwrap();
        let model = ChatTemplate::read(&fixtures().join("qwen2")).unwrap();
        let r1 = ChatTemplate::new(
            &std::fs::read_to_string(fixtures().join("chat/r1-style.jinja")).unwrap(),
            Default::default(),
        )
        .unwrap();
        assert_eq!(cases.len(), 9);
        for case in &cases {
            let template = match case["template"].as_str().unwrap() {
                "model" => &model,
                _ => &r1,
            };
            let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
            let rendered = template.render(
                &messages,
                case["add_generation_prompt"].as_bool().unwrap(),
                case["extra"].as_object().unwrap(),
            );
            match case.get("text") {
                Some(text) => assert_eq!(rendered.unwrap(), text.as_str().unwrap(), "{case}"),
                None => assert_eq!(
                    rendered.unwrap_err(),
                    case["error"].as_str().unwrap(),
                    "{case}"
                ),
            }
        }
    }

    #[test]
    fn a_template_that_does_not_parse_is_refused() {
        let err = ChatTemplate::new("{% for m in messages %}", Default::default()).unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
    }
}
