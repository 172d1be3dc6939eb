//! Concurrent writers on one store: N `lab`-like processes each record an experiment's attempt,
//! metric points in batches (as a training loop logs them), traces, and finish it, all at once.
//! SQLite with 8 writers; PostgreSQL with 32 when a server is named (`LAB_TEST_POSTGRES`, which
//! `just test` and `just servers` set).
//!
//! Each figure is a ratio against a baseline measured in the same run on the same backend: one
//! writer alone. It reports lock errors (a writer that failed) and lost rows (points or traces
//! missing after every writer said it committed them), which must both be 0.
//!
//!   bench_store [SQLITE_WRITERS [POSTGRES_WRITERS]]

use std::process::Command;
use std::time::Instant;

use lab::identity::ExperimentId;
use lab::store::{AttemptOrigin, Location, MetricPoint, Store, TraceRecord};

/// Per writer: batches of metric points, as a run logs them every interval.
const BATCHES: i64 = 100;
const POINTS_PER_BATCH: i64 = 20;
const TRACES: i64 = 32;
/// Experiments each writer runs, one after the other.
const EXPERIMENTS: usize = 2;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("writer") {
        return writer(&args[2], &args[3], args[4].parse()?);
    }
    let sqlite_writers: usize = args.get(1).map_or(Ok(8), |a| a.parse())?;
    let postgres_writers: usize = args.get(2).map_or(Ok(32), |a| a.parse())?;

    let dir = tempfile::tempdir()?;
    let sqlite = |name: &str| Location::sqlite(dir.path().join(format!("{name}.db")));
    bench("sqlite", sqlite_writers, sqlite("one"), sqlite("many"))?;
    match std::env::var(lab::store::testing::POSTGRES_ENV) {
        Ok(server) if !server.is_empty() => {
            let one = lab::store::testing::postgres_store(&server, &dir.path().join("one"));
            let many = lab::store::testing::postgres_store(&server, &dir.path().join("many"));
            bench(
                "postgres",
                postgres_writers,
                one.location.clone(),
                many.location.clone(),
            )?;
        }
        _ => println!(
            "postgres: skipped, {} names no server (eval \"$(just servers)\" starts one)",
            lab::store::testing::POSTGRES_ENV
        ),
    }
    Ok(())
}

/// One writer alone, then `writers` at once, each on a store of its own.
fn bench(label: &str, writers: usize, alone: Location, crowd: Location) -> anyhow::Result<()> {
    let baseline = round(&alone, 1)?;
    let loaded = round(&crowd, writers)?;
    println!(
        "{label}: {writers} writers stored {:.0} metric points/s together, {:.2}x one writer \
         alone ({:.0} points/s); lock errors {}, lost rows {} (one writer: {}, {})",
        loaded.points_per_second,
        loaded.points_per_second / baseline.points_per_second,
        baseline.points_per_second,
        loaded.failed,
        loaded.lost,
        baseline.failed,
        baseline.lost,
    );
    if !loaded.errors.is_empty() {
        println!("{label}: first error: {}", loaded.errors[0]);
    }
    Ok(())
}

struct Round {
    points_per_second: f64,
    failed: usize,
    lost: i64,
    errors: Vec<String>,
}

fn round(location: &Location, writers: usize) -> anyhow::Result<Round> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Created and migrated once, as a first run does, before the crowd arrives.
    let store = runtime.block_on(Store::open(location))?;
    runtime.block_on(store.close());
    let args = location.cli_args();
    let started = Instant::now();
    let children: Vec<_> = (0..writers)
        .map(|index| {
            Command::new(std::env::current_exe()?)
                .args(["writer", &args[1], &args[3], &index.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let mut errors = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            errors.push(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let store = runtime.block_on(Store::open_read_only(location))?;
    let count = |sql: &str| -> anyhow::Result<i64> {
        Ok(runtime.block_on(store.query(sql))?.rows[0][0].integer())
    };
    // Lost: rows of a writer that said it committed them (exited 0) and are not there.
    let runs = ((writers - errors.len()) * EXPERIMENTS) as i64;
    let completed = "SELECT id FROM attempts WHERE status = 'completed'";
    let points = count(&format!(
        "SELECT count(*) FROM metrics WHERE attempt IN ({completed})"
    ))?;
    let lost = (runs * BATCHES * POINTS_PER_BATCH - points)
        + (runs * TRACES
            - count(&format!(
                "SELECT count(*) FROM traces WHERE attempt IN ({completed})"
            ))?)
        + (runs - count("SELECT count(*) FROM attempts WHERE status = 'completed'")?);
    runtime.block_on(store.close());
    Ok(Round {
        points_per_second: points as f64 / seconds,
        failed: errors.len(),
        lost,
        errors,
    })
}

/// One writer process: what a run writes, for [`EXPERIMENTS`] experiments, all of it
/// committed before it exits 0.
fn writer(db: &str, objects: &str, index: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let location = Location::parse(db, Some(std::path::Path::new(objects)))?;
    let store = runtime.block_on(Store::open(&location))?;
    let origin = AttemptOrigin {
        host: "bench".into(),
        pid: std::process::id() as i64,
        git_commit: None,
        job: None,
    };
    for experiment in 0..EXPERIMENTS {
        let id = ExperimentId::parse(
            &blake3::hash(format!("writer {index} experiment {experiment}").as_bytes()).to_hex(),
        )
        .expect("a blake3 hash is an id");
        runtime.block_on(async {
            store
                .ensure_experiment(&id, "bench", "bench", &serde_json::json!({}), 1, &[])
                .await?;
            let attempt = store.start_attempt(&id, &origin).await?;
            for batch in 0..BATCHES {
                let points: Vec<MetricPoint> = (0..POINTS_PER_BATCH)
                    .map(|p| MetricPoint::new(format!("m{p}"), batch, (batch * p) as f64))
                    .collect();
                store.record_metrics(attempt, &points).await?;
                store.heartbeat(attempt).await?;
            }
            let traces: Vec<TraceRecord> = (0..TRACES)
                .map(|sample| TraceRecord {
                    step: 0,
                    sample,
                    prompt: "What is 2 + 3?".into(),
                    completion: "<think>2 + 3 = 5</think><answer>5</answer>".into(),
                    ..Default::default()
                })
                .collect();
            store.record_traces(attempt, &traces).await?;
            store.finish_attempt(attempt, "bench").await?;
            anyhow::Ok(())
        })?;
    }
    runtime.block_on(store.close());
    Ok(())
}
