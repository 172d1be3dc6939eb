//! The application state and `update(action)`: what happens on a key, a tick or an answer from
//! the background worker. Drawing lives in [`crate::ui`] and the views; the store lives behind
//! the worker. `update` only changes state and queues [`Request`]s in `outbox`.
//!
//! A view handles its keys on its own state and returns an [`Effect`] for anything beyond it
//! (a request to the worker, another view, the status line); the app carries effects out.

use std::path::PathBuf;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::data::{Request, Response, RunRef};
use crate::views::{compare, diff, launch, mixing, runs, sql, traces};

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Runs,
    Launch,
    Compare,
    Mixing,
    Traces,
    Diff,
    Sql,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Runs,
        View::Launch,
        View::Compare,
        View::Mixing,
        View::Traces,
        View::Diff,
        View::Sql,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Runs => "Runs",
            View::Launch => "Launch",
            View::Compare => "Compare",
            View::Mixing => "Mixing",
            View::Traces => "Traces",
            View::Diff => "Diff",
            View::Sql => "SQL",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Everything that can happen to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Key(KeyEvent),
    /// Time passes: live views refresh. Carries the current time (seconds since the epoch).
    Tick(f64),
    /// An answer from the background worker.
    Data(Response),
}

/// What a view's key asks of the rest of the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Ask the background worker.
    Request(Request),
    Switch(View),
    OpenTraces {
        run: RunRef,
        most_mixed_first: bool,
    },
    OpenCompare(Vec<RunRef>),
    /// The spec diff of the two marked runs (or the marked one and the selected one).
    OpenDiff,
    Notice(String),
    Error(String),
}

/// Where the app reads from and what it starts.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The store's database as messages name it (a path, or a URL without its password).
    pub db: String,
    /// Folder of experiment specs offered by the Launch view.
    pub experiments: PathBuf,
}

#[derive(Debug)]
pub struct App {
    pub config: AppConfig,
    pub view: View,
    pub now: f64,
    pub show_help: bool,
    /// The status line: a message and whether it is an error.
    pub status: Option<(String, bool)>,
    pub should_quit: bool,
    /// Requests for the worker, taken by the event loop.
    pub outbox: Vec<Request>,
    pub runs: runs::RunsView,
    pub launch: launch::LaunchView,
    pub compare: compare::CompareView,
    pub mixing: mixing::MixingView,
    pub traces: traces::TracesView,
    pub diff: diff::DiffView,
    pub sql: sql::SqlView,
    last_refresh: f64,
    ticks: u64,
}

/// Seconds between refreshes of the live views.
pub const REFRESH_SECONDS: f64 = 1.0;

impl App {
    pub fn new(config: AppConfig, now: f64) -> App {
        let launch = launch::LaunchView::new(&config.experiments);
        let mut app = App {
            config,
            view: View::Runs,
            now,
            show_help: false,
            status: None,
            should_quit: false,
            outbox: vec![Request::Runs],
            runs: Default::default(),
            launch,
            compare: Default::default(),
            mixing: Default::default(),
            traces: Default::default(),
            diff: Default::default(),
            sql: sql::SqlView::new(),
            last_refresh: now,
            ticks: 0,
        };
        app.outbox.extend(app.launch.request_dry_run());
        app
    }

    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.outbox)
    }

    pub fn request(&mut self, r: Request) {
        self.outbox.push(r);
    }

    pub fn notice(&mut self, message: impl Into<String>) {
        self.status = Some((message.into(), false));
    }

    pub fn error(&mut self, message: impl Into<String>) {
        self.status = Some((message.into(), true));
    }

    /// Whether a text input has the keyboard (then letters type instead of acting).
    pub fn editing(&self) -> bool {
        match self.view {
            View::Runs => self.runs.filtering,
            View::Launch => self.launch.editing(),
            View::Compare => self.compare.filtering,
            View::Traces => self.traces.searching,
            View::Sql => self.sql.editing,
            View::Mixing | View::Diff => false,
        }
    }

    pub fn update(&mut self, action: Action) {
        match action {
            Action::Key(key) => self.key(key),
            Action::Tick(now) => self.tick(now),
            Action::Data(response) => self.data(response),
        }
    }

    fn tick(&mut self, now: f64) {
        self.now = now;
        if now - self.last_refresh < REFRESH_SECONDS {
            return;
        }
        self.last_refresh = now;
        self.ticks += 1;
        self.request(Request::Runs);
        match self.view {
            View::Compare if self.compare.live(&self.runs.rows) => {
                self.outbox.extend(self.compare.refresh())
            }
            View::Traces if self.traces.live(&self.runs.rows) => {
                self.outbox.extend(self.traces.refresh())
            }
            View::Mixing if self.ticks.is_multiple_of(3) => self.request(Request::LangMix),
            _ => {}
        }
    }

    pub fn switch(&mut self, view: View) {
        self.view = view;
        self.show_help = false;
        match view {
            View::Mixing => self.request(Request::LangMix),
            View::Compare if self.compare.runs.is_empty() => {
                let request = self.compare.open(self.runs.chosen());
                self.request(request);
            }
            View::Traces if self.traces.run.is_none() => {
                if let Some(run) = self.runs.selected_ref() {
                    let request = self.traces.open(run, false);
                    self.request(request);
                }
            }
            View::Diff if self.diff.diff.is_none() => self.open_diff(),
            _ => {}
        }
    }

    /// Spec diff of the two marked runs (or the marked one and the selected one).
    pub fn open_diff(&mut self) {
        let mut chosen = self.runs.chosen();
        if chosen.len() == 1 {
            if let Some(sel) = self.runs.selected_ref() {
                if sel != chosen[0] {
                    chosen.push(sel);
                }
            }
        }
        if chosen.len() != 2 {
            self.error("Spec diff: mark two runs with space in Runs, then press d");
            return;
        }
        self.diff.scroll = 0;
        self.request(Request::SpecDiff {
            a: chosen[0].clone(),
            b: chosen[1].clone(),
        });
    }

    pub fn open_traces(&mut self, run: RunRef, most_mixed_first: bool) {
        let request = self.traces.open(run, most_mixed_first);
        self.request(request);
        self.view = View::Traces;
    }

    pub fn open_compare(&mut self, runs: Vec<RunRef>) {
        let request = self.compare.open(runs);
        self.request(request);
        self.view = View::Compare;
    }

    /// Carries out what a view asked for.
    pub fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Request(request) => self.request(request),
            Effect::Switch(view) => self.switch(view),
            Effect::OpenTraces {
                run,
                most_mixed_first,
            } => self.open_traces(run, most_mixed_first),
            Effect::OpenCompare(runs) => self.open_compare(runs),
            Effect::OpenDiff => self.open_diff(),
            Effect::Notice(message) => self.notice(message),
            Effect::Error(message) => self.error(message),
        }
    }

    fn key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            self.should_quit = true;
            return;
        }
        if self.show_help {
            self.show_help = false;
            return;
        }
        if key.code == KeyCode::Tab || key.code == KeyCode::BackTab {
            let n = View::ALL.len();
            let step = if key.code == KeyCode::Tab { 1 } else { n - 1 };
            self.switch(View::ALL[(self.view.index() + step) % n]);
            return;
        }
        if !self.editing() {
            match key.code {
                KeyCode::Char('q') => {
                    self.should_quit = true;
                    return;
                }
                KeyCode::Char('?') => {
                    self.show_help = true;
                    return;
                }
                KeyCode::Char(c @ '1'..='7') => {
                    self.switch(View::ALL[(c as u8 - b'1') as usize]);
                    return;
                }
                _ => {}
            }
        }
        let effect = match self.view {
            View::Runs => self.runs.key(key, self.now),
            View::Launch => self.launch.key(key),
            View::Compare => self.compare.key(key),
            View::Mixing => self.mixing.key(key),
            View::Traces => self.traces.key(key),
            View::Diff => self.diff.key(key),
            View::Sql => self.sql.key(key),
        };
        if let Some(effect) = effect {
            self.apply(effect);
        }
    }

    fn data(&mut self, response: Response) {
        match response {
            Response::Runs(rows) => self.runs.set_rows(rows),
            Response::MetricNames(names) => {
                let request = self.compare.set_metrics(names);
                self.outbox.extend(request);
            }
            Response::Series { metric, series } => self.compare.set_series(metric, series),
            Response::Traces { run, traces } => self.traces.set_traces(run, traces),
            Response::LangMix(rows) => self.mixing.set_rows(rows),
            Response::SpecDiff(d) => {
                self.diff.diff = Some(d);
                self.view = View::Diff;
            }
            Response::Sql { sql, result } => self.sql.set_result(sql, result),
            Response::DryRun(d) => self.launch.dry = Some(d),
            Response::Processes(p) => {
                let finished = p.iter().filter(|l| l.exit.is_some()).count()
                    > self
                        .launch
                        .processes
                        .iter()
                        .filter(|l| l.exit.is_some())
                        .count();
                self.launch.processes = p;
                if finished {
                    self.outbox.extend(self.launch.request_dry_run());
                }
            }
            Response::Notice(m) => self.notice(m),
            Response::Error(e) => self.error(e),
        }
    }
}
