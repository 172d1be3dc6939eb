//! Stages: the work an experiment does, given its resolved spec and a context to record into.
//!
//! Each kind of stage is one unit: a settings type implementing [`StageKind`] (its `kind` name,
//! the inputs it reads, its numerics version, its validation and its `run`) in a file of this
//! folder, listed once in [`with_stage_kinds!`]. Specs, identity and the runner reach every kind
//! through that list. A stage reads its inputs, computes, and reports through [`StageContext`]:
//! metrics, traces, data sets and progress. The context batches writes so a training loop never
//! waits on the database for every point.

pub mod checkpointing;
pub mod coldstart;
pub mod eval;
pub mod grpo;
pub mod hf_model;
pub mod pretrain;
pub mod reject;
pub mod sft;
pub mod validation;
mod world;

pub use checkpointing::{export_hf, greedy_continuations, sample_from, StoredCheckpoint};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::evaluation::Prompting;
use crate::identity::ExperimentId;
use crate::model::CheckpointError;
use crate::store::{
    ArtifactRecord, EvalRecord, MetricPoint, ObjectError, Store, StoreError, TraceRecord,
};
use crate::tokenizer::WorldTokenizer;
use crate::world::{Lang, Problem};

/// One kind of stage, implemented by its settings type.
pub trait StageKind: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The `kind` a spec names it by.
    const KIND: &'static str;
    /// The inputs it reads, by role.
    const INPUTS: &'static [&'static str];
    /// Bumped by hand whenever a change to the code alters what an unchanged spec of this kind
    /// produces, so old results are never mistaken for new ones (see [`crate::identity`]).
    /// Stages downstream of a bumped kind get new ids anyway, through their inputs' ids.
    const NUMERICS_VERSION: u32;
    /// Settings that say where something lies, not what it is (a model directory's path): they
    /// are stored with the spec but left out of the id, so the same files elsewhere are the
    /// same experiment.
    const LOCATION_FIELDS: &'static [&'static str] = &[];
    /// Whether the stage computes with a model, so that a spec may name the device it runs on
    /// (`device = "tch-cpu"`, part of the id: another device rounds otherwise).
    const RUNS_MODELS: bool = false;

    /// What is wrong with the settings, as `(field, reason)` per problem.
    fn validate(&self) -> Result<(), Vec<(String, String)>>;

    /// Fills in what the settings imply but do not say, once they are valid: the content hashes
    /// of files they name, relative paths made absolute against `base_dir` (the spec file's
    /// folder). A value the spec gave that the files contradict is a problem of that field.
    fn resolve(&mut self, _base_dir: &std::path::Path) -> Result<(), Vec<(String, String)>> {
        Ok(())
    }

    /// Does the stage's work, recording into `ctx`.
    fn run(&self, ctx: &mut StageContext) -> Result<(), StageError>;
}

/// The registry of stage kinds: calls `$callback!` with `Variant: SettingsType,` for each, in
/// the order `lab` lists them. A new kind is a file in this folder whose settings implement
/// [`StageKind`], and one line here.
macro_rules! with_stage_kinds {
    ($callback:ident) => {
        $callback! {
            World: $crate::world::WorldConfig,
            Pretrain: $crate::stages::pretrain::PretrainConfig,
            Sft: $crate::stages::sft::SftConfig,
            Grpo: $crate::stages::grpo::GrpoConfig,
            ColdStart: $crate::stages::coldstart::ColdStartConfig,
            Reject: $crate::stages::reject::RejectConfig,
            Eval: $crate::stages::eval::EvalConfig,
            HfModel: $crate::stages::hf_model::HfModelConfig,
        }
    };
}
pub(crate) use with_stage_kinds;

macro_rules! kind_table {
    ($($variant:ident: $settings:ty,)*) => {
        /// Every stage kind's `(kind, numerics version, location fields)`, in registry order.
        pub const STAGE_KINDS: &[(&str, u32, &[&str])] = &[
            $((
                <$settings as StageKind>::KIND,
                <$settings as StageKind>::NUMERICS_VERSION,
                <$settings as StageKind>::LOCATION_FIELDS,
            ),)*
        ];
    };
}
with_stage_kinds!(kind_table);

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// A checkpoint file that was refused; `owner` names whose it is and where it lies.
    #[error("checkpoint {hash} of {owner}: {source}")]
    Checkpoint {
        hash: String,
        owner: String,
        #[source]
        source: CheckpointError,
    },
    #[error("{0}")]
    Failed(String),
}

/// How often buffered points and progress reach the database while a stage runs.
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// What a running stage records into, and the device it computes on.
pub struct StageContext<'a> {
    runtime: &'a Runtime,
    store: &'a Store,
    /// The device models run on for inference; training records gradients on its autodiff
    /// twin. The stage takes it from here, never names a backend itself.
    device: burn::prelude::Device,
    attempt: i64,
    inputs: BTreeMap<String, ExperimentId>,
    progress_bar: ProgressBar,
    pending_metrics: Vec<MetricPoint>,
    pending_traces: Vec<TraceRecord>,
    progress: f64,
    last_flush: Instant,
}

impl<'a> StageContext<'a> {
    pub fn new(
        runtime: &'a Runtime,
        store: &'a Store,
        device: burn::prelude::Device,
        attempt: i64,
        inputs: BTreeMap<String, ExperimentId>,
        progress_bar: ProgressBar,
    ) -> Self {
        StageContext {
            runtime,
            store,
            device,
            attempt,
            inputs,
            progress_bar,
            pending_metrics: Vec::new(),
            pending_traces: Vec::new(),
            progress: 0.0,
            last_flush: Instant::now(),
        }
    }

    pub fn attempt(&self) -> i64 {
        self.attempt
    }

    /// The device to run models on without gradients (sampling, evaluation, references).
    pub fn device(&self) -> burn::prelude::Device {
        self.device.clone()
    }

    /// The device to train on: the same device, recording gradients.
    pub fn training_device(&self) -> burn::prelude::Device {
        self.device.clone().autodiff()
    }

    pub fn store(&self) -> &Store {
        self.store
    }

    /// Records a scalar; names starting with `perf/` are wall-clock measurements.
    pub fn log(&mut self, name: impl Into<String>, step: i64, value: f64) {
        self.pending_metrics
            .push(MetricPoint::new(name, step, value));
    }

    pub fn trace(&mut self, trace: TraceRecord) {
        self.pending_traces.push(trace);
    }

    /// Reports progress in `[0, 1]` with a short message for the terminal.
    pub fn progress(&mut self, fraction: f64, message: &str) -> Result<(), StageError> {
        self.progress = fraction.clamp(0.0, 1.0);
        let length = self.progress_bar.length().unwrap_or(1000);
        self.progress_bar
            .set_position((self.progress * length as f64).round() as u64);
        if !message.is_empty() {
            self.progress_bar.set_message(message.to_string());
        }
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes everything buffered, in batched transactions.
    pub fn flush(&mut self) -> Result<(), StageError> {
        let metrics = std::mem::take(&mut self.pending_metrics);
        let traces = std::mem::take(&mut self.pending_traces);
        self.runtime.block_on(async {
            self.store.record_metrics(self.attempt, &metrics).await?;
            self.store.record_traces(self.attempt, &traces).await?;
            self.store.set_progress(self.attempt, self.progress).await
        })?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Stores rows as a JSON-lines data set in the object folder and records it as an artifact.
    pub fn store_dataset<T: Serialize>(
        &mut self,
        name: &str,
        kind: &str,
        rows: &[T],
    ) -> Result<ArtifactRecord, StageError> {
        let mut bytes = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut bytes, row)
                .map_err(|e| StageError::Failed(format!("data set {name}: {e}")))?;
            bytes.push(b'\n');
        }
        let stored = self.store.objects().put_bytes(&bytes)?;
        let artifact = ArtifactRecord {
            name: name.to_string(),
            kind: kind.to_string(),
            hash: stored.hash,
            path: stored.relative_path,
            rows: rows.len() as i64,
            bytes: stored.bytes as i64,
        };
        self.runtime
            .block_on(self.store.record_artifact(self.attempt, &artifact))?;
        Ok(artifact)
    }
}

impl StageContext<'_> {
    /// The id of an input, by role.
    pub fn input(&self, role: &str) -> Result<&ExperimentId, StageError> {
        self.inputs
            .get(role)
            .ok_or_else(|| StageError::Failed(format!("the stage has no `{role}` input")))
    }

    /// The kind of the experiment an input is (`pretrain`, `hf`, ...).
    pub fn input_kind(&self, role: &str) -> Result<String, StageError> {
        let id = self.input(role)?;
        Ok(self.runtime.block_on(self.store.experiment(id))?.kind)
    }

    /// The attempt whose results stand for an input (its first completed one).
    fn input_attempt(&self, role: &str) -> Result<i64, StageError> {
        let id = self.input(role)?.clone();
        self.runtime
            .block_on(self.store.standing_attempt(&id))?
            .map(|a| a.id)
            .ok_or_else(|| {
                StageError::Failed(format!("input `{role}` ({id}) has no completed attempt"))
            })
    }

    /// The bytes of a data set an input produced, verified against its hash.
    pub fn input_dataset(&self, role: &str, name: &str) -> Result<Vec<u8>, StageError> {
        let attempt = self.input_attempt(role)?;
        let artifacts = self.runtime.block_on(self.store.artifacts(attempt))?;
        let artifact = artifacts.iter().find(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
            StageError::Failed(format!(
                "input `{role}` has no data set `{name}` (it has: {})",
                names.join(", ")
            ))
        })?;
        let id = self.input(role)?;
        self.store
            .objects()
            .get_verified(&artifact.hash)
            .map_err(|e| {
                StageError::Failed(format!("input `{role}` ({id}) data set `{name}`: {e}"))
            })
    }

    /// Rows of a JSON-lines data set an input produced.
    pub fn input_rows<T: serde::de::DeserializeOwned>(
        &self,
        role: &str,
        name: &str,
    ) -> Result<Vec<T>, StageError> {
        let bytes = self.input_dataset(role, name)?;
        bytes
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_slice(line).map_err(|e| {
                    StageError::Failed(format!(
                        "input `{role}` data set `{name}` line {}: {e}",
                        i + 1
                    ))
                })
            })
            .collect()
    }

    /// The last checkpoint of an input, whose `owner` names the input, its experiment, the
    /// step and the file for any refusal. The caller decodes it, which verifies the content
    /// hash.
    pub fn input_checkpoint(&self, role: &str) -> Result<StoredCheckpoint, StageError> {
        let whose = format!("input `{role}` ({})", self.input(role)?);
        let attempt = self.input_attempt(role)?;
        checkpointing::last_checkpoint(self.runtime, self.store, attempt, &whose)?
            .ok_or_else(|| StageError::Failed(format!("input `{role}` has no checkpoint")))
    }

    /// This attempt's own last checkpoint, when it is being resumed.
    pub fn own_last_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StageError> {
        checkpointing::last_checkpoint(self.runtime, self.store, self.attempt, "this attempt")
    }

    /// Stores a checkpoint file under its content hash and records it at `step`. Buffered
    /// metrics are written first, so a resumed run never lacks points before its checkpoint.
    pub fn save_checkpoint(
        &mut self,
        step: i64,
        hash: &str,
        bytes: &[u8],
    ) -> Result<(), StageError> {
        self.flush()?;
        let object = self.store.objects().put_with_hash(hash, bytes)?;
        self.runtime
            .block_on(self.store.record_checkpoint(self.attempt, step, &object))?;
        Ok(())
    }

    pub fn record_evaluations(&mut self, records: &[EvalRecord]) -> Result<(), StageError> {
        self.runtime
            .block_on(self.store.record_evaluations(self.attempt, records))?;
        Ok(())
    }
}

/// `<bos>` and the rendered prompt of a question, as token ids.
pub fn prompt_ids(
    tokenizer: &WorldTokenizer,
    prompting: Prompting,
    question: &str,
    lang: Lang,
) -> Vec<u32> {
    crate::evaluation::Prompter::prompt_ids(tokenizer, prompting, question, lang)
        .expect("the world tokenizer spells every prompt")
}

/// The training problems with `operations` steps that pass `keep`, in an order shuffled by
/// `seed` under `label` (each stage draws its own order).
pub fn shuffled_problems(
    train: &[Problem],
    operations: std::ops::RangeInclusive<usize>,
    keep: impl Fn(&Problem) -> bool,
    seed: u64,
    label: &str,
) -> Vec<Problem> {
    let mut pool: Vec<Problem> = train
        .iter()
        .filter(|p| operations.contains(&p.operations) && keep(p))
        .cloned()
        .collect();
    crate::rng::Rng::derive(seed, label).shuffle(&mut pool);
    pool
}
