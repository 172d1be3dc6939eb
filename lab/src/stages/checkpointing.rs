//! Checkpoint files as stages write and read them: the model's tensors (and, while training,
//! the optimizer's), with the model config and tokenizer in the file's metadata so a
//! checkpoint is usable on its own (`lab generate`, evaluation, fine-tuning).

use std::collections::BTreeMap;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::hf_model::{HfManifest, HfModelConfig, MANIFEST};
use super::{StageContext, StageError, StageKind};
use crate::causal_lm::{CausalLm, TrainableLm};
use crate::evaluation::Prompter;
use crate::hf::{HfBundle, HfModel};
use crate::model::{
    self, AdamW, AdamWConfig, CheckpointError, ModelConfig, NamedTensor, Transformer,
};
use crate::store::ObjectStore;
use crate::tokenizer::{Tokenizer, WorldTokenizer};

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
        let (tensors, extra) =
            model::decode_expecting(bytes, hash).map_err(refused(hash, owner))?;
        Checkpoint::from_decoded(tensors, extra, hash, owner)
    }

    /// The checkpoint of a decoded file: its tensors and its metadata.
    fn from_decoded(
        tensors: Vec<NamedTensor>,
        extra: serde_json::Value,
        hash: &str,
        owner: &str,
    ) -> Result<Checkpoint, StageError> {
        if extra.get("hf").is_some() {
            return Err(StageError::Failed(format!(
                "checkpoint {hash} of {owner} is a Hugging Face model's, not the lab's own \
                 model's"
            )));
        }
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
        model::load_named(&self.meta.model, &self.tensors, device)
            .map_err(refused(&self.hash, &self.owner))
    }
}

/// How a refused checkpoint file is reported: its hash and whose it is, with the reason.
fn refused<'a>(hash: &'a str, owner: &'a str) -> impl Fn(CheckpointError) -> StageError + 'a {
    move |source| StageError::Checkpoint {
        hash: hash.to_string(),
        owner: owner.to_string(),
        source,
    }
}

/// Where a stage's model comes from and how the checkpoints it writes are read back: the lab's
/// own transformer, or a Hugging Face model (imported by an `hf` stage, or a checkpoint of a
/// stage that trained one). The stages that read a model (eval, grpo, sft, reject) are written
/// once over this.
pub trait ModelSource {
    type Model: TrainableLm;

    fn tokenizer(&self) -> &dyn Tokenizer;
    /// How questions are put to the model: plain templates, or its chat template.
    fn prompter(&self) -> &dyn Prompter;
    fn max_seq_len(&self) -> usize;
    /// The input's model on `device` (an autodiff device to train it).
    fn start(&self, device: &Device) -> Result<Self::Model, StageError>;
    /// The model of a checkpoint of this kind that a stage wrote (its file `bytes`, content
    /// `hash` and, for errors, `owner`), with the tensors it holds besides (optimizer state).
    fn restore(
        &self,
        bytes: &[u8],
        hash: &str,
        owner: &str,
        device: &Device,
    ) -> Result<(Self::Model, Vec<NamedTensor>), StageError>;
    /// Writes `model` (and `optimizer`) as a checkpoint at `step` that [`ModelSource::restore`]
    /// and [`InputModel::of`] read; returns its hash.
    fn save(
        &self,
        ctx: &mut StageContext,
        step: i64,
        model: &Self::Model,
        optimizer: Option<&AdamW>,
    ) -> Result<String, StageError>;
}

/// A `model` input: the lab's transformer from an experiment's last checkpoint, or a Hugging
/// Face model.
// One is made per stage run, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum InputModel {
    Lab(Checkpoint),
    Hf(HfSource),
}

/// A Hugging Face model as a stage's input: its directory's tokenizer and chat template, and
/// its weights (the directory's, or a trained checkpoint's) on the stage's inference device.
pub struct HfSource {
    pub manifest: HfManifest,
    pub bundle: HfBundle,
}

/// The metadata of a checkpoint of a Hugging Face model: where its tokenizer and config come
/// from (the files are checked against their hashes when it is read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct HfCheckpointMeta {
    hf: HfManifest,
    step: i64,
}

impl InputModel {
    /// The model of input `role`.
    pub fn of(ctx: &StageContext, role: &str) -> Result<InputModel, StageError> {
        let owner = format!("input `{role}` ({})", ctx.input(role)?);
        if ctx.input_kind(role)? == HfModelConfig::KIND {
            let manifest: HfManifest = ctx.input_rows(role, MANIFEST)?.pop().ok_or_else(|| {
                StageError::Failed(format!("{owner}: an empty {MANIFEST} manifest"))
            })?;
            let bundle = manifest.load(&ctx.device(), &owner)?;
            return Ok(InputModel::Hf(HfSource { manifest, bundle }));
        }
        let stored = ctx.input_checkpoint(role)?;
        InputModel::from_checkpoint(&stored.bytes, &stored.hash, &stored.owner, &ctx.device())
    }

    /// The model of a checkpoint file (`bytes`, verified against `hash`) of either kind, on
    /// `device`; `owner` names it in errors.
    pub fn from_checkpoint(
        bytes: &[u8],
        hash: &str,
        owner: &str,
        device: &Device,
    ) -> Result<InputModel, StageError> {
        let checkpoint_err = refused(hash, owner);
        // Decoded (and its hash verified) once, whichever kind it is.
        let (tensors, extra) = model::decode_expecting(bytes, hash).map_err(&checkpoint_err)?;
        if extra.get("hf").is_none() {
            let checkpoint = Checkpoint::from_decoded(tensors, extra, hash, owner)?;
            return Ok(InputModel::Lab(checkpoint));
        }
        let meta = hf_meta(extra, hash, owner)?;
        let mut bundle = meta.hf.load(device, owner)?;
        bundle.model = hf_from_named(&bundle.model, &tensors, device).map_err(checkpoint_err)?;
        Ok(InputModel::Hf(HfSource {
            manifest: meta.hf,
            bundle,
        }))
    }
}

fn hf_meta(
    extra: serde_json::Value,
    hash: &str,
    owner: &str,
) -> Result<HfCheckpointMeta, StageError> {
    serde_json::from_value(extra).map_err(|e| {
        StageError::Failed(format!(
            "checkpoint {hash} of {owner}: unreadable metadata: {e}"
        ))
    })
}

/// A model shaped as `like` with its parameters from `tensors` (transformers' names), on
/// `device`. Every parameter must be there with its shape; optimizer tensors are skipped and
/// any other name is refused.
fn hf_from_named(
    like: &HfModel,
    tensors: &[NamedTensor],
    device: &Device,
) -> Result<HfModel, CheckpointError> {
    let mut by_name: BTreeMap<&str, &NamedTensor> = tensors
        .iter()
        .filter(|t| !t.name.starts_with(model::checkpoint::OPTIMIZER_PREFIX))
        .map(|t| (t.name.as_str(), t))
        .collect();
    let built = HfModel::build(
        like.config.clone(),
        like.weights_hash.clone(),
        &mut |name, shape| {
            let t = by_name
                .remove(name)
                .ok_or_else(|| CheckpointError::MissingTensor {
                    name: name.to_string(),
                })?;
            model::checkpoint::check_tensor(t, shape)?;
            Ok(t.data.clone())
        },
        device,
    )?;
    match by_name.keys().next() {
        Some(name) => Err(CheckpointError::UnexpectedTensor {
            name: name.to_string(),
        }),
        None => Ok(built),
    }
}

impl ModelSource for Checkpoint {
    type Model = Transformer;

    fn tokenizer(&self) -> &dyn Tokenizer {
        &self.meta.tokenizer
    }

    fn prompter(&self) -> &dyn Prompter {
        &self.meta.tokenizer
    }

    fn max_seq_len(&self) -> usize {
        self.meta.model.max_seq_len
    }

    fn start(&self, device: &Device) -> Result<Transformer, StageError> {
        self.model(device)
    }

    fn restore(
        &self,
        bytes: &[u8],
        hash: &str,
        owner: &str,
        device: &Device,
    ) -> Result<(Transformer, Vec<NamedTensor>), StageError> {
        let checkpoint = Checkpoint::decode(bytes, hash, owner)?;
        let model = checkpoint.model(device)?;
        Ok((model, checkpoint.tensors))
    }

    fn save(
        &self,
        ctx: &mut StageContext,
        step: i64,
        model: &Transformer,
        optimizer: Option<&AdamW>,
    ) -> Result<String, StageError> {
        save(ctx, step, model, optimizer, &self.meta.tokenizer)
    }
}

impl ModelSource for HfSource {
    type Model = HfModel;

    fn tokenizer(&self) -> &dyn Tokenizer {
        &self.bundle.tokenizer
    }

    fn prompter(&self) -> &dyn Prompter {
        &self.bundle
    }

    fn max_seq_len(&self) -> usize {
        self.bundle.model.max_seq_len()
    }

    fn start(&self, device: &Device) -> Result<HfModel, StageError> {
        let tensors = model::named_tensors(&self.bundle.model);
        hf_from_named(&self.bundle.model, &tensors, device).map_err(|source| {
            StageError::Failed(format!("the model of {}: {source}", self.manifest.path))
        })
    }

    fn restore(
        &self,
        bytes: &[u8],
        hash: &str,
        owner: &str,
        device: &Device,
    ) -> Result<(HfModel, Vec<NamedTensor>), StageError> {
        let checkpoint_err = refused(hash, owner);
        let (tensors, extra) = model::decode_expecting(bytes, hash).map_err(&checkpoint_err)?;
        hf_meta(extra, hash, owner)?;
        let model = hf_from_named(&self.bundle.model, &tensors, device).map_err(checkpoint_err)?;
        Ok((model, tensors))
    }

    fn save(
        &self,
        ctx: &mut StageContext,
        step: i64,
        model: &HfModel,
        optimizer: Option<&AdamW>,
    ) -> Result<String, StageError> {
        let meta = HfCheckpointMeta {
            hf: self.manifest.clone(),
            step,
        };
        write(ctx, step, model, optimizer, &meta)
    }
}

/// A checkpoint file as stored, not yet decoded (decoding verifies its content hash).
pub struct StoredCheckpoint {
    pub step: i64,
    pub hash: String,
    pub bytes: Vec<u8>,
    /// Whose it is, its step and its file, as errors name it ([`owner`]).
    pub owner: String,
}

/// The last checkpoint of `attempt`, whose errors call it `whose`'s; `None` when it has none.
pub(crate) fn last_checkpoint(
    runtime: &tokio::runtime::Runtime,
    store: &crate::store::Store,
    attempt: i64,
    whose: &str,
) -> Result<Option<StoredCheckpoint>, StageError> {
    let Some((step, hash)) = runtime.block_on(store.checkpoints(attempt))?.pop() else {
        return Ok(None);
    };
    let owner = owner(store.objects(), whose, step, &hash);
    let bytes = store
        .objects()
        .get_unverified(&hash)
        .map_err(|e| StageError::Failed(format!("{owner}: {e}")))?;
    Ok(Some(StoredCheckpoint {
        step,
        hash,
        bytes,
        owner,
    }))
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
    let meta = CheckpointMeta {
        model: model.config().clone(),
        tokenizer: tokenizer.clone(),
        step,
    };
    write(ctx, step, model, optimizer, &meta)
}

/// Writes any module's parameters (and the optimizer's state) with `meta` as a checkpoint.
fn write<M: burn::module::Module>(
    ctx: &mut StageContext,
    step: i64,
    model: &M,
    optimizer: Option<&AdamW>,
    meta: &impl Serialize,
) -> Result<String, StageError> {
    let meta = serde_json::to_value(meta).expect("metadata serialises");
    let mut tensors = model::named_tensors(model);
    if let Some(optimizer) = optimizer {
        tensors.extend(optimizer.named_state());
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    let hash = model::content_hash(&tensors);
    let bytes = model::encode(&tensors, &meta);
    ctx.save_checkpoint(step, &hash, &bytes)?;
    Ok(hash)
}

/// The model in the last checkpoint of experiment `id` (its standing attempt, or its latest
/// attempt while it runs), on the flex device, with how errors name that checkpoint. `purpose`
/// finishes the error of a run without checkpoints: "{id} has no checkpoint to {purpose}".
fn latest_model(
    runtime: &tokio::runtime::Runtime,
    store: &crate::store::Store,
    id: &crate::identity::ExperimentId,
    purpose: &str,
) -> Result<(InputModel, String), StageError> {
    let attempts = runtime.block_on(store.attempts(id))?;
    let attempt = crate::store::AttemptRow::standing_or_latest(&attempts)
        .ok_or_else(|| StageError::Failed(format!("{id} has never been run")))?;
    let StoredCheckpoint {
        hash, bytes, owner, ..
    } = last_checkpoint(runtime, store, attempt.id, &id.to_string())?
        .ok_or_else(|| StageError::Failed(format!("{id} has no checkpoint to {purpose}")))?;
    let model = InputModel::from_checkpoint(&bytes, &hash, &owner, &Device::flex())?;
    Ok((model, owner))
}

/// Samples `n` completions of `prompt` from the last checkpoint of experiment `id` (its
/// standing attempt, or its latest attempt while it runs), for `lab generate`. The lab's model
/// continues the prompt's text (rendered by `prompting`, when given); a trained Hugging Face
/// model is asked through its chat template (as a user turn, or as `prompting` puts it).
pub fn sample_from(
    runtime: &tokio::runtime::Runtime,
    store: &crate::store::Store,
    id: &crate::identity::ExperimentId,
    prompt: &str,
    prompting: Option<crate::evaluation::Prompting>,
    config: &crate::generate::GenerationConfig,
    n: usize,
) -> Result<Vec<String>, StageError> {
    let (model, owner) = latest_model(runtime, store, id, "sample from")?;
    let words = crate::language::count_words(prompt);
    let lang = if words.zh > words.en {
        crate::world::Lang::Zh
    } else {
        crate::world::Lang::En
    };
    let failed = |e: String| StageError::Failed(format!("{owner}: {e}"));
    match model {
        InputModel::Lab(checkpoint) => {
            let model = checkpoint.model(&Device::flex())?;
            let tokenizer = &checkpoint.meta.tokenizer;
            let text = match prompting {
                Some(p) => crate::evaluation::render_prompt(p, prompt, lang),
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
        InputModel::Hf(hf) => {
            let (text, ids) = match prompting {
                Some(p) => (
                    hf.bundle.prompt_text(p, prompt, lang),
                    hf.bundle.prompt_ids(p, prompt, lang).map_err(failed)?,
                ),
                None => {
                    let turn = [crate::hf::Message {
                        role: "user".into(),
                        content: prompt.to_string(),
                    }];
                    (
                        hf.bundle.chat_text(&turn, "").map_err(failed)?,
                        hf.bundle.chat_ids(&turn, "").map_err(failed)?,
                    )
                }
            };
            let completions = crate::generate::generate(
                &hf.bundle.model,
                &hf.bundle.tokenizer,
                &[ids],
                n,
                config,
                0,
            );
            Ok(completions
                .into_iter()
                .map(|c| format!("{text}{}", c.text))
                .collect())
        }
    }
}

/// Greedy continuations of each of `prompts` (at most `max_new_tokens` tokens) from the last
/// checkpoint of experiment `id`, a model of the lab's own: `lab facts`. Batched, so a few
/// hundred short prompts take a second.
pub fn greedy_continuations(
    runtime: &tokio::runtime::Runtime,
    store: &crate::store::Store,
    id: &crate::identity::ExperimentId,
    prompts: &[String],
    max_new_tokens: usize,
) -> Result<Vec<String>, StageError> {
    let (model, owner) = latest_model(runtime, store, id, "ask")?;
    let InputModel::Lab(checkpoint) = model else {
        return Err(StageError::Failed(format!(
            "{owner} is a Hugging Face model; its tokenizer does not write a number as one \
             token, so its facts are not asked this way"
        )));
    };
    let model = checkpoint.model(&Device::flex())?;
    let tokenizer = &checkpoint.meta.tokenizer;
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            let mut ids = vec![tokenizer.bos_id()];
            ids.extend(tokenizer.encode(p));
            ids
        })
        .collect();
    let greedy = crate::generate::GenerationConfig::greedy(max_new_tokens);
    let mut texts = vec![String::new(); prompts.len()];
    for c in crate::generate::generate(&model, tokenizer, &ids, 1, &greedy, 0) {
        texts[c.prompt_index] = c.text;
    }
    Ok(texts)
}

/// Writes the last checkpoint of experiment `id`, a trained Hugging Face model, as a model
/// directory at `out` ([`crate::hf::write_directory`]), for transformers and any other tool.
pub fn export_hf(
    runtime: &tokio::runtime::Runtime,
    store: &crate::store::Store,
    id: &crate::identity::ExperimentId,
    out: &std::path::Path,
) -> Result<(), StageError> {
    let attempt = runtime
        .block_on(store.standing_attempt(id))?
        .ok_or_else(|| StageError::Failed(format!("{id} has no completed attempt")))?;
    let StoredCheckpoint {
        hash, bytes, owner, ..
    } = last_checkpoint(runtime, store, attempt.id, &id.to_string())?
        .ok_or_else(|| StageError::Failed(format!("{id} has no checkpoint")))?;
    match InputModel::from_checkpoint(&bytes, &hash, &owner, &Device::flex())? {
        InputModel::Lab(_) => Err(StageError::Failed(format!(
            "{owner} is the lab's own model, not a Hugging Face one; only those are written as \
             model directories"
        ))),
        InputModel::Hf(hf) => crate::hf::write_directory(
            std::path::Path::new(&hf.manifest.path),
            &hf.bundle.model,
            out,
        )
        .map_err(|e| StageError::Failed(e.to_string())),
    }
}

/// Where a training stage on `source`'s model starts: its own last checkpoint when the attempt
/// is being resumed (model, optimizer state, steps done, and the checkpoint to read more from),
/// else the source's model on `device` with a new optimizer at step 0.
pub fn resume_or_start_from<S: ModelSource>(
    ctx: &StageContext,
    source: &S,
    optimizer: &AdamWConfig,
    device: &Device,
) -> Result<(S::Model, AdamW, usize, Option<StoredCheckpoint>), StageError> {
    match ctx.own_last_checkpoint()? {
        Some(resumed) => {
            let StoredCheckpoint {
                step,
                hash,
                bytes,
                owner,
            } = &resumed;
            let (model, tensors) = source.restore(bytes, hash, owner, device)?;
            let optimizer = AdamW::load_named(optimizer.clone(), &tensors, &model)
                .map_err(refused(hash, owner))?;
            Ok((model, optimizer, *step as usize, Some(resumed)))
        }
        None => Ok((
            source.start(device)?,
            AdamW::new(optimizer.clone()),
            0,
            None,
        )),
    }
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
        Some(StoredCheckpoint {
            step,
            hash,
            bytes,
            owner,
        }) => {
            let checkpoint = Checkpoint::decode(&bytes, &hash, &owner)?;
            let model = checkpoint.model(device)?;
            let optimizer = AdamW::load_named(optimizer.clone(), &checkpoint.tensors, &model)
                .map_err(refused(&hash, &owner))?;
            Ok((model, optimizer, step as usize, Some(checkpoint)))
        }
        None => Ok((fresh()?, AdamW::new(optimizer.clone()), 0, None)),
    }
}
