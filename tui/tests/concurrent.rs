//! The TUI's worker reads the store while eight `lab run` processes write to it: every answer
//! comes back, none says "database is locked", and the last one shows every run completed.

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
    let mut children: Vec<_> = (0..writers)
        .map(|seed| {
            Command::new(&lab_bin)
                .current_dir(&root)
                .env_remove("LAB_DB")
                .arg("--db")
                .arg(&db)
                .args([
                    "run",
                    "experiments/tiny/world.toml",
                    "--set",
                    &format!("seed={seed}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    let mut backend = Backend::new(WorkerConfig {
        db: db.clone(),
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
                            .filter(|r| r.status.as_deref() == Some("completed"))
                            .count(),
                    ),
                    _ => {}
                }
            }
        }
        runs
    };
    let mut rounds_during_writes = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        if db.exists() {
            read(&mut backend);
            rounds_during_writes += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let completed = read(&mut backend);
    assert_eq!(completed, vec![writers]);
    assert!(
        rounds_during_writes > 0,
        "the TUI never read while the runs wrote"
    );
    backend.close();
}
