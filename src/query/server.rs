//! The query server of a process that holds the events database (`cachescope tail`): it
//! listens on `<db>.sock` (mode 0600) and gives each client a DuckDB connection of its own
//! for as long as the client stays (a session), up to [`MAX_SESSIONS`] clients at once, each
//! on a thread of its own (a report's queries and its cache sizing's read are two); a further
//! client is answered that every session is taken (it asks again, or does without). Every text
//! is judged by a [`Guard`]; every query runs in a READ ONLY transaction that is rolled back;
//! DuckDB's memory budget is raised by the per-query cap while any request runs (one cap for
//! them all: the budget is the database's) and given back to the ingester after the last,
//! whatever happened.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;
use duckdb::Connection;

use super::guard::{Guard, RawDatabase};
use super::lock::{names_database_files, LockKeeper};
use super::protocol::{Request, Response};
use super::{run_on, socket_path, QueryError, QueryResult};

/// DuckDB's memory budgets of a process that ingests and answers queries (MB).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryBudget {
    /// While ingesting only.
    pub ingest_mb: u64,
    /// Added while a request runs (the per-query cap; beyond it, DuckDB spills to `<db>.tmp/`).
    pub query_mb: u64,
}

/// Makes the connections (and the guard) a server gives its clients: connections to one
/// database, each set up by the same statements of the crate's own (e.g. `USE`).
#[derive(Clone)]
pub struct Connector {
    database: Arc<RawDatabase>,
    setup: Vec<String>,
    /// The database file: texts that name it are refused, and its lock is taken again
    /// after every request ([`super::lock`]).
    file: Option<(PathBuf, Arc<LockKeeper>)>,
}

impl Connector {
    pub fn new(database: Arc<RawDatabase>, setup: Vec<String>) -> Connector {
        Connector { database, setup, file: None }
    }

    /// The database file the connections write, and the keeper of its lock.
    pub fn with_file(mut self, path: &Path, keeper: Arc<LockKeeper>) -> Connector {
        self.file = Some((path.to_path_buf(), keeper));
        self
    }

    pub fn connect(&self) -> Result<Connection, duckdb::Error> {
        let conn = self.database.connect()?;
        for s in &self.setup {
            conn.execute_batch(s)?;
        }
        Ok(conn)
    }

    pub fn guard(&self) -> Result<Guard, duckdb::Error> {
        let setup: Vec<&str> = self.setup.iter().map(String::as_str).collect();
        self.database.guard(&setup)
    }
}

/// The views a client may have computed once for its session (the reports' expensive
/// ones), as temporary tables that shadow them.
pub const MATERIALIZABLE: [&str; 1] = ["hit_ratio_5m"];

/// The longest request line the socket reads (a query text with its parameters).
pub const MAX_REQUEST_BYTES: u64 = 1 << 20;

/// How long a session may sit idle between requests before the server ends it.
const IDLE: Duration = Duration::from_secs(5);

/// Sessions served at once; a further client is answered that they are all taken.
pub const MAX_SESSIONS: usize = 4;

/// How long a client may leave an answer unread (a stream it stopped reading) before the
/// server gives up on it and serves the next client.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// Serves queries on `<db>.sock` until stopped. The socket is removed at the end.
pub struct QueryServer {
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
    shutdown: Arc<AtomicBool>,
}

impl QueryServer {
    /// Serves on `<db>.sock` with connections from `connector`; DuckDB's memory budget is
    /// `memory.ingest_mb`, and that plus `memory.query_mb` while a request runs.
    pub fn start(db: &Path, connector: Connector, memory: MemoryBudget) -> Result<QueryServer, QueryError> {
        let path = socket_path(db);
        let serr = |source: crate::BoxError| QueryError::Socket {
            path: path.clone(),
            source,
        };
        // Each session judges its texts with a guard of its own (a guard is one connection);
        // this one says at the start whether guards can be made at all.
        drop(connector.guard().map_err(|e| serr(e.into()))?);
        // A socket left by a killed tailer: nobody answers on it.
        if path.exists() && UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(&path);
        unsafe { libc::umask(old) };
        let listener = bound.map_err(|e| serr(e.into()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| serr(e.into()))?;
        listener.set_nonblocking(true).map_err(|e| serr(e.into()))?;
        let shutdown = Arc::new(AtomicBool::new(false));
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("query-server".into())
            .spawn(move || accept_sessions(&listener, &connector, memory, &stop))
            .map_err(|e| serr(e.into()))?;
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

/// The server's thread: accepts clients and serves each on a thread of its own, at most
/// [`MAX_SESSIONS`] at once, until stopped; then ends every session (their sockets are shut,
/// which ends a read or write in progress) and waits for their threads.
fn accept_sessions(listener: &UnixListener, connector: &Connector, memory: MemoryBudget, stop: &Arc<AtomicBool>) {
    let requests = Arc::new(Running::default());
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut sessions: Vec<(UnixStream, std::thread::JoinHandle<()>)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        sessions.retain(|(_, t)| !t.is_finished());
        match listener.accept() {
            Ok((s, _)) if sessions.len() >= MAX_SESSIONS => {
                // Never left waiting: a client told it may do without (a report's second
                // session) or ask again; one that holds a session and waits for another
                // would otherwise wait with every other holder. Every such client is
                // answered (one closed unanswered read "connection reset" and failed),
                // unless [`MAX_REFUSING`] are being answered already: a flood of connections
                // that send nothing is closed unanswered rather than given a thread each.
                let Some(slot) = Refusal::take(&refusing) else {
                    tracing::debug!("{MAX_REFUSING} clients are being told the sessions are taken; one more is closed unanswered");
                    continue;
                };
                // The slot is given back when the thread ends, or with the closure if none starts.
                if let Err(e) = std::thread::Builder::new().name("query-busy".into()).spawn(move || refuse_busy(s, slot)) {
                    tracing::warn!("cannot start a thread to refuse a query session: {e}");
                }
            }
            Ok((s, _)) => {
                let Ok(handle) = s.try_clone() else { continue };
                let (connector, stop, requests) = (connector.clone(), stop.clone(), requests.clone());
                let spawned = std::thread::Builder::new()
                    .name("query-session".into())
                    .spawn(move || serve_client(&connector, &requests, memory, s, &stop));
                match spawned {
                    Ok(t) => sessions.push((handle, t)),
                    Err(e) => tracing::warn!("cannot start a thread for a query session: {e}"),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    for (s, t) in sessions {
        let _ = s.shutdown(std::net::Shutdown::Both);
        let _ = t.join();
    }
}

/// How long a refused connection may take to send its first request.
const REFUSE_WAIT: Duration = Duration::from_secs(1);

/// Refused connections answered at once (a thread each, for at most [`REFUSE_WAIT`] and the
/// answer's write); further ones are closed unanswered until one of them is done. Far more
/// than honest clients make (a report or an incident holds at most two connections), far
/// fewer than a process may start threads.
const MAX_REFUSING: usize = 64;

/// One of the [`MAX_REFUSING`] refusals answered at once, given back when dropped.
struct Refusal(Arc<AtomicUsize>);

impl Refusal {
    /// A slot, unless they are all taken (only the accepting thread takes them).
    fn take(refusing: &Arc<AtomicUsize>) -> Option<Refusal> {
        if refusing.load(Ordering::SeqCst) >= MAX_REFUSING {
            return None;
        }
        refusing.fetch_add(1, Ordering::SeqCst);
        Some(Refusal(refusing.clone()))
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers a connection's first request (waiting at most [`REFUSE_WAIT`] for it) with
/// [`Response::busy`], and closes it; then gives its `_slot` back.
fn refuse_busy(s: UnixStream, _slot: Refusal) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(REFUSE_WAIT));
    let _ = s.set_write_timeout(Some(REFUSE_WAIT));
    let Ok(mut out) = s.try_clone() else { return };
    let mut line = String::new();
    let _ = BufReader::new(s).take(MAX_REQUEST_BYTES).read_line(&mut line);
    send(&mut out, &Response::busy(MAX_SESSIONS));
}

/// The requests running now, across sessions: the first raises DuckDB's settings for queries,
/// the last gives the ingester its own back (its row order, read by the first).
#[derive(Default)]
struct Running(Mutex<RunningState>);

#[derive(Default)]
struct RunningState {
    requests: usize,
    /// The ingester's `preserve_insertion_order` (`None`: it could not be read).
    ingester_order: Option<bool>,
}

fn send(s: &mut UnixStream, resp: &Response) -> bool {
    let mut out = serde_json::to_string(resp).unwrap_or_else(|_| "{\"ok\":false,\"error\":\"encoding\"}".into());
    out.push('\n');
    s.write_all(out.as_bytes()).is_ok()
}

/// One client's session: its own connection (its temporary tables die with it), requests
/// until it hangs up, is idle for [`IDLE`], sends a bad request, or the server stops.
fn serve_client(connector: &Connector, requests: &Running, memory: MemoryBudget, s: UnixStream, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(IDLE));
    let _ = s.set_write_timeout(Some(WRITE_STALL));
    let Ok(mut out) = s.try_clone() else { return };
    let (conn, guard) = match connector.connect().and_then(|c| Ok((c, connector.guard()?))) {
        Ok(both) => both,
        Err(e) => {
            send(&mut out, &Response::failed(format!("cannot open a connection for the query: {e}"), false));
            return;
        }
    };
    let guard = &guard;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    while !stop.load(Ordering::SeqCst) {
        line.clear();
        match reader.by_ref().take(MAX_REQUEST_BYTES).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with('\n') {
            send(&mut out, &Response::failed(format!("bad request: not one line of at most {MAX_REQUEST_BYTES} bytes"), false));
            return;
        }
        // An answer is one line, sent once the settings and the lock are back as they were; an
        // Arrow stream is written as it is read, between its first line and that last one.
        let resp = match serde_json::from_str::<Request>(&line) {
            Ok(req) if req.arrow => match with_query_settings(&conn, requests, memory, || stream_answer(&conn, guard, connector, &req, &mut out)) {
                Some(last) => last,
                None => return,
            },
            Ok(req) => Response::answer(with_query_settings(&conn, requests, memory, || answer(&conn, guard, connector, &req))),
            Err(e) => Response::failed(format!("bad request: {e}"), false),
        };
        reassert_lock(connector);
        if !send(&mut out, &resp) {
            return;
        }
    }
}

/// Takes the lock on the database file again after a request (see [`super::lock`]).
fn reassert_lock(connector: &Connector) {
    if let Some((path, keeper)) = &connector.file {
        if let Err(e) = keeper.reassert() {
            tracing::error!("the lock on {} was lost and cannot be taken again: {e}; another process may hold the file", path.display());
            eprintln!("cachescope: ERROR: the lock on {} was lost and cannot be taken again ({e}); another process may be writing it", path.display());
        }
    }
}

/// Runs `f` with DuckDB's budget raised by the query cap and the rows' order kept (both
/// global settings of the ingester's database) while any request runs, then, after the last
/// one, gives the ingester its own back (also when `f` panics: [`RunningRequest`]'s drop).
fn with_query_settings<T>(conn: &Connection, requests: &Running, memory: MemoryBudget, f: impl FnOnce() -> T) -> T {
    let _running = RunningRequest::start(conn, requests, memory);
    f()
}

/// One request counted in [`Running`] while it lives.
struct RunningRequest<'a> {
    conn: &'a Connection,
    requests: &'a Running,
    memory: MemoryBudget,
}

impl<'a> RunningRequest<'a> {
    fn start(conn: &'a Connection, requests: &'a Running, memory: MemoryBudget) -> RunningRequest<'a> {
        let mut running = requests.0.lock().unwrap_or_else(|p| p.into_inner());
        if running.requests == 0 {
            if let Err(e) = set_memory_limit(conn, memory.ingest_mb + memory.query_mb) {
                tracing::warn!("cannot raise DuckDB's memory limit for a query: {e}");
            }
            running.ingester_order = match conn.query_row(crate::queries::QUERY_ORDER_SETTING, [], |r| r.get("preserve_insertion_order")) {
                Ok(kept) => Some(kept),
                Err(e) => {
                    tracing::warn!("cannot read the ingester's preserve_insertion_order: {e}");
                    None
                }
            };
            if let Err(e) = conn.execute_batch(crate::queries::QUERY_ORDER_KEEP) {
                tracing::warn!("cannot keep the order of a query's rows: {e}");
            }
        }
        running.requests += 1;
        RunningRequest { conn, requests, memory }
    }
}

impl Drop for RunningRequest<'_> {
    fn drop(&mut self) {
        let mut running = self.requests.0.lock().unwrap_or_else(|p| p.into_inner());
        running.requests -= 1;
        if running.requests > 0 {
            return;
        }
        if let Some(order) = running.ingester_order.take() {
            // A boolean of our own, not user input: SET takes no parameters.
            if let Err(e) = self.conn.execute_batch(&format!("SET preserve_insertion_order = {order}")) {
                tracing::error!("cannot give the ingester its preserve_insertion_order back after a query: {e}");
            }
        }
        if let Err(e) = set_memory_limit(self.conn, self.memory.ingest_mb) {
            tracing::error!("cannot give DuckDB's memory limit back to {} MB after a query: {e}", self.memory.ingest_mb);
        }
    }
}

/// Sets DuckDB's memory limit (a number of our own, not user input: SET takes no parameters).
fn set_memory_limit(conn: &Connection, mb: u64) -> duckdb::Result<()> {
    conn.execute_batch(&format!("SET memory_limit = '{mb}MB'"))
}

/// Judges a request for an Arrow stream and answers it in one READ ONLY transaction that is
/// rolled back: a line (the query started), the stream, and the last line to send (it ended
/// well, or why not; or why nothing was streamed). `None`: the connection is unusable.
fn stream_answer(conn: &Connection, guard: &Guard, connector: &Connector, req: &Request, out: &mut UnixStream) -> Option<Response> {
    let sql = match judge(guard, connector, req) {
        Ok(sql) => sql,
        Err(e) => return Some(Response::answer(Err(e))),
    };
    let ended = match conn.execute_batch("BEGIN TRANSACTION READ ONLY") {
        Ok(()) => {
            let ended = stream_rows(conn, sql, &req.params, out);
            let _ = conn.execute_batch("ROLLBACK");
            ended
        }
        Err(e) => Some(Err(QueryError::Duck(e))),
    };
    ended.map(|r| Response::answer(r.map(|()| QueryResult::default())))
}

/// [`stream_answer`] inside its transaction: how the query ended (`None`: the connection is
/// unusable).
fn stream_rows(conn: &Connection, sql: &str, params: &[String], out: &mut UnixStream) -> Option<Result<(), QueryError>> {
    let mut stmt = match conn.prepare(sql) {
        Ok(s) => s,
        Err(e) => return Some(Err(QueryError::Duck(e))),
    };
    let batches = match stmt.stream_arrow(duckdb::params_from_iter(params.iter())) {
        Ok(b) => b,
        Err(e) => return Some(Err(QueryError::Duck(e))),
    };
    let schema = batches.get_schema();
    if !send(out, &Response { arrow: true, ..Response::answer(Ok(QueryResult::default())) }) {
        return None;
    }
    let mut buffered = std::io::BufWriter::new(&mut *out);
    let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut buffered, &schema).ok()?;
    let mut ended = Ok(());
    for batch in batches {
        match batch {
            Ok(b) => writer.write(&b).ok()?,
            // The stream ends here; the last line says why.
            Err(e) => {
                ended = Err(QueryError::Duck(e));
                break;
            }
        }
    }
    writer.finish().ok()?;
    drop(writer);
    buffered.flush().ok()?;
    Some(ended)
}

/// The text of a query request, once judged: never one that names the database's files, nor
/// one the guard refuses.
fn judge<'r>(guard: &Guard, connector: &Connector, req: &'r Request) -> Result<&'r str, QueryError> {
    let sql = req.sql.as_deref().ok_or_else(|| QueryError::ReadOnly("bad request: no `sql`".into()))?;
    if let Some((path, _)) = &connector.file {
        refuse_database_files(sql, path)?;
    }
    guard.check(sql)?;
    Ok(sql)
}

/// Judges and runs one request.
fn answer(conn: &Connection, guard: &Guard, connector: &Connector, req: &Request) -> Result<QueryResult, QueryError> {
    if req.views {
        return Ok(QueryResult::default());
    }
    if !req.materialize.is_empty() {
        for name in &req.materialize {
            // Only the crate's own view names, matched against a fixed list: never SQL text.
            let Some(view) = MATERIALIZABLE.iter().find(|v| **v == name.as_str()) else {
                return Err(QueryError::ReadOnly(format!("`{name}` is not a view that can be materialized ({})", MATERIALIZABLE.join(", "))));
            };
            materialize_on(conn, view, &req.between.clone().unwrap_or_else(|| bounds(None)))?;
        }
        return Ok(QueryResult::default());
    }
    run_on(conn, judge(guard, connector, req)?, &req.params)
}

/// Refuses a text that names the database's own files (see [`super::lock`]).
pub(super) fn refuse_database_files(sql: &str, db: &Path) -> Result<(), QueryError> {
    if names_database_files(sql, db) {
        let name = db.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        return Err(QueryError::ReadOnly(format!(
            "the text names the events database's own files ({name}...); query its tables and views instead (`cachescope sql --schema` lists them)"
        )));
    }
    Ok(())
}

/// The range of a materialization as the parameters of its macro (`None`: all of it).
pub(super) fn bounds(between: Option<(NaiveDateTime, NaiveDateTime)>) -> [String; 2] {
    match between {
        Some((lo, hi)) => [lo.to_string(), hi.to_string()],
        None => ["-infinity".into(), "infinity".into()],
    }
}

/// Computes view `name` over `between` (its macro `<name>_between(lo, hi)`, parameters
/// bound, never SQL) into the temporary table `<name>_m`, and shadows the view with a
/// temporary view of it (no second copy). `name` is one of the crate's own view names.
pub(super) fn materialize_on(conn: &Connection, name: &str, between: &[String; 2]) -> Result<(), QueryError> {
    let started = std::time::Instant::now();
    conn.execute(&format!("CREATE OR REPLACE TEMP TABLE {name}_m AS SELECT * FROM {name}_between(CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP))"), duckdb::params![between[0], between[1]])?;
    conn.execute_batch(&format!("CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM temp.{name}_m"))?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "materialized {name} over [{}, {})", between[0], between[1]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::protocol::SocketClient;
    use super::*;

    /// A database in `dir` whose connection ran `setup`, served on its socket, with a client.
    fn serve(dir: &Path, setup: &str) -> (Connection, QueryServer, SocketClient) {
        let db = dir.join("ev.duckdb");
        let raw = Arc::new(RawDatabase::open(db.to_str().unwrap(), &[]).unwrap());
        let conn = raw.connect().unwrap();
        conn.execute_batch(setup).unwrap();
        let budget = MemoryBudget { ingest_mb: 64, query_mb: 300 };
        let server = QueryServer::start(&db, Connector::new(raw, vec![]), budget).unwrap();
        let client = SocketClient::connect(&socket_path(&db)).unwrap();
        (conn, server, client)
    }

    /// A server on `<dir>/ev.duckdb` (a table `t` of one row) whose every session is held by
    /// a client that has asked something.
    fn every_session_held(dir: &Path) -> (Connection, QueryServer, Vec<SocketClient>) {
        let (conn, server, first) = serve(dir, "CREATE TABLE t AS SELECT 1 AS x");
        let mut holders = vec![first];
        while holders.len() < MAX_SESSIONS {
            holders.push(SocketClient::connect(&socket_path(&dir.join("ev.duckdb"))).unwrap());
        }
        for c in &holders {
            c.query("SELECT x FROM t", &[]).unwrap();
        }
        (conn, server, holders)
    }

    /// An older tailer on `<dir>/old.sock`: one session, every request answered with
    /// `answer`; it returns the requests and whether a second client came meanwhile.
    fn old_tailer(dir: &Path, answer: &'static [u8]) -> (PathBuf, std::thread::JoinHandle<(Vec<String>, bool)>) {
        let path = dir.join("old.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let old = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut out = s.try_clone().unwrap();
            let mut asked = Vec::new();
            for line in BufReader::new(s).lines() {
                asked.push(line.unwrap());
                out.write_all(answer).unwrap();
            }
            listener.set_nonblocking(true).unwrap();
            (asked, listener.accept().is_ok())
        });
        (path, old)
    }

    #[test]
    fn a_session_gives_the_ingest_budget_back_after_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ev.duckdb");
        let (conn, server, client) = serve(dir.path(), "CREATE TABLE t (x INT); SET memory_limit = '64MB'");
        let limit = || -> String { conn.query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0)).unwrap() };
        let during = client.query("SELECT current_setting('memory_limit') AS m", &[]).unwrap();
        let during = during.rows[0][0].as_str().unwrap().to_string();
        assert!(during.starts_with("347") || during.starts_with("364"), "{during}");
        let after = limit();
        assert!(after.starts_with("61") || after.starts_with("64"), "{after}");
        // Refused, failing and materializing requests give it back too.
        assert!(matches!(client.query("SET memory_limit = '10GB'", &[]), Err(QueryError::ReadOnly(_))));
        assert!(matches!(client.query("SELECT * FROM no_such_table", &[]), Err(QueryError::Sql(_))));
        assert!(matches!(client.materialize(&["t; DROP TABLE t"], bounds(None)), Err(QueryError::ReadOnly(_))));
        assert!(limit().starts_with("61") || limit().starts_with("64"), "{}", limit());
        drop(client);
        // A request longer than the limit is refused, not read into memory.
        let mut s = UnixStream::connect(socket_path(&db)).unwrap();
        let _ = s.write_all(&vec![b'x'; (MAX_REQUEST_BYTES + 10) as usize]);
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        assert!(line.contains("bad request"), "{line}");
        server.stop();
    }

    #[test]
    fn rows_stream_as_arrow_through_the_socket_and_the_session_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (_conn, server, client) = serve(dir.path(), "CREATE TABLE t AS SELECT range AS x, 'k' || range AS k FROM range(10000)");
        let sum = |sql: &str, params: &[String]| -> Result<(usize, i64), QueryError> {
            let (mut rows, mut total) = (0, 0);
            client.stream_arrow(sql, params, &mut |b| {
                rows += b.num_rows();
                let x = b.column_by_name("x").unwrap().as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
                total += x.values().iter().sum::<i64>();
                Ok(())
            })?;
            Ok((rows, total))
        };
        // Several batches (DuckDB's are 2,048 rows), bound parameters, every row once.
        assert_eq!(sum("SELECT x, k FROM t WHERE x >= CAST(? AS BIGINT) ORDER BY x", &["10".into()]).unwrap(), (9990, (10..10000).sum()));
        assert_eq!(sum("SELECT x FROM t WHERE x < 0", &[]).unwrap(), (0, 0), "no rows: an empty stream");
        // Refused before anything runs; a failure while rows stream; a reader that stops
        // early: each an error, and the session answers the next request.
        assert!(matches!(sum("DELETE FROM t RETURNING x", &[]), Err(QueryError::ReadOnly(_))));
        assert!(sum("SELECT CASE WHEN x < 5000 THEN x ELSE error('boom') END AS x FROM t", &[]).is_err());
        let mut seen = 0;
        let stopped = client.stream_arrow("SELECT x FROM t", &[], &mut |b| {
            seen += b.num_rows();
            Err(QueryError::Decode("enough".into()))
        });
        assert!(matches!(stopped, Err(QueryError::Decode(m)) if m == "enough"));
        assert!(seen > 0);
        assert_eq!(client.query("SELECT count(*) AS n FROM t", &[]).unwrap().rows[0][0], serde_json::json!(10000));
        assert_eq!(sum("SELECT x FROM t", &[]).unwrap(), (10000, (0..10000).sum()));
        server.stop();
    }

    #[test]
    fn rows_keep_their_order_whatever_the_ingester_set() {
        // The ingester lets DuckDB drop insertion order (a global setting) and queries run
        // on several cores: DuckDB then streamed an ORDER BY's rows out of order (what-if's
        // stream over a day of 10M lines through a tailer: 5 of 506k rows). JSON rows came
        // as two ordered runs through a real tailer: tests/whatif.rs.
        let dir = tempfile::tempdir().unwrap();
        let setup = "SET preserve_insertion_order = false; SET threads = 4; CREATE TABLE t AS SELECT (range * 7919) % 1000000 AS x FROM range(1000000)";
        let (conn, server, client) = serve(dir.path(), setup);
        let (mut last, mut rows, mut disordered) = (-1i64, 0usize, 0usize);
        client
            .stream_arrow("SELECT x FROM t ORDER BY x", &[], &mut |b| {
                let x = b.column_by_name("x").unwrap().as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
                for v in x.values().iter() {
                    disordered += usize::from(*v < last);
                    last = *v;
                }
                rows += b.num_rows();
                Ok(())
            })
            .unwrap();
        assert_eq!((rows, disordered), (1_000_000, 0), "streamed");
        let kept: String = conn.query_row("SELECT current_setting('preserve_insertion_order')::VARCHAR", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, "false", "the ingester's setting is given back after each request");
        server.stop();
    }

    #[test]
    fn a_tailer_older_than_streams_is_not_asked_for_one() {
        // An old tailer answers any request with JSON rows (here: every request, with no
        // protocol in its answer); asked for a stream, it would have built every row as JSON.
        let dir = tempfile::tempdir().unwrap();
        let (path, old) = old_tailer(dir.path(), b"{\"ok\":true,\"error\":null,\"result\":{\"columns\":[],\"rows\":[]}}\n");
        let client = SocketClient::connect(&path).unwrap();
        let e = client.stream_arrow("SELECT 1", &[], &mut |_| Ok(())).unwrap_err();
        assert!(e.to_string().contains("older than this cachescope"), "{e}");
        drop(client);
        let (asked, _) = old.join().unwrap();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(!asked[0].contains(r#""arrow":true"#), "{asked:?}");
    }

    #[test]
    fn sessions_are_served_at_once_and_the_settings_come_back_after_the_last_request() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, server, first) = serve(dir.path(), "SET memory_limit = '64MB'; SET preserve_insertion_order = false");
        let limit = || -> String { conn.query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0)).unwrap() };
        let order = || -> Option<bool> { conn.query_row("SELECT current_setting('preserve_insertion_order')::BOOLEAN", [], |r| r.get(0)).unwrap() };
        let raised = |m: &str| m.starts_with("347") || m.starts_with("364");
        let lowered = |m: &str| m.starts_with("61") || m.starts_with("64");
        // The first session asks something and stays; a second one is answered meanwhile (a
        // server of one client at a time would answer it once the first had gone).
        first.query("SELECT 1 AS one", &[]).unwrap();
        let second = first.another().unwrap().expect("this server serves several sessions");
        let (tx, rx) = std::sync::mpsc::channel();
        let asked = std::thread::spawn(move || {
            let r = second.query("SELECT 2 AS two", &[]).map(|r| r.rows[0][0].clone());
            tx.send(r).unwrap();
            second
        });
        let got = rx.recv_timeout(Duration::from_secs(3)).expect("the second session was not answered while the first was open");
        assert_eq!(got.unwrap(), serde_json::json!(2));
        let second = asked.join().unwrap();
        // Requests that overlap, each a stream of 40 MB (more than the socket holds) held
        // unread: the first session's begins first and ends first, so the last one ends on
        // the connection of a new session, none of whose requests began the overlap. The
        // settings stay raised until the last ends, then the ingester's own come back.
        let held = |client: SocketClient| {
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let streaming = std::thread::spawn(move || {
                let mut rows = 0;
                client
                    .stream_arrow("SELECT range AS x FROM range(5000000)", &[], &mut |b| {
                        if rows == 0 {
                            started_tx.send(()).unwrap();
                            go_rx.recv().unwrap();
                        }
                        rows += b.num_rows();
                        Ok(())
                    })
                    .unwrap();
                rows
            });
            started_rx.recv_timeout(Duration::from_secs(10)).expect("the stream began");
            (go_tx, streaming)
        };
        let (go_first, first_stream) = held(first);
        drop(second);
        let (go_second, second_stream) = held(SocketClient::connect(&socket_path(&dir.path().join("ev.duckdb"))).unwrap());
        assert!(raised(&limit()) && order() == Some(true), "{} {:?}", limit(), order());
        go_first.send(()).unwrap();
        assert_eq!(first_stream.join().unwrap(), 5_000_000);
        assert!(raised(&limit()), "a request ended while another ran, and gave the budget back: {}", limit());
        assert_eq!(order(), Some(true), "a request ended while another ran, and gave the row order back");
        go_second.send(()).unwrap();
        assert_eq!(second_stream.join().unwrap(), 5_000_000);
        assert!(lowered(&limit()), "{}", limit());
        assert_eq!(order(), Some(false), "the ingester's row order, given back on another session's connection");
        server.stop();
    }

    #[test]
    fn a_client_beyond_the_sessions_is_told_they_are_taken_and_none_waits_for_ever() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ev.duckdb");
        let (_conn, server, mut holders) = every_session_held(dir.path());
        // A holder's second session: none, at once (a report then sizes on its own session).
        let started = std::time::Instant::now();
        assert!(holders[0].another().unwrap().is_none());
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // A new reader is told so, and asks again until its patience runs out...
        let e = SocketClient::connect_waiting(&socket_path(&db), Duration::from_millis(300)).map(|_| ()).unwrap_err();
        assert!(matches!(e, QueryError::Busy { sessions: MAX_SESSIONS, .. }), "{e}");
        assert!(e.to_string().contains("every session is taken"), "{e}");
        // ...or gets the session a holder leaves; the holders' sessions go on meanwhile.
        let waiting = std::thread::spawn({
            let path = socket_path(&db);
            move || SocketClient::connect_waiting(&path, Duration::from_secs(10)).map(|c| c.query("SELECT x + 1 AS y FROM t", &[]).unwrap().rows)
        });
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(holders[1].query("SELECT x FROM t", &[]).unwrap().rows[0][0], serde_json::json!(1));
        drop(holders.pop());
        assert_eq!(waiting.join().unwrap().unwrap()[0][0], serde_json::json!(2));
        server.stop();
    }

    /// Threads of this process with `name`.
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    #[test]
    fn a_flood_of_silent_clients_beyond_the_sessions_gets_no_thread_each_and_the_server_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ev.duckdb");
        let (_conn, server, holders) = every_session_held(dir.path());
        // Connections that never send a request, four times the refusals answered at once.
        let flood: Vec<UnixStream> = (0..4 * MAX_REFUSING).map(|_| UnixStream::connect(socket_path(&db)).unwrap()).collect();
        let mut most = 0;
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(600) {
            most = most.max(threads_named("query-busy"));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(most >= MAX_REFUSING / 2, "the flood was not being answered: {most} threads");
        // (Other tests of this process may refuse a client or two meanwhile.)
        assert!(most <= MAX_REFUSING + 8, "{most} threads answering refused clients");
        // Once they gave up on the flood, a client beyond the sessions is answered again.
        std::thread::sleep(REFUSE_WAIT + Duration::from_millis(500));
        let e = SocketClient::connect_waiting(&socket_path(&db), Duration::from_millis(100)).map(|_| ()).unwrap_err();
        assert!(matches!(e, QueryError::Busy { .. }), "{e}");
        drop(flood);
        assert_eq!(holders[0].query("SELECT x FROM t", &[]).unwrap().rows[0][0], serde_json::json!(1));
        server.stop();
    }

    #[test]
    fn an_older_tailer_serves_a_reader_with_one_session() {
        // A tailer of protocol 2 answers a second client only once the first has gone; one
        // older than `views` refuses the question (no `sql`) without a protocol, read as 0.
        // Neither is asked for a second session (the sizing then follows the report).
        let answers: [(&'static [u8], u32); 2] = [
            (b"{\"ok\":true,\"error\":null,\"result\":{\"columns\":[],\"rows\":[]},\"protocol\":2}\n", 2),
            (b"{\"ok\":false,\"error\":\"bad request: no `sql`\",\"refused\":true,\"result\":null}\n", 0),
        ];
        for (answer, protocol) in answers {
            let dir = tempfile::tempdir().unwrap();
            let (path, old) = old_tailer(dir.path(), answer);
            let client = SocketClient::connect_waiting(&path, Duration::from_secs(1)).unwrap();
            assert_eq!(client.server_protocol().unwrap(), protocol);
            assert!(client.another().unwrap().is_none());
            drop(client);
            let (asked, second) = old.join().unwrap();
            assert_eq!(asked.len(), 1, "{asked:?}");
            assert!(!second, "a second session was opened (protocol {protocol})");
        }
    }

    #[test]
    fn the_server_names_the_views_it_serves() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ev.duckdb");
        let raw = Arc::new(RawDatabase::open(db.to_str().unwrap(), &[]).unwrap());
        let budget = MemoryBudget { ingest_mb: 64, query_mb: 300 };
        let server = QueryServer::start(&db, Connector::new(raw.clone(), vec![]), budget).unwrap();
        let client = SocketClient::connect(&socket_path(&db)).unwrap();
        // This binary's fingerprint: a reader of the same build sees its own views.
        assert_eq!(client.views_fingerprint().unwrap().as_deref(), Some(crate::queries::views_fingerprint()));
        // An answer without it (a tailer older than the fingerprint) reads as None.
        let old: super::super::protocol::Response =
            serde_json::from_str(r#"{"ok":true,"error":null,"result":{"columns":[],"rows":[]}}"#).unwrap();
        assert_eq!((old.views, old.protocol), (None, 0));
        server.stop();
    }
}
