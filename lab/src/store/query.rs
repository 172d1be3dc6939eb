//! Ad-hoc SQL for people: one query in, columns and typed cells out.
//!
//! [`run`] serves the lab's own queries; [`run_bounded`] serves what a person typed, fenced by
//! [`guard`] and bounded in rows, bytes and time.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Column, Executor, Row, TypeInfo, ValueRef};

use super::guard;

/// A cell as SQLite stored it.
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

pub(super) async fn run(pool: &SqlitePool, sql: &str) -> Result<QueryResult, sqlx::Error> {
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    let columns = match rows.first() {
        Some(row) => row.columns().iter().map(|c| c.name().to_string()).collect(),
        None => describe_columns(pool, sql).await?,
    };
    let rows = rows.iter().map(decode_row).collect::<Result<_, _>>()?;
    Ok(QueryResult {
        columns,
        rows,
        truncated: false,
    })
}

/// With no rows the statement is described instead, so headers still show.
async fn describe_columns<'c, E>(executor: E, sql: &str) -> Result<Vec<String>, sqlx::Error>
where
    E: Executor<'c, Database = sqlx::Sqlite>,
{
    let described = executor.describe(sql).await?;
    Ok(described
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect())
}

fn decode_row(row: &SqliteRow) -> Result<Vec<SqlValue>, sqlx::Error> {
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
    Sqlite(#[from] sqlx::Error),
}

/// Runs one query that a person typed, fenced (see [`guard`]) and bounded by `limits`.
pub(super) async fn run_bounded(
    pool: &SqlitePool,
    sql: &str,
    limits: SqlLimits,
) -> Result<QueryResult, SqlError> {
    let mut conn = pool.acquire().await?;
    let timed_out = guard::install(&mut conn.lock_handle().await?, limits.timeout);
    let answer = fetch_bounded(&mut conn, sql, limits).await;
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
            SqlError::Sqlite(e)
        }
    })
}

fn is_refusal(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23") // SQLITE_AUTH
            || db.message().contains("not authorized"))
}

async fn fetch_bounded(
    conn: &mut SqliteConnection,
    sql: &str,
    limits: SqlLimits,
) -> Result<QueryResult, sqlx::Error> {
    let mut out = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    let mut bytes = 0usize;
    let mut truncated = false;
    {
        // Not kept in the connection's statement cache: the fence applies when a statement
        // is prepared, and a person's statements are not the lab's.
        let mut rows = sqlx::query(sql).persistent(false).fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            if out.len() == limits.max_rows || bytes > limits.max_bytes {
                truncated = true;
                break;
            }
            if columns.is_none() {
                columns = Some(row.columns().iter().map(|c| c.name().to_string()).collect());
            }
            let cells = decode_row(&row)?;
            bytes += cells.iter().map(SqlValue::size).sum::<usize>();
            out.push(cells);
        }
    }
    let columns = match columns {
        Some(columns) => columns,
        None => describe_columns(&mut *conn, sql).await?,
    };
    Ok(QueryResult {
        columns,
        rows: out,
        truncated,
    })
}
