//! Ad-hoc SQL for people: one query in, columns and typed cells out.
//!
//! [`run`] serves the lab's own queries; [`run_bounded`] serves what a person typed, fenced by
//! [`guard`] and bounded in rows, bytes and time.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
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
                // `avg` and `sum` of integers: a number, as SQLite gives it.
                "NUMERIC" => SqlValue::Real(
                    numeric_to_f64(raw.as_bytes().map_err(sqlx::Error::Decode)?)
                        .map_err(|e| decode_error(row, i, e))?,
                ),
                // Dates and times as ISO-8601 text, the form the lab's own time columns hold.
                // A date: days since 2000-01-01, as a 4-byte integer.
                "DATE" => {
                    let bytes = raw.as_bytes().map_err(sqlx::Error::Decode)?;
                    let days = <[u8; 4]>::try_from(bytes)
                        .map(i32::from_be_bytes)
                        .map_err(|_| decode_error(row, i, "a date is not 4 bytes".into()))?;
                    SqlValue::Text(date_text(i64::from(days)))
                }
                "TIMESTAMPTZ" | "TIMESTAMP" => SqlValue::Text(
                    timestamp_text(raw.as_bytes().map_err(sqlx::Error::Decode)?, &type_name)
                        .map_err(|e| decode_error(row, i, e))?,
                ),
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

fn decode_error(row: &PgRow, i: usize, reason: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: row.column(i).name().to_string(),
        source: reason.into(),
    }
}

/// A PostgreSQL `numeric` in its binary form: digit count, weight (of the first digit, in
/// powers of 10,000), sign and display scale, then the base-10,000 digits.
fn numeric_to_f64(bytes: &[u8]) -> Result<f64, String> {
    let word = |i: usize| -> Result<i16, String> {
        bytes
            .get(2 * i..2 * i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a numeric value is cut short".to_string())
    };
    let (digits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    if sign == 0xC000 {
        return Ok(f64::NAN);
    }
    let mut value = 0.0f64;
    for d in 0..digits.max(0) as usize {
        let digit = f64::from(word(4 + d)?);
        value += digit * 10_000f64.powi(i32::from(weight) - d as i32);
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

/// A PostgreSQL `timestamp` / `timestamptz` in its binary form (microseconds since
/// 2000-01-01 00:00 UTC) as `YYYY-MM-DDTHH:MM:SS.ffffff`, with `Z` for `timestamptz`.
fn timestamp_text(bytes: &[u8], type_name: &str) -> Result<String, String> {
    let micros = i64::from_be_bytes(
        bytes
            .try_into()
            .map_err(|_| "a timestamp is not 8 bytes".to_string())?,
    );
    match micros {
        i64::MAX => return Ok("infinity".into()),
        i64::MIN => return Ok("-infinity".into()),
        _ => {}
    }
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let second_of_day = seconds.rem_euclid(86_400);
    Ok(format!(
        "{}T{:02}:{:02}:{:02}.{fraction:06}{}",
        date_text(seconds.div_euclid(86_400)),
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        if type_name == "TIMESTAMPTZ" { "Z" } else { "" }
    ))
}

/// A date `days` after PostgreSQL's epoch, 2000-01-01, as `YYYY-MM-DD`.
fn date_text(days: i64) -> String {
    // Howard Hinnant's civil_from_days, which counts from 1970-01-01 (10,957 days earlier).
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
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
    let answer = fetch_bounded!(&mut *conn, sql, limits);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_and_times_in_their_binary_form() {
        // 12345.678: 3 digits [1, 2345, 6780], weight 1, positive, scale 3.
        let numeric = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C];
        assert!((numeric_to_f64(&numeric).unwrap() - 12345.678).abs() < 1e-9);
        let negative = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 4, 0x13, 0x88];
        assert_eq!(numeric_to_f64(&negative).unwrap(), -0.5);
        assert_eq!(numeric_to_f64(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap(), 0.0);
        assert!(numeric_to_f64(&[0, 2, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());

        let at = |micros: i64, name| timestamp_text(&micros.to_be_bytes(), name).unwrap();
        assert_eq!(at(0, "TIMESTAMPTZ"), "2000-01-01T00:00:00.000000Z");
        // 2026-12-05 07:40:01.5 UTC is 9,835 days and 27,601.5 s after 2000-01-01.
        assert_eq!(
            at(9_835 * 86_400_000_000 + 27_601_500_000, "TIMESTAMP"),
            "2026-12-05T07:40:01.500000"
        );
        assert_eq!(at(-1, "TIMESTAMP"), "1999-12-31T23:59:59.999999");
        assert_eq!(at(i64::MAX, "TIMESTAMP"), "infinity");
        assert_eq!(date_text(0), "2000-01-01");
        assert_eq!(date_text(-1), "1999-12-31");
        assert_eq!(date_text(9_835), "2026-12-05");
    }
}
