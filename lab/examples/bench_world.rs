//! Benchmarks of the spine: world generation throughput, store write throughput, and `lab report`.
//!
//! Figures are reported as ratios against a baseline measured in the same run, so they mean the
//! same thing on any machine: batched metric writes against one transaction per point, the
//! default world against a world with a tenth of the documents, and a report of 20 long RL runs
//! against only reading the points it draws.

use std::time::Instant;

use lab::store::{AttemptOrigin, MetricPoint, Store};
use lab::world::{generate, WorldConfig};

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;

    // World generation: default size against a tenth of it (should scale linearly).
    let config = WorldConfig::default();
    let small = WorldConfig {
        web_documents: config.web_documents / 10,
        train_problems: config.train_problems / 10,
        ..config.clone()
    };
    let t = Instant::now();
    let small_world = generate(&small);
    let small_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let world = generate(&config);
    let full_seconds = t.elapsed().as_secs_f64();
    let docs_per_second = world.web.len() as f64 / full_seconds;
    println!(
        "world: {} web documents in {:.2} s ({:.0} docs/s); 10x the documents took {:.1}x the time (baseline {} docs in {:.2} s)",
        world.web.len(),
        full_seconds,
        docs_per_second,
        full_seconds / small_seconds,
        small_world.web.len(),
        small_seconds
    );

    // Store writes: batched transactions against one transaction per point.
    let store = runtime.block_on(Store::open(&dir.path().join("bench.db")))?;
    let id = lab::identity::ExperimentId::parse(&"ab".repeat(32)).expect("valid id");
    let origin = AttemptOrigin {
        host: "bench".into(),
        pid: std::process::id() as i64,
        git_commit: None,
        job: None,
    };
    let attempt = runtime.block_on(async {
        store
            .ensure_experiment(&id, "bench", "bench", &serde_json::json!({}), 1, &[])
            .await?;
        store.start_attempt(&id, &origin).await
    })?;
    let single_points = 500;
    let t = Instant::now();
    for step in 0..single_points {
        let point = MetricPoint::new("single", step, step as f64);
        runtime.block_on(store.record_metrics(attempt, &[point]))?;
    }
    let single_rate = single_points as f64 / t.elapsed().as_secs_f64();
    let batch: Vec<MetricPoint> = (0..50_000)
        .map(|step| MetricPoint::new("batched", step, step as f64))
        .collect();
    let t = Instant::now();
    for chunk in batch.chunks(1000) {
        runtime.block_on(store.record_metrics(attempt, chunk))?;
    }
    let batched_rate = batch.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "store: batched metric writes {:.0} points/s = {:.1}x one transaction per point ({:.0} points/s)",
        batched_rate,
        batched_rate / single_rate,
        single_rate
    );

    report(&runtime, &dir.path().join("report.db"), &origin)?;
    Ok(())
}

/// `lab report` of 20 GRPO runs of 10,000 steps, each logging every curve the report draws:
/// gathered from the store and written (page, SVG and PNG) in how long, against reading the
/// same points alone.
fn report(
    runtime: &tokio::runtime::Runtime,
    db: &std::path::Path,
    origin: &AttemptOrigin,
) -> anyhow::Result<()> {
    const RUNS: usize = 20;
    const STEPS: i64 = 10_000;
    let metrics = [
        "reward",
        "rewards/accuracy/mean",
        "rewards/format/mean",
        "completions/mean_length",
        "lang/mixed_rate",
        "kl",
        "clip_ratio/region_mean",
        "entropy",
    ];
    let store = runtime.block_on(Store::open(db))?;
    let mut ids = Vec::new();
    for run in 0..RUNS {
        let id =
            lab::identity::ExperimentId::parse(&format!("{run:02x}").repeat(32)).expect("valid id");
        let attempt = runtime.block_on(async {
            store
                .ensure_experiment(
                    &id,
                    "grpo",
                    &format!("run-{run}"),
                    &serde_json::json!({}),
                    1,
                    &[],
                )
                .await?;
            store.start_attempt(&id, origin).await
        })?;
        let mut rng = lab::rng::Rng::new(run as u64);
        for metric in metrics {
            let mut value = 0.5;
            let points: Vec<MetricPoint> = (0..STEPS)
                .map(|step| {
                    value += (rng.below(1001) as f64 - 500.0) / 50_000.0;
                    MetricPoint::new(metric, step, value)
                })
                .collect();
            for chunk in points.chunks(5000) {
                runtime.block_on(store.record_metrics(attempt, chunk))?;
            }
        }
        runtime.block_on(store.finish_attempt(attempt, "bench"))?;
        ids.push(id);
    }

    let t = Instant::now();
    let mut points = 0;
    for run in runtime.block_on(store.standing_runs(&ids))? {
        for metric in metrics {
            points += runtime
                .block_on(store.metric_series(run.attempt, metric))?
                .len();
        }
    }
    let read_seconds = t.elapsed().as_secs_f64();

    let out = db.with_extension("report");
    let t = Instant::now();
    let report = runtime.block_on(lab::report::gather(&store, &ids))?;
    let gathered = t.elapsed().as_secs_f64();
    lab::report::write(&report, &out)?;
    let seconds = t.elapsed().as_secs_f64();
    println!(
        "report: {RUNS} runs x {STEPS} steps x {} curves ({points} points) gathered and written in {seconds:.2} s (goal < 5 s; {gathered:.2} s reading, {:.2} s drawing {} figures as SVG and PNG) = {:.1}x reading the same points alone ({read_seconds:.2} s)",
        metrics.len(),
        seconds - gathered,
        report.figures.len(),
        seconds / read_seconds,
    );
    Ok(())
}
