//! Checkpoint files as stages write and read them: the model's tensors (and, while training,
//! the optimizer's), with the model config and tokenizer in the file's metadata so a
//! checkpoint is usable on its own (`lab generate`, evaluation, fine-tuning).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::hf_model::{HfManifest, HfModelConfig, MANIFEST};
use super::{StageContext, StageError, StageKind};
use crate::hf::HfBundle;
use crate::model::{self, AdamW, AdamWConfig, ModelConfig, NamedTensor, Transformer};
use crate::store::ObjectStore;
use crate::tokenizer::WorldTokenizer;

/// What travels in a checkpoint's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub model: ModelConfig,
    pub tokenizer: WorldTokenizer,
    /// Training steps taken when it was written.
    pub step: i64,
}

/// A decoded, hash-verified checkpoint.
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub tensors: Vec<NamedTensor>,
    pub hash: String,
    /// Whose checkpoint this is, as errors name it.
    pub owner: String,
}

impl Checkpoint {
    /// Decodes a checkpoint file, refusing it unless its tensors hash to `hash`. `owner` says
    /// whose checkpoint it is (experiment, step, file), for the error.
    pub fn decode(bytes: &[u8], hash: &str, owner: &str) -> Result<Checkpoint, StageError> {
        let err = |source| StageError::Checkpoint {
            hash: hash.to_string(),
            owner: owner.to_string(),
            source,
        };
        let (tensors, extra) = model::decode_expecting(bytes, hash).map_err(err)?;
        let meta: CheckpointMeta = serde_json::from_value(extra).map_err(|e| {
            StageError::Failed(format!(
                "checkpoint {hash} of {owner}: unreadable metadata: {e}"
            ))
        })?;
        Ok(Checkpoint {
            meta,
            tensors,
            hash: hash.to_string(),
            owner: owner.to_string(),
        })
    }

    /// The model on `device`.
    pub fn model(&self, device: &Device) -> Result<Transformer, StageError> {
        model::load_named(&self.meta.model, &self.tensors, device).map_err(|source| {
            StageError::Checkpoint {
                hash: self.hash.clone(),
                owner: self.owner.clone(),
                source,
            }
        })
    }

    /// Loads the last checkpoint of the stage's input `role`.
    pub fn of_input(ctx: &StageContext, role: &str) -> Result<Checkpoint, StageError> {
        if ctx.input_kind(role)? == HfModelConfig::KIND {
            return Err(StageError::Failed(format!(
                "input `{role}` ({}) is a Hugging Face model; this stage takes the lab's own \
                 model only (eval takes both)",
                ctx.input(role)?
            )));
        }
        let (_, hash, bytes, owner) = ctx.input_checkpoint(role)?;
        Checkpoint::decode(&bytes, &hash, &owner)
    }
}

/// A `model` input as the sampling stages take it: the lab's transformer from an experiment's
/// last checkpoint, or a Hugging Face model of an `hf` stage.
// One is made per stage run, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum InputModel {
    Lab {
        model: Transformer,
        tokenizer: WorldTokenizer,
    },
    Hf(HfBundle),
}

impl InputModel {
    /// The model of input `role` on the stage's device.
    pub fn of(ctx: &StageContext, role: &str) -> Result<InputModel, StageError> {
        if ctx.input_kind(role)? != HfModelConfig::KIND {
            let checkpoint = Checkpoint::of_input(ctx, role)?;
            return Ok(InputModel::Lab {
                model: checkpoint.model(&ctx.device())?,
                tokenizer: checkpoint.meta.tokenizer,
            });
        }
        let owner = format!("input `{role}` ({})", ctx.input(role)?);
        let manifest: HfManifest = ctx
            .input_rows(role, MANIFEST)?
            .pop()
            .ok_or_else(|| StageError::Failed(format!("{owner}: an empty {MANIFEST} manifest")))?;
        Ok(InputModel::Hf(manifest.load(&ctx.device(), &owner)?))
    }
}

/// How errors name a checkpoint: whose it is, its step and its file.
pub(crate) fn owner(objects: &ObjectStore, whose: &str, step: i64, hash: &str) -> String {
    format!(
        "{whose}, step {step}, file {}",
        objects.path_of(hash).display()
    )
}

/// Writes model (and optimizer, when given) tensors as a checkpoint at `step`; returns its hash.
pub fn save(
    ctx: &mut StageContext,
    step: i64,
    model: &Transformer,
    optimizer: Option<&AdamW>,
    tokenizer: &WorldTokenizer,
) -> Result<String, StageError> {
    let mut tensors = model::named_tensors(model);
    if let Some(optimizer) = optimizer {
        tensors.extend(optimizer.named_state());
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let meta = CheckpointMeta {
        model: model.config().clone(),
        tokenizer: tokenizer.clone(),
        step,
    };
    let extra = serde_json::to_value(&meta).expect("metadata serialises");
    let hash = model::content_hash(&tensors);
    let bytes = model::encode(&tensors, &extra);
    ctx.save_checkpoint(step, &hash, &bytes)?;
    Ok(hash)
}

/// Samples `n` completions of `prompt` from the last checkpoint of experiment `id` (its
/// standing attempt, or its latest attempt while it runs), for `lab generate`.
pub fn sample_from(
    runtime: &tokio::runtime::Runtime,
    store: &crate::store::Store,
    id: &crate::identity::ExperimentId,
    prompt: &str,
    prompting: Option<crate::evaluation::Prompting>,
    config: &crate::generate::GenerationConfig,
    n: usize,
) -> Result<Vec<String>, StageError> {
    use crate::tokenizer::Tokenizer;
    let attempts = runtime.block_on(store.attempts(id))?;
    let attempt = crate::store::AttemptRow::standing_or_latest(&attempts)
        .ok_or_else(|| StageError::Failed(format!("{id} has never been run")))?;
    let (step, hash) = runtime
        .block_on(store.checkpoints(attempt.id))?
        .pop()
        .ok_or_else(|| StageError::Failed(format!("{id} has no checkpoint to sample from")))?;
    let owner = owner(store.objects(), &id.to_string(), step, &hash);
    let bytes = store
        .objects()
        .get_unverified(&hash)
        .map_err(|e| StageError::Failed(format!("{owner}: {e}")))?;
    let checkpoint = Checkpoint::decode(&bytes, &hash, &owner)?;
    let model = checkpoint.model(&Device::flex())?;
    let tokenizer = &checkpoint.meta.tokenizer;
    let text = match prompting {
        Some(p) => {
            let words = crate::language::count_words(prompt);
            let lang = if words.zh > words.en {
                crate::world::Lang::Zh
            } else {
                crate::world::Lang::En
            };
            crate::evaluation::render_prompt(p, prompt, lang)
        }
        None => prompt.to_string(),
    };
    let mut ids = vec![tokenizer.bos_id()];
    ids.extend(tokenizer.encode(&text));
    let completions = crate::generate::generate(&model, tokenizer, &[ids], n, config, 0);
    Ok(completions
        .into_iter()
        .map(|c| format!("{text} {}", c.text.trim_start()))
        .collect())
}

/// Where a training stage starts: its own last checkpoint when the attempt is being resumed
/// (model, optimizer state, steps done), else `fresh()` with a new optimizer at step 0. The
/// returned checkpoint is the one resumed from, for stages that keep more state in it.
pub fn resume_or_start(
    ctx: &StageContext,
    optimizer: &AdamWConfig,
    device: &Device,
    fresh: impl FnOnce() -> Result<Transformer, StageError>,
) -> Result<(Transformer, AdamW, usize, Option<Checkpoint>), StageError> {
    match ctx.own_last_checkpoint()? {
        Some((step, hash, bytes)) => {
            let owner = owner(ctx.store().objects(), "this attempt", step, &hash);
            let checkpoint = Checkpoint::decode(&bytes, &hash, &owner)?;
            let model = checkpoint.model(device)?;
            let optimizer = AdamW::load_named(optimizer.clone(), &checkpoint.tensors, &model)
                .map_err(|source| StageError::Checkpoint {
                    hash,
                    owner,
                    source,
                })?;
            Ok((model, optimizer, step as usize, Some(checkpoint)))
        }
        None => Ok((fresh()?, AdamW::new(optimizer.clone()), 0, None)),
    }
}
