//! Draws the whole screen: the view tabs, the current view, the status line and the help.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Table, Tabs};
use ratatui::Frame;

use crate::app::{App, View};
use crate::views::{self, compare, diff, dim, launch, mixing, runs, sql, traces};

pub fn draw(app: &App, frame: &mut Frame) {
    let [tabs_area, main, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let titles: Vec<String> = View::ALL
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()))
        .collect();
    let tabs = Tabs::new(titles)
        .select(app.view.index())
        .highlight_style(
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        )
        .divider("│")
        .padding("", "");
    let [tabs_left, brand] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(8)]).areas(tabs_area);
    frame.render_widget(tabs, tabs_left);
    frame.render_widget(
        Paragraph::new(Span::styled("R1 Lab", dim())).right_aligned(),
        brand,
    );

    match app.view {
        View::Runs => runs::draw(app, frame, main),
        View::Launch => launch::draw(app, frame, main),
        View::Compare => compare::draw(app, frame, main),
        View::Mixing => mixing::draw(app, frame, main),
        View::Traces => traces::draw(app, frame, main),
        View::Diff => diff::draw(app, frame, main),
        View::Sql => sql::draw(app, frame, main),
    }

    let line = match &app.status {
        Some((message, true)) => Line::styled(message.clone(), Style::new().fg(Color::Red)),
        Some((message, false)) => Line::styled(message.clone(), Style::new().fg(Color::Green)),
        None => Line::from(vec![
            Span::styled("? keys  Tab views  q quit", dim()),
            Span::styled(format!("   {}", app.config.db), dim()),
        ]),
    };
    frame.render_widget(Paragraph::new(line), status);

    if app.show_help {
        draw_help(app, frame, main);
    }
}

/// The keys of the current view, then the global ones.
pub fn keys_of(view: View) -> &'static [(&'static str, &'static str)] {
    match view {
        View::Runs => runs::KEYS,
        View::Launch => launch::KEYS,
        View::Compare => compare::KEYS,
        View::Mixing => mixing::KEYS,
        View::Traces => traces::KEYS,
        View::Diff => diff::KEYS,
        View::Sql => sql::KEYS,
    }
}

fn draw_help(app: &App, frame: &mut Frame, area: Rect) {
    let keys = keys_of(app.view);
    let mut rows: Vec<Row> = keys.iter().map(|(k, what)| Row::new([*k, *what])).collect();
    rows.push(Row::new(["", ""]));
    rows.extend(
        views::GLOBAL_KEYS
            .iter()
            .map(|(k, what)| Row::new([*k, *what]).style(dim())),
    );
    let height = (rows.len() as u16 + 2).min(area.height);
    let width = area.width.min(70);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(popup);
    frame.render_widget(Clear, popup);
    let table = Table::new(rows, [Constraint::Length(18), Constraint::Fill(1)])
        .column_spacing(1)
        .block(Block::bordered().title(format!(" Keys: {} ", app.view.title())));
    frame.render_widget(table, popup);
}
