//! Spec diff: two runs' resolved specs (and inputs), differences only.

use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{dim, header, navigate};
use crate::app::{App, Effect};
use crate::data::SpecDiff;

pub const KEYS: &[(&str, &str)] = &[
    ("j k ↑ ↓", "scroll"),
    ("(Runs) space, d", "mark two runs there, then d"),
];

#[derive(Debug, Default)]
pub struct DiffView {
    pub diff: Option<SpecDiff>,
    pub scroll: usize,
}

impl DiffView {
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        let n = self.diff.as_ref().map(|d| d.lines.len()).unwrap_or(0);
        if let Some(i) = navigate(key, self.scroll, n, 10) {
            self.scroll = i;
        }
        None
    }
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let Some(diff) = &app.diff.diff else {
        frame.render_widget(
            Paragraph::new("Mark two runs with space in Runs (1), then press d.")
                .style(dim())
                .block(Block::bordered().title(" Spec diff ")),
            area,
        );
        return;
    };
    let title = format!(
        " Spec diff: − {}   + {}  ({} differences) ",
        diff.a.label(),
        diff.b.label(),
        diff.lines.len()
    );
    if diff.lines.is_empty() {
        frame.render_widget(
            Paragraph::new("The resolved specs are identical.")
                .block(Block::bordered().title(title)),
            area,
        );
        return;
    }
    let absent = "(absent)".to_string();
    let rows: Vec<Row> = diff
        .lines
        .iter()
        .map(|l| {
            Row::new(vec![
                Cell::from(l.key.clone()),
                Cell::from(format!("− {}", l.left.as_ref().unwrap_or(&absent)))
                    .style(Style::new().fg(Color::Red)),
                Cell::from(format!("+ {}", l.right.as_ref().unwrap_or(&absent)))
                    .style(Style::new().fg(Color::Green)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Percentage(30),
            Constraint::Percentage(35),
            Constraint::Percentage(35),
        ],
    )
    .header(Row::new(["key".to_string(), diff.a.label(), diff.b.label()]).style(header()))
    .block(Block::bordered().title(title));
    let mut state = TableState::default().with_offset(app.diff.scroll);
    frame.render_stateful_widget(table, area, &mut state);
}
