//! The experiment store: a database (an SQLite file by default, or a PostgreSQL server that a
//! cluster shares), its migrations, and the object folder for checkpoints and data sets.
//!
//! Connection settings live in one place per database ([`sqlite_options`],
//! [`backend::postgres_options`]). On SQLite, writes are batched in `BEGIN IMMEDIATE`
//! transactions so several `lab run` processes can write to one file at once. Queries are
//! written once for both databases ([`on_pool!`], [`Dialect`]). The store knows nothing of
//! models or tensors: it keeps rows and files addressed by hash.

/// Runs `$body` with `$pool` bound to the store's concrete pool: the body is written once and
/// compiled for each driver.
macro_rules! on_pool {
    ($pool_enum:expr, $pool:ident => $body:expr) => {
        match $pool_enum {
            $crate::store::backend::Pool::Sqlite($pool) => $body,
            $crate::store::backend::Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs one statement with its bound values on the store's pool, for its effect; errors name
/// the database.
macro_rules! execute {
    ($store:expr, $sql:expr $(, $value:expr)* $(,)?) => {
        on_pool!(&$store.pool, pool => sqlx::query($sql)
            $(.bind($value))*
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err($store.err())
    };
}

/// Inserts `$rows` in one writing transaction, as multi-row `INSERT`s of at most
/// [`INSERT_CHUNK`] rows: `$head` (`INSERT INTO t (a, b) `), one `VALUES` tuple per row bound by
/// `$bind` (`|b, row| { b.push_bind(...); }`), then `$tail` (the `ON CONFLICT` clause). One
/// statement per chunk instead of one per row is what a server's round trips and parsing want.
/// The fault point `$fault` fires after the inserts, before the commit.
macro_rules! insert_rows {
    ($store:expr, $fault:expr, $rows:expr, $head:expr, $tail:expr, |$b:ident, $row:ident| $bind:block) => {{
        let dialect = $store.dialect();
        on_pool!(&$store.pool, pool => async {
            let mut tx = pool.begin_with(dialect.begin_write()).await?;
            for chunk in $rows.chunks(INSERT_CHUNK) {
                let mut query = sqlx::QueryBuilder::new($head);
                query.push_values(chunk, |mut $b, $row| $bind);
                query.push($tail);
                query.build().execute(&mut *tx).await?;
            }
            crate::faults::point($fault);
            tx.commit().await
        }
        .await)
        .map_err($store.err())
    }};
}

/// Rows per multi-row `INSERT` ([`insert_rows!`]): 8 columns × 500 rows stays far below both
/// databases' limits on bound parameters (SQLite 32,766; PostgreSQL 65,535).
const INSERT_CHUNK: usize = 500;

mod backend;
mod curves;
mod guard;
mod jobs;
mod objects;
mod overview;
mod query;
mod results;
#[doc(hidden)]
pub mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::identity::ExperimentId;
use crate::trace::{parse_part, part_json};
use backend::{sqlstate, Pool, PG_DUPLICATE_DATABASE, PG_NO_SUCH_DATABASE};

pub use backend::{objects_folder, Database, Dialect, Location, LocationError};
pub use curves::StandingRun;
pub use jobs::JobRecord;
pub use objects::{ObjectError, ObjectStore, StoredObject};
pub use overview::{MixingOverview, RunOverview};
pub use query::{QueryResult, SqlError, SqlLimits, SqlValue};
pub use results::{EvalCandidate, EvaluationNumber, LengthPoint, ModelResult};

/// `PRAGMA application_id` of an R1 Lab database ("R1LB"), set by the first migration.
pub const APPLICATION_ID: i64 = 0x5231_4C42;

/// How long a write waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a running attempt renews its lease ([`Store::heartbeat`]).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How long a lease lasts: a running attempt whose heartbeat is older is dead, wherever it ran.
/// Twelve missed heartbeats, so a machine busy on both cores never loses a live attempt.
pub const LEASE: Duration = Duration::from_secs(60);

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {db}: {source}")]
    Db {
        db: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database {db}: migrating the schema failed: {source}")]
    Migrate {
        db: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("{db} is not an R1 Lab database ({reason}); refusing to touch it")]
    Foreign { db: String, reason: String },
    #[error("database {db} does not exist")]
    Missing { db: String },
    /// The database exists but has no schema yet. `creating`: a first run holds the migration
    /// lock and is creating it now (a moment's state); otherwise the first run stopped before
    /// it created the schema (it was killed), and the next run will create it.
    #[error("{}", not_ready_message(db, *creating))]
    NotReady { db: String, creating: bool },
    #[error(transparent)]
    Location(#[from] LocationError),
    #[error("no experiment id starts with `{prefix}`")]
    UnknownId { prefix: String },
    #[error("id prefix `{prefix}` is ambiguous; it matches:\n{}", candidates.join("\n"))]
    AmbiguousId {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("`{prefix}` is not an id prefix: use hex digits 0-9 a-f")]
    BadPrefix { prefix: String },
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error("trace {step}/{sample} of attempt {attempt}: {source}")]
    Trace {
        attempt: i64,
        step: i64,
        sample: i64,
        #[source]
        source: crate::trace::TraceSchemaError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A scalar metric at a step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricPoint {
    pub name: String,
    pub step: i64,
    pub value: f64,
}

impl MetricPoint {
    pub fn new(name: impl Into<String>, step: i64, value: f64) -> Self {
        MetricPoint {
            name: name.into(),
            step,
            value,
        }
    }

    /// Wall-clock measurements differ between identical runs and stay out of result digests.
    pub fn is_wall_clock(&self) -> bool {
        self.name.starts_with("perf/")
    }
}

pub use crate::trace::TraceRecord;

/// A trace as its row holds it: the three parts as JSON text.
#[derive(sqlx::FromRow)]
struct StoredTrace {
    step: i64,
    sample: i64,
    prompt: String,
    completion: String,
    reward_parts: String,
    language_scores: String,
    meta: String,
}

impl StoredTrace {
    fn parse(self) -> std::result::Result<TraceRecord, crate::trace::TraceSchemaError> {
        Ok(TraceRecord {
            step: self.step,
            sample: self.sample,
            prompt: self.prompt,
            completion: self.completion,
            rewards: parse_part("reward_parts", &self.reward_parts)?,
            language: parse_part("language_scores", &self.language_scores)?,
            labels: parse_part("meta", &self.meta)?,
        })
    }
}

/// One number of an evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalRecord {
    pub benchmark: String,
    pub prompting: String,
    pub metric: String,
    pub k: i64,
    pub value: f64,
    pub stderr: Option<f64>,
}

/// A file an attempt produced, stored in the object folder.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ArtifactRecord {
    pub name: String,
    pub kind: String,
    pub hash: String,
    pub path: String,
    pub rows: i64,
    pub bytes: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    pub id: ExperimentId,
    pub kind: String,
    pub name: String,
    pub spec: serde_json::Value,
    pub numerics_version: i64,
    pub created_at: String,
}

/// Where an attempt stands. Stored as its lowercase name (`'completed'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    /// Its process is running it (or died without a word: see [`Store::mark_interrupted`]).
    Running,
    Completed,
    /// The stage returned an error, recorded with the attempt.
    Failed,
    /// Its process ended without finishing; the next run resumes it from its last checkpoint.
    Interrupted,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Running => "running",
            AttemptStatus::Completed => "completed",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Interrupted => "interrupted",
        }
    }
}

/// A status column that holds none of [`AttemptStatus`]'s names.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an attempt status")]
pub struct UnknownStatus(String);

/// Read from its column as text, so one decoding serves every database.
impl TryFrom<String> for AttemptStatus {
    type Error = UnknownStatus;

    fn try_from(name: String) -> std::result::Result<Self, UnknownStatus> {
        [
            AttemptStatus::Running,
            AttemptStatus::Completed,
            AttemptStatus::Failed,
            AttemptStatus::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
        .ok_or(UnknownStatus(name))
    }
}

/// Stored as text: decodes from whatever text column the database has.
impl<DB: sqlx::Database> sqlx::Type<DB> for AttemptStatus
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for AttemptStatus
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        Ok(AttemptStatus::try_from(String::decode(value)?)?)
    }
}

impl std::fmt::Display for AttemptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub experiment: String,
    pub status: AttemptStatus,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub host: String,
    pub pid: i64,
    pub git_commit: Option<String>,
    pub progress: Option<f64>,
    pub error: Option<String>,
    pub result_digest: Option<String>,
    /// When its process last renewed its lease (`None` before leases existed).
    pub heartbeat_at: Option<String>,
    /// The scheduler's job that ran it (`slurm:1234`); `None` for a process started by hand.
    pub job: Option<String>,
    /// The device it computed on (`flex`, `tch-cpu`, `cuda:0`); `None` before it was recorded.
    pub device: Option<String>,
}

impl AttemptRow {
    /// The attempt whose results stand for an experiment, of its attempts in id order: its
    /// first completed one (the `results` view says the same in SQL).
    pub fn standing(attempts: &[AttemptRow]) -> Option<&AttemptRow> {
        attempts
            .iter()
            .find(|a| a.status == AttemptStatus::Completed)
    }

    /// The standing attempt, or else the latest: what to show of an experiment.
    pub fn standing_or_latest(attempts: &[AttemptRow]) -> Option<&AttemptRow> {
        AttemptRow::standing(attempts).or(attempts.last())
    }
}

/// One row of the `runs` view.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub attempt: Option<i64>,
    pub status: Option<AttemptStatus>,
    pub progress: Option<f64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub attempts: i64,
}

/// Filters for [`Store::list_runs`]; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub kind: Option<String>,
    pub name_contains: Option<String>,
    pub status: Option<String>,
}

/// What a new attempt records about where it ran.
#[derive(Debug, Clone)]
pub struct AttemptOrigin {
    pub host: String,
    pub pid: i64,
    pub git_commit: Option<String>,
    /// The scheduler's job this process runs in (`slurm:1234`), if any.
    pub job: Option<String>,
}

/// The experiment store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    location: Location,
    objects: ObjectStore,
    read_only: bool,
}

/// The one place SQLite connection settings are chosen.
fn sqlite_options(path: &Path, read_only: bool) -> SqliteConnectOptions {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(!read_only)
        .read_only(read_only);
    // WAL is a property of the file, set by the first writer. A reader that asked for it would
    // need to write, and fails ("attempt to write a readonly database") on a file a writer has
    // just created and not yet switched.
    let options = if read_only {
        options
    } else {
        options.journal_mode(SqliteJournalMode::Wal)
    };
    options
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .pragma("query_only", if read_only { "ON" } else { "OFF" })
}

impl Store {
    /// Opens (creating if needed) a store for reading and writing, migrating it to the current
    /// schema: an SQLite path, or a [`Location`] (SQLite or PostgreSQL). A database that is not
    /// an R1 Lab store is refused untouched.
    pub async fn open(location: impl Into<Location>) -> Result<Store> {
        let location = location.into();
        match &location.database {
            Database::Sqlite(path) => Store::open_sqlite(path, &location).await,
            Database::Postgres(url) => {
                let store = match Store::connect(&location, false).await {
                    Err(StoreError::Db { source, .. })
                        if sqlstate(&source).as_deref() == Some(PG_NO_SUCH_DATABASE) =>
                    {
                        // As SQLite creates a missing file, a writer creates a missing database.
                        // Two first runs may race to it: the loser finds it made.
                        match sqlx::Postgres::create_database(url).await {
                            Err(e) if sqlstate(&e).as_deref() != Some(PG_DUPLICATE_DATABASE) => {
                                return Err(StoreError::Db {
                                    db: location.database.to_string(),
                                    source: e,
                                });
                            }
                            _ => Store::connect(&location, false).await?,
                        }
                    }
                    other => other?,
                };
                store.check_identity().await?;
                // sqlx holds a PostgreSQL advisory lock while it migrates, so hosts that open
                // a new database at once migrate it exactly once.
                store.migrate().await?;
                Ok(store)
            }
        }
    }

    async fn open_sqlite(path: &Path, location: &Location) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // Several processes may open a fresh file at once; migrations must run exactly once, so
        // opening is serialised with an advisory lock on a file beside the database.
        let lock_path = migration_lock_path(path);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io {
                path: lock_path.clone(),
                source,
            })?;
        lock.lock().map_err(|source| StoreError::Io {
            path: lock_path.clone(),
            source,
        })?;
        let store = Store::connect(location, false).await?;
        store.check_identity().await?;
        store.migrate().await?;
        drop(lock);
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let migrated = match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await,
            Pool::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await,
        };
        migrated.map_err(|source| StoreError::Migrate {
            db: self.location.database.to_string(),
            source,
        })
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATOR,
            Pool::Postgres(_) => &POSTGRES_MIGRATOR,
        }
    }

    /// Opens an existing store read-only: every write is refused by the database itself
    /// (SQLite's read-only connection; PostgreSQL's read-only transactions).
    pub async fn open_read_only(location: impl Into<Location>) -> Result<Store> {
        let location = location.into();
        if !location.exists() {
            return Err(StoreError::Missing {
                db: location.database.to_string(),
            });
        }
        let store = match Store::connect(&location, true).await {
            Err(StoreError::Db { source, .. })
                if sqlstate(&source).as_deref() == Some(PG_NO_SUCH_DATABASE) =>
            {
                return Err(StoreError::Missing {
                    db: location.database.to_string(),
                })
            }
            other => other?,
        };
        if store.check_identity().await? != 0 {
            if !store.schema_behind().await? {
                return Ok(store);
            }
            // A database from an older lab: bring its schema up to date (migrations only add
            // and convert, they lose nothing), then read it as asked.
            store.close().await;
            Store::open(&location).await?.close().await;
            return Box::pin(Store::open_read_only(location)).await;
        }
        let Database::Sqlite(path) = &location.database else {
            // A PostgreSQL migration is one transaction: its tables appear all at once.
            store.close().await;
            return Err(StoreError::NotReady {
                db: location.database.to_string(),
                creating: false,
            });
        };
        // No schema: either a first run is migrating it right now (it holds the lock), or the
        // first run died before it could. Holding the lock, the answer cannot change under us.
        let creating = match std::fs::File::open(migration_lock_path(path)) {
            Err(_) => false,
            Ok(lock) => match lock.try_lock() {
                Ok(()) => {
                    let migrated = store.check_identity().await? != 0;
                    drop(lock);
                    if migrated {
                        return Ok(store);
                    }
                    false
                }
                Err(_) => true,
            },
        };
        store.close().await;
        Err(StoreError::NotReady {
            db: location.database.to_string(),
            creating,
        })
    }

    async fn connect(location: &Location, read_only: bool) -> Result<Store> {
        let classify = |source| classify_open_error(&location.database, source);
        let pool = match &location.database {
            Database::Sqlite(path) => Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(sqlite_options(path, read_only))
                    .await
                    .map_err(classify)?,
            ),
            Database::Postgres(url) => Pool::Postgres(
                backend::postgres_pool(
                    backend::postgres_options(url, read_only).map_err(classify)?,
                )
                .await
                .map_err(classify)?,
            ),
        };
        Ok(Store {
            pool,
            objects: ObjectStore::new(location.objects.clone()),
            location: location.clone(),
            read_only,
        })
    }

    /// Another handle on the same store, with connections of its own, for use on another
    /// thread's runtime: a pool's connections belong to the runtime that opened them.
    pub async fn connect_again(&self) -> Result<Store> {
        Store::connect(&self.location, self.read_only).await
    }

    /// Whether the database lacks migrations this lab has (it was made by an older lab).
    async fn schema_behind(&self) -> Result<bool> {
        let applied: Vec<i64> =
            on_pool!(&self.pool, pool => sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all(pool)
            .await)
            .map_err(self.err())?;
        Ok(self
            .migrator()
            .iter()
            .any(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version)))
    }

    /// Refuses databases that belong to something else; returns the application id, which is 0
    /// for an empty database that the first migration has not marked yet.
    async fn check_identity(&self) -> Result<i64> {
        let classify = |e| classify_open_error(&self.location.database, e);
        let (app_id, foreign_tables) = match &self.pool {
            Pool::Sqlite(pool) => {
                // Both reads in one transaction, so they see one snapshot: read apart, a first
                // run's migration could commit between them (no id yet, then its tables), and
                // a lab database being created would look like another program's.
                let mut tx = pool.begin().await.map_err(classify)?;
                let app_id: i64 = sqlx::query_scalar("PRAGMA application_id")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(classify)?;
                let foreign_tables: Vec<String> = if app_id == APPLICATION_ID {
                    Vec::new()
                } else {
                    sqlx::query_scalar(
                        "SELECT name FROM sqlite_master WHERE type = 'table' \
                         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' \
                         ORDER BY name LIMIT 5",
                    )
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(classify)?
                };
                tx.rollback().await.map_err(classify)?;
                (app_id, foreign_tables)
            }
            Pool::Postgres(pool) => {
                // The first migration creates `lab_identity` in the same transaction as every
                // other table, so one read of the catalogue sees all or none of them.
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' \
                     ORDER BY table_name",
                )
                .fetch_all(pool)
                .await
                .map_err(classify)?;
                if tables.iter().any(|t| t == "lab_identity") {
                    let app_id: Option<i64> =
                        sqlx::query_scalar("SELECT max(application_id) FROM lab_identity")
                            .fetch_one(pool)
                            .await
                            .map_err(classify)?;
                    (app_id.unwrap_or(-1), Vec::new())
                } else {
                    (0, tables.into_iter().take(5).collect())
                }
            }
        };
        if app_id == APPLICATION_ID {
            return Ok(app_id);
        }
        if app_id != 0 {
            return Err(StoreError::Foreign {
                db: self.location.database.to_string(),
                reason: format!("application_id is {app_id:#x}"),
            });
        }
        if !foreign_tables.is_empty() {
            return Err(StoreError::Foreign {
                db: self.location.database.to_string(),
                reason: format!("it holds other tables: {}", foreign_tables.join(", ")),
            });
        }
        Ok(app_id)
    }

    /// Where the store lives: its database and object folder.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn dialect(&self) -> Dialect {
        self.location.dialect()
    }

    pub fn objects(&self) -> &ObjectStore {
        &self.objects
    }

    fn err(&self) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        move |source| StoreError::Db {
            db: self.location.database.to_string(),
            source,
        }
    }

    pub async fn close(&self) {
        on_pool!(&self.pool, pool => pool.close().await)
    }

    // ---- identity -------------------------------------------------------------------------

    /// Resolves a full id or a unique prefix of one.
    pub async fn resolve_id(&self, prefix: &str) -> Result<ExperimentId> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::BadPrefix { prefix });
        }
        let rows: Vec<(String, String, String)> = on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT id, kind, name FROM experiments WHERE substr(id, 1, length($1)) = $1 \
             ORDER BY id LIMIT 21",
        )
        .bind(&prefix)
        .fetch_all(pool)
        .await)
        .map_err(self.err())?;
        match rows.len() {
            0 => Err(StoreError::UnknownId { prefix }),
            1 => Ok(ExperimentId::parse(&rows[0].0).expect("ids in the store are valid")),
            _ => Err(StoreError::AmbiguousId {
                prefix,
                candidates: rows
                    .iter()
                    .map(|(id, kind, name)| format!("  {id}  {kind}  {name}"))
                    .collect(),
            }),
        }
    }

    // ---- experiments and attempts ---------------------------------------------------------

    /// Records an experiment and its lineage if it is not there yet.
    pub async fn ensure_experiment(
        &self,
        id: &ExperimentId,
        kind: &str,
        name: &str,
        spec: &serde_json::Value,
        numerics_version: u32,
        inputs: &[(String, ExperimentId)],
    ) -> Result<()> {
        let dialect = self.dialect();
        let insert = format!(
            "INSERT INTO experiments (id, kind, name, spec, numerics_version, created_at) \
             VALUES ($1, $2, $3, $4, $5, {now}) ON CONFLICT (id) DO NOTHING",
            now = dialect.now()
        );
        let spec = crate::identity::canonical_json(spec);
        on_pool!(&self.pool, pool => async {
            let mut tx = pool.begin_with(dialect.begin_write()).await?;
            sqlx::query(&insert)
                .bind(id.as_str())
                .bind(kind)
                .bind(name)
                .bind(&spec)
                .bind(numerics_version as i64)
                .execute(&mut *tx)
                .await?;
            for (role, parent) in inputs {
                sqlx::query(
                    "INSERT INTO lineage (child, parent, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (child, role) DO NOTHING",
                )
                .bind(id.as_str())
                .bind(parent.as_str())
                .bind(role)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(self.err())
    }

    pub async fn experiment(&self, id: &ExperimentId) -> Result<ExperimentRow> {
        let row: Option<(String, String, String, i64, String)> = on_pool!(&self.pool, pool =>
            sqlx::query_as(
                "SELECT kind, name, spec, numerics_version, created_at FROM experiments \
                 WHERE id = $1",
            )
            .bind(id.as_str())
            .fetch_optional(pool)
            .await)
        .map_err(self.err())?;
        let (kind, name, spec_text, numerics_version, created_at) =
            row.ok_or_else(|| StoreError::UnknownId {
                prefix: id.to_string(),
            })?;
        Ok(ExperimentRow {
            id: id.clone(),
            kind,
            name,
            spec: serde_json::from_str(&spec_text).expect("specs are stored as valid JSON"),
            numerics_version,
            created_at,
        })
    }

    /// Inputs of an experiment: (role, parent id, parent name).
    pub async fn lineage(&self, id: &ExperimentId) -> Result<Vec<(String, String, String)>> {
        on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT l.role, l.parent, e.name FROM lineage l JOIN experiments e ON e.id = l.parent \
             WHERE l.child = $1 ORDER BY l.role",
        )
        .bind(id.as_str())
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }

    pub async fn start_attempt(&self, id: &ExperimentId, origin: &AttemptOrigin) -> Result<i64> {
        let sql = format!(
            "INSERT INTO attempts (experiment, status, started_at, host, pid, git_commit, progress, \
             heartbeat_at, job) VALUES ($1, 'running', {now}, $2, $3, $4, 0, {now}, $5) RETURNING id",
            now = self.dialect().now()
        );
        on_pool!(&self.pool, pool => sqlx::query_scalar(&sql)
            .bind(id.as_str())
            .bind(&origin.host)
            .bind(origin.pid)
            .bind(&origin.git_commit)
            .bind(&origin.job)
            .fetch_one(pool)
            .await)
        .map_err(self.err())
    }

    /// Takes over an interrupted attempt in this process, to continue it from its checkpoint.
    pub async fn resume_attempt(&self, attempt: i64, origin: &AttemptOrigin) -> Result<()> {
        let sql = format!(
            "UPDATE attempts SET status = 'running', host = $1, pid = $2, git_commit = $3, \
             job = $4, error = NULL, ended_at = NULL, heartbeat_at = {now} WHERE id = $5",
            now = self.dialect().now()
        );
        execute!(
            self,
            &sql,
            &origin.host,
            origin.pid,
            &origin.git_commit,
            &origin.job,
            attempt
        )
    }

    /// Records the device an attempt computes on (`flex`, `tch-cpu`, `cuda:0`).
    pub async fn set_attempt_device(&self, attempt: i64, device: &str) -> Result<()> {
        execute!(
            self,
            "UPDATE attempts SET device = $1 WHERE id = $2",
            device,
            attempt
        )
    }

    /// Renews a running attempt's lease.
    pub async fn heartbeat(&self, attempt: i64) -> Result<()> {
        let sql = format!(
            "UPDATE attempts SET heartbeat_at = {now} WHERE id = $1 AND status = 'running'",
            now = self.dialect().now()
        );
        execute!(self, &sql, attempt)
    }

    /// Sets an attempt's last heartbeat `age` ago: what a process that stopped beating leaves.
    #[doc(hidden)]
    pub async fn age_heartbeat_for_tests(&self, attempt: i64, age: Duration) -> Result<()> {
        let sql = format!(
            "UPDATE attempts SET heartbeat_at = {ago} WHERE id = $1",
            ago = self.dialect().seconds_ago(&age.as_secs().to_string())
        );
        execute!(self, &sql, attempt)
    }

    pub async fn set_progress(&self, attempt: i64, progress: f64) -> Result<()> {
        execute!(
            self,
            "UPDATE attempts SET progress = $1 WHERE id = $2",
            progress.clamp(0.0, 1.0),
            attempt
        )
    }

    pub async fn finish_attempt(&self, attempt: i64, result_digest: &str) -> Result<()> {
        self.end_attempt(
            attempt,
            "status = 'completed', progress = 1, result_digest",
            result_digest,
        )
        .await
    }

    pub async fn fail_attempt(&self, attempt: i64, error: &str) -> Result<()> {
        self.end_attempt(attempt, "status = 'failed', error", error)
            .await
    }

    /// Ends an attempt at the database's time: `assignments`, whose last column takes `value`.
    async fn end_attempt(&self, attempt: i64, assignments: &str, value: &str) -> Result<()> {
        let sql = format!(
            "UPDATE attempts SET {assignments} = $1, ended_at = {now} WHERE id = $2",
            now = self.dialect().now()
        );
        execute!(self, &sql, value, attempt)
    }

    /// Marks dead running attempts interrupted: on any host, those whose lease ran out
    /// ([`LEASE`] without a heartbeat); on `host`, also those whose process is gone (at once,
    /// without waiting for the lease). Returns how many it marked.
    pub async fn mark_interrupted(
        &self,
        host: &str,
        process_alive: impl Fn(i64) -> bool,
    ) -> Result<usize> {
        let sql = format!(
            "SELECT id, pid, host, {silent} FROM attempts WHERE status = 'running'",
            silent = self.dialect().seconds_since("heartbeat_at")
        );
        let running: Vec<(i64, i64, String, Option<f64>)> =
            on_pool!(&self.pool, pool => sqlx::query_as(&sql).fetch_all(pool).await)
                .map_err(self.err())?;
        let mut marked = 0;
        for (attempt, pid, attempt_host, silent_seconds) in running {
            let here = attempt_host == host;
            if liveness(here, silent_seconds, || process_alive(pid)) != Some(false) {
                continue;
            }
            let reason = if here && !process_alive(pid) {
                "the process ended without finishing the attempt".to_string()
            } else {
                format!(
                    "no heartbeat from {attempt_host} (pid {pid}) for over {} s",
                    LEASE.as_secs()
                )
            };
            execute!(
                self,
                "UPDATE attempts SET status = 'interrupted', error = $1 \
                 WHERE id = $2 AND status = 'running'",
                reason,
                attempt
            )?;
            marked += 1;
        }
        Ok(marked)
    }

    pub async fn attempts(&self, id: &ExperimentId) -> Result<Vec<AttemptRow>> {
        on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT id, experiment, status, started_at, ended_at, host, pid, git_commit, progress, \
             error, result_digest, heartbeat_at, job, device FROM attempts WHERE experiment = $1 \
             ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(pool)
        .await)
        .map_err(self.err())
    }

    /// The attempt whose results stand for the experiment: its first completed one.
    pub async fn standing_attempt(&self, id: &ExperimentId) -> Result<Option<AttemptRow>> {
        Ok(AttemptRow::standing(&self.attempts(id).await?).cloned())
    }

    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        let sql = format!(
            "SELECT id, kind, name, attempt, status, progress, started_at, ended_at, attempts \
             FROM runs \
             WHERE ($1 IS NULL OR kind = $1) \
               AND ($2 IS NULL OR {contains}) \
               AND ($3 IS NULL OR status = $3) \
             ORDER BY coalesce(started_at, created_at) DESC, id",
            contains = self.dialect().contains("name", "$2")
        );
        type Row = (
            String,
            String,
            String,
            Option<i64>,
            Option<AttemptStatus>,
            Option<f64>,
            Option<String>,
            Option<String>,
            i64,
        );
        let rows: Vec<Row> = on_pool!(&self.pool, pool => sqlx::query_as(&sql)
            .bind(&filter.kind)
            .bind(&filter.name_contains)
            .bind(&filter.status)
            .fetch_all(pool)
            .await)
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(
                |(id, kind, name, attempt, status, progress, started_at, ended_at, attempts)| {
                    RunRow {
                        status,
                        id,
                        kind,
                        name,
                        attempt,
                        progress,
                        started_at,
                        ended_at,
                        attempts,
                    }
                },
            )
            .collect())
    }

    // ---- results --------------------------------------------------------------------------

    /// Writes metric points in one transaction (replacing points already there, so a resumed
    /// attempt that logs a step again does not duplicate it; of points repeated in `points`,
    /// the last stands).
    pub async fn record_metrics(&self, attempt: i64, points: &[MetricPoint]) -> Result<()> {
        if points.is_empty() {
            return Ok(());
        }
        // One statement may not update a row twice (PostgreSQL refuses), so repeats go first.
        let points = last_of_each(points, |p| (p.name.as_str(), p.step));
        insert_rows!(
            self,
            "metrics-flush",
            points,
            "INSERT INTO metrics (attempt, name, step, value) ",
            " ON CONFLICT (attempt, name, step) DO UPDATE SET value = excluded.value",
            |b, p| {
                b.push_bind(attempt)
                    .push_bind(&p.name)
                    .push_bind(p.step)
                    .push_bind(p.value);
            }
        )
    }

    pub async fn record_traces(&self, attempt: i64, traces: &[TraceRecord]) -> Result<()> {
        if traces.is_empty() {
            return Ok(());
        }
        insert_rows!(
            self,
            "traces-flush",
            traces,
            "INSERT INTO traces (attempt, step, sample, prompt, completion, reward_parts, \
             language_scores, meta) ",
            " ON CONFLICT (attempt, step, sample) DO NOTHING",
            |b, t| {
                b.push_bind(attempt)
                    .push_bind(t.step)
                    .push_bind(t.sample)
                    .push_bind(&t.prompt)
                    .push_bind(&t.completion)
                    .push_bind(part_json(&t.rewards))
                    .push_bind(part_json(&t.language))
                    .push_bind(part_json(&t.labels));
            }
        )
    }

    pub async fn record_artifact(&self, attempt: i64, artifact: &ArtifactRecord) -> Result<()> {
        execute!(
            self,
            "INSERT INTO artifacts (attempt, name, kind, hash, path, rows, bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (attempt, name) DO UPDATE SET kind = excluded.kind, hash = excluded.hash, \
             path = excluded.path, rows = excluded.rows, bytes = excluded.bytes",
            attempt,
            &artifact.name,
            &artifact.kind,
            &artifact.hash,
            &artifact.path,
            artifact.rows,
            artifact.bytes
        )?;
        Ok(())
    }

    pub async fn record_checkpoint(
        &self,
        attempt: i64,
        step: i64,
        object: &StoredObject,
    ) -> Result<()> {
        execute!(
            self,
            "INSERT INTO checkpoints (attempt, step, hash, path, bytes) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (attempt, step) DO UPDATE SET hash = excluded.hash, path = excluded.path, \
             bytes = excluded.bytes",
            attempt,
            step,
            &object.hash,
            &object.relative_path,
            object.bytes as i64
        )?;
        crate::faults::point("checkpoint-recorded");
        Ok(())
    }

    pub async fn record_evaluations(&self, attempt: i64, records: &[EvalRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let records = last_of_each(records, |r| {
            (
                r.benchmark.as_str(),
                r.prompting.as_str(),
                r.metric.as_str(),
                r.k,
            )
        });
        insert_rows!(
            self,
            "evaluations-flush",
            records,
            "INSERT INTO evaluations (attempt, benchmark, prompting, metric, k, value, stderr) ",
            " ON CONFLICT (attempt, benchmark, prompting, metric, k) \
             DO UPDATE SET value = excluded.value, stderr = excluded.stderr",
            |b, r| {
                b.push_bind(attempt)
                    .push_bind(&r.benchmark)
                    .push_bind(&r.prompting)
                    .push_bind(&r.metric)
                    .push_bind(r.k)
                    .push_bind(r.value)
                    .push_bind(r.stderr);
            }
        )
    }

    pub async fn evaluations(&self, attempt: i64) -> Result<Vec<EvalRecord>> {
        let rows: Vec<(String, String, String, i64, f64, Option<f64>)> =
            on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT benchmark, prompting, metric, k, value, stderr FROM evaluations \
             WHERE attempt = $1 ORDER BY prompting, benchmark, metric, k",
        )
        .bind(attempt)
        .fetch_all(pool)
        .await)
            .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(
                |(benchmark, prompting, metric, k, value, stderr)| EvalRecord {
                    benchmark,
                    prompting,
                    metric,
                    k,
                    value,
                    stderr,
                },
            )
            .collect())
    }

    pub async fn metrics(&self, attempt: i64) -> Result<Vec<MetricPoint>> {
        let rows: Vec<(String, i64, f64)> = on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT name, step, value FROM metrics WHERE attempt = $1 ORDER BY name, step",
        )
        .bind(attempt)
        .fetch_all(pool)
        .await)
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|(name, step, value)| MetricPoint { name, step, value })
            .collect())
    }

    /// The last point of each metric.
    pub async fn latest_metrics(&self, attempt: i64) -> Result<Vec<MetricPoint>> {
        let rows: Vec<(String, i64, f64)> = on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT m.name, m.step, m.value FROM metrics m WHERE m.attempt = $1 AND m.step = \
             (SELECT max(step) FROM metrics x WHERE x.attempt = $1 AND x.name = m.name) \
             ORDER BY m.name",
        )
        .bind(attempt)
        .fetch_all(pool)
        .await)
        .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|(name, step, value)| MetricPoint { name, step, value })
            .collect())
    }

    /// An attempt's traces by step and sample, each read back into the one trace schema.
    pub async fn traces(&self, attempt: i64) -> Result<Vec<TraceRecord>> {
        let rows: Vec<StoredTrace> = on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT step, sample, prompt, completion, reward_parts, language_scores, meta \
             FROM traces WHERE attempt = $1 ORDER BY step, sample",
        )
        .bind(attempt)
        .fetch_all(pool)
        .await)
        .map_err(self.err())?;
        rows.into_iter()
            .map(|row| {
                let (step, sample) = (row.step, row.sample);
                row.parse().map_err(|source| StoreError::Trace {
                    attempt,
                    step,
                    sample,
                    source,
                })
            })
            .collect()
    }

    pub async fn artifacts(&self, attempt: i64) -> Result<Vec<ArtifactRecord>> {
        let rows: Vec<(String, String, String, String, i64, i64)> =
            on_pool!(&self.pool, pool => sqlx::query_as(
            "SELECT name, kind, hash, path, rows, bytes FROM artifacts WHERE attempt = $1 \
             ORDER BY name",
        )
        .bind(attempt)
        .fetch_all(pool)
        .await)
            .map_err(self.err())?;
        Ok(rows
            .into_iter()
            .map(|(name, kind, hash, path, rows, bytes)| ArtifactRecord {
                name,
                kind,
                hash,
                path,
                rows,
                bytes,
            })
            .collect())
    }

    /// `(step, hash)` of every checkpoint of an attempt.
    pub async fn checkpoints(&self, attempt: i64) -> Result<Vec<(i64, String)>> {
        on_pool!(&self.pool, pool => sqlx::query_as("SELECT step, hash FROM checkpoints WHERE attempt = $1 ORDER BY step")
            .bind(attempt)
            .fetch_all(pool)
            .await)
            .map_err(self.err())
    }

    /// A digest of everything an attempt produced that must be equal when it is reproduced:
    /// metrics (but not wall-clock ones, bit-exact), artifact hashes and checkpoint hashes.
    pub async fn result_digest(&self, attempt: i64) -> Result<String> {
        let mut hasher = blake3::Hasher::new();
        for p in self.metrics(attempt).await? {
            if p.is_wall_clock() {
                continue;
            }
            hasher.update(
                format!(
                    "metric\t{}\t{}\t{:016x}\n",
                    p.name,
                    p.step,
                    p.value.to_bits()
                )
                .as_bytes(),
            );
        }
        for a in self.artifacts(attempt).await? {
            hasher.update(format!("artifact\t{}\t{}\n", a.name, a.hash).as_bytes());
        }
        for (step, hash) in self.checkpoints(attempt).await? {
            hasher.update(format!("checkpoint\t{step}\t{hash}\n").as_bytes());
        }
        for e in self.evaluations(attempt).await? {
            let stderr = e
                .stderr
                .map(|s| format!("{:016x}", s.to_bits()))
                .unwrap_or_default();
            hasher.update(
                format!(
                    "eval\t{}\t{}\t{}\t{}\t{:016x}\t{stderr}\n",
                    e.benchmark,
                    e.prompting,
                    e.metric,
                    e.k,
                    e.value.to_bits()
                )
                .as_bytes(),
            );
        }
        Ok(hasher.finalize().to_hex().to_string())
    }

    /// Runs one of the lab's own read queries (see [`query`]).
    pub async fn query(&self, sql: &str) -> Result<QueryResult> {
        query::run(&self.pool, sql).await.map_err(self.err())
    }

    /// Runs one query that a person typed (`lab sql`, the TUI): only reads are allowed, and the
    /// answer is bounded by `limits` (see [`SqlLimits`]).
    pub async fn query_bounded(
        &self,
        sql: &str,
        limits: SqlLimits,
    ) -> std::result::Result<QueryResult, SqlError> {
        query::run_bounded(&self.pool, sql, limits).await
    }
}

/// This host's name: where an attempt runs, and whose writers' temporary files it may clear.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether a process of this host is still running (Linux; elsewhere assume it is): whether an
/// attempt's writer is alive, and whether a temporary object file still has its writer.
pub fn process_alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// The file beside a database whose advisory lock serialises its creation and migrations.
fn migration_lock_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", path.display()))
}

fn not_ready_message(db: &str, creating: bool) -> String {
    if db.starts_with("postgres") {
        // A database a server holds is often made empty by hand, before any run.
        format!("database {db} has no tables yet: the first `lab run` creates them")
    } else if creating {
        format!("database {db} is being created by its first run (no tables yet)")
    } else {
        format!(
            "database {db} has no tables: its first run stopped before creating them; \
             the next `lab run` creates them"
        )
    }
}

/// Turns SQLite's "file is not a database" and friends into errors that say what happened.
fn classify_open_error(db: &Database, source: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(e) = &source {
        if matches!(db, Database::Sqlite(_)) && e.message().contains("file is not a database") {
            return StoreError::Foreign {
                db: db.to_string(),
                reason: "it is not an SQLite file".into(),
            };
        }
    }
    StoreError::Db {
        db: db.to_string(),
        source,
    }
}

/// `rows` with only the last of each key, in the order of those last ones: what row-by-row
/// upserts would leave, as one multi-row statement may write it.
fn last_of_each<'a, T, K: Eq + std::hash::Hash>(
    rows: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut last = std::collections::HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    rows.iter()
        .enumerate()
        .filter(|(i, row)| last[&key(row)] == *i)
        .map(|(_, row)| row)
        .collect()
}

/// Whether a running attempt is alive: the one rule behind marking attempts interrupted and
/// the Runs view. `here`: it runs on the host that asks; `silent_seconds`: time since its last
/// heartbeat (`None` before leases existed); `process_alive`: whether its pid lives (asked only
/// on its own host, where a pid means something).
///
/// - A lease that ran out means dead wherever it ran, even with its pid alive here: a process
///   that stopped renewing it (stopped, hung) holds its attempt no longer.
/// - On its own host, a gone process means dead at once, without waiting for the lease.
/// - Elsewhere, a fresh lease means alive; without a lease nothing can be told (`None`).
pub fn liveness(
    here: bool,
    silent_seconds: Option<f64>,
    process_alive: impl FnOnce() -> bool,
) -> Option<bool> {
    if silent_seconds.is_some_and(|s| s > LEASE.as_secs_f64()) {
        return Some(false);
    }
    if here {
        return Some(process_alive());
    }
    silent_seconds.map(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file without a schema is refused for reading, and the error says whether a first run
    /// is creating it (it holds the migration lock) or died before it could.
    #[tokio::test]
    async fn a_database_without_tables_says_whether_it_is_being_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.db");
        // An empty file is an SQLite database with no tables, as a first run killed before its
        // migration leaves it.
        std::fs::write(&path, b"").unwrap();
        let err = Store::open_read_only(&path).await.err().unwrap();
        assert!(
            matches!(
                err,
                StoreError::NotReady {
                    creating: false,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("stopped before creating them"),
            "{err}"
        );

        let lock = std::fs::File::create(migration_lock_path(&path)).unwrap();
        lock.lock().unwrap();
        let err = Store::open_read_only(&path).await.err().unwrap();
        assert!(
            matches!(err, StoreError::NotReady { creating: true, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("being created"), "{err}");
        drop(lock);

        // Once a run has created the schema, readers get in.
        Store::open(&path).await.unwrap().close().await;
        Store::open_read_only(&path).await.unwrap().close().await;
    }

    #[test]
    fn liveness_is_one_rule_for_every_host() {
        let lease = LEASE.as_secs_f64();
        let hung = Some(lease + 1.0);
        // A lease that ran out is dead, even with its process alive here.
        assert_eq!(liveness(true, hung, || true), Some(false));
        assert_eq!(liveness(false, hung, || unreachable!()), Some(false));
        // Here, the process decides at once.
        assert_eq!(liveness(true, Some(1.0), || false), Some(false));
        assert_eq!(liveness(true, Some(1.0), || true), Some(true));
        assert_eq!(liveness(true, None, || true), Some(true));
        // Elsewhere, the lease decides; without one nothing can be told.
        assert_eq!(liveness(false, Some(1.0), || unreachable!()), Some(true));
        assert_eq!(liveness(false, None, || unreachable!()), None);
    }

    fn id(byte: &str) -> ExperimentId {
        ExperimentId::parse(&byte.repeat(32)).unwrap()
    }

    /// A new running attempt of experiment `id` (of `kind`, recorded if need be).
    async fn running_attempt(store: &Store, id: &ExperimentId, kind: &str) -> i64 {
        store
            .ensure_experiment(id, kind, kind, &serde_json::json!({}), 1, &[])
            .await
            .unwrap();
        let origin = AttemptOrigin {
            host: "here".into(),
            pid: 1,
            git_commit: None,
            job: None,
        };
        store.start_attempt(id, &origin).await.unwrap()
    }

    /// A recipe with a GRPO stage and a world outside it, written through the store's own API,
    /// read back through the typed reads of curves and overviews.
    #[tokio::test]
    async fn curves_and_overviews_read_back_what_runs_wrote() {
        let dir = tempfile::tempdir().unwrap();
        for test in testing::test_stores(dir.path()) {
            let store = Store::open(&test.location).await.unwrap();
            curves_and_overviews_of(&store).await;
            store.close().await;
        }
    }

    async fn curves_and_overviews_of(store: &Store) {
        let origin = AttemptOrigin {
            host: "here".into(),
            pid: 1,
            git_commit: None,
            job: None,
        };
        let (world, grpo, recipe) = (id("aa"), id("bb"), id("cc"));
        let spec = serde_json::json!({});
        store
            .ensure_experiment(&world, "world", "w", &spec, 1, &[])
            .await
            .unwrap();
        store
            .ensure_experiment(&grpo, "grpo", "rl", &spec, 1, &[])
            .await
            .unwrap();
        store
            .ensure_experiment(
                &recipe,
                "recipe",
                "r",
                &spec,
                1,
                &[("rl".into(), grpo.clone())],
            )
            .await
            .unwrap();
        let mut attempts = Vec::new();
        for (experiment, points) in [(&world, 1), (&grpo, 3), (&recipe, 0)] {
            let attempt = store.start_attempt(experiment, &origin).await.unwrap();
            let metrics: Vec<MetricPoint> = (0..points)
                .flat_map(|step| {
                    [
                        MetricPoint::new("reward", step, step as f64 / 2.0),
                        MetricPoint::new("lang/mixed_rate", step, 0.25),
                    ]
                })
                .chain([MetricPoint::new("a_once", 0, 1.0)])
                .collect();
            store.record_metrics(attempt, &metrics).await.unwrap();
            store.finish_attempt(attempt, "digest").await.unwrap();
            attempts.push(attempt);
        }

        // A recipe stands for itself and its stages; no scope is everything.
        let chosen = store
            .standing_runs(std::slice::from_ref(&recipe))
            .await
            .unwrap();
        let kinds: Vec<&str> = chosen.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["grpo", "recipe"]);
        assert_eq!(store.standing_runs(&[]).await.unwrap().len(), 3);
        assert!(store.standing_runs(&[id("dd")]).await.unwrap().is_empty());

        assert_eq!(
            store.metric_series(attempts[1], "reward").await.unwrap(),
            [(0, 0.0), (1, 0.5), (2, 1.0)]
        );
        // Curves (more than one step) before single points, then by name.
        assert_eq!(
            store.curve_names(&attempts).await.unwrap(),
            ["lang/mixed_rate", "reward", "a_once"]
        );
        assert_eq!(
            store.metric_names(attempts[0]).await.unwrap(),
            ["a_once", "lang/mixed_rate", "reward"]
        );

        let overview = store.run_overview("here").await.unwrap();
        let rl = overview.iter().find(|r| r.kind == "grpo").unwrap();
        assert_eq!(rl.status, Some(AttemptStatus::Completed));
        assert_eq!(
            (rl.reward, rl.mixed, rl.loss),
            (Some(1.0), Some(0.25), None)
        );
        assert_eq!((rl.attempts, rl.pid, rl.progress), (1, Some(1), Some(1.0)));
        let mixing = store.mixing_overview().await.unwrap();
        let names: Vec<&str> = mixing.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names.len(),
            2,
            "the world and the RL run logged mixing: {names:?}"
        );
        assert!(mixing
            .iter()
            .all(|m| m.train_mixed == Some(0.25) && m.traces == 0));
    }

    /// A batch writes as row-by-row upserts would: a point repeated in it, or logged again by a
    /// resumed attempt, keeps its last value; a batch larger than one statement's chunk is
    /// written whole.
    #[tokio::test]
    async fn batched_writes_keep_the_last_of_a_repeated_row() {
        let dir = tempfile::tempdir().unwrap();
        for test in testing::test_stores(dir.path()) {
            let store = Store::open(&test.location).await.unwrap();
            let run = id("ab");
            let attempt = running_attempt(&store, &run, "grpo").await;
            let mut points: Vec<MetricPoint> = (0..(INSERT_CHUNK as i64 + 7))
                .map(|step| MetricPoint::new("loss", step, step as f64))
                .collect();
            points.push(MetricPoint::new("loss", 3, -1.0));
            store.record_metrics(attempt, &points).await.unwrap();
            store
                .record_metrics(attempt, &[MetricPoint::new("loss", 4, -2.0)])
                .await
                .unwrap();
            let series = store.metric_series(attempt, "loss").await.unwrap();
            assert_eq!(series.len(), INSERT_CHUNK + 7, "{}", test.label);
            assert_eq!(series[3], (3, -1.0));
            assert_eq!(series[4], (4, -2.0));
            let last = INSERT_CHUNK + 6;
            assert_eq!(series[last], (last as i64, last as f64));

            let number = |value| EvalRecord {
                benchmark: "easy-en".into(),
                prompting: "cot".into(),
                metric: "pass@1".into(),
                k: 4,
                value,
                stderr: None,
            };
            store
                .record_evaluations(attempt, &[number(0.1), number(0.2)])
                .await
                .unwrap();
            assert_eq!(store.evaluations(attempt).await.unwrap(), [number(0.2)]);
            store.close().await;
        }
    }

    /// Traces round-trip through the one schema; an evaluation trace in the form an older lab
    /// wrote is converted when a reader opens the database, and a row outside the schema is an
    /// error that names it.
    #[tokio::test]
    async fn traces_have_one_schema_and_old_ones_are_converted_on_open() {
        use crate::trace::{LanguageScores, TraceLabels, TraceRewards};
        let dir = tempfile::tempdir().unwrap();
        for test in testing::test_stores(dir.path()) {
            let store = Store::open(&test.location).await.unwrap();
            let eval = id("ee");
            let attempt = running_attempt(&store, &eval, "eval").await;
            let written = TraceRecord {
                step: 3,
                sample: 0,
                prompt: "q".into(),
                completion: "c".into(),
                rewards: TraceRewards {
                    accuracy: Some(1.0),
                    advantage: Some(-0.5),
                    ..Default::default()
                },
                language: LanguageScores {
                    mixed: Some(false),
                    ..Default::default()
                },
                labels: TraceLabels {
                    lang: Some(crate::world::Lang::Zh),
                    answer: None,
                    ..Default::default()
                },
            };
            store
                .record_traces(attempt, std::slice::from_ref(&written))
                .await
                .unwrap();
            assert_eq!(
                store.traces(attempt).await.unwrap(),
                [written],
                "{}",
                test.label
            );

            if let Pool::Sqlite(pool) = &store.pool {
                // As an older lab stored an evaluation's trace, before the schema's migration
                // ran (PostgreSQL stores start at the current schema).
                sqlx::query(
                    "INSERT INTO traces (attempt, step, sample, prompt, completion, \
                     reward_parts, language_scores, meta) VALUES ($1, 0, 0, 'q', 'c', \
                     '{\"correct\":true,\"format\":false}', '{}', \
                     '{\"benchmark\":\"easy-en\",\"answer\":null}')",
                )
                .bind(attempt)
                .execute(pool)
                .await
                .unwrap();
                sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 5")
                    .execute(pool)
                    .await
                    .unwrap();
                store.close().await;

                let reader = Store::open_read_only(&test.location).await.unwrap();
                let old = &reader.traces(attempt).await.unwrap()[0];
                assert_eq!(
                    (old.rewards.accuracy, old.rewards.format, old.correct()),
                    (Some(1.0), Some(0.0), Some(true))
                );
                assert_eq!(old.labels.benchmark.as_deref(), Some("easy-en"));
                reader.close().await;
            }

            let store = Store::open(&test.location).await.unwrap();
            on_pool!(&store.pool, pool => sqlx::query(
                "UPDATE traces SET meta = '{\"colour\":1}' WHERE step = 3"
            )
            .execute(pool)
            .await
            .map(|_| ()))
            .unwrap();
            let err = store.traces(attempt).await.unwrap_err().to_string();
            assert!(
                err.contains("trace 3/0 of attempt") && err.contains("colour"),
                "{err}"
            );
            store.close().await;
        }
    }
}
