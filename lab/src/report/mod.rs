//! `lab report`: the curves, findings and traces of chosen runs as one self-contained HTML page
//! (no network when viewed: styles inline, figures as inline SVG), with every figure also
//! written as an SVG and a PNG file.
//!
//! [`gather`] reads what the report shows from the store; [`write`] renders it. Every figure and
//! table names the experiments its numbers came from, so any of them can be rerun by id.

pub mod figure;
mod html;

use std::path::{Path, PathBuf};

use crate::findings::{self, Check, Evidence};
use crate::identity::ExperimentId;
use crate::results_table::ResultRow;
use crate::store::{StandingRun, Store, StoreError};
use figure::{Curve, Figure, FigureError};

/// A metric drawn as one figure across the runs that logged it.
struct MetricFigure {
    /// File-name stem.
    name: &'static str,
    title: &'static str,
    y_label: &'static str,
    metric: &'static str,
    /// The kinds of run it is drawn for (the GRPO `loss` is not a language-model loss).
    kinds: &'static [&'static str],
}

const RL: &[&str] = &["grpo"];

/// The curves of an R1 study, in the order the page shows them.
const FIGURES: [MetricFigure; 9] = [
    MetricFigure {
        name: "reward",
        title: "Reward",
        y_label: "mean reward",
        metric: "reward",
        kinds: RL,
    },
    MetricFigure {
        name: "accuracy",
        title: "Accuracy reward (training prompts)",
        y_label: "share correct",
        metric: "rewards/accuracy/mean",
        kinds: RL,
    },
    MetricFigure {
        name: "completion-length",
        title: "Completion length over RL (R1 Figure 3)",
        y_label: "mean tokens per completion",
        metric: "completions/mean_length",
        kinds: RL,
    },
    MetricFigure {
        name: "format",
        title: "Format reward",
        y_label: "share well-formed",
        metric: "rewards/format/mean",
        kinds: RL,
    },
    MetricFigure {
        name: "language-mixing",
        title: "Language mixing",
        y_label: "share of mixed completions",
        metric: "lang/mixed_rate",
        kinds: RL,
    },
    MetricFigure {
        name: "kl",
        title: "KL to the reference model",
        y_label: "KL",
        metric: "kl",
        kinds: RL,
    },
    MetricFigure {
        name: "clip-ratio",
        title: "Clip ratio",
        y_label: "share of tokens clipped",
        metric: "clip_ratio/region_mean",
        kinds: RL,
    },
    MetricFigure {
        name: "entropy",
        title: "Policy entropy",
        y_label: "nats per token",
        metric: "entropy",
        kinds: RL,
    },
    MetricFigure {
        name: "loss",
        title: "Training loss (pretraining and SFT)",
        y_label: "cross-entropy",
        metric: "loss",
        kinds: &["pretrain", "sft"],
    },
];

/// How many traces the page shows, at most, and at most how many of one run.
const TRACES: usize = 12;
const TRACES_PER_RUN: usize = 2;

/// The findings of one recipe (or of everything in the store).
#[derive(Debug, Clone)]
pub struct FindingsSection {
    pub title: String,
    /// `(section title, checks)`: the RL gates of base models, then the findings; checks with
    /// nothing to judge by are left out.
    pub checks: Vec<(String, Vec<Check>)>,
    pub table: Vec<ResultRow>,
}

/// A sampled completion shown on the page.
#[derive(Debug, Clone)]
pub struct TraceExample {
    pub experiment: String,
    pub run_name: String,
    pub step: i64,
    pub prompt: String,
    pub completion: String,
    /// The language the completion should be in, when the trace says.
    pub target: Option<crate::world::Lang>,
    pub rewards: crate::trace::TraceRewards,
    pub consistency: Option<f64>,
}

/// Everything a report shows.
#[derive(Debug, Clone)]
pub struct Report {
    pub title: String,
    pub runs: Vec<StandingRun>,
    pub figures: Vec<Figure>,
    pub findings: Vec<FindingsSection>,
    pub traces: Vec<TraceExample>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Figure(#[from] FigureError),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("nothing to report: {0}")]
    Empty(String),
}

/// Reads what a report of `ids` shows: the runs with a standing result among them (a recipe
/// stands for all its stages), every curve of [`FIGURES`] and the held-out accuracy logged
/// during RL, the findings of each recipe among `ids` (of everything, when `ids` is empty), and
/// a few traces of RL and evaluation runs, the most mixed first. Fails when no run is done.
pub async fn gather(store: &Store, ids: &[ExperimentId]) -> Result<Report, ReportError> {
    let runs = store.standing_runs(ids).await?;
    if runs.is_empty() {
        return Err(ReportError::Empty(if ids.is_empty() {
            "the store has no completed run".to_string()
        } else {
            "none of the given experiments has completed".to_string()
        }));
    }
    let mut figures: Vec<Figure> = FIGURES
        .iter()
        .map(|f| Figure {
            name: f.name.to_string(),
            title: f.title.to_string(),
            y_label: f.y_label.to_string(),
            curves: Vec::new(),
        })
        .collect();
    let mut held_out: Vec<Figure> = Vec::new();
    for run in &runs {
        if run.kind == "recipe" {
            continue;
        }
        let names = store.metric_names(run.attempt).await?;
        let label = format!("{} {}", run.name, &run.experiment[..8]);
        for (spec, figure) in FIGURES.iter().zip(figures.iter_mut()) {
            if spec.kinds.contains(&run.kind.as_str()) && names.iter().any(|n| n == spec.metric) {
                figure
                    .curves
                    .push(curve(store, run, spec.metric, &label).await?);
            }
        }
        // Held-out accuracy measured during RL, one figure per benchmark.
        for name in names
            .iter()
            .filter(|n| n.starts_with("eval/") && n.ends_with("/pass@1"))
        {
            let benchmark = &name["eval/".len()..name.len() - "/pass@1".len()];
            let stem = format!("held-out-{benchmark}");
            let index = match held_out.iter().position(|f| f.name == stem) {
                Some(i) => i,
                None => {
                    held_out.push(Figure {
                        name: stem,
                        title: format!("Held-out pass@1 during RL: {benchmark}"),
                        y_label: "pass@1".into(),
                        curves: Vec::new(),
                    });
                    held_out.len() - 1
                }
            };
            held_out[index]
                .curves
                .push(curve(store, run, name, &label).await?);
        }
    }
    // Accuracy, then what held-out accuracy did, then the rest.
    let tail = figures.split_off(2);
    figures.extend(held_out);
    figures.extend(tail);
    figures.retain(|f| !f.curves.is_empty());

    let recipes: Vec<&StandingRun> = runs
        .iter()
        .filter(|r| r.kind == "recipe" && ids.iter().any(|id| id.as_str() == r.experiment))
        .collect();
    let mut findings = Vec::new();
    if ids.is_empty() {
        findings.push(findings_section(store, None, "everything in the store".into()).await?);
    }
    for recipe in recipes {
        let title = format!("{} `{}`", recipe.name, &recipe.experiment[..12]);
        findings.push(findings_section(store, Some(&recipe.experiment), title).await?);
    }

    let traces = examples(store, &runs).await?;
    let title = match ids {
        [] => "R1 Lab report: everything in the store".to_string(),
        _ => {
            let names: Vec<String> = ids
                .iter()
                .map(|id| {
                    let name = runs
                        .iter()
                        .find(|r| r.experiment == id.as_str())
                        .map_or("", |r| r.name.as_str());
                    format!("{name} {}", id.short()).trim().to_string()
                })
                .collect();
            format!("R1 Lab report: {}", names.join(", "))
        }
    };
    Ok(Report {
        title,
        runs,
        figures,
        findings,
        traces,
    })
}

async fn curve(
    store: &Store,
    run: &StandingRun,
    metric: &str,
    label: &str,
) -> Result<Curve, StoreError> {
    let points = store.metric_series(run.attempt, metric).await?;
    Ok(Curve {
        label: label.to_string(),
        experiment: run.experiment.clone(),
        points: points.into_iter().map(|(s, v)| (s as f64, v)).collect(),
    })
}

async fn findings_section(
    store: &Store,
    scope: Option<&str>,
    title: String,
) -> Result<FindingsSection, StoreError> {
    let evidence = Evidence::load(store, scope).await?;
    let checks = findings::judged_sections(&evidence);
    let table = evidence.table_rows(store, scope.is_some()).await?;
    Ok(FindingsSection {
        title,
        checks,
        table,
    })
}

/// The last step's traces of each RL and evaluation run, the least language-consistent first.
async fn examples(store: &Store, runs: &[StandingRun]) -> Result<Vec<TraceExample>, StoreError> {
    let mut out = Vec::new();
    for run in runs.iter().filter(|r| r.kind == "grpo" || r.kind == "eval") {
        let traces = store.traces(run.attempt).await?;
        let Some(last) = traces.iter().map(|t| t.step).max() else {
            continue;
        };
        let mut chosen: Vec<&crate::store::TraceRecord> =
            traces.iter().filter(|t| t.step == last).collect();
        chosen.sort_by(|a, b| {
            a.consistency()
                .unwrap_or(1.0)
                .total_cmp(&b.consistency().unwrap_or(1.0))
        });
        for t in chosen.into_iter().take(TRACES_PER_RUN) {
            out.push(TraceExample {
                experiment: run.experiment.clone(),
                run_name: run.name.clone(),
                step: t.step,
                prompt: t.prompt.clone(),
                completion: t.completion.clone(),
                target: t.target(),
                rewards: t.rewards,
                consistency: t.consistency(),
            });
        }
    }
    // Mixed ones first across runs too, so a page with many runs still shows the mixing.
    out.sort_by(|a, b| {
        a.consistency
            .unwrap_or(1.0)
            .total_cmp(&b.consistency.unwrap_or(1.0))
    });
    out.truncate(TRACES);
    Ok(out)
}

/// Writes the report into `dir`: `index.html` and, per figure, `figures/NAME.svg` and
/// `figures/NAME.png`. Returns the page's path.
pub fn write(report: &Report, dir: &Path) -> Result<PathBuf, ReportError> {
    let figures_dir = dir.join("figures");
    std::fs::create_dir_all(&figures_dir).map_err(|source| ReportError::Io {
        path: figures_dir.clone(),
        source,
    })?;
    let mut svgs = Vec::with_capacity(report.figures.len());
    for figure in &report.figures {
        let svg = figure.to_svg()?;
        let svg_path = figures_dir.join(format!("{}.svg", figure.name));
        std::fs::write(&svg_path, &svg).map_err(|source| ReportError::Io {
            path: svg_path,
            source,
        })?;
        figure.write_png(&figures_dir.join(format!("{}.png", figure.name)))?;
        svgs.push(svg);
    }
    let page = html::page(report, &svgs);
    let path = dir.join("index.html");
    std::fs::write(&path, page).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
