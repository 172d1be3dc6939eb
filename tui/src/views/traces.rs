//! Traces: a run's sampled completions by step, with reward parts, advantage and language
//! scores; words of the non-target language highlighted.

use lab::store::TraceRecord;
use lab::world::Lang;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{dim, header, highlight, navigate};
use crate::app::{App, Effect};
use crate::data::{Request, RunRef, RunSummary};
use crate::input::Input;
use lab::highlight::pieces;

pub const KEYS: &[(&str, &str)] = &[
    ("j k ↑ ↓ g G", "choose a trace"),
    ("[ ]", "previous / next step"),
    ("/", "search prompts and completions"),
    ("m", "order: by step / most mixed first"),
    ("J K", "scroll the trace"),
    ("(Runs) Enter", "open a run's traces"),
];

#[derive(Debug, Default)]
pub struct TracesView {
    pub run: Option<RunRef>,
    pub traces: Vec<TraceRecord>,
    pub loaded: bool,
    pub selected: usize,
    pub search: Input,
    pub searching: bool,
    pub most_mixed_first: bool,
    pub scroll: u16,
}

/// The language consistency recorded with a trace (1 when unknown).
fn consistency(t: &TraceRecord) -> f64 {
    t.consistency().unwrap_or(1.0)
}

impl TracesView {
    /// Shows `run`'s traces; returns the request for them.
    pub fn open(&mut self, run: RunRef, most_mixed_first: bool) -> Request {
        if self.run.as_ref() != Some(&run) {
            self.traces.clear();
            self.loaded = false;
            self.selected = 0;
            self.scroll = 0;
        }
        self.most_mixed_first = most_mixed_first;
        self.run = Some(run.clone());
        Request::Traces { run }
    }

    /// The request for the shown run's traces, again.
    pub fn refresh(&self) -> Option<Request> {
        Some(Request::Traces {
            run: self.run.clone()?,
        })
    }

    pub fn live(&self, rows: &[RunSummary]) -> bool {
        self.run
            .as_ref()
            .is_some_and(|run| rows.iter().any(|r| r.id == run.id && r.is_running()))
    }

    pub fn set_traces(&mut self, run: RunRef, traces: Vec<TraceRecord>) {
        if self.run.as_ref() == Some(&run) {
            self.traces = traces;
            self.loaded = true;
            self.selected = self.selected.min(self.visible().len().saturating_sub(1));
        }
    }

    pub fn visible(&self) -> Vec<&TraceRecord> {
        let needle = self.search.text.to_lowercase();
        let mut v: Vec<&TraceRecord> = self
            .traces
            .iter()
            .filter(|t| {
                needle.is_empty()
                    || t.completion.to_lowercase().contains(&needle)
                    || t.prompt.to_lowercase().contains(&needle)
            })
            .collect();
        if self.most_mixed_first {
            v.sort_by(|a, b| consistency(a).total_cmp(&consistency(b)));
        }
        v
    }
}

impl TracesView {
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if self.searching {
            self.search.filter_key(&mut self.searching, key);
            self.selected = 0;
            return None;
        }
        let visible = self.visible();
        if let Some(i) = navigate(key, self.selected, visible.len(), 10) {
            self.selected = i;
            self.scroll = 0;
            return None;
        }
        match key.code {
            KeyCode::Char('[') | KeyCode::Char(']') => {
                let current = visible.get(self.selected)?.step;
                let target = if key.code == KeyCode::Char(']') {
                    visible.iter().position(|t| t.step > current)
                } else {
                    visible.iter().rposition(|t| t.step < current).map(|last| {
                        let step = visible[last].step;
                        visible.iter().position(|t| t.step == step).unwrap_or(last)
                    })
                };
                if let Some(i) = target {
                    self.selected = i;
                    self.scroll = 0;
                }
            }
            KeyCode::Char('/') => self.searching = true,
            KeyCode::Char('m') => {
                self.most_mixed_first = !self.most_mixed_first;
                self.selected = 0;
            }
            KeyCode::Char('J') => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Char('K') => self.scroll = self.scroll.saturating_sub(1),
            _ => {}
        }
        None
    }
}

/// A text with the words of the language other than `target` highlighted.
pub fn highlighted(text: &str, target: Option<Lang>) -> Vec<Line<'static>> {
    let other = target.map(Lang::other);
    let mark = Style::new()
        .fg(Color::Black)
        .bg(Color::LightRed)
        .add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::default()];
    for piece in pieces(text) {
        let style = if piece.lang.is_some() && piece.lang == other {
            mark
        } else {
            Style::new()
        };
        for (i, part) in piece.text.split('\n').enumerate() {
            if i > 0 {
                lines.push(Line::default());
            }
            if !part.is_empty() {
                lines
                    .last_mut()
                    .expect("starts with a line")
                    .push_span(Span::styled(part.to_string(), style));
            }
        }
    }
    lines
}

/// A trace part on one line, `name value` by field, numbers to three decimals.
fn json_line(label: &str, part: &impl serde::Serialize) -> Line<'static> {
    let v = serde_json::to_value(part).unwrap_or_default();
    let body = match v.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .filter(|(k, _)| k.as_str() != "advantage")
            .map(|(k, v)| match v.as_f64() {
                Some(f) if v.is_f64() => format!("{k} {f:.3}"),
                _ => format!("{k} {v}"),
            })
            .collect::<Vec<_>>()
            .join("  "),
        _ => "—".into(),
    };
    Line::from(vec![
        Span::styled(format!("{label:<10}"), header()),
        Span::raw(body),
    ])
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let view = &app.traces;
    let list_width = (area.width / 3).clamp(20, 34);
    let [left, right] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Fill(1)]).areas(area);
    let visible = view.visible();
    let title = match &view.run {
        Some(run) => format!(" {} ", run.label()),
        None => " Traces ".into(),
    };
    let search = if view.searching || !view.search.text.is_empty() {
        format!(
            " /{}{} ",
            view.search.text,
            if view.searching { "▏" } else { "" }
        )
    } else {
        format!(
            " {} ",
            if view.most_mixed_first {
                "most mixed"
            } else {
                "by step"
            }
        )
    };
    let items: Vec<ListItem> = visible
        .iter()
        .map(|t| {
            let mark = match t.correct() {
                Some(true) => Span::styled("✓", Style::new().fg(Color::Green)),
                Some(false) => Span::styled("✗", Style::new().fg(Color::Red)),
                None => Span::raw(" "),
            };
            let lang = t.target().map(Lang::code).unwrap_or("");
            let mixed = t.consistency();
            ListItem::new(Line::from(vec![
                Span::raw(format!("s{:<4} #{:<3}", t.step, t.sample)),
                mark,
                Span::raw(format!(" {lang:<2} ")),
                Span::styled(
                    mixed
                        .map(|c| format!("{:>3.0}%", c * 100.0))
                        .unwrap_or_default(),
                    if mixed.is_some_and(|c| c < 1.0) {
                        Style::new().fg(Color::LightRed)
                    } else {
                        dim()
                    },
                ),
            ]))
        })
        .collect();
    let list = List::new(items)
        .highlight_style(highlight())
        .block(Block::bordered().title(title).title_bottom(search));
    let selected = (!visible.is_empty()).then_some(view.selected);
    frame.render_stateful_widget(
        list,
        left,
        &mut ListState::default().with_selected(selected),
    );

    let block =
        Block::bordered().title(" trace · consistency = share of words in the target language ");
    let Some(t) = visible.get(view.selected) else {
        let text = match (&view.run, view.loaded) {
            (None, _) => "Choose a run in Runs (1) and press Enter.",
            (Some(_), false) => "loading…",
            (Some(_), true) if view.traces.is_empty() => "This run has no traces.",
            _ => "No trace matches the search.",
        };
        frame.render_widget(Paragraph::new(text).style(dim()).block(block), right);
        return;
    };
    let target = t.target();
    let mut text = Text::default();
    let target_name = match target {
        Some(Lang::En) => "target en: Chinese words highlighted",
        Some(Lang::Zh) => "target zh: English words highlighted",
        None => "target language unknown",
    };
    text.push_line(Line::from(vec![
        Span::styled(format!("step {} sample {}", t.step, t.sample), header()),
        Span::styled(format!("  ({target_name})"), dim()),
    ]));
    text.push_line(json_line("reward", &t.rewards));
    if let Some(adv) = t.rewards.advantage {
        text.push_line(Line::from(vec![
            Span::styled(format!("{:<10}", "advantage"), header()),
            Span::raw(format!("{adv:+.3}")),
        ]));
    }
    text.push_line(json_line("language", &t.language));
    text.push_line(Line::styled("prompt", header()));
    for line in highlighted(&t.prompt, target) {
        text.push_line(line);
    }
    text.push_line(Line::styled("completion", header()));
    for line in highlighted(&t.completion, target) {
        text.push_line(line);
    }
    text.push_line(json_line("meta", &t.labels));
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .scroll((view.scroll, 0))
            .block(block),
        right,
    );
}
