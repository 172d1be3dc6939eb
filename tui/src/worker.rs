//! Background work, apart from the UI (as gitui's asyncgit): one thread owns a tokio
//! current-thread runtime and a read-only [`Store`], takes [`Request`]s over a channel and answers
//! [`Response`]s over another. It also starts and watches the `lab` processes the user launches;
//! the TUI itself never writes experiment data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use lab::identity::ExperimentId;
use lab::store::{Location, SqlLimits, Store, StoreError};

use crate::data::*;

/// Where the worker finds the database and the `lab` binary.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub db: Location,
    pub lab_bin: PathBuf,
    /// Folder for launched processes' output.
    pub log_dir: PathBuf,
}

/// The UI's handle on the worker: send requests, poll responses.
pub struct Worker {
    pub requests: Sender<Request>,
    pub responses: Receiver<Response>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(config: WorkerConfig) -> Worker {
        let (req_tx, req_rx) = mpsc::channel::<Request>();
        let (resp_tx, resp_rx) = mpsc::channel::<Response>();
        let thread = std::thread::Builder::new()
            .name("lab-tui-worker".into())
            .spawn(move || {
                let mut state = match Backend::new(config) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = resp_tx.send(Response::Error(e));
                        return;
                    }
                };
                while let Ok(first) = req_rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(req_rx.try_iter());
                    for request in coalesce(batch) {
                        for response in state.handle(request) {
                            if resp_tx.send(response).is_err() {
                                return;
                            }
                        }
                    }
                }
                state.close();
            })
            .expect("spawning the worker thread");
        Worker {
            requests: req_tx,
            responses: resp_rx,
            thread: Some(thread),
        }
    }

    pub fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }

    /// Stops the worker after the requests already sent (launched processes keep running).
    pub fn shutdown(mut self) {
        let (dead_tx, _) = mpsc::channel();
        self.requests = dead_tx;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Requests queued while the worker was busy: read-only ones asked again are answered once
/// (the last asked wins); process actions are all kept, in order.
fn coalesce(batch: Vec<Request>) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    for r in batch {
        let replaceable = !matches!(
            r,
            Request::Launch { .. }
                | Request::Rerun { .. }
                | Request::Cancel { .. }
                | Request::ExportFigure(_)
        );
        if replaceable {
            let same = std::mem::discriminant(&r);
            out.retain(|o| std::mem::discriminant(o) != same);
        }
        out.push(r);
    }
    out
}

/// The worker's side: answers requests one at a time. The thread of [`Worker`] runs one; tests
/// drive one directly to get deterministic answers.
pub struct Backend {
    config: WorkerConfig,
    runtime: tokio::runtime::Runtime,
    store: Option<Store>,
    children: Vec<(Child, Launched)>,
}

impl Backend {
    pub fn new(config: WorkerConfig) -> Result<Backend, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("async runtime: {e}"))?;
        Ok(Backend {
            config,
            runtime,
            store: None,
            children: Vec::new(),
        })
    }

    pub fn close(&mut self) {
        if let Some(store) = self.store.take() {
            self.runtime.block_on(store.close());
        }
    }

    pub fn handle(&mut self, request: Request) -> Vec<Response> {
        match request {
            Request::Launch {
                spec,
                overrides,
                slurm,
            } => {
                let mut args = vec!["run".to_string(), spec.display().to_string()];
                for o in &overrides {
                    args.push("--set".into());
                    args.push(o.clone());
                }
                if slurm {
                    args.extend(["--executor".to_string(), "slurm".to_string()]);
                }
                let what = format!(
                    "run {}{}",
                    spec.display(),
                    if slurm { " on Slurm" } else { "" }
                );
                vec![self.spawn_lab(&args, what), self.processes()]
            }
            Request::Rerun { run } => {
                let args = vec!["rerun".to_string(), run.id.clone()];
                vec![
                    self.spawn_lab(&args, format!("rerun {}", run.label())),
                    self.processes(),
                ]
            }
            Request::Cancel { run, .. } => vec![self.cancel(&run)],
            Request::ExportFigure(figure) => vec![self.export_figure(&figure)],
            Request::DryRun { spec, overrides } => {
                vec![Response::DryRun(self.dry_run(&spec, &overrides))]
            }
            Request::Runs => {
                // No database yet, or one its first run is still creating, is no runs yet.
                let mut out = match self.open_store() {
                    Ok(store) => vec![runs(&store, &self.runtime)
                        .map(Response::Runs)
                        .unwrap_or_else(Response::Error)],
                    Err(StoreError::Missing { .. } | StoreError::NotReady { .. }) => {
                        vec![Response::Runs(Vec::new())]
                    }
                    Err(e) => vec![Response::Error(e.to_string())],
                };
                if !self.children.is_empty() {
                    out.push(self.processes());
                }
                out
            }
            Request::MetricNames { attempts } => {
                vec![self
                    .with_store(|s, rt| metric_names(s, rt, &attempts).map(Response::MetricNames))]
            }
            Request::Series { runs, metric } => vec![self.with_store(|s, rt| {
                series(s, rt, &runs, &metric).map(|series| Response::Series { metric, series })
            })],
            Request::Traces { run } => vec![self.with_store(|s, rt| {
                rt.block_on(s.traces(run.attempt))
                    .map_err(|e| e.to_string())
                    .map(|traces| Response::Traces { run, traces })
            })],
            Request::LangMix => {
                vec![self.with_store(|s, rt| lang_mix(s, rt).map(Response::LangMix))]
            }
            Request::SpecDiff { a, b } => {
                vec![self.with_store(|s, rt| spec_diff(s, rt, a, b).map(Response::SpecDiff))]
            }
            Request::Sql(sql) => {
                let result = match self.store() {
                    Ok(store) => self
                        .runtime
                        .block_on(store.query_bounded(&sql, sql_limits()))
                        .map_err(|e| error_chain(&e)),
                    Err(e) => Err(e),
                };
                vec![Response::Sql { sql, result }]
            }
        }
    }

    /// The store, opened on first use (the database may not exist until a first run).
    fn store(&mut self) -> Result<Store, String> {
        self.open_store().map_err(|e| e.to_string())
    }

    /// Writes `figure` as `figures/NAME.svg` and `.png` beside the object folder (beside an
    /// SQLite database); the notice names both files.
    fn export_figure(&self, figure: &lab::report::figure::Figure) -> Response {
        let dir = self
            .config
            .db
            .objects
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("figures");
        let svg = dir.join(format!("{}.svg", figure.name));
        let png = dir.join(format!("{}.png", figure.name));
        let written = std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))
            .and_then(|()| figure.to_svg().map_err(|e| e.to_string()))
            .and_then(|text| {
                std::fs::write(&svg, text).map_err(|e| format!("{}: {e}", svg.display()))
            })
            .and_then(|()| figure.write_png(&png).map_err(|e| e.to_string()));
        match written {
            Ok(()) => Response::Notice(format!(
                "chart written to {} and {}",
                png.display(),
                svg.display()
            )),
            Err(e) => Response::Error(format!("writing the chart: {e}")),
        }
    }

    fn open_store(&mut self) -> Result<Store, StoreError> {
        if self.store.is_none() {
            let store = self
                .runtime
                .block_on(Store::open_read_only(&self.config.db))?;
            self.store = Some(store);
        }
        Ok(self.store.clone().expect("opened above"))
    }

    fn with_store(
        &mut self,
        f: impl FnOnce(&Store, &tokio::runtime::Runtime) -> Result<Response, String>,
    ) -> Response {
        match self.store() {
            Ok(store) => f(&store, &self.runtime).unwrap_or_else(Response::Error),
            Err(e) => Response::Error(e),
        }
    }

    fn lab(&self) -> Command {
        let mut cmd = Command::new(&self.config.lab_bin);
        cmd.args(self.config.db.cli_args());
        cmd
    }

    /// Cancels a run as `lab cancel ID` does: its Slurm job, or its process on this host.
    fn cancel(&self, run: &RunRef) -> Response {
        match self.lab().arg("cancel").arg(&run.id).output() {
            Ok(out) if out.status.success() => Response::Notice(format!(
                "{}: {}",
                run.label(),
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .replace('\n', "; ")
            )),
            Ok(out) => Response::Error(
                String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string(),
            ),
            Err(e) => Response::Error(format!("{}: {e}", self.config.lab_bin.display())),
        }
    }

    /// The id a spec would get and whether it is done, planned in-process against the store
    /// (as `lab run SPEC --dry-run` does), so nothing is written and no process is started.
    fn dry_run(&mut self, path: &Path, overrides: &[String]) -> Result<DryRun, String> {
        let spec = lab::spec::Spec::load(path, overrides).map_err(|e| e.to_string())?;
        // No database yet, or one its first run is still creating: nothing is done yet.
        let store = match self.open_store() {
            Ok(store) => Some(store),
            Err(StoreError::Missing { .. } | StoreError::NotReady { .. }) => None,
            Err(e) => return Err(error_chain(&e)),
        };
        let plan =
            lab::runner::plan(&spec, &self.runtime, store.as_ref()).map_err(|e| error_chain(&e))?;
        let done = match &store {
            Some(store) => self
                .runtime
                .block_on(store.standing_attempt(&plan.root))
                .map_err(|e| error_chain(&e))?
                .is_some(),
            None => false,
        };
        Ok(DryRun {
            spec: path.to_path_buf(),
            overrides: overrides.to_vec(),
            id: plan.root.to_string(),
            state: if done { "completed" } else { "not run" }.to_string(),
            label: format!("{} {}", spec.kind(), spec.name),
        })
    }

    /// Starts `lab ARGS` as its own process group, so it outlives the TUI and its terminal.
    fn spawn_lab(&mut self, args: &[String], what: String) -> Response {
        use std::os::unix::process::CommandExt;
        if let Err(e) = std::fs::create_dir_all(&self.config.log_dir) {
            return Response::Error(format!("{}: {e}", self.config.log_dir.display()));
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let log = self.config.log_dir.join(format!("launch-{stamp}.log"));
        let file = match std::fs::File::create(&log) {
            Ok(f) => f,
            Err(e) => return Response::Error(format!("{}: {e}", log.display())),
        };
        let err_file = match file.try_clone() {
            Ok(f) => f,
            Err(e) => return Response::Error(format!("{}: {e}", log.display())),
        };
        let mut cmd = self.lab();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err_file)
            .process_group(0);
        match cmd.spawn() {
            Ok(child) => {
                let launched = Launched {
                    pid: child.id(),
                    what: what.clone(),
                    exit: None,
                    log: log.clone(),
                };
                let pid = child.id();
                self.children.push((child, launched));
                Response::Notice(format!("started `lab {}` as pid {pid}", args.join(" ")))
            }
            Err(e) => Response::Error(format!("{}: {e}", self.config.lab_bin.display())),
        }
    }

    /// Reaps finished children and reports every launched process.
    fn processes(&mut self) -> Response {
        for (child, launched) in &mut self.children {
            if launched.exit.is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    launched.exit = Some(status.code().unwrap_or(-1));
                }
            }
        }
        Response::Processes(self.children.iter().map(|(_, l)| l.clone()).collect())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

/// Bounds on the SQL view's queries: a screen shows far fewer rows than `lab sql` writes out,
/// and the worker serves the other views too, so a runaway query must end soon.
fn sql_limits() -> SqlLimits {
    SqlLimits {
        max_rows: 10_000,
        timeout: std::time::Duration::from_secs(10),
        ..SqlLimits::default()
    }
}

fn runs(store: &Store, rt: &tokio::runtime::Runtime) -> Result<Vec<RunSummary>, String> {
    rt.block_on(store.run_overview(&lab::store::this_host()))
        .map_err(|e| error_chain(&e))
}

fn metric_names(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    attempts: &[i64],
) -> Result<Vec<String>, String> {
    rt.block_on(store.curve_names(attempts))
        .map_err(|e| error_chain(&e))
}

fn points(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    attempt: i64,
    metric: &str,
) -> Result<Vec<(f64, f64)>, String> {
    Ok(rt
        .block_on(store.metric_series(attempt, metric))
        .map_err(|e| error_chain(&e))?
        .into_iter()
        .map(|(step, value)| (step as f64, value))
        .collect())
}

fn series(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    runs: &[RunRef],
    metric: &str,
) -> Result<Vec<Series>, String> {
    runs.iter()
        .map(|run| {
            Ok(Series {
                run: run.clone(),
                points: points(store, rt, run.attempt, metric)?,
            })
        })
        .collect()
}

fn lang_mix(store: &Store, rt: &tokio::runtime::Runtime) -> Result<Vec<LangRow>, String> {
    let overview = rt
        .block_on(store.mixing_overview())
        .map_err(|e| error_chain(&e))?;
    let mut rows = Vec::new();
    for r in overview {
        let run = RunRef {
            id: r.id,
            name: r.name,
            attempt: r.attempt,
        };
        let (mixed_curve, consistency_curve) = if r.train_mixed.is_some() || r.consistency.is_some()
        {
            (
                points(store, rt, run.attempt, "lang/mixed_rate")?,
                points(store, rt, run.attempt, "lang/consistency")?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        rows.push(LangRow {
            kind: r.kind,
            run,
            train_mixed: r.train_mixed,
            consistency: r.consistency,
            eval_mixed: r.eval_mixed,
            traces_mixed: r.traces_mixed,
            traces: r.traces,
            mixed_curve,
            consistency_curve,
        });
    }
    rows.sort_by(|a, b| {
        b.worst()
            .total_cmp(&a.worst())
            .then_with(|| a.run.name.cmp(&b.run.name))
    });
    Ok(rows)
}

fn spec_diff(
    store: &Store,
    rt: &tokio::runtime::Runtime,
    a: RunRef,
    b: RunRef,
) -> Result<SpecDiff, String> {
    let side = |run: &RunRef| -> Result<BTreeMap<String, String>, String> {
        let id = ExperimentId::parse(&run.id).ok_or_else(|| format!("bad id {}", run.id))?;
        let e = rt
            .block_on(store.experiment(&id))
            .map_err(|e| e.to_string())?;
        let inputs = rt.block_on(store.lineage(&id)).map_err(|e| e.to_string())?;
        let mut map = lab::spec::flat_settings(&e.spec, &inputs);
        map.insert("kind".into(), e.kind);
        Ok(map)
    };
    let lines = lab::spec::differences(&side(&a)?, &side(&b)?)
        .into_iter()
        .map(|(key, left, right)| DiffLine { key, left, right })
        .collect();
    Ok(SpecDiff { a, b, lines })
}
