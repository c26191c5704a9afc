//! Read-only SQL over the events database. A DuckDB file can be open read-write by one
//! process only, and then no other process can even read it: so when `cachescope tail` holds
//! the database, queries go through its Unix socket (`<db>.sock`, mode 0600), and otherwise
//! the file is opened read-only. Either way a text runs only when DuckDB judges it one
//! statement that reads ([`guard`]), in a READ ONLY transaction that is rolled back, with
//! external access (files, network) disabled.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::NaiveDateTime;
use duckdb::types::{TimeUnit, Value};
use duckdb::Connection;
use serde::{Deserialize, Serialize};

pub mod guard;
pub mod lock;
mod protocol;
mod render;
mod server;

use guard::{Guard, RawDatabase};
pub use protocol::SocketClient;
pub use render::{printable, render_csv, render_table};
pub use server::{Connector, MemoryBudget, QueryServer, MATERIALIZABLE, MAX_REQUEST_BYTES};

/// A query's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl QueryResult {
    /// The rows as `T`s, each built from its columns by name: a column `T` does not have, or
    /// a value of the wrong type, is an error that names the row and the problem (a
    /// reordered or renamed SELECT fails loudly instead of becoming 0 or "").
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, QueryError> {
        self.rows
            .iter()
            .enumerate()
            .map(|(n, row)| {
                let obj: serde_json::Map<String, serde_json::Value> = self.columns.iter().cloned().zip(row.iter().cloned()).collect();
                serde_json::from_value(serde_json::Value::Object(obj)).map_err(|e| {
                    QueryError::Decode(format!("row {} of ({}) as {}: {e}", n + 1, self.columns.join(", "), std::any::type_name::<T>()))
                })
            })
            .collect()
    }

    /// The one row of a result that has exactly one.
    pub fn decode_one<T: serde::de::DeserializeOwned>(&self) -> Result<T, QueryError> {
        let mut rows = self.decode::<T>()?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            n => Err(QueryError::Decode(format!("expected one row of ({}), got {n}", self.columns.join(", ")))),
        }
    }
}

/// Failure of a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cachescope sql is read-only: {0}")]
    ReadOnly(String),
    /// DuckDB's message about a text: from the C API's parser and binder, or from a tailer
    /// (a message that crossed the socket).
    #[error("{0}")]
    Sql(String),
    #[error(transparent)]
    Duck(#[from] duckdb::Error),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("events database {db}: {source}")]
    Db {
        db: PathBuf,
        #[source]
        source: duckdb::Error,
    },
    #[error(transparent)]
    NotUtf8(#[from] NotUtf8Path),
    #[error("events database {db} does not exist yet; run `cachescope ingest` or `cachescope tail` first")]
    Missing { db: PathBuf },
    #[error("events database {db} is held by {holder} and no tailer socket answers at {socket}")]
    Locked { db: PathBuf, holder: String, socket: PathBuf },
    #[error("a query's result does not have the expected shape: {0}")]
    Decode(String),
    #[error("tailer socket {path}: {source}")]
    Socket { path: PathBuf, source: crate::BoxError },
    #[error("tailer socket {path}: every session is taken ({sessions} at once); try again when one of the other readers is done")]
    Busy { path: PathBuf, sessions: usize },
    #[error("{QUERY_MEMORY_ENV}={value}: {reason}; give a size such as 512MB or 4GB, or unset it for the default ({QUERY_MEMORY_MB} MB)")]
    QueryMemory { value: String, reason: String },
}

/// A series of queries on one database: a read-only connection of its own when the file is
/// free (where expensive views can be materialized once as temporary tables), or the
/// tailer's socket when `cachescope tail` holds the file.
pub enum Session {
    Direct(Direct),
    /// A session on the tailer's socket (its temporary tables live as long as it does).
    Socket(SocketClient),
    /// A session on an in-memory database its owner filled (the fleet's Parquet files,
    /// [`crate::fleet`]); only the crate's own queries run on it.
    Loaded(Loaded),
}

/// An in-memory database ([`Session::in_memory`]), or a second connection to a file a direct
/// session opened ([`Session::fork`]).
pub struct Loaded {
    conn: Connection,
    /// Declared last: dropped after the connection made from it.
    _database: Arc<RawDatabase>,
}

/// A read-only connection to a database file, with the [`Guard`] that judges texts.
pub struct Direct {
    conn: Connection,
    guard: Guard,
    db: PathBuf,
    /// Declared last: dropped after the connections made from it.
    _database: Arc<RawDatabase>,
}

impl Session {
    pub fn open(db: &Path) -> Result<Session, QueryError> {
        if !db.exists() {
            return Err(QueryError::Missing { db: db.to_path_buf() });
        }
        let dberr = |source: duckdb::Error| QueryError::Db { db: db.to_path_buf(), source };
        let path = utf8_path(db)?;
        let memory = format!("{}MB", query_memory_mb()?);
        match RawDatabase::open(path, &[("access_mode", "READ_ONLY"), ("enable_external_access", "false"), ("memory_limit", &memory)]) {
            Ok(database) => {
                let conn = database.connect().map_err(dberr)?;
                let guard = database.guard(&[]).map_err(dberr)?;
                Ok(Session::Direct(Direct {
                    conn,
                    guard,
                    db: db.to_path_buf(),
                    _database: Arc::new(database),
                }))
            }
            Err(e) if crate::engine::manifest::is_lock_conflict(&e) => {
                let sock = socket_path(db);
                // The first request says whether a session is free (waiting for one).
                match SocketClient::connect_waiting(&sock, BUSY_PATIENCE) {
                    Ok(client) => Ok(Session::Socket(client)),
                    Err(e @ QueryError::Busy { .. }) => Err(e),
                    Err(_) => Err(QueryError::Locked {
                        db: db.to_path_buf(),
                        holder: crate::engine::manifest::probe_lock(db).describe(),
                        socket: sock,
                    }),
                }
            }
            Err(e) => Err(dberr(e)),
        }
    }

    /// A new, empty in-memory database for its owner to fill through
    /// [`Session::direct_connection`]: DuckDB neither reads nor writes files for it, nor
    /// fetches extensions (the owner reads its files itself).
    pub fn in_memory() -> Result<Session, QueryError> {
        let database = RawDatabase::open(":memory:", &[("enable_external_access", "false")])?;
        let conn = database.connect()?;
        Ok(Session::Loaded(Loaded { conn, _database: Arc::new(database) }))
    }

    /// A second session on the same file, for the crate's own queries on another thread (the
    /// cache sizing's reads beside a report's queries): a connection of its own, without the
    /// temporary views; through a tailer, a second session of its socket. `None` through a
    /// tailer that answers one client at a time (older than this version), on an in-memory
    /// database, and on a file of the old layout (whose `event_rows` is a temporary copy of
    /// the first connection's).
    pub fn fork(&self) -> Result<Option<Session>, QueryError> {
        if let Session::Socket(client) = self {
            return Ok(client.another()?.map(Session::Socket));
        }
        let Session::Direct(Direct { conn, _database: database, .. }) = self else { return Ok(None) };
        let old_layout: i64 = conn.query_row(crate::queries::SCHEMA_LAYOUT, [], |r| r.get(0))?;
        if old_layout > 0 {
            return Ok(None);
        }
        Ok(Some(Session::Loaded(Loaded { conn: database.connect()?, _database: database.clone() })))
    }

    /// The connection of a direct session (for tests that read a database as reports do).
    pub fn direct_connection(&self) -> Option<&Connection> {
        match self {
            Session::Direct(d) => Some(&d.conn),
            Session::Loaded(l) => Some(&l.conn),
            Session::Socket(_) => None,
        }
    }

    /// Makes the session read this binary's views ([`crate::queries::install_views`]):
    /// directly, as temporary views shadowing those stored in the file (which another version
    /// may have written); through a tailer, whose views are its own, by checking that they
    /// are this binary's, and saying so on stderr when they are not.
    pub fn use_own_views(&self) -> Result<(), QueryError> {
        match self {
            Session::Direct(Direct { conn, db, .. }) => {
                let old_layout: i64 = conn.query_row(crate::queries::SCHEMA_LAYOUT, [], |r| r.get(0))?;
                if old_layout > 0 {
                    conn.execute_batch(crate::queries::SCHEMA_COMPAT)?;
                }
                let stale = crate::ingest::derived::stale_tables(conn)?;
                let fresh = crate::ingest::derived::freshness(&stale);
                if fresh.derived && !fresh.evaluations {
                    eprintln!(
                        "cachescope: note: {} was written before its kept 5-minute evaluations: they are computed from the per-minute figures at every query, which is slower; the next `cachescope ingest` or `tail` on it builds them in seconds",
                        db.display()
                    );
                } else if !stale.is_empty() {
                    eprintln!(
                        "cachescope: note: {} was written before its derived tables (or by an older version): figures are computed from the events, which is slower; the next `cachescope ingest` or `tail` on it builds them (or run `cachescope reclassify`)",
                        db.display()
                    );
                }
                let started = std::time::Instant::now();
                crate::queries::install_views(conn, true, fresh)?;
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "installed this binary's views");
                Ok(())
            }
            Session::Socket(client) => {
                let theirs = client.views_fingerprint()?;
                let ours = crate::queries::views_fingerprint();
                if theirs.as_deref() != Some(ours) {
                    eprintln!(
                        "cachescope: warning: the tailer serving {} runs another version of cachescope (its analysis views differ from this binary's); results follow its version. Restart `cachescope tail` with this binary to read them with this one.",
                        client.path().display()
                    );
                }
                Ok(())
            }
            // Its owner installed the views it reads.
            Session::Loaded(_) => Ok(()),
        }
    }

    /// Materializes views (names from [`MATERIALIZABLE`]) as temporary tables of the same
    /// name, which shadow them for every later query of this session, including other views:
    /// here, or in the tailer for this socket session. `between`: only the rows of that
    /// range (each view's `<name>_between(lo, hi)` macro), else all of them; a later call
    /// replaces what an earlier one computed.
    pub fn materialize(&self, views: &[&'static str], between: Option<(NaiveDateTime, NaiveDateTime)>) -> Result<(), QueryError> {
        if let Some(bad) = views.iter().find(|v| !MATERIALIZABLE.contains(v)) {
            return Err(QueryError::Sql(format!("not a view that can be materialized: {bad}")));
        }
        let bounds = server::bounds(between);
        match self {
            Session::Direct(Direct { conn, .. }) | Session::Loaded(Loaded { conn, .. }) => {
                for name in views {
                    server::materialize_on(conn, name, &bounds)?;
                }
                Ok(())
            }
            Session::Socket(client) => client.materialize(views, bounds),
        }
    }

    /// Runs a text from anyone (`cachescope sql`): DuckDB must judge it one statement that
    /// reads ([`guard`]), here or in the tailer.
    pub fn query(&self, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
        match self {
            Session::Direct(d) => {
                server::refuse_database_files(sql, &d.db)?;
                d.guard.check(sql)?;
                run_on(&d.conn, sql, params)
            }
            Session::Socket(client) => client.query(sql, params),
            Session::Loaded(_) => Err(QueryError::ReadOnly("this session answers only cachescope's own questions".into())),
        }
    }

    /// Runs one of the crate's own queries (a `&'static str`: compiled in, never user input).
    /// Direct sessions run it as it is, so it may read the session's temporary views; the
    /// tailer judges every text it is sent.
    pub fn query_own(&self, sql: &'static str, params: &[String]) -> Result<QueryResult, QueryError> {
        match self {
            Session::Direct(d) => run_on(&d.conn, sql, params),
            Session::Loaded(l) => run_on(&l.conn, sql, params),
            Session::Socket(client) => client.query(sql, params),
        }
    }

    /// Runs one of the crate's own queries and hands its rows to `each` in Arrow batches as
    /// they come, never all at once: directly, or through the tailer as an Arrow IPC stream
    /// (what-if reads every request of a period this way).
    pub fn stream_own(&self, sql: &'static str, params: &[String], each: &mut dyn FnMut(&RecordBatch) -> Result<(), QueryError>) -> Result<(), QueryError> {
        match self {
            Session::Direct(Direct { conn, .. }) | Session::Loaded(Loaded { conn, .. }) => {
                let mut stmt = conn.prepare(sql)?;
                for batch in stmt.stream_arrow(duckdb::params_from_iter(params.iter()))? {
                    each(&batch?)?;
                }
                Ok(())
            }
            Session::Socket(client) => client.stream_arrow(sql, params, each),
        }
    }
}

/// An events database path that is not UTF-8 (DuckDB takes its paths as text).
#[derive(Debug, thiserror::Error)]
#[error("events database {0}: the path is not valid UTF-8; give the database a UTF-8 path")]
pub struct NotUtf8Path(pub PathBuf);

/// The DuckDB memory a reader's queries may use (MB) unless [`QUERY_MEMORY_ENV`] says: on the
/// file (a session's cap) as through the tailer (on top of its own budget, `tail
/// --query-memory`'s default). Beyond it DuckDB spills to `<db>.tmp/`: a whole-history report
/// over 100M lines ran in 1.2 GB instead of 7.7 GB (the runbook's cause 4 is memory pressure
/// on the trading host), and in 38 s instead of 63 s uncapped.
pub const QUERY_MEMORY_MB: u64 = 1000;

/// How long a reader waits for a session of a running tailer whose sessions are all taken.
const BUSY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// The environment variable that sets a reader's DuckDB memory ([`QUERY_MEMORY_MB`]'s
/// default), on the file and as `tail --query-memory`'s default: one knob for a host with
/// memory to spare.
pub const QUERY_MEMORY_ENV: &str = "CACHESCOPE_QUERY_MEMORY";

/// The memory a reader's queries may use: [`QUERY_MEMORY_ENV`], else [`QUERY_MEMORY_MB`].
pub fn query_memory_mb() -> Result<u64, QueryError> {
    match std::env::var(QUERY_MEMORY_ENV) {
        Ok(v) => parse_megabytes(&v).map_err(|reason| QueryError::QueryMemory { value: v, reason }),
        Err(std::env::VarError::NotPresent) => Ok(QUERY_MEMORY_MB),
        Err(std::env::VarError::NotUnicode(v)) => Err(QueryError::QueryMemory { value: v.to_string_lossy().into(), reason: "not UTF-8".into() }),
    }
}

/// A size such as `512MB`, `1.5GB` or `800MiB`, in (decimal) megabytes (a bare number is MB).
pub fn parse_megabytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a size such as 512MB or 2GB"))?;
    let mb = match unit.trim().to_ascii_lowercase().as_str() {
        "kb" => n / 1e3,
        "kib" => n * 1024.0 / 1e6,
        "" | "mb" => n,
        "mib" => n * 1_048_576.0 / 1e6,
        "gb" => n * 1e3,
        "gib" => n * 1_073_741_824.0 / 1e6,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (KB, MB, GB, KiB, MiB or GiB)")),
    };
    if mb < 1.0 {
        return Err(format!("`{s}` is less than 1 MB"));
    }
    Ok(mb.round() as u64)
}

/// `db` as DuckDB takes it.
pub fn utf8_path(db: &Path) -> Result<&str, NotUtf8Path> {
    db.to_str().ok_or_else(|| NotUtf8Path(db.to_path_buf()))
}

/// Where the tailer serving `db` listens.
pub fn socket_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sock", db.display()))
}

/// `sql` without the `--` line comments and `/* */` block comments before its first word.
pub(crate) fn strip_leading_comments(sql: &str) -> &str {
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
        Value::Interval { months, days, nanos } => J::String(interval_text(months, days, nanos)),
        other => J::String(format!("{other:?}")),
    }
}

/// An interval as DuckDB prints it: `1 year 2 months 3 days 04:05:06.789`, leaving out the
/// parts that are zero (the time only when everything else is).
fn interval_text(months: i32, days: i32, nanos: i64) -> String {
    let unit = |n: i64, one: &str| format!("{n} {one}{}", if n.abs() == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    let (years, months) = (months / 12, months % 12);
    for (n, one) in [(years as i64, "year"), (months as i64, "month"), (days as i64, "day")] {
        if n != 0 {
            parts.push(unit(n, one));
        }
    }
    if nanos != 0 || parts.is_empty() {
        let sign = if nanos < 0 { "-" } else { "" };
        let micros = (nanos / 1_000).unsigned_abs();
        let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
        let mut t = format!("{sign}{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        if frac != 0 {
            t.push_str(format!(".{frac:06}").trim_end_matches('0'));
        }
        parts.push(t);
    }
    parts.join(" ")
}

/// Runs one statement already judged by a [`Guard`] (or one of the crate's own) on `conn`,
/// inside a READ ONLY transaction that is rolled back; `params` are bound in order (as
/// text; the SQL casts them).
pub(crate) fn run_on(conn: &Connection, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
    let err = QueryError::Duck;
    let started = std::time::Instant::now();
    conn.execute_batch("BEGIN TRANSACTION READ ONLY").map_err(err)?;
    let result = (|| {
        let mut stmt = conn.prepare(sql).map_err(err)?;
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
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, rows = result.as_ref().map_or(0, |r| r.rows.len()), "query {}", first_words(sql));
    result
}

/// The start of a query's text for a diagnostic: its first line (the files in `queries/`
/// open with a comment saying what they answer).
fn first_words(sql: &str) -> &str {
    let line = sql.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    &line[..line.char_indices().nth(80).map_or(line.len(), |(i, _)| i)]
}

/// Runs a reading query on `db`: read-only on the file when it is free, else through the
/// tailer's socket.
pub fn query(db: &Path, sql: &str) -> Result<QueryResult, QueryError> {
    query_with(db, sql, &[])
}

/// [`query`] with bound parameters.
pub fn query_with(db: &Path, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
    Session::open(db)?.query(sql, params)
}

/// The tables and views a user can query, with their columns.
pub const SCHEMA_SQL: &str = crate::queries::SQL_SCHEMA;

#[cfg(test)]
mod tests {
    #[test]
    fn intervals_read_as_duckdb_prints_them() {
        assert_eq!(super::interval_text(0, 0, 810_240_064_000), "00:13:30.240064");
        assert_eq!(super::interval_text(14, 1, 3_600_000_000_000), "1 year 2 months 1 day 01:00:00");
        assert_eq!(super::interval_text(0, 3, 0), "3 days");
        assert_eq!(super::interval_text(0, 0, 0), "00:00:00");
        assert_eq!(super::interval_text(0, 0, -90_500_000_000), "-00:01:30.5");
    }

    use super::*;

    #[test]
    fn a_writing_cte_cannot_write_in_a_read_only_transaction() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)").unwrap();
        let r = run_on(&c, "-- a comment\n/* more */ SELECT count(*) AS n FROM t WHERE x >= CAST(? AS INT)", &["1".into()]).unwrap();
        assert_eq!(r.columns, vec!["n"]);
        assert_eq!(r.rows, vec![vec![serde_json::json!(1)]]);
        assert!(run_on(&c, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", &[]).is_err());
        assert_eq!(run_on(&c, "SELECT count(*) FROM t", &[]).unwrap().rows[0][0], serde_json::json!(1));
    }

    #[test]
    fn rows_decode_by_column_name_and_a_wrong_shape_fails_loudly() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(deny_unknown_fields)]
        struct Row {
            n: i64,
            name: Option<String>,
        }
        let r = QueryResult {
            columns: vec!["name".into(), "n".into()],
            rows: vec![vec![serde_json::json!("a"), serde_json::json!(1)], vec![serde_json::Value::Null, serde_json::json!(2)]],
        };
        assert_eq!(r.decode::<Row>().unwrap(), [Row { n: 1, name: Some("a".into()) }, Row { n: 2, name: None }]);
        let renamed = QueryResult { columns: vec!["name".into(), "count".into()], rows: r.rows.clone() };
        assert!(matches!(renamed.decode::<Row>(), Err(QueryError::Decode(m)) if m.contains("count")));
        let mistyped = QueryResult { columns: r.columns.clone(), rows: vec![vec![serde_json::json!("a"), serde_json::json!("one")]] };
        assert!(matches!(mistyped.decode::<Row>(), Err(QueryError::Decode(_))));
        assert!(matches!(r.decode_one::<Row>(), Err(QueryError::Decode(_))));
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

    #[test]
    fn a_session_on_the_file_caps_its_memory_like_the_tailer() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ev.duckdb");
        Connection::open(&db).unwrap().execute_batch("CREATE TABLE t (x INT)").unwrap();
        let s = Session::open(&db).unwrap();
        let limit: String = s.direct_connection().unwrap().query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0)).unwrap();
        // DuckDB shows it in MiB: 1000 MB is 953.6 MiB.
        let mib: f64 = limit.trim_end_matches(" MiB").parse().unwrap_or_else(|_| panic!("{limit}"));
        assert!((mib * 1.048576 - QUERY_MEMORY_MB as f64).abs() < 1.0, "{limit}");
    }

    #[test]
    fn sizes_read_as_megabytes() {
        assert_eq!(parse_megabytes("512MB"), Ok(512));
        assert_eq!(parse_megabytes("1.5GB"), Ok(1500));
        assert_eq!(parse_megabytes("1GiB"), Ok(1074));
        assert_eq!(parse_megabytes("300"), Ok(300));
        assert!(parse_megabytes("lots").is_err());
        assert!(parse_megabytes("10TB").is_err());
        assert!(parse_megabytes("0.1MB").is_err());
    }

    #[test]
    fn an_in_memory_session_reads_no_file_and_takes_no_text_from_anyone() {
        let s = Session::in_memory().unwrap();
        let conn = s.direct_connection().unwrap();
        conn.execute_batch("CREATE TABLE t AS SELECT 1 AS n").unwrap();
        assert_eq!(s.query_own("SELECT count(*) AS n FROM t", &[]).unwrap().rows, [[serde_json::json!(1)]]);
        let e = s.query_own("SELECT * FROM read_csv('/etc/hostname')", &[]).unwrap_err();
        assert!(e.to_string().contains("disabled"), "{e}");
        assert!(matches!(s.query("SELECT 1", &[]), Err(QueryError::ReadOnly(_))));
    }
}
