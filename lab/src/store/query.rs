//! Ad-hoc SQL for people: one query in, columns and typed cells out.
//!
//! [`run`] serves the lab's own queries; [`run_bounded`] serves what a person typed, fenced by
//! [`guard`] and bounded in rows, bytes and time.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Column, Executor, Row, TypeInfo, ValueRef};

use super::backend::{sqlstate, Pool};
use super::guard;

/// A cell as the database stored it, in SQLite's five storage classes (a PostgreSQL boolean is
/// an integer, JSON is text).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    #[serde(serialize_with = "blob_as_hex")]
    Blob(Vec<u8>),
}

fn blob_as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.serialize_str(&format!("x'{hex}'"))
}

/// Readers for the cells of a known query, lenient as SQLite's column types are.
impl SqlValue {
    /// Text as is; any other value as it prints.
    pub fn text(&self) -> String {
        match self {
            SqlValue::Text(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// An integer (a real truncated); 0 for anything else.
    pub fn integer(&self) -> i64 {
        match self {
            SqlValue::Integer(i) => *i,
            SqlValue::Real(x) => *x as i64,
            _ => 0,
        }
    }

    /// A number; `None` for NULL, text or a blob.
    pub fn real(&self) -> Option<f64> {
        match self {
            SqlValue::Real(x) => Some(*x),
            SqlValue::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// Bytes the cell holds, for the byte bound of [`SqlLimits`].
    fn size(&self) -> usize {
        match self {
            SqlValue::Null | SqlValue::Integer(_) | SqlValue::Real(_) => 8,
            SqlValue::Text(s) => s.len(),
            SqlValue::Blob(b) => b.len(),
        }
    }
}

impl std::fmt::Display for SqlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlValue::Null => f.write_str("NULL"),
            SqlValue::Integer(v) => write!(f, "{v}"),
            SqlValue::Real(v) => write!(f, "{v}"),
            SqlValue::Text(v) => f.write_str(v),
            SqlValue::Blob(v) => {
                let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
                write!(f, "x'{hex}'")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
    /// The query returned more than [`SqlLimits`] kept; `rows` are its first ones.
    pub truncated: bool,
}

pub(super) async fn run(pool: &Pool, sql: &str) -> Result<QueryResult, sqlx::Error> {
    on_pool!(pool, pool => {
        let rows = sqlx::query(sql).fetch_all(pool).await?;
        let columns = match rows.first() {
            Some(row) => row.columns().iter().map(|c| c.name().to_string()).collect(),
            None => describe_columns(pool, sql).await?,
        };
        let rows = rows.iter().map(Decode::decode_row).collect::<Result<_, _>>()?;
        Ok(QueryResult {
            columns,
            rows,
            truncated: false,
        })
    })
}

/// With no rows the statement is described instead, so headers still show.
async fn describe_columns<'c, E, DB>(executor: E, sql: &str) -> Result<Vec<String>, sqlx::Error>
where
    E: Executor<'c, Database = DB>,
    DB: sqlx::Database,
{
    let described = executor.describe(sql).await?;
    Ok(described
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect())
}

/// A row of either database as cells.
trait Decode {
    fn decode_row(&self) -> Result<Vec<SqlValue>, sqlx::Error>;
}

impl Decode for SqliteRow {
    fn decode_row(&self) -> Result<Vec<SqlValue>, sqlx::Error> {
        let row = self;
        let mut cells = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let raw = row.try_get_raw(i)?;
            let cell = if raw.is_null() {
                SqlValue::Null
            } else {
                match raw.type_info().name() {
                    "INTEGER" | "BOOLEAN" => SqlValue::Integer(row.try_get_unchecked(i)?),
                    "REAL" => SqlValue::Real(row.try_get_unchecked(i)?),
                    "BLOB" => SqlValue::Blob(row.try_get_unchecked(i)?),
                    _ => SqlValue::Text(row.try_get_unchecked(i)?),
                }
            };
            cells.push(cell);
        }
        Ok(cells)
    }
}

impl Decode for PgRow {
    fn decode_row(&self) -> Result<Vec<SqlValue>, sqlx::Error> {
        let row = self;
        let mut cells = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                cells.push(SqlValue::Null);
                continue;
            }
            let type_name = raw.type_info().name().to_string();
            let cell = match type_name.as_str() {
                "INT2" => SqlValue::Integer(row.try_get::<i16, _>(i)?.into()),
                "INT4" => SqlValue::Integer(row.try_get::<i32, _>(i)?.into()),
                "INT8" => SqlValue::Integer(row.try_get(i)?),
                "FLOAT4" => SqlValue::Real(row.try_get::<f32, _>(i)?.into()),
                "FLOAT8" => SqlValue::Real(row.try_get(i)?),
                "BOOL" => SqlValue::Integer(row.try_get::<bool, _>(i)?.into()),
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "UNKNOWN" => {
                    SqlValue::Text(row.try_get(i)?)
                }
                "BYTEA" => SqlValue::Blob(row.try_get(i)?),
                // JSON arrives as its text; JSONB as a version byte (1) and its text.
                "JSON" | "JSONB" => {
                    let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
                    let text = match (type_name.as_str(), bytes.split_first()) {
                        ("JSONB", Some((1, rest))) => rest,
                        _ => bytes,
                    };
                    SqlValue::Text(String::from_utf8_lossy(text).into_owned())
                }
                // What a function returns when it returns nothing (`pg_sleep`).
                "VOID" => SqlValue::Null,
                other => {
                    let column = row.column(i).name().to_string();
                    return Err(sqlx::Error::ColumnDecode {
                        index: column.clone(),
                        source: format!(
                            "column `{column}` is of PostgreSQL type {other}, which lab sql \
                             shows only as text: select CAST(... AS TEXT) instead"
                        )
                        .into(),
                    });
                }
            };
            cells.push(cell);
        }
        Ok(cells)
    }
}

/// Bounds on one query that a person typed: rows and bytes kept, and time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SqlLimits {
    /// Rows kept; a query that returns more is cut there and says so (`truncated`).
    pub max_rows: usize,
    /// Bytes of cells kept, so a few huge rows are bounded as well as many small ones.
    pub max_bytes: usize,
    /// Past this the query is interrupted with an error.
    pub timeout: Duration,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_rows: 100_000,
            max_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a person's query gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{}", guard::REFUSED)]
    Refused,
    #[error("the query ran past its time limit of {0:?} and was interrupted")]
    TimedOut(Duration),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Streams a person's query into a [`QueryResult`], stopping at the bounds of `limits`; the
/// same text for both databases' connections.
macro_rules! fetch_bounded {
    ($conn:expr, $sql:expr, $limits:expr) => {
        async {
            let limits: SqlLimits = $limits;
            let mut out = Vec::new();
            let mut columns: Option<Vec<String>> = None;
            let mut bytes = 0usize;
            let mut truncated = false;
            {
                // Not kept in the connection's statement cache: on SQLite the fence applies
                // when a statement is prepared, and a person's statements are not the lab's.
                let mut rows = sqlx::query($sql).persistent(false).fetch(&mut *$conn);
                while let Some(row) = rows.try_next().await? {
                    if out.len() == limits.max_rows || bytes > limits.max_bytes {
                        truncated = true;
                        break;
                    }
                    if columns.is_none() {
                        columns =
                            Some(row.columns().iter().map(|c| c.name().to_string()).collect());
                    }
                    let cells = Decode::decode_row(&row)?;
                    bytes += cells.iter().map(SqlValue::size).sum::<usize>();
                    out.push(cells);
                }
            }
            let columns = match columns {
                Some(columns) => columns,
                None => describe_columns(&mut *$conn, $sql).await?,
            };
            Ok::<_, sqlx::Error>(QueryResult {
                columns,
                rows: out,
                truncated,
            })
        }
        .await
    };
}

/// Runs one query that a person typed, fenced and bounded by `limits`: on SQLite by the
/// authorizer of [`guard`]; on PostgreSQL by a read-only transaction that is always rolled back,
/// with a statement timeout.
pub(super) async fn run_bounded(
    pool: &Pool,
    sql: &str,
    limits: SqlLimits,
) -> Result<QueryResult, SqlError> {
    match pool {
        Pool::Sqlite(pool) => run_bounded_sqlite(pool, sql, limits).await,
        Pool::Postgres(pool) => run_bounded_postgres(pool, sql, limits).await,
    }
}

async fn run_bounded_sqlite(
    pool: &SqlitePool,
    sql: &str,
    limits: SqlLimits,
) -> Result<QueryResult, SqlError> {
    let mut conn = pool.acquire().await?;
    let timed_out = guard::install(&mut conn.lock_handle().await?, limits.timeout);
    let answer = fetch_bounded_sqlite(&mut conn, sql, limits).await;
    let fence_down = match conn.lock_handle().await {
        Ok(mut handle) => {
            guard::remove(&mut handle);
            true
        }
        Err(_) => false,
    };
    if !fence_down {
        // A connection whose fence could not come down must not serve anyone else.
        conn.close_on_drop();
    }
    answer.map_err(|e| {
        if timed_out.load(Ordering::Relaxed) {
            SqlError::TimedOut(limits.timeout)
        } else if is_refusal(&e) {
            SqlError::Refused
        } else {
            SqlError::Db(e)
        }
    })
}

/// The statements a person may run on PostgreSQL: reads. The read-only transaction refuses
/// writes anyway; this also keeps out statements that end it (`COMMIT`) or act outside it.
fn is_read_statement(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    // Leading comments, as a person pastes them.
    loop {
        if let Some(line) = rest.strip_prefix("--") {
            rest = line.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(block) = rest.strip_prefix("/*") {
            rest = block.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    matches!(
        word.as_str(),
        "SELECT" | "WITH" | "VALUES" | "TABLE" | "EXPLAIN" | "SHOW"
    )
}

async fn run_bounded_postgres(
    pool: &PgPool,
    sql: &str,
    limits: SqlLimits,
) -> Result<QueryResult, SqlError> {
    if !is_read_statement(sql) {
        return Err(SqlError::Refused);
    }
    let mut tx = pool.begin_with("BEGIN READ ONLY").await?;
    sqlx::query(&format!(
        "SET LOCAL statement_timeout = {}",
        limits.timeout.as_millis().max(1)
    ))
    .execute(&mut *tx)
    .await?;
    let answer = fetch_bounded!(&mut *tx, sql, limits);
    // Whatever it did, nothing it did stays.
    tx.rollback().await?;
    answer.map_err(|e| match sqlstate(&e).as_deref() {
        Some("57014") => SqlError::TimedOut(limits.timeout),
        // read_only_sql_transaction, insufficient_privilege
        Some("25006" | "42501") => SqlError::Refused,
        // A second statement behind the first (`SELECT 1; DELETE ...`): one query at a time.
        Some("42601") if e.to_string().contains("multiple commands") => SqlError::Refused,
        _ => SqlError::Db(e),
    })
}

fn is_refusal(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23") // SQLITE_AUTH
            || db.message().contains("not authorized"))
}

async fn fetch_bounded_sqlite(
    conn: &mut SqliteConnection,
    sql: &str,
    limits: SqlLimits,
) -> Result<QueryResult, sqlx::Error> {
    fetch_bounded!(conn, sql, limits)
}
