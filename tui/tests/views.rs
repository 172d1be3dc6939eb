//! Every view drawn at 80×24 on a store written by the lab library, read back by the real
//! background backend, snapshotted with insta (ids, clock times and durations redacted).

mod common;

use common::{filters, fixture, Harness};
use ratatui::crossterm::event::KeyCode;
use tui::data::{DryRun, Launched, Response};
use tui::{Action, View};

macro_rules! snap {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => filters()}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

fn harness() -> Harness {
    let mut h = Harness::new(fixture(), 80, 24);
    // Sort by name so the order does not depend on start times a millisecond apart.
    h.key(KeyCode::Char('s'));
    h
}

#[test]
fn runs_view_lists_runs_with_live_status_and_key_metrics() {
    let mut h = harness();
    let screen = h.screen();
    assert!(screen.contains("run  50%"), "{screen}");
    snap!("runs", screen);
}

#[test]
fn runs_view_updates_live_while_a_run_writes() {
    let mut h = harness();
    assert!(h.screen().contains("run  50%"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = lab::store::Store::open(h.db()).await.unwrap();
        store
            .set_progress(h.fixture.running_attempt, 0.75)
            .await
            .unwrap();
        store
            .record_metrics(
                h.fixture.running_attempt,
                &[lab::store::MetricPoint::new("reward", 4, 0.9)],
            )
            .await
            .unwrap();
        store.close().await;
    });
    let later = h.app.now + 2.0;
    h.app.update(Action::Tick(later));
    h.pump();
    let screen = h.screen();
    assert!(screen.contains("run  75%"), "{screen}");
    assert!(screen.contains("0.900"), "{screen}");
}

#[test]
fn runs_view_filters_by_text_and_shows_help() {
    let mut h = harness();
    h.key(KeyCode::Char('/'));
    h.chars("grpo");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(!screen.contains("tiny-world"), "{screen}");
    snap!("runs_filtered", screen);
    h.key(KeyCode::Char('?'));
    snap!("runs_help", h.screen());
}

#[test]
fn compare_view_overlays_marked_runs() {
    let mut h = harness();
    // Rows by name: tiny-pretrain, tiny-world, zero/grpo-seed1, zero/grpo-seed2.
    h.key(KeyCode::Char('G'));
    h.key(KeyCode::Char(' '));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char(' '));
    h.key(KeyCode::Char('c'));
    assert_eq!(h.app.view, View::Compare);
    assert_eq!(h.app.compare.metric.as_deref(), Some("reward"));
    assert_eq!(h.app.compare.series.len(), 2);
    let screen = h.screen();
    assert!(
        screen.contains("step") && screen.contains("zero/grpo-seed1"),
        "{screen}"
    );
    assert!(
        screen
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "no curve drawn:\n{screen}"
    );
    snap!("compare", screen);
    h.key(KeyCode::Char('s'));
    assert!(h.screen().contains("smoothing 0.60"));

    // The chart on screen written as images beside the database, through the worker.
    h.key(KeyCode::Char('w'));
    let screen = h.screen();
    assert!(screen.contains("chart written to"), "{screen}");
    let figures = h.db().parent().unwrap().join("figures");
    let mut written: Vec<String> = std::fs::read_dir(&figures)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    written.sort();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written[0].starts_with("compare-reward-") && written[0].ends_with(".png"));
    let png = std::fs::read(figures.join(&written[0])).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(figures.join(&written[1])).unwrap();
    assert!(
        svg.contains("reward (smoothing 0.60)"),
        "the title says what is drawn"
    );
    for run in ["zero/grpo-seed1", "zero/grpo-seed2"] {
        assert!(svg.contains(run), "{run} is in the legend");
    }
    for (r, g, b) in &lab::report::figure::PALETTE[..2] {
        let stroke = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
        assert_eq!(
            svg.matches(&stroke).count(),
            2,
            "a curve and its legend mark"
        );
    }
}

#[test]
fn traces_view_shows_a_runs_completions() {
    let mut h = harness();
    h.key(KeyCode::Char('G'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Enter);
    assert_eq!(h.app.view, View::Traces);
    assert_eq!(h.app.traces.traces.len(), 3);
    snap!("traces", h.screen());
    h.key(KeyCode::Char('/'));
    h.chars("所以");
    h.key(KeyCode::Enter);
    assert_eq!(h.app.traces.visible().len(), 1);
    snap!("traces_search", h.screen());
}

#[test]
fn traces_highlight_words_of_the_other_language() {
    let mut h = harness();
    h.key(KeyCode::Char('G'));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Enter);
    h.screen();
    // The first trace targets English: 所 and 以 (two Chinese words) are highlighted, "she" is not.
    let buffer = h.terminal.backend().buffer().clone();
    let highlighted: String = buffer
        .content
        .iter()
        .filter(|c| c.bg == ratatui::style::Color::LightRed)
        .map(|c| c.symbol())
        .collect();
    assert_eq!(highlighted.replace(' ', ""), "所以");
}

#[test]
fn mixing_view_ranks_runs_worst_first() {
    let mut h = harness();
    h.key(KeyCode::Char('4'));
    let rows = &h.app.mixing.rows;
    assert_eq!(rows[0].run.name, "zero/grpo-seed1");
    snap!("mixing", h.screen());
    h.key(KeyCode::Enter);
    assert_eq!(h.app.view, View::Traces);
    assert!(h.app.traces.most_mixed_first);
    assert!(h.app.traces.visible()[0].completion.contains("所以"));
}

#[test]
fn diff_view_shows_only_differences() {
    let mut h = harness();
    h.key(KeyCode::Char('G'));
    h.key(KeyCode::Char(' '));
    h.key(KeyCode::Char('k'));
    h.key(KeyCode::Char(' '));
    h.key(KeyCode::Char('d'));
    assert_eq!(h.app.view, View::Diff);
    let keys: Vec<&str> = h
        .app
        .diff
        .diff
        .as_ref()
        .unwrap()
        .lines
        .iter()
        .map(|l| l.key.as_str())
        .collect();
    assert_eq!(keys, ["lr", "seed"]);
    snap!("diff", h.screen());
}

#[test]
fn sql_view_runs_queries_and_shows_errors() {
    let mut h = harness();
    h.key(KeyCode::Char('7'));
    assert!(h.app.sql.editing);
    h.app
        .update(Action::Key(ratatui::crossterm::event::KeyEvent::new(
            KeyCode::Char('u'),
            ratatui::crossterm::event::KeyModifiers::CONTROL,
        )));
    h.chars("SELECT name, step, value FROM metric_points WHERE name = 'reward' ORDER BY experiment_name, step");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(screen.contains("12 rows"), "{screen}");
    snap!("sql", screen);
    h.key(KeyCode::Esc);
    h.key(KeyCode::Char('j'));
    assert_eq!(h.app.sql.row, 1);
    h.key(KeyCode::Char('e'));
    h.app.sql.input.set("DELETE FROM experiments");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(screen.contains("error"), "{screen}");
    snap!("sql_error", screen);
}

#[test]
fn launch_view_shows_spec_plan_and_processes() {
    let mut h = harness();
    h.key(KeyCode::Char('2'));
    h.key(KeyCode::Char('/'));
    h.chars("world");
    h.key(KeyCode::Enter);
    h.key(KeyCode::Char('o'));
    h.chars("seed=7");
    h.key(KeyCode::Enter);
    assert_eq!(h.app.launch.override_list(), ["seed=7"]);
    let spec = h.app.launch.spec().unwrap();
    assert!(spec.ends_with("tiny/world.toml"));
    // What the worker answers, given here (the dry run and the launch run the lab binary).
    h.app.update(Action::Data(Response::DryRun(Ok(DryRun {
        spec: spec.clone(),
        overrides: vec!["seed=7".into()],
        id: "e5".repeat(32),
        state: "not run".into(),
        label: "world tiny-world".into(),
    }))));
    h.app
        .update(Action::Data(Response::Processes(vec![Launched {
            pid: 4242,
            what: "run experiments/tiny/world.toml".into(),
            exit: None,
            log: "logs/launch.log".into(),
        }])));
    snap!("launch", h.screen());
}

#[test]
fn every_view_draws_at_any_size() {
    let mut h = harness();
    for (w, hgt) in [(80, 24), (20, 6), (200, 60), (1, 1)] {
        h.terminal.backend_mut().resize(w, hgt);
        for v in 1..=7 {
            h.key(KeyCode::Char(char::from(b'0' + v)));
            h.screen();
            h.key(KeyCode::Char('?'));
            h.screen();
            h.key(KeyCode::Esc);
            h.key(KeyCode::Esc);
        }
    }
}

#[test]
fn threaded_worker_answers_over_channels() {
    let fixture = fixture();
    let worker = tui::Worker::spawn(tui::WorkerConfig {
        db: fixture.db.clone().into(),
        lab_bin: "/nonexistent/lab".into(),
        log_dir: fixture.dir.path().join("logs"),
    });
    worker.send(tui::data::Request::Runs);
    worker.send(tui::data::Request::Sql(
        "SELECT count(*) AS n FROM experiments".into(),
    ));
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(
            worker
                .responses
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("an answer"),
        );
    }
    assert!(matches!(&got[0], Response::Runs(rows) if rows.len() == 4));
    assert!(
        matches!(&got[1], Response::Sql { result: Ok(r), .. } if r.rows[0][0] == lab::store::SqlValue::Integer(4))
    );
    worker.shutdown();
}
