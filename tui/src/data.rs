//! Plain data the background worker reads from the store and the views draw.

use std::path::PathBuf;

use lab::store::{QueryResult, TraceRecord};

/// One row of the Runs view: a run with its latest attempt, key numbers and liveness.
pub use lab::store::RunOverview as RunSummary;

/// A run as other views refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunRef {
    pub id: String,
    pub name: String,
    pub attempt: i64,
}

impl RunRef {
    pub fn label(&self) -> String {
        format!("{} {}", &self.id[..self.id.len().min(8)], self.name)
    }
}

/// One curve of the Compare view.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub run: RunRef,
    pub points: Vec<(f64, f64)>,
}

/// One row of the Language mixing view.
#[derive(Debug, Clone, PartialEq)]
pub struct LangRow {
    pub run: RunRef,
    pub kind: String,
    /// Last `lang/mixed_rate` logged in training.
    pub train_mixed: Option<f64>,
    /// Last `lang/consistency` logged in training.
    pub consistency: Option<f64>,
    /// Mean `mixed_rate` over the run's evaluations.
    pub eval_mixed: Option<f64>,
    /// Share of the run's traces that mix languages, and how many traces it has.
    pub traces_mixed: Option<f64>,
    pub traces: i64,
    pub mixed_curve: Vec<(f64, f64)>,
    pub consistency_curve: Vec<(f64, f64)>,
}

impl LangRow {
    /// The number the view ranks by: the worst of what was measured.
    pub fn worst(&self) -> f64 {
        [self.eval_mixed, self.train_mixed, self.traces_mixed]
            .into_iter()
            .flatten()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// One differing key of two resolved specs.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffLine {
    pub key: String,
    pub left: Option<String>,
    pub right: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecDiff {
    pub a: RunRef,
    pub b: RunRef,
    pub lines: Vec<DiffLine>,
}

/// What `lab run SPEC --dry-run` said.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    pub spec: PathBuf,
    pub overrides: Vec<String>,
    pub id: String,
    /// "completed" or "not run".
    pub state: String,
    pub label: String,
}

/// A `lab` process this TUI started.
#[derive(Debug, Clone, PartialEq)]
pub struct Launched {
    pub pid: u32,
    pub what: String,
    /// None while running; the exit code (or -1 for a signal) once it ended.
    pub exit: Option<i32>,
    pub log: PathBuf,
}

/// What the UI asks the background worker for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Runs,
    MetricNames {
        attempts: Vec<i64>,
    },
    Series {
        runs: Vec<RunRef>,
        metric: String,
    },
    Traces {
        run: RunRef,
    },
    LangMix,
    SpecDiff {
        a: RunRef,
        b: RunRef,
    },
    Sql(String),
    DryRun {
        spec: PathBuf,
        overrides: Vec<String>,
    },
    Launch {
        spec: PathBuf,
        overrides: Vec<String>,
        /// Submit the stages as Slurm jobs (`--executor slurm`) instead of running them.
        slurm: bool,
    },
    Rerun {
        run: RunRef,
    },
    /// Write a chart as SVG and PNG into the `figures` folder beside the database.
    ExportFigure(lab::report::figure::Figure),
    /// Stop a running run, as `lab cancel` does (its Slurm job, or its process here).
    Cancel {
        run: RunRef,
    },
}

/// What the background worker answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Runs(Vec<RunSummary>),
    MetricNames(Vec<String>),
    Series {
        metric: String,
        series: Vec<Series>,
    },
    Traces {
        run: RunRef,
        traces: Vec<TraceRecord>,
    },
    LangMix(Vec<LangRow>),
    SpecDiff(SpecDiff),
    Sql {
        sql: String,
        result: Result<QueryResult, String>,
    },
    DryRun(Result<DryRun, String>),
    Processes(Vec<Launched>),
    /// A message for the status line (launch started, cancel sent, errors).
    Notice(String),
    Error(String),
}
