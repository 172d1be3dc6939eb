//! Benchmarks of the spine: world generation throughput and store write throughput.
//!
//! Figures are reported as ratios against a baseline measured in the same run, so they mean the
//! same thing on any machine: batched metric writes against one transaction per point, and the
//! default world against a world with a tenth of the documents.

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
    Ok(())
}
