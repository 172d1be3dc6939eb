//! `lab-tui`: the terminal UI of R1 Lab (`just lab`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use ratatui::crossterm::event::{self, Event};
use tui::{Action, App, AppConfig, Worker, WorkerConfig};

/// R1 Lab's terminal UI: runs, launch, compare, language mixing, traces, spec diff, SQL.
#[derive(Parser)]
#[command(name = "lab-tui", version, about)]
struct Cli {
    /// The store's database: an SQLite file (or sqlite: URL), or a PostgreSQL URL.
    #[arg(long, env = "LAB_DB", default_value = ".lab/lab.db")]
    db: String,
    /// The store's object folder (beside an SQLite file by default; needed for PostgreSQL).
    #[arg(long, env = "LAB_OBJECTS")]
    objects: Option<PathBuf>,
    /// Folder of experiment specs for the Launch view.
    #[arg(long, default_value = "experiments")]
    experiments: PathBuf,
    /// The `lab` binary that launches runs (default: the one beside this binary, else PATH).
    #[arg(long, env = "LAB_BIN")]
    lab_bin: Option<PathBuf>,
}

fn default_lab_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("lab")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("lab"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let db = lab::store::Location::parse(&cli.db, cli.objects.as_deref())?;
    // Beside the object folder: `.lab/logs` for the default `.lab/lab.db`.
    let log_dir = db
        .objects
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("logs");
    let worker = Worker::spawn(WorkerConfig {
        db: db.clone(),
        lab_bin: cli.lab_bin.unwrap_or_else(default_lab_bin),
        log_dir,
    });
    let mut app = App::new(
        AppConfig {
            db: db.database.to_string(),
            experiments: cli.experiments,
        },
        tui::time::now(),
    );
    // ratatui::init enters raw mode and the alternate screen and installs a panic hook that
    // restores the terminal before the panic message prints.
    let mut terminal = ratatui::init();
    let result = run(&mut terminal, &mut app, &worker);
    ratatui::restore();
    worker.shutdown();
    result
}

fn run(terminal: &mut ratatui::DefaultTerminal, app: &mut App, worker: &Worker) -> Result<()> {
    loop {
        for request in app.take_requests() {
            worker.send(request);
        }
        terminal.draw(|frame| tui::ui::draw(app, frame))?;
        if event::poll(Duration::from_millis(100))? {
            match event::read()? {
                Event::Key(key) => app.update(Action::Key(key)),
                // The next draw uses the new size.
                Event::Resize(..) => {}
                _ => {}
            }
            // Answer a burst of keys before redrawing.
            while event::poll(Duration::ZERO)? {
                if let Event::Key(key) = event::read()? {
                    app.update(Action::Key(key));
                }
            }
        }
        while let Ok(response) = worker.responses.try_recv() {
            app.update(Action::Data(response));
        }
        app.update(Action::Tick(tui::time::now()));
        if app.should_quit {
            return Ok(());
        }
    }
}
