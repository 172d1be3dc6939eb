//! End to end: the real `lab-tui` binary in tmux (send-keys / capture-pane) on a database made
//! by running the tiny specs with the real `lab` binary. Opens the runs, compares two runs'
//! curves, runs a SQL query, launches a tiny spec and watches it finish, quits cleanly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Session {
    name: String,
}

impl Session {
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
        std::thread::sleep(Duration::from_millis(150));
    }

    fn type_text(&self, text: &str) {
        assert!(self
            .tmux(&["send-keys", "-t", &self.name, "-l", text])
            .status
            .success());
        std::thread::sleep(Duration::from_millis(150));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &self.name]).stdout)
            .into_owned()
    }

    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.name])
            .status
            .success()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.alive() {
            let _ = self.tmux(&["kill-session", "-t", &self.name]);
        }
    }
}

fn lab(root: &Path, lab_bin: &Path, db: &Path, spec: &str) {
    let out = Command::new(lab_bin)
        .current_dir(root)
        .args([
            "--db".as_ref(),
            db.as_os_str(),
            "run".as_ref(),
            spec.as_ref(),
        ])
        .output()
        .expect("running lab");
    assert!(
        out.status.success(),
        "lab run {spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn has_braille(screen: &str) -> bool {
    screen
        .chars()
        .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
}

#[test]
fn drives_the_real_binary_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed (CI installs it)");
        return;
    }
    let tui_bin = PathBuf::from(env!("CARGO_BIN_EXE_lab-tui"));
    let Some(lab_bin) = common::lab_bin() else {
        return;
    };
    let root = common::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    for spec in [
        "experiments/tiny/world.toml",
        "experiments/tiny/base.toml",
        "experiments/tiny/r1-zero.toml",
    ] {
        lab(&root, &lab_bin, &db, spec);
    }

    let session = Session {
        name: format!("lab-tui-e2e-{}", std::process::id()),
    };
    let command = format!(
        "LAB_BIN='{}' '{}' --db '{}' --experiments experiments",
        lab_bin.display(),
        tui_bin.display(),
        db.display()
    );
    let out = session.tmux(&[
        "new-session",
        "-d",
        "-s",
        &session.name,
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        root.to_str().unwrap(),
        &command,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Runs: all seven experiments of the three tiny specs.
    session.wait_for("the runs", |s| {
        s.contains("tiny-r1-zero/grpo") && s.contains("7 runs")
    });

    // Compare: mark the pretrain and GRPO runs, open their curves.
    for name in ["tiny-pretrain", "r1-zero/grpo"] {
        session.keys(&["/"]);
        session.keys(&["C-u"]);
        session.type_text(name);
        session.keys(&["Enter"]);
        session.wait_for("the filter", |s| s.contains("1 runs"));
        session.keys(&["Space"]);
    }
    session.keys(&["/"]);
    session.keys(&["Escape"]);
    session.wait_for("both marked", |s| s.contains("2 marked"));
    session.keys(&["c"]);
    session.wait_for("a chart", |s| {
        s.contains("step") && s.contains("tiny-r1-zero") && has_braille(s)
    });
    // Both runs logged a loss: choose it and see two curves' legend.
    session.keys(&["/"]);
    session.type_text("loss");
    session.keys(&["Enter"]);
    session.keys(&["g"]);
    session.wait_for("both runs on loss", |s| {
        s.contains("tiny-pretrain") && s.contains("tiny-r1-zero") && has_braille(s)
    });

    // SQL: a query and its rows.
    session.keys(&["7"]);
    session.keys(&["C-u"]);
    session.type_text("SELECT name, kind FROM experiments ORDER BY name");
    session.keys(&["Enter"]);
    session.wait_for("the query's rows", |s| {
        s.contains("7 rows") && s.contains("tiny-world") && s.contains("recipe")
    });
    session.keys(&["Escape"]);

    // Launch: a new world (seed 7), see its planned id, launch it, watch it finish.
    session.keys(&["2"]);
    session.keys(&["/"]);
    session.type_text("tiny/world");
    session.keys(&["Enter"]);
    session.keys(&["o"]);
    session.type_text("seed=7");
    session.keys(&["Enter"]);
    session.wait_for("the dry run", |s| {
        s.contains("world tiny-world") && s.contains("not run")
    });
    session.keys(&["Enter"]);
    session.wait_for("the launch to finish", |s| {
        s.contains("finished") && s.contains("completed")
    });
    session.keys(&["1"]);
    session.wait_for("the new run in Runs", |s| s.contains("8 runs"));

    // Quit restores the terminal and ends the process.
    session.keys(&["q"]);
    let start = Instant::now();
    while session.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !session.alive(),
        "lab-tui did not quit:\n{}",
        session.screen()
    );
}
