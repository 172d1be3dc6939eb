//! The `world` stage: generate the bilingual word-problem world and store its data sets.
//!
//! Data sets (JSON lines in the object folder, hashed): `web` (the pretraining corpus), `train`
//! (structured training problems for SFT and RL prompts) and one per named benchmark
//! (`bench/easy-en`, ...). Counts and token-length statistics become metrics at step 0, and a few
//! dozen examples become traces so they can be read in the lab.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;

use super::{StageContext, StageError};
use crate::store::TraceRecord;
use crate::world::{self, split_tokens, Problem, WebDocument, WorldConfig};

/// Examples of each (style, language) stored as traces.
const TRACES_PER_STYLE_AND_LANGUAGE: usize = 2;

pub fn run(config: &WorldConfig, ctx: &mut StageContext) -> Result<(), StageError> {
    let started = Instant::now();
    let mut last_report = 0.0;
    let mut progress_error = None;
    let generated = world::generate_with_progress(config, &mut |done, total| {
        let fraction = 0.8 * done as f64 / total.max(1) as f64;
        if fraction - last_report >= 0.01 && progress_error.is_none() {
            last_report = fraction;
            if let Err(e) = ctx.progress(fraction, "generating") {
                progress_error = Some(e);
            }
        }
    });
    if let Some(e) = progress_error {
        return Err(e);
    }
    ctx.log("perf/generate_seconds", 0, started.elapsed().as_secs_f64());

    ctx.progress(0.85, "storing data sets")?;
    ctx.store_dataset("web", "corpus", &generated.web)?;
    ctx.store_dataset("train", "problems", &generated.train)?;
    for bench in &generated.benchmarks {
        ctx.store_dataset(
            &format!("bench/{}", bench.name),
            "benchmark",
            &bench.problems,
        )?;
    }

    log_web_stats(ctx, &generated.web);
    log_problem_stats(ctx, "train", &generated.train);
    for bench in &generated.benchmarks {
        log_problem_stats(ctx, &format!("bench/{}", bench.name), &bench.problems);
    }

    store_example_traces(ctx, &generated.web, &generated.benchmarks);
    ctx.progress(1.0, "done")?;
    Ok(())
}

fn log_web_stats(ctx: &mut StageContext, web: &[WebDocument]) {
    let lengths: Vec<usize> = web.iter().map(|d| split_tokens(&d.text).len()).collect();
    ctx.log("web/documents", 0, web.len() as f64);
    ctx.log("web/tokens", 0, lengths.iter().sum::<usize>() as f64);
    ctx.log("web/chat", 0, web.iter().filter(|d| d.chat).count() as f64);
    log_length_stats(ctx, "web", &lengths);
    let mut by_style: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_lang: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_ops: BTreeMap<usize, usize> = BTreeMap::new();
    for doc in web {
        *by_style.entry(json_name(&doc.style)).or_default() += 1;
        *by_lang.entry(json_name(&doc.lang)).or_default() += 1;
        *by_ops.entry(doc.operations).or_default() += 1;
    }
    for (style, count) in by_style {
        ctx.log(format!("web/style/{style}"), 0, count as f64);
    }
    for (lang, count) in by_lang {
        ctx.log(format!("web/lang/{lang}"), 0, count as f64);
    }
    for (ops, count) in by_ops {
        ctx.log(format!("web/operations/{ops}"), 0, count as f64);
    }
    let wrong = web.iter().filter(|d| !d.answer_correct).count();
    ctx.log("web/wrong_answers", 0, wrong as f64);
}

fn log_problem_stats(ctx: &mut StageContext, prefix: &str, problems: &[Problem]) {
    ctx.log(format!("{prefix}/problems"), 0, problems.len() as f64);
    let question: Vec<usize> = problems
        .iter()
        .map(|p| split_tokens(&p.question).len())
        .collect();
    let solution: Vec<usize> = problems
        .iter()
        .map(|p| split_tokens(&p.solution).len())
        .collect();
    log_length_stats(ctx, &format!("{prefix}/question"), &question);
    log_length_stats(ctx, &format!("{prefix}/solution"), &solution);
    if !problems.is_empty() {
        let mean_answer =
            problems.iter().map(|p| p.answer as f64).sum::<f64>() / problems.len() as f64;
        ctx.log(format!("{prefix}/mean_answer"), 0, mean_answer);
    }
}

/// Mean, max and 95th percentile of token lengths, under `prefix/…_tokens`.
fn log_length_stats(ctx: &mut StageContext, prefix: &str, lengths: &[usize]) {
    if lengths.is_empty() {
        return;
    }
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let mean = sorted.iter().sum::<usize>() as f64 / sorted.len() as f64;
    let p95 = sorted[((sorted.len() - 1) as f64 * 0.95).round() as usize];
    ctx.log(format!("{prefix}/mean_tokens"), 0, mean);
    ctx.log(format!("{prefix}/p95_tokens"), 0, p95 as f64);
    ctx.log(
        format!("{prefix}/max_tokens"),
        0,
        *sorted.last().unwrap() as f64,
    );
}

fn store_example_traces(
    ctx: &mut StageContext,
    web: &[WebDocument],
    benchmarks: &[world::Benchmark],
) {
    let mut sample = 0i64;
    let mut taken: BTreeMap<(String, String), usize> = BTreeMap::new();
    for doc in web {
        let key = (json_name(&doc.style), json_name(&doc.lang));
        let count = taken.entry(key.clone()).or_default();
        if *count >= TRACES_PER_STYLE_AND_LANGUAGE {
            continue;
        }
        *count += 1;
        ctx.trace(TraceRecord {
            step: 0,
            sample,
            prompt: String::new(),
            completion: doc.text.clone(),
            reward_parts: json!({}),
            language_scores: json!({}),
            meta: json!({
                "set": "web", "style": key.0, "lang": key.1,
                "operations": doc.operations, "answer_correct": doc.answer_correct,
            }),
        });
        sample += 1;
    }
    for bench in benchmarks {
        for problem in bench.problems.iter().take(2) {
            ctx.trace(TraceRecord {
                step: 0,
                sample,
                prompt: problem.question.clone(),
                completion: problem.solution.clone(),
                reward_parts: json!({}),
                language_scores: json!({}),
                meta: json!({
                    "set": format!("bench/{}", bench.name), "lang": json_name(&problem.lang),
                    "operations": problem.operations, "answer": problem.answer,
                }),
            });
            sample += 1;
        }
    }
}

/// The name serde gives an enum variant (`Style::BareAnswer` → `bare_answer`).
fn json_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}
