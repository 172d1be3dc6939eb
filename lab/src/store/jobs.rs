//! Jobs handed to a scheduler for an experiment: what was submitted, before any attempt of it
//! exists. The scheduler knows whether a job still waits or runs; the store remembers which
//! jobs stand for which experiment, so they are neither submitted twice nor forgotten by
//! `lab cancel`.

use super::{Result, Store};
use crate::identity::ExperimentId;

/// One submitted job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct JobRecord {
    pub experiment: String,
    /// The scheduler: `slurm`.
    pub executor: String,
    /// The scheduler's job id.
    pub job: String,
    pub submitted_at: String,
}

impl Store {
    pub async fn record_job(
        &self,
        experiment: &ExperimentId,
        executor: &str,
        job: &str,
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO jobs (experiment, executor, job, submitted_at) VALUES ($1, $2, $3, {now}) \
             ON CONFLICT (executor, job) DO NOTHING",
            now = self.dialect().now()
        );
        execute!(self, &sql, experiment.as_str(), executor, job)
    }

    /// The jobs submitted for an experiment, oldest first.
    pub async fn jobs(&self, experiment: &ExperimentId) -> Result<Vec<JobRecord>> {
        on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT experiment, executor, job, submitted_at FROM jobs WHERE experiment = $1 \
             ORDER BY submitted_at, job",
        )
        .bind(experiment.as_str())
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }
}
