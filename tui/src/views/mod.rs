//! One module per view: its state, its keys and how it draws.

pub mod compare;
pub mod diff;
pub mod launch;
pub mod mixing;
pub mod runs;
pub mod sql;
pub mod traces;

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::style::{Color, Modifier, Style};

/// Colours of runs in charts, in order; distinguishable on dark and light terminals.
pub const PALETTE: [Color; 10] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::Red,
    Color::Blue,
    Color::LightCyan,
    Color::LightYellow,
    Color::LightMagenta,
    Color::LightGreen,
];

pub fn highlight() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn header() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Moves a selection in a list of `len` items by a navigation key; `None` if the key is not one.
pub fn navigate(key: KeyEvent, selected: usize, len: usize, page: usize) -> Option<usize> {
    if len == 0 {
        return matches!(
            key.code,
            KeyCode::Up
                | KeyCode::Down
                | KeyCode::Char('j')
                | KeyCode::Char('k')
                | KeyCode::Home
                | KeyCode::End
                | KeyCode::Char('g')
                | KeyCode::Char('G')
                | KeyCode::PageUp
                | KeyCode::PageDown
        )
        .then_some(0);
    }
    let last = len - 1;
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => (selected + 1).min(last),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => last,
        KeyCode::PageUp => selected.saturating_sub(page.max(1)),
        KeyCode::PageDown => (selected + page.max(1)).min(last),
        _ => return None,
    })
}

/// Keys every view shares, for the help.
pub const GLOBAL_KEYS: &[(&str, &str)] = &[
    ("1-7 Tab S-Tab", "switch view"),
    ("?", "this help (any key closes)"),
    ("q  Ctrl-C", "quit (launched runs keep running)"),
];

/// Formats an optional number for a table cell.
pub fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
        None => "".into(),
    }
}

/// Truncates to `width` columns with an ellipsis (by characters; wide characters count 2).
pub fn fit(text: &str, width: usize) -> String {
    use ratatui::text::Line;
    if Line::raw(text).width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in text.chars() {
        let cw = Line::raw(c.to_string()).width();
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}
