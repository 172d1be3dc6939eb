//! Where a store lives and how its database speaks. SQLite (one file, the default) needs
//! nothing set up; PostgreSQL is a server that every host of a cluster reaches. The store's
//! queries are written once, with `$N` parameters that both accept; the few places where the
//! dialects differ are the functions of [`Dialect`], and connecting, identity and migrations
//! are here.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;

/// A store: its database and its object folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub database: Database,
    /// Checkpoints and data sets, addressed by hash. Beside an SQLite file unless set
    /// (`lab.db` → `lab.objects/`); a PostgreSQL store must name it (`--objects`,
    /// `LAB_OBJECTS`): a folder that every host running stages reaches.
    pub objects: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

/// Why a `--db` / `--objects` pair names no store.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "a PostgreSQL store keeps its checkpoints and data sets in a folder that every host \
         running stages reaches: pass --objects DIR (or set LAB_OBJECTS)"
    )]
    NoObjectFolder,
}

impl Location {
    /// An SQLite store with its object folder beside the file.
    pub fn sqlite(path: impl Into<PathBuf>) -> Location {
        let path = path.into();
        Location {
            objects: objects_folder(&path),
            database: Database::Sqlite(path),
        }
    }

    /// The store that `--db` and `--objects` name: a `postgres://` (or `postgresql://`) URL, or
    /// an SQLite path (with or without `sqlite:`).
    pub fn parse(db: &str, objects: Option<&Path>) -> Result<Location, LocationError> {
        let db = db.trim();
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            let objects = objects.ok_or(LocationError::NoObjectFolder)?;
            return Ok(Location {
                database: Database::Postgres(db.to_string()),
                objects: objects.to_path_buf(),
            });
        }
        let path = db
            .strip_prefix("sqlite://")
            .or_else(|| db.strip_prefix("sqlite:"))
            .unwrap_or(db);
        let path = PathBuf::from_str(path).expect("infallible");
        Ok(match objects {
            Some(objects) => Location {
                database: Database::Sqlite(path),
                objects: objects.to_path_buf(),
            },
            None => Location::sqlite(path),
        })
    }

    /// The arguments that name this store to another `lab` process (a launched run, a job).
    pub fn cli_args(&self) -> Vec<String> {
        let db = match &self.database {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => url.clone(),
        };
        vec![
            "--db".into(),
            db,
            "--objects".into(),
            self.objects.display().to_string(),
        ]
    }

    /// Whether there is something to open: an SQLite file exists; a server is asked on open.
    pub fn exists(&self) -> bool {
        match &self.database {
            Database::Sqlite(path) => path.exists(),
            Database::Postgres(_) => true,
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.database {
            Database::Sqlite(_) => Dialect::Sqlite,
            Database::Postgres(_) => Dialect::Postgres,
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::sqlite(path)
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::sqlite(path.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::sqlite(path)
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}

/// How a database is named in messages: its path, or its URL without the password.
impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The object folder of an SQLite database: `lab.db` → `lab.objects/` beside it.
pub fn objects_folder(db_path: &Path) -> PathBuf {
    let stem = db_path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "lab".into());
    db_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(format!("{stem}.objects"))
}

/// A connection pool of either kind. `on_pool!` (in the store module) runs one query text on
/// whichever it is.
#[derive(Debug, Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The SQL that differs between the two databases, as fragments the store's queries splice in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The current UTC time as ISO-8601 text with milliseconds, as every time column holds it.
    /// The database's clock, not the host's: leases compare times written by many hosts.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            Dialect::Postgres => {
                "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
            }
        }
    }

    /// `seconds` (an integer expression) before now, as [`Dialect::now`] writes times.
    pub fn seconds_ago(self, seconds: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ({seconds}) || ' seconds')")
            }
            Dialect::Postgres => format!(
                "to_char(clock_timestamp() AT TIME ZONE 'UTC' - make_interval(secs => ({seconds})), \
                 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
            ),
        }
    }

    /// Seconds from the time text in `column` to now, as a double (NULL when it is NULL).
    pub fn seconds_since(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("CAST((julianday('now') - julianday({column})) * 86400.0 AS REAL)")
            }
            Dialect::Postgres => format!(
                "CAST(EXTRACT(EPOCH FROM (clock_timestamp() AT TIME ZONE 'UTC') \
                 - CAST({column} AS TIMESTAMP)) AS DOUBLE PRECISION)"
            ),
        }
    }

    /// Whether text `haystack` contains `needle`, ignoring case.
    pub fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr(lower({haystack}), lower({needle})) > 0"),
            Dialect::Postgres => format!("strpos(lower({haystack}), lower({needle})) > 0"),
        }
    }

    /// The number at `key` of the JSON object text in `column` (a boolean as 0 or 1), NULL
    /// where the key is absent or null.
    pub fn json_number(self, column: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract({column}, '$.{key}')"),
            Dialect::Postgres => format!(
                "(CASE jsonb_typeof(CAST({column} AS JSONB) -> '{key}') \
                 WHEN 'boolean' THEN CAST(CAST(CAST({column} AS JSONB) ->> '{key}' AS BOOLEAN) AS INTEGER) \
                 WHEN 'number' THEN CAST(CAST({column} AS JSONB) ->> '{key}' AS DOUBLE PRECISION) END)"
            ),
        }
    }

    /// The statement that opens a writing transaction. SQLite takes its write lock at once, so
    /// two writers never both read and then fail to upgrade; PostgreSQL locks rows as it goes.
    pub fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

/// A list of experiment ids as SQL literals for `IN (…)`. Ids are 64 hex digits, checked when
/// parsed, so they need no quoting beyond the quotes; `NULL` for none (matches nothing).
pub fn id_list<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let ids: Vec<String> = ids
        .into_iter()
        .map(|id| {
            assert!(
                id.bytes().all(|b| b.is_ascii_hexdigit()),
                "experiment ids are hex: {id}"
            );
            format!("'{id}'")
        })
        .collect();
    if ids.is_empty() {
        "NULL".into()
    } else {
        ids.join(", ")
    }
}

/// A list of integers (attempt ids) for `IN (…)`; `NULL` for none.
pub fn integer_list(values: &[i64]) -> String {
    if values.is_empty() {
        return "NULL".into();
    }
    values
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// PostgreSQL connection settings from a URL; `read_only` makes every transaction of the
/// connection read-only unless it asks otherwise (the lab's readers never do).
pub(super) fn postgres_options(
    url: &str,
    read_only: bool,
) -> Result<PgConnectOptions, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("r1-lab");
    Ok(if read_only {
        options.options([("default_transaction_read_only", "on")])
    } else {
        options
    })
}

/// One connection per pool. A lab process queries its store one statement at a time (the
/// heartbeat thread has a pool of its own), and a server's connections are what a cluster runs
/// out of first: with more, sqlx opens a second one whenever the next query comes before the
/// last connection's return to the pool has run, and 40 writer processes held 89 connections.
pub(super) async fn postgres_pool(options: PgConnectOptions) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
}

/// PostgreSQL's SQLSTATE for a database that does not exist.
pub(super) const PG_NO_SUCH_DATABASE: &str = "3D000";
/// PostgreSQL's SQLSTATE for a database that exists already.
pub(super) const PG_DUPLICATE_DATABASE: &str = "42P04";

pub(super) fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_argument_names_sqlite_or_postgres() {
        let sqlite = Location::parse("sqlite:runs/lab.db", None).unwrap();
        assert_eq!(sqlite.database, Database::Sqlite("runs/lab.db".into()));
        assert_eq!(sqlite.objects, PathBuf::from("runs/lab.objects"));
        let elsewhere = Location::parse("lab.db", Some(Path::new("/shared/objects"))).unwrap();
        assert_eq!(elsewhere.objects, PathBuf::from("/shared/objects"));

        let err = Location::parse("postgres://u:p@db/lab", None).unwrap_err();
        assert!(err.to_string().contains("--objects"), "{err}");
        let pg =
            Location::parse("postgresql://u:secret@db:5432/lab", Some(Path::new("/o"))).unwrap();
        assert_eq!(pg.dialect(), Dialect::Postgres);
        assert_eq!(
            pg.database.to_string(),
            "postgresql://u:***@db:5432/lab",
            "messages never show the password"
        );
        assert_eq!(
            Location::parse(&pg.cli_args()[1], Some(Path::new(&pg.cli_args()[3]))).unwrap(),
            pg
        );
    }

    #[test]
    fn id_lists_are_literals() {
        assert_eq!(id_list(["ab", "cd"]), "'ab', 'cd'");
        assert_eq!(id_list([]), "NULL");
        assert_eq!(integer_list(&[3, 1]), "3, 1");
        assert_eq!(integer_list(&[]), "NULL");
    }
}
