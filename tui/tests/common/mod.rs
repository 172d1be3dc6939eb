//! A small store written through the lab library, and helpers to drive the app against it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lab::identity::ExperimentId;
use lab::store::{EvalRecord, MetricPoint, Store, TraceRecord};
use lab::trace::{LanguageScores, TraceLabels, TraceRewards};
use lab::world::Lang;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use serde_json::json;
use tui::data::Request;
use tui::worker::Backend;
use tui::{Action, App, AppConfig, WorkerConfig};

pub fn id(byte: &str) -> ExperimentId {
    ExperimentId::parse(&byte.repeat(32)).expect("valid id")
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub experiments: PathBuf,
    pub running_attempt: i64,
}

/// Writes four runs: a world, a pretrain, one GRPO run still running (this process stands in
/// for its pid) and one completed GRPO run with an evaluation and mixed-language traces.
pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("lab.db");
    let experiments = dir.path().join("experiments");
    std::fs::create_dir_all(experiments.join("tiny")).unwrap();
    std::fs::write(
        experiments.join("tiny/world.toml"),
        "# A world small enough for tests.\nkind = \"world\"\nname = \"tiny-world\"\nseed = 0\n",
    )
    .unwrap();
    std::fs::write(
        experiments.join("tiny/pretrain.toml"),
        "kind = \"pretrain\"\nname = \"tiny-pretrain\"\nsteps = 6\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let running_attempt = rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let origin = lab::runner::this_origin();
        let world = id("a1");
        store
            .ensure_experiment(&world, "world", "tiny-world", &json!({"kind": "world", "seed": 0, "web_documents": 300}), 1, &[])
            .await
            .unwrap();
        let a = store.start_attempt(&world, &origin).await.unwrap();
        store
            .record_metrics(a, &[MetricPoint::new("web/documents", 0, 300.0)])
            .await
            .unwrap();
        store.finish_attempt(a, "digest").await.unwrap();

        let pretrain = id("b2");
        store
            .ensure_experiment(
                &pretrain,
                "pretrain",
                "tiny-pretrain",
                &json!({"kind": "pretrain", "steps": 6, "lr": 0.003}),
                1,
                &[("world".into(), world.clone())],
            )
            .await
            .unwrap();
        let a = store.start_attempt(&pretrain, &origin).await.unwrap();
        let loss: Vec<MetricPoint> = (0..=6)
            .map(|s| MetricPoint::new("loss", s, 6.0 - 0.5 * s as f64))
            .collect();
        store.record_metrics(a, &loss).await.unwrap();
        store.finish_attempt(a, "digest").await.unwrap();

        let grpo_spec = |seed: i64, lr: f64| {
            json!({"kind": "grpo", "seed": seed, "lr": lr, "steps": 8, "group_size": 3})
        };
        let done = id("c3");
        store
            .ensure_experiment(&done, "grpo", "zero/grpo-seed1", &grpo_spec(1, 0.001), 1, &[("model".into(), pretrain.clone())])
            .await
            .unwrap();
        let a = store.start_attempt(&done, &origin).await.unwrap();
        let mut points = Vec::new();
        for s in 0..8 {
            let x = s as f64;
            points.push(MetricPoint::new("reward", s, 0.1 + 0.08 * x));
            points.push(MetricPoint::new("loss", s, 0.5 - 0.03 * x));
            points.push(MetricPoint::new("lang/mixed_rate", s, 0.6 - 0.05 * x));
            points.push(MetricPoint::new("lang/consistency", s, 0.5 + 0.05 * x));
        }
        store.record_metrics(a, &points).await.unwrap();
        store
            .record_evaluations(
                a,
                &[
                    EvalRecord { benchmark: "easy-en".into(), prompting: "compact".into(), metric: "pass@1".into(), k: 2, value: 0.25, stderr: None },
                    EvalRecord { benchmark: "easy-en".into(), prompting: "compact".into(), metric: "mixed_rate".into(), k: 2, value: 0.5, stderr: None },
                ],
            )
            .await
            .unwrap();
        let trace = |step: i64, sample: i64, lang: &str, completion: &str, consistency: f64, advantage: f64| TraceRecord {
            step,
            sample,
            prompt: if lang == "en" {
                "User: Anna had 9 books. She got 4 more. How many books? Assistant: <think>".into()
            } else {
                "User: 小明有 9 本书。他又买了 4 本。他有多少本书？ Assistant: <think>".into()
            },
            completion: completion.into(),
            rewards: TraceRewards {
                accuracy: Some(if advantage > 0.0 { 1.0 } else { 0.0 }),
                format: Some(1.0),
                language: Some(consistency),
                total: Some(1.0),
                advantage: Some(advantage),
            },
            language: LanguageScores {
                consistency: Some(consistency),
                mixed: Some(consistency < 1.0),
                ..Default::default()
            },
            labels: TraceLabels {
                lang: Some(if lang == "en" { Lang::En } else { Lang::Zh }),
                truth: Some(13),
                ..Default::default()
            },
        };
        store
            .record_traces(
                a,
                &[
                    trace(0, 0, "en", "9 + 4 = 13 所以 she has 13 </think> <answer> 13 </answer>", 0.5, 0.8),
                    trace(0, 1, "zh", "9 加 4 是 13 books </think> <answer> 12 </answer>", 0.75, -0.4),
                    trace(4, 0, "en", "She has 9 and gets 4 more: 13 </think> <answer> 13 </answer>", 1.0, 0.5),
                ],
            )
            .await
            .unwrap();
        store.finish_attempt(a, "digest").await.unwrap();

        let running = id("d4");
        store
            .ensure_experiment(&running, "grpo", "zero/grpo-seed2", &grpo_spec(2, 0.002), 1, &[("model".into(), pretrain.clone())])
            .await
            .unwrap();
        let a = store.start_attempt(&running, &origin).await.unwrap();
        let mut points = Vec::new();
        for s in 0..4 {
            points.push(MetricPoint::new("reward", s, 0.2 + 0.05 * s as f64));
            points.push(MetricPoint::new("lang/mixed_rate", s, 0.3));
        }
        store.record_metrics(a, &points).await.unwrap();
        store.set_progress(a, 0.5).await.unwrap();
        store.close().await;
        a
    });
    Fixture {
        dir,
        db,
        experiments,
        running_attempt,
    }
}

pub struct Harness {
    pub app: App,
    pub backend: Backend,
    pub terminal: Terminal<TestBackend>,
    pub fixture: Fixture,
}

impl Harness {
    pub fn new(fixture: Fixture, width: u16, height: u16) -> Harness {
        let backend = Backend::new(WorkerConfig {
            db: fixture.db.clone().into(),
            lab_bin: PathBuf::from("/nonexistent/lab"),
            log_dir: fixture.dir.path().join("logs"),
        })
        .unwrap();
        let app = App::new(
            AppConfig {
                db: ".lab/lab.db".into(),
                experiments: fixture.experiments.clone(),
            },
            tui::time::now(),
        );
        let mut h = Harness {
            app,
            backend,
            terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
            fixture,
        };
        h.pump();
        h
    }

    /// Answers every queued request (processes are not started here: those requests are
    /// dropped), until the app asks nothing more.
    pub fn pump(&mut self) {
        for _ in 0..10 {
            let requests = self.app.take_requests();
            if requests.is_empty() {
                return;
            }
            for r in requests {
                if matches!(
                    r,
                    Request::DryRun { .. }
                        | Request::Launch { .. }
                        | Request::Rerun { .. }
                        | Request::Cancel { .. }
                ) {
                    continue;
                }
                for response in self.backend.handle(r) {
                    self.app.update(Action::Data(response));
                }
            }
        }
    }

    pub fn key(&mut self, code: KeyCode) {
        self.app
            .update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        self.pump();
    }

    pub fn chars(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    pub fn screen(&mut self) -> String {
        self.terminal.draw(|f| tui::ui::draw(&self.app, f)).unwrap();
        self.terminal.backend().to_string()
    }

    pub fn db(&self) -> &Path {
        &self.fixture.db
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.backend.close();
    }
}

/// Volatile parts of a screen: ids, clock times and durations.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"/tmp/\.tmp\w+", "[tmp]"),
        (r"\b[0-9a-f]{8,64}\b", "[id]"),
        (r"\d\d-\d\d \d\d:\d\d", "[MM-DD hh:mm]"),
        (r"\b\d+(\.\d)?s\b", "[dur]"),
        (r"\b\d+m\d\ds\b", "[dur]"),
    ]
}

/// The `lab` binary beside `lab-tui`, which `cargo test --workspace` builds. `None`, with a note,
/// where only the TUI was built; on CI, where it must be there, a failure.
pub fn lab_bin() -> Option<PathBuf> {
    let lab_bin = PathBuf::from(env!("CARGO_BIN_EXE_lab-tui")).with_file_name("lab");
    if lab_bin.exists() {
        return Some(lab_bin);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: CI runs `cargo test --workspace`, which builds it",
        lab_bin.display()
    );
    println!(
        "skipped: {} is not built (run `cargo build --workspace --bins` or `just test`)",
        lab_bin.display()
    );
    None
}

/// The repository's root, where the specs' relative paths start.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}
