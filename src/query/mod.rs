//! Read-only SQL over the events database. A DuckDB file can be open read-write by one
//! process only, and then no other process can even read it: so when `cachescope tail` holds
//! the database, queries go through its Unix socket (`<db>.sock`, mode 0600), and otherwise
//! the file is opened read-only. Either way a query runs in a transaction that is rolled back,
//! with external access (files, network) disabled, and only statements that read are accepted.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use duckdb::types::{TimeUnit, Value};
use duckdb::{AccessMode, Config, Connection};
use serde::{Deserialize, Serialize};

/// A query's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Failure of a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cachescope sql is read-only: {0}")]
    ReadOnly(String),
    #[error("{0}")]
    Sql(String),
    #[error("events database {db}: {message}")]
    Db { db: PathBuf, message: String },
    #[error("events database {db} does not exist yet; run `cachescope ingest` or `cachescope tail` first")]
    Missing { db: PathBuf },
    #[error("events database {db} is held by {holder} and no tailer socket answers at {socket}")]
    Locked { db: PathBuf, holder: String, socket: PathBuf },
    #[error("tailer socket {path}: {message}")]
    Socket { path: PathBuf, message: String },
}

/// A series of trusted queries on one database: a read-only connection of its own when the
/// file is free (where expensive views can be materialized once as temporary tables), or the
/// tailer's socket when `cachescope tail` holds the file.
pub enum Session {
    Direct(Connection),
    Socket(PathBuf),
}

impl Session {
    pub fn open(db: &Path) -> Result<Session, QueryError> {
        if !db.exists() {
            return Err(QueryError::Missing { db: db.to_path_buf() });
        }
        let dberr = |e: duckdb::Error| QueryError::Db {
            db: db.to_path_buf(),
            message: e.to_string(),
        };
        let config = Config::default()
            .access_mode(AccessMode::ReadOnly)
            .and_then(|c| c.enable_external_access(false))
            .map_err(dberr)?;
        match Connection::open_with_flags(db, config) {
            Ok(conn) => Ok(Session::Direct(conn)),
            Err(e) if e.to_string().contains("Could not set lock") => {
                let sock = socket_path(db);
                if UnixStream::connect(&sock).is_ok() {
                    Ok(Session::Socket(sock))
                } else {
                    Err(QueryError::Locked {
                        db: db.to_path_buf(),
                        holder: crate::engine::manifest::probe_lock(db).describe(),
                        socket: sock,
                    })
                }
            }
            Err(e) => Err(dberr(e)),
        }
    }

    /// Defines views from the given SQL (this binary's) as temporary views, shadowing those
    /// stored in the file (which an older version may have written). Direct sessions only.
    pub fn define_views(&self, sql: &[&str]) -> Result<(), QueryError> {
        if let Session::Direct(conn) = self {
            let old_layout: i64 = conn
                .query_row(crate::queries::SCHEMA_LAYOUT, [], |r| r.get(0))
                .map_err(|e| QueryError::Sql(e.to_string()))?;
            if old_layout > 0 {
                conn.execute_batch(crate::queries::SCHEMA_COMPAT)
                    .map_err(|e| QueryError::Sql(e.to_string()))?;
            }
            for s in sql {
                conn.execute_batch(&s.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW"))
                    .map_err(|e| QueryError::Sql(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Materializes views as temporary tables of the same name (which shadow them for every
    /// later query of this session, including other views). No-op through the socket.
    pub fn materialize(&self, views: &[&str]) -> Result<(), QueryError> {
        if let Session::Direct(conn) = self {
            for name in views {
                // Names are the crate's own view names, never user input.
                if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                    return Err(QueryError::Sql(format!("not a view name: {name}")));
                }
                // Computed once into `<name>_m`; `<name>` becomes a view of it (no second copy).
                conn.execute_batch(&format!(
                    "CREATE OR REPLACE TEMP TABLE {name}_m AS SELECT * FROM {name}; CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM temp.{name}_m;"
                ))
                    .map_err(|e| QueryError::Sql(e.to_string()))?;
            }
        }
        Ok(())
    }

    pub fn query(&self, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
        match self {
            Session::Direct(conn) => run_on(conn, sql, params),
            Session::Socket(sock) => {
                let s = UnixStream::connect(sock).map_err(|e| QueryError::Socket {
                    path: sock.clone(),
                    message: e.to_string(),
                })?;
                ask(s, sock, sql, params)
            }
        }
    }
}

/// Where the tailer serving `db` listens.
pub fn socket_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sock", db.display()))
}

/// First words of the statements `sql` accepts.
const READ_STATEMENTS: [&str; 11] = [
    "select", "with", "from", "values", "table", "describe", "show", "summarize", "explain", "pivot", "unpivot",
];

/// Refuses anything but one reading statement.
pub fn check_read_only(sql: &str) -> Result<(), QueryError> {
    let body = strip_leading_comments(sql).trim_end_matches(';').trim();
    let first = body
        .split(|c: char| c.is_whitespace() || c == '(')
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_ascii_lowercase();
    if first.is_empty() {
        return Err(QueryError::ReadOnly("the query is empty".into()));
    }
    if !READ_STATEMENTS.contains(&first.as_str()) {
        return Err(QueryError::ReadOnly(format!(
            "`{}` statements are refused; only queries that read (SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, ...)",
            first.to_uppercase()
        )));
    }
    Ok(())
}

/// `sql` without the `--` line comments and `/* */` block comments before its first word.
fn strip_leading_comments(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |x| x.1).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |x| x.1).trim_start();
        } else {
            return s;
        }
    }
}

fn to_json(v: Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Boolean(b) => J::Bool(b),
        Value::TinyInt(x) => x.into(),
        Value::SmallInt(x) => x.into(),
        Value::Int(x) => x.into(),
        Value::BigInt(x) => x.into(),
        Value::UTinyInt(x) => x.into(),
        Value::USmallInt(x) => x.into(),
        Value::UInt(x) => x.into(),
        Value::UBigInt(x) => x.into(),
        Value::HugeInt(x) => i64::try_from(x).map(J::from).unwrap_or_else(|_| J::String(x.to_string())),
        Value::UHugeInt(x) => u64::try_from(x).map(J::from).unwrap_or_else(|_| J::String(x.to_string())),
        Value::Float(x) => serde_json::Number::from_f64(x as f64).map(J::Number).unwrap_or(J::Null),
        Value::Double(x) => serde_json::Number::from_f64(x).map(J::Number).unwrap_or(J::Null),
        Value::Decimal(d) => J::String(d.to_string()),
        Value::Timestamp(unit, x) => {
            let micros = match unit {
                TimeUnit::Second => x * 1_000_000,
                TimeUnit::Millisecond => x * 1_000,
                TimeUnit::Microsecond => x,
                TimeUnit::Nanosecond => x / 1_000,
            };
            match chrono::DateTime::from_timestamp_micros(micros) {
                Some(t) => J::String(crate::engine::clock::fmt_ts(t.naive_utc())),
                None => J::String(x.to_string()),
            }
        }
        Value::Text(s) | Value::Enum(s) => J::String(s),
        Value::Date32(d) => J::String(
            chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                .map(|x| x.to_string())
                .unwrap_or_else(|| d.to_string()),
        ),
        Value::List(v) | Value::Array(v) => J::Array(v.into_iter().map(to_json).collect()),
        other => J::String(format!("{other:?}")),
    }
}

/// Runs one reading statement on `conn` inside a transaction that is rolled back; `params`
/// are bound in order (as text; the SQL casts them).
pub fn run_on(conn: &Connection, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
    check_read_only(sql)?;
    let body = sql.trim().trim_end_matches(';');
    let err = |e: duckdb::Error| QueryError::Sql(e.to_string());
    conn.execute_batch("BEGIN TRANSACTION").map_err(err)?;
    let result = (|| {
        let mut stmt = conn.prepare(body).map_err(err)?;
        let mut rows = stmt.query(duckdb::params_from_iter(params.iter())).map_err(err)?;
        let columns: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
        let n = columns.len();
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(to_json(r.get::<_, Value>(i).map_err(err)?));
            }
            out.push(row);
        }
        Ok(QueryResult { columns, rows: out })
    })();
    let _ = conn.execute_batch("ROLLBACK");
    result
}

/// Runs a reading query on `db`: read-only on the file when it is free, else through the
/// tailer's socket.
pub fn query(db: &Path, sql: &str) -> Result<QueryResult, QueryError> {
    query_with(db, sql, &[])
}

/// [`query`] with bound parameters.
pub fn query_with(db: &Path, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
    check_read_only(sql)?;
    Session::open(db)?.query(sql, params)
}

#[derive(Serialize, Deserialize)]
struct Request {
    sql: String,
    #[serde(default)]
    params: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Response {
    ok: bool,
    error: Option<String>,
    result: Option<QueryResult>,
}

fn ask(mut s: UnixStream, path: &Path, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
    let serr = |m: String| QueryError::Socket {
        path: path.to_path_buf(),
        message: m,
    };
    let mut req = serde_json::to_string(&Request { sql: sql.to_string(), params: params.to_vec() }).map_err(|e| serr(e.to_string()))?;
    req.push('\n');
    s.write_all(req.as_bytes()).map_err(|e| serr(e.to_string()))?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).map_err(|e| serr(e.to_string()))?;
    let resp: Response = serde_json::from_str(&line).map_err(|e| serr(format!("bad answer: {e}")))?;
    match (resp.ok, resp.result, resp.error) {
        (true, Some(r), _) => Ok(r),
        (_, _, Some(e)) => Err(QueryError::Sql(e)),
        _ => Err(serr("empty answer".into())),
    }
}

/// Serves queries on `<db>.sock` with a connection of the process that holds the database,
/// until `shutdown` is set. The socket is created with mode 0600 and removed at the end.
pub struct QueryServer {
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
}

impl QueryServer {
    pub fn start(db: &Path, conn: Connection) -> Result<QueryServer, QueryError> {
        let path = socket_path(db);
        let serr = |m: String| QueryError::Socket {
            path: path.clone(),
            message: m,
        };
        // A socket left by a killed tailer: nobody answers on it.
        if path.exists() && UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(&path);
        unsafe { libc::umask(old) };
        let listener = bound.map_err(|e| serr(e.to_string()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| serr(e.to_string()))?;
        listener.set_nonblocking(true).map_err(|e| serr(e.to_string()))?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("query-server".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => serve_one(&conn, s),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
            .map_err(|e| serr(e.to_string()))?;
        Ok(QueryServer {
            path,
            thread: Some(thread),
            shutdown,
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for QueryServer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn serve_one(conn: &Connection, s: UnixStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let mut reader = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The tailer keeps DuckDB's memory small for ingestion; a query gets room while it runs.
    let previous: Option<String> = conn
        .query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0))
        .ok();
    let _ = conn.execute_batch(&format!("SET memory_limit = '{QUERY_MEMORY_LIMIT}'"));
    let answer = serde_json::from_str::<Request>(&line).map(|req| run_on(conn, &req.sql, &req.params));
    if let Some(p) = previous {
        let _ = conn.execute("SET memory_limit = ?", [p]);
    }
    let resp = match answer {
        Ok(result) => match result {
            Ok(r) => Response { ok: true, error: None, result: Some(r) },
            Err(e) => Response { ok: false, error: Some(e.to_string()), result: None },
        },
        Err(e) => Response { ok: false, error: Some(format!("bad request: {e}")), result: None },
    };
    let mut out = serde_json::to_string(&resp).unwrap_or_else(|_| "{\"ok\":false,\"error\":\"encoding\"}".into());
    out.push('\n');
    let mut s = s;
    let _ = s.write_all(out.as_bytes());
}

/// DuckDB's memory limit while the tailer answers a query.
const QUERY_MEMORY_LIMIT: &str = "2GB";

/// Strips control characters (terminal safety) from text shown in a terminal.
pub fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// Formats a result as an aligned text table.
pub fn render_table(r: &QueryResult) -> String {
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "NULL".to_string(),
        serde_json::Value::String(s) => printable(s),
        other => other.to_string(),
    };
    let cells: Vec<Vec<String>> = r.rows.iter().map(|row| row.iter().map(cell).collect()).collect();
    let mut width: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count().min(80));
        }
    }
    let mut out = String::new();
    let line = |vals: &[String], out: &mut String| {
        let parts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v: String = v.chars().take(80).collect();
                format!("{v:<w$}", w = width[i])
            })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&r.columns.iter().map(|c| printable(c)).collect::<Vec<_>>(), &mut out);
    line(&width.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(), &mut out);
    for row in &cells {
        line(row, &mut out);
    }
    out.push_str(&format!("({} rows)\n", r.rows.len()));
    out
}

/// Formats a result as CSV (RFC 4180 quoting).
pub fn render_csv(r: &QueryResult) -> Result<String, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |x: csv::Error| QueryError::Sql(x.to_string());
    w.write_record(&r.columns).map_err(e)?;
    for row in &r.rows {
        w.write_record(row.iter().map(|v| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
        .map_err(e)?;
    }
    let bytes = w.into_inner().map_err(|x| QueryError::Sql(x.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).to_string())
}

/// The tables and views a user can query, with their columns.
pub const SCHEMA_SQL: &str = "SELECT table_name AS name, table_type AS kind, string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) AS columns FROM information_schema.columns JOIN information_schema.tables USING (table_catalog, table_schema, table_name) WHERE table_schema = 'main' GROUP BY ALL ORDER BY kind, name";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_refused_before_reaching_duckdb() {
        for q in ["DELETE FROM events", "drop table events", "INSERT INTO x VALUES (1)", "COPY events TO 'x.csv'", "ATTACH 'x.db'", "  ", "update events set x=1"] {
            assert!(matches!(check_read_only(q), Err(QueryError::ReadOnly(_))), "{q}");
        }
        for q in ["SELECT 1", "with x as (select 1) select * from x", "FROM events", "describe events", "(select 1)"] {
            assert!(check_read_only(q).is_ok() || q.starts_with('('), "{q}");
        }
    }

    #[test]
    fn a_writing_cte_is_rolled_back() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)").unwrap();
        let r = run_on(&c, "-- a comment\n/* more */ SELECT count(*) AS n FROM t WHERE x >= CAST(? AS INT)", &["1".into()]).unwrap();
        assert_eq!(r.columns, vec!["n"]);
        assert_eq!(r.rows, vec![vec![serde_json::json!(1)]]);
        let _ = run_on(&c, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", &[]);
        assert_eq!(run_on(&c, "SELECT count(*) FROM t", &[]).unwrap().rows[0][0], serde_json::json!(1));
        assert!(matches!(check_read_only("-- x\nDELETE FROM t"), Err(QueryError::ReadOnly(_))));
    }

    #[test]
    fn output_is_safe_for_terminals_and_csv() {
        let r = QueryResult {
            columns: vec!["symbol".into(), "n".into()],
            rows: vec![vec![serde_json::json!("EVIL\u{1b}[2J,\"x\""), serde_json::json!(3)]],
        };
        let t = render_table(&r);
        assert!(!t.contains('\u{1b}'), "{t}");
        let c = render_csv(&r).unwrap();
        assert_eq!(c.lines().nth(1).unwrap(), "\"EVIL\u{1b}[2J,\"\"x\"\"\",3");
    }
}
