//! Launch: pick a spec, override values, see the id it will get and whether it is done, and
//! start `lab run` as its own process (it keeps running if the TUI quits).

use std::path::{Path, PathBuf};

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{dim, header, highlight, navigate};
use crate::app::{App, Effect};
use crate::data::{DryRun, Launched, Request};
use crate::input::{Edit, Input};

pub const KEYS: &[(&str, &str)] = &[
    ("j k ↑ ↓", "choose a spec"),
    ("/", "filter specs by path"),
    ("o", "edit overrides: key=value key2=value"),
    (
        "Enter",
        "launch `lab run SPEC --set ...` as its own process",
    ),
    (
        "s",
        "launch on Slurm (lab run --executor slurm) / here, in turn",
    ),
    ("(Runs) x x  r r", "cancel / rerun the selected run"),
];

#[derive(Debug, Default)]
pub struct LaunchView {
    /// The folder the specs were found in; the list shows paths below it.
    pub root: PathBuf,
    pub specs: Vec<PathBuf>,
    pub selected: usize,
    pub filter: Input,
    pub filtering: bool,
    pub overrides: Input,
    pub editing_overrides: bool,
    pub dry: Option<Result<DryRun, String>>,
    pub processes: Vec<Launched>,
    /// Enter submits the spec's stages as Slurm jobs instead of running them here.
    pub on_slurm: bool,
}

/// Every `*.toml` under `dir`, sorted.
pub fn find_specs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

impl LaunchView {
    pub fn new(dir: &Path) -> LaunchView {
        LaunchView {
            root: dir.to_path_buf(),
            specs: find_specs(dir),
            ..Default::default()
        }
    }

    pub fn editing(&self) -> bool {
        self.filtering || self.editing_overrides
    }

    pub fn visible(&self) -> Vec<&PathBuf> {
        let needle = self.filter.text.to_lowercase();
        self.specs
            .iter()
            .filter(|p| {
                p.strip_prefix(&self.root)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .to_lowercase()
                    .contains(&needle)
            })
            .collect()
    }

    pub fn spec(&self) -> Option<PathBuf> {
        self.visible().get(self.selected).map(|p| p.to_path_buf())
    }

    pub fn override_list(&self) -> Vec<String> {
        self.overrides
            .text
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Asks for the dry run of the chosen spec with its overrides (none without a spec).
    pub fn request_dry_run(&mut self) -> Option<Request> {
        let spec = self.spec()?;
        self.dry = None;
        Some(Request::DryRun {
            spec,
            overrides: self.override_list(),
        })
    }
}

impl LaunchView {
    pub fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if self.filtering {
            let edit = self.filter.filter_key(&mut self.filtering, key);
            if edit == Edit::Changed || edit == Edit::Cancel {
                self.selected = 0;
                return self.request_dry_run().map(Effect::Request);
            }
            return None;
        }
        if self.editing_overrides {
            match self.overrides.handle(key) {
                Edit::Submit => {
                    self.editing_overrides = false;
                    return self.request_dry_run().map(Effect::Request);
                }
                Edit::Cancel => self.editing_overrides = false,
                _ => {}
            }
            return None;
        }
        let n = self.visible().len();
        if let Some(i) = navigate(key, self.selected, n, 10) {
            if i != self.selected {
                self.selected = i;
                return self.request_dry_run().map(Effect::Request);
            }
            return None;
        }
        match key.code {
            KeyCode::Char('/') => self.filtering = true,
            KeyCode::Char('o') => self.editing_overrides = true,
            KeyCode::Char('s') => {
                self.on_slurm = !self.on_slurm;
                let where_ = if self.on_slurm {
                    "on Slurm, one job per stage"
                } else {
                    "here"
                };
                return Some(Effect::Notice(format!("Enter now launches {where_}")));
            }
            KeyCode::Enter => {
                if let Some(spec) = self.spec() {
                    let overrides = self.override_list();
                    return Some(Effect::Request(Request::Launch {
                        spec,
                        overrides,
                        slurm: self.on_slurm,
                    }));
                }
            }
            _ => {}
        }
        None
    }
}

pub fn draw(app: &App, frame: &mut Frame, area: Rect) {
    let view = &app.launch;
    let list_width = (area.width / 3).clamp(22, 36);
    let [left, right] =
        Layout::horizontal([Constraint::Length(list_width), Constraint::Fill(1)]).areas(area);
    let visible = view.visible();
    let items: Vec<ListItem> = visible
        .iter()
        .map(|p| {
            ListItem::new(
                p.strip_prefix(&view.root)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .to_string(),
            )
        })
        .collect();
    let title = if view.filtering || !view.filter.text.is_empty() {
        format!(
            " /{}{} ",
            view.filter.text,
            if view.filtering { "▏" } else { "" }
        )
    } else {
        " Specs ".into()
    };
    let selected = (!visible.is_empty()).then_some(view.selected);
    frame.render_stateful_widget(
        List::new(items)
            .highlight_style(highlight())
            .block(Block::bordered().title(title)),
        left,
        &mut ListState::default().with_selected(selected),
    );

    let process_rows = (view.processes.len() as u16).min(5);
    let [over_area, plan_area, spec_area, proc_area] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(if process_rows > 0 {
            process_rows + 2
        } else {
            0
        }),
    ])
    .areas(right);

    let over_style = if view.editing_overrides {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    };
    let (shown, cursor) = view
        .overrides
        .window(over_area.width.saturating_sub(4) as usize);
    let shown = if shown.is_empty() && !view.editing_overrides {
        Span::styled("(none: press o, e.g. seed=1 steps=8)", dim())
    } else {
        Span::raw(shown)
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![Span::raw(" "), shown])).block(
            Block::bordered()
                .title(" Overrides (--set) ")
                .border_style(over_style),
        ),
        over_area,
    );
    if view.editing_overrides {
        frame.set_cursor_position(Position::new(
            over_area.x + 2 + cursor as u16,
            over_area.y + 1,
        ));
    }

    let plan = match &view.dry {
        None => Line::styled("checking…", dim()),
        Some(Ok(d)) => {
            let state_style = if d.state == "completed" {
                Style::new().fg(Color::Green)
            } else {
                Style::new().fg(Color::Yellow)
            };
            Line::from(vec![
                Span::styled(d.id.get(..12).unwrap_or(&d.id).to_string(), header()),
                Span::raw(format!("  {}  ", d.label)),
                Span::styled(d.state.clone(), state_style),
            ])
        }
        Some(Err(e)) => Line::styled(
            e.lines().next().unwrap_or("").to_string(),
            Style::new().fg(Color::Red),
        ),
    };
    frame.render_widget(
        Paragraph::new(plan).block(Block::bordered().title(if view.on_slurm {
            " Will run as (lab run --dry-run) · Enter launches on Slurm "
        } else {
            " Will run as (lab run --dry-run) · Enter launches "
        })),
        plan_area,
    );

    let spec_text = view
        .spec()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let text: Text = spec_text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with('#') {
                Line::styled(l.to_string(), dim())
            } else {
                Line::raw(l.to_string())
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Spec ")),
        spec_area,
    );

    if process_rows > 0 {
        let lines: Vec<Line> = view
            .processes
            .iter()
            .rev()
            .take(process_rows as usize)
            .map(|p| {
                let (state, style) = match p.exit {
                    None => ("running".to_string(), Style::new().fg(Color::Yellow)),
                    Some(0) => ("finished".to_string(), Style::new().fg(Color::Green)),
                    Some(code) => (
                        format!("failed ({code}), see {}", p.log.display()),
                        Style::new().fg(Color::Red),
                    ),
                };
                Line::from(vec![
                    Span::raw(format!("pid {:<7} {}  ", p.pid, p.what)),
                    Span::styled(state, style),
                ])
            })
            .collect();
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(" Launched from here ")),
            proc_area,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    /// `s` turns launching on Slurm on and off; Enter launches where it says.
    #[test]
    fn s_sends_the_next_launch_to_slurm() {
        let mut view = LaunchView {
            root: PathBuf::from("experiments"),
            specs: vec![PathBuf::from("experiments/tiny/r1-zero.toml")],
            ..Default::default()
        };
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        let launch = |view: &mut LaunchView| match view.key(key(KeyCode::Enter)) {
            Some(Effect::Request(Request::Launch { slurm, .. })) => slurm,
            other => panic!("Enter launches: {other:?}"),
        };
        assert!(!launch(&mut view), "here by default");
        let Some(Effect::Notice(notice)) = view.key(key(KeyCode::Char('s'))) else {
            panic!("s says where Enter launches now");
        };
        assert!(notice.contains("Slurm"), "{notice}");
        assert!(launch(&mut view));
        view.key(key(KeyCode::Char('s')));
        assert!(!launch(&mut view));
    }
}
