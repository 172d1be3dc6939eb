//! The application state and `update(action)`: what happens on a key, a tick or an answer from
//! the background worker. Drawing lives in [`crate::ui`] and the views; the store lives behind
//! the worker. `update` only changes state and queues [`Request`]s in `outbox`.

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

/// Where the app reads from and what it starts.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub db: PathBuf,
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
        app.launch.request_dry_run(&mut app.outbox);
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
                self.compare.refresh(&mut self.outbox)
            }
            View::Traces if self.traces.live(&self.runs.rows) => {
                self.traces.refresh(&mut self.outbox)
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
                let runs = self.runs.chosen();
                self.compare.open(runs, &mut self.outbox);
            }
            View::Traces if self.traces.run.is_none() => {
                if let Some(run) = self.runs.selected_ref() {
                    self.traces.open(run, false, &mut self.outbox);
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
        self.traces.open(run, most_mixed_first, &mut self.outbox);
        self.view = View::Traces;
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
        match self.view {
            View::Runs => runs::key(self, key),
            View::Launch => launch::key(self, key),
            View::Compare => compare::key(self, key),
            View::Mixing => mixing::key(self, key),
            View::Traces => traces::key(self, key),
            View::Diff => diff::key(self, key),
            View::Sql => sql::key(self, key),
        }
    }

    fn data(&mut self, response: Response) {
        match response {
            Response::Runs(rows) => self.runs.set_rows(rows),
            Response::MetricNames(names) => self.compare.set_metrics(names, &mut self.outbox),
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
                    self.launch.request_dry_run(&mut self.outbox);
                }
            }
            Response::Notice(m) => self.notice(m),
            Response::Error(e) => self.error(e),
        }
    }
}
