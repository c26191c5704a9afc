//! DuckDB's own judgement of what a query text is. Its parser splits the text into statements
//! and its binder gives the prepared statement a type: a text runs only when it is exactly one
//! statement of type SELECT (DESCRIBE, SHOW, SUMMARIZE, FROM, VALUES and TABLE are SELECTs to
//! DuckDB), or an EXPLAIN of one. Nothing is decided from the text's first word.
//!
//! duckdb-rs gives no access to its connection handle, and its `prepare` runs every statement
//! of a text but the last (which is how `select 1; commit; delete ...; select 1` once wrote
//! through the tailer). So the database is opened here through the C API: [`RawDatabase`]
//! hands out ordinary duckdb-rs connections and a [`Guard`], a raw connection to the same
//! database that only parses and prepares, never executes.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;

use duckdb::{ffi, Connection};

use super::QueryError;

/// Settings of every database cachescope opens: DuckDB never fetches or loads an extension by
/// itself (binding `CREATE SECRET` would otherwise try to install httpfs, even for a text
/// that is then refused).
pub const NO_EXTENSION_DOWNLOADS: [(&str, &str); 3] = [
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("allow_community_extensions", "false"),
];

/// Planner settings of every database cachescope opens. An as-of join whose left side DuckDB
/// estimates at fewer rows than `asof_loop_join_threshold` (64 by default) is run as a nested
/// loop join and a grouping: when the estimate is wrong (a macro's CTE over a month of
/// invalidations) that loop compares every pair of rows (2.2 billion pairs and 25 s for a
/// report's episodes on a 2M-line database, 0.5 s with the as-of operator). Our as-of joins
/// (queries/classify_rows.sql, queries/episodes.sql) always use the operator.
pub const PLANNER: [(&str, &str); 1] = [("asof_loop_join_threshold", "0")];

/// A database opened through DuckDB's C API (see the module's header).
pub struct RawDatabase {
    raw: ffi::duckdb_database,
}

// DuckDB's database handle may be used from any thread; connections are made from it.
unsafe impl Send for RawDatabase {}
unsafe impl Sync for RawDatabase {}

impl RawDatabase {
    /// Opens `path` (`:memory:` for an in-memory database) with DuckDB `settings`, after
    /// [`NO_EXTENSION_DOWNLOADS`] and [`PLANNER`].
    pub fn open(path: &str, settings: &[(&str, &str)]) -> Result<RawDatabase, duckdb::Error> {
        let failure = |state, message: String| duckdb::Error::DuckDBFailure(ffi::Error::new(state), Some(message));
        let c_path = CString::new(path)?;
        unsafe {
            let mut config: ffi::duckdb_config = ptr::null_mut();
            let state = ffi::duckdb_create_config(&mut config);
            if state != ffi::DuckDBSuccess {
                return Err(failure(state, "cannot create a DuckDB configuration".into()));
            }
            for (key, value) in NO_EXTENSION_DOWNLOADS.iter().chain(&PLANNER).chain(settings) {
                let (k, v) = (CString::new(*key)?, CString::new(*value)?);
                let state = ffi::duckdb_set_config(config, k.as_ptr(), v.as_ptr());
                if state != ffi::DuckDBSuccess {
                    ffi::duckdb_destroy_config(&mut config);
                    return Err(failure(state, format!("DuckDB setting {key} = {value} refused")));
                }
            }
            let mut raw: ffi::duckdb_database = ptr::null_mut();
            let mut err: *mut c_char = ptr::null_mut();
            let state = ffi::duckdb_open_ext(c_path.as_ptr(), &mut raw, config, &mut err);
            ffi::duckdb_destroy_config(&mut config);
            if state != ffi::DuckDBSuccess {
                let message = if err.is_null() {
                    format!("cannot open {path}")
                } else {
                    let m = CStr::from_ptr(err).to_string_lossy().into_owned();
                    ffi::duckdb_free(err as *mut std::ffi::c_void);
                    m
                };
                return Err(failure(state, message));
            }
            Ok(RawDatabase { raw })
        }
    }

    /// A duckdb-rs connection to this database. It (and every `try_clone` of it) must not
    /// outlive `self`: keep the `RawDatabase` beside the connections, declared after them.
    pub fn connect(&self) -> Result<Connection, duckdb::Error> {
        unsafe { Connection::open_from_raw(self.raw) }
    }

    /// A guard on this database; `setup` (the crate's own SQL, e.g. `USE`) runs on it first.
    pub fn guard(&self, setup: &[&str]) -> Result<Guard, duckdb::Error> {
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        let state = unsafe { ffi::duckdb_connect(self.raw, &mut con) };
        if state != ffi::DuckDBSuccess {
            return Err(duckdb::Error::DuckDBFailure(ffi::Error::new(state), Some("connect error".into())));
        }
        let guard = Guard { con };
        for sql in setup {
            guard.execute(sql)?;
        }
        Ok(guard)
    }
}

impl Drop for RawDatabase {
    fn drop(&mut self) {
        // The connections made from it hold the database instance itself; it closes with the
        // last of them.
        unsafe { ffi::duckdb_close(&mut self.raw) };
    }
}

/// A raw connection that judges query texts (see the module's header).
pub struct Guard {
    con: ffi::duckdb_connection,
}

// Used by one thread at a time (the tailer's query server, or one session).
unsafe impl Send for Guard {}

impl Drop for Guard {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_disconnect(&mut self.con) };
    }
}

struct Extracted(ffi::duckdb_extracted_statements);

impl Drop for Extracted {
    fn drop(&mut self) {
        unsafe { ffi::duckdb_destroy_extracted(&mut self.0) };
    }
}

/// What DuckDB calls a statement type, in words for an error message.
fn type_name(t: ffi::duckdb_statement_type) -> &'static str {
    match t {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => "SELECT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT => "INSERT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE => "UPDATE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => "EXPLAIN",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE => "DELETE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PREPARE => "PREPARE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE => "CREATE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXECUTE => "EXECUTE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER => "ALTER",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => "transaction (BEGIN, COMMIT, ROLLBACK)",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY => "COPY",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ANALYZE => "ANALYZE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => "SET VARIABLE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC => "CREATE FUNCTION",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP => "DROP",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT => "EXPORT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA => "PRAGMA",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VACUUM => "VACUUM",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => "CALL",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET => "SET/RESET",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD => "LOAD/INSTALL",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXTENSION => "extension",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH => "ATTACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => "DETACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MULTI => "multi-step (a PIVOT without an IN list creates types first)",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => "COPY DATABASE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE_EXTENSIONS => "UPDATE EXTENSIONS",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO => "MERGE INTO",
        _ => "unknown",
    }
}

impl Guard {
    /// Runs the crate's own set-up SQL on the guard's connection.
    fn execute(&self, sql: &str) -> Result<(), duckdb::Error> {
        let c = CString::new(sql)?;
        unsafe {
            let mut out: ffi::duckdb_result = std::mem::zeroed();
            let state = ffi::duckdb_query(self.con, c.as_ptr(), &mut out);
            let message = if state != ffi::DuckDBSuccess {
                let e = ffi::duckdb_result_error(&mut out);
                Some(if e.is_null() { "query failed".to_string() } else { CStr::from_ptr(e).to_string_lossy().into_owned() })
            } else {
                None
            };
            ffi::duckdb_destroy_result(&mut out);
            match message {
                Some(m) => Err(duckdb::Error::DuckDBFailure(ffi::Error::new(state), Some(m))),
                None => Ok(()),
            }
        }
    }

    /// Accepts `sql` when DuckDB parses it as exactly one statement that only reads.
    pub fn check(&self, sql: &str) -> Result<(), QueryError> {
        let ty = self.statement_type(sql)?;
        match ty {
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => Ok(()),
            // EXPLAIN ANALYZE runs what it explains; a plain EXPLAIN of a SELECT only plans it.
            ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => {
                let explained = explained_text(sql).ok_or_else(|| {
                    QueryError::ReadOnly("EXPLAIN ANALYZE runs the statement; only a plain EXPLAIN of a SELECT is accepted".into())
                })?;
                match self.statement_type(explained)? {
                    ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => Ok(()),
                    other => Err(refused(other)),
                }
            }
            other => Err(refused(other)),
        }
    }

    /// The type DuckDB gives the one statement in `sql` (more than one is refused).
    fn statement_type(&self, sql: &str) -> Result<ffi::duckdb_statement_type, QueryError> {
        let c = CString::new(sql).map_err(|_| QueryError::ReadOnly("the query contains a NUL byte".into()))?;
        let mut ex = Extracted(ptr::null_mut());
        let n = unsafe { ffi::duckdb_extract_statements(self.con, c.as_ptr(), &mut ex.0) };
        if n == 0 {
            let e = unsafe { ffi::duckdb_extract_statements_error(ex.0) };
            return Err(if e.is_null() {
                QueryError::ReadOnly("the query is empty".into())
            } else {
                QueryError::Sql(unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned())
            });
        }
        if n > 1 {
            return Err(QueryError::ReadOnly(format!(
                "the text holds {n} statements; one statement per query (run them one at a time, or combine them with WITH or UNION ALL)"
            )));
        }
        let mut st: ffi::duckdb_prepared_statement = ptr::null_mut();
        let state = unsafe { ffi::duckdb_prepare_extracted_statement(self.con, ex.0, 0, &mut st) };
        let result = if state != ffi::DuckDBSuccess {
            let e = unsafe { ffi::duckdb_prepare_error(st) };
            Err(QueryError::Sql(if e.is_null() {
                "the statement cannot be prepared".into()
            } else {
                unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
            }))
        } else {
            Ok(unsafe { ffi::duckdb_prepared_statement_type(st) })
        };
        unsafe { ffi::duckdb_destroy_prepare(&mut st) };
        result
    }
}

fn refused(t: ffi::duckdb_statement_type) -> QueryError {
    QueryError::ReadOnly(format!(
        "{} statements are refused: only one statement that reads (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)",
        type_name(t)
    ))
}

/// The statement an `EXPLAIN` explains: the text after its leading comments and the word
/// EXPLAIN; `None` for EXPLAIN ANALYZE. Only used to ask DuckDB the inner statement's type
/// (the whole text is what runs).
fn explained_text(sql: &str) -> Option<&str> {
    let body = super::strip_leading_comments(sql);
    let rest = body.get(..7).filter(|w| w.eq_ignore_ascii_case("explain")).map(|_| &body[7..])?;
    let inner = super::strip_leading_comments(rest);
    let word: String = inner.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    if word.eq_ignore_ascii_case("analyze") || word.eq_ignore_ascii_case("analyse") {
        return None;
    }
    Some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As cachescope opens its databases: no file or network access through SQL.
    fn db() -> (RawDatabase, Connection, Guard) {
        let raw = RawDatabase::open(":memory:", &[("enable_external_access", "false")]).unwrap();
        let conn = raw.connect().unwrap();
        conn.execute_batch("CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2)").unwrap();
        let guard = raw.guard(&[]).unwrap();
        (raw, conn, guard)
    }

    /// An as-of join whose left side DuckDB thinks tiny runs as DuckDB's as-of operator, not
    /// as a nested loop over every pair of rows ([`PLANNER`]).
    #[test]
    fn as_of_joins_never_become_nested_loops() {
        let (_raw, conn, _g) = db();
        let plan = || -> String {
            let q = "EXPLAIN ANALYZE SELECT * FROM t ASOF LEFT JOIN (SELECT range AS y FROM range(1000)) b ON t.x < b.y";
            conn.query_row(q, [], |r| r.get::<_, String>(1)).unwrap().to_ascii_uppercase()
        };
        let ours = plan();
        assert!(ours.contains("ASOF JOIN") && !ours.contains("NESTED LOOP"), "{ours}");
        // With DuckDB's default the same query runs as a nested loop (the test can fail).
        conn.execute_batch("SET asof_loop_join_threshold = 64").unwrap();
        let default = plan();
        assert!(default.contains("NESTED LOOP") && !default.contains("ASOF JOIN"), "{default}");
    }

    #[test]
    fn one_reading_statement_passes() {
        let (_raw, _c, g) = db();
        for q in [
            "SELECT 1",
            "select count(*) from t;",
            "-- a comment\n/* more; */ WITH a AS (SELECT * FROM t) SELECT * FROM a",
            "FROM t",
            "describe t",
            "SHOW TABLES",
            "summarize t",
            "VALUES (1)",
            "EXPLAIN SELECT * FROM t",
            "/* c */ explain /* d */ select 1",
            "select 1 -- trailing; comment",
            // DuckDB rewrites a PRAGMA that returns rows into a SELECT of its table function.
            "PRAGMA version",
        ] {
            assert!(g.check(q).is_ok(), "{q}: {:?}", g.check(q));
        }
    }

    #[test]
    fn everything_else_is_refused_by_type_and_count() {
        let (_raw, c, g) = db();
        for q in [
            "select 1; commit; delete from t; select 1",
            "select 1; /* x */ delete from t",
            "DELETE FROM t",
            "insert into t values (3)",
            "update t set x = 0",
            "ATTACH ':memory:' AS other",
            "SET threads = 1",
            "RESET memory_limit",
            "PRAGMA enable_profiling",
            "PRAGMA memory_limit = '10GB'",
            "CALL pragma_version()",
            "CREATE TEMP TABLE u AS SELECT 1",
            "INSTALL httpfs",
            "LOAD httpfs",
            "CHECKPOINT",
            "BEGIN TRANSACTION",
            "EXPLAIN ANALYZE DELETE FROM t",
            "EXPLAIN DELETE FROM t",
            "  ",
            "-- only a comment",
        ] {
            assert!(matches!(g.check(q), Err(QueryError::ReadOnly(_))), "{q}: {:?}", g.check(q));
        }
        // Texts that name files fail already when DuckDB binds them (external access is off
        // in every database cachescope opens), before their type is known; no file appears.
        for q in [
            "COPY t TO '/tmp/cachescope-guard-test.csv'",
            "EXPORT DATABASE '/tmp/cachescope-guard-test'",
            "ATTACH '/tmp/cachescope-guard-test.duckdb' AS other",
        ] {
            match g.check(q) {
                Err(QueryError::ReadOnly(_)) => {}
                Err(QueryError::Sql(m)) => assert!(m.contains("disabled by configuration"), "{q}: {m}"),
                other => panic!("{q}: {other:?}"),
            }
        }
        assert!(matches!(g.check("SELEC 1"), Err(QueryError::Sql(_))));
        assert!(matches!(g.check("select * from no_such_table"), Err(QueryError::Sql(_))));
        let n: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2, "checking ran nothing");
        assert!(!Path::new("/tmp/cachescope-guard-test.csv").exists());
        assert!(!Path::new("/tmp/cachescope-guard-test").exists());
        assert!(!Path::new("/tmp/cachescope-guard-test.duckdb").exists());
    }

    use std::path::Path;
}
