//! The paper's findings as checks with verdicts, and the gate a base model must pass before RL.
//!
//! Every check reads standing evaluation numbers (the `model_results` view) and training curves
//! from the store, compares them with the goal the toy-scale reproduction set for itself, and
//! says `holds`, `short` (with the numbers) or `missing` (no evaluation to judge by). The
//! comparison is on the point estimate; the standard error is printed beside it so a reader can
//! see how far from the goal the verdict sits.
//!
//! [`Evidence::load`] does the SQL; [`gate`] and [`findings`] are pure functions of what it
//! loaded, tested without a database.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::evaluation::{EVAL_TEMPERATURE, EVAL_TOP_P};
use crate::store::{Store, StoreError};
use crate::table;

/// One completed evaluation: who it measured, at which sampling settings, and its numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub experiment: String,
    /// The label of the evaluated model (`base`, `r1-zero`, ...).
    pub model: String,
    pub temperature: f64,
    pub top_p: f64,
    /// When its standing attempt ended (ISO 8601); the latest evaluation of a model stands.
    pub ended_at: String,
    /// A stage of the recipe judged (at any depth), rather than another evaluation of a model
    /// the recipe used; the recipe's own evaluations stand first.
    pub in_recipe: bool,
    /// (prompting, benchmark, metric) -> (value, stderr).
    pub numbers: BTreeMap<(String, String, String), (f64, Option<f64>)>,
}

impl Evaluation {
    /// `metric` under `prompting`, averaged over the benchmarks whose name starts with
    /// `benchmarks`.
    fn mean(&self, prompting: &str, benchmarks: &str, metric: &str) -> Option<Estimate> {
        mean_of(
            self.numbers
                .iter()
                .filter(|((p, b, m), _)| p == prompting && b.starts_with(benchmarks) && m == metric)
                .map(|(_, (value, stderr))| Estimate {
                    value: *value,
                    stderr: stderr.unwrap_or(0.0),
                    experiments: vec![self.experiment.clone()],
                })
                .collect(),
        )
    }

    fn at_paper_settings(&self) -> bool {
        self.temperature == EVAL_TEMPERATURE && self.top_p == EVAL_TOP_P
    }
}

/// A training curve of one RL run.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub experiment: String,
    pub model: String,
    /// (step, value), by step.
    pub points: Vec<(i64, f64)>,
}

/// Everything the checks read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    pub evaluations: Vec<Evaluation>,
    /// `completions/mean_length` of every completed GRPO run.
    pub length_curves: Vec<Curve>,
}

/// Which samplings an evaluation must have used.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Settings {
    /// Temperature 0.6, top-p 0.95.
    Paper,
    /// Temperature 1, as RL samples.
    Temperature1,
}

/// A number with its standard error and the evaluations it came from.
#[derive(Debug, Clone, PartialEq)]
struct Estimate {
    value: f64,
    stderr: f64,
    experiments: Vec<String>,
}

impl Estimate {
    fn minus(&self, other: &Estimate) -> Estimate {
        Estimate {
            value: self.value - other.value,
            stderr: self.stderr.hypot(other.stderr),
            experiments: join_ids(&self.experiments, &other.experiments),
        }
    }

    /// In points (percent), with its standard error: `71.3 ± 2.1`.
    fn points(&self) -> String {
        format!("{:.1} ± {:.1}", 100.0 * self.value, 100.0 * self.stderr)
    }
}

fn join_ids(a: &[String], b: &[String]) -> Vec<String> {
    let mut ids = a.to_vec();
    for id in b {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// The mean over benchmarks of independent estimates (their errors add in quadrature).
fn mean_of(estimates: Vec<Estimate>) -> Option<Estimate> {
    if estimates.is_empty() {
        return None;
    }
    let n = estimates.len() as f64;
    let value = estimates.iter().map(|e| e.value).sum::<f64>() / n;
    let stderr = estimates
        .iter()
        .map(|e| e.stderr.powi(2))
        .sum::<f64>()
        .sqrt()
        / n;
    let experiments = estimates
        .iter()
        .fold(Vec::new(), |ids, e| join_ids(&ids, &e.experiments));
    Some(Estimate {
        value,
        stderr,
        experiments,
    })
}

impl Evidence {
    /// The latest evaluation of `model` at `settings` that measured `metric` under `prompting`,
    /// the recipe's own first, then the one over the most benchmarks.
    fn evaluation(
        &self,
        model: &str,
        prompting: &str,
        metric: &str,
        settings: Settings,
    ) -> Option<&Evaluation> {
        self.evaluations
            .iter()
            .filter(|e| e.model == model)
            .filter(|e| match settings {
                Settings::Paper => e.at_paper_settings(),
                Settings::Temperature1 => e.temperature == 1.0,
            })
            .filter(|e| {
                e.numbers
                    .keys()
                    .any(|(p, _, m)| p == prompting && m == metric)
            })
            // The recipe's own first, then the broadest (most benchmarks), then the latest.
            .max_by_key(|e| {
                let benchmarks = e
                    .numbers
                    .keys()
                    .filter(|(p, _, m)| p == prompting && m == metric)
                    .count();
                (e.in_recipe, benchmarks, &e.ended_at, &e.experiment)
            })
    }

    /// `metric` of `model` under `prompting`, averaged over the benchmarks whose name starts with
    /// `benchmarks` (`hard` → hard-en and hard-zh; `` → all).
    fn estimate(
        &self,
        model: &str,
        prompting: &str,
        benchmarks: &str,
        metric: &str,
        settings: Settings,
    ) -> Option<Estimate> {
        self.evaluation(model, prompting, metric, settings)?
            .mean(prompting, benchmarks, metric)
    }

    /// cons@k of an evaluation, whatever its k, with that k.
    fn cons(
        &self,
        model: &str,
        prompting: &str,
        benchmarks: &str,
    ) -> Option<(Estimate, Estimate, String)> {
        let eval = self.evaluation(model, prompting, "pass@1", Settings::Paper)?;
        let cons_metric = eval
            .numbers
            .keys()
            .find(|(p, b, m)| p == prompting && b.starts_with(benchmarks) && m.starts_with("cons@"))
            .map(|(_, _, m)| m.clone())?;
        Some((
            eval.mean(prompting, benchmarks, &cons_metric)?,
            eval.mean(prompting, benchmarks, "pass@1")?,
            cons_metric,
        ))
    }

    /// The mean-length curve of the latest completed GRPO run labelled `model`.
    fn length_curve(&self, model: &str) -> Option<&Curve> {
        self.length_curves
            .iter()
            .rev()
            .find(|c| c.model == model && !c.points.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    Short,
    /// No evaluation (or curve) to judge by.
    Missing,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Short => "short",
            Verdict::Missing => "missing",
        }
    }
}

/// One finding or gate condition, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub goal: &'static str,
    /// What was measured, in words and numbers (empty when missing).
    pub measured: String,
    pub verdict: Verdict,
    /// The experiments the numbers come from (rerun any of them by id).
    pub experiments: Vec<String>,
}

fn judged(
    name: &'static str,
    goal: &'static str,
    measured: Option<(String, bool, Vec<String>)>,
) -> Check {
    match measured {
        Some((measured, holds, experiments)) => Check {
            name,
            goal,
            measured,
            verdict: if holds {
                Verdict::Holds
            } else {
                Verdict::Short
            },
            experiments,
        },
        None => Check {
            name,
            goal,
            measured: String::new(),
            verdict: Verdict::Missing,
            experiments: Vec::new(),
        },
    }
}

/// What a report of `evidence` judges, section by section: the RL gate of each base model (the
/// R1 base and the distillation student's base), then the findings.
pub fn sections(evidence: &Evidence) -> Vec<(String, Vec<Check>)> {
    let mut out: Vec<(String, Vec<Check>)> = ["base", "student-base"]
        .into_iter()
        .map(|model| (format!("RL gate of `{model}`"), gate(evidence, model)))
        .collect();
    out.push(("Findings".to_string(), findings(evidence)));
    out
}

/// [`sections`] with only the checks that had something to judge by, and only the sections
/// left with any: what the text, Markdown and HTML reports show.
pub fn judged_sections(evidence: &Evidence) -> Vec<(String, Vec<Check>)> {
    sections(evidence)
        .into_iter()
        .map(|(title, checks)| {
            let judged: Vec<Check> = checks
                .into_iter()
                .filter(|c| c.verdict != Verdict::Missing)
                .collect();
            (title, judged)
        })
        .filter(|(_, checks)| !checks.is_empty())
        .collect()
}

/// The RL gate of a base model (issue goals): can RL find signal from it?
pub fn gate(evidence: &Evidence, model: &str) -> Vec<Check> {
    let cot = |benchmarks| evidence.estimate(model, "cot", benchmarks, "pass@1", Settings::Paper);
    let easy = cot("easy").map(|e| {
        let holds = e.value >= 0.70;
        (format!("{} on easy", e.points()), holds, e.experiments)
    });
    let hard = cot("hard").map(|e| {
        let holds = (0.20..=0.50).contains(&e.value);
        (format!("{} on hard", e.points()), holds, e.experiments)
    });
    // RL samples the compact template at temperature 1: judge the base where RL will start.
    let explore = evidence
        .estimate(model, "compact", "hard", "pass@8", Settings::Temperature1)
        .map(|e| {
            let holds = e.value >= 0.50;
            (format!("{} on hard", e.points()), holds, e.experiments)
        });
    let format = evidence
        .estimate(model, "compact", "", "format_rate", Settings::Temperature1)
        .or_else(|| evidence.estimate(model, "compact", "", "format_rate", Settings::Paper))
        .map(|e| {
            let holds = e.value >= 0.90;
            (
                format!("{} over all benchmarks", e.points()),
                holds,
                e.experiments,
            )
        });
    vec![
        judged("cot pass@1 easy", "≥ 70 % (CoT, T 0.6)", easy),
        judged("cot pass@1 hard", "20–50 % (CoT, T 0.6)", hard),
        judged("pass@8 hard at T 1", "≥ 50 % (compact template)", explore),
        judged("format under template", "≥ 90 % (compact template)", format),
    ]
}

/// The paper's findings at toy scale, each against its goal.
pub fn findings(evidence: &Evidence) -> Vec<Check> {
    let pass1 = |model, prompting, benchmarks| {
        evidence.estimate(model, prompting, benchmarks, "pass@1", Settings::Paper)
    };

    let rl_raises = gain_of(
        pass1("r1-zero", "compact", "hard"),
        pass1("base", "compact", "hard"),
        0.15,
        |rl, base| format!("hard pass@1 {} → {}", base.points(), rl.points()),
    );

    let longer = evidence.length_curve("r1-zero").map(|curve| {
        let (first, last) = ends(&curve.points);
        let ratio = last / first;
        (
            format!(
                "mean completion length {first:.1} → {last:.1} tokens (×{ratio:.2}) over {} steps",
                curve.points.last().map_or(0, |p| p.0)
            ),
            ratio >= 1.5,
            vec![curve.experiment.clone()],
        )
    });

    // Mixing is a habit of how the policy samples: judged at RL's temperature (T 1) where both
    // models were evaluated there, else at the paper's T 0.6; both are shown when both exist.
    let mixed = |settings| {
        Some((
            evidence.estimate("r1-zero", "compact", "", "mixed_rate", settings)?,
            evidence.estimate("r1", "compact", "", "mixed_rate", settings)?,
        ))
    };
    let at_paper = mixed(Settings::Paper);
    let mixed_at = match mixed(Settings::Temperature1) {
        Some(at_one) => Some((at_one, "at T 1")),
        None => at_paper.clone().map(|m| (m, "at T 0.6")),
    };
    let mixing = match (
        mixed_at,
        pass1("r1-zero", "compact", ""),
        pass1("r1", "compact", ""),
    ) {
        (Some(((zero_mixed, r1_mixed), at)), Some(zero_pass), Some(r1_pass)) => {
            let holds = zero_mixed.value >= 0.05
                && r1_mixed.value < 0.01
                && r1_pass.value >= zero_pass.value - 0.03;
            let also = match (&at_paper, at) {
                (Some((zero, r1)), "at T 1") => {
                    format!(" (at T 0.6 {} → {})", zero.points(), r1.points())
                }
                _ => String::new(),
            };
            let experiments = join_ids(&zero_mixed.experiments, &r1_mixed.experiments);
            Some((
                format!(
                    "mixed {at} {} (R1-Zero) → {} (R1){also}; pass@1 {} → {}",
                    zero_mixed.points(),
                    r1_mixed.points(),
                    zero_pass.points(),
                    r1_pass.points()
                ),
                holds,
                experiments,
            ))
        }
        _ => None,
    };

    let vote = evidence
        .cons("r1-zero", "compact", "hard")
        .map(|(cons, pass, metric)| {
            let gain = cons.minus(&pass);
            (
                format!(
                    "hard {metric} {} vs pass@1 {} ({:+.1} points)",
                    cons.points(),
                    pass.points(),
                    100.0 * gain.value
                ),
                gain.value >= 0.05,
                gain.experiments,
            )
        });

    let distill = gain_of(
        pass1("student-distill", "compact", ""),
        pass1("student-rl", "compact", ""),
        0.05,
        |distilled, rl| {
            format!(
                "pass@1 {} (distilled) vs {} (RL)",
                distilled.points(),
                rl.points()
            )
        },
    );

    let cot = gain_of(
        pass1("base", "cot", ""),
        pass1("base", "direct", ""),
        0.10,
        |cot, direct| {
            format!(
                "base pass@1 {} (CoT) vs {} (direct)",
                cot.points(),
                direct.points()
            )
        },
    );

    vec![
        judged(
            "pure RL raises accuracy",
            "R1-Zero hard pass@1 ≥ base + 15 points",
            rl_raises,
        ),
        judged(
            "thinking gets longer under RL",
            "mean completion length ×1.5 over the run",
            longer,
        ),
        judged(
            "language mixing and its cure",
            "R1-Zero mixed ≥ 5 % (at T 1 where evaluated); R1 < 1 % with pass@1 ≥ R1-Zero − 3 points",
            mixing,
        ),
        judged(
            "majority vote helps",
            "R1-Zero hard cons@k ≥ pass@1 + 5 points",
            vote,
        ),
        judged(
            "distillation beats RL on a small student",
            "distilled pass@1 ≥ RL pass@1 + 5 points",
            distill,
        ),
        judged(
            "CoT beats standard prompting",
            "base CoT ≥ direct + 10 points (all benchmarks)",
            cot,
        ),
    ]
}

/// Whether `better` exceeds `worse` by at least `goal`: the two described, then the gain in
/// points with its standard error.
fn gain_of(
    better: Option<Estimate>,
    worse: Option<Estimate>,
    goal: f64,
    describe: impl Fn(&Estimate, &Estimate) -> String,
) -> Option<(String, bool, Vec<String>)> {
    let (better, worse) = (better?, worse?);
    let gain = better.minus(&worse);
    Some((
        format!(
            "{} ({:+.1} ± {:.1} points)",
            describe(&better, &worse),
            100.0 * gain.value,
            100.0 * gain.stderr
        ),
        gain.value >= goal,
        gain.experiments,
    ))
}

/// Means of the first and the last fifth of a curve (at least one point each).
fn ends(points: &[(i64, f64)]) -> (f64, f64) {
    let window = (points.len() / 5).max(1);
    let mean = |slice: &[(i64, f64)]| slice.iter().map(|p| p.1).sum::<f64>() / slice.len() as f64;
    (
        mean(&points[..window]),
        mean(&points[points.len() - window..]),
    )
}

/// Aligned text: one line per check.
pub fn render_text(checks: &[Check]) -> String {
    let headers = ["check", "verdict", "measured", "goal", "experiments"].map(String::from);
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.name.to_string(),
                c.verdict.as_str().to_string(),
                c.measured.clone(),
                c.goal.to_string(),
                c.experiments
                    .iter()
                    .map(|id| id.chars().take(8).collect::<String>())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    table::render(&headers, &rows, 100)
}

/// A Markdown table with full experiment ids.
pub fn render_markdown(checks: &[Check]) -> String {
    let mut out = String::from("| finding | goal | measured | verdict | experiments |\n");
    out.push_str("|---|---|---|---|---|\n");
    for c in checks {
        let ids = c
            .experiments
            .iter()
            .map(|id| format!("`{}`", &id[..id.len().min(12)]))
            .collect::<Vec<_>>()
            .join(" ");
        let measured = if c.measured.is_empty() {
            "—"
        } else {
            &c.measured
        };
        writeln!(
            out,
            "| {} | {} | {} | **{}** | {} |",
            c.name,
            c.goal,
            measured,
            c.verdict.as_str(),
            ids
        )
        .expect("writing to a String");
    }
    out
}

/// CSV: check, verdict, measured, goal, experiments (space-separated full ids).
pub fn render_csv(checks: &[Check]) -> String {
    let mut out =
        table::csv_line(&["check", "verdict", "measured", "goal", "experiments"].map(String::from));
    for c in checks {
        out.push_str(&table::csv_line(&[
            c.name.to_string(),
            c.verdict.as_str().to_string(),
            c.measured.clone(),
            c.goal.to_string(),
            c.experiments.join(" "),
        ]));
    }
    out
}

impl Evidence {
    /// The models × benchmarks rows shown with these findings: for a recipe (`scoped`), its own
    /// evaluations (at any depth), and another evaluation of a model it used only where the
    /// recipe has none of that model (a base model evaluated by another recipe), so evaluations
    /// left from earlier recipes of the same model do not crowd its table; for everything, the
    /// latest evaluation of each model.
    pub async fn table_rows(
        &self,
        store: &Store,
        scoped: bool,
    ) -> Result<Vec<crate::results_table::ResultRow>, StoreError> {
        if !scoped {
            return crate::results_table::load(store, &[]).await;
        }
        if self.evaluations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = self
            .evaluations
            .iter()
            .filter(|e| {
                e.in_recipe
                    || !self
                        .evaluations
                        .iter()
                        .any(|other| other.in_recipe && other.model == e.model)
            })
            .map(|e| e.experiment.clone())
            .collect();
        crate::results_table::load(store, &ids).await
    }

    /// Every completed evaluation and GRPO length curve in the store; with `scope`, only those
    /// of that recipe's stages (at any depth) and inputs, and the evaluations of any model among
    /// them.
    pub async fn load(store: &Store, scope: Option<&str>) -> Result<Evidence, StoreError> {
        let mut evaluations: BTreeMap<String, Evaluation> = BTreeMap::new();
        for r in store.evaluation_numbers(scope).await? {
            let eval = evaluations.entry(r.experiment.clone()).or_insert_with(|| {
                let spec: serde_json::Value = serde_json::from_str(&r.spec).unwrap_or_default();
                Evaluation {
                    experiment: r.experiment.clone(),
                    model: r.model.clone(),
                    temperature: spec["temperature"].as_f64().unwrap_or(f64::NAN),
                    top_p: spec["top_p"].as_f64().unwrap_or(f64::NAN),
                    ended_at: r.ended_at.clone(),
                    in_recipe: r.in_recipe,
                    numbers: BTreeMap::new(),
                }
            });
            eval.numbers
                .insert((r.prompting, r.benchmark, r.metric), (r.value, r.stderr));
        }
        let mut length_curves: Vec<Curve> = Vec::new();
        for point in store.length_points(scope).await? {
            if length_curves
                .last()
                .is_none_or(|c| c.experiment != point.experiment)
            {
                length_curves.push(Curve {
                    experiment: point.experiment.clone(),
                    model: point.model.clone(),
                    points: Vec::new(),
                });
            }
            let curve = length_curves.last_mut().expect("just pushed");
            curve.points.push((point.step, point.value));
        }
        Ok(Evidence {
            evaluations: evaluations.into_values().collect(),
            length_curves,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(
        id: &str,
        model: &str,
        temperature: f64,
        numbers: &[(&str, &str, &str, f64)],
    ) -> Evaluation {
        Evaluation {
            experiment: id.into(),
            model: model.into(),
            temperature,
            top_p: if temperature == 1.0 { 1.0 } else { EVAL_TOP_P },
            ended_at: format!("2026-01-01T00:00:0{}", id.len() % 10),
            in_recipe: true,
            numbers: numbers
                .iter()
                .map(|(p, b, m, v)| {
                    (
                        (p.to_string(), b.to_string(), m.to_string()),
                        (*v, Some(0.02)),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_gate_averages_languages_and_reads_temperature_one_for_exploration() {
        let evidence = Evidence {
            evaluations: vec![
                eval(
                    "paper",
                    "base",
                    0.6,
                    &[
                        ("cot", "easy-en", "pass@1", 0.80),
                        ("cot", "easy-zh", "pass@1", 0.70),
                        ("cot", "hard-en", "pass@1", 0.30),
                        ("cot", "hard-zh", "pass@1", 0.10),
                        ("compact", "hard-en", "pass@8", 0.10),
                    ],
                ),
                eval(
                    "t1",
                    "base",
                    1.0,
                    &[
                        ("compact", "hard-en", "pass@8", 0.60),
                        ("compact", "hard-zh", "pass@8", 0.50),
                        ("compact", "easy-en", "format_rate", 0.85),
                        ("compact", "hard-en", "format_rate", 0.90),
                    ],
                ),
            ],
            length_curves: vec![],
        };
        let checks = gate(&evidence, "base");
        let verdicts: Vec<Verdict> = checks.iter().map(|c| c.verdict).collect();
        // easy 75 holds; hard 20 is at the edge and holds; pass@8 55 holds; format 87.5 is short.
        assert_eq!(
            verdicts,
            [
                Verdict::Holds,
                Verdict::Holds,
                Verdict::Holds,
                Verdict::Short
            ]
        );
        assert!(
            checks[0].measured.starts_with("75.0 ± 1.4"),
            "{}",
            checks[0].measured
        );
        assert_eq!(checks[2].experiments, ["t1"]);
        assert!(gate(&evidence, "student-base")
            .iter()
            .all(|c| c.verdict == Verdict::Missing));
    }

    #[test]
    fn findings_compare_the_right_models_and_the_latest_evaluation_stands() {
        let mut evidence = Evidence {
            evaluations: vec![
                eval("b", "base", 0.6, &[("compact", "hard-en", "pass@1", 0.20)]),
                eval(
                    "z",
                    "r1-zero",
                    0.6,
                    &[
                        ("compact", "hard-en", "pass@1", 0.30),
                        ("compact", "hard-en", "cons@16", 0.40),
                    ],
                ),
            ],
            length_curves: vec![Curve {
                experiment: "g".into(),
                model: "r1-zero".into(),
                points: (0..10).map(|s| (s, 40.0 + 5.0 * s as f64)).collect(),
            }],
        };
        let checks = findings(&evidence);
        assert_eq!(checks[0].verdict, Verdict::Short, "{}", checks[0].measured);
        assert!(
            checks[0].measured.contains("+10.0"),
            "{}",
            checks[0].measured
        );
        // Length: first two points mean 42.5, last two 82.5.
        assert_eq!(checks[1].verdict, Verdict::Holds, "{}", checks[1].measured);
        assert_eq!(checks[3].verdict, Verdict::Holds, "{}", checks[3].measured);
        assert!(checks[3].measured.contains("cons@16"));
        assert_eq!(checks[2].verdict, Verdict::Missing);
        // A later evaluation of the same model replaces the earlier one.
        evidence.evaluations.push(eval(
            "z-later",
            "r1-zero",
            0.6,
            &[("compact", "hard-en", "pass@1", 0.40)],
        ));
        assert_eq!(findings(&evidence)[0].verdict, Verdict::Holds);
        // An evaluation from outside the recipe judged stands only where the recipe has none.
        let mut probe = eval(
            "z-probe-later",
            "r1-zero",
            0.6,
            &[("compact", "hard-en", "pass@1", 0.10)],
        );
        probe.in_recipe = false;
        evidence.evaluations.push(probe);
        assert_eq!(findings(&evidence)[0].verdict, Verdict::Holds);
        let markdown = render_markdown(&findings(&evidence));
        assert!(
            markdown.contains("| pure RL raises accuracy |"),
            "{markdown}"
        );
        assert!(render_csv(&findings(&evidence)).lines().count() == 7);
    }
}
