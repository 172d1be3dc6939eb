//! Checks shared by the stages' configs. Each returns the `(field, reason)` problems it finds, so
//! a config reports every bad field at once.

pub type Problems = Vec<(String, String)>;

/// The config's verdict from its collected problems.
pub fn finish(problems: Problems) -> Result<(), Problems> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A nested config's problems, their fields prefixed with the section (`optimizer.eps`).
pub fn nested(section: &str, result: Result<(), Problems>) -> Problems {
    match result {
        Ok(()) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|(field, reason)| (format!("{section}.{field}"), reason))
            .collect(),
    }
}

/// `(field, "must be at least 1")` for each zero among `fields`.
pub fn positive(fields: &[(&str, usize)]) -> Problems {
    fields
        .iter()
        .filter(|(_, value)| *value == 0)
        .map(|(field, _)| (field.to_string(), "must be at least 1".to_string()))
        .collect()
}

/// A training schedule: the peak learning rate, the floor of its decay, and a checkpoint period
/// that falls on logged steps (so a resumed run logs the same points).
pub fn schedule(lr: f64, min_lr_ratio: f64, log_every: usize, checkpoint_every: usize) -> Problems {
    let mut problems = Vec::new();
    if !(lr.is_finite() && lr > 0.0) {
        problems.push(("lr".into(), format!("must be > 0, got {lr}")));
    }
    if !(0.0..=1.0).contains(&min_lr_ratio) {
        problems.push((
            "min_lr_ratio".into(),
            format!("must be in [0, 1], got {min_lr_ratio}"),
        ));
    }
    if log_every > 0 && !checkpoint_every.is_multiple_of(log_every) {
        problems.push((
            "checkpoint_every".into(),
            format!("must be a multiple of log_every ({log_every})"),
        ));
    }
    problems
}

/// Sampling settings: temperature 0 is greedy; top-p keeps a nucleus of mass in (0, 1].
pub fn sampling(temperature: f64, top_p: f64) -> Problems {
    let mut problems = Vec::new();
    if !(temperature.is_finite() && temperature >= 0.0) {
        problems.push(("temperature".into(), "must be >= 0".into()));
    }
    if !(top_p > 0.0 && top_p <= 1.0) {
        problems.push(("top_p".into(), "must be in (0, 1]".into()));
    }
    problems
}

/// The range of operation counts problems are drawn from.
pub fn operations(min_operations: usize, max_operations: usize) -> Problems {
    if min_operations == 0 || min_operations > max_operations {
        vec![(
            "min_operations".into(),
            format!("must be in 1..=max_operations ({max_operations})"),
        )]
    } else {
        Vec::new()
    }
}
