//! The comparison table of `lab table`, shaped like the paper's chart: one row per model and
//! prompting style, columns benchmark × {pass@1, cons@k}, then response length and
//! mixed-language rate, with standard errors. Also as Markdown and as long-format CSV.
//!
//! The numbers come from the `model_results` view (migration 0003), which labels every standing
//! evaluation number with the model it measured; the label rules live in that migration's
//! `model_labels` view and nowhere else.
//!
//! Which evaluations [`load`] shows:
//! - no ids: for each model label, its most recent completed `eval` experiment (by the end time of
//!   its standing attempt, ties to the later attempt), preferring evaluations at the paper's
//!   sampling settings (temperature 0.6, top-p 0.95) so that a gate such as `base/eval-t1` does
//!   not stand for the base model; a model with no such evaluation shows its latest of any kind.
//! - ids (full or unique prefixes): an `eval` experiment shows itself; a `recipe` shows its eval
//!   stages, and those of the recipes among its stages; any other experiment is taken as a
//!   model and shows all its completed evaluations.
//!   Evaluations without a completed attempt show nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::evaluation::{EVAL_TEMPERATURE, EVAL_TOP_P};
use crate::store::{Store, StoreError};
use crate::table;

/// The order of rows; labels not listed follow alphabetically.
pub const MODEL_ORDER: [&str; 8] = [
    "base",
    "r1-zero",
    "r1-coldstart",
    "r1-rl",
    "r1-sft",
    "r1",
    "student-distill",
    "student-rl",
];

/// One number of an evaluation with the model it measured: a row of `lab table --csv`, as the
/// store reads it.
pub use crate::store::ModelResult as ResultRow;

/// The numbers of the chosen evaluations (see the module documentation), ordered by model,
/// evaluation, prompting, benchmark and metric.
pub async fn load(store: &Store, eval_ids: &[String]) -> Result<Vec<ResultRow>, StoreError> {
    let evals = if eval_ids.is_empty() {
        default_evals(store).await?
    } else {
        explicit_evals(store, eval_ids).await?
    };
    if evals.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: Vec<ResultRow> = store.model_results(&evals).await?;
    let position: HashMap<&str, usize> = evals
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let key = |r: &ResultRow| {
        (
            model_rank(&r.model),
            r.model.clone(),
            position.get(r.experiment.as_str()).copied(),
            r.prompting.clone(),
            r.benchmark.clone(),
            metric_rank(&r.metric),
            r.metric.clone(),
            r.k,
        )
    };
    rows.sort_by_cached_key(key);
    Ok(rows)
}

/// Per model label, the latest completed eval, preferring the paper's sampling settings.
async fn default_evals(store: &Store) -> Result<Vec<String>, StoreError> {
    // model -> (paper settings, ended_at, attempt, eval id)
    let mut best: BTreeMap<String, (bool, String, i64, String)> = BTreeMap::new();
    for r in store.eval_candidates().await? {
        let spec: serde_json::Value = serde_json::from_str(&r.spec).unwrap_or_default();
        let paper = spec["temperature"].as_f64() == Some(EVAL_TEMPERATURE)
            && spec["top_p"].as_f64() == Some(EVAL_TOP_P);
        let candidate = (paper, r.ended_at, r.attempt, r.experiment);
        let entry = best.entry(r.model).or_insert_with(|| candidate.clone());
        if candidate > *entry {
            *entry = candidate;
        }
    }
    Ok(best.into_values().map(|(_, _, _, id)| id).collect())
}

/// The evals that the given ids stand for, in the order given, each once.
async fn explicit_evals(store: &Store, ids: &[String]) -> Result<Vec<String>, StoreError> {
    let mut evals: Vec<String> = Vec::new();
    for prefix in ids {
        let id = store.resolve_id(prefix).await?;
        let kind = store.experiment(&id).await?.kind;
        let found = match kind.as_str() {
            "eval" => vec![id.to_string()],
            "recipe" => store.evals_in_recipe(id.as_str()).await?,
            _ => store.evals_of_model(id.as_str()).await?,
        };
        for eval in found {
            if !evals.contains(&eval) {
                evals.push(eval);
            }
        }
    }
    Ok(evals)
}

fn model_rank(model: &str) -> usize {
    MODEL_ORDER
        .iter()
        .position(|m| *m == model)
        .unwrap_or(MODEL_ORDER.len())
}

fn metric_rank(metric: &str) -> usize {
    match metric {
        "pass@1" => 0,
        m if m.starts_with("pass@") => 1,
        m if m.starts_with("cons@") => 2,
        "format_rate" => 3,
        "mean_length" => 4,
        "lang_consistency" => 5,
        "mixed_rate" => 6,
        _ => 7,
    }
}

/// The chart as cells, shared by the text and Markdown renderings.
struct Chart {
    headers: Vec<String>,
    /// Columns holding numbers (aligned right).
    numeric: Vec<bool>,
    rows: Vec<Vec<String>>,
    footer: Vec<String>,
}

/// The numbers of one row of the chart: one model's eval under one prompting style.
struct ChartRow<'a> {
    model: &'a str,
    experiment: &'a str,
    prompting: &'a str,
    k: i64,
    /// (benchmark, metric) -> (value, stderr)
    numbers: HashMap<(&'a str, &'a str), (f64, Option<f64>)>,
}

fn chart(rows: &[ResultRow]) -> Chart {
    // Models in MODEL_ORDER, then by name; a model's evals in the order they first appear.
    let mut first_seen: HashMap<(&str, &str), usize> = HashMap::new();
    for r in rows {
        let next = first_seen.len();
        first_seen
            .entry((r.model.as_str(), r.experiment.as_str()))
            .or_insert(next);
    }
    let mut groups: BTreeMap<(usize, &str, usize, &str), ChartRow> = BTreeMap::new();
    for r in rows {
        let key = (
            model_rank(&r.model),
            r.model.as_str(),
            first_seen[&(r.model.as_str(), r.experiment.as_str())],
            r.prompting.as_str(),
        );
        let group = groups.entry(key).or_insert_with(|| ChartRow {
            model: &r.model,
            experiment: &r.experiment,
            prompting: &r.prompting,
            k: r.k,
            numbers: HashMap::new(),
        });
        group.k = group.k.max(r.k);
        group
            .numbers
            .insert((&r.benchmark, &r.metric), (r.value, r.stderr));
    }
    let benchmarks: BTreeSet<&str> = rows.iter().map(|r| r.benchmark.as_str()).collect();
    let ks: BTreeSet<i64> = groups.values().map(|g| g.k).collect();
    let one_k = (ks.len() == 1).then(|| ks.first().copied()).flatten();
    let mut evals_per_model: HashMap<&str, usize> = HashMap::new();
    for (model, _) in first_seen.keys() {
        *evals_per_model.entry(model).or_default() += 1;
    }

    let mut headers = vec!["model".to_string(), "prompting".to_string()];
    if one_k.is_none() {
        headers.push("k".into());
    }
    let cons_header = one_k.map_or("cons@k".to_string(), |k| format!("cons@{k}"));
    for b in &benchmarks {
        headers.push(format!("{b} pass@1"));
        headers.push(format!("{b} {cons_header}"));
    }
    headers.push("length".into());
    headers.push("mixed".into());
    let numeric = (0..headers.len()).map(|i| i >= 2).collect();

    let mut table_rows = Vec::new();
    let mut disambiguated = false;
    for g in groups.values() {
        let mut label = g.model.to_string();
        if evals_per_model[g.model] > 1 {
            label = format!("{label} [{}]", &g.experiment[..g.experiment.len().min(12)]);
            disambiguated = true;
        }
        let mut cells = vec![label, g.prompting.to_string()];
        if one_k.is_none() {
            cells.push(g.k.to_string());
        }
        let cons = format!("cons@{}", g.k);
        for b in &benchmarks {
            cells.push(cell(g.numbers.get(&(*b, "pass@1")).copied(), 100.0));
            let cons_value = g.numbers.get(&(*b, cons.as_str())).map(|(v, _)| (*v, None));
            cells.push(cell(cons_value, 100.0));
        }
        cells.push(cell(average(g, &benchmarks, "mean_length"), 1.0));
        cells.push(cell(average(g, &benchmarks, "mixed_rate"), 100.0));
        table_rows.push(cells);
    }

    let mut footer = vec![
        match one_k {
            Some(k) => format!(
                "pass@1 and cons@{k} in %, over k = {k} samples per problem; \
                 ± is the standard error across problems."
            ),
            None => "pass@1 and cons@k in %, over k samples per problem (column k); \
                     ± is the standard error across problems."
                .to_string(),
        },
        "length (response tokens) and mixed (mixed-language responses, %) are averaged over \
         each row's benchmarks."
            .to_string(),
    ];
    if disambiguated {
        footer.push("[id]: the evaluation, where a model has several.".to_string());
    }
    Chart {
        headers,
        numeric,
        rows: table_rows,
        footer,
    }
}

/// The mean of a metric over the row's benchmarks; its standard error combines theirs as
/// independent estimates.
fn average(g: &ChartRow, benchmarks: &BTreeSet<&str>, metric: &str) -> Option<(f64, Option<f64>)> {
    let found: Vec<(f64, Option<f64>)> = benchmarks
        .iter()
        .filter_map(|b| g.numbers.get(&(*b, metric)).copied())
        .collect();
    if found.is_empty() {
        return None;
    }
    let n = found.len() as f64;
    let mean = found.iter().map(|(v, _)| v).sum::<f64>() / n;
    let stderr = found
        .iter()
        .map(|(_, se)| se.map(|s| s * s))
        .sum::<Option<f64>>()
        .map(|sum| sum.sqrt() / n);
    Some((mean, stderr))
}

/// `12.5 ± 1.2` (value and stderr times `scale`, one decimal), `12.5` without a stderr, `-` when
/// missing.
fn cell(number: Option<(f64, Option<f64>)>, scale: f64) -> String {
    match number {
        None => "-".to_string(),
        Some((v, None)) => format!("{:.1}", v * scale),
        Some((v, Some(se))) => format!("{:.1} ± {:.1}", v * scale, se * scale),
    }
}

const NO_RESULTS: &str = "no evaluation results\n";

/// The chart as an aligned text table with a footer explaining the columns.
pub fn render_text(rows: &[ResultRow]) -> String {
    if rows.is_empty() {
        return NO_RESULTS.to_string();
    }
    let chart = chart(rows);
    // Number cells are padded to their column's width here, so they line up on the right.
    let widths: Vec<usize> = (0..chart.headers.len())
        .map(|i| {
            chart
                .rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([chart.headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let cells: Vec<Vec<String>> = chart
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| {
                    if chart.numeric[i] {
                        format!("{c:>width$}", width = widths[i])
                    } else {
                        c.clone()
                    }
                })
                .collect()
        })
        .collect();
    let mut out = table::render(&chart.headers, &cells, 200);
    out.push('\n');
    for line in &chart.footer {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The chart as a Markdown table, the footer as paragraphs below it.
pub fn render_markdown(rows: &[ResultRow]) -> String {
    if rows.is_empty() {
        return NO_RESULTS.to_string();
    }
    let chart = chart(rows);
    let line = |cells: &[String]| {
        let escaped: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |\n", escaped.join(" | "))
    };
    let mut out = line(&chart.headers);
    let rule: Vec<String> = chart
        .numeric
        .iter()
        .map(|n| if *n { "---:" } else { "---" }.to_string())
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for r in &chart.rows {
        out.push_str(&line(r));
    }
    for f in &chart.footer {
        out.push('\n');
        out.push_str(f);
        out.push('\n');
    }
    out
}

/// The chart as an HTML table (numbers right-aligned), the footer as paragraphs below it.
pub fn render_html(rows: &[ResultRow]) -> String {
    use crate::table::html_escape;
    if rows.is_empty() {
        return format!("<p>{}</p>\n", NO_RESULTS.trim());
    }
    let chart = chart(rows);
    let cells = |tag: &str, cells: &[String]| -> String {
        cells
            .iter()
            .zip(&chart.numeric)
            .map(|(c, numeric)| {
                let class = if *numeric { " class=\"num\"" } else { "" };
                format!("<{tag}{class}>{}</{tag}>", html_escape(c))
            })
            .collect()
    };
    let mut out = format!(
        "<table class=\"results\">\n<thead><tr>{}</tr></thead>\n<tbody>\n",
        cells("th", &chart.headers)
    );
    for r in &chart.rows {
        out.push_str(&format!("<tr>{}</tr>\n", cells("td", r)));
    }
    out.push_str("</tbody>\n</table>\n");
    for f in &chart.footer {
        out.push_str(&format!("<p class=\"note\">{}</p>\n", html_escape(f)));
    }
    out
}

/// Long format, one number a row: `model,experiment,benchmark,prompting,metric,k,value,stderr`.
/// Numbers are written in the shortest form that reads back to the same f64; a missing stderr
/// is an empty field.
pub fn render_csv(rows: &[ResultRow]) -> String {
    let mut out = table::csv_line(
        &[
            "model",
            "experiment",
            "benchmark",
            "prompting",
            "metric",
            "k",
            "value",
            "stderr",
        ]
        .map(String::from),
    );
    for r in rows {
        out.push_str(&table::csv_line(&[
            r.model.clone(),
            r.experiment.clone(),
            r.benchmark.clone(),
            r.prompting.clone(),
            r.metric.clone(),
            r.k.to_string(),
            r.value.to_string(),
            r.stderr.map(|s| s.to_string()).unwrap_or_default(),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::store::SqlValue;
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::identity::ExperimentId;
    use crate::store::{AttemptOrigin, EvalRecord};

    fn id(n: u32) -> ExperimentId {
        ExperimentId::parse(&format!("{n:064x}")).unwrap()
    }

    fn origin() -> AttemptOrigin {
        AttemptOrigin {
            host: "test".into(),
            pid: 1,
            git_commit: None,
            job: None,
        }
    }

    async fn experiment(store: &Store, n: u32, kind: &str, name: &str, inputs: &[(&str, u32)]) {
        experiment_with(store, n, kind, name, json!({ "kind": kind }), inputs).await;
    }

    async fn experiment_with(
        store: &Store,
        n: u32,
        kind: &str,
        name: &str,
        spec: serde_json::Value,
        inputs: &[(&str, u32)],
    ) {
        let inputs: Vec<(String, ExperimentId)> = inputs
            .iter()
            .map(|(r, p)| (r.to_string(), id(*p)))
            .collect();
        store
            .ensure_experiment(&id(n), kind, name, &spec, 1, &inputs)
            .await
            .unwrap();
    }

    fn eval_spec(temperature: f64, top_p: f64) -> serde_json::Value {
        json!({ "kind": "eval", "temperature": temperature, "top_p": top_p })
    }

    /// What an eval writes for one prompting style: every metric on every benchmark.
    fn records(benchmarks: &[&str], prompting: &str, k: i64, pass1: f64) -> Vec<EvalRecord> {
        let mut out = Vec::new();
        for b in benchmarks {
            for (metric, value) in [
                ("pass@1".to_string(), pass1),
                (format!("pass@{k}"), pass1 + 0.2),
                (format!("cons@{k}"), pass1 + 0.1),
                ("format_rate".to_string(), 0.9),
                ("mean_length".to_string(), 50.0),
                ("lang_consistency".to_string(), 0.95),
                ("mixed_rate".to_string(), 0.05),
            ] {
                out.push(EvalRecord {
                    benchmark: b.to_string(),
                    prompting: prompting.into(),
                    metric,
                    k,
                    value,
                    stderr: Some(0.01),
                });
            }
        }
        out
    }

    fn pause() {
        // Attempt end times have millisecond resolution.
        std::thread::sleep(Duration::from_millis(5));
    }

    async fn start(store: &Store, n: u32) -> i64 {
        store.start_attempt(&id(n), &origin()).await.unwrap()
    }

    async fn finish(store: &Store, attempt: i64, records: &[EvalRecord]) {
        store.record_evaluations(attempt, records).await.unwrap();
        store.finish_attempt(attempt, "digest").await.unwrap();
        pause();
    }

    const BENCH: [&str; 2] = ["easy-en", "hard-en"];

    /// A base model with a paper-protocol eval and a later temperature-1 gate; an r1-zero recipe
    /// whose grpo stage has two completed evals (the one that ended last started first) and a
    /// failed one; r1 and distill recipes; an sft outside any recipe, evaluated.
    async fn fixture(store: &Store) {
        experiment(store, 1, "world", "world", &[]).await;
        experiment(store, 2, "pretrain", "base-pretrain", &[("world", 1)]).await;
        let paper = eval_spec(EVAL_TEMPERATURE, EVAL_TOP_P);
        let (m2, w1) = (("model", 2), ("world", 1));
        experiment_with(store, 3, "eval", "base/eval", paper.clone(), &[m2, w1]).await;
        experiment_with(
            store,
            4,
            "eval",
            "base/eval-t1",
            eval_spec(1.0, 1.0),
            &[m2, w1],
        )
        .await;
        let stages = [("pretrain", 2), ("eval", 3), ("eval-t1", 4)];
        experiment(store, 5, "recipe", "base", &stages).await;
        experiment(store, 6, "grpo", "r1-zero/grpo", &[m2, w1]).await;
        let m6 = ("model", 6);
        experiment_with(store, 7, "eval", "r1-zero/eval", paper.clone(), &[m6, w1]).await;
        let stages = [("base", 2), ("grpo", 6), ("eval", 7)];
        experiment(store, 8, "recipe", "r1-zero", &stages).await;
        let mut small = paper.clone();
        small["samples"] = json!(2);
        experiment_with(store, 9, "eval", "r1-zero/eval", small, &[m6, w1]).await;
        let mut other = paper.clone();
        other["seed"] = json!(5);
        experiment_with(store, 10, "eval", "r1-zero/eval", other, &[m6, w1]).await;
        experiment(store, 11, "sft", "custom-sft", &[m2]).await;
        experiment_with(
            store,
            12,
            "eval",
            "custom/eval",
            paper.clone(),
            &[("model", 11)],
        )
        .await;
        // The grpo stage is also a stage of an unrelated recipe: still one label, one row each.
        experiment(store, 13, "recipe", "other", &[("grpo", 6)]).await;
        experiment(store, 20, "sft", "r1/coldstart-sft", &[m2]).await;
        experiment(store, 21, "grpo", "r1/rl", &[("model", 20)]).await;
        experiment(store, 22, "sft", "r1/sft", &[("model", 21)]).await;
        experiment(store, 23, "grpo", "r1/final-rl", &[("model", 22)]).await;
        let stages = [
            ("base", 2),
            ("coldstart-sft", 20),
            ("rl", 21),
            ("sft", 22),
            ("final-rl", 23),
        ];
        experiment(store, 24, "recipe", "r1", &stages).await;
        experiment(store, 25, "sft", "distill/student-sft", &[]).await;
        experiment(store, 26, "grpo", "distill/student-rl", &[("model", 25)]).await;
        let stages = [("student-sft", 25), ("student-rl", 26)];
        experiment(store, 27, "recipe", "distill", &stages).await;
        experiment_with(store, 28, "eval", "r1/eval", paper, &[("model", 23)]).await;

        let a = start(store, 3).await;
        finish(store, a, &records(&BENCH, "cot", 4, 0.1)).await;
        let a = start(store, 4).await;
        finish(store, a, &records(&BENCH, "cot", 4, 0.3)).await;
        let later = start(store, 7).await;
        let earlier = start(store, 9).await;
        finish(store, earlier, &records(&BENCH, "compact", 2, 0.2)).await;
        finish(store, later, &records(&BENCH, "compact", 4, 0.4)).await;
        let failed = start(store, 10).await;
        store.fail_attempt(failed, "boom").await.unwrap();
        let a = start(store, 12).await;
        finish(store, a, &records(&BENCH[..1], "direct", 4, 0.15)).await;
        let a = start(store, 28).await;
        finish(store, a, &records(&BENCH, "cot", 4, 0.5)).await;
    }

    /// Runs `test` on the fixture in every store there is (SQLite, and PostgreSQL when a
    /// server is named): the views and reads must answer the same on both.
    fn with_store(test: impl AsyncFn(&Store)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        for backend in crate::store::testing::test_stores(dir.path()) {
            runtime.block_on(async {
                let store = Store::open(&backend.location).await.unwrap();
                fixture(&store).await;
                test(&store).await;
                store.close().await;
            });
        }
    }

    fn cells(result: &crate::store::QueryResult) -> Vec<Vec<String>> {
        result
            .rows
            .iter()
            .map(|r| r.iter().map(SqlValue::text).collect())
            .collect()
    }

    /// (model label, eval number) pairs of rows, in order, each once.
    fn evals_of(rows: &[ResultRow]) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = Vec::new();
        for r in rows {
            let pair = (
                r.model.clone(),
                u32::from_str_radix(&r.experiment, 16).unwrap(),
            );
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
        out
    }

    #[test]
    fn labels_come_from_kind_and_recipe_role() {
        with_store(async |store| {
            let result = store
                .query("SELECT experiment, model FROM model_labels ORDER BY experiment")
                .await
                .unwrap();
            let labels: BTreeMap<u32, String> = cells(&result)
                .into_iter()
                .map(|r| (u32::from_str_radix(&r[0], 16).unwrap(), r[1].clone()))
                .collect();
            for (n, label) in [
                (1, "world"),
                (2, "base"),
                (3, "base/eval"),
                (6, "r1-zero"),
                (8, "r1-zero"),
                (11, "custom-sft"),
                (20, "r1-coldstart"),
                (21, "r1-rl"),
                (22, "r1-sft"),
                (23, "r1"),
                (25, "student-distill"),
                (26, "student-rl"),
            ] {
                assert_eq!(labels[&n], label, "experiment {n}");
            }
        });
    }

    #[test]
    fn the_view_holds_every_completed_eval_once_per_number() {
        with_store(async |store| {
            let result = store
                .query(
                    "SELECT model, eval_name, model_name, model_kind, k, count(*) AS n \
                     FROM model_results GROUP BY experiment, model, eval_name, model_name, \
                     model_kind, k ORDER BY experiment",
                )
                .await
                .unwrap();
            assert_eq!(
                result.columns,
                ["model", "eval_name", "model_name", "model_kind", "k", "n"]
            );
            let expected = [
                ["base", "base/eval", "base-pretrain", "pretrain", "4", "14"],
                [
                    "base",
                    "base/eval-t1",
                    "base-pretrain",
                    "pretrain",
                    "4",
                    "14",
                ],
                ["r1-zero", "r1-zero/eval", "r1-zero/grpo", "grpo", "4", "14"],
                ["r1-zero", "r1-zero/eval", "r1-zero/grpo", "grpo", "2", "14"],
                ["custom-sft", "custom/eval", "custom-sft", "sft", "4", "7"],
                ["r1", "r1/eval", "r1/final-rl", "grpo", "4", "14"],
            ];
            assert_eq!(cells(&result), expected.map(|r| r.map(String::from)));
            let result = store
                .query(
                    "SELECT model, experiment, benchmark, prompting, metric, k, value, stderr \
                     FROM model_results WHERE metric = 'cons@2'",
                )
                .await
                .unwrap();
            assert_eq!(result.rows.len(), 2);
            assert_eq!(result.rows[0][6], SqlValue::Real(0.30000000000000004));
        });
    }

    #[test]
    fn default_selection_is_the_latest_paper_protocol_eval_of_each_model() {
        with_store(async |store| {
            let rows = load(store, &[]).await.unwrap();
            let expected = [("base", 3), ("r1-zero", 7), ("r1", 28), ("custom-sft", 12)];
            assert_eq!(evals_of(&rows), expected.map(|(m, n)| (m.to_string(), n)));
            assert_eq!(rows.len(), 14 * 3 + 7);
            // Within an eval: prompting, benchmark, then metrics in the paper's order.
            let first: Vec<&str> = rows[..7].iter().map(|r| r.metric.as_str()).collect();
            assert_eq!(
                first,
                [
                    "pass@1",
                    "pass@4",
                    "cons@4",
                    "format_rate",
                    "mean_length",
                    "lang_consistency",
                    "mixed_rate"
                ]
            );
            assert_eq!(rows[0].benchmark, "easy-en");
            assert_eq!(rows[7].benchmark, "hard-en");
            let text = render_text(&rows);
            assert!(
                text.starts_with("model       prompting  easy-en pass@1"),
                "{text}"
            );
        });
    }

    #[test]
    fn explicit_ids_select_evals_recipes_and_models() {
        with_store(async |store| {
            let ids =
                |list: &[u32]| -> Vec<String> { list.iter().map(|n| id(*n).to_string()).collect() };
            let pick = async |list: &[u32]| evals_of(&load(store, &ids(list)).await.unwrap());
            let pairs = |list: &[(&str, u32)]| -> Vec<(String, u32)> {
                list.iter().map(|(m, n)| (m.to_string(), *n)).collect()
            };
            assert_eq!(pick(&[9]).await, pairs(&[("r1-zero", 9)]));
            // A recipe: its eval stages, in the order they ended.
            assert_eq!(pick(&[5]).await, pairs(&[("base", 3), ("base", 4)]));
            assert_eq!(pick(&[8]).await, pairs(&[("r1-zero", 7)]));
            // A model: all its completed evals.
            assert_eq!(pick(&[6]).await, pairs(&[("r1-zero", 9), ("r1-zero", 7)]));
            // Several ids, rows still ordered by model.
            assert_eq!(
                pick(&[28, 9, 3]).await,
                pairs(&[("base", 3), ("r1-zero", 9), ("r1", 28)])
            );
            // A failed eval and an experiment never evaluated show nothing.
            assert!(pick(&[10]).await.is_empty());
            assert!(pick(&[26]).await.is_empty());
            // Prefixes resolve like everywhere else.
            let ambiguous = load(store, &["0000".to_string()]).await;
            assert!(matches!(ambiguous, Err(StoreError::AmbiguousId { .. })));
            let unknown = load(store, &["ffff".to_string()]).await;
            assert!(matches!(unknown, Err(StoreError::UnknownId { .. })));
        });
    }

    fn row(model: &str, exp: char, bench: &str, prompting: &str, metric: &str) -> ResultRow {
        ResultRow {
            model: model.into(),
            experiment: exp.to_string().repeat(64),
            benchmark: bench.into(),
            prompting: prompting.into(),
            metric: metric.into(),
            k: 4,
            value: 0.0,
            stderr: None,
        }
    }

    /// r1-zero (listed first) and base, two benchmarks, k = 4.
    fn small_case() -> Vec<ResultRow> {
        let mut rows = Vec::new();
        for (model, exp, prompting, numbers) in [
            (
                "r1-zero",
                'b',
                "compact",
                [
                    (0.75, 0.04, 0.8, 120.0, 3.0, 0.3, 0.05),
                    (0.5, 0.05, 0.55, 150.0, 4.0, 0.1, 0.03),
                ],
            ),
            (
                "base",
                'a',
                "cot",
                [
                    (0.5, 0.05, 0.6, 40.0, 2.0, 0.1, 0.03),
                    (0.25, 0.04, 0.3, 60.0, 2.0, 0.2, 0.04),
                ],
            ),
        ] {
            for (bench, (pass1, se, cons, len, len_se, mixed, mixed_se)) in
                BENCH.iter().zip(numbers)
            {
                for (metric, value, stderr) in [
                    ("pass@1", pass1, Some(se)),
                    ("cons@4", cons, Some(0.05)),
                    ("mean_length", len, Some(len_se)),
                    ("mixed_rate", mixed, Some(mixed_se)),
                ] {
                    rows.push(ResultRow {
                        value,
                        stderr,
                        ..row(model, exp, bench, prompting, metric)
                    });
                }
            }
        }
        rows
    }

    #[test]
    fn text_rendering() {
        let expected = "\
model    prompting  easy-en pass@1  easy-en cons@4  hard-en pass@1  hard-en cons@4  length       mixed
-------  ---------  --------------  --------------  --------------  --------------  -----------  ----------
base     cot            50.0 ± 5.0            60.0      25.0 ± 4.0            30.0   50.0 ± 1.4  15.0 ± 2.5
r1-zero  compact        75.0 ± 4.0            80.0      50.0 ± 5.0            55.0  135.0 ± 2.5  20.0 ± 2.9

pass@1 and cons@4 in %, over k = 4 samples per problem; ± is the standard error across problems.
length (response tokens) and mixed (mixed-language responses, %) are averaged over each row's benchmarks.
";
        assert_eq!(render_text(&small_case()), expected);
        assert_eq!(render_text(&[]), "no evaluation results\n");
    }

    #[test]
    fn markdown_rendering() {
        let expected = "\
| model | prompting | easy-en pass@1 | easy-en cons@4 | hard-en pass@1 | hard-en cons@4 | length | mixed |
|---|---|---:|---:|---:|---:|---:|---:|
| base | cot | 50.0 ± 5.0 | 60.0 | 25.0 ± 4.0 | 30.0 | 50.0 ± 1.4 | 15.0 ± 2.5 |
| r1-zero | compact | 75.0 ± 4.0 | 80.0 | 50.0 ± 5.0 | 55.0 | 135.0 ± 2.5 | 20.0 ± 2.9 |

pass@1 and cons@4 in %, over k = 4 samples per problem; ± is the standard error across problems.

length (response tokens) and mixed (mixed-language responses, %) are averaged over each row's benchmarks.
";
        assert_eq!(render_markdown(&small_case()), expected);
    }

    #[test]
    fn several_evals_of_a_model_and_mixed_k_are_told_apart() {
        let mut rows = vec![
            ResultRow {
                value: 0.5,
                ..row("base", 'a', "easy-en", "cot", "pass@1")
            },
            ResultRow {
                k: 8,
                value: 0.25,
                ..row("base", 'c', "easy-en", "cot", "pass@1")
            },
            ResultRow {
                value: 0.1,
                ..row("my-model", 'd', "easy-en", "cot", "pass@1")
            },
        ];
        rows.push(ResultRow {
            value: 0.75,
            ..row("r1", 'e', "easy-en", "cot", "cons@4")
        });
        let text = render_text(&rows);
        let expected = "\
model                prompting  k  easy-en pass@1  easy-en cons@k  length  mixed
-------------------  ---------  -  --------------  --------------  ------  -----
base [aaaaaaaaaaaa]  cot        4            50.0               -       -      -
base [cccccccccccc]  cot        8            25.0               -       -      -
r1                   cot        4               -            75.0       -      -
my-model             cot        4            10.0               -       -      -
";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("(column k)"));
        assert!(text.contains("[id]: the evaluation, where a model has several."));
    }

    #[test]
    fn csv_is_long_format_with_full_precision() {
        let rows = [
            ResultRow {
                value: 0.1 + 0.2,
                stderr: Some(1.0 / 3.0),
                ..row("r1-zero", 'b', "hard-en", "r1-zero", "pass@1")
            },
            ResultRow {
                value: 123.0,
                ..row("my, model", 'b', "hard-en", "r1-zero", "mean_length")
            },
        ];
        let b = "b".repeat(64);
        let expected = format!(
            "model,experiment,benchmark,prompting,metric,k,value,stderr\n\
             r1-zero,{b},hard-en,r1-zero,pass@1,4,0.30000000000000004,0.3333333333333333\n\
             \"my, model\",{b},hard-en,r1-zero,mean_length,4,123,\n"
        );
        assert_eq!(render_csv(&rows), expected);
        assert_eq!(
            render_csv(&[]),
            "model,experiment,benchmark,prompting,metric,k,value,stderr\n"
        );
    }
}
