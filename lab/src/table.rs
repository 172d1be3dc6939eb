//! Plain-text tables, CSV and HTML text for the terminal and reports: aligned columns, numbers
//! to the right.

/// Renders `rows` under `headers` as an aligned text table. Cells are cut at `max_width` chars.
pub fn render(headers: &[String], rows: &[Vec<String>], max_width: usize) -> String {
    let clip = |s: &str| -> String {
        let one_line = s.replace('\n', "⏎");
        if one_line.chars().count() > max_width {
            let mut cut: String = one_line.chars().take(max_width.saturating_sub(1)).collect();
            cut.push('…');
            cut
        } else {
            one_line
        }
    };
    let headers: Vec<String> = headers.iter().map(|h| clip(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clip(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(display_width(cell));
            }
        }
    }
    let numeric: Vec<bool> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .all(|r| r.get(i).is_none_or(|c| looks_numeric(c)))
                && rows.iter().any(|r| r.get(i).is_some_and(|c| !c.is_empty()))
        })
        .collect();
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(display_width(cell));
            if i > 0 {
                out.push_str("  ");
            }
            if numeric[i] {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push('\n');
    };
    line(&headers, &mut out);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&rule, &mut out);
    for row in &rows {
        line(row, &mut out);
    }
    out
}

fn looks_numeric(cell: &str) -> bool {
    cell.is_empty() || cell == "NULL" || cell.parse::<f64>().is_ok()
}

/// Width in terminal columns: Han characters and full-width forms take two.
pub fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let wide = matches!(c as u32,
                0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF |
                0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide {
                2
            } else {
                1
            }
        })
        .sum()
}

/// One CSV field, quoted when it must be (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// `s` as HTML text or attribute value: `& < > " '` escaped.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let out = render(
            &["name".into(), "value".into()],
            &[
                vec!["a".into(), "1.5".into()],
                vec!["long".into(), "10".into()],
            ],
            40,
        );
        assert_eq!(out, "name  value\n----  -----\na       1.5\nlong     10\n");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(
            csv_line(&["a".into(), "b,c".into(), "say \"hi\"".into()]),
            "a,\"b,c\",\"say \"\"hi\"\"\"\n"
        );
    }

    #[test]
    fn han_counts_double() {
        assert_eq!(display_width("答案是 11"), 9);
    }

    #[test]
    fn html_escape_leaves_no_markup() {
        assert_eq!(
            html_escape(r#"<a href="x">'5' & 6</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;5&#39; &amp; 6&lt;/a&gt;"
        );
        assert_eq!(html_escape("小明 has 3"), "小明 has 3");
    }
}
