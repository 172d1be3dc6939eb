//! Stores for tests, on every backend there is: SQLite always, PostgreSQL when a server is
//! named. Shared by the library's tests, the CLI's and the TUI's.
//!
//! `LAB_TEST_POSTGRES` is a URL of a PostgreSQL server and a role that may create databases
//! (`postgres://lab:lab@localhost/postgres`); each test store is a database of its own, dropped
//! when the store is. Without it the PostgreSQL half of a test is skipped with a message,
//! unless `LAB_REQUIRE_SERVERS=1` (CI) makes that a failure.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Database, Location};

/// The environment variable that names the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "LAB_TEST_POSTGRES";
/// Set to 1 where a test must not skip for want of a server.
pub const REQUIRE_ENV: &str = "LAB_REQUIRE_SERVERS";

/// A store location for one test; a PostgreSQL database of its own is dropped with it.
#[derive(Debug)]
pub struct TestStore {
    pub label: &'static str,
    pub location: Location,
    /// Dropped with the store: the PostgreSQL database goes with it.
    _database: Option<PostgresDatabase>,
}

/// Whether servers are required here (CI): a missing one fails the test instead of skipping.
pub fn servers_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The PostgreSQL server for tests, if one is named. Says so once when it is not.
pub fn postgres_server() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            assert!(
                !servers_required(),
                "{REQUIRE_ENV}=1 but {POSTGRES_ENV} names no PostgreSQL server"
            );
            eprintln!("skipping PostgreSQL: {POSTGRES_ENV} is not set (`just test` starts one)");
            None
        }
    }
}

/// An SQLite store in `dir`, and a PostgreSQL one when a server is named (its objects in `dir`
/// too).
pub fn test_stores(dir: &Path) -> Vec<TestStore> {
    let mut stores = vec![TestStore {
        label: "sqlite",
        location: Location::sqlite(dir.join("lab.db")),
        _database: None,
    }];
    if let Some(server) = postgres_server() {
        stores.push(postgres_store(&server, dir));
    }
    stores
}

/// A fresh PostgreSQL database on `server`, its objects in `dir`.
pub fn postgres_store(server: &str, dir: &Path) -> TestStore {
    let database = PostgresDatabase::create(server);
    TestStore {
        label: "postgres",
        location: Location {
            database: Database::Postgres(database.url.clone()),
            objects: dir.join("pg.objects"),
        },
        _database: Some(database),
    }
}

#[derive(Debug)]
struct PostgresDatabase {
    server: String,
    name: String,
    url: String,
}

static CREATED: AtomicUsize = AtomicUsize::new(0);

impl PostgresDatabase {
    fn create(server: &str) -> PostgresDatabase {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "lab_test_{}_{}_{nanos}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        admin(server, &format!("CREATE DATABASE \"{name}\""));
        PostgresDatabase {
            url: with_database(server, &name),
            server: server.to_string(),
            name,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// Runs one statement on the server's own database, on a thread of its own so that it works
/// inside and outside an async test.
fn admin(server: &str, statement: &str) {
    let (server, statement) = (server.to_string(), statement.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&server)
                .await
                .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={server}: {e}"));
            sqlx::query(&statement)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        });
    })
    .join()
    .expect("the admin statement ran");
}

/// `postgres://u@h:5432/postgres?x=y` with its database replaced by `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_test_database_replaces_the_servers_own() {
        use super::with_database;
        assert_eq!(
            with_database("postgres://lab:lab@localhost/postgres", "t1"),
            "postgres://lab:lab@localhost/t1"
        );
        assert_eq!(
            with_database("postgres://localhost:5433?sslmode=disable", "t1"),
            "postgres://localhost:5433/t1?sslmode=disable"
        );
    }
}
