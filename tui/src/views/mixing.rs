//! Language mixing across runs: lang/mixed_rate and lang/consistency over training, mixed_rate
//! at evaluation and in sampled traces, worst first.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, GraphType, LegendPosition, Paragraph, Row, Table, TableState,
};
use ratatui::Frame;

use super::{dim, header, highlight, navigate, num};
use crate::app::{App, Effect};
use crate::data::LangRow;

pub const KEYS: &[(&str, &str)] = &[
    ("j k ↑ ↓", "choose a run"),
    ("Enter", "the run's most mixed traces"),
    ("r", "refresh"),
];

#[derive(Debug, Default)]
pub struct MixingView {
    pub rows: Vec<LangRow>,
    pub loaded: bool,
    pub selected: usize,
}

impl MixingView {
    pub fn set_rows(&mut self, rows: Vec<LangRow>) {
        let keep = self.rows.get(self.selected).map(|r| r.run.id.clone());
        self.rows = rows;
        self.loaded = true;
        self.selected = keep
            .and_then(|id| self.rows.iter().position(|r| r.run.id == id))
            .unwrap_or(0);
    }
}

impl MixingView {
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if let Some(i) = navigate(key, self.selected, self.rows.len(), 10) {
            self.selected = i;
            return None;
        }
        match key.code {
            KeyCode::Enter => self.rows.get(self.selected).map(|row| Effect::OpenTraces {
                run: row.run.clone(),
                most_mixed_first: true,
            }),
            KeyCode::Char('r') => Some(Effect::Request(crate::data::Request::LangMix)),
            _ => None,
        }
    }
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let view = &app.mixing;
    let chart_height = if area.height >= 18 {
        area.height / 2
    } else {
        0
    };
    let [table_area, chart_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(chart_height)]).areas(area);
    let head = Row::new([
        "run",
        "kind",
        "train mix",
        "consist.",
        "eval mix",
        "traces mix",
    ])
    .style(header());
    let rows: Vec<Row> = view
        .rows
        .iter()
        .map(|r| {
            let worst = r.worst();
            let colour = if worst >= 0.5 {
                Color::Red
            } else if worst > 0.0 {
                Color::Yellow
            } else {
                Color::Green
            };
            Row::new(vec![
                Cell::from(r.run.label()),
                Cell::from(r.kind.clone()),
                Cell::from(num(r.train_mixed)).style(Style::new().fg(colour)),
                Cell::from(num(r.consistency)),
                Cell::from(num(r.eval_mixed)).style(Style::new().fg(colour)),
                Cell::from(match r.traces_mixed {
                    Some(m) => format!("{m:.3} of {}", r.traces),
                    None => String::new(),
                }),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(12),
        ],
    )
    .header(head)
    .row_highlight_style(highlight())
    .block(Block::bordered().title(" Language mixing, worst first · Enter: most mixed traces "));
    let mut state = TableState::default().with_selected((!empty).then_some(view.selected));
    frame.render_stateful_widget(table, table_area, &mut state);
    if empty {
        let text = if view.loaded {
            "No run has measured language mixing yet (GRPO training, evaluations and traces do)."
        } else {
            "loading…"
        };
        frame.render_widget(
            Paragraph::new(text).style(dim()),
            table_area.inner(ratatui::layout::Margin::new(2, 2)),
        );
    }
    if chart_height == 0 {
        return;
    }
    let Some(row) = view.rows.get(view.selected) else {
        return;
    };
    let block = Block::bordered().title(format!(" {} over training ", row.run.label()));
    if row.mixed_curve.is_empty() && row.consistency_curve.is_empty() {
        frame.render_widget(
            Paragraph::new("No training curve (evaluation or traces only).")
                .style(dim())
                .block(block),
            chart_area,
        );
        return;
    }
    let x_max = row
        .mixed_curve
        .iter()
        .chain(&row.consistency_curve)
        .map(|p| p.0)
        .fold(0.0, f64::max)
        .max(1.0);
    let x_min = row
        .mixed_curve
        .iter()
        .chain(&row.consistency_curve)
        .map(|p| p.0)
        .fold(x_max, f64::min);
    let datasets = vec![
        Dataset::default()
            .name("lang/mixed_rate")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::LightRed))
            .data(&row.mixed_curve),
        Dataset::default()
            .name("lang/consistency")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Cyan))
            .data(&row.consistency_curve),
    ];
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(Span::styled("step", dim()))
                .bounds([x_min, x_max])
                .labels([
                    Line::from(format!("{x_min}")),
                    Line::from(format!("{x_max}")),
                ]),
        )
        .y_axis(
            Axis::default()
                .title(Span::styled("rate", dim()))
                .bounds([0.0, 1.0])
                .labels([Line::from("0"), Line::from("0.5"), Line::from("1")]),
        )
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    frame.render_widget(chart, chart_area);
}
