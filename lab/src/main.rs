//! `lab`: run, rerun, list, inspect, diff, query and export content-addressed experiments.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::runtime::Runtime;

use lab::findings::{self, Evidence};
use lab::identity::ExperimentId;
use lab::runner::{self, Reproduction, Runner};
use lab::spec::Spec;
use lab::store::{self, RunFilter, Store};
use lab::table;

/// R1 Lab: the DeepSeek-R1 recipe at toy scale, every run a content-addressed experiment.
#[derive(Parser)]
#[command(name = "lab", version, about, long_about = None)]
struct Cli {
    /// The store's database: an SQLite file (or sqlite: URL), created on first use, or a
    /// PostgreSQL URL (postgres://user@host/db), which needs --objects.
    #[arg(long, global = true, env = "LAB_DB", default_value = ".lab/lab.db")]
    db: String,
    /// The folder of checkpoints and data sets: beside an SQLite file by default (lab.db →
    /// lab.objects); for PostgreSQL, a folder every host that runs stages reaches.
    #[arg(long, global = true, env = "LAB_OBJECTS")]
    objects: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Executor {
    Local,
    Slurm,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment spec; an id already completed is reused, not rerun.
    Run {
        /// The spec file (TOML).
        spec: PathBuf,
        /// Override a value: --set key.path=value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Print the id the spec would get and whether it is done, without running.
        #[arg(long)]
        dry_run: bool,
        /// Where stages run: here, one after another (local), or each as a Slurm job that
        /// runs `lab exec ID` after its inputs' jobs (slurm).
        #[arg(long, value_enum, default_value_t = Executor::Local)]
        executor: Executor,
        /// With --executor slurm: wait until the jobs have finished, and fail if the spec's
        /// experiment did not complete.
        #[arg(long)]
        wait: bool,
        /// With --executor slurm: an extra sbatch argument (repeatable): --sbatch=--partition=gpu.
        #[arg(long = "sbatch", value_name = "ARG", allow_hyphen_values = true)]
        sbatch_args: Vec<String>,
        /// The device the spec's stages that run models compute on (a recipe's stages too):
        /// flex (the default), or tch-cpu / cuda:N in a build with the `tch` feature. Part of
        /// their ids, as a spec's own `device = "..."` is.
        #[arg(long)]
        device: Option<String>,
    },
    /// Stop what runs for an experiment: its Slurm job (scancel) and any job still queued for
    /// it, or its process on this host (SIGTERM). The next run resumes it.
    Cancel {
        /// Experiment id or unique prefix.
        id: String,
    },
    /// Sample completions from a stored model (its last checkpoint), to poke at it by hand.
    Generate {
        /// Experiment id or prefix of a run with checkpoints (pretrain, sft, grpo).
        #[arg(required_unless_present = "hf")]
        id: Option<String>,
        /// A Hugging Face model directory (Llama or Qwen2) instead of a stored run: the prompt
        /// becomes a user turn of the model's chat template.
        #[arg(long, conflicts_with_all = ["id", "prompting"])]
        hf: Option<PathBuf>,
        /// With --hf: open the assistant's turn with `<think>` and a newline, as R1 does.
        #[arg(long, requires = "hf")]
        think: bool,
        /// With --hf: the device that computes: flex (burn's CPU backend), or with the `tch`
        /// feature tch-cpu or cuda:N (LibTorch).
        #[arg(long, env = "LAB_DEVICE", default_value = "flex")]
        device: String,
        /// The prompt text; rendered as is (use the templates yourself, or --prompting).
        #[arg(long)]
        prompt: String,
        /// Wrap the prompt in a template: r1-zero, compact, cot, direct.
        #[arg(long)]
        prompting: Option<String>,
        /// Number of samples.
        #[arg(short = 'n', long, default_value_t = 4)]
        samples: usize,
        #[arg(long, default_value_t = 0.6)]
        temperature: f64,
        #[arg(long, default_value_t = 0.95)]
        top_p: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 160)]
        max_new_tokens: usize,
    },
    /// The paper's comparison table: models × benchmarks (pass@1 ± se, cons@k), length, mixing.
    Table {
        /// Eval, model or recipe ids (prefixes); default: the latest evaluation of each model.
        ids: Vec<String>,
        /// Markdown instead of a text table.
        #[arg(long, conflicts_with = "csv")]
        markdown: bool,
        /// Long-format CSV, one value a row.
        #[arg(long)]
        csv: bool,
    },
    /// The paper's findings, each judged against its goal, and the RL gate of the base models.
    Findings {
        /// A recipe id (prefix) whose stages to judge; default: the latest of everything.
        scope: Option<String>,
        /// Markdown instead of a text table.
        #[arg(long, conflicts_with = "csv")]
        markdown: bool,
        /// CSV, one check a row.
        #[arg(long)]
        csv: bool,
    },
    /// Write the results of recipes to a folder: the comparison table (CSV and Markdown), the
    /// findings with their experiment ids, and the RL length curves; optionally into a README.
    Results {
        /// The folder to write (created; its files are replaced).
        dir: PathBuf,
        /// Recipe ids (prefixes), one section each; default: the latest of everything.
        recipes: Vec<String>,
        /// Replace the text between `<!-- results:begin -->` and `<!-- results:end -->` of this
        /// file with the findings.
        #[arg(long)]
        readme: Option<PathBuf>,
    },
    /// A report as a page and images: overlaid curves of the chosen runs (reward, accuracy,
    /// held-out pass@1, completion length, format, language mixing, KL, clip ratio, entropy,
    /// loss), the findings of each chosen recipe with standard errors, the models × benchmarks
    /// table, and traces with the other language's words marked. Opens without a network.
    Report {
        /// Experiment or recipe ids (prefixes); a recipe stands for every stage inside it.
        /// Default: every completed run and the findings of everything.
        ids: Vec<String>,
        /// The folder to write: index.html, and figures/NAME.svg and .png (created; files
        /// of the same names are replaced).
        #[arg(long, default_value = "report")]
        out: PathBuf,
    },
    /// Reasoning habits of an RL run's traced groups (worked steps, checks, repairs, merged
    /// steps), window by window of steps: how often each appears and how much it changes
    /// accuracy against the completions of the same group without it.
    Habits {
        /// Experiment id or unique prefix of a GRPO run.
        id: String,
        /// Steps per window.
        #[arg(long, default_value_t = 50)]
        window: i64,
    },
    /// How many single arithmetic facts models know: each fact is a step sentence of the corpus
    /// cut after its `=` (`Tom had 38 apples. Now he has 38 + 45 =`, and in Chinese), answered by
    /// the model's greedy next number. A chain is only as right as its facts; pass@1 mixes them
    /// with everything else a chain can get wrong.
    Facts {
        /// Experiment ids or unique prefixes of runs with checkpoints (pretrain, sft, grpo).
        #[arg(required = true)]
        ids: Vec<String>,
        /// Facts asked (half additions, half subtractions, half in each language).
        #[arg(long, default_value_t = 400)]
        count: usize,
        /// Seed of the facts drawn.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Largest number in a fact (the world's `hard_value_max` by default).
        #[arg(long, default_value_t = 120)]
        max_value: i64,
        /// Largest second operand (the world's `hard_number_max` by default).
        #[arg(long, default_value_t = 40)]
        max_operand: i64,
    },
    /// Score language mixing of completions from any model: a JSONL file with `prompt` and
    /// `completion` per line (the chain is the text inside <think> when present).
    Langmix {
        /// The JSONL file (`-` for standard input).
        file: PathBuf,
        /// Target language: en, zh, or auto (the prompt's majority language).
        #[arg(long, default_value = "auto")]
        target: String,
        /// One JSON object per line instead of a table and summary.
        #[arg(long)]
        json: bool,
    },
    /// Store the experiments a spec needs without running them, and print their ids, inputs
    /// first: `lab exec ID` of each, in that order, runs the spec (one job each on a scheduler).
    Plan {
        /// The spec file (TOML).
        spec: PathBuf,
        /// Override a value: --set key.path=value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Execute one stored experiment whose inputs are completed, as one node of a plan: reused
    /// when completed, resumed when interrupted, else run (what a scheduler runs per job).
    Exec {
        /// Experiment id or unique prefix.
        id: String,
    },
    /// Run a stored experiment again as a new attempt and compare with its first result.
    Rerun {
        /// Experiment id or unique prefix.
        id: String,
    },
    /// List experiments with the status of their latest attempt.
    Ls {
        /// Only this kind (world, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only names containing this text.
        #[arg(long)]
        name: Option<String>,
        /// Only this status (running, completed, failed, interrupted).
        #[arg(long)]
        status: Option<String>,
    },
    /// Show an experiment: spec, lineage, attempts, latest metrics, artifacts.
    Show {
        /// Experiment id or unique prefix.
        id: String,
    },
    /// Show the differences between two experiments' resolved specs.
    Diff {
        /// First experiment id or prefix.
        a: String,
        /// Second experiment id or prefix.
        b: String,
    },
    /// Run a read-only SQL query against the store (writes, ATTACH and PRAGMAs that set a value
    /// are refused; the answer is bounded in rows, bytes and time).
    Sql {
        /// The query, e.g. "SELECT * FROM runs".
        query: String,
        /// Keep at most this many rows (a query that returns more says so).
        #[arg(long, default_value_t = store::SqlLimits::default().max_rows)]
        max_rows: usize,
        /// Interrupt the query after this many seconds.
        #[arg(long, default_value_t = store::SqlLimits::default().timeout.as_secs_f64())]
        timeout: f64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
        format: SqlFormat,
        /// Shorthand for --format csv.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Shorthand for --format json (one object per row, JSON lines).
        #[arg(long)]
        json: bool,
    },
    /// Export an experiment's metrics or traces to stdout.
    Export {
        /// Experiment id or unique prefix.
        id: String,
        /// What to export.
        #[arg(long, value_enum, default_value_t = ExportWhat::Metrics)]
        what: ExportWhat,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Export this attempt instead of the standing (first completed) one.
        #[arg(long)]
        attempt: Option<i64>,
    },
    /// Write a trained Hugging Face model (an experiment's last checkpoint) as a model directory
    /// that transformers reads: its origin's config, tokenizer and chat template, and
    /// model.safetensors with the trained weights in f32.
    ExportModel {
        /// Experiment id or unique prefix of a stage that trained a Hugging Face model.
        id: String,
        /// The folder to write; it must not exist yet or be empty.
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SqlFormat {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportWhat {
    Metrics,
    Traces,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Csv,
    Jsonl,
}

fn main() {
    lab::alloc::keep_freed_memory();
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        let mut message = format!("error: {e}");
        for cause in e.chain().skip(1) {
            // Most errors here already quote their source; repeat only what is new.
            let cause = cause.to_string();
            if !message.contains(&cause) {
                message.push_str(&format!("\n  caused by: {cause}"));
            }
        }
        eprintln!("{message}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let db = store::Location::parse(&cli.db, cli.objects.as_deref())?;
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Run {
            spec,
            overrides,
            dry_run,
            executor,
            wait,
            sbatch_args,
            device,
        } => {
            // Parse and validate before opening anything, so a bad spec writes nothing.
            let mut spec = Spec::load(&spec, &overrides)?;
            if let Some(device) = &device {
                spec.set_device(device)?;
            }
            if dry_run {
                // Without a database, or one without tables yet, nothing is done yet.
                let store = match runtime.block_on(Store::open_read_only(&db)) {
                    Ok(store) => Some(store),
                    Err(store::StoreError::Missing { .. } | store::StoreError::NotReady { .. }) => {
                        None
                    }
                    Err(e) => return Err(e.into()),
                };
                let plan = runner::plan(&spec, &runtime, store.as_ref())?;
                let done = |id: &ExperimentId| -> Result<bool> {
                    Ok(match &store {
                        Some(store) => runtime.block_on(store.standing_attempt(id))?.is_some(),
                        None => false,
                    })
                };
                writeln!(out, "{}", plan.root)?;
                // The experiments it needs, inputs first, then the spec's own (last line).
                for node in &plan.nodes[..plan.nodes.len() - 1] {
                    let state = if done(&node.id)? {
                        "completed"
                    } else {
                        "not run"
                    };
                    eprintln!(
                        "  needs {}  {:<9} {} ({state})",
                        node.id.short(),
                        node.spec.kind(),
                        node.spec.name
                    );
                }
                let state = if done(&plan.root)? {
                    "completed"
                } else {
                    "not run"
                };
                eprintln!("{} {} ({state})", spec.kind(), spec.name);
                return Ok(());
            }
            let store = runtime.block_on(Store::open(&db))?;
            if executor == Executor::Slurm {
                let id = run_on_slurm(&runtime, &store, &spec, sbatch_args, wait)?;
                writeln!(out, "{id}")?;
                return Ok(());
            }
            let show = std::io::stderr().is_terminal();
            let mut runner = Runner::new(&runtime, &store, show);
            let result = runner.run(&spec);
            for r in &runner.report {
                eprintln!(
                    "{:>9}  {}  {:<8} {} (attempt {})",
                    r.outcome.as_str(),
                    r.id.short(),
                    r.kind,
                    r.name,
                    r.attempt
                );
            }
            let id = result?;
            writeln!(out, "{id}")?;
            // A run that evaluated something shows the results the paper's way.
            let evals: Vec<String> = runner
                .report
                .iter()
                .filter(|r| r.kind == "eval")
                .map(|r| r.id.to_string())
                .collect();
            if !evals.is_empty() {
                let rows = runtime.block_on(lab::results_table::load(&store, &evals))?;
                eprint!("\n{}", lab::results_table::render_text(&rows));
                let evidence = runtime.block_on(Evidence::load(&store, Some(id.as_str())))?;
                eprint!("\n{}", findings_report(&evidence, Render::Text));
            }
        }
        Command::Plan { spec, overrides } => {
            let spec = Spec::load(&spec, &overrides)?;
            let store = runtime.block_on(Store::open(&db))?;
            let plan = runner::plan(&spec, &runtime, Some(&store))?;
            Runner::new(&runtime, &store, false).register(&plan)?;
            for node in &plan.nodes {
                let done = runtime
                    .block_on(store.standing_attempt(&node.id))?
                    .is_some();
                writeln!(out, "{}", node.id)?;
                eprintln!(
                    "{}  {:<9} {} ({})",
                    node.id.short(),
                    node.spec.kind(),
                    node.spec.name,
                    if done { "completed" } else { "not run" }
                );
            }
        }
        Command::Exec { id } => {
            let store = runtime.block_on(Store::open(&db))?;
            let id = runtime.block_on(store.resolve_id(&id))?;
            let show = std::io::stderr().is_terminal();
            let mut runner = Runner::new(&runtime, &store, show);
            let outcome = runner.exec(&id)?;
            writeln!(out, "{id}")?;
            eprintln!("{}", outcome.as_str());
        }
        Command::Cancel { id } => {
            let store = runtime.block_on(Store::open(&db))?;
            let id = runtime.block_on(store.resolve_id(&id))?;
            for line in cancel(&runtime, &store, &id)? {
                writeln!(out, "{line}")?;
            }
        }
        Command::Rerun { id } => {
            let store = runtime.block_on(Store::open(&db))?;
            let id = runtime.block_on(store.resolve_id(&id))?;
            let show = std::io::stderr().is_terminal();
            let (attempt, reproduction) = Runner::new(&runtime, &store, show).rerun(&id)?;
            writeln!(out, "{id}")?;
            match reproduction {
                Reproduction::Exact => writeln!(
                    out,
                    "reproduced: attempt {attempt} matches the first result exactly"
                )?,
                Reproduction::FirstResult => writeln!(
                    out,
                    "completed: attempt {attempt} is the first completed result of this id"
                )?,
                Reproduction::Diverged { step, detail } => match step {
                    Some(step) => writeln!(out, "diverged at step {step}: {detail}")?,
                    None => writeln!(out, "diverged: {detail}")?,
                },
            }
        }
        Command::Generate {
            id,
            hf,
            think,
            device,
            prompt,
            prompting,
            samples,
            temperature,
            top_p,
            seed,
            max_new_tokens,
        } => {
            let generation = lab::generate::GenerationConfig {
                max_new_tokens,
                temperature,
                top_p,
                seed,
            };
            let texts = match hf {
                Some(dir) => {
                    let device = lab::device::parse(&device)?;
                    generate_hf(&dir, &device, &prompt, think, samples, &generation)?
                }
                None => {
                    let id = id.context("an experiment id or --hf is needed")?;
                    let store = open_existing(&runtime, &db)?;
                    let id = runtime.block_on(store.resolve_id(&id))?;
                    let prompting = prompting
                        .map(|p| {
                            serde_json::from_value::<lab::evaluation::Prompting>(
                                serde_json::Value::String(p.clone()),
                            )
                            .with_context(|| {
                                format!("--prompting {p}: use r1-zero, compact, cot or direct")
                            })
                        })
                        .transpose()?;
                    lab::stages::sample_from(
                        &runtime,
                        &store,
                        &id,
                        &prompt,
                        prompting,
                        &generation,
                        samples,
                    )?
                }
            };
            for (i, text) in texts.iter().enumerate() {
                writeln!(out, "--- sample {i}")?;
                writeln!(out, "{text}")?;
            }
        }
        Command::Table { ids, markdown, csv } => {
            let store = open_existing(&runtime, &db)?;
            let rows = runtime.block_on(lab::results_table::load(&store, &ids))?;
            let text = if csv {
                lab::results_table::render_csv(&rows)
            } else if markdown {
                lab::results_table::render_markdown(&rows)
            } else {
                lab::results_table::render_text(&rows)
            };
            write!(out, "{text}")?;
        }
        Command::Findings {
            scope,
            markdown,
            csv,
        } => {
            let store = open_existing(&runtime, &db)?;
            let scope = match scope {
                Some(prefix) => Some(runtime.block_on(store.resolve_id(&prefix))?.to_string()),
                None => None,
            };
            let evidence = runtime.block_on(Evidence::load(&store, scope.as_deref()))?;
            let render = if csv {
                Render::Csv
            } else if markdown {
                Render::Markdown
            } else {
                Render::Text
            };
            write!(out, "{}", findings_report(&evidence, render))?;
        }
        Command::Results {
            dir,
            recipes,
            readme,
        } => {
            let store = open_existing(&runtime, &db)?;
            write_results(&runtime, &store, &dir, &recipes, readme.as_deref())?;
            writeln!(out, "{}", dir.display())?;
        }
        Command::Report { ids, out: dir } => {
            let store = open_existing(&runtime, &db)?;
            let ids = ids
                .iter()
                .map(|prefix| runtime.block_on(store.resolve_id(prefix)))
                .collect::<Result<Vec<_>, _>>()?;
            let report = runtime.block_on(lab::report::gather(&store, &ids))?;
            let page = lab::report::write(&report, &dir)?;
            writeln!(out, "{}", page.display())?;
        }
        Command::Habits { id, window } => {
            anyhow::ensure!(window > 0, "--window must be positive, got {window}");
            let store = open_existing(&runtime, &db)?;
            let id = runtime.block_on(store.resolve_id(&id))?;
            let attempts = runtime.block_on(store.attempts(&id))?;
            let attempt = store::AttemptRow::standing_or_latest(&attempts)
                .with_context(|| format!("{id} has never been run"))?;
            let traces = runtime.block_on(store.traces(attempt.id))?;
            write!(out, "{}", habits_report(&id, &traces, window))?;
        }
        Command::Facts {
            ids,
            count,
            seed,
            max_value,
            max_operand,
        } => {
            let set = lab::facts::FactSet {
                count,
                seed,
                max_value,
                max_operand,
            };
            let facts = set.facts().with_context(|| {
                format!(
                    "--max-value {max_value} --max-operand {max_operand}: no fact fits (the \
                     operand must be at least 2 and below the largest value)"
                )
            })?;
            let prompts: Vec<String> = facts.iter().map(lab::facts::prompt).collect();
            let store = open_existing(&runtime, &db)?;
            let mut rows = Vec::new();
            for prefix in &ids {
                let id = runtime.block_on(store.resolve_id(prefix))?;
                let texts = lab::stages::greedy_continuations(&runtime, &store, &id, &prompts, 2)?;
                let answers: Vec<Option<i64>> =
                    texts.iter().map(|t| lab::facts::answer(t)).collect();
                let experiment = runtime.block_on(store.experiment(&id))?;
                let name = format!("{} [{}]", experiment.name, id.short());
                rows.push((name, lab::facts::FactScore::new(&facts, &answers)));
            }
            write!(out, "{}", lab::facts::render(&rows))?;
        }
        Command::Langmix { file, target, json } => {
            langmix(&file, &target, json, out)?;
        }
        Command::Ls { kind, name, status } => {
            let store = open_existing(&runtime, &db)?;
            let filter = RunFilter {
                kind,
                name_contains: name,
                status,
            };
            let runs = runtime.block_on(store.list_runs(&filter))?;
            let alive_or_interrupted = |r: &store::RunRow| -> String {
                r.status.map_or("never run".to_string(), |s| s.to_string())
            };
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.id[..12].to_string(),
                        r.kind.clone(),
                        r.name.clone(),
                        alive_or_interrupted(r),
                        r.progress
                            .map(|p| format!("{:.0}%", p * 100.0))
                            .unwrap_or_default(),
                        r.started_at.clone().unwrap_or_default(),
                        r.attempts.to_string(),
                    ]
                })
                .collect();
            let headers = [
                "id", "kind", "name", "status", "progress", "started", "attempts",
            ];
            let headers: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
            write!(out, "{}", table::render(&headers, &rows, 48))?;
        }
        Command::Show { id } => {
            let store = open_existing(&runtime, &db)?;
            let id = runtime.block_on(store.resolve_id(&id))?;
            show(&runtime, &store, &id, out)?;
        }
        Command::Diff { a, b } => {
            let store = open_existing(&runtime, &db)?;
            let a = runtime.block_on(store.resolve_id(&a))?;
            let b = runtime.block_on(store.resolve_id(&b))?;
            let ea = runtime.block_on(store.experiment(&a))?;
            let eb = runtime.block_on(store.experiment(&b))?;
            let left = lab::spec::flat_settings(&ea.spec, &runtime.block_on(store.lineage(&a))?);
            let right = lab::spec::flat_settings(&eb.spec, &runtime.block_on(store.lineage(&b))?);
            writeln!(out, "--- {} {}", a.short(), ea.name)?;
            writeln!(out, "+++ {} {}", b.short(), eb.name)?;
            let differences = lab::spec::differences(&left, &right);
            for (key, x, y) in &differences {
                let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
                writeln!(out, "{key}: {} → {}", show(x), show(y))?;
            }
            if differences.is_empty() {
                writeln!(out, "(the resolved specs are identical)")?;
            }
        }
        Command::Sql {
            query,
            max_rows,
            timeout,
            format,
            csv,
            json,
        } => {
            if !(timeout.is_finite() && timeout > 0.0) {
                bail!("--timeout must be a positive number of seconds, got {timeout}");
            }
            let limits = store::SqlLimits {
                max_rows,
                timeout: std::time::Duration::from_secs_f64(timeout),
                ..store::SqlLimits::default()
            };
            let store = open_existing(&runtime, &db)?;
            let result = runtime.block_on(store.query_bounded(&query, limits))?;
            if result.truncated {
                eprintln!(
                    "lab sql: kept the first {} rows; the query returned more (--max-rows)",
                    result.rows.len()
                );
            }
            let format = if csv {
                SqlFormat::Csv
            } else if json {
                SqlFormat::Json
            } else {
                format
            };
            match format {
                SqlFormat::Table => {
                    let rows: Vec<Vec<String>> = result
                        .rows
                        .iter()
                        .map(|r| r.iter().map(|c| c.to_string()).collect())
                        .collect();
                    write!(out, "{}", table::render(&result.columns, &rows, 60))?;
                    writeln!(out, "({} rows)", rows.len())?;
                }
                SqlFormat::Csv => {
                    write!(out, "{}", table::csv_line(&result.columns))?;
                    for row in &result.rows {
                        let cells: Vec<String> = row
                            .iter()
                            .map(|c| match c {
                                store::SqlValue::Null => String::new(),
                                other => other.to_string(),
                            })
                            .collect();
                        write!(out, "{}", table::csv_line(&cells))?;
                    }
                }
                SqlFormat::Json => {
                    for row in &result.rows {
                        let object: serde_json::Map<String, serde_json::Value> = result
                            .columns
                            .iter()
                            .cloned()
                            .zip(
                                row.iter()
                                    .map(|c| serde_json::to_value(c).expect("cells serialise")),
                            )
                            .collect();
                        writeln!(out, "{}", serde_json::Value::Object(object))?;
                    }
                }
            }
        }
        Command::ExportModel { id, dir } => {
            let store = open_existing(&runtime, &db)?;
            let id = runtime.block_on(store.resolve_id(&id))?;
            lab::stages::export_hf(&runtime, &store, &id, &dir)?;
            writeln!(out, "{}", dir.display())?;
        }
        Command::Export {
            id,
            what,
            format,
            attempt,
        } => {
            let store = open_existing(&runtime, &db)?;
            let id = runtime.block_on(store.resolve_id(&id))?;
            let attempts = runtime.block_on(store.attempts(&id))?;
            let attempt = match attempt {
                Some(n) => {
                    attempts
                        .iter()
                        .find(|a| a.id == n)
                        .with_context(|| format!("attempt {n} is not an attempt of {id}"))?
                        .id
                }
                None => {
                    store::AttemptRow::standing_or_latest(&attempts)
                        .with_context(|| format!("{id} has never been run"))?
                        .id
                }
            };
            export(&runtime, &store, &id, attempt, what, format, out)?;
        }
    }
    Ok(())
}

fn habits_report(id: &ExperimentId, traces: &[store::TraceRecord], window: i64) -> String {
    use lab::habits::{habit_windows, Habit, ScoredCompletion};
    let scored: Vec<ScoredCompletion> = traces
        .iter()
        .filter_map(|t| {
            Some(ScoredCompletion {
                step: t.step,
                prompt: &t.prompt,
                completion: &t.completion,
                accuracy: t.rewards.accuracy?,
            })
        })
        .collect();
    if scored.is_empty() {
        return format!(
            "{id} has no scored traces (a GRPO run stores them every trace_every steps)\n"
        );
    }
    let windows = habit_windows(&scored, window);
    let mut headers: Vec<String> = ["steps", "n", "accuracy", "words"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for habit in Habit::ALL {
        headers.push(format!("{} share", habit.name()));
        headers.push(format!("{} gain (groups)", habit.name()));
    }
    headers.push("checks".to_string());
    headers.push("caught".to_string());
    headers.push("false alarms".to_string());
    let rows: Vec<Vec<String>> = windows
        .iter()
        .map(|w| {
            let mut row = vec![
                format!("{}-{}", w.first_step, w.last_step),
                w.completions.to_string(),
                format!("{:.2}", w.accuracy),
                format!("{:.1}", w.words),
            ];
            for h in &w.habits {
                row.push(format!("{:.2}", h.share));
                row.push(match h.accuracy_gain {
                    Some(gain) => format!("{gain:+.2} ({})", h.contrast_groups),
                    None => "-".to_string(),
                });
            }
            let v = &w.check_verdicts;
            let rate = |r: Option<f64>, of: usize| match r {
                Some(r) => format!("{r:.2} ({of})"),
                None => "-".to_string(),
            };
            row.push(v.checks.to_string());
            row.push(rate(v.catch_rate(), v.wrong_steps));
            row.push(rate(v.false_alarm_rate(), v.checks - v.wrong_steps));
            row
        })
        .collect();
    format!(
        "{}\ngain: mean over groups (same step and prompt) holding completions with and without the \
         habit of their accuracy difference\ncaught: share of checked wrong steps that the check \
         called wrong (of how many); false alarms: share of checked right steps it called wrong\n",
        table::render(&headers, &rows, 40)
    )
}

fn langmix(file: &std::path::Path, target: &str, json: bool, out: &mut impl Write) -> Result<()> {
    use lab::world::Lang;
    let target = match target {
        "auto" => None,
        "en" => Some(Lang::En),
        "zh" => Some(Lang::Zh),
        other => bail!("--target {other}: use en, zh or auto"),
    };
    let text = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let scores = lab::rewards::score_langmix_lines(&text, target)
        .map_err(|e| anyhow::anyhow!("{} {e}", file.display()))?;
    if json {
        for (_, line_score) in &scores {
            writeln!(out, "{}", serde_json::to_string(line_score)?)?;
        }
    }
    if !json {
        let rows: Vec<Vec<String>> = scores
            .iter()
            .map(|(line, s)| {
                vec![
                    line.to_string(),
                    s.target.code().to_string(),
                    format!("{:.3}", s.consistency),
                    if s.mixed { "yes".into() } else { "no".into() },
                    s.en_words.to_string(),
                    s.zh_words.to_string(),
                ]
            })
            .collect();
        let headers: Vec<String> = [
            "line",
            "target",
            "consistency",
            "mixed",
            "en_words",
            "zh_words",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        write!(out, "{}", table::render(&headers, &rows, 20))?;
        let n = scores.len().max(1) as f64;
        let mean = scores.iter().map(|(_, s)| s.consistency).sum::<f64>() / n;
        let mixed = scores.iter().filter(|(_, s)| s.mixed).count();
        writeln!(
            out,
            "{} completions: mean consistency {mean:.3}, mixed-language rate {:.3} ({mixed} mixed)",
            scores.len(),
            mixed as f64 / n
        )?;
    }
    Ok(())
}

/// Opens the database read-only for commands that only look.
#[derive(Clone, Copy, PartialEq)]
enum Render {
    Text,
    Markdown,
    Csv,
}

/// The gate of each base model that has evaluations, then the findings; checks with nothing to
/// judge by are left out of the text and Markdown (the CSV keeps every row).
fn findings_report(evidence: &Evidence, render: Render) -> String {
    let sections = if render == Render::Csv {
        findings::sections(evidence)
    } else {
        findings::judged_sections(evidence)
    };
    let mut out = String::new();
    for (title, shown) in sections {
        match render {
            Render::Text => {
                out.push_str(&format!("{title}\n{}\n", findings::render_text(&shown)));
            }
            Render::Markdown => {
                out.push_str(&format!(
                    "**{title}**\n\n{}\n",
                    findings::render_markdown(&shown)
                ));
            }
            Render::Csv => {
                let csv = findings::render_csv(&shown);
                // One header for all sections, the section as the first column.
                for (i, line) in csv.lines().enumerate() {
                    if i == 0 && !out.is_empty() {
                        continue;
                    }
                    let section = if i == 0 {
                        "section".to_string()
                    } else {
                        table::csv_field(&title)
                    };
                    out.push_str(&format!("{section},{line}\n"));
                }
            }
        }
    }
    out
}

/// Appends the rows of `csv` to `out` with a first column `recipe`; the header once.
fn append_with_recipe(out: &mut String, csv: &str, recipe: &str) {
    for (i, line) in csv.lines().enumerate() {
        if i == 0 {
            if out.is_empty() {
                out.push_str(&format!("recipe,{line}\n"));
            }
        } else {
            out.push_str(&format!("{recipe},{line}\n"));
        }
    }
}

/// `lab results`: the table, findings and length curves of each recipe into `dir`.
fn write_results(
    runtime: &Runtime,
    store: &Store,
    dir: &std::path::Path,
    recipes: &[String],
    readme: Option<&std::path::Path>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let scopes: Vec<Option<ExperimentId>> = if recipes.is_empty() {
        vec![None]
    } else {
        recipes
            .iter()
            .map(|prefix| runtime.block_on(store.resolve_id(prefix)).map(Some))
            .collect::<Result<_, _>>()?
    };
    let mut summary = String::new();
    let mut table_csv = String::new();
    let mut findings_csv = String::new();
    let mut lengths_csv = String::from("recipe,experiment,model,step,mean_length\n");
    for scope in &scopes {
        let scope_id = scope.as_ref().map(|id| id.to_string());
        let title = match scope {
            Some(id) => {
                let row = runtime.block_on(store.experiment(id))?;
                if row.kind != "recipe" {
                    bail!(
                        "{id} is a {} experiment; `lab results` takes recipe ids",
                        row.kind
                    );
                }
                format!("{} `{}`", row.name, id.short())
            }
            None => "everything in the store".to_string(),
        };
        let evidence = runtime.block_on(Evidence::load(store, scope_id.as_deref()))?;
        let rows = runtime.block_on(evidence.table_rows(store, scope.is_some()))?;
        let table = lab::results_table::render_csv(&rows);
        let recipe = scope_id.clone().unwrap_or_default();
        append_with_recipe(&mut table_csv, &table, &recipe);
        append_with_recipe(
            &mut findings_csv,
            &findings_report(&evidence, Render::Csv),
            &recipe,
        );
        for curve in &evidence.length_curves {
            for (step, value) in &curve.points {
                lengths_csv.push_str(&format!(
                    "{recipe},{},{},{step},{value}\n",
                    curve.experiment, curve.model
                ));
            }
        }
        summary.push_str(&format!(
            "### {title}\n\n{}\n{}\n",
            findings_report(&evidence, Render::Markdown),
            lab::results_table::render_markdown(&rows)
        ));
    }
    let files = [
        ("findings.md", summary.clone()),
        ("findings.csv", findings_csv),
        ("table.csv", table_csv),
        ("lengths.csv", lengths_csv),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(readme) = readme {
        let text = std::fs::read_to_string(readme)
            .with_context(|| format!("reading {}", readme.display()))?;
        let (begin, end) = ("<!-- results:begin -->", "<!-- results:end -->");
        let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
            bail!(
                "{} has no `{begin}` … `{end}` section to replace",
                readme.display()
            );
        };
        if b < a {
            bail!("{}: `{end}` comes before `{begin}`", readme.display());
        }
        let updated = format!("{}{begin}\n{}{}", &text[..a], summary, &text[b..]);
        std::fs::write(readme, updated).with_context(|| format!("writing {}", readme.display()))?;
    }
    Ok(())
}

fn open_existing(runtime: &Runtime, db: &store::Location) -> Result<Store> {
    if !db.exists() {
        bail!(
            "database {} does not exist yet: run an experiment first (lab run SPEC), or pass --db",
            db.database
        );
    }
    Ok(runtime.block_on(Store::open_read_only(db))?)
}

/// `lab run --executor slurm`: stores the plan, submits what is neither completed nor queued,
/// and prints each experiment's fate; with `wait`, follows the jobs until the spec's
/// experiment completed (or its jobs ended without completing it).
fn run_on_slurm(
    runtime: &Runtime,
    store: &Store,
    spec: &Spec,
    sbatch_args: Vec<String>,
    wait: bool,
) -> Result<ExperimentId> {
    use lab::slurm::{self, Submission};
    if matches!(store.location().database, store::Database::Sqlite(_)) {
        // SQLite's WAL needs shared memory, which a network filesystem does not give.
        eprintln!(
            "note: an SQLite store is safe for jobs on this host only; on a cluster, use a \
             PostgreSQL store (--db postgres://... --objects SHARED_DIR)"
        );
    }
    let plan = runner::plan(spec, runtime, Some(store))?;
    Runner::new(runtime, store, false).register(&plan)?;
    let mut options = slurm::SlurmOptions::for_store(store.location())
        .context("finding this lab binary for the jobs to run")?;
    options.sbatch_args = sbatch_args;
    let submitted = slurm::submit(runtime, store, &plan, &options)?;
    for ((id, submission), node) in submitted.iter().zip(&plan.nodes) {
        let what = match submission {
            Submission::Reused => "completed, reused".to_string(),
            Submission::Queued { job } => format!("already queued as job {job}"),
            Submission::Submitted { job, after } if after.is_empty() => format!("job {job}"),
            Submission::Submitted { job, after } => {
                format!("job {job} after {}", after.join(", "))
            }
        };
        eprintln!(
            "{}  {:<9} {}: {what}",
            id.short(),
            node.spec.kind(),
            node.spec.name
        );
    }
    eprintln!("job logs: {}", options.log_dir.display());
    if !wait {
        return Ok(plan.root);
    }
    let jobs: Vec<String> = submitted
        .iter()
        .filter_map(|(_, s)| s.job().map(str::to_string))
        .collect();
    loop {
        if runtime
            .block_on(store.standing_attempt(&plan.root))?
            .is_some()
        {
            return Ok(plan.root);
        }
        let mut queued = false;
        for job in &jobs {
            queued |= slurm::job_state(job)?.is_some_and(|s| s.is_queued());
        }
        if !queued {
            // One last look: the root's job may have completed it since the first one.
            if runtime
                .block_on(store.standing_attempt(&plan.root))?
                .is_some()
            {
                return Ok(plan.root);
            }
            let mut failed = Vec::new();
            for node in &plan.nodes {
                if runtime
                    .block_on(store.standing_attempt(&node.id))?
                    .is_none()
                {
                    let attempts = runtime.block_on(store.attempts(&node.id))?;
                    let why = attempts
                        .last()
                        .map(|a| match &a.error {
                            Some(e) => format!("{}: {e}", a.status),
                            None => a.status.to_string(),
                        })
                        .unwrap_or_else(|| "never started (an input failed)".into());
                    failed.push(format!("  {} {}: {why}", node.id.short(), node.spec.name));
                }
            }
            bail!(
                "the jobs ended without completing {}:\n{}\n(logs in {})",
                plan.root.short(),
                failed.join("\n"),
                options.log_dir.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `lab cancel`: through Slurm for what runs or waits there, else the process on this host.
/// A recipe's cancel reaches every stage inside it (through nested recipes), so a whole run
/// stops.
fn cancel(runtime: &Runtime, store: &Store, id: &ExperimentId) -> Result<Vec<String>> {
    let mut targets = vec![id.clone()];
    let mut i = 0;
    while i < targets.len() {
        if runtime.block_on(store.experiment(&targets[i]))?.kind == "recipe" {
            for (_, stage, _) in runtime.block_on(store.lineage(&targets[i]))? {
                let stage = ExperimentId::parse(&stage).expect("stored ids are valid");
                if !targets.contains(&stage) {
                    targets.push(stage);
                }
            }
        }
        i += 1;
    }
    let mut lines = Vec::new();
    for target in &targets {
        for line in cancel_one(runtime, store, target)? {
            lines.push(format!("{}  {line}", target.short()));
        }
    }
    if lines.is_empty() {
        bail!("nothing runs or waits for {}", id.short());
    }
    Ok(lines)
}

/// What runs or waits for one experiment, stopped; nothing when nothing does.
fn cancel_one(runtime: &Runtime, store: &Store, id: &ExperimentId) -> Result<Vec<String>> {
    use lab::slurm::{self, Cancelled};
    let mut lines: Vec<String> = slurm::cancel_experiment(runtime, store, id)?
        .into_iter()
        .map(|c| match c {
            Cancelled::Job { attempt, job } => {
                format!("cancelled Slurm job {job} (attempt {attempt})")
            }
            Cancelled::Pending { jobs } => {
                format!("withdrew queued Slurm job(s) {}", jobs.join(", "))
            }
        })
        .collect();
    let here = store::this_host();
    for attempt in runtime.block_on(store.attempts(id))? {
        if attempt.status != store::AttemptStatus::Running || attempt.job.is_some() {
            continue;
        }
        if attempt.host != here {
            bail!(
                "{} runs on {} (pid {}), not here: cancel it there",
                id.short(),
                attempt.host,
                attempt.pid
            );
        }
        if !store::process_alive(attempt.pid) {
            continue;
        }
        let status = std::process::Command::new("kill")
            .args(["-TERM", &attempt.pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", attempt.pid);
        }
        lines.push(format!(
            "sent SIGTERM to pid {} (attempt {})",
            attempt.pid, attempt.id
        ));
    }
    Ok(lines)
}

fn show(runtime: &Runtime, store: &Store, id: &ExperimentId, out: &mut impl Write) -> Result<()> {
    let experiment = runtime.block_on(store.experiment(id))?;
    writeln!(out, "experiment  {id}")?;
    writeln!(out, "kind        {}", experiment.kind)?;
    writeln!(out, "name        {}", experiment.name)?;
    writeln!(out, "created     {}", experiment.created_at)?;
    writeln!(out, "numerics    v{}", experiment.numerics_version)?;
    let lineage = runtime.block_on(store.lineage(id))?;
    if !lineage.is_empty() {
        // For a recipe these are its stages: the stage graph with each stage's status.
        let title = if experiment.kind == "recipe" {
            "stages"
        } else {
            "inputs"
        };
        writeln!(out, "\n{title}")?;
        let mut rows = Vec::new();
        for (role, parent, name) in lineage {
            let parent_id = ExperimentId::parse(&parent).expect("stored ids are valid");
            let parent_row = runtime.block_on(store.experiment(&parent_id))?;
            let attempts = runtime.block_on(store.attempts(&parent_id))?;
            let status = store::AttemptRow::standing_or_latest(&attempts)
                .map_or("never run".to_string(), |a| a.status.to_string());
            let uses: Vec<String> = runtime
                .block_on(store.lineage(&parent_id))?
                .into_iter()
                .map(|(r, p, _)| format!("{r}={}", &p[..8]))
                .collect();
            rows.push(vec![
                role,
                parent[..12].to_string(),
                parent_row.kind,
                name,
                status,
                uses.join(" "),
            ]);
        }
        let headers: Vec<String> = ["role", "id", "kind", "name", "status", "inputs"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        write!(out, "{}", indent(&table::render(&headers, &rows, 40), 2))?;
    }
    writeln!(out, "\nspec")?;
    writeln!(
        out,
        "{}",
        indent(&serde_json::to_string_pretty(&experiment.spec)?, 2)
    )?;
    let attempts = runtime.block_on(store.attempts(id))?;
    writeln!(out, "\nattempts")?;
    if attempts.is_empty() {
        writeln!(out, "  (none)")?;
    }
    let here = store::this_host();
    let rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            // A pid means something on its own host only; elsewhere the lease tells.
            let status = if a.status == store::AttemptStatus::Running
                && a.host == here
                && !runner::process_alive(a.pid)
            {
                "running (process gone)".to_string()
            } else {
                a.status.to_string()
            };
            let mut host = match &a.job {
                Some(job) => format!("{} ({job})", a.host),
                None => a.host.clone(),
            };
            if let Some(device) = a.device.as_deref().filter(|d| *d != "flex") {
                host.push_str(&format!(" on {device}"));
            }
            vec![
                a.id.to_string(),
                status,
                a.started_at.clone(),
                a.ended_at.clone().unwrap_or_default(),
                host,
                a.git_commit
                    .as_deref()
                    .map(|c| c[..c.len().min(10)].to_string())
                    .unwrap_or_default(),
                a.result_digest
                    .as_deref()
                    .map(|d| d[..12].to_string())
                    .unwrap_or_default(),
                a.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let headers: Vec<String> = [
            "attempt", "status", "started", "ended", "host", "commit", "digest", "error",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        write!(out, "{}", indent(&table::render(&headers, &rows, 60), 2))?;
    }
    let shown = store::AttemptRow::standing_or_latest(&attempts);
    if let Some(attempt) = shown {
        let metrics = runtime.block_on(store.latest_metrics(attempt.id))?;
        if !metrics.is_empty() {
            writeln!(out, "\nlatest metrics (attempt {})", attempt.id)?;
            let rows: Vec<Vec<String>> = metrics
                .iter()
                .map(|m| vec![m.name.clone(), m.step.to_string(), format_value(m.value)])
                .collect();
            let headers = vec!["metric".to_string(), "step".into(), "value".into()];
            write!(out, "{}", indent(&table::render(&headers, &rows, 60), 2))?;
        }
        let artifacts = runtime.block_on(store.artifacts(attempt.id))?;
        if !artifacts.is_empty() {
            writeln!(out, "\nartifacts (attempt {})", attempt.id)?;
            let rows: Vec<Vec<String>> = artifacts
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.kind.clone(),
                        a.rows.to_string(),
                        a.bytes.to_string(),
                        a.hash[..16].to_string(),
                    ]
                })
                .collect();
            let headers: Vec<String> = ["name", "kind", "rows", "bytes", "hash"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            write!(out, "{}", indent(&table::render(&headers, &rows, 60), 2))?;
        }
    }
    Ok(())
}

fn export(
    runtime: &Runtime,
    store: &Store,
    id: &ExperimentId,
    attempt: i64,
    what: ExportWhat,
    format: ExportFormat,
    out: &mut impl Write,
) -> Result<()> {
    match what {
        ExportWhat::Metrics => {
            let metrics = runtime.block_on(store.metrics(attempt))?;
            if let ExportFormat::Csv = format {
                writeln!(out, "experiment,attempt,name,step,value")?;
            }
            for m in metrics {
                match format {
                    ExportFormat::Csv => write!(
                        out,
                        "{}",
                        table::csv_line(&[
                            id.to_string(),
                            attempt.to_string(),
                            m.name.clone(),
                            m.step.to_string(),
                            format!("{:?}", m.value),
                        ])
                    )?,
                    ExportFormat::Jsonl => writeln!(
                        out,
                        "{}",
                        serde_json::json!({
                            "experiment": id.as_str(), "attempt": attempt,
                            "name": m.name, "step": m.step, "value": m.value,
                        })
                    )?,
                }
            }
        }
        ExportWhat::Traces => {
            let traces = runtime.block_on(store.traces(attempt))?;
            if let ExportFormat::Csv = format {
                writeln!(
                    out,
                    "experiment,attempt,step,sample,prompt,completion,reward_parts,language_scores,meta"
                )?;
            }
            for t in traces {
                match format {
                    ExportFormat::Csv => write!(
                        out,
                        "{}",
                        table::csv_line(&[
                            id.to_string(),
                            attempt.to_string(),
                            t.step.to_string(),
                            t.sample.to_string(),
                            t.prompt.clone(),
                            t.completion.clone(),
                            lab::trace::part_json(&t.rewards),
                            lab::trace::part_json(&t.language),
                            lab::trace::part_json(&t.labels),
                        ])
                    )?,
                    ExportFormat::Jsonl => {
                        let mut value = serde_json::to_value(&t)?;
                        value["experiment"] = id.as_str().into();
                        value["attempt"] = attempt.into();
                        writeln!(out, "{value}")?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}")
    }
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
        .trim_end_matches('\n')
        .to_string()
        + "\n"
}

/// Samples from a Hugging Face model directory: the prompt as a user turn of its chat template,
/// sample `i` from its own stream (`sample_seed(seed, i)`), with the lab's sampler and KV cache
/// ([`lab::generate::generate`]), stopping at the end-of-sequence token or once `</answer>` is
/// written.
fn generate_hf(
    dir: &std::path::Path,
    device: &burn::prelude::Device,
    prompt: &str,
    think: bool,
    samples: usize,
    generation: &lab::generate::GenerationConfig,
) -> Result<Vec<String>> {
    use lab::hf::{HfBundle, Message};
    let bundle = HfBundle::read(dir, device)?;
    let turn = [Message {
        role: "user".into(),
        content: prompt.to_string(),
    }];
    let ids = bundle
        .chat_ids(&turn, if think { "<think>\n" } else { "" })
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let completions = lab::generate::generate(
        &bundle.model,
        &bundle.tokenizer,
        &[ids],
        samples,
        generation,
        0,
    );
    Ok(completions.into_iter().map(|c| c.text).collect())
}
