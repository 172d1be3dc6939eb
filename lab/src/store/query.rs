//! Ad-hoc SQL for people: one query in, columns and typed cells out.

use sqlx::sqlite::SqlitePool;
use sqlx::{Column, Row, TypeInfo, ValueRef};

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
}

pub(super) async fn run(pool: &SqlitePool, sql: &str) -> Result<QueryResult, sqlx::Error> {
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    let columns = match rows.first() {
        Some(row) => row.columns().iter().map(|c| c.name().to_string()).collect(),
        // With no rows the statement is described instead, so headers still show.
        None => {
            use sqlx::Executor;
            let described = pool.describe(sql).await?;
            described
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect()
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
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
        out.push(cells);
    }
    Ok(QueryResult { columns, rows: out })
}
