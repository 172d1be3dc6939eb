//! The TUI's worker reads the store while eight `lab run` processes write to it: every answer
//! comes back, none says "database is locked", and the last one shows every run completed.
//! Each writer runs tiny worlds one after another for `LAB_CONCURRENCY_SECONDS` (at least one
//! each; `just soak` makes it minutes).

mod common;

use std::process::{Command, Stdio};

use tui::data::{Request, Response};
use tui::worker::{Backend, WorkerConfig};

#[test]
fn the_tui_reads_while_eight_runs_write() {
    let Some(lab_bin) = common::lab_bin() else {
        return;
    };
    let root = common::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let writers = 8;
    let seconds: u64 = std::env::var("LAB_CONCURRENCY_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let (lab_bin, root, db) = (lab_bin.clone(), root.clone(), db.clone());
            std::thread::spawn(move || {
                let mut runs = 0;
                loop {
                    let out = Command::new(&lab_bin)
                        .current_dir(&root)
                        .env_remove("LAB_DB")
                        .arg("--db")
                        .arg(&db)
                        .args([
                            "run",
                            "experiments/tiny/world.toml",
                            "--set",
                            &format!("seed={}", writer * 10_000 + runs),
                        ])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    runs += 1;
                    if std::time::Instant::now() >= deadline {
                        return runs;
                    }
                }
            })
        })
        .collect();

    let mut backend = Backend::new(WorkerConfig {
        db: db.clone().into(),
        lab_bin: lab_bin.clone(),
        log_dir: dir.path().join("logs"),
    })
    .unwrap();
    let read = |backend: &mut Backend| -> Vec<usize> {
        let mut runs = Vec::new();
        for request in [
            Request::Runs,
            Request::LangMix,
            Request::Sql("SELECT count(*) FROM metrics".into()),
        ] {
            for response in backend.handle(request) {
                match response {
                    Response::Error(e) | Response::Notice(e) => {
                        assert!(!e.contains("locked"), "the TUI saw: {e}");
                    }
                    // A moment before the first run has created the tables.
                    Response::Sql { result: Err(e), .. } if e.contains("being created") => {}
                    Response::Sql { result: Err(e), .. } => panic!("the SQL view failed: {e}"),
                    Response::Runs(list) => runs.push(
                        list.iter()
                            .filter(|r| r.status == Some(lab::store::AttemptStatus::Completed))
                            .count(),
                    ),
                    _ => {}
                }
            }
        }
        runs
    };
    let mut rounds_during_writes = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        if db.exists() {
            read(&mut backend);
            rounds_during_writes += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let runs: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("{writers} writers: {runs} runs in {seconds} s; the TUI read {rounds_during_writes} times alongside");
    let completed = read(&mut backend);
    assert_eq!(completed, vec![runs]);
    assert!(
        rounds_during_writes > 0,
        "the TUI never read while the runs wrote"
    );
    backend.close();
}
