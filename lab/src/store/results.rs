//! Reads of evaluation results and RL curves, for the results table (`lab table`) and the
//! findings (`lab findings`): typed rows, bound parameters. A scope is a recipe id; its closure
//! is the recipe with every experiment it used, at any depth.

use super::backend::id_list;
use super::{Result, Store};

/// One number of an evaluation with the model it measured (the `model_results` view).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ModelResult {
    /// Model label (see `results_table::MODEL_ORDER` and the `model_labels` view).
    pub model: String,
    /// The eval experiment's id.
    pub experiment: String,
    pub benchmark: String,
    pub prompting: String,
    /// `pass@1`, `pass@8`, `cons@8`, `format_rate`, `mean_length`, `lang_consistency`,
    /// `mixed_rate`.
    pub metric: String,
    /// Samples per problem.
    pub k: i64,
    pub value: f64,
    pub stderr: Option<f64>,
}

/// A completed evaluation of a labelled model, with what chooses among several of a model.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EvalCandidate {
    pub model: String,
    pub experiment: String,
    pub ended_at: String,
    pub attempt: i64,
    /// The evaluation's resolved spec (JSON), for its sampling settings.
    pub spec: String,
}

/// One number of an evaluation, with what the findings need to weigh it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EvaluationNumber {
    pub experiment: String,
    pub model: String,
    pub ended_at: String,
    pub spec: String,
    pub prompting: String,
    pub benchmark: String,
    pub metric: String,
    pub value: f64,
    pub stderr: Option<f64>,
    /// Whether the evaluation is a stage of the scope (rather than of a model it used).
    pub in_recipe: bool,
}

/// A point of a GRPO run's mean completion length.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LengthPoint {
    pub experiment: String,
    pub model: String,
    pub step: i64,
    pub value: f64,
}

/// The recipe `$1` and everything it used, at any depth (all of it when `$1` is NULL, through
/// the `$1 IS NULL` of each query).
const CLOSURE: &str = "WITH RECURSIVE closure(id) AS (SELECT $1 UNION \
     SELECT l.parent FROM lineage l JOIN closure c ON l.child = c.id)";

impl Store {
    /// The numbers of the given evaluations.
    pub async fn model_results(&self, evals: &[String]) -> Result<Vec<ModelResult>> {
        let sql = format!(
            "SELECT model, experiment, benchmark, prompting, metric, k, \
             CAST(value AS DOUBLE PRECISION) AS value, \
             CAST(stderr AS DOUBLE PRECISION) AS stderr \
             FROM model_results WHERE experiment IN ({evals})",
            evals = id_list(evals.iter().map(String::as_str))
        );
        on_pool!(&self.pool, pool => sqlx::query_as(&sql)
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }

    /// Every completed evaluation of a labelled model.
    pub async fn eval_candidates(&self) -> Result<Vec<EvalCandidate>> {
        on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT DISTINCT mr.model, mr.experiment, mr.ended_at, mr.attempt, e.spec \
             FROM model_results mr JOIN experiments e ON e.id = mr.experiment",
        )
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }

    /// The completed evaluations inside a recipe (through recipes inside it), oldest first.
    pub async fn evals_in_recipe(&self, recipe: &str) -> Result<Vec<String>> {
        on_pool!(&self.pool, pool => sqlx::query_scalar(
            "WITH RECURSIVE stages(id) AS (SELECT $1 UNION \
             SELECT l.parent FROM lineage l JOIN stages s ON l.child = s.id \
             JOIN experiments e ON e.id = s.id AND e.kind = 'recipe') \
             SELECT experiment FROM (SELECT DISTINCT mr.experiment, mr.ended_at \
             FROM model_results mr JOIN stages s ON s.id = mr.experiment) AS done \
             ORDER BY ended_at, experiment",
        )
        .bind(recipe)
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }

    /// The completed evaluations of a model, oldest first.
    pub async fn evals_of_model(&self, model: &str) -> Result<Vec<String>> {
        on_pool!(&self.pool, pool => sqlx::query_scalar(
            "SELECT experiment FROM (SELECT DISTINCT experiment, ended_at FROM model_results \
             WHERE model_experiment = $1) AS done ORDER BY ended_at, experiment",
        )
        .bind(model)
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }

    /// The evaluations a scope judges by: its own, and those of the models it used (R1-Zero's
    /// recipe judges its gain against the evaluation of the base model it started from); every
    /// evaluation without a scope.
    pub async fn evaluation_numbers(&self, scope: Option<&str>) -> Result<Vec<EvaluationNumber>> {
        on_pool!(&self.pool, pool => sqlx::query_as(&format!(
            "{CLOSURE} SELECT mr.experiment, mr.model, mr.ended_at, e.spec, mr.prompting, \
             mr.benchmark, mr.metric, CAST(mr.value AS DOUBLE PRECISION) AS value, \
             CAST(mr.stderr AS DOUBLE PRECISION) AS stderr, \
             ($1 IS NULL OR mr.experiment IN (SELECT id FROM closure)) AS in_recipe \
             FROM model_results mr JOIN experiments e ON e.id = mr.experiment \
             WHERE $1 IS NULL OR mr.experiment IN (SELECT id FROM closure) \
             OR mr.model_experiment IN (SELECT id FROM closure)"
        ))
        .bind(scope)
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }

    /// The mean completion length of every completed GRPO run of a scope (of all without one),
    /// run by run in the order they ended, each by step.
    pub async fn length_points(&self, scope: Option<&str>) -> Result<Vec<LengthPoint>> {
        on_pool!(&self.pool, pool => sqlx::query_as(&format!(
            "{CLOSURE} SELECT ml.experiment, ml.model, m.step, CAST(m.value AS DOUBLE PRECISION) AS value \
             FROM model_labels ml \
             JOIN results r ON r.experiment = ml.experiment \
             JOIN attempts a ON a.id = r.attempt \
             JOIN metrics m ON m.attempt = r.attempt AND m.name = 'completions/mean_length' \
             WHERE ml.kind = 'grpo' AND ($1 IS NULL OR ml.experiment IN (SELECT id FROM closure)) \
             ORDER BY a.ended_at, ml.experiment, m.step"
        ))
        .bind(scope)
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }
}
