//! Crashes on purpose, at the moments a crash campaign must hit rather than hope to hit.
//!
//! A kill -9 at a random moment mostly lands in the middle of arithmetic. The moments that can
//! break a store are rarer: between writing a checkpoint file and recording it, inside a
//! metrics transaction before it commits, between a stage's last flush and its attempt being
//! marked completed. Each such place calls [`point`] with its name; two environment variables
//! act on them:
//!
//! - `LAB_CRASH_AT=KIND:POINT:N` kills the process with SIGKILL (no destructor, no flush, as
//!   `kill -9` would) the N-th time POINT is reached while a stage of KIND runs, after saying so
//!   on stderr (`crashing at KIND POINT N`).
//! - `LAB_CRASH_TRACE=1` prints every point reached (`crash point KIND POINT N`), so a campaign
//!   can count what a run passes through before choosing where to kill it.
//!
//! Unset (always, outside the tests), a point costs one atomic load.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// The durability points, in the order a stage usually reaches them.
pub const POINTS: [&str; 7] = [
    // An object's bytes are written and synced to its temporary file, not yet renamed.
    "object-written",
    // The object is in place under its hash; the database does not know it yet.
    "object-stored",
    // Inside the metrics transaction, before it commits.
    "metrics-flush",
    // Inside the traces transaction, before it commits.
    "traces-flush",
    // Inside the evaluations transaction, before it commits.
    "evaluations-flush",
    // A checkpoint is recorded; what follows it must be recomputed on resume.
    "checkpoint-recorded",
    // The stage's work is all stored; its attempt is not yet marked completed.
    "attempt-finish",
];

struct Plan {
    /// `(kind, point, n)` to crash at, if any.
    crash_at: Option<(String, String, u64)>,
    trace: bool,
}

#[derive(Default)]
struct State {
    stage: String,
    /// How often each `(kind, point)` has been reached in this process.
    reached: BTreeMap<(String, String), u64>,
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let crash_at = std::env::var("LAB_CRASH_AT")
            .ok()
            .map(|v| parse_crash_at(&v));
        let trace = std::env::var_os("LAB_CRASH_TRACE").is_some_and(|v| v == "1");
        (crash_at.is_some() || trace).then_some(Plan { crash_at, trace })
    })
    .as_ref()
}

/// `KIND:POINT:N`; anything else is a mistake in a test, so it panics naming the variable.
fn parse_crash_at(value: &str) -> (String, String, u64) {
    let parts: Vec<&str> = value.split(':').collect();
    match parts[..] {
        [kind, point, n] if POINTS.contains(&point) => match n.parse::<u64>() {
            Ok(n) if n >= 1 => (kind.to_string(), point.to_string(), n),
            _ => panic!("LAB_CRASH_AT={value}: N must be a count from 1"),
        },
        _ => panic!(
            "LAB_CRASH_AT={value}: expected KIND:POINT:N with POINT one of {}",
            POINTS.join(", ")
        ),
    }
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(Mutex::default)
}

/// The kind of stage now running, which the points reached next count under.
pub fn enter_stage(kind: &str) {
    if plan().is_some() {
        state().lock().unwrap_or_else(|e| e.into_inner()).stage = kind.to_string();
    }
}

/// A durability point named `name` (one of [`POINTS`]) is reached.
pub fn point(name: &'static str) {
    let Some(plan) = plan() else { return };
    debug_assert!(POINTS.contains(&name), "unknown crash point {name}");
    let mut state = state().lock().unwrap_or_else(|e| e.into_inner());
    let kind = state.stage.clone();
    let n = {
        let count = state
            .reached
            .entry((kind.clone(), name.to_string()))
            .or_default();
        *count += 1;
        *count
    };
    if plan.trace {
        eprintln!("crash point {kind} {name} {n}");
    }
    if let Some((at_kind, at_point, at_n)) = &plan.crash_at {
        if *at_kind == kind && at_point == name && *at_n == n {
            eprintln!("crashing at {kind} {name} {n}");
            kill_self();
        }
    }
}

fn kill_self() -> ! {
    extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    const SIGKILL: i32 = 9;
    // SAFETY: kill(2) with this process's own id; it does not return when it succeeds.
    unsafe {
        kill(std::process::id() as i32, SIGKILL);
    }
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_at_is_parsed_or_refused_naming_the_points() {
        assert_eq!(
            parse_crash_at("sft:metrics-flush:3"),
            ("sft".into(), "metrics-flush".into(), 3)
        );
        for bad in [
            "sft:metrics-flush:0",
            "sft:nowhere:1",
            "sft:3",
            "x:object-written:-1",
        ] {
            let message = std::panic::catch_unwind(|| parse_crash_at(bad))
                .err()
                .and_then(|e| e.downcast_ref::<String>().cloned())
                .unwrap();
            assert!(message.contains(bad), "{message}");
        }
    }
}
