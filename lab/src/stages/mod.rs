//! Stages: the work an experiment does, given its resolved spec and a context to record into.
//!
//! A stage reads its inputs, computes, and reports through [`StageContext`]: metrics, traces,
//! data sets and progress. The context batches writes so a training loop never waits on the
//! database for every point.

mod world;

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::spec::Stage;
use crate::store::{ArtifactRecord, MetricPoint, ObjectError, Store, StoreError, TraceRecord};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("{0}")]
    Failed(String),
}

/// How often buffered points and progress reach the database while a stage runs.
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// What a running stage records into.
pub struct StageContext<'a> {
    runtime: &'a Runtime,
    store: &'a Store,
    attempt: i64,
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
        attempt: i64,
        progress_bar: ProgressBar,
    ) -> Self {
        StageContext {
            runtime,
            store,
            attempt,
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

/// Runs a stage to completion, recording into `ctx`.
pub fn run_stage(stage: &Stage, ctx: &mut StageContext) -> Result<(), StageError> {
    match stage {
        Stage::World(config) => world::run(config, ctx),
    }
}
