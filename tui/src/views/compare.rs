//! Compare: the marked runs' curves of one metric overlaid, one colour per run.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Dataset, GraphType, LegendPosition, List, ListItem, ListState, Paragraph,
};
use ratatui::Frame;

use super::{dim, fit, highlight, navigate, PALETTE};
use crate::app::{App, Effect};
use crate::chart;
use crate::data::{Request, RunRef, RunSummary, Series};
use crate::input::Input;
use lab::report::figure::{Curve as FigureCurve, Figure};

pub const KEYS: &[(&str, &str)] = &[
    ("j k ↑ ↓", "choose the metric"),
    ("/", "filter metric names"),
    ("s", "smoothing on / off"),
    ("+ -", "more / less smoothing"),
    (
        "w",
        "write the chart as PNG and SVG (figures/ beside the database)",
    ),
    ("(Runs) space, c", "mark runs there, then c to compare them"),
];

/// Metrics shown first when a comparison opens, if the runs have them.
const PREFERRED: [&str; 4] = ["reward", "loss", "lang/mixed_rate", "kl"];

#[derive(Debug, Default)]
pub struct CompareView {
    pub runs: Vec<RunRef>,
    pub metrics: Vec<String>,
    pub metric: Option<String>,
    pub filter: Input,
    pub filtering: bool,
    pub series: Vec<Series>,
    /// EMA weight; 0 is off.
    pub smoothing: f64,
}

impl CompareView {
    /// Shows `runs`; returns the request for their metric names.
    pub fn open(&mut self, runs: Vec<RunRef>) -> Request {
        self.runs = runs;
        self.series.clear();
        Request::MetricNames {
            attempts: self.runs.iter().map(|r| r.attempt).collect(),
        }
    }

    pub fn visible_metrics(&self) -> Vec<&String> {
        let needle = self.filter.text.to_lowercase();
        self.metrics
            .iter()
            .filter(|m| m.to_lowercase().contains(&needle))
            .collect()
    }

    /// Takes the runs' metric names and chooses one; returns the request for its curves.
    pub fn set_metrics(&mut self, names: Vec<String>) -> Option<Request> {
        self.metrics = names;
        let keep = self
            .metric
            .as_ref()
            .filter(|m| self.metrics.contains(m))
            .cloned();
        self.metric = keep.or_else(|| {
            PREFERRED
                .iter()
                .map(|p| p.to_string())
                .find(|p| self.metrics.contains(p))
                .or_else(|| self.metrics.first().cloned())
        });
        self.refresh()
    }

    /// The request for the chosen metric's curves of the shown runs.
    pub fn refresh(&self) -> Option<Request> {
        Some(Request::Series {
            runs: self.runs.clone(),
            metric: self.metric.clone()?,
        })
    }

    pub fn set_series(&mut self, metric: String, series: Vec<Series>) {
        if Some(&metric) == self.metric.as_ref() {
            self.series = series;
        }
    }

    /// The chart on screen as a figure to write: the same runs, metric and smoothing, at full
    /// resolution. Named by the metric and the runs, so writing it again replaces it.
    pub fn figure(&self) -> Option<Figure> {
        let metric = self.metric.as_ref()?;
        let curves: Vec<FigureCurve> = self
            .series
            .iter()
            .filter(|s| !s.points.is_empty())
            .map(|s| FigureCurve {
                label: s.run.label(),
                experiment: s.run.id.clone(),
                points: chart::smooth(&s.points, self.smoothing),
            })
            .collect();
        if curves.is_empty() {
            return None;
        }
        let ids: Vec<&str> = curves
            .iter()
            .map(|c| &c.experiment[..c.experiment.len().min(8)])
            .collect();
        let slug: String = metric
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let smoothing = if self.smoothing > 0.0 {
            format!(" (smoothing {:.2})", self.smoothing)
        } else {
            String::new()
        };
        Some(Figure {
            name: format!("compare-{slug}-{}", ids.join("-")),
            title: format!("{metric}{smoothing}"),
            y_label: metric.clone(),
            curves,
        })
    }

    /// Whether a compared run is still running (then the curves refresh).
    pub fn live(&self, rows: &[RunSummary]) -> bool {
        rows.iter()
            .any(|r| r.is_running() && self.runs.iter().any(|c| c.id == r.id))
    }
}

impl CompareView {
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if self.filtering {
            self.filter.filter_key(&mut self.filtering, key);
            return None;
        }
        let visible = self.visible_metrics();
        let index = self
            .metric
            .as_ref()
            .and_then(|m| visible.iter().position(|v| *v == m))
            .unwrap_or(0);
        if let Some(i) = navigate(key, index, visible.len(), 10) {
            let chosen = visible.get(i).map(|s| s.to_string());
            if chosen != self.metric {
                self.metric = chosen;
                self.series.clear();
                return self.refresh().map(Effect::Request);
            }
            return None;
        }
        match key.code {
            KeyCode::Char('/') => self.filtering = true,
            KeyCode::Char('s') => self.smoothing = if self.smoothing > 0.0 { 0.0 } else { 0.6 },
            KeyCode::Char('+') | KeyCode::Char('=') => {
                self.smoothing = ((self.smoothing + 0.1).min(0.99) * 100.0).round() / 100.0
            }
            KeyCode::Char('-') => {
                self.smoothing = ((self.smoothing - 0.1).max(0.0) * 100.0).round() / 100.0
            }
            KeyCode::Char('w') => {
                return Some(match self.figure() {
                    Some(figure) => Effect::Request(Request::ExportFigure(figure)),
                    None => Effect::Notice("no curve on screen to write".into()),
                })
            }
            _ => {}
        }
        None
    }
}

/// A run's index (its colour), its series and the points to draw.
type Curve<'a> = (usize, &'a Series, Vec<(f64, f64)>);

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let view = &app.compare;
    let list_width = (area.width / 4).clamp(18, 30);
    let [left, right] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Fill(1)]).areas(area);

    // Metric list.
    let visible = view.visible_metrics();
    let items: Vec<ListItem> = visible
        .iter()
        .map(|m| ListItem::new(fit(m, list_width.saturating_sub(2) as usize)))
        .collect();
    let selected = view
        .metric
        .as_ref()
        .and_then(|m| visible.iter().position(|v| *v == m));
    let title = if view.filtering || !view.filter.text.is_empty() {
        format!(
            " /{}{} ",
            view.filter.text,
            if view.filtering { "▏" } else { "" }
        )
    } else {
        " Metrics ".to_string()
    };
    let list = List::new(items)
        .highlight_style(highlight())
        .block(Block::bordered().title(title));
    frame.render_stateful_widget(
        list,
        left,
        &mut ListState::default().with_selected(selected),
    );

    // Chart.
    let metric = view.metric.clone().unwrap_or_default();
    let smoothing = if view.smoothing > 0.0 {
        format!(" · smoothing {:.2}", view.smoothing)
    } else {
        String::new()
    };
    let block = Block::bordered().title(format!(" {metric}{smoothing} "));
    if view.runs.is_empty() {
        frame.render_widget(
            Paragraph::new("Mark runs with space in Runs (1), then press c.")
                .style(dim())
                .block(block),
            right,
        );
        return;
    }
    // Braille gives two dots per column: keep ~2 points per dot column.
    let buckets = (right.width as usize).saturating_sub(10).max(8) * 2;
    let curves: Vec<Curve> = view
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.points.is_empty())
        .map(|(i, s)| {
            (
                i,
                s,
                chart::downsample(&chart::smooth(&s.points, view.smoothing), buckets),
            )
        })
        .collect();
    let Some((xb, yb)) = chart::bounds(curves.iter().map(|c| c.2.as_slice())) else {
        let missing: Vec<String> = view.runs.iter().map(|r| r.label()).collect();
        frame.render_widget(
            Paragraph::new(format!(
                "No points of {metric} yet for: {}",
                missing.join(", ")
            ))
            .style(dim())
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(block),
            right,
        );
        return;
    };
    let datasets: Vec<Dataset> = curves
        .iter()
        .map(|(i, s, pts)| {
            let colour = PALETTE[i % PALETTE.len()];
            Dataset::default()
                .name(fit(&s.run.label(), 30))
                .marker(Marker::Braille)
                .graph_type(if pts.len() == 1 {
                    GraphType::Scatter
                } else {
                    GraphType::Line
                })
                .style(Style::new().fg(colour))
                .data(pts)
        })
        .collect();
    let x_labels: Vec<Line> = [xb[0], (xb[0] + xb[1]) / 2.0, xb[1]]
        .iter()
        .map(|v| Line::from(chart::label(*v)))
        .collect();
    let y_labels: Vec<Line> = [yb[0], (yb[0] + yb[1]) / 2.0, yb[1]]
        .iter()
        .map(|v| Line::from(chart::label(*v)))
        .collect();
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(Span::styled("step", dim()))
                .bounds(xb)
                .labels(x_labels),
        )
        .y_axis(
            Axis::default()
                .title(Span::styled(fit(&metric, 16), dim()))
                .bounds(yb)
                .labels(y_labels),
        )
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)))
        .style(Style::new().fg(Color::Reset));
    frame.render_widget(chart, right);
}
