//! Running experiments: spec → id → reuse or a new attempt → stage → stored results.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::runtime::Runtime;

use crate::identity::{experiment_id, ExperimentId, NUMERICS_VERSION};
use crate::spec::{Spec, SpecError};
use crate::stages::{run_stage, StageContext, StageError};
use crate::store::{AttemptOrigin, AttemptRow, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("experiment {id} (attempt {attempt}) failed: {source}")]
    Stage {
        id: ExperimentId,
        attempt: i64,
        #[source]
        source: StageError,
    },
}

/// What `lab run` did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The id was already completed; its standing attempt is reused.
    Reused { id: ExperimentId, attempt: i64 },
    /// A new attempt ran to completion.
    Completed {
        id: ExperimentId,
        attempt: i64,
        digest: String,
    },
}

impl RunOutcome {
    pub fn id(&self) -> &ExperimentId {
        match self {
            RunOutcome::Reused { id, .. } | RunOutcome::Completed { id, .. } => id,
        }
    }
}

/// Whether a rerun matched the experiment's standing result.
#[derive(Debug, Clone, PartialEq)]
pub enum Reproduction {
    Exact,
    /// `step` is the first step at which a metric differs, when a metric does.
    Diverged {
        step: Option<i64>,
        detail: String,
    },
    /// No earlier completed attempt to compare with.
    FirstResult,
}

/// Where this process runs, recorded with each attempt.
pub fn this_origin() -> AttemptOrigin {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    AttemptOrigin {
        host,
        pid: std::process::id() as i64,
        git_commit: option_env!("LAB_GIT_COMMIT").map(str::to_string),
    }
}

/// Whether a process of this host is still running (Linux; elsewhere assume it is).
pub fn process_alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// The id a spec gets, with the ids of its inputs.
pub fn spec_id(spec: &Spec) -> ExperimentId {
    experiment_id(&spec.resolved_json(), &BTreeMap::new())
}

/// A progress bar on stderr that stays out of the way when stderr is not a terminal.
pub fn progress_bar(label: &str, visible: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    if !visible {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}")
            .expect("a valid template"),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// Runs `spec`, reusing a completed result of the same id.
pub fn run_spec(
    runtime: &Runtime,
    store: &Store,
    spec: &Spec,
    show_progress: bool,
) -> Result<RunOutcome, RunError> {
    let id = spec_id(spec);
    let origin = this_origin();
    runtime.block_on(async {
        store.mark_interrupted(&origin.host, process_alive).await?;
        store
            .ensure_experiment(
                &id,
                spec.kind(),
                &spec.name,
                &spec.resolved_json(),
                NUMERICS_VERSION,
                &[],
            )
            .await
    })?;
    if let Some(done) = runtime.block_on(store.standing_attempt(&id))? {
        return Ok(RunOutcome::Reused {
            id,
            attempt: done.id,
        });
    }
    let (attempt, digest) = execute(runtime, store, &id, spec, &origin, show_progress)?;
    Ok(RunOutcome::Completed {
        id,
        attempt,
        digest,
    })
}

/// Runs an experiment again as a new attempt and compares it with its standing result.
pub fn rerun(
    runtime: &Runtime,
    store: &Store,
    id: &ExperimentId,
    show_progress: bool,
) -> Result<(i64, Reproduction), RunError> {
    let row = runtime.block_on(store.experiment(id))?;
    let spec = Spec::from_resolved_json(&row.spec, &row.name, &format!("stored spec of {id}"))?;
    let reference = runtime.block_on(store.standing_attempt(id))?;
    let origin = this_origin();
    let (attempt, digest) = execute(runtime, store, id, &spec, &origin, show_progress)?;
    let reproduction = match reference {
        None => Reproduction::FirstResult,
        Some(reference) => runtime.block_on(compare(store, &reference, attempt, &digest))?,
    };
    Ok((attempt, reproduction))
}

fn execute(
    runtime: &Runtime,
    store: &Store,
    id: &ExperimentId,
    spec: &Spec,
    origin: &AttemptOrigin,
    show_progress: bool,
) -> Result<(i64, String), RunError> {
    let attempt = runtime.block_on(store.start_attempt(id, origin))?;
    let bar = progress_bar(&format!("{} {}", spec.kind(), id.short()), show_progress);
    let mut ctx = StageContext::new(runtime, store, attempt, bar.clone());
    let outcome = run_stage(&spec.stage, &mut ctx).and_then(|()| ctx.flush());
    bar.finish_and_clear();
    match outcome {
        Ok(()) => {
            let digest = runtime.block_on(async {
                let digest = store.result_digest(attempt).await?;
                store.finish_attempt(attempt, &digest).await?;
                Ok::<_, StoreError>(digest)
            })?;
            Ok((attempt, digest))
        }
        Err(source) => {
            // Best effort: the error itself is what the user must see.
            let _ = runtime.block_on(store.fail_attempt(attempt, &source.to_string()));
            Err(RunError::Stage {
                id: id.clone(),
                attempt,
                source,
            })
        }
    }
}

/// Compares a new attempt with the reference; on a difference, finds where it starts.
async fn compare(
    store: &Store,
    reference: &AttemptRow,
    attempt: i64,
    digest: &str,
) -> Result<Reproduction, StoreError> {
    if reference.result_digest.as_deref() == Some(digest) {
        return Ok(Reproduction::Exact);
    }
    let relevant = |points: Vec<crate::store::MetricPoint>| {
        points
            .into_iter()
            .filter(|p| !p.is_wall_clock())
            .map(|p| ((p.step, p.name), p.value.to_bits()))
            .collect::<BTreeMap<_, _>>()
    };
    let old = relevant(store.metrics(reference.id).await?);
    let new = relevant(store.metrics(attempt).await?);
    let keys: std::collections::BTreeSet<_> = old.keys().chain(new.keys()).collect();
    for key in keys {
        if old.get(key) != new.get(key) {
            let (step, name) = key;
            return Ok(Reproduction::Diverged {
                step: Some(*step),
                detail: format!("metric `{name}` differs at step {step}"),
            });
        }
    }
    let old_artifacts = store.artifacts(reference.id).await?;
    let new_artifacts = store.artifacts(attempt).await?;
    for a in &old_artifacts {
        match new_artifacts.iter().find(|b| b.name == a.name) {
            Some(b) if b.hash == a.hash => {}
            _ => {
                return Ok(Reproduction::Diverged {
                    step: None,
                    detail: format!("artifact `{}` differs", a.name),
                })
            }
        }
    }
    Ok(Reproduction::Diverged {
        step: None,
        detail: "checkpoints differ".into(),
    })
}
