//! The fence around SQL that people type (`lab sql`, the TUI's SQL view).
//!
//! The connection is already read-only (`SQLITE_OPEN_READONLY` and `PRAGMA query_only`), which
//! stops writes to the database. It does not stop everything a hostile query can do, so for the
//! length of one query the connection also gets:
//! - an authorizer that refuses `ATTACH`/`DETACH` (which create files, and which `VACUUM INTO`
//!   uses), `PRAGMA`s outside a list of read-only ones or with a value that would set them
//!   (`writable_schema = ON`), `load_extension`, and every statement that writes;
//! - a progress handler that interrupts the query at its deadline (a recursive CTE that never
//!   ends, a cross join of millions of rows);
//! - a cap on the length of one string or blob, so `zeroblob(1e9)` cannot take the memory.
//!
//! The caller bounds the number of rows and the bytes it keeps (see `query::run_bounded`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

/// PRAGMAs that only read, and may be asked without an argument.
const READ_PRAGMAS: &[&str] = &[
    "application_id",
    "collation_list",
    "compile_options",
    "data_version",
    "database_list",
    "encoding",
    "foreign_key_check",
    "foreign_key_list",
    "foreign_keys",
    "freelist_count",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "journal_mode",
    "module_list",
    "page_count",
    "page_size",
    "pragma_list",
    "quick_check",
    "schema_version",
    "table_info",
    "table_list",
    "table_xinfo",
    "user_version",
];

/// Of those, the ones whose argument names a table or index or bounds a check, rather than
/// setting a value.
const PRAGMAS_WITH_ARGUMENT: &[&str] = &[
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Largest string or blob one query may build (SQLite's default is 1 GB).
const MAX_VALUE_BYTES: c_int = 16 << 20;

/// What a refused statement is told.
pub const REFUSED: &str = "refused: lab sql only reads (statements that write or end the \
    transaction are not allowed, nor on SQLite ATTACH, DETACH, VACUUM, load_extension and PRAGMAs \
    that set a value)";

/// Whether one authorizer request may go ahead. Pure, so the policy is tested without SQLite.
pub fn allows(action: c_int, arg1: Option<&str>, arg2: Option<&str>) -> bool {
    match action {
        ffi::SQLITE_READ
        | ffi::SQLITE_SELECT
        | ffi::SQLITE_RECURSIVE
        | ffi::SQLITE_TRANSACTION
        | ffi::SQLITE_SAVEPOINT => true,
        ffi::SQLITE_FUNCTION => !arg2.is_some_and(|f| f.eq_ignore_ascii_case("load_extension")),
        ffi::SQLITE_PRAGMA => {
            let Some(name) = arg1.map(str::to_ascii_lowercase) else {
                return false;
            };
            READ_PRAGMAS.contains(&name.as_str())
                && (arg2.is_none() || PRAGMAS_WITH_ARGUMENT.contains(&name.as_str()))
        }
        // SQLite asks this of its own schema table when a table-valued PRAGMA
        // (`pragma_table_info('x')`) is prepared; a person's `UPDATE sqlite_schema` is refused by
        // SQLite itself without `writable_schema`, which is refused above.
        ffi::SQLITE_UPDATE => {
            matches!(arg1, Some("sqlite_master") | Some("sqlite_schema"))
        }
        // ATTACH, DETACH, every CREATE/DROP/INSERT/DELETE/ALTER/REINDEX/ANALYZE, and codes added
        // by later SQLite versions.
        _ => false,
    }
}

unsafe extern "C" fn authorize(
    _user_data: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes NUL-terminated strings or null pointers, valid for this call.
    let text = |p: *const c_char| {
        (!p.is_null())
            .then(|| unsafe { CStr::from_ptr(p) }.to_str().ok())
            .flatten()
    };
    if allows(action, text(arg1), text(arg2)) {
        ffi::SQLITE_OK
    } else {
        ffi::SQLITE_DENY
    }
}

/// Fences the connection behind `handle` for one query; returns a flag that is set if the
/// deadline interrupted it. [`remove`] takes the fence down.
pub fn install(handle: &mut LockedSqliteHandle<'_>, timeout: Duration) -> Arc<AtomicBool> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let flag = timed_out.clone();
    // Called every 10k virtual-machine instructions (well under a millisecond).
    handle.set_progress_handler(10_000, move || {
        let go_on = Instant::now() < deadline;
        if !go_on {
            flag.store(true, Ordering::Relaxed);
        }
        go_on
    });
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: the locked handle guarantees that no other thread uses the connection now; the
    // authorizer keeps no state (null user data), so nothing it points to can dangle.
    unsafe {
        ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
    }
    timed_out
}

/// Takes the fence of [`install`] down, so the pooled connection serves the lab's own queries.
pub fn remove(handle: &mut LockedSqliteHandle<'_>) {
    handle.remove_progress_handler();
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: as in `install`. A negative new value would only read the limit; SQLite clamps
    // values above its compile-time maximum, so `i32::MAX` restores the default of 1 GB.
    unsafe {
        ffi::sqlite3_set_authorizer(db, None, std::ptr::null_mut());
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, c_int::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_is_allowed_and_everything_else_refused() {
        assert!(allows(ffi::SQLITE_SELECT, None, None));
        assert!(allows(ffi::SQLITE_READ, Some("experiments"), Some("id")));
        assert!(allows(ffi::SQLITE_FUNCTION, None, Some("count")));
        assert!(!allows(ffi::SQLITE_FUNCTION, None, Some("LOAD_EXTENSION")));
        assert!(!allows(ffi::SQLITE_ATTACH, Some("x.db"), None));
        assert!(!allows(ffi::SQLITE_DETACH, Some("x"), None));
        assert!(!allows(ffi::SQLITE_INSERT, Some("experiments"), None));
        assert!(!allows(ffi::SQLITE_DELETE, Some("experiments"), None));
        assert!(!allows(
            ffi::SQLITE_UPDATE,
            Some("experiments"),
            Some("spec")
        ));
        assert!(!allows(ffi::SQLITE_CREATE_TABLE, Some("t"), None));
        assert!(!allows(ffi::SQLITE_DROP_TABLE, Some("experiments"), None));
        assert!(!allows(
            ffi::SQLITE_ALTER_TABLE,
            Some("main"),
            Some("experiments")
        ));
        assert!(!allows(ffi::SQLITE_CREATE_VTABLE, Some("t"), Some("fts5")));
    }

    #[test]
    fn pragmas_may_read_but_not_set() {
        assert!(allows(
            ffi::SQLITE_PRAGMA,
            Some("table_info"),
            Some("experiments")
        ));
        assert!(allows(ffi::SQLITE_PRAGMA, Some("user_version"), None));
        assert!(allows(ffi::SQLITE_PRAGMA, Some("JOURNAL_MODE"), None));
        assert!(!allows(ffi::SQLITE_PRAGMA, Some("user_version"), Some("7")));
        assert!(!allows(
            ffi::SQLITE_PRAGMA,
            Some("journal_mode"),
            Some("delete")
        ));
        assert!(!allows(
            ffi::SQLITE_PRAGMA,
            Some("writable_schema"),
            Some("ON")
        ));
        assert!(!allows(ffi::SQLITE_PRAGMA, Some("writable_schema"), None));
        assert!(!allows(ffi::SQLITE_PRAGMA, Some("query_only"), Some("OFF")));
        assert!(!allows(ffi::SQLITE_PRAGMA, None, None));
    }
}
