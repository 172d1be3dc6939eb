//! Running experiments: spec → plan → for each planned experiment: reuse, resume or a new
//! attempt → stage → store.
//!
//! [`plan`] resolves a spec into every experiment it needs, each with its id and its inputs'
//! ids, in an order where inputs come first; nothing is written. The [`Runner`] then executes
//! the plan in that order (in this process), so running a spec runs exactly what it needs and
//! nothing already completed, and [`Runner::exec`] executes one stored experiment whose inputs
//! are done (`lab exec ID`, the unit a scheduler can run on another machine). A recipe runs its
//! stages in dependency order and is itself an experiment whose inputs are its stages.

use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::runtime::Runtime;

use crate::identity::{experiment_id, numerics_version, ExperimentId};
use crate::spec::{InputRef, Spec, SpecError, Stage};
use crate::stages::{StageContext, StageError};
use crate::store::{AttemptOrigin, AttemptRow, AttemptStatus, Store, StoreError};

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
        source: Box<StageError>,
    },
    #[error("input `{role}` ({input}): {reason}")]
    Input {
        role: String,
        input: String,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

/// What happened to one experiment during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already completed: its standing attempt is reused.
    Reused,
    /// An interrupted attempt was continued from its last checkpoint.
    Resumed,
    /// A new attempt ran to completion.
    Completed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Reused => "reused",
            Outcome::Resumed => "resumed",
            Outcome::Completed => "completed",
        }
    }
}

/// One line of a run's report.
#[derive(Debug, Clone, PartialEq)]
pub struct StageReport {
    pub id: ExperimentId,
    pub kind: String,
    pub name: String,
    pub attempt: i64,
    pub outcome: Outcome,
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

/// Renews an attempt's lease every [`crate::store::HEARTBEAT_EVERY`] from a thread of its own,
/// so a long step never looks dead; stops when dropped (its channel closes).
struct Heartbeat {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(store: Store, attempt: i64, every: std::time::Duration) -> Heartbeat {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            // Connections belong to the runtime that opened them (a PostgreSQL socket is
            // registered with its reactor): this thread's runtime opens its own.
            let store = match runtime.block_on(store.connect_again()) {
                Ok(store) => store,
                Err(_) => return,
            };
            // Beats until the sender is dropped; a missed beat is retried at the next, and the
            // lease allows many.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
            {
                let _ = runtime.block_on(store.heartbeat(attempt));
            }
        });
        Heartbeat {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where this process runs, recorded with each attempt.
pub fn this_origin() -> AttemptOrigin {
    AttemptOrigin {
        host: crate::store::this_host(),
        pid: std::process::id() as i64,
        git_commit: option_env!("LAB_GIT_COMMIT").map(str::to_string),
        // A scheduler's job says so in its environment.
        job: std::env::var("SLURM_JOB_ID")
            .ok()
            .filter(|id| !id.is_empty())
            .map(|id| format!("slurm:{id}")),
    }
}

pub use crate::store::process_alive;

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

/// Runs specs against one store, reporting what it did for each experiment.
pub struct Runner<'a> {
    runtime: &'a Runtime,
    store: &'a Store,
    show_progress: bool,
    origin: AttemptOrigin,
    /// Every experiment touched, in the order finished.
    pub report: Vec<StageReport>,
}

impl<'a> Runner<'a> {
    pub fn new(runtime: &'a Runtime, store: &'a Store, show_progress: bool) -> Runner<'a> {
        Runner {
            runtime,
            store,
            show_progress,
            origin: this_origin(),
            report: Vec::new(),
        }
    }

    /// Runs `spec` and whatever it needs; returns its id.
    pub fn run(&mut self, spec: &Spec) -> Result<ExperimentId, RunError> {
        self.runtime.block_on(
            self.store
                .mark_interrupted(&self.origin.host, process_alive),
        )?;
        let plan = plan(spec, self.runtime, Some(self.store))?;
        for node in &plan.nodes {
            self.execute(&node.spec, node.inputs.clone())?;
        }
        Ok(plan.root)
    }

    /// Stores every experiment of `plan` (its spec and lineage, no attempt), so each can be
    /// executed by id, in the plan's order, by [`Runner::exec`] (`lab plan`, then `lab exec`).
    pub fn register(&self, plan: &Plan) -> Result<(), RunError> {
        for node in &plan.nodes {
            self.ensure(&node.id, &node.spec, &node.inputs)?;
        }
        Ok(())
    }

    fn ensure(
        &self,
        id: &ExperimentId,
        spec: &Spec,
        inputs: &BTreeMap<String, ExperimentId>,
    ) -> Result<(), RunError> {
        let lineage: Vec<(String, ExperimentId)> = inputs.clone().into_iter().collect();
        self.runtime.block_on(self.store.ensure_experiment(
            id,
            spec.kind(),
            &spec.name,
            &spec.resolved_json(),
            numerics_version(spec.kind()),
            &lineage,
        ))?;
        Ok(())
    }

    /// Executes one stored experiment, as a plan node: reused when completed, resumed when
    /// interrupted, else a new attempt. Every input must be completed already (a scheduler runs
    /// the inputs' nodes first); a recipe has nothing of its own to run but its bookkeeping.
    pub fn exec(&mut self, id: &ExperimentId) -> Result<Outcome, RunError> {
        self.runtime.block_on(
            self.store
                .mark_interrupted(&self.origin.host, process_alive),
        )?;
        let (spec, inputs) = self.stored(id)?;
        for (role, input) in &inputs {
            if self
                .runtime
                .block_on(self.store.standing_attempt(input))?
                .is_none()
            {
                return Err(RunError::Input {
                    role: role.clone(),
                    input: input.to_string(),
                    reason: "not completed yet: run it first".into(),
                });
            }
        }
        let executed = self.execute(&spec, inputs)?;
        debug_assert_eq!(&executed, id, "a stored spec resolves to its own id");
        Ok(self
            .report
            .iter()
            .find(|r| &r.id == id)
            .map_or(Outcome::Reused, |r| r.outcome))
    }

    /// A stored experiment's spec, rebuilt from its resolved JSON, and its inputs' ids.
    fn stored(
        &self,
        id: &ExperimentId,
    ) -> Result<(Spec, BTreeMap<String, ExperimentId>), RunError> {
        let row = self.runtime.block_on(self.store.experiment(id))?;
        let inputs: BTreeMap<String, String> = self
            .runtime
            .block_on(self.store.lineage(id))?
            .into_iter()
            .map(|(role, parent, _)| (role, parent))
            .collect();
        let spec = Spec::from_resolved_json(
            &row.spec,
            &row.name,
            &inputs,
            &format!("stored spec of {id}"),
        )?;
        let input_ids = inputs
            .iter()
            .map(|(role, parent)| {
                (
                    role.clone(),
                    ExperimentId::parse(parent).expect("stored ids are valid"),
                )
            })
            .collect();
        Ok((spec, input_ids))
    }

    fn execute(
        &mut self,
        spec: &Spec,
        inputs: BTreeMap<String, ExperimentId>,
    ) -> Result<ExperimentId, RunError> {
        let id = experiment_id(&spec.resolved_json(), &inputs);
        self.ensure(&id, spec, &inputs)?;
        let attempts = self.runtime.block_on(self.store.attempts(&id))?;
        if let Some(done) = AttemptRow::standing(&attempts) {
            self.note(&id, spec, done.id, Outcome::Reused);
            return Ok(id);
        }
        // Dead attempts were marked interrupted when the run began: a running one here is live
        // (its lease is fresh, or its process is alive on this host), wherever it runs. An
        // attempt from before leases, on another host, says nothing and is not waited for.
        if let Some(live) = attempts.iter().find(|a| {
            a.status == AttemptStatus::Running
                && (a.heartbeat_at.is_some()
                    || (a.host == self.origin.host && process_alive(a.pid)))
        }) {
            return Err(RunError::Other(format!(
                "{} {} ({}) is being run by process {} on {} (attempt {}); wait for it to finish or stop that process",
                spec.kind(),
                spec.name,
                id.short(),
                live.pid,
                live.host,
                live.id
            )));
        }
        // An attempt whose process died is continued from its last checkpoint.
        let interrupted = attempts
            .iter()
            .rev()
            .find(|a| a.status == AttemptStatus::Interrupted);
        let (attempt, outcome) = match interrupted {
            Some(a) => {
                self.runtime
                    .block_on(self.store.resume_attempt(a.id, &self.origin))?;
                (a.id, Outcome::Resumed)
            }
            None => (
                self.runtime
                    .block_on(self.store.start_attempt(&id, &self.origin))?,
                Outcome::Completed,
            ),
        };
        self.finish(&id, spec, attempt, &inputs)?;
        self.note(&id, spec, attempt, outcome);
        Ok(id)
    }

    /// Runs the stage inside `attempt` and marks it completed or failed.
    fn finish(
        &self,
        id: &ExperimentId,
        spec: &Spec,
        attempt: i64,
        inputs: &BTreeMap<String, ExperimentId>,
    ) -> Result<String, RunError> {
        let bar = progress_bar(
            &format!("{} {}", spec.kind(), spec.name),
            self.show_progress,
        );
        // The stage computes on the device its spec names (flex by default); the attempt
        // records it, and a build that lacks it fails the attempt saying so.
        let device_name = spec.device.as_deref().unwrap_or("flex");
        self.runtime
            .block_on(self.store.set_attempt_device(attempt, device_name))?;
        crate::faults::enter_stage(spec.kind());
        let heartbeat =
            Heartbeat::start(self.store.clone(), attempt, crate::store::HEARTBEAT_EVERY);
        let outcome = crate::device::parse(device_name)
            .map_err(|e| StageError::Failed(e.to_string()))
            .and_then(|device| {
                let mut ctx = StageContext::new(
                    self.runtime,
                    self.store,
                    device,
                    attempt,
                    inputs.clone(),
                    bar.clone(),
                );
                spec.stage.run(&mut ctx).and_then(|()| ctx.flush())
            });
        drop(heartbeat);
        bar.finish_and_clear();
        match outcome {
            Ok(()) => {
                let digest = self.runtime.block_on(async {
                    let digest = self.store.result_digest(attempt).await?;
                    crate::faults::point("attempt-finish");
                    self.store.finish_attempt(attempt, &digest).await?;
                    Ok::<_, StoreError>(digest)
                })?;
                Ok(digest)
            }
            Err(source) => {
                // Best effort: the error itself is what the user must see.
                let _ = self
                    .runtime
                    .block_on(self.store.fail_attempt(attempt, &source.to_string()));
                Err(RunError::Stage {
                    id: id.clone(),
                    attempt,
                    source: Box::new(source),
                })
            }
        }
    }

    fn note(&mut self, id: &ExperimentId, spec: &Spec, attempt: i64, outcome: Outcome) {
        // An input used twice (the world of both pretraining and evaluation) is reported once.
        if self.report.iter().any(|r| &r.id == id) {
            return;
        }
        self.report.push(StageReport {
            id: id.clone(),
            kind: spec.kind().to_string(),
            name: spec.name.clone(),
            attempt,
            outcome,
        });
    }

    /// Runs a stored experiment again as a new attempt and compares it with its first result.
    pub fn rerun(&mut self, id: &ExperimentId) -> Result<(i64, Reproduction), RunError> {
        let row = self.runtime.block_on(self.store.experiment(id))?;
        if row.kind == "recipe" {
            return Err(RunError::Other(format!(
                "{id} is a recipe: rerun its stages by id (lab show {} lists them)",
                id.short()
            )));
        }
        let (spec, input_ids) = self.stored(id)?;
        let reference = self.runtime.block_on(self.store.standing_attempt(id))?;
        let attempt = self
            .runtime
            .block_on(self.store.start_attempt(id, &self.origin))?;
        let digest = self.finish(id, &spec, attempt, &input_ids)?;
        let reproduction = match reference {
            None => Reproduction::FirstResult,
            Some(reference) => self
                .runtime
                .block_on(compare(self.store, &reference, attempt, &digest))?,
        };
        Ok((attempt, reproduction))
    }
}

/// One experiment of a plan: its id, its resolved spec and its inputs' ids by role.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedNode {
    pub id: ExperimentId,
    pub spec: Spec,
    pub inputs: BTreeMap<String, ExperimentId>,
}

/// Every experiment a spec needs, each once, in an order where inputs come first; the spec's
/// own experiment is last. Inputs named by id (`id:PREFIX`) are stored experiments, not nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub nodes: Vec<PlannedNode>,
    pub root: ExperimentId,
}

/// Resolves `spec` into its [`Plan`] without running or writing anything. Inputs given as spec
/// files are planned recursively; inputs given by id prefix need the store, and must be
/// completed when a store is given.
pub fn plan(spec: &Spec, runtime: &Runtime, store: Option<&Store>) -> Result<Plan, RunError> {
    let mut nodes = Vec::new();
    let root = plan_in(spec, runtime, store, &BTreeMap::new(), &mut nodes)?;
    Ok(Plan { nodes, root })
}

/// The id `spec` would get, without running anything.
pub fn plan_id(
    spec: &Spec,
    runtime: &Runtime,
    store: Option<&Store>,
) -> Result<ExperimentId, RunError> {
    Ok(plan(spec, runtime, store)?.root)
}

fn plan_in(
    spec: &Spec,
    runtime: &Runtime,
    store: Option<&Store>,
    recipe_stages: &BTreeMap<String, ExperimentId>,
    nodes: &mut Vec<PlannedNode>,
) -> Result<ExperimentId, RunError> {
    let mut inputs = BTreeMap::new();
    match &spec.stage {
        Stage::Recipe(recipe) => {
            for name in recipe.order() {
                let id = plan_in(&recipe.stages[&name], runtime, store, &inputs, nodes)?;
                inputs.insert(name, id);
            }
        }
        _ => {
            for (role, input) in &spec.inputs {
                let id = match input {
                    InputRef::SpecFile(path) => plan_in(
                        &Spec::load(path, &[])?,
                        runtime,
                        store,
                        &BTreeMap::new(),
                        nodes,
                    )?,
                    InputRef::Inline(spec) => {
                        plan_in(spec, runtime, store, &BTreeMap::new(), nodes)?
                    }
                    InputRef::RecipeStage(stage) => recipe_stages[stage].clone(),
                    InputRef::Id(prefix) => match store {
                        Some(store) => completed_input(runtime, store, role, prefix)?,
                        None => {
                            return Err(RunError::Input {
                                role: role.clone(),
                                input: format!("id:{prefix}"),
                                reason: "no database to look the id up in".into(),
                            })
                        }
                    },
                };
                inputs.insert(role.clone(), id);
            }
        }
    }
    let id = experiment_id(&spec.resolved_json(), &inputs);
    // An input used twice (the world of both pretraining and evaluation) is planned once.
    if !nodes.iter().any(|n| n.id == id) {
        nodes.push(PlannedNode {
            id: id.clone(),
            spec: spec.clone(),
            inputs,
        });
    }
    Ok(id)
}

/// A stored experiment named as an input by id prefix, which must have completed.
fn completed_input(
    runtime: &Runtime,
    store: &Store,
    role: &str,
    prefix: &str,
) -> Result<ExperimentId, RunError> {
    let id = runtime.block_on(store.resolve_id(prefix))?;
    if runtime.block_on(store.standing_attempt(&id))?.is_none() {
        return Err(RunError::Input {
            role: role.into(),
            input: format!("id:{prefix}"),
            reason: format!("experiment {id} has no completed attempt yet; run it first"),
        });
    }
    Ok(id)
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
    let old_checkpoints = store.checkpoints(reference.id).await?;
    let new_checkpoints = store.checkpoints(attempt).await?;
    for (step, hash) in &old_checkpoints {
        if !new_checkpoints.contains(&(*step, hash.clone())) {
            return Ok(Reproduction::Diverged {
                step: Some(*step),
                detail: format!("checkpoint at step {step} differs"),
            });
        }
    }
    Ok(Reproduction::Diverged {
        step: None,
        detail: "the result digests differ".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(name: &str) -> Spec {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../experiments/tiny")
            .join(name);
        Spec::load(&path, &[]).unwrap()
    }

    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The R1 recipe planned without a store: every experiment once (the world feeds several
    /// stages), each after its inputs, the recipe last with one input per stage.
    #[test]
    fn a_plan_holds_every_experiment_once_after_its_inputs() {
        let plan = plan(&tiny("r1.toml"), &runtime(), None).unwrap();
        let kinds: Vec<&str> = plan.nodes.iter().map(|n| n.spec.kind()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "world").count(),
            1,
            "{kinds:?}"
        );
        assert_eq!(plan.nodes.len(), 10, "{kinds:?}");
        let mut seen: Vec<&ExperimentId> = Vec::new();
        for node in &plan.nodes {
            assert!(
                !seen.contains(&&node.id),
                "{} planned twice",
                node.spec.name
            );
            for (role, input) in &node.inputs {
                assert!(
                    seen.contains(&input),
                    "{}: `{role}` comes later",
                    node.spec.name
                );
            }
            assert_eq!(
                node.id,
                experiment_id(&node.spec.resolved_json(), &node.inputs)
            );
            seen.push(&node.id);
        }
        let root = plan.nodes.last().unwrap();
        assert_eq!((root.spec.kind(), &root.id), ("recipe", &plan.root));
        assert_eq!(root.inputs.len(), 8, "one input per stage of the recipe");
        assert_eq!(
            plan_id(&tiny("r1.toml"), &runtime(), None).unwrap(),
            plan.root
        );
    }

    /// An input given by id needs a store to be resolved; the error names the role.
    #[test]
    fn an_input_by_id_needs_the_store() {
        let text = "kind = \"pretrain\"\ninputs.world = \"id:abc123\"\n";
        let spec = Spec::parse(text, "spec.toml", &[]).unwrap();
        let err = plan(&spec, &runtime(), None).unwrap_err();
        assert!(
            matches!(&err, RunError::Input { role, .. } if role == "world"),
            "{err}"
        );
    }

    /// A store holding the tiny world's experiment with a running attempt of `origin`.
    fn running_world(
        runtime: &Runtime,
        location: &crate::store::Location,
        origin: &AttemptOrigin,
    ) -> (Store, Spec, ExperimentId, i64) {
        let store = runtime.block_on(Store::open(location)).unwrap();
        let spec = tiny("world.toml");
        let id = plan_id(&spec, runtime, None).unwrap();
        let attempt = runtime
            .block_on(async {
                store
                    .ensure_experiment(&id, "world", "w", &spec.resolved_json(), 2, &[])
                    .await?;
                store.start_attempt(&id, origin).await
            })
            .unwrap();
        (store, spec, id, attempt)
    }

    /// A running attempt with a fresh lease is live wherever it runs: a second run of its id is
    /// refused, naming the host. Once its lease runs out, the next run marks it interrupted and
    /// resumes it here.
    #[test]
    fn a_live_attempt_on_another_host_is_waited_for_until_its_lease_runs_out() {
        let runtime = runtime();
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = AttemptOrigin {
            host: "node-7".into(),
            pid: 1,
            git_commit: None,
            job: None,
        };
        // On every backend: the lease's times are the database's, in its own dialect.
        for backend in crate::store::testing::test_stores(dir.path()) {
            let (store, spec, id, attempt) = running_world(&runtime, &backend.location, &elsewhere);
            let err = Runner::new(&runtime, &store, false).run(&spec).unwrap_err();
            assert!(err.to_string().contains("on node-7"), "{err}");

            runtime
                .block_on(store.age_heartbeat_for_tests(attempt, 2 * crate::store::LEASE))
                .unwrap();
            let mut runner = Runner::new(&runtime, &store, false);
            assert_eq!(runner.run(&spec).unwrap(), id);
            assert_eq!(runner.report[0].outcome, Outcome::Resumed);
            let attempts = runtime.block_on(store.attempts(&id)).unwrap();
            assert_eq!(attempts.len(), 1, "{}", backend.label);
            assert_eq!(attempts[0].status, AttemptStatus::Completed);
            runtime.block_on(store.close());
        }
    }

    /// The heartbeat thread renews the lease while it lives and stops when dropped.
    #[test]
    fn a_heartbeat_renews_the_lease_until_dropped() {
        let runtime = runtime();
        let dir = tempfile::tempdir().unwrap();
        for backend in crate::store::testing::test_stores(dir.path()) {
            let (store, _, _, attempt) = running_world(&runtime, &backend.location, &this_origin());
            let aged = 2 * crate::store::LEASE;
            runtime
                .block_on(store.age_heartbeat_for_tests(attempt, aged))
                .unwrap();
            let silent = || {
                let overview = runtime.block_on(store.run_overview("here")).unwrap();
                overview[0].silent_seconds.unwrap()
            };
            assert!(silent() > aged.as_secs_f64() - 1.0);
            let beat =
                Heartbeat::start(store.clone(), attempt, std::time::Duration::from_millis(20));
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(beat);
            assert!(silent() < 5.0, "renewed: {} s", silent());
            runtime
                .block_on(store.age_heartbeat_for_tests(attempt, aged))
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(silent() > aged.as_secs_f64() - 1.0, "stopped when dropped");

            // Dropped before its thread first waits, it still stops at once, not a period later
            // (every stage of a run drops one).
            let started = std::time::Instant::now();
            drop(Heartbeat::start(
                store.clone(),
                attempt,
                std::time::Duration::from_secs(600),
            ));
            assert!(started.elapsed() < std::time::Duration::from_secs(60));
        }
    }
}
