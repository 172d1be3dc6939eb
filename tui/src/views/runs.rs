//! Runs: every experiment with its latest attempt, live progress and key numbers.

use std::collections::BTreeSet;

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{dim, fit, header, highlight, navigate, num};
use crate::app::{App, Effect, View};
use crate::data::{Request, RunRef, RunSummary};
use crate::input::Input;
use crate::time;
use lab::store::AttemptStatus;

pub const KEYS: &[(&str, &str)] = &[
    ("j k ↑ ↓ g G", "move"),
    ("space", "mark a run (for Compare and Diff)"),
    ("s  S", "sort by the next column / reverse"),
    ("/", "filter by text (id, name, kind, status)"),
    ("Enter", "the run's traces"),
    ("c", "compare the marked runs' curves"),
    ("d", "spec diff of two marked runs"),
    ("x x", "cancel the selected running run"),
    ("r r", "rerun the selected run"),
    ("l", "launch a spec"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Started,
    Name,
    Kind,
    Status,
    Duration,
    Reward,
    Pass1,
    Mixed,
}

impl SortKey {
    const ALL: [SortKey; 8] = [
        SortKey::Started,
        SortKey::Name,
        SortKey::Kind,
        SortKey::Status,
        SortKey::Duration,
        SortKey::Reward,
        SortKey::Pass1,
        SortKey::Mixed,
    ];

    fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

#[derive(Debug, Default)]
pub struct RunsView {
    pub rows: Vec<RunSummary>,
    pub selected_id: Option<String>,
    pub sort: SortKey,
    /// Sort ascending instead of the column's natural order.
    pub reversed: bool,
    pub filter: Input,
    pub filtering: bool,
    pub marked: BTreeSet<String>,
    /// A destructive key pressed once, waiting for the second press: ('x' or 'r', run id).
    pub confirm: Option<(char, String)>,
    pub loaded: bool,
}

fn duration_of(r: &RunSummary, now: f64) -> Option<f64> {
    let start = time::parse_utc(r.started_at.as_deref()?)?;
    let end = match &r.ended_at {
        Some(e) => time::parse_utc(e)?,
        None if r.is_running() => now,
        None => return None,
    };
    Some(end - start)
}

fn status_text(r: &RunSummary) -> String {
    match r.status {
        None => "never run".into(),
        Some(AttemptStatus::Completed) => "done".into(),
        Some(AttemptStatus::Running) => {
            let pct = r
                .progress
                .map(|p| format!(" {:>3.0}%", p * 100.0))
                .unwrap_or_default();
            if r.alive == Some(false) {
                format!("lost{pct}")
            } else {
                format!("run{pct}")
            }
        }
        Some(AttemptStatus::Interrupted) => "interrupt".into(),
        Some(AttemptStatus::Failed) => "failed".into(),
    }
}

fn status_style(r: &RunSummary) -> Style {
    match r.status {
        Some(AttemptStatus::Completed) => Style::new().fg(Color::Green),
        Some(AttemptStatus::Running) if r.alive == Some(false) => Style::new().fg(Color::Red),
        Some(AttemptStatus::Running) => Style::new().fg(Color::Yellow),
        Some(AttemptStatus::Failed) => Style::new().fg(Color::Red),
        Some(AttemptStatus::Interrupted) => Style::new().fg(Color::Magenta),
        _ => dim(),
    }
}

impl RunsView {
    pub fn set_rows(&mut self, rows: Vec<RunSummary>) {
        self.rows = rows;
        self.loaded = true;
        let ids: BTreeSet<&String> = self.rows.iter().map(|r| &r.id).collect();
        self.marked.retain(|m| ids.contains(m));
        if self.selected_id.as_ref().is_none_or(|s| !ids.contains(s)) {
            self.selected_id = self.visible(0.0).first().map(|r| r.id.clone());
        }
    }

    /// The rows shown, filtered and sorted.
    pub fn visible(&self, now: f64) -> Vec<&RunSummary> {
        let needle = self.filter.text.to_lowercase();
        let mut rows: Vec<&RunSummary> = self
            .rows
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || r.id.starts_with(&needle)
                    || r.name.to_lowercase().contains(&needle)
                    || r.kind.to_lowercase().contains(&needle)
                    || status_text(r).contains(&needle)
            })
            .collect();
        let by_f64 = |a: Option<f64>, b: Option<f64>| {
            // Missing numbers sort last either way.
            match (a, b) {
                (Some(a), Some(b)) => b.total_cmp(&a),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        };
        match self.sort {
            // The worker already orders by start, newest first.
            SortKey::Started => {}
            SortKey::Name => rows.sort_by(|a, b| a.name.cmp(&b.name)),
            SortKey::Kind => rows.sort_by(|a, b| a.kind.cmp(&b.kind)),
            SortKey::Status => rows.sort_by_key(|r| status_text(r)),
            SortKey::Duration => {
                rows.sort_by(|a, b| by_f64(duration_of(a, now), duration_of(b, now)))
            }
            SortKey::Reward => rows.sort_by(|a, b| by_f64(a.reward, b.reward)),
            SortKey::Pass1 => rows.sort_by(|a, b| by_f64(a.pass1, b.pass1)),
            SortKey::Mixed => rows.sort_by(|a, b| by_f64(a.mixed, b.mixed)),
        }
        if self.reversed {
            rows.reverse();
        }
        rows
    }

    fn selected_index(&self, visible: &[&RunSummary]) -> usize {
        self.selected_id
            .as_ref()
            .and_then(|id| visible.iter().position(|r| &r.id == id))
            .unwrap_or(0)
    }

    pub fn selected(&self) -> Option<&RunSummary> {
        let id = self.selected_id.as_ref()?;
        self.rows.iter().find(|r| &r.id == id)
    }

    pub fn selected_ref(&self) -> Option<RunRef> {
        self.selected().and_then(run_ref)
    }

    /// The marked runs (in table order), or the selected one when none is marked.
    pub fn chosen(&self) -> Vec<RunRef> {
        let marked: Vec<RunRef> = self
            .rows
            .iter()
            .filter(|r| self.marked.contains(&r.id))
            .filter_map(run_ref)
            .collect();
        if marked.is_empty() {
            self.selected_ref().into_iter().collect()
        } else {
            marked
        }
    }
}

pub fn run_ref(r: &RunSummary) -> Option<RunRef> {
    Some(RunRef {
        id: r.id.clone(),
        name: r.name.clone(),
        attempt: r.attempt?,
    })
}

impl RunsView {
    pub fn key(&mut self, key: KeyEvent, now: f64) -> Option<Effect> {
        if self.filtering {
            self.filter.filter_key(&mut self.filtering, key);
            let visible = self.visible(now);
            if !visible
                .iter()
                .any(|r| Some(&r.id) == self.selected_id.as_ref())
            {
                self.selected_id = visible.first().map(|r| r.id.clone());
            }
            return None;
        }
        let pending = self.confirm.take();
        let visible: Vec<String> = self.visible(now).iter().map(|r| r.id.clone()).collect();
        let index = self
            .selected_id
            .as_ref()
            .and_then(|id| visible.iter().position(|v| v == id))
            .unwrap_or(0);
        if let Some(i) = navigate(key, index, visible.len(), 10) {
            self.selected_id = visible.get(i).cloned();
            return None;
        }
        let selected = self.selected().cloned();
        match key.code {
            KeyCode::Char(' ') => {
                if let Some(r) = &selected {
                    if !self.marked.remove(&r.id) {
                        self.marked.insert(r.id.clone());
                    }
                    let i = (index + 1).min(visible.len().saturating_sub(1));
                    self.selected_id = visible.get(i).cloned();
                }
                None
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                None
            }
            KeyCode::Char('S') => {
                self.reversed = !self.reversed;
                None
            }
            KeyCode::Char('/') => {
                self.filtering = true;
                None
            }
            KeyCode::Esc => {
                self.marked.clear();
                self.filter.set("");
                None
            }
            KeyCode::Enter => Some(match selected.as_ref().and_then(run_ref) {
                Some(run) => Effect::OpenTraces {
                    run,
                    most_mixed_first: false,
                },
                None => Effect::Error("this experiment has no attempt yet".into()),
            }),
            KeyCode::Char('c') => Some(Effect::OpenCompare(self.chosen())),
            KeyCode::Char('d') => Some(Effect::OpenDiff),
            KeyCode::Char('l') => Some(Effect::Switch(View::Launch)),
            KeyCode::Char(c @ ('x' | 'r')) => {
                let r = selected?;
                let run = run_ref(&r)?;
                let confirmed = pending.as_ref() == Some(&(c, r.id.clone()));
                Some(if c == 'x' && !r.is_running() {
                    Effect::Error(format!("{} is not running", run.label()))
                } else if c == 'r' && r.is_running() {
                    Effect::Error(format!("{} is still running", run.label()))
                } else if !confirmed {
                    let what = if c == 'x' { "cancel" } else { "rerun" };
                    self.confirm = Some((c, r.id.clone()));
                    Effect::Notice(format!("press {c} again to {what} {}", run.label()))
                } else if c == 'x' {
                    Effect::Request(Request::Cancel { run })
                } else {
                    Effect::Request(Request::Rerun { run })
                })
            }
            _ => None,
        }
    }
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let view = &app.runs;
    let [top, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let visible = view.visible(app.now);
    let running = view.rows.iter().filter(|r| r.is_running()).count();
    let mut info = vec![Span::raw(format!(
        "{} runs, {running} running, {} marked",
        visible.len(),
        view.marked.len()
    ))];
    if view.filtering || !view.filter.text.is_empty() {
        info.push(Span::raw("   filter: "));
        info.push(Span::styled(
            format!(
                "{}{}",
                view.filter.text,
                if view.filtering { "▏" } else { "" }
            ),
            Style::new().fg(Color::Yellow),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(info)), top);

    // Below 100 columns the start time gives its room to the name.
    let wide = area.width >= 100;
    let columns = [
        ("id", Constraint::Length(9), None),
        ("name", Constraint::Fill(1), Some(SortKey::Name)),
        ("kind", Constraint::Length(8), Some(SortKey::Kind)),
        ("status", Constraint::Length(9), Some(SortKey::Status)),
        ("started", Constraint::Length(11), Some(SortKey::Started)),
        ("time", Constraint::Length(6), Some(SortKey::Duration)),
        ("reward", Constraint::Length(6), Some(SortKey::Reward)),
        ("pass@1", Constraint::Length(6), Some(SortKey::Pass1)),
        ("mixed", Constraint::Length(5), Some(SortKey::Mixed)),
    ];
    let columns: Vec<_> = columns
        .into_iter()
        .filter(|c| wide || c.0 != "started")
        .collect();
    let head = Row::new(columns.iter().map(|(name, _, key)| {
        let arrow = if *key == Some(view.sort) {
            if view.reversed {
                "▲"
            } else {
                "▼"
            }
        } else {
            ""
        };
        Cell::from(format!("{name}{arrow}"))
    }))
    .style(header());
    let rows: Vec<Row> = visible
        .iter()
        .map(|r| {
            let mark = if view.marked.contains(&r.id) {
                "●"
            } else {
                " "
            };
            let mut cells = vec![
                Cell::from(format!("{mark}{}", r.short_id())),
                Cell::from(r.name.clone()),
                Cell::from(fit(&r.kind, 8)),
                Cell::from(status_text(r)).style(status_style(r)),
            ];
            if wide {
                cells.push(Cell::from(
                    r.started_at
                        .as_deref()
                        .map(time::short_time)
                        .unwrap_or_default(),
                ));
            }
            cells.extend([
                Cell::from(
                    duration_of(r, app.now)
                        .map(time::duration)
                        .unwrap_or_default(),
                ),
                Cell::from(num(r.reward)),
                Cell::from(num(r.pass1)),
                Cell::from(num(r.mixed)),
            ]);
            Row::new(cells)
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(rows, columns.iter().map(|c| c.1))
        .header(head)
        .column_spacing(1)
        .row_highlight_style(highlight())
        .block(Block::bordered().title(" Runs "));
    let mut state =
        TableState::default().with_selected((!empty).then(|| view.selected_index(&visible)));
    frame.render_stateful_widget(table, table_area, &mut state);
    if empty {
        let text = if !view.loaded {
            "loading…"
        } else if view.rows.is_empty() {
            "No runs yet. Press l to launch a spec (e.g. experiments/tiny/world.toml)."
        } else {
            "No run matches the filter."
        };
        let inner = table_area.inner(ratatui::layout::Margin::new(2, 3));
        frame.render_widget(Paragraph::new(text).style(dim()), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn press(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn run(id: &str, attempt: Option<i64>, status: AttemptStatus) -> RunSummary {
        RunSummary {
            id: id.into(),
            kind: "grpo".into(),
            name: format!("run-{id}"),
            attempt,
            status: Some(status),
            pid: Some(42),
            host: Some("here".into()),
            ..Default::default()
        }
    }

    /// The view changes only its own state; whatever reaches beyond it comes back as an effect,
    /// so its keys are testable without an app, a worker or a terminal.
    #[test]
    fn keys_return_effects_and_destructive_ones_ask_twice() {
        let mut view = RunsView::default();
        view.set_rows(vec![
            run("aa", Some(1), AttemptStatus::Running),
            run("bb", None, AttemptStatus::Completed),
        ]);
        view.selected_id = Some("aa".into());

        let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
        let Some(Effect::OpenTraces { run, .. }) = view.key(enter, 0.0) else {
            panic!("Enter opens the traces");
        };
        assert_eq!((run.id.as_str(), run.attempt), ("aa", 1));

        assert!(matches!(view.key(press('x'), 0.0), Some(Effect::Notice(_))));
        assert_eq!(view.confirm, Some(('x', "aa".to_string())));
        let Some(Effect::Request(Request::Cancel { run })) = view.key(press('x'), 0.0) else {
            panic!("the second x cancels");
        };
        assert_eq!(run.id, "aa");
        assert!(matches!(view.key(press('r'), 0.0), Some(Effect::Error(_))));

        assert_eq!(view.key(press(' '), 0.0), None);
        assert_eq!(view.marked.len(), 1);
        assert!(
            matches!(view.key(press('c'), 0.0), Some(Effect::OpenCompare(runs)) if runs.len() == 1)
        );

        view.selected_id = Some("bb".into());
        assert!(
            matches!(view.key(enter, 0.0), Some(Effect::Error(_))),
            "no attempt yet"
        );
    }
}
