//! End-to-end tests: drive the built `lab` binary against temporary databases, as a user would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

const TINY_WORLD: &str = "experiments/tiny/world.toml";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A temporary database and a way to run `lab` against it: an SQLite file, or a PostgreSQL
/// database of its own with its objects in the temporary folder.
struct Lab {
    // Dropped before `dir`: a PostgreSQL database goes first, then the folder.
    postgres: Option<lab::store::testing::TestStore>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            postgres: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A lab on a fresh PostgreSQL database, when a server is named (see
    /// `lab::store::testing`); `None` skips, with a message, where none is.
    fn postgres() -> Option<Lab> {
        let server = lab::store::testing::postgres_server()?;
        let dir = tempfile::tempdir().unwrap();
        Some(Lab {
            postgres: Some(lab::store::testing::postgres_store(&server, dir.path())),
            dir,
        })
    }

    /// The folder of this lab's objects.
    fn objects(&self) -> PathBuf {
        match &self.postgres {
            Some(store) => store.location.objects.clone(),
            None => self.dir.path().join("lab.objects"),
        }
    }

    /// `--db` and `--objects` of this lab's store.
    fn store_args(&self) -> Vec<String> {
        match &self.postgres {
            Some(store) => store.location.cli_args(),
            None => vec!["--db".into(), self.db().display().to_string()],
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("lab.db")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("lab").unwrap();
        cmd.current_dir(repo_root())
            .env_remove("LAB_DB")
            .env_remove("LAB_THREADS")
            .env_remove("LAB_CRASH_AT")
            .env_remove("LAB_CRASH_TRACE")
            .env_remove("LAB_OBJECTS")
            .args(self.store_args())
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "lab {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// As [`Lab::ok`], but killed after `seconds`: for commands that wait on something else
    /// (a scheduler's jobs), so a stuck queue fails the test instead of hanging it.
    fn ok_within(&self, seconds: u64, args: &[&str]) -> Output {
        let out = self
            .cmd(args)
            .timeout(std::time::Duration::from_secs(seconds))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab {args:?} failed or ran past {seconds} s:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(!out.status.success(), "lab {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8(self.ok(args).stdout).unwrap()
    }

    fn sql(&self, query: &str) -> String {
        self.stdout(&["sql", "--csv", query])
    }

    fn write_spec(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

/// Runs `test` on a lab of every store there is: SQLite, and PostgreSQL when a server is named.
fn on_every_store(test: impl Fn(&Lab)) {
    test(&Lab::new());
    if let Some(pg) = Lab::postgres() {
        test(&pg);
    }
}

fn id_line(out: &str) -> String {
    let id = out.lines().next().unwrap().trim().to_string();
    assert_eq!(id.len(), 64, "expected an id, got {out:?}");
    id
}

#[test]
fn run_twice_reuses_and_rerun_reproduces() {
    on_every_store(|lab| {
        let first = lab.ok(&["run", TINY_WORLD]);
        let id = id_line(&String::from_utf8_lossy(&first.stdout));
        assert!(String::from_utf8_lossy(&first.stderr).contains("completed"));

        let second = lab.ok(&["run", TINY_WORLD]);
        assert_eq!(id_line(&String::from_utf8_lossy(&second.stdout)), id);
        assert!(String::from_utf8_lossy(&second.stderr).contains("reused"));
        assert_eq!(lab.sql("SELECT count(*) AS n FROM attempts"), "n\n1\n");

        let rerun = lab.stdout(&["rerun", &id[..10]]);
        assert!(rerun.contains("reproduced"), "{rerun}");
        assert_eq!(
            lab.sql("SELECT count(*) AS n FROM attempts WHERE status = 'completed'"),
            "n\n2\n"
        );
        let digests = lab.sql("SELECT count(DISTINCT result_digest) AS n FROM attempts");
        assert_eq!(digests, "n\n1\n");
    });
}

#[test]
fn world_run_stores_datasets_metrics_and_traces() {
    on_every_store(|lab| {
        let id = id_line(&lab.stdout(&["run", TINY_WORLD]));
        let artifacts = lab.sql("SELECT name, rows FROM artifacts ORDER BY name");
        for name in [
            "bench/easy-en",
            "bench/easy-zh",
            "bench/hard-en",
            "bench/hard-zh",
            "bench/ood-en",
            "bench/ood-zh",
        ] {
            assert!(artifacts.contains(&format!("{name},8")), "{artifacts}");
        }
        assert!(artifacts.contains("web,300"), "{artifacts}");
        assert!(artifacts.contains("train,100"), "{artifacts}");
        // Every artifact's file is in the object folder under its hash.
        let objects = lab.objects();
        for line in lab.sql("SELECT hash, path FROM artifacts").lines().skip(1) {
            let (hash, path) = line.split_once(',').unwrap();
            let bytes = std::fs::read(objects.join(path)).unwrap();
            assert_eq!(blake3::hash(&bytes).to_hex().as_str(), hash);
        }
        let docs = lab.sql("SELECT value FROM latest_metrics WHERE name = 'web/documents'");
        assert_eq!(docs, "value\n300\n");
        let traces = lab.sql("SELECT count(*) AS n FROM traces");
        let n: usize = traces.lines().nth(1).unwrap().parse().unwrap();
        assert!(n >= 12, "{traces}");

        let show = lab.stdout(&["show", &id[..8]]);
        assert!(
            show.contains("web/documents") && show.contains("bench/hard-zh"),
            "{show}"
        );
        let csv = lab.stdout(&["export", &id, "--what", "metrics"]);
        assert!(csv.starts_with("experiment,attempt,name,step,value\n"));
        assert!(csv.contains(",web/documents,0,300.0"), "{csv}");
        let jsonl = lab.stdout(&["export", &id, "--what", "traces", "--format", "jsonl"]);
        for line in jsonl.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["experiment"], id.as_str());
        }
        assert!(lab.stdout(&["ls"]).contains(&id[..12]));
        assert!(lab
            .stdout(&["ls", "--kind", "world", "--status", "completed"])
            .contains("tiny-world"));
        assert!(!lab
            .stdout(&["ls", "--status", "failed"])
            .contains("tiny-world"));
    });
}

#[test]
fn identity_ignores_order_comments_and_explicit_defaults_but_not_values() {
    let lab = Lab::new();
    let a = lab.write_spec(
        "a.toml",
        "kind = \"world\"\nseed = 5\nweb_documents = 300\n",
    );
    let b = lab.write_spec(
        "b.toml",
        "# same experiment, written differently\nweb_documents = 300 # docs\nseed = 5\nkind = \"world\"\nname = \"renamed\"\ntest_share = 0.1\n",
    );
    let c = lab.write_spec(
        "c.toml",
        "kind = \"world\"\nseed = 6\nweb_documents = 300\n",
    );
    let id_a = id_line(&lab.stdout(&["run", "--dry-run", &a]));
    let id_b = id_line(&lab.stdout(&["run", "--dry-run", &b]));
    let id_c = id_line(&lab.stdout(&["run", "--dry-run", &c]));
    assert_eq!(id_a, id_b);
    assert_ne!(id_a, id_c);
    let id_set = id_line(&lab.stdout(&["run", "--dry-run", &a, "--set", "seed=6"]));
    assert_eq!(id_set, id_c);
    // A dry run writes nothing.
    assert!(!lab.db().exists());
}

#[test]
fn bad_specs_are_rejected_with_the_key_and_nothing_is_written() {
    let lab = Lab::new();
    lab.ok(&["run", TINY_WORLD]);
    let before = lab.sql("SELECT * FROM experiments");
    let cases = [
        ("unknown.toml", "kind = \"world\"\nsed = 3\n", "sed"),
        ("type.toml", "kind = \"world\"\nseed = \"three\"\n", "seed"),
        (
            "negative.toml",
            "kind = \"world\"\nweb_documents = -5\n",
            "web_documents",
        ),
        (
            "share.toml",
            "kind = \"world\"\n[shares]\ntagged = 1.5\n",
            "shares.tagged",
        ),
        ("kind.toml", "kind = \"pretrian\"\n", "kind"),
        ("syntax.toml", "kind = \"world\n", "not valid TOML"),
    ];
    for (file, text, expected) in cases {
        let path = lab.write_spec(file, text);
        let err = lab.fails(&["run", &path]);
        assert!(err.contains(file), "{file}: {err}");
        assert!(
            err.contains(expected),
            "{file}: expected `{expected}` in {err}"
        );
    }
    let err = lab.fails(&["run", TINY_WORLD, "--set", "benchmark_size=0"]);
    assert!(err.contains("benchmark_size"), "{err}");
    assert_eq!(lab.sql("SELECT * FROM experiments"), before);
    assert_eq!(lab.sql("SELECT count(*) AS n FROM attempts"), "n\n1\n");
}

/// Statements that write, which `lab sql` refuses on every store.
const WRITES: [&str; 5] = [
    "DELETE FROM experiments",
    "UPDATE experiments SET name = 'x'",
    "INSERT INTO metrics VALUES (1, 'x', 0, 1.0)",
    "DROP TABLE metrics",
    "CREATE TABLE evil (x INTEGER)",
];

#[test]
fn sql_is_read_only() {
    let lab = Lab::new();
    lab.ok(&["run", TINY_WORLD]);
    let before = lab.sql("SELECT id, kind, name, spec FROM experiments");
    for write in WRITES {
        let err = lab.fails(&["sql", write]);
        assert!(
            err.contains("refused: lab sql only reads"),
            "{write}: {err}"
        );
    }
    assert_eq!(
        lab.sql("SELECT id, kind, name, spec FROM experiments"),
        before
    );
    let json = lab.stdout(&[
        "sql",
        "--json",
        "SELECT kind, json_extract(spec, '$.benchmark_size') AS size FROM experiments",
    ]);
    assert_eq!(json.trim(), r#"{"kind":"world","size":8}"#);
    let table = lab.stdout(&["sql", "SELECT name, status FROM runs"]);
    assert!(
        table.contains("tiny-world") && table.contains("(1 rows)"),
        "{table}"
    );
}

/// Hostile queries are refused or bounded, and the database is left as it was, byte for byte.
#[test]
fn sql_under_attack_is_refused_or_bounded() {
    let lab = Lab::new();
    lab.ok(&["run", TINY_WORLD]);
    let contents = "SELECT id, kind, name, spec FROM experiments";
    let before = lab.sql(contents);
    let file_before = std::fs::read(lab.db()).unwrap();
    let outside = lab.dir.path().join("outside.db");
    let outside_sql = outside.display().to_string().replace('\'', "''");
    for attack in [
        format!("ATTACH '{outside_sql}' AS other"),
        "ATTACH ':memory:' AS scratch".to_string(),
        format!("VACUUM INTO '{outside_sql}'"),
        "VACUUM".to_string(),
        "PRAGMA writable_schema = ON".to_string(),
        "PRAGMA query_only = OFF".to_string(),
        "PRAGMA journal_mode = DELETE".to_string(),
        "PRAGMA user_version = 7".to_string(),
        "SELECT load_extension('/tmp/evil.so')".to_string(),
        // A write hidden behind a harmless statement.
        "SELECT 1; DELETE FROM experiments".to_string(),
    ] {
        let err = lab.fails(&["sql", &attack]);
        assert!(
            err.contains("refused: lab sql only reads"),
            "{attack}: {err}"
        );
    }
    assert!(!outside.exists(), "ATTACH or VACUUM INTO created a file");

    // A query that never ends is interrupted at its deadline.
    let started = std::time::Instant::now();
    let err = lab.fails(&[
        "sql",
        "--timeout",
        "1",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
         SELECT count(*) FROM n",
    ]);
    assert!(err.contains("time limit"), "{err}");
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );

    // Millions of rows: the first --max-rows are kept, and the answer says it was cut.
    let out = lab
        .cmd(&[
            "sql",
            "--csv",
            "--max-rows",
            "1000",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 5000000) \
         SELECT i FROM n",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1001);
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept the first 1000 rows"));

    // One huge value is refused instead of taking the memory.
    let err = lab.fails(&["sql", "SELECT length(zeroblob(1000000000))"]);
    assert!(err.contains("too big"), "{err}");

    // Reading the schema still works.
    let columns = lab.sql("PRAGMA table_info(experiments)");
    assert!(columns.contains("spec"), "{columns}");
    let columns = lab.sql("SELECT name FROM pragma_table_info('experiments')");
    assert!(columns.contains("spec"), "{columns}");

    assert_eq!(lab.sql(contents), before);
    assert_eq!(lab.sql("PRAGMA integrity_check"), "integrity_check\nok\n");
    assert!(
        std::fs::read(lab.db()).unwrap() == file_before,
        "the database file changed"
    );
}

/// Eight writers on one database while `lab sql` reads it in a loop: no "database is locked",
/// no lost rows (every run stores the same number of metric points and data sets).
#[test]
fn eight_concurrent_runs_and_readers_all_succeed() {
    let lab = Lab::new();
    let writers = 8;
    // Each writer runs tiny worlds one after another for this long (at least one each);
    // `just soak` makes it minutes.
    let seconds: u64 = campaign_size("LAB_CONCURRENCY_SECONDS", 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let writer_threads: Vec<_> = (0..writers)
        .map(|writer| {
            let db = lab.db();
            std::thread::spawn(move || {
                let mut runs = 0u64;
                loop {
                    let seed = writer * 10_000 + runs;
                    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("lab"))
                        .current_dir(repo_root())
                        .arg("--db")
                        .arg(&db)
                        .args(["run", TINY_WORLD, "--set", &format!("seed={seed}")])
                        .output()
                        .unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        out.status.success(),
                        "writer {writer}, run {runs}: {stderr}"
                    );
                    assert!(!stderr.contains("locked"), "{stderr}");
                    runs += 1;
                    if std::time::Instant::now() >= deadline {
                        return runs;
                    }
                }
            })
        })
        .collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        let db = lab.db();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // The database appears with the first writer.
                if db.exists() {
                    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("lab"))
                        .arg("--db")
                        .arg(&db)
                        .args(["sql", "SELECT count(*) FROM metrics"])
                        .output()
                        .unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
                    assert!(!stderr.contains("locked"), "a reader saw: {stderr}");
                    reads += usize::from(out.status.success());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            reads
        })
    };
    let runs: u64 = writer_threads.into_iter().map(|t| t.join().unwrap()).sum();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 0, "the reader never read");
    eprintln!("{writers} writers: {runs} runs in {seconds} s, {reads} reads alongside");
    assert_eq!(
        lab.sql("SELECT count(*) AS n FROM attempts WHERE status = 'completed'"),
        format!("n\n{runs}\n")
    );
    let per_attempt = |table: &str| {
        lab.sql(&format!(
            "SELECT count(DISTINCT n) AS kinds, min(n) > 0 AS some, count(*) AS attempts FROM \
             (SELECT count(*) AS n FROM {table} GROUP BY attempt)"
        ))
    };
    assert_eq!(
        per_attempt("metrics"),
        format!("kinds,some,attempts\n1,1,{runs}\n")
    );
    assert_eq!(
        per_attempt("artifacts"),
        format!("kinds,some,attempts\n1,1,{runs}\n")
    );
}

/// The ids of the tiny specs, pinned. A change to the canonical encoding, a default or a numerics
/// version shows up here and must be deliberate (each kind's `StageKind::NUMERICS_VERSION` says
/// why it moved); a refactoring that changes none of them must leave these alone.
#[test]
fn tiny_spec_ids_are_pinned() {
    let lab = Lab::new();
    for (spec, id) in [
        (
            "world",
            "9c4b9d2e1987dfb26276be08ed1fe893d5c4e01a531042e4ad36a6523a128eb2",
        ),
        (
            "pretrain",
            "5b56b101fc382e0de0516d5dea2ad13508836fdce2d5e1e0436a516cbe91e665",
        ),
        (
            "base",
            "8826b3e5a861d0d16b5bf83b138e8937e7edd88ede366dd2f1dbcb6dae13e4a4",
        ),
        (
            "r1-zero",
            "52d5f01c758930828ffe91ca74abc63614fa40a73142a98d4af090cdb78d6f75",
        ),
        (
            "r1",
            "ede8819056b361a03d7e0982674aa7597800a2b6b7c0497dfb64cdf5991e36cb",
        ),
    ] {
        let path = format!("experiments/tiny/{spec}.toml");
        let out = lab.stdout(&["run", &path, "--dry-run"]);
        assert_eq!(id_line(&out), id, "{path}");
    }
}

/// Every shipped experiment resolves, and the paper recipe keeps the id its committed results
/// (`results/`, the README's findings) were computed under: a change to `experiments/` that
/// moves it must come with results regenerated by `lab results`.
#[test]
fn shipped_experiments_resolve_and_the_paper_keeps_its_results_id() {
    let lab = Lab::new();
    let dir = repo_root().join("experiments");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    specs.extend(
        std::fs::read_dir(dir.join("r1"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    assert!(specs.len() >= 15, "{specs:?}");
    for spec in &specs {
        let out = lab.stdout(&["run", "--dry-run", &spec.display().to_string()]);
        assert_eq!(id_line(&out).len(), 64, "{}: {out}", spec.display());
    }
    let paper = lab.stdout(&["run", "--dry-run", "experiments/paper.toml"]);
    assert_eq!(
        id_line(&paper),
        "455cba96c54af916236f09753eeb01e0851de2406a91a0249e087678ca178a57"
    );
    let results = std::fs::read_to_string(repo_root().join("results/findings.csv")).unwrap();
    assert!(
        results.contains(&id_line(&paper)),
        "results/ are of another paper id"
    );
}

#[test]
fn unknown_and_ambiguous_prefixes_are_explained() {
    on_every_store(|lab| {
        // Find two seeds whose ids share a first hex digit (17 ids must, by pigeonhole).
        let mut by_first: BTreeMap<char, Vec<u64>> = Default::default();
        let mut pair = None;
        for seed in 0..17u64 {
            let id = id_line(&lab.stdout(&[
                "run",
                "--dry-run",
                TINY_WORLD,
                "--set",
                &format!("seed={seed}"),
            ]));
            let seeds = by_first.entry(id.chars().next().unwrap()).or_default();
            seeds.push(seed);
            if seeds.len() == 2 {
                pair = Some((id.chars().next().unwrap(), seeds.clone()));
                break;
            }
        }
        let (first, seeds) = pair.expect("pigeonhole");
        for seed in &seeds {
            lab.ok(&["run", TINY_WORLD, "--set", &format!("seed={seed}")]);
        }
        let err = lab.fails(&["show", &first.to_string()]);
        assert!(err.contains("ambiguous"), "{err}");
        assert_eq!(
            err.matches("tiny-world").count(),
            2,
            "candidates listed: {err}"
        );
        let unknown = if first == '0' { "1" } else { "0" };
        let absent = format!("{unknown}{}", "0".repeat(20));
        let err = lab.fails(&["show", &absent]);
        assert!(err.contains("no experiment id starts with"), "{err}");
        let err = lab.fails(&["show", "xyz"]);
        assert!(err.contains("hex"), "{err}");
    });
}

#[test]
fn diff_shows_only_changed_settings() {
    on_every_store(|lab| {
        let a = id_line(&lab.stdout(&["run", TINY_WORLD]));
        let b = id_line(&lab.stdout(&[
            "run",
            TINY_WORLD,
            "--set",
            "seed=9",
            "--set",
            "shares.tagged=0.5",
        ]));
        let diff = lab.stdout(&["diff", &a[..12], &b[..12]]);
        assert!(diff.contains("seed: 0 → 9"), "{diff}");
        assert!(diff.contains("shares.tagged:"), "{diff}");
        assert!(!diff.contains("benchmark_size"), "{diff}");
        let same = lab.stdout(&["diff", &a, &a]);
        assert!(same.contains("identical"));
    });
}

#[test]
fn foreign_or_missing_databases_are_refused_untouched() {
    let lab = Lab::new();
    std::fs::write(lab.db(), b"this is not a database, it is a shopping list").unwrap();
    let err = lab.fails(&["run", TINY_WORLD]);
    assert!(err.contains("not an R1 Lab database"), "{err}");
    assert_eq!(
        std::fs::read(lab.db()).unwrap(),
        b"this is not a database, it is a shopping list"
    );
    let missing = Lab::new();
    let err = missing.fails(&["ls"]);
    assert!(err.contains("does not exist"), "{err}");
}

/// A pretrain spec on the tiny world with `steps` steps, written into the lab's folder.
fn tiny_pretrain_spec(lab: &Lab, steps: usize, checkpoint_every: usize) -> String {
    let world = repo_root().join(TINY_WORLD);
    lab.write_spec(
        "pretrain.toml",
        &format!(
            "kind = \"pretrain\"\ninputs.world = \"{}\"\nsteps = {steps}\nbatch_size = 4\nseq_len = 32\n\
             lr = 3e-3\nwarmup_steps = 2\nlog_every = 2\ncheckpoint_every = {checkpoint_every}\n\
             [model]\nd_model = 32\nn_layers = 2\nn_heads = 2\nd_ff = 64\nmax_seq_len = 96\n",
            world.display()
        ),
    )
}

/// A flipped byte in a checkpoint or a data set, or a missing object file: refused with an error
/// that names the experiment, the file and both hashes; nothing stored is lost, and restoring
/// the file lets the same runs go through.
#[test]
fn tampered_or_missing_objects_are_refused_naming_the_experiment() {
    let lab = Lab::new();
    let pretrain = tiny_pretrain_spec(&lab, 4, 2);
    let model_id = id_line(&lab.stdout(&["run", &pretrain]));
    let object = |sql: &str| {
        let path = lab.sql(sql).lines().nth(1).unwrap().to_string();
        lab.dir.path().join("lab.objects").join(path)
    };
    let checkpoint = object(
        "SELECT c.path FROM checkpoints c JOIN results r ON r.attempt = c.attempt \
         WHERE r.kind = 'pretrain' ORDER BY c.step DESC LIMIT 1",
    );
    let original = std::fs::read(&checkpoint).unwrap();
    let expected_hash = checkpoint
        .strip_prefix(lab.dir.path().join("lab.objects"))
        .unwrap()
        .to_string_lossy()
        .replace('/', "");
    let mut flipped = original.clone();
    let at = flipped.len() - 100; // inside the tensor data
    flipped[at] ^= 0x01;
    std::fs::write(&checkpoint, &flipped).unwrap();

    let generate = [
        "generate",
        &model_id,
        "--prompt",
        "Tom had 3 apples.",
        "-n",
        "1",
    ];
    let err = lab.fails(&generate);
    for needle in [
        &model_id[..],
        &expected_hash[..],
        "the tensors hash to",
        &checkpoint.display().to_string()[..],
    ] {
        assert!(err.contains(needle), "missing {needle:?} in: {err}");
    }

    // A stage downstream of the tampered model fails naming its input; the model's result stands.
    let eval = lab.write_spec(
        "eval.toml",
        &format!(
            "kind = \"eval\"\ninputs = {{ model = \"{pretrain}\", world = \"{}\" }}\n\
             benchmarks = [\"easy-en\"]\nproblems = 2\nsamples = 2\nmax_new_tokens = 8\n\
             promptings = [\"compact\"]\n",
            repo_root().join(TINY_WORLD).display()
        ),
    );
    let stood = lab.sql("SELECT experiment, attempt FROM results ORDER BY experiment");
    let err = lab.fails(&["run", &eval]);
    assert!(
        err.contains("input `model`") && err.contains(&model_id),
        "{err}"
    );
    assert!(err.contains("hash mismatch"), "{err}");
    assert_eq!(
        lab.sql("SELECT experiment, attempt FROM results ORDER BY experiment"),
        stood
    );
    assert_eq!(lab.sql("PRAGMA integrity_check"), "integrity_check\nok\n");

    // Restored, the same evaluation runs.
    std::fs::write(&checkpoint, &original).unwrap();
    lab.ok(&["run", &eval]);

    // A missing checkpoint file is named with its experiment.
    std::fs::remove_file(&checkpoint).unwrap();
    let err = lab.fails(&generate);
    assert!(err.contains(&model_id) && err.contains("missing"), "{err}");
    std::fs::write(&checkpoint, &original).unwrap();

    // A flipped byte in the world's corpus: a new pretraining on it is refused, naming both.
    let corpus = object(
        "SELECT a.path FROM artifacts a JOIN results r ON r.attempt = a.attempt \
         WHERE r.kind = 'world' AND a.name = 'web'",
    );
    let mut bytes = std::fs::read(&corpus).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&corpus, &bytes).unwrap();
    let longer = tiny_pretrain_spec(&lab, 6, 2);
    let err = lab.fails(&["run", &longer]);
    assert!(
        err.contains("input `world`") && err.contains("corrupt") && err.contains("hashes to"),
        "{err}"
    );
}

/// A small tmpfs, mounted for one test and unmounted however it ends.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// `None` (with the reason printed) where this process may not mount, i.e. not as root.
    fn mount(path: PathBuf, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(&path).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { path }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); the full-disk test needs root",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); the full-disk test needs root");
                None
            }
        }
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

/// The database and objects on a disk that fills up during pretraining: the run fails with the
/// OS's "no space" error naming the file, the database stays consistent and keeps the world, no
/// half-written object is left, and after space is freed the rerun resumes to the very result of
/// a run that never ran out.
#[test]
fn a_full_disk_fails_the_run_cleanly_and_a_rerun_resumes() {
    let lab = Lab::new();
    let Some(disk) = SmallDisk::mount(lab.dir.path().join("disk"), "1200k") else {
        return;
    };
    let db = disk.path.join("lab.db");
    let on_disk = |args: &[&str]| {
        let mut cmd = Command::cargo_bin("lab").unwrap();
        cmd.current_dir(repo_root())
            .env_remove("LAB_DB")
            .arg("--db")
            .arg(&db)
            .args(args)
            .output()
            .unwrap()
    };
    let pretrain = tiny_pretrain_spec(&lab, 8, 2);
    assert!(on_disk(&["run", TINY_WORLD]).status.success());
    let out = on_disk(&["run", &pretrain]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run fit on the small disk");
    assert!(
        err.contains("No space left on device") && err.contains(&disk.path.display().to_string()),
        "{err}"
    );
    let sql = |query: &str| String::from_utf8(on_disk(&["sql", "--csv", query]).stdout).unwrap();
    assert_eq!(sql("PRAGMA integrity_check"), "integrity_check\nok\n");
    assert_eq!(sql("SELECT kind FROM results"), "kind\nworld\n");
    // Removing the half-written object gave back the room to record the failure.
    assert_eq!(
        sql("SELECT status FROM attempts ORDER BY id"),
        "status\ncompleted\nfailed\n"
    );
    let leftovers = temporary_files(&disk.path);
    assert!(
        leftovers.is_empty(),
        "half-written objects left: {leftovers:?}"
    );

    disk.resize("32m");
    let out = on_disk(&["run", &pretrain]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = "SELECT a.result_digest FROM results r JOIN attempts a ON a.id = r.attempt \
                  WHERE r.kind = 'pretrain'";
    // The same spec on a disk with room from the start.
    lab.ok(&["run", &pretrain]);
    assert_eq!(sql(digest), lab.sql(digest));
}

/// Bytes under `dir`: the database, its WAL and the object folder.
fn bytes_under(dir: &Path) -> u64 {
    walk(dir)
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// The tiny R1-Zero recipe (world, pretrain, GRPO, eval) on disks of seeded random sizes, each
/// smaller than the run needs, so the disk fills at a different moment each round: during the
/// world's data sets, a checkpoint, a metrics flush, the WAL. Each round the run fails with an
/// error that names the lack of space, the database stays intact (or was never created), no
/// half-written object is left, and after the disk grows the rerun ends with every result
/// digest of a run that never ran out. `LAB_DISK_ROUNDS` rounds (default 2).
#[test]
fn full_disk_campaign_r1_zero_recipe() {
    let rounds: u64 = campaign_size("LAB_DISK_ROUNDS", 2);
    let spec = repo_root().join("experiments/tiny/r1-zero.toml");
    let spec = spec.display().to_string();
    let straight = Lab::new();
    straight.ok(&["run", &spec]);
    let expected = straight.sql(DIGESTS);
    let needed = bytes_under(straight.dir.path());
    let mut rng = lab::rng::Rng::derive(4, "full-disk-campaign");
    let mut failed_rounds = 0;
    for round in 0..rounds {
        let lab = Lab::new();
        // From 64 KiB to what a whole run leaves behind, in 4 KiB pages.
        let pages = 16 + rng.below((needed / 4096).saturating_sub(16).max(1));
        let Some(disk) = SmallDisk::mount(lab.dir.path().join("disk"), &format!("{}k", pages * 4))
        else {
            return;
        };
        let on_disk = Lab {
            postgres: None,
            dir: tempfile::tempdir_in(&disk.path).unwrap(),
        };
        let context = format!("round {round}, a disk of {} KiB", pages * 4);
        let out = on_disk.cmd(&["run", &spec]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // The run fitted after all (the tmpfs rounds up, SQLite reuses pages).
            continue;
        }
        failed_rounds += 1;
        assert!(
            err.contains("No space left on device") || err.contains("database or disk is full"),
            "{context}: {err}"
        );
        assert_intact_after_kill(&on_disk, &context);
        let leftovers = temporary_files(&disk.path);
        assert!(
            leftovers.is_empty(),
            "{context}: half-written objects left: {leftovers:?}"
        );
        disk.resize("64m");
        on_disk.ok(&["run", &spec]);
        assert_eq!(on_disk.sql(DIGESTS), expected, "{context}");
        assert_eq!(on_disk.sql(DUPLICATED_METRICS), "n\n0\n", "{context}");
        drop(on_disk);
    }
    eprintln!(
        "{failed_rounds} of {rounds} rounds ran out of space; a whole run needs {needed} bytes"
    );
    assert!(
        rounds == 0 || failed_rounds > 0,
        "no round ran out of space"
    );
}

/// Half-written objects under `dir` (an object is written to a `.tmp` file, then renamed).
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn base_recipe_runs_end_to_end_and_reuses_its_stages() {
    let lab = Lab::new();
    let first = lab.ok(&["run", "experiments/tiny/base.toml"]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert_eq!(stderr.matches("completed").count(), 4, "{stderr}");
    let evals = lab.sql("SELECT count(*) AS n FROM eval_results WHERE metric = 'pass@1'");
    assert_eq!(evals, "n\n6\n", "2 benchmarks x 3 promptings");
    let checkpoints = lab.sql("SELECT step FROM checkpoints ORDER BY step");
    assert_eq!(checkpoints, "step\n2\n4\n6\n");
    let losses = lab.sql("SELECT count(*) AS n FROM metric_points WHERE name = 'loss'");
    assert_eq!(losses, "n\n3\n");
    let traces = lab.sql("SELECT count(*) AS n FROM traces t JOIN attempts a ON a.id = t.attempt JOIN experiments e ON e.id = a.experiment WHERE e.kind = 'eval'");
    assert_ne!(traces, "n\n0\n");

    let second = lab.ok(&["run", "experiments/tiny/base.toml"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(stderr.matches("reused").count(), 4, "{stderr}");
    assert!(!stderr.contains("completed"), "{stderr}");

    let pretrain = lab.sql("SELECT id FROM experiments WHERE kind = 'pretrain'");
    let pretrain = pretrain.lines().nth(1).unwrap();
    let rerun = lab.stdout(&["rerun", &pretrain[..12]]);
    assert!(rerun.contains("reproduced"), "{rerun}");
    let sampled = lab.stdout(&[
        "generate",
        &pretrain[..12],
        "--prompt",
        "Tom had 3 apples.",
        "-n",
        "2",
        "--max-new-tokens",
        "5",
    ]);
    assert_eq!(sampled.matches("--- sample").count(), 2, "{sampled}");
}

#[test]
fn killed_pretraining_resumes_to_the_same_checkpoint() {
    let straight = Lab::new();
    let spec = tiny_pretrain_spec(&straight, 400, 20);
    straight.ok(&["run", &spec]);
    let expected = straight.sql("SELECT step, hash FROM checkpoints ORDER BY step DESC LIMIT 1");

    let killed = Lab::new();
    let spec = tiny_pretrain_spec(&killed, 400, 20);
    killed.ok(&["run", TINY_WORLD]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lab"))
        .current_dir(repo_root())
        .arg("--db")
        .arg(killed.db())
        .args(["run", &spec])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a first checkpoint is stored and before it finishes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = killed.sql("SELECT count(*) AS n FROM checkpoints");
        if n != "n\n0\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = killed.sql("SELECT max(step) AS s FROM checkpoints");
    assert_ne!(
        before, "s\n400\n",
        "the run finished before it could be killed"
    );

    let resumed = killed.ok(&["run", &spec]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(stderr.contains("resumed"), "{stderr}");
    assert_eq!(
        killed.sql("SELECT step, hash FROM checkpoints ORDER BY step DESC LIMIT 1"),
        expected
    );
    // One attempt, no duplicated metric points.
    assert_eq!(
        killed.sql("SELECT count(*) AS n FROM attempts WHERE status = 'completed'"),
        "n\n2\n"
    );
    assert_eq!(
        killed.sql("SELECT count(*) AS n FROM metric_points WHERE name = 'loss'"),
        "n\n200\n"
    );
    assert_eq!(
        killed.sql("SELECT group_concat(value) AS v FROM (SELECT value FROM metric_points WHERE name = 'loss' ORDER BY step)"),
        straight.sql("SELECT group_concat(value) AS v FROM (SELECT value FROM metric_points WHERE name = 'loss' ORDER BY step)")
    );
}

/// Every experiment's result digest (its standing attempt's), by experiment id.
const DIGESTS: &str = "SELECT r.experiment, a.result_digest FROM results r \
                       JOIN attempts a ON a.id = r.attempt ORDER BY r.experiment";
/// Metric points stored twice for one attempt, name and step.
const DUPLICATED_METRICS: &str = "SELECT count(*) AS n FROM (SELECT attempt, name, step \
                                  FROM metrics GROUP BY attempt, name, step HAVING count(*) > 1) AS d";

/// After a kill the database is intact: `PRAGMA integrity_check` passes and no metric point is
/// stored twice; or the kill came before the first run created the schema, and `lab sql` says
/// so (no file at all, or a file with no tables).
fn assert_intact_after_kill(lab: &Lab, context: &str) {
    if !lab.db().exists() {
        return;
    }
    let out = lab
        .cmd(&["sql", "--csv", "PRAGMA integrity_check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(
            stderr.contains("its first run stopped before creating them"),
            "{context}: {stderr}"
        );
        return;
    }
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "integrity_check\nok\n",
        "{context}"
    );
    assert_eq!(lab.sql(DUPLICATED_METRICS), "n\n0\n", "{context}");
}

/// How one run of a campaign ended.
enum Ending {
    /// It finished (before any kill reached it).
    Finished,
    /// It was killed; the text says where, for the failure messages.
    Killed(String),
}

/// Rounds of kills, each on a fresh database, until `kills` have landed. In a round `attempt`
/// runs `spec` once on the round's database (and may kill it), again and again, until a run
/// finishes or the last kill lands, and then a clean run finishes it. After every kill the
/// database is intact; after every round every experiment's result digest equals `expected`
/// (an unkilled run's), no metric point is stored twice, and no temporary object file is left
/// (the resumed run, writing the same objects again, removed what the killed writers left).
fn kill_rounds(
    spec: &str,
    kills: usize,
    expected: &str,
    mut attempt: impl FnMut(&Lab, usize) -> Ending,
) {
    let mut landed = 0;
    for round in 0.. {
        assert!(
            round <= 3 * kills,
            "{landed} of {kills} kills landed in {round} rounds"
        );
        let killed = Lab::new();
        loop {
            match attempt(&killed, landed) {
                Ending::Finished => break,
                Ending::Killed(place) => {
                    landed += 1;
                    assert_intact_after_kill(&killed, &format!("round {round}, {place}"));
                    if landed == kills {
                        killed.ok(&["run", spec]);
                        break;
                    }
                }
            }
        }
        assert_eq!(
            killed.sql(DIGESTS),
            expected,
            "round {round}, {landed} kills so far"
        );
        assert_eq!(killed.sql(DUPLICATED_METRICS), "n\n0\n");
        let leftovers = temporary_files(killed.dir.path());
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
        if landed == kills {
            return;
        }
    }
}

/// Kills `spec`'s run with SIGKILL `kills` times at seeded random moments (whatever is running
/// then), spread over the time an uninterrupted run takes here (see [`kill_rounds`]).
fn crash_campaign(spec: &str, kills: usize, seed: u64) {
    let straight = Lab::new();
    let started = std::time::Instant::now();
    straight.ok(&["run", spec]);
    let window_ms = (started.elapsed().as_millis() as u64).max(50);
    let expected = straight.sql(DIGESTS);
    let mut rng = lab::rng::Rng::derive(seed, "crash-campaign");
    kill_rounds(spec, kills, &expected, |killed, _| {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lab"))
            .current_dir(repo_root())
            .env_remove("LAB_CRASH_AT")
            .env_remove("LAB_CRASH_TRACE")
            .arg("--db")
            .arg(killed.db())
            .args(["run", spec])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let after_ms = 10 + rng.below(window_ms);
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        if let Some(status) = child.try_wait().unwrap() {
            // It finished before its kill, and must have finished well.
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "a run between kills failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return Ending::Finished;
        }
        let _ = child.kill();
        child.wait().unwrap();
        Ending::Killed(format!("killed after {after_ms} ms"))
    });
}

/// The durability points (see `lab::faults`) one run of `spec` passes through: for each stage
/// kind, each point with the number of times it is reached.
fn durability_points(lab: &Lab, spec: &str) -> BTreeMap<String, Vec<(String, u64)>> {
    let out = lab
        .cmd(&["run", spec])
        .env("LAB_CRASH_TRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut reached: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in stderr.lines() {
        if let Some(rest) = line.strip_prefix("crash point ") {
            let fields: Vec<&str> = rest.split(' ').collect();
            let [kind, point, n] = fields[..] else {
                panic!("unexpected trace line {line:?}")
            };
            let n: u64 = n.parse().unwrap();
            let count = reached.entry((kind.into(), point.into())).or_default();
            *count = (*count).max(n);
        }
    }
    let mut by_kind: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for ((kind, point), count) in reached {
        by_kind.entry(kind).or_default().push((point, count));
    }
    by_kind
}

/// Kills `spec`'s run `kills_per_kind` times inside every kind of stage it has, each time at a
/// chosen durability point: a checkpoint file written but not renamed, stored but not recorded,
/// a metrics, traces or evaluations transaction about to commit, a stage done but not marked
/// completed. Points are taken in turn, so a campaign of a few kills per kind covers them all,
/// and the occurrence is drawn at random; checks as in [`kill_rounds`]. Returns how many kills
/// landed at each `(kind, point)`.
fn forced_crash_campaign(
    spec: &str,
    kills_per_kind: usize,
    seed: u64,
) -> BTreeMap<(String, String), usize> {
    let straight = Lab::new();
    let points = durability_points(&straight, spec);
    let expected = straight.sql(DIGESTS);
    let mut rng = lab::rng::Rng::derive(seed, "forced-crash-campaign");
    let mut tally: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (kind_index, (kind, kind_points)) in points.iter().enumerate() {
        kill_rounds(spec, kills_per_kind, &expected, |killed, landed| {
            let (point, count) = &kind_points[(kind_index + landed) % kind_points.len()];
            let n = 1 + rng.below(*count);
            let at = format!("{kind}:{point}:{n}");
            let out = killed
                .cmd(&["run", spec])
                .env("LAB_CRASH_AT", &at)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                // A resumed run passes fewer points than a whole one: this one finished.
                return Ending::Finished;
            }
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&out.status),
                Some(9),
                "LAB_CRASH_AT={at}: the run failed instead of being killed: {stderr}"
            );
            assert!(
                stderr.contains(&format!("crashing at {kind} {point} {n}")),
                "{stderr}"
            );
            *tally.entry((kind.clone(), point.clone())).or_default() += 1;
            Ending::Killed(format!("LAB_CRASH_AT={at}"))
        });
    }
    tally
}

/// A campaign's size from the environment variable `name` (`just soak` sets them), or `default`.
fn campaign_size<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn crash_kills() -> usize {
    campaign_size("LAB_CRASH_KILLS", 4)
}

#[test]
fn crash_campaign_pretrain() {
    let lab = Lab::new();
    let spec = tiny_pretrain_spec(&lab, 300, 20);
    crash_campaign(&spec, crash_kills(), 1);
}

#[test]
fn crash_campaign_r1_zero_recipe() {
    let spec = repo_root().join("experiments/tiny/r1-zero.toml");
    crash_campaign(&spec.display().to_string(), crash_kills(), 2);
}

/// Every stage kind of the R1 recipe (world, pretrain, coldstart, sft, grpo, reject, eval and the
/// recipe itself) is killed at its durability points.
#[test]
fn forced_crash_campaign_r1_recipe() {
    let spec = repo_root().join("experiments/tiny/r1.toml");
    let kills_per_kind = campaign_size("LAB_FORCED_KILLS", 4);
    let tally = forced_crash_campaign(&spec.display().to_string(), kills_per_kind, 3);
    let kinds: std::collections::BTreeSet<&str> = tally.keys().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "coldstart",
            "eval",
            "grpo",
            "pretrain",
            "recipe",
            "reject",
            "sft",
            "world"
        ]
    );
    let per_kind = |kind: &str| -> usize {
        tally
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, n)| n)
            .sum()
    };
    for kind in [
        "coldstart",
        "eval",
        "grpo",
        "pretrain",
        "recipe",
        "reject",
        "sft",
        "world",
    ] {
        assert_eq!(per_kind(kind), kills_per_kind, "{kind}: {tally:?}");
    }
    let mut by_point: BTreeMap<&str, usize> = BTreeMap::new();
    for ((_, point), n) in &tally {
        *by_point.entry(point.as_str()).or_default() += n;
    }
    eprintln!("kills by stage kind and point: {tally:?}\nkills by point: {by_point:?}");
}

#[test]
fn sft_fine_tunes_a_checkpoint_on_world_problems() {
    let lab = Lab::new();
    let world = repo_root().join(TINY_WORLD);
    let spec = lab.write_spec(
        "sft.toml",
        &format!(
            "kind = \"recipe\"\n\
             [stages.pretrain]\nkind = \"pretrain\"\ninputs.world = \"{w}\"\nsteps = 2\nbatch_size = 2\nseq_len = 16\n\
             log_every = 1\ncheckpoint_every = 2\n\
             [stages.pretrain.model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nd_ff = 32\nmax_seq_len = 128\n\
             [stages.sft]\nkind = \"sft\"\ninputs = {{ model = \"@pretrain\", data = \"{w}\" }}\nsteps = 3\nbatch_size = 2\n\
             log_every = 1\ncheckpoint_every = 3\n",
            w = world.display()
        ),
    );
    lab.ok(&["run", &spec]);
    let sft = lab.sql("SELECT id FROM experiments WHERE kind = 'sft'");
    let sft = sft.lines().nth(1).unwrap().to_string();
    assert_eq!(
        lab.sql(&format!(
            "SELECT count(*) AS n FROM metric_points WHERE experiment = '{sft}' AND name = 'loss'"
        )),
        "n\n3\n"
    );
    let lineage = lab.sql(&format!(
        "SELECT role FROM lineage WHERE child = '{sft}' ORDER BY role"
    ));
    assert_eq!(lineage, "role\ndata\nmodel\n");
    assert!(lab.stdout(&["rerun", &sft[..12]]).contains("reproduced"));
}

/// `lab generate --hf` samples from a Hugging Face model directory without a database: the
/// prompt as a user turn of the model's chat template, opened with `<think>`. Greedy decoding
/// gives transformers' continuation (`tests/fixtures/hf/reference.json`, prompt 1) and stops
/// after `</answer>`.
#[test]
fn generate_from_a_hugging_face_directory() {
    let lab = Lab::new();
    let out = lab.stdout(&[
        "generate",
        "--hf",
        "tests/fixtures/hf/qwen2",
        "--prompt",
        "Solve 3*x = 12.",
        "--think",
        "--temperature",
        "0",
        "-n",
        "1",
        "--max-new-tokens",
        "8",
    ]);
    assert_eq!(out, "--- sample 0\n减四</answer>\n");
    assert!(!lab.db().exists(), "no database is made");
    let err = lab.fails(&[
        "generate",
        "--hf",
        "tests/fixtures/hf/missing",
        "--prompt",
        "x",
    ]);
    assert!(
        err.contains("tests/fixtures/hf/missing/config.json"),
        "{err}"
    );
    let err = lab.fails(&["generate", "--prompt", "x"]);
    assert!(err.contains("<ID>"), "{err}");
}

/// `lab facts` asks a stored model every fact of the set and prints one row per model, the same
/// on every call; bad ranges and unknown ids are named.
#[test]
fn facts_asks_a_model_its_arithmetic_and_names_bad_input() {
    let lab = Lab::new();
    let pretrain = tiny_pretrain_spec(&lab, 4, 2);
    let model_id = id_line(&lab.stdout(&["run", &pretrain]));
    let ask = [
        "facts",
        &model_id,
        "--count",
        "30",
        "--max-value",
        "40",
        "--max-operand",
        "12",
    ];
    let out = lab.stdout(&ask);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("model") && lines[0].contains("b ≥ 10"),
        "{out}"
    );
    let row = lines[2];
    assert!(row.contains(&model_id[..12]), "{out}");
    // Seven cells, each a share with its standard error, all within 0-100 %.
    let cells: Vec<f64> = row
        .split("  ")
        .filter_map(|c| c.trim().split(" ± ").next()?.parse().ok())
        .collect();
    assert_eq!(cells.len(), 7, "{out}");
    assert!(cells.iter().all(|p| (0.0..=100.0).contains(p)), "{out}");
    assert_eq!(
        lab.stdout(&ask),
        out,
        "greedy answers are the same on every call"
    );

    let err = lab.fails(&["facts", &model_id, "--max-operand", "1"]);
    assert!(err.contains("--max-operand 1"), "{err}");
    let err = lab.fails(&["facts", "ffffffffffff"]);
    assert!(err.contains("ffffffffffff"), "{err}");
}

#[test]
fn langmix_scores_messy_outputs_without_crashing() {
    let lab = Lab::new();
    let lines = [
        r#"{"prompt": "Tom had 3 apples. How many?", "completion": "<think> 3 + 4 = 7，所以他有 7 个 </think> <answer> 7 </answer>"}"#,
        r#"{"prompt": "小明有 3 个苹果。", "completion": "<think> 小明有 3 个，再买 4 个 </think> <answer> 7 </answer>"}"#,
        r#"{"prompt": "Solve", "completion": "\\frac{1}{2} 🙂 1,234 ＡＢＣ！<think unclosed"}"#,
    ];
    let file = lab.write_spec("outputs.jsonl", &lines.join("\n"));
    let table = lab.stdout(&["langmix", &file]);
    assert!(table.contains("3 completions"), "{table}");
    let json = lab.stdout(&["langmix", &file, "--json"]);
    let parsed: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed[0]["mixed"], true);
    assert_eq!(parsed[0]["target"], "en");
    assert_eq!(parsed[1]["mixed"], false);
    assert_eq!(parsed[1]["consistency"], 1.0);
    let forced = lab.stdout(&["langmix", &file, "--json", "--target", "zh"]);
    assert!(forced.lines().next().unwrap().contains("\"target\":\"zh\""));
    let err = lab.fails(&["langmix", &lab.write_spec("bad.jsonl", "{\"prompt\": 1}")]);
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn r1_zero_grpo_stores_metrics_traces_checkpoints_and_reproduces() {
    let lab = Lab::new();
    let out = lab.ok(&["run", "experiments/tiny/r1-zero.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("grpo"), "{stderr}");
    let grpo = lab.sql("SELECT id FROM experiments WHERE kind = 'grpo'");
    let grpo = grpo.lines().nth(1).unwrap().to_string();
    for metric in [
        "reward",
        "reward_std",
        "rewards/accuracy/mean",
        "rewards/format/mean",
        "frac_reward_zero_std",
        "completions/mean_length",
        "completions/clipped_ratio",
        "kl",
        "entropy",
        "clip_ratio/region_mean",
        "lang/consistency",
        "lang/mixed_rate",
        "collapse/top_answer_share",
        "learning_rate",
        "eval/easy-en/pass@1",
    ] {
        let n = lab.sql(&format!(
            "SELECT count(*) AS n FROM metric_points WHERE experiment = '{grpo}' AND name = '{metric}'"
        ));
        assert_ne!(n, "n\n0\n", "{metric} missing");
    }
    assert_eq!(
        lab.sql(&format!("SELECT count(*) AS n FROM metric_points WHERE experiment = '{grpo}' AND name = 'reward'")),
        "n\n4\n"
    );
    let traces = lab.sql(&format!(
        "SELECT count(*) AS n FROM traces t JOIN attempts a ON a.id = t.attempt WHERE a.experiment = '{grpo}' \
         AND json_extract(t.reward_parts, '$.advantage') IS NOT NULL"
    ));
    assert_ne!(traces, "n\n0\n");
    // The habits report reads those traces: one window per 2 steps, every traced completion.
    let habits = lab.stdout(&["habits", &grpo[..12], "--window", "2"]);
    let n_traced = lab.sql(&format!(
        "SELECT count(*) AS n FROM traces t JOIN attempts a ON a.id = t.attempt WHERE a.experiment = '{grpo}'"
    ));
    let n_traced: usize = n_traced.lines().nth(1).unwrap().parse().unwrap();
    let rows: Vec<&str> = habits
        .lines()
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    let counted: usize = rows
        .iter()
        .map(|r| {
            r.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, n_traced, "{habits}");
    assert!(
        habits.contains("worked share") && habits.contains("repair gain"),
        "{habits}"
    );
    assert!(lab
        .fails(&["habits", &grpo[..12], "--window", "0"])
        .contains("--window"));
    assert_eq!(
        lab.sql(&format!("SELECT step FROM checkpoints c JOIN attempts a ON a.id = c.attempt WHERE a.experiment = '{grpo}' ORDER BY step")),
        "step\n2\n4\n"
    );
    let rerun = lab.stdout(&["rerun", &grpo[..12]]);
    assert!(rerun.contains("reproduced"), "{rerun}");
    // The base model is shared with the base recipe by id.
    let base = lab.ok(&["run", "experiments/tiny/base.toml"]);
    assert!(String::from_utf8_lossy(&base.stderr).contains("reused"));
}

#[test]
fn dynamic_sampling_replaces_groups_and_reruns_exactly() {
    let lab = Lab::new();
    lab.ok(&[
        "run",
        "experiments/tiny/r1-zero.toml",
        "--set",
        "stages.grpo.dynamic_sampling=true",
    ]);
    let grpo = lab.sql("SELECT id FROM experiments WHERE kind = 'grpo'");
    let grpo = grpo.lines().nth(1).unwrap().to_string();
    // The untrained tiny model earns equal rewards in every group: each step looks for groups
    // in all its extra rounds.
    assert_eq!(
        lab.sql(&format!(
            "SELECT count(*) AS n FROM metric_points WHERE experiment = '{grpo}' \
             AND name = 'dynamic_sampling/extra_rounds' AND value = 3"
        )),
        "n\n4\n"
    );
    // Steps with no group left still evaluate and checkpoint on schedule.
    assert_eq!(
        lab.sql(&format!(
            "SELECT count(*) AS n FROM metric_points WHERE experiment = '{grpo}' \
             AND name = 'eval/easy-en/pass@1'"
        )),
        "n\n2\n"
    );
    assert_eq!(
        lab.sql(&format!("SELECT step FROM checkpoints c JOIN attempts a ON a.id = c.attempt WHERE a.experiment = '{grpo}' ORDER BY step")),
        "step\n2\n4\n"
    );
    let rerun = lab.stdout(&["rerun", &grpo[..12]]);
    assert!(rerun.contains("reproduced"), "{rerun}");
}

/// A GRPO number logged every second step is the mean of the two steps' numbers, as TRL logs;
/// the learning rate and gradient norm are the last step's. Training itself is the same run.
#[test]
fn grpo_metrics_are_averaged_over_the_log_interval() {
    let lab = Lab::new();
    let run = |log_every: &str| {
        lab.ok(&[
            "run",
            "experiments/tiny/r1-zero.toml",
            "--set",
            &format!("stages.grpo.log_every={log_every}"),
        ]);
        let id = lab.sql(&format!(
            "SELECT e.id FROM experiments e WHERE e.kind = 'grpo' AND \
             json_extract(e.spec, '$.log_every') = {log_every}"
        ));
        let id = id.lines().nth(1).unwrap().to_string();
        let rows = lab.sql(&format!(
            "SELECT name, step, value FROM metric_points WHERE experiment = '{id}' \
             AND name IN ('completions/mean_length', 'completions/max_length', \
             'rewards/format/mean', 'learning_rate', 'grad_norm') ORDER BY name, step"
        ));
        let mut values: BTreeMap<(String, i64), f64> = BTreeMap::new();
        for line in rows.lines().skip(1) {
            let mut cells = line.split(',');
            let name = cells.next().unwrap().to_string();
            let step: i64 = cells.next().unwrap().parse().unwrap();
            values.insert((name, step), cells.next().unwrap().parse().unwrap());
        }
        (id, values)
    };
    let (every_step, each) = run("1");
    let (every_second, pairs) = run("2");
    assert_ne!(every_step, every_second);
    let at = |values: &BTreeMap<(String, i64), f64>, name: &str, step: i64| {
        *values
            .get(&(name.to_string(), step))
            .unwrap_or_else(|| panic!("{name} at {step} missing: {values:?}"))
    };
    for step in [2, 4] {
        for name in [
            "completions/mean_length",
            "completions/max_length",
            "rewards/format/mean",
        ] {
            let mean = (at(&each, name, step - 1) + at(&each, name, step)) / 2.0;
            assert_eq!(at(&pairs, name, step), mean, "{name} at step {step}");
        }
        for name in ["learning_rate", "grad_norm"] {
            assert_eq!(at(&pairs, name, step), at(&each, name, step), "{name}");
        }
    }
    assert!(
        !pairs.keys().any(|(_, step)| step % 2 == 1),
        "nothing is logged between logs"
    );
    let checkpoints = |id: &str| {
        lab.sql(&format!(
            "SELECT c.step, c.hash FROM checkpoints c JOIN attempts a ON a.id = c.attempt \
             WHERE a.experiment = '{id}' ORDER BY c.step"
        ))
    };
    assert_eq!(checkpoints(&every_step), checkpoints(&every_second));
}

#[test]
fn thread_count_changes_no_metric_and_no_checkpoint() {
    // The tiny specs cut every training batch into micro-batches and every rollout into
    // chunks, so one thread and three threads share out the same work differently.
    let digests = |threads: &str| {
        let lab = Lab::new();
        let out = lab
            .cmd(&["run", "experiments/tiny/r1-zero.toml"])
            .env("LAB_THREADS", threads)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let checkpoints = lab.sql(
            "SELECT e.kind, c.step, c.hash FROM checkpoints c JOIN attempts a ON a.id = c.attempt \
             JOIN experiments e ON e.id = a.experiment ORDER BY e.kind, c.step",
        );
        let results = lab.sql(
            "SELECT e.kind, a.result_digest FROM attempts a JOIN experiments e ON e.id = a.experiment \
             WHERE e.kind != 'recipe' ORDER BY e.kind",
        );
        (checkpoints, results)
    };
    let one = digests("1");
    assert!(one.0.lines().count() > 4, "{}", one.0);
    assert_eq!(digests("3"), one);
}

#[test]
fn r1_recipe_reuses_stages_and_reruns_only_downstream_of_a_change() {
    on_every_store(|lab| {
        let first = lab.ok(&["run", "experiments/tiny/r1.toml"]);
        let stderr = String::from_utf8_lossy(&first.stderr);
        for kind in ["coldstart", "sft", "grpo", "reject", "eval", "recipe"] {
            assert!(stderr.contains(kind), "{kind} missing from: {stderr}");
        }
        let reject = lab.sql("SELECT name, value FROM latest_metrics WHERE experiment_name = 'tiny-r1/reject' AND name IN ('sampled', 'examples') ORDER BY name");
        assert!(reject.contains("sampled,8"), "{reject}");
        let lineage = lab.sql("SELECT count(*) AS n FROM lineage l JOIN experiments e ON e.id = l.child WHERE e.kind = 'recipe'");
        assert_eq!(lineage, "n\n8\n", "a recipe has one edge per stage");

        // Nothing new runs the second time.
        let again = lab.ok(&["run", "experiments/tiny/r1.toml"]);
        assert!(!String::from_utf8_lossy(&again.stderr).contains("completed"));

        // Changing the RL stage reruns it and everything downstream, nothing upstream.
        let changed = lab.ok(&[
            "run",
            "experiments/tiny/r1.toml",
            "--set",
            "stages.rl.lr=3e-5",
        ]);
        let report = String::from_utf8_lossy(&changed.stderr);
        let line = |name: &str| {
            report
                .lines()
                .find(|l| l.contains(&format!("tiny-r1/{name} (")))
                .unwrap_or_else(|| panic!("no line for {name} in {report}"))
                .to_string()
        };
        for upstream in ["coldstart", "coldstart-sft"] {
            assert!(line(upstream).contains("reused"), "{upstream}: {report}");
        }
        for downstream in ["rl", "reject", "sft", "final-rl", "eval"] {
            assert!(
                line(downstream).contains("completed"),
                "{downstream}: {report}"
            );
        }
    });
}

#[test]
fn table_prints_the_comparison_in_three_formats() {
    let lab = Lab::new();
    lab.ok(&["run", "experiments/tiny/base.toml"]);
    let text = lab.stdout(&["table"]);
    assert!(
        text.contains("base") && text.contains("easy-en pass@1"),
        "{text}"
    );
    let csv = lab.stdout(&["table", "--csv"]);
    assert!(
        csv.starts_with("model,experiment,benchmark,prompting,metric,k,value,stderr\n"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("base,") && l.contains(",easy-zh,compact,pass@1,2,")),
        "{csv}"
    );
    let markdown = lab.stdout(&["table", "--markdown"]);
    assert!(markdown.contains("| base |"), "{markdown}");
}

#[test]
fn recipe_ids_from_a_dry_run_match_the_run() {
    let lab = Lab::new();
    let planned = id_line(&lab.stdout(&["run", "--dry-run", "experiments/tiny/r1-zero.toml"]));
    let again = id_line(&lab.stdout(&["run", "--dry-run", "experiments/tiny/r1-zero.toml"]));
    assert_eq!(planned, again);
    let out = lab.ok(&["run", "experiments/tiny/r1-zero.toml"]);
    assert_eq!(id_line(&String::from_utf8_lossy(&out.stdout)), planned);
    // The run ends with its evaluation in the paper's table shape.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("easy-en pass@1"), "{stderr}");
    // With the database present, a dry run knows it is done.
    let done = lab
        .cmd(&["run", "--dry-run", "experiments/tiny/r1-zero.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&done.stderr).contains("completed"));
}

#[test]
fn a_nested_paper_recipe_ends_with_its_findings_and_writes_results() {
    let lab = Lab::new();
    // The tiny recipes, copied so that R1-Zero's recipe carries the name its label comes from.
    let tiny = lab.dir.path().join("tiny");
    std::fs::create_dir(&tiny).unwrap();
    for entry in std::fs::read_dir(repo_root().join("experiments/tiny")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("name = \"tiny-r1-zero\"", "name = \"r1-zero\"");
        std::fs::write(tiny.join(path.file_name().unwrap()), text).unwrap();
    }
    let paper = tiny.join("paper.toml");
    std::fs::write(
        &paper,
        "kind = \"recipe\"\nname = \"paper\"\n[stages]\nbase = \"base.toml\"\nr1-zero = \"r1-zero.toml\"\n",
    )
    .unwrap();
    let paper = paper.display().to_string();
    let run = lab.ok(&["run", &paper]);
    let id = id_line(&String::from_utf8(run.stdout).unwrap());
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(stderr.contains("RL gate of `base`"), "{stderr}");
    assert!(stderr.contains("CoT beats standard prompting"), "{stderr}");
    assert!(stderr.contains("thinking gets longer under RL"), "{stderr}");
    assert!(stderr.contains("majority vote helps"), "{stderr}");
    // The base model is one experiment, shared by both nested recipes.
    let pretrains = lab.sql("SELECT count(*) FROM experiments WHERE kind = 'pretrain'");
    assert_eq!(pretrains.lines().nth(1), Some("1"), "{pretrains}");

    let csv = lab.stdout(&["findings", &id[..10], "--csv"]);
    assert!(
        csv.starts_with("section,check,verdict,measured,goal,experiments\n"),
        "{csv}"
    );
    let length = csv
        .lines()
        .find(|l| l.contains("thinking gets longer"))
        .unwrap();
    assert!(
        length.contains(",holds,") || length.contains(",short,"),
        "{length}"
    );

    let readme = lab.write_spec(
        "README.md",
        "# Notes\n<!-- results:begin -->\nold\n<!-- results:end -->\ntail\n",
    );
    let results = lab.dir.path().join("results");
    let results_arg = results.display().to_string();
    lab.ok(&["results", &results_arg, &id[..10], "--readme", &readme]);
    for file in ["findings.md", "findings.csv", "table.csv", "lengths.csv"] {
        assert!(results.join(file).exists(), "{file} missing");
    }
    let table = std::fs::read_to_string(results.join("table.csv")).unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{id},r1-zero,"))),
        "{table}"
    );
    let updated = std::fs::read_to_string(&readme).unwrap();
    assert!(!updated.contains("old") && updated.ends_with("<!-- results:end -->\ntail\n"));
    assert!(
        updated.contains("| thinking gets longer under RL |"),
        "{updated}"
    );
    // The same chain with R1-Zero evaluated at 3 samples: a new paper recipe on the same RL
    // model, whose table shows its own evaluation of R1-Zero and not the first recipe's; the
    // base model's evaluations, from the shared base recipe, stay.
    let r1_zero = tiny.join("r1-zero.toml");
    let text = std::fs::read_to_string(&r1_zero).unwrap();
    let eval_block = text.find("[stages.eval]").unwrap();
    let (head, tail) = text.split_at(eval_block);
    std::fs::write(
        &r1_zero,
        format!("{head}{}", tail.replacen("samples = 2", "samples = 3", 1)),
    )
    .unwrap();
    let second = id_line(&lab.stdout(&["run", &paper]));
    assert_ne!(second, id);
    lab.ok(&["results", &results_arg, &second[..10]]);
    let table = std::fs::read_to_string(results.join("table.csv")).unwrap();
    let ks: std::collections::BTreeSet<&str> = table
        .lines()
        .filter(|l| l.starts_with(&format!("{second},r1-zero,")) && l.contains(",pass@1,"))
        .map(|l| l.split(',').nth(6).unwrap())
        .collect();
    assert!(ks.contains("3") && !ks.contains("2"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{second},base,"))),
        "{table}"
    );
    // A model id is not a recipe.
    let pretrain = lab.sql("SELECT id FROM experiments WHERE kind = 'pretrain'");
    let pretrain = pretrain.lines().nth(1).unwrap();
    let err = lab.fails(&["results", &results_arg, &pretrain[..12]]);
    assert!(err.contains("takes recipe ids"), "{err}");
}

/// `lab report` of a recipe: a page that opens without the network, every figure as SVG and PNG
/// naming the experiments it came from, the runs, the findings section and the traces.
#[test]
fn report_of_a_recipe_writes_a_page_and_its_figures() {
    let lab = Lab::new();
    let recipe = id_line(&lab.stdout(&["run", "experiments/tiny/r1-zero.toml"]));
    let out = lab.dir.path().join("report");
    let printed = lab.stdout(&["report", &recipe[..10], "--out", &out.display().to_string()]);
    assert_eq!(printed.trim(), out.join("index.html").display().to_string());
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    let grpo = lab.sql("SELECT id FROM experiments WHERE kind = 'grpo'");
    let grpo = grpo.lines().nth(1).unwrap();
    for figure in [
        "reward",
        "accuracy",
        "held-out-easy-en",
        "completion-length",
        "language-mixing",
        "kl",
        "clip-ratio",
        "loss",
    ] {
        assert!(
            page.contains(&format!("<figure id=\"fig-{figure}\">")),
            "{figure}"
        );
        let svg = std::fs::read_to_string(out.join(format!("figures/{figure}.svg"))).unwrap();
        assert!(svg.contains("<polyline"), "{figure} draws a curve");
        let png = std::fs::read(out.join(format!("figures/{figure}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{figure}");
    }
    // The RL curves name the GRPO run in their captions, the loss names the pretraining.
    let caption = |figure: &str| -> String {
        let start = page.find(&format!("<figure id=\"fig-{figure}\">")).unwrap();
        let end = start + page[start..].find("</figure>").unwrap();
        let figure_html = &page[start..end];
        figure_html[figure_html.find("<figcaption>").unwrap()..].to_string()
    };
    assert!(caption("completion-length").contains(grpo));
    let pretrain = lab.sql("SELECT id FROM experiments WHERE kind = 'pretrain'");
    assert!(caption("loss").contains(pretrain.lines().nth(1).unwrap()));
    assert!(page.contains("<section id=\"findings\">") && page.contains("<section id=\"traces\">"));
    assert!(page.contains("class=\"trace\""), "traces are shown");
    assert!(
        page.contains("Models × benchmarks"),
        "the recipe's evaluation table"
    );
    // Self-contained: nothing is fetched when it is viewed.
    for external in ["<script", "<link", "src=\"http", "url("] {
        assert!(!page.contains(external), "{external}");
    }

    // An unknown id is named; a store with nothing completed has nothing to report.
    let err = lab.fails(&["report", "ffffff", "--out", &out.display().to_string()]);
    assert!(err.contains("ffffff"), "{err}");
    let empty = Lab::new();
    empty.ok(&["run", TINY_WORLD, "--dry-run"]);
    let err = empty.fails(&["report", "--out", &out.display().to_string()]);
    assert!(
        err.contains("does not exist") || err.contains("nothing to report"),
        "{err}"
    );
}

/// The report as a person sees it: headless Chromium renders the page; the screenshot is not
/// blank and shows the curves in their colours, and the rendered DOM holds every figure, the
/// tables and the traces. Chromium is Debian's package (`.ci/run` installs it); without it the
/// test says SKIPPED, except on CI, where it fails.
#[test]
fn report_renders_in_a_browser() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing on CI: .ci/run installs it"
        );
        eprintln!("SKIPPED: no chromium here (apt-get install chromium)");
        return;
    };
    let lab = Lab::new();
    let recipe = id_line(&lab.stdout(&["run", "experiments/tiny/r1-zero.toml"]));
    let out = lab.dir.path().join("report");
    lab.ok(&["report", &recipe, "--out", &out.display().to_string()]);
    let url = format!("file://{}", out.join("index.html").display());
    let shot = lab.dir.path().join("shot.png");
    let browser = |args: &[&str]| {
        let out = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .arg(format!(
                "--user-data-dir={}",
                lab.dir.path().join("chromium").display()
            ))
            .args(args)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    browser(&[
        "--window-size=1100,2400",
        &format!("--screenshot={}", shot.display()),
    ]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (1100, 2400));
    let channels = info.line_size / info.width as usize;
    let rgb: Vec<(u8, u8, u8)> = pixels[..info.buffer_size()]
        .chunks(channels)
        .map(|p| (p[0], p[1], p[2]))
        .collect();
    let inked = rgb
        .iter()
        .filter(|&&(r, g, b)| r < 200 || g < 200 || b < 200)
        .count();
    assert!(
        inked * 100 > rgb.len(),
        "the page looks blank: {inked} of {} pixels inked",
        rgb.len()
    );
    // The first curve's colour (the palette's first), drawn by the browser from the inline SVG.
    let (r, g, b) = lab::report::figure::PALETTE[0];
    let near = |(pr, pg, pb): (u8, u8, u8)| {
        pr.abs_diff(r) < 12 && pg.abs_diff(g) < 12 && pb.abs_diff(b) < 12
    };
    let curve_pixels = rgb.iter().filter(|&&p| near(p)).count();
    assert!(
        curve_pixels > 200,
        "{curve_pixels} pixels of the first curve's colour"
    );

    let dom = String::from_utf8(browser(&["--dump-dom"]).stdout).unwrap();
    let figures = std::fs::read_dir(out.join("figures")).unwrap().count() / 2;
    assert_eq!(
        dom.matches("<figure ").count(),
        figures,
        "every figure is in the page"
    );
    assert!(figures >= 8, "{figures} figures");
    assert_eq!(dom.matches("<svg").count(), figures);
    assert!(
        dom.matches("<table").count() >= 2,
        "runs and results tables"
    );
    assert!(dom.contains("class=\"trace\""));
}

/// `lab plan` stores the experiments a recipe needs without running them and prints their ids,
/// inputs first; `lab exec` of each in that order runs the recipe to the very results of
/// `lab run`. A node whose inputs are not done is refused naming the input; a done one is
/// reused; the dry run lists what the spec needs.
#[test]
fn a_plan_executed_node_by_node_gives_the_results_of_a_run() {
    let spec = "experiments/tiny/r1-zero.toml";
    let whole = Lab::new();
    let root = id_line(&whole.stdout(&["run", spec]));

    let lab = Lab::new();
    let dry = lab.cmd(&["run", spec, "--dry-run"]).output().unwrap();
    let listed = String::from_utf8_lossy(&dry.stderr).to_string();
    assert_eq!(listed.matches("  needs ").count(), 4, "{listed}");
    assert!(
        listed.lines().last().unwrap().ends_with("(not run)"),
        "{listed}"
    );

    let planned = lab.stdout(&["plan", spec]);
    let ids: Vec<&str> = planned.lines().collect();
    assert_eq!(
        ids.len(),
        5,
        "world, pretrain, grpo, eval, recipe: {planned}"
    );
    assert_eq!(*ids.last().unwrap(), root);
    assert_eq!(
        lab.sql("SELECT count(*) AS n FROM attempts"),
        "n\n0\n",
        "planning runs nothing"
    );
    // The pretraining needs the world first.
    let err = lab.fails(&["exec", &ids[1][..12]]);
    assert!(
        err.contains("input `world`") && err.contains("not completed"),
        "{err}"
    );
    for id in &ids {
        let out = lab.ok(&["exec", id]);
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "completed");
    }
    assert_eq!(lab.sql(DIGESTS), whole.sql(DIGESTS));
    let again = lab.ok(&["exec", ids[2]]);
    assert_eq!(String::from_utf8_lossy(&again.stderr).trim(), "reused");
}

/// The same recipe on PostgreSQL gets the ids and the results it gets on SQLite, and a person's
/// SQL there is read-only and bounded as it is on SQLite.
#[test]
fn postgres_holds_what_sqlite_holds_and_its_sql_only_reads() {
    let Some(pg) = Lab::postgres() else {
        return;
    };
    let spec = "experiments/tiny/r1-zero.toml";
    let sqlite = Lab::new();
    let root = id_line(&sqlite.stdout(&["run", spec]));
    assert_eq!(id_line(&pg.stdout(&["run", spec])), root);
    assert_eq!(pg.sql(DIGESTS), sqlite.sql(DIGESTS));
    let views = "SELECT model, benchmark, prompting, metric, k, value FROM model_results \
                 ORDER BY model, benchmark, prompting, metric, k";
    assert_eq!(pg.sql(views), sqlite.sql(views));
    // A second run reuses every stage; `show`, `table` and `rerun` read the same store.
    let again = pg.ok(&["run", spec]);
    assert_eq!(
        String::from_utf8_lossy(&again.stderr)
            .matches("reused")
            .count(),
        5
    );
    assert!(pg.stdout(&["show", &root[..10]]).contains("tiny-r1-zero"));
    assert_eq!(pg.stdout(&["table"]), sqlite.stdout(&["table"]));
    let grpo = pg.sql("SELECT id FROM experiments WHERE kind = 'grpo'");
    let grpo = grpo.lines().nth(1).unwrap();
    assert!(pg.stdout(&["rerun", grpo]).contains("reproduced: attempt"));

    let before = pg.sql("SELECT id, kind, name, spec FROM experiments ORDER BY id");
    for write in WRITES.into_iter().chain([
        "COPY metrics TO '/tmp/lab-evil.csv'",
        "SELECT 1; DELETE FROM experiments",
        "WITH gone AS (DELETE FROM metrics RETURNING 1) SELECT count(*) FROM gone",
        "COMMIT",
    ]) {
        let err = pg.fails(&["sql", write]);
        assert!(
            err.contains("refused: lab sql only reads"),
            "{write}: {err}"
        );
    }
    assert_eq!(
        pg.sql("SELECT id, kind, name, spec FROM experiments ORDER BY id"),
        before
    );
    let json = pg.stdout(&[
        "sql",
        "--json",
        "SELECT kind, CAST(spec AS JSONB) -> 'benchmark_size' AS size FROM experiments \
         WHERE kind = 'world'",
    ]);
    assert_eq!(json.trim(), r#"{"kind":"world","size":"8"}"#);
    let err = pg.fails(&[
        "sql",
        "--timeout",
        "1",
        "SELECT count(*) FROM generate_series(1, 10000000000)",
    ]);
    assert!(err.contains("time limit"), "{err}");
    let out = pg
        .cmd(&[
            "sql",
            "--csv",
            "--max-rows",
            "1000",
            "SELECT i FROM generate_series(1, 5000000) AS i",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1001);
    // Numbers and times show as SQLite would show them; other types are asked to be cast.
    assert_eq!(
        pg.sql(
            "SELECT avg(k) AS a, CAST('2026-12-05 07:40:01.5+00' AS TIMESTAMPTZ) AS t \
             FROM evaluations WHERE k = 2"
        ),
        "a,t\n2,2026-12-05T07:40:01.500000Z\n"
    );
    let err = pg.fails(&["sql", "SELECT interval '1 day' AS i"]);
    assert!(err.contains("INTERVAL") && err.contains("AS TEXT"), "{err}");

    // A database that holds another program's tables is refused, and left untouched.
    let foreign = Lab::postgres().unwrap();
    let url = foreign.store_args()[1].clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tables = |sql: &'static str| {
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap();
            names
        })
    };
    tables("CREATE TABLE accounts (id BIGINT)");
    let err = foreign.fails(&["run", TINY_WORLD]);
    assert!(
        err.contains("not an R1 Lab database") && err.contains("accounts"),
        "{err}"
    );
    assert_eq!(
        tables(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
             WHERE table_schema = current_schema()"
        ),
        ["accounts"]
    );
}

/// Whether a Slurm cluster answers here (`just test` starts a one-node one); without one the
/// Slurm tests skip with a message, unless servers are required (CI).
fn slurm_cluster() -> bool {
    let answers = std::process::Command::new("sinfo")
        .args(["--noheader", "--format=%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !answers {
        assert!(
            !lab::store::testing::servers_required(),
            "{}=1 but no Slurm cluster answers (sinfo)",
            lab::store::testing::REQUIRE_ENV
        );
        eprintln!("skipping Slurm: no cluster answers (`just test` starts one)");
    }
    answers
}

fn job_queued(job: &str) -> bool {
    let out = std::process::Command::new("squeue")
        .args(["--noheader", "--format=%T", "--jobs", job])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// The tiny R1 recipe through Slurm against PostgreSQL: every stage a job that starts after its
/// inputs' jobs ended, with the results of a local run; a second submission reuses everything and submits
/// nothing; a cancelled job leaves its attempt to be marked interrupted, and the next run
/// resumes it from its checkpoint in a new job.
#[test]
fn a_recipe_runs_through_slurm_one_job_per_stage() {
    if !slurm_cluster() {
        return;
    }
    let Some(pg) = Lab::postgres() else {
        return;
    };
    let spec = "experiments/tiny/r1.toml";
    let out = pg.ok_within(300, &["run", spec, "--executor", "slurm", "--wait"]);
    let root = id_line(&String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let submitted: Vec<&str> = stderr.lines().filter(|l| l.contains(": job ")).collect();
    assert_eq!(
        submitted.len(),
        10,
        "world, pretrain, cold start, its SFT, RL, rejection sampling, SFT, final RL, eval, \
         recipe:\n{stderr}"
    );
    // The world has no job to wait for; every other stage waits for its inputs' jobs.
    assert!(!submitted[0].contains(" after "), "{stderr}");
    assert!(
        submitted[1..].iter().all(|l| l.contains(" after ")),
        "{stderr}"
    );
    assert_eq!(
        pg.sql(
            "SELECT count(*) AS n FROM attempts a JOIN jobs j ON a.experiment = j.experiment \
             AND a.job = 'slurm:' || j.job WHERE a.status = 'completed'"
        ),
        "n\n10\n",
        "each attempt ran in the job submitted for it"
    );
    assert_eq!(
        pg.sql(
            "SELECT count(*) AS n FROM lineage l \
             JOIN results rc ON rc.experiment = l.child JOIN attempts c ON c.id = rc.attempt \
             JOIN results rp ON rp.experiment = l.parent JOIN attempts p ON p.id = rp.attempt \
             WHERE c.started_at < p.ended_at"
        ),
        "n\n0\n",
        "no stage started before an input of it ended"
    );
    let local = Lab::new();
    assert_eq!(id_line(&local.stdout(&["run", spec])), root);
    assert_eq!(pg.sql(DIGESTS), local.sql(DIGESTS));

    let again = pg.ok_within(300, &["run", spec, "--executor", "slurm", "--wait"]);
    let stderr = String::from_utf8_lossy(&again.stderr).to_string();
    assert_eq!(stderr.matches("completed, reused").count(), 10, "{stderr}");
    assert_eq!(pg.sql("SELECT count(*) AS n FROM jobs"), "n\n10\n");

    // A long pretraining, cancelled in its job once it stored a checkpoint.
    let long = tiny_pretrain_spec(&pg, 400, 20);
    let out = pg.ok(&["run", &long, "--executor", "slurm"]);
    let model = id_line(&String::from_utf8_lossy(&out.stdout));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while pg.sql(&format!(
        "SELECT count(*) AS n FROM checkpoints c JOIN attempts a ON a.id = c.attempt \
         WHERE a.experiment = '{model}'"
    )) == "n\n0\n"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let attempt = |column: &str| {
        pg.sql(&format!(
            "SELECT {column} FROM attempts WHERE experiment = '{model}' ORDER BY id"
        ))
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let first_job = attempt("job")[0].trim_start_matches("slurm:").to_string();
    let cancelled = pg.stdout(&["cancel", &model[..12]]);
    assert!(
        cancelled.contains(&format!("cancelled Slurm job {first_job}")),
        "{cancelled}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while job_queued(&first_job) {
        assert!(
            std::time::Instant::now() < deadline,
            "the job outlived scancel"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(attempt("status"), ["running"], "nobody has looked yet");
    assert_ne!(
        pg.sql("SELECT max(step) AS s FROM checkpoints"),
        "s\n400\n",
        "the job finished before it was cancelled"
    );

    let out = pg.ok_within(300, &["run", &long, "--executor", "slurm", "--wait"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(stderr.contains("world: completed, reused"), "{stderr}");
    // The same attempt, resumed in a new job, without a duplicated point.
    assert_eq!(attempt("status"), ["completed"]);
    assert_ne!(attempt("job")[0], format!("slurm:{first_job}"));
    let shown = pg.stdout(&["show", &model[..12]]);
    assert!(
        shown.contains(&format!("({})", attempt("job")[0])),
        "{shown}"
    );
    assert_eq!(pg.sql(DUPLICATED_METRICS), "n\n0\n");
    assert_eq!(
        pg.sql(&format!(
            "SELECT count(*) AS n FROM metric_points WHERE name = 'loss' \
             AND experiment = '{model}'"
        )),
        "n\n200\n"
    );

    // Cancelling a recipe reaches every stage inside it that runs or waits.
    let other = tiny_pretrain_spec(&pg, 401, 20);
    let recipe = pg.write_spec(
        "long-recipe.toml",
        &format!("kind = \"recipe\"\nname = \"long\"\n[stages]\nbase = \"{other}\"\n"),
    );
    let out = pg.ok(&["run", &recipe, "--executor", "slurm"]);
    let root = id_line(&String::from_utf8_lossy(&out.stdout));
    let jobs: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split(": job ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(
        jobs.len(),
        2,
        "the pretraining and the recipe (the world is reused)"
    );
    let cancelled = pg.stdout(&["cancel", &root[..12]]);
    assert_eq!(cancelled.lines().count(), 2, "{cancelled}");
    for job in &jobs {
        assert!(cancelled.contains(job.as_str()), "{job}: {cancelled}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while jobs.iter().any(|job| job_queued(job)) {
        assert!(
            std::time::Instant::now() < deadline,
            "a job outlived scancel"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A copy of the tiny Llama fixture directory at `dir`.
fn copy_tiny_llama(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let fixture = repo_root().join("tests/fixtures/hf/llama");
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir.to_path_buf()
}

/// Changes the last byte of a file: for a safetensors file, one bit of its last weight.
fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_hugging_face_model_is_an_input_known_by_its_content() {
    let lab = Lab::new();
    let a = copy_tiny_llama(&lab.dir.path().join("a"));
    let b = copy_tiny_llama(&lab.dir.path().join("b"));
    let eval_of = |dir: &Path| {
        format!(
            "kind = \"eval\"\n\
             inputs = {{ model = {{ hf = \"{}\" }}, world = \"{}\" }}\n\
             benchmarks = [\"easy-en\", \"easy-zh\"]\nproblems = 2\nsamples = 2\n\
             max_new_tokens = 8\npromptings = [\"compact\", \"r1-zero\"]\n",
            dir.display(),
            repo_root().join(TINY_WORLD).display()
        )
    };
    let spec_a = lab.write_spec("a.toml", &eval_of(&a));
    let spec_b = lab.write_spec("b.toml", &eval_of(&b));
    let planned = |spec: &str| id_line(&lab.stdout(&["run", "--dry-run", spec]));
    let id = planned(&spec_a);
    assert_eq!(
        planned(&spec_b),
        id,
        "the same files elsewhere are the same model"
    );

    let out = lab.ok(&["run", &spec_a]);
    assert_eq!(id_line(&String::from_utf8_lossy(&out.stdout)), id);
    let stderr = String::from_utf8_lossy(&lab.ok(&["run", &spec_b]).stderr).to_string();
    assert!(stderr.contains("reused"), "{stderr}");
    // Every benchmark and prompting was scored, and the traces show the chat template's turns.
    let scored = lab.sql("SELECT COUNT(*) FROM evaluations WHERE metric = 'pass@1'");
    assert_eq!(scored.lines().nth(1), Some("4"), "{scored}");
    let prompts = lab.sql("SELECT prompt FROM traces WHERE prompt LIKE '%<|im_start|>user%'");
    assert!(prompts.contains("<|im_start|>assistant"), "{prompts}");
    assert!(
        prompts.contains("The reasoning process and answer"),
        "{prompts}"
    );
    // The import records where the files are, not a copy of them.
    let manifest = lab.sql("SELECT bytes FROM artifacts WHERE name = 'hf-model'");
    let bytes: u64 = manifest.lines().nth(1).unwrap().parse().unwrap();
    assert!(bytes < 1_000, "{manifest}");

    // One changed weight is another model.
    flip_last_byte(&b.join("model.safetensors"));
    assert_ne!(planned(&spec_b), id);
    // A directory that changed after its import is refused by the stage that reads it.
    flip_last_byte(&a.join("model.safetensors"));
    let err = lab.fails(&["rerun", &id]);
    assert!(
        err.contains("changed") && err.contains("input `model`"),
        "{err}"
    );
    // Hashes given in a spec are checked, and a missing directory is named.
    let wrong = lab.write_spec(
        "wrong.toml",
        &format!(
            "kind = \"hf\"\npath = \"{}\"\nweights = \"{}\"\n",
            b.display(),
            "0".repeat(64)
        ),
    );
    let err = lab.fails(&["run", "--dry-run", &wrong]);
    assert!(
        err.contains("`weights`") && err.contains("hash to"),
        "{err}"
    );
    let missing = lab.write_spec("missing.toml", &eval_of(&lab.dir.path().join("nowhere")));
    let err = lab.fails(&["run", "--dry-run", &missing]);
    assert!(
        err.contains("inputs.model.path") && err.contains("nowhere"),
        "{err}"
    );
    // Fine-tuning and rejection sampling take it too, through the same chat template.
    let world = repo_root().join(TINY_WORLD);
    let sft = lab.write_spec(
        "sft.toml",
        &format!(
            "kind = \"sft\"\ninputs = {{ model = {{ hf = \"{}\" }}, data = \"{}\" }}\n\
             prompting = \"compact\"\nsteps = 2\nbatch_size = 4\nmicro_batch_size = 2\n",
            b.display(),
            world.display()
        ),
    );
    lab.ok(&["run", &sft]);
    let reject = lab.write_spec(
        "reject.toml",
        &format!(
            "kind = \"reject\"\ninputs = {{ model = {{ hf = \"{}\" }}, world = \"{}\" }}\n\
             prompts = 4\nsamples_per_prompt = 2\nmax_completion_length = 8\n",
            b.display(),
            world.display()
        ),
    );
    lab.ok(&["run", &reject]);
    let sampled = lab.sql(
        "SELECT COUNT(*) AS n FROM traces WHERE prompt LIKE '%<|im_start|>assistant%' \
         AND json_extract(meta, '$.verdict') IS NOT NULL",
    );
    assert_eq!(
        sampled, "n\n8\n",
        "every completion judged, with the chat prompt"
    );
}

/// GRPO then an evaluation on a Hugging Face model directory, at test size.
fn hf_r1_zero_recipe(lab: &Lab, model_dir: &Path) -> String {
    let world = repo_root().join(TINY_WORLD);
    lab.write_spec(
        "hf-r1-zero.toml",
        &format!(
            "kind = \"recipe\"\nname = \"hf-r1-zero\"\n\n\
             [stages.grpo]\nkind = \"grpo\"\n\
             inputs = {{ model = {{ hf = \"{model}\" }}, world = \"{world}\" }}\n\
             steps = 4\nprompts_per_step = 2\ngroup_size = 3\nmu = 2\nlr = 1e-3\n\
             max_completion_length = 10\ncheckpoint_every = 2\ntrace_every = 2\neval_every = 2\n\n\
             [stages.eval]\nkind = \"eval\"\n\
             inputs = {{ model = \"@grpo\", world = \"{world}\" }}\n\
             benchmarks = [\"easy-en\"]\nproblems = 2\nsamples = 2\nmax_new_tokens = 8\n\
             promptings = [\"compact\"]\n",
            model = model_dir.display(),
            world = world.display()
        ),
    )
}

/// `lab run` on the device of `LAB_TEST_DEVICE` (`just test-tch` sets `tch-cpu`), else flex.
fn run_on_test_device(spec: &str) -> Vec<String> {
    let mut args = vec!["run".to_string(), spec.to_string()];
    if let Ok(device) = std::env::var("LAB_TEST_DEVICE") {
        args.extend(["--device".to_string(), device]);
    }
    args
}

#[test]
fn grpo_trains_a_hugging_face_model_and_resumes_it_exactly() {
    let straight = Lab::new();
    let spec = hf_r1_zero_recipe(&straight, &repo_root().join("tests/fixtures/hf/llama"));
    let run = run_on_test_device(&spec);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    straight.ok(&run);
    let last_checkpoint = "SELECT c.step, c.hash FROM checkpoints c JOIN attempts a \
                           ON a.id = c.attempt JOIN experiments e ON e.id = a.experiment \
                           WHERE e.kind = 'grpo' ORDER BY c.step DESC LIMIT 1";
    let expected = straight.sql(last_checkpoint);
    // The policy learned something: a KL to the reference, and traces of the chat prompt.
    let kl = straight.sql("SELECT MAX(value) FROM metric_points WHERE name = 'kl'");
    let kl: f64 = kl.lines().nth(1).unwrap().parse().unwrap();
    assert!(kl > 0.0, "the policy never moved from the reference");
    let prompts = straight.sql("SELECT prompt FROM traces WHERE prompt LIKE '%<|im_start|>%'");
    assert!(prompts.lines().count() > 1, "{prompts}");
    // The evaluation read the trained checkpoint, not the directory's weights.
    let evaluated = straight.sql(
        "SELECT COUNT(*) FROM evaluations v JOIN attempts a ON a.id = v.attempt \
         JOIN experiments e ON e.id = a.experiment WHERE e.name = 'hf-r1-zero/eval'",
    );
    assert_ne!(evaluated.lines().nth(1), Some("0"), "{evaluated}");

    // Killed after its first checkpoint, the run resumes to the same last checkpoint.
    let killed = Lab::new();
    let spec = hf_r1_zero_recipe(&killed, &repo_root().join("tests/fixtures/hf/llama"));
    let run = run_on_test_device(&spec);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let out = killed
        .cmd(&run)
        .env("LAB_CRASH_AT", "grpo:checkpoint-recorded:1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the crash point was not reached");
    let stderr = String::from_utf8_lossy(&killed.ok(&run).stderr).to_string();
    assert!(stderr.contains("resumed"), "{stderr}");
    assert_eq!(killed.sql(last_checkpoint), expected);

    // Fine-tuning continues from the trained checkpoint.
    let grpo_id = straight.sql("SELECT id FROM experiments WHERE kind = 'grpo'");
    let grpo_id = grpo_id.lines().nth(1).unwrap();
    let sft = straight.write_spec(
        "sft.toml",
        &format!(
            "kind = \"sft\"\ninputs = {{ model = \"id:{grpo_id}\", data = \"{}\" }}\n\
             prompting = \"compact\"\nsteps = 2\nbatch_size = 2\n",
            repo_root().join(TINY_WORLD).display()
        ),
    );
    straight.ok(&["run", &sft]);
    // `lab generate` samples from the trained checkpoint through the chat template.
    let out = straight.stdout(&[
        "generate",
        grpo_id,
        "--prompt",
        "What is 2 + 3?",
        "-n",
        "2",
        "--max-new-tokens",
        "4",
    ]);
    assert!(
        out.contains(
            "--- sample 1\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
        ),
        "{out}"
    );
    // Exported as a model directory, the trained model continues as it does from the store.
    let exported = straight.dir.path().join("exported");
    let exported = exported.to_str().unwrap();
    straight.ok(&["export-model", grpo_id, exported]);
    let greedy = [
        "--prompt",
        "What is 2 + 3?",
        "--temperature",
        "0",
        "-n",
        "1",
    ];
    let from_dir = straight.stdout(&[&["generate", "--hf", exported][..], &greedy].concat());
    let from_store = straight.stdout(&[&["generate", grpo_id][..], &greedy].concat());
    let completion = from_dir.strip_prefix("--- sample 0\n").unwrap();
    assert!(
        from_store.ends_with(completion),
        "{from_dir:?} vs {from_store:?}"
    );
    let err = straight.fails(&["export-model", grpo_id, exported]);
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn the_device_is_part_of_the_id_and_recorded_with_each_attempt() {
    let lab = Lab::new();
    let flex = id_line(&lab.stdout(&["run", "--dry-run", "experiments/tiny/base.toml"]));
    let tch = id_line(&lab.stdout(&[
        "run",
        "--dry-run",
        "--device",
        "tch-cpu",
        "experiments/tiny/base.toml",
    ]));
    assert_ne!(
        flex, tch,
        "another device rounds otherwise: another experiment"
    );
    let named = id_line(&lab.stdout(&[
        "run",
        "--dry-run",
        "--device",
        "flex",
        "experiments/tiny/base.toml",
    ]));
    assert_eq!(named, flex, "the default device keeps the id");
    lab.ok(&["run", TINY_WORLD]);
    let devices = lab.sql("SELECT DISTINCT device FROM attempts");
    assert_eq!(devices, "device\nflex\n");
    if cfg!(feature = "tch") {
        // `just test-tch`: the tiny base recipe, pretraining and evaluation, on LibTorch.
        lab.ok(&["run", "--device", "tch-cpu", "experiments/tiny/base.toml"]);
        let on = lab.sql(
            "SELECT COUNT(*) AS n FROM attempts WHERE device = 'tch-cpu' AND status = 'completed'",
        );
        assert_eq!(on, "n\n2\n", "pretraining and evaluation ran on tch-cpu");
    } else {
        // A build without LibTorch fails the stage that asks for it, saying why.
        let err = lab.fails(&["run", "--device", "tch-cpu", "experiments/tiny/base.toml"]);
        assert!(err.contains("`tch` feature"), "{err}");
        let failed = lab.sql("SELECT device FROM attempts WHERE status = 'failed'");
        assert_eq!(failed, "device\ntch-cpu\n");
    }
    let err = lab.fails(&["run", "--device", "tpu", "experiments/tiny/base.toml"]);
    assert!(err.contains("unknown device `tpu`"), "{err}");
}
