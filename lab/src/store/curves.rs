//! Reads for curves and reports: which runs a scope holds, which metrics each logged, and a
//! metric's points in step order.

use super::backend::id_list;
use super::{Result, Store};
use crate::identity::ExperimentId;

/// An experiment with the attempt whose results stand for it (its first completed one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingRun {
    pub experiment: String,
    pub kind: String,
    pub name: String,
    pub attempt: i64,
}

impl Store {
    /// The experiments with a standing result: the given ones, where a recipe stands for every
    /// stage inside it (at any depth, the recipe itself included), or all of them. In the order
    /// they finished.
    pub async fn standing_runs(&self, scope: &[ExperimentId]) -> Result<Vec<StandingRun>> {
        // An empty scope is everything; otherwise the closure of the ids over the lineage of
        // recipes (a recipe's inputs are its stages).
        let sql = format!(
            "WITH RECURSIVE chosen(id) AS ( \
               SELECT id FROM experiments WHERE id IN ({ids}) \
               UNION SELECT l.parent FROM lineage l JOIN chosen c ON l.child = c.id \
               JOIN experiments e ON e.id = c.id AND e.kind = 'recipe') \
             SELECT r.experiment, r.kind, r.name, r.attempt FROM results r \
             JOIN attempts a ON a.id = r.attempt \
             WHERE {everything} OR r.experiment IN (SELECT id FROM chosen) \
             ORDER BY a.ended_at, r.experiment",
            ids = id_list(scope.iter().map(ExperimentId::as_str)),
            everything = if scope.is_empty() { "1 = 1" } else { "1 = 0" },
        );
        let rows: Vec<(String, String, String, i64)> =
            on_pool!(&self.pool, pool => sqlx::query_as(&sql).fetch_all(pool).await)
                .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|(experiment, kind, name, attempt)| StandingRun {
                experiment,
                kind,
                name,
                attempt,
            })
            .collect())
    }

    /// The names of the metrics an attempt logged, sorted.
    pub async fn metric_names(&self, attempt: i64) -> Result<Vec<String>> {
        on_pool!(&self.pool, pool => sqlx::query_scalar("SELECT DISTINCT name FROM metrics WHERE attempt = $1 ORDER BY name")
            .bind(attempt)
            .fetch_all(pool)
            .await)
            .map_err(self.err())
    }

    /// One metric of an attempt as `(step, value)`, by step.
    pub async fn metric_series(&self, attempt: i64, name: &str) -> Result<Vec<(i64, f64)>> {
        on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT step, value FROM metrics WHERE attempt = $1 AND name = $2 ORDER BY step",
        )
        .bind(attempt)
        .bind(name)
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }
}
