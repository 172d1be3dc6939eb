//! The store's timestamps (`2026-01-31T12:00:00.000Z`, UTC) as seconds, and short renderings.

/// Seconds since the Unix epoch of an ISO-8601 UTC timestamp as SQLite's strftime writes it.
pub fn parse_utc(text: &str) -> Option<f64> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':');
    let h: f64 = t.next()?.parse().ok()?;
    let min: f64 = t.next()?.parse().ok()?;
    let s: f64 = t.next().unwrap_or("0").parse().ok()?;
    Some(days_from_civil(y, m, day) as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `MM-DD HH:MM` of a stored timestamp.
pub fn short_time(text: &str) -> String {
    match text.get(5..16) {
        Some(s) => s.replace('T', " "),
        None => text.to_string(),
    }
}

/// A duration as `0.4s`, `12s`, `3m05s`, `2h07m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{:.0}s", s.floor())
    } else if s < 3600.0 {
        let s = s as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let s = s as u64;
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Now, in seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stored_timestamps() {
        assert_eq!(parse_utc("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(parse_utc("2000-03-01T00:00:01.500Z"), Some(951_868_801.5));
        assert_eq!(parse_utc("nonsense"), None);
        assert_eq!(short_time("2026-11-30T12:59:43.286Z"), "11-30 12:59");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.42), "0.4s");
        assert_eq!(duration(12.9), "12s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7620.0), "2h07m");
    }
}
