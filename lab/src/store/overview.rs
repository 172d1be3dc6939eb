//! Reads for overviews of the whole store: one row per run with its latest key numbers (the
//! TUI's Runs view), and the language mixing each run measured (its Mixing view). Typed rows,
//! bound parameters; numbers computed in SQL are cast to DOUBLE PRECISION so they decode as `f64`
//! whatever the database stored.

use super::backend::integer_list;
use super::{AttemptStatus, Dialect, Result, Store};

/// A run with its latest attempt and the numbers a list of runs shows.
#[derive(Debug, Clone, PartialEq, Default, sqlx::FromRow)]
pub struct RunOverview {
    pub id: String,
    pub kind: String,
    pub name: String,
    /// The latest attempt, if it ever ran.
    pub attempt: Option<i64>,
    pub attempts: i64,
    pub status: Option<AttemptStatus>,
    pub progress: Option<f64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub pid: Option<i64>,
    pub host: Option<String>,
    /// Seconds since the latest attempt's last heartbeat (`None` before leases existed).
    pub silent_seconds: Option<f64>,
    /// For a running attempt, whether it is alive as seen from the host that asked
    /// ([`Store::run_overview`]), by the rule that marks attempts interrupted
    /// ([`super::liveness`]); `None` when nothing can be told.
    #[sqlx(skip)]
    pub alive: Option<bool>,
    /// Last `reward` and `loss` logged.
    pub reward: Option<f64>,
    pub loss: Option<f64>,
    /// Mean pass@1 and mixed rate of its evaluations (or of the evaluation stage a recipe
    /// names `eval`); the mixed rate falls back to the last `lang/mixed_rate` logged.
    pub pass1: Option<f64>,
    pub mixed: Option<f64>,
}

/// The language mixing one run measured, in training, evaluation and its traces.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MixingOverview {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub attempt: i64,
    /// Last `lang/mixed_rate` and `lang/consistency` logged in training.
    pub train_mixed: Option<f64>,
    pub consistency: Option<f64>,
    /// Mean `mixed_rate` over its evaluations.
    pub eval_mixed: Option<f64>,
    /// Share of its traces that mix languages, and how many traces say.
    pub traces_mixed: Option<f64>,
    pub traces: i64,
}

fn runs_query(dialect: Dialect) -> String {
    format!(
        "\
SELECT r.id, r.kind, r.name, r.attempt, r.attempts, r.status, CAST(r.progress AS DOUBLE PRECISION) AS progress,
       r.started_at, r.ended_at, a.pid, a.host,
       {silent} AS silent_seconds,
       CAST((SELECT value FROM metrics m WHERE m.attempt = r.attempt AND m.name = 'reward'
         ORDER BY step DESC LIMIT 1) AS DOUBLE PRECISION) AS reward,
       CAST((SELECT value FROM metrics m WHERE m.attempt = r.attempt AND m.name = 'loss'
         ORDER BY step DESC LIMIT 1) AS DOUBLE PRECISION) AS loss,
       CAST(coalesce(
         (SELECT avg(value) FROM evaluations v WHERE v.attempt = r.attempt AND v.metric = 'pass@1'),
         (SELECT avg(v.value) FROM lineage l JOIN results s ON s.experiment = l.parent
            JOIN evaluations v ON v.attempt = s.attempt
           WHERE l.child = r.id AND l.role = 'eval' AND v.metric = 'pass@1')) AS DOUBLE PRECISION) AS pass1,
       CAST(coalesce(
         (SELECT avg(value) FROM evaluations v WHERE v.attempt = r.attempt AND v.metric = 'mixed_rate'),
         (SELECT avg(v.value) FROM lineage l JOIN results s ON s.experiment = l.parent
            JOIN evaluations v ON v.attempt = s.attempt
           WHERE l.child = r.id AND l.role = 'eval' AND v.metric = 'mixed_rate'),
         (SELECT value FROM metrics m WHERE m.attempt = r.attempt AND m.name = 'lang/mixed_rate'
           ORDER BY step DESC LIMIT 1)) AS DOUBLE PRECISION) AS mixed
FROM runs r LEFT JOIN attempts a ON a.id = r.attempt
ORDER BY coalesce(r.started_at, r.created_at) DESC, r.id",
        silent = dialect.seconds_since("a.heartbeat_at")
    )
}

fn mixing_query(dialect: Dialect) -> String {
    let mixed = dialect.json_number("language_scores", "mixed");
    format!(
        "\
SELECT * FROM (
  SELECT r.id, r.name, r.kind, r.attempt,
         CAST((SELECT value FROM metrics m WHERE m.attempt = r.attempt AND m.name = 'lang/mixed_rate'
           ORDER BY step DESC LIMIT 1) AS DOUBLE PRECISION) AS train_mixed,
         CAST((SELECT value FROM metrics m WHERE m.attempt = r.attempt AND m.name = 'lang/consistency'
           ORDER BY step DESC LIMIT 1) AS DOUBLE PRECISION) AS consistency,
         CAST((SELECT avg(value) FROM evaluations v WHERE v.attempt = r.attempt
           AND v.metric = 'mixed_rate') AS DOUBLE PRECISION) AS eval_mixed,
         CAST((SELECT avg({mixed}) FROM traces t
           WHERE t.attempt = r.attempt AND {mixed} IS NOT NULL)
           AS DOUBLE PRECISION) AS traces_mixed,
         (SELECT count(*) FROM traces t WHERE t.attempt = r.attempt
           AND {mixed} IS NOT NULL) AS traces
  FROM runs r WHERE r.attempt IS NOT NULL) AS mixing
WHERE train_mixed IS NOT NULL OR eval_mixed IS NOT NULL OR traces_mixed IS NOT NULL"
    )
}

impl RunOverview {
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }

    pub fn is_running(&self) -> bool {
        self.status == Some(AttemptStatus::Running)
    }
}

impl Store {
    /// Every experiment with its latest attempt and key numbers, the latest started first,
    /// with whether each running one is alive as seen from host `here`.
    pub async fn run_overview(&self, here: &str) -> Result<Vec<RunOverview>> {
        let mut rows: Vec<RunOverview> =
            on_pool!(&self.pool, pool => sqlx::query_as(&runs_query(self.dialect()))
            .fetch_all(pool)
            .await)
            .map_err(self.err())?;
        for row in &mut rows {
            if row.status != Some(AttemptStatus::Running) {
                continue;
            }
            let pid = row.pid;
            row.alive = super::liveness(
                row.host.as_deref() == Some(here),
                row.silent_seconds,
                || pid.is_some_and(super::process_alive),
            );
        }
        Ok(rows)
    }

    /// Every run that measured language mixing in any way (training, evaluation, traces).
    pub async fn mixing_overview(&self) -> Result<Vec<MixingOverview>> {
        on_pool!(&self.pool, pool => sqlx::query_as(&mixing_query(self.dialect()))
            .fetch_all(pool)
            .await)
        .map_err(self.err())
    }

    /// The names of the metrics any of `attempts` logged: those logged at more than one step
    /// first (the curves worth overlaying), then by name.
    pub async fn curve_names(&self, attempts: &[i64]) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT name FROM metrics WHERE attempt IN ({attempts}) \
             GROUP BY name ORDER BY count(DISTINCT step) > 1 DESC, name",
            attempts = integer_list(attempts)
        );
        on_pool!(&self.pool, pool => sqlx::query_scalar(&sql)
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }
}
