//! SQL: type a query, see the result as a scrollable table. The store is opened read-only, so
//! writes are refused by SQLite; errors are shown, never fatal.

use lab::store::{QueryResult, SqlValue};
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::{dim, fit, header, highlight, navigate};
use crate::app::{App, Effect};
use crate::data::Request;
use crate::input::{Edit, Input};

pub const KEYS: &[(&str, &str)] = &[
    ("(typing) Enter", "run the query"),
    ("(typing) ↑ ↓", "earlier / later queries"),
    ("(typing) Esc", "stop typing, to scroll the result"),
    ("j k PgUp PgDn", "scroll rows"),
    ("h l ← →", "scroll columns"),
    ("e i Enter", "edit the query again"),
];

pub const DEFAULT_QUERY: &str = "SELECT short_id, kind, name, status FROM runs";

/// Widest a column is drawn, in characters.
const MAX_COLUMN: usize = 40;

#[derive(Debug)]
pub struct SqlView {
    pub input: Input,
    pub editing: bool,
    pub running: bool,
    pub last_sql: String,
    pub result: Option<Result<QueryResult, String>>,
    pub row: usize,
    pub column: usize,
    pub history: Vec<String>,
    history_at: usize,
}

impl SqlView {
    pub fn new() -> SqlView {
        SqlView {
            input: Input::new(DEFAULT_QUERY),
            editing: true,
            running: false,
            last_sql: String::new(),
            result: None,
            row: 0,
            column: 0,
            history: Vec::new(),
            history_at: 0,
        }
    }

    pub fn set_result(&mut self, sql: String, result: Result<QueryResult, String>) {
        self.running = false;
        self.last_sql = sql;
        self.result = Some(result);
        self.row = 0;
        self.column = 0;
    }
}

impl Default for SqlView {
    fn default() -> Self {
        SqlView::new()
    }
}

impl SqlView {
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if self.editing {
            match key.code {
                KeyCode::Up | KeyCode::Down if !self.history.is_empty() => {
                    let n = self.history.len();
                    self.history_at = if key.code == KeyCode::Up {
                        self.history_at.saturating_sub(1)
                    } else {
                        (self.history_at + 1).min(n)
                    };
                    let text = self
                        .history
                        .get(self.history_at)
                        .cloned()
                        .unwrap_or_default();
                    self.input.set(&text);
                    return None;
                }
                _ => {}
            }
            match self.input.handle(key) {
                Edit::Submit => {
                    let sql = self.input.text.trim().to_string();
                    if sql.is_empty() {
                        return None;
                    }
                    if self.history.last() != Some(&sql) {
                        self.history.push(sql.clone());
                    }
                    self.history_at = self.history.len();
                    self.running = true;
                    return Some(Effect::Request(Request::Sql(sql)));
                }
                Edit::Cancel => self.editing = false,
                _ => {}
            }
            return None;
        }
        let (rows, columns) = match &self.result {
            Some(Ok(r)) => (r.rows.len(), r.columns.len()),
            _ => (0, 0),
        };
        if let Some(i) = navigate(key, self.row, rows, 10) {
            self.row = i;
            return None;
        }
        match key.code {
            KeyCode::Char('h') | KeyCode::Left => self.column = self.column.saturating_sub(1),
            KeyCode::Char('l') | KeyCode::Right => {
                self.column = (self.column + 1).min(columns.saturating_sub(1))
            }
            KeyCode::Char('e') | KeyCode::Char('i') | KeyCode::Enter | KeyCode::Char('/') => {
                self.editing = true
            }
            _ => {}
        }
        None
    }
}

fn cell_text(v: &SqlValue) -> String {
    match v {
        SqlValue::Real(r) => {
            let s = format!("{r:.6}");
            let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
            if s.is_empty() || s == "-" {
                "0".into()
            } else {
                s
            }
        }
        other => other.to_string().replace('\n', "⏎"),
    }
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let view = &app.sql;
    let [input_area, result_area] =
        Layout::vertical([Constraint::Length(3), Constraint::Fill(1)]).areas(area);
    let width = input_area.width.saturating_sub(4) as usize;
    let (shown, cursor) = view.input.window(width);
    let title = if view.editing {
        " SQL (read-only) · Enter runs · Esc to scroll "
    } else {
        " SQL (read-only) · e to edit "
    };
    let style = if view.editing {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![Span::raw(" "), Span::raw(shown)]))
            .block(Block::bordered().title(title).border_style(style)),
        input_area,
    );
    if view.editing {
        frame.set_cursor_position(Position::new(
            input_area.x + 2 + cursor as u16,
            input_area.y + 1,
        ));
    }
    let block = Block::bordered();
    match &view.result {
        None => {
            let text = if view.running {
                "running…"
            } else {
                "Type a query and press Enter. Tables: experiments, lineage, attempts, metrics, traces, evaluations, checkpoints, artifacts; views: runs, results, metric_points, latest_metrics, eval_results."
            };
            frame.render_widget(
                Paragraph::new(text)
                    .style(dim())
                    .wrap(Wrap { trim: true })
                    .block(block),
                result_area,
            );
        }
        Some(Err(e)) => {
            frame.render_widget(
                Paragraph::new(format!("error: {e}"))
                    .style(Style::new().fg(Color::Red))
                    .wrap(Wrap { trim: true })
                    .block(block.title(" error ")),
                result_area,
            );
        }
        Some(Ok(result)) => {
            let columns = &result.columns[view.column.min(result.columns.len())..];
            let texts: Vec<Vec<String>> = result
                .rows
                .iter()
                .map(|r| {
                    r[view.column.min(r.len())..]
                        .iter()
                        .map(cell_text)
                        .collect()
                })
                .collect();
            let widths: Vec<Constraint> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let w = texts
                        .iter()
                        .map(|r| Line::raw(r[i].as_str()).width())
                        .chain([c.chars().count()])
                        .max()
                        .unwrap_or(1)
                        .min(MAX_COLUMN);
                    Constraint::Length(w as u16)
                })
                .collect();
            let head = Row::new(columns.iter().map(|c| Cell::from(c.clone()))).style(header());
            let rows: Vec<Row> = texts
                .iter()
                .map(|r| Row::new(r.iter().map(|c| Cell::from(fit(c, MAX_COLUMN)))))
                .collect();
            let n = rows.len();
            let kept = if result.truncated {
                format!(" (the first {n}: the query returned more)")
            } else {
                String::new()
            };
            let more = if view.column > 0 {
                format!(" · from column {} ", view.column + 1)
            } else {
                " ".into()
            };
            let table = Table::new(rows, widths)
                .header(head)
                .column_spacing(2)
                .row_highlight_style(highlight())
                .block(block.title(format!(" {n} rows{kept}{more}")));
            let selected = (!view.editing && n > 0).then_some(view.row);
            let mut state = TableState::default().with_selected(selected);
            if view.editing {
                *state.offset_mut() = 0;
            }
            frame.render_stateful_widget(table, result_area, &mut state);
        }
    }
}
