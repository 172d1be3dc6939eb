//! The `hf` stage: a Hugging Face model directory (Llama or Qwen2) as an experiment, so that a
//! stage can take a real model as its `model` input.
//!
//! ```toml
//! kind = "hf"
//! path = "models/smollm2"      # or, as an input of another spec: model = { hf = "models/smollm2" }
//! ```
//!
//! The id is what the model is, not where it lies: `weights` (blake3 of the tensors,
//! [`crate::hf::HfWeights::content_hash`]) and `files` (blake3 of `config.json`, the tokenizer
//! and the chat template, [`crate::hf::text_files_hash`]) are filled in when the spec is
//! resolved, and `path` is a location field, stored but left out of the id. The files are read
//! in place and never copied into the object store: the stage records a one-line manifest, and
//! every stage that reads the model hashes the files again and refuses them if they changed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StageContext, StageError, StageKind};
use crate::hf::{text_files_hash, HfBundle, HfConfig, HfWeights};

/// Settings of an `hf` stage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HfModelConfig {
    /// The model directory; made absolute when the spec is resolved. Not part of the id.
    pub path: String,
    /// blake3 of the tensors; filled in from the files, or checked against them when given.
    pub weights: String,
    /// blake3 of the config, tokenizer and chat template files; filled in or checked likewise.
    pub files: String,
}

/// What the stage records: where the model lies and what it must hash to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HfManifest {
    pub path: String,
    pub weights: String,
    pub files: String,
    pub architecture: String,
    pub parameters: u64,
}

/// The name of the manifest data set an `hf` stage records.
pub const MANIFEST: &str = "hf-model";

impl HfManifest {
    /// The model of this manifest on `device`, refused unless its files still hash as recorded.
    /// `owner` names whose input it is, for errors.
    pub fn load(
        &self,
        device: &burn::prelude::Device,
        owner: &str,
    ) -> Result<HfBundle, StageError> {
        let dir = Path::new(&self.path);
        let changed = |what: &str, found: &str, recorded: &str| {
            StageError::Failed(format!(
                "{owner}: the {what} of {} hash to {found}, not the {recorded} recorded when the \
                 model was imported; the directory changed (import it again as a new experiment)",
                dir.display()
            ))
        };
        let fail = |e: crate::hf::HfError| StageError::Failed(format!("{owner}: {e}"));
        let files = text_files_hash(dir).map_err(fail)?;
        if files != self.files {
            return Err(changed("config and tokenizer files", &files, &self.files));
        }
        let bundle = HfBundle::read(dir, device).map_err(fail)?;
        if bundle.model.weights_hash != self.weights {
            return Err(changed(
                "weights",
                &bundle.model.weights_hash,
                &self.weights,
            ));
        }
        Ok(bundle)
    }
}

/// The two content hashes of a model directory: `(weights, files)`.
fn content_of(dir: &Path) -> Result<(String, String), crate::hf::HfError> {
    Ok((HfWeights::content_hash_of(dir)?, text_files_hash(dir)?))
}

impl StageKind for HfModelConfig {
    const KIND: &'static str = "hf";
    const INPUTS: &'static [&'static str] = &[];
    const NUMERICS_VERSION: u32 = 1;
    const LOCATION_FIELDS: &'static [&'static str] = &["path"];

    fn validate(&self) -> Result<(), Vec<(String, String)>> {
        let mut problems = Vec::new();
        if self.path.is_empty() {
            problems.push(("path".into(), "missing: the model directory".into()));
        }
        for (field, value) in [("weights", &self.weights), ("files", &self.files)] {
            let hex = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
            if !value.is_empty() && !hex {
                problems.push((
                    field.into(),
                    "expected a blake3 hash (64 hex digits)".into(),
                ));
            }
        }
        super::validation::finish(problems)
    }

    fn resolve(&mut self, base_dir: &Path) -> Result<(), Vec<(String, String)>> {
        let dir = base_dir.join(&self.path);
        let dir: PathBuf = dir
            .canonicalize()
            .map_err(|e| vec![("path".to_string(), format!("{}: {e}", dir.display()))])?;
        HfConfig::read(&dir).map_err(|e| vec![("path".to_string(), e.to_string())])?;
        let (weights, files) =
            content_of(&dir).map_err(|e| vec![("path".to_string(), e.to_string())])?;
        let mut problems = Vec::new();
        for (field, given, found) in [
            ("weights", &self.weights, &weights),
            ("files", &self.files, &files),
        ] {
            if !given.is_empty() && given != found {
                problems.push((
                    field.to_string(),
                    format!(
                        "the files at {} hash to {found}, not {given}",
                        dir.display()
                    ),
                ));
            }
        }
        super::validation::finish(problems)?;
        self.path = dir.display().to_string();
        self.weights = weights;
        self.files = files;
        Ok(())
    }

    fn run(&self, ctx: &mut StageContext) -> Result<(), StageError> {
        let dir = Path::new(&self.path);
        let fail = |e: crate::hf::HfError| StageError::Failed(e.to_string());
        let (weights, files) = content_of(dir).map_err(fail)?;
        if (weights.as_str(), files.as_str()) != (self.weights.as_str(), self.files.as_str()) {
            return Err(StageError::Failed(format!(
                "the files at {} changed since the spec was resolved (weights {weights}, files \
                 {files}); resolve the spec again",
                dir.display()
            )));
        }
        let config = HfConfig::read(dir).map_err(fail)?;
        let manifest = HfManifest {
            path: self.path.clone(),
            weights,
            files,
            architecture: format!("{:?}", config.architecture).to_lowercase(),
            parameters: config.parameters(),
        };
        ctx.log("parameters", 0, manifest.parameters as f64);
        ctx.store_dataset(MANIFEST, MANIFEST, &[manifest])?;
        ctx.progress(1.0, "imported")?;
        Ok(())
    }
}
