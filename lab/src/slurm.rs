//! The Slurm executor: a plan's experiments as `sbatch` jobs, one per experiment, each running
//! `lab exec ID` against the same store, chained with `--dependency=afterok` so a stage starts
//! only after its inputs completed.
//!
//! The store stays the one authority: a job's attempt records its job id, liveness is the
//! store's heartbeat lease (a job on another node is seen alive or dead like any attempt), and
//! a completed experiment is never submitted again. Slurm is asked only what it alone knows:
//! whether a submitted job still waits or runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::runtime::Runtime;

use crate::identity::ExperimentId;
use crate::runner::Plan;
use crate::store::{AttemptStatus, Location, Store, StoreError};

/// The executor's name in the store's `jobs` table and in attempts' `job` column.
pub const EXECUTOR: &str = "slurm";

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("running {command}: {source} (is Slurm installed and on PATH?)")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("sbatch answered `{0}`, not a job id")]
    BadJobId(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of one experiment of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// Completed already: nothing submitted.
    Reused,
    /// A job submitted earlier still waits or runs for it: not submitted again.
    Queued { job: String },
    /// Submitted now, after the jobs of its inputs.
    Submitted { job: String, after: Vec<String> },
}

impl Submission {
    /// The job that stands for the experiment, if one waits or runs for it.
    pub fn job(&self) -> Option<&str> {
        match self {
            Submission::Reused => None,
            Submission::Queued { job } | Submission::Submitted { job, .. } => Some(job),
        }
    }
}

/// How jobs are submitted.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// The `lab` binary the jobs run (this one by default): a path every node reaches.
    pub lab_bin: PathBuf,
    /// Where job logs go (`<id12>-<job>.log`).
    pub log_dir: PathBuf,
    /// Extra `sbatch` arguments (`--partition=gpu`, `--time=1:00:00`).
    pub sbatch_args: Vec<String>,
}

impl SlurmOptions {
    /// Jobs run this binary and log beside the object folder (`lab.objects` → `lab.jobs`).
    pub fn for_store(location: &Location) -> std::io::Result<SlurmOptions> {
        Ok(SlurmOptions {
            lab_bin: std::env::current_exe()?,
            log_dir: location.objects.with_extension("jobs"),
            sbatch_args: Vec::new(),
        })
    }
}

/// Submits every experiment of `plan` that is neither completed nor queued, inputs first, each
/// job depending on its inputs' jobs. The plan must be registered in the store already.
pub fn submit(
    runtime: &Runtime,
    store: &Store,
    plan: &Plan,
    options: &SlurmOptions,
) -> Result<Vec<(ExperimentId, Submission)>, SlurmError> {
    std::fs::create_dir_all(&options.log_dir).map_err(|source| SlurmError::Io {
        path: options.log_dir.clone(),
        source,
    })?;
    let mut done: Vec<(ExperimentId, Submission)> = Vec::new();
    for node in &plan.nodes {
        let submission = if runtime
            .block_on(store.standing_attempt(&node.id))?
            .is_some()
        {
            Submission::Reused
        } else if let Some(job) = queued_job(runtime, store, &node.id)? {
            Submission::Queued { job }
        } else {
            // Inputs completed need no dependency; inputs of this plan that wait need theirs.
            let after: Vec<String> = node
                .inputs
                .values()
                .filter_map(|input| {
                    done.iter()
                        .find(|(id, _)| id == input)
                        .and_then(|(_, s)| s.job())
                        .map(str::to_string)
                })
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let job = sbatch(
                store.location(),
                &node.id,
                node.spec.kind(),
                &after,
                options,
            )?;
            runtime.block_on(store.record_job(&node.id, EXECUTOR, &job))?;
            Submission::Submitted { job, after }
        };
        done.push((node.id.clone(), submission));
    }
    Ok(done)
}

/// A job submitted for `id` that Slurm still holds (pending or running), if any.
fn queued_job(
    runtime: &Runtime,
    store: &Store,
    id: &ExperimentId,
) -> Result<Option<String>, SlurmError> {
    for job in runtime.block_on(store.jobs(id))?.iter().rev() {
        if job.executor == EXECUTOR && job_state(&job.job)?.is_some_and(|s| s.is_queued()) {
            return Ok(Some(job.job.clone()));
        }
    }
    Ok(None)
}

fn sbatch(
    location: &Location,
    id: &ExperimentId,
    kind: &str,
    after: &[String],
    options: &SlurmOptions,
) -> Result<String, SlurmError> {
    let mut command = Command::new("sbatch");
    command
        .arg("--parsable")
        .arg(format!("--job-name=lab-{kind}-{}", id.short()))
        .arg(format!(
            "--output={}",
            options
                .log_dir
                .join(format!("{}-%j.log", id.short()))
                .display()
        ));
    if !after.is_empty() {
        // A job whose input failed can never start: Slurm drops it instead of keeping it
        // pending forever.
        command
            .arg(format!("--dependency=afterok:{}", after.join(":")))
            .arg("--kill-on-invalid-dep=yes");
    }
    command.args(&options.sbatch_args);
    let script = batch_script(&options.lab_bin, location, id);
    let output = run_with_input(command, &script)?;
    // `--parsable` prints `id` or `id;cluster`.
    let job = output.trim().split(';').next().unwrap_or("").to_string();
    if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SlurmError::BadJobId(output.trim().to_string()));
    }
    Ok(job)
}

/// The job's script: `lab exec ID` against the same store, every argument quoted for `sh`.
pub fn batch_script(lab_bin: &Path, location: &Location, id: &ExperimentId) -> String {
    let mut words = vec![lab_bin.display().to_string()];
    words.extend(location.cli_args());
    words.extend(["exec".to_string(), id.to_string()]);
    let line: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
    format!("#!/bin/sh\nexec {}\n", line.join(" "))
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn run_with_input(mut command: Command, input: &str) -> Result<String, SlurmError> {
    let name = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SlurmError::Spawn {
            command: name.clone(),
            source,
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(|source| SlurmError::Spawn {
            command: name.clone(),
            source,
        })?;
    let output = child
        .wait_with_output()
        .map_err(|source| SlurmError::Spawn {
            command: name.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(SlurmError::Failed {
            command: name,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A job's state as Slurm reports it (`PENDING`, `RUNNING`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState(pub String);

impl JobState {
    /// Waiting or running: the job still stands for its experiment.
    pub fn is_queued(&self) -> bool {
        matches!(
            self.0.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "RESIZING"
                | "SUSPENDED"
        )
    }
}

/// The state of a job Slurm still knows (`squeue`); `None` once it left the queue.
pub fn job_state(job: &str) -> Result<Option<JobState>, SlurmError> {
    let mut command = Command::new("squeue");
    command.args(["--noheader", "--format=%T", "--jobs", job]);
    match run_with_input(command, "") {
        Ok(out) => Ok(out
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|s| JobState(s.to_string()))),
        // squeue refuses a job id it no longer knows.
        Err(SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Cancels a job (`scancel`).
pub fn cancel(job: &str) -> Result<(), SlurmError> {
    let mut command = Command::new("scancel");
    command.arg(job);
    run_with_input(command, "").map(|_| ())
}

/// The Slurm job id of an attempt's `job` column (`slurm:1234` → `1234`).
pub fn job_of_attempt(job: Option<&str>) -> Option<&str> {
    job.and_then(|j| j.strip_prefix("slurm:"))
}

/// What `lab cancel` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// A running attempt's Slurm job, cancelled with `scancel`.
    Job { attempt: i64, job: String },
    /// Jobs that waited for their turn, withdrawn.
    Pending { jobs: Vec<String> },
}

/// Cancels what runs or waits for `id` through Slurm: the running attempt's job and any job
/// still queued for it. Returns what it cancelled (nothing when nothing runs through Slurm).
pub fn cancel_experiment(
    runtime: &Runtime,
    store: &Store,
    id: &ExperimentId,
) -> Result<Vec<Cancelled>, SlurmError> {
    let mut cancelled = Vec::new();
    for attempt in runtime.block_on(store.attempts(id))? {
        if attempt.status != AttemptStatus::Running {
            continue;
        }
        if let Some(job) = job_of_attempt(attempt.job.as_deref()) {
            cancel(job)?;
            cancelled.push(Cancelled::Job {
                attempt: attempt.id,
                job: job.to_string(),
            });
        }
    }
    let mut pending = Vec::new();
    for job in runtime.block_on(store.jobs(id))? {
        let already = cancelled
            .iter()
            .any(|c| matches!(c, Cancelled::Job { job: j, .. } if *j == job.job));
        if job.executor == EXECUTOR
            && !already
            && job_state(&job.job)?.is_some_and(|s| s.is_queued())
        {
            cancel(&job.job)?;
            pending.push(job.job);
        }
    }
    if !pending.is_empty() {
        cancelled.push(Cancelled::Pending { jobs: pending });
    }
    Ok(cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_runs_lab_exec_against_the_same_store() {
        let location =
            Location::parse("postgres://lab:it's@db/lab", Some(Path::new("/shared/o"))).unwrap();
        let id = ExperimentId::parse(&"ab".repeat(32)).unwrap();
        let script = batch_script(Path::new("/opt/lab bin/lab"), &location, &id);
        assert_eq!(
            script,
            format!(
                "#!/bin/sh\nexec '/opt/lab bin/lab' '--db' 'postgres://lab:it'\\''s@db/lab' \
                 '--objects' '/shared/o' 'exec' '{}'\n",
                "ab".repeat(32)
            )
        );
        assert_eq!(job_of_attempt(Some("slurm:42")), Some("42"));
        assert_eq!(job_of_attempt(None), None);
        assert!(JobState("PENDING".into()).is_queued());
        assert!(!JobState("COMPLETED".into()).is_queued());
    }
}
