//! The tailer's socket protocol: one JSON request per line, one JSON answer per line, any
//! number of them on one connection (a session: what one request materializes, the next ones
//! read). [`SocketClient`] is the client side.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use serde::{Deserialize, Serialize};

use super::{QueryError, QueryResult};

/// A request: a query, or views of the crate's own to compute once for this connection.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Request {
    #[serde(default)]
    pub sql: Option<String>,
    #[serde(default)]
    pub params: Vec<String>,
    /// Names from [`super::server::MATERIALIZABLE`].
    #[serde(default)]
    pub materialize: Vec<String>,
    /// The range to materialize them over (timestamps, or `-infinity` / `infinity`): bound
    /// as parameters, never SQL. Absent: all of it.
    #[serde(default)]
    pub between: Option<[String; 2]>,
    /// Asks only for the answer's `views` (nothing runs).
    #[serde(default)]
    pub views: bool,
    /// Asks for `sql`'s rows as an Arrow IPC stream instead of JSON rows: after the answer's
    /// line (which says whether the query started), the stream, then a second answer line
    /// saying whether it ended well. What-if reads every request of a period this way.
    #[serde(default)]
    pub arrow: bool,
}

/// The protocol's version, in every answer: 2 added Arrow streams (a request's `arrow`); 3
/// serves several sessions at once (an older tailer serves one client at a time, so a second
/// session of the same process would wait for the first to end). An answer without it comes
/// from a tailer older than versions.
pub const PROTOCOL: u32 = 3;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Response {
    pub ok: bool,
    pub error: Option<String>,
    /// The error is a refusal ([`QueryError::ReadOnly`]), not a failure of the SQL.
    #[serde(default)]
    pub refused: bool,
    pub result: Option<QueryResult>,
    /// The server's [`crate::queries::views_fingerprint`]: which version's views it serves.
    #[serde(default)]
    pub views: Option<String>,
    /// An Arrow IPC stream follows this line (the answer to a request with `arrow`).
    #[serde(default)]
    pub arrow: bool,
    /// The server's [`PROTOCOL`] (0: older than versions).
    #[serde(default)]
    pub protocol: u32,
    /// Every session is taken: the server answered this connection's first request with
    /// this and closed it (`sessions`: how many it serves at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<usize>,
}

impl Response {
    pub fn answer(r: Result<QueryResult, QueryError>) -> Response {
        match r {
            Ok(r) => Response { ok: true, error: None, refused: false, result: Some(r), views: Some(crate::queries::views_fingerprint().to_string()), arrow: false, protocol: PROTOCOL, busy: None },
            Err(QueryError::ReadOnly(m)) => Response::failed(m, true),
            Err(e) => Response::failed(e.to_string(), false),
        }
    }

    pub fn failed(error: String, refused: bool) -> Response {
        Response { ok: false, error: Some(error), refused, result: None, views: Some(crate::queries::views_fingerprint().to_string()), arrow: false, protocol: PROTOCOL, busy: None }
    }

    /// The answer to a connection the server has no session for.
    pub fn busy(sessions: usize) -> Response {
        Response { busy: Some(sessions), ..Response::failed(format!("every session is taken ({sessions} at once)"), false) }
    }
}

/// One connection to a tailer's socket.
pub struct SocketClient {
    path: PathBuf,
    stream: RefCell<BufReader<UnixStream>>,
    /// The server's views fingerprint, from its last answer.
    views: RefCell<Option<String>>,
    /// The server's [`PROTOCOL`], from its last answer.
    protocol: RefCell<Option<u32>>,
}

impl SocketClient {
    pub fn connect(path: &Path) -> Result<SocketClient, QueryError> {
        let s = UnixStream::connect(path).map_err(|e| QueryError::Socket {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        Ok(SocketClient {
            path: path.to_path_buf(),
            stream: RefCell::new(BufReader::new(s)),
            views: RefCell::new(None),
            protocol: RefCell::new(None),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The server's [`PROTOCOL`] (asked once, when no answer has said it yet). A tailer older
    /// than the question refuses it, and its answer says no protocol: 0.
    pub fn server_protocol(&self) -> Result<u32, QueryError> {
        if self.protocol.borrow().is_none() {
            match self.ask(&Request { views: true, ..Default::default() }) {
                Ok(_) | Err(QueryError::ReadOnly(_) | QueryError::Sql(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.protocol.borrow().unwrap_or(0))
    }

    /// A second session on the same tailer, for the crate's own queries on another thread;
    /// `None` when the tailer serves one client at a time (older than protocol 3), where a
    /// second session would wait for this one to end, and when every session is taken (this
    /// one then does the work after its own: waiting for a session while holding one could
    /// wait for ever, every holder waiting too).
    pub fn another(&self) -> Result<Option<SocketClient>, QueryError> {
        if self.server_protocol()? < 3 {
            return Ok(None);
        }
        match SocketClient::connect_waiting(&self.path, std::time::Duration::ZERO) {
            Ok(other) => Ok(Some(other)),
            Err(QueryError::Busy { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Connects and asks for the server's protocol, again while every session is taken, for
    /// up to `patience` (sessions end when their client is done, or idle for 5 s).
    pub fn connect_waiting(path: &Path, patience: std::time::Duration) -> Result<SocketClient, QueryError> {
        let started = std::time::Instant::now();
        loop {
            let client = SocketClient::connect(path)?;
            match client.server_protocol() {
                Err(QueryError::Busy { .. }) if started.elapsed() < patience => std::thread::sleep(std::time::Duration::from_millis(50)),
                Err(e) => return Err(e),
                Ok(_) => return Ok(client),
            }
        }
    }

    pub fn query(&self, sql: &str, params: &[String]) -> Result<QueryResult, QueryError> {
        let started = std::time::Instant::now();
        let result = self.ask(&Request {
            sql: Some(sql.to_string()),
            params: params.to_vec(),
            ..Default::default()
        });
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, rows = result.as_ref().map_or(0, |r| r.rows.len()), "query through the tailer {}", super::first_words(sql));
        result
    }

    pub fn materialize(&self, views: &[&str], between: [String; 2]) -> Result<(), QueryError> {
        self.ask(&Request {
            materialize: views.iter().map(|v| v.to_string()).collect(),
            between: Some(between),
            ..Default::default()
        })
        .map(|_| ())
    }

    /// Runs `sql` and hands its rows to `each`, batch by batch, as they come (read from an
    /// Arrow IPC stream: never all in memory, never as JSON). When `each` fails, the rest of
    /// the stream is read and dropped, so the session stays usable.
    pub fn stream_arrow(&self, sql: &str, params: &[String], each: &mut dyn FnMut(&RecordBatch) -> Result<(), QueryError>) -> Result<(), QueryError> {
        let serr = |source| self.socket_error(source);
        // A tailer older than streams would answer with every row as JSON: asked first.
        if self.server_protocol()? < 2 {
            return Err(serr("the tailer is older than this cachescope and cannot stream rows: restart `cachescope tail` with this version".into()));
        }
        let req = Request { sql: Some(sql.to_string()), params: params.to_vec(), arrow: true, ..Default::default() };
        self.send(&req)?;
        if !self.answer()?.1 {
            return Err(serr("the tailer answered with rows, not a stream".into()));
        }
        let mut stream = self.stream.borrow_mut();
        let mut failed = None;
        {
            let reader = StreamReader::try_new(&mut *stream, None).map_err(|e| serr(format!("bad Arrow stream: {e}").into()))?;
            for batch in reader {
                let batch = batch.map_err(|e| serr(format!("bad Arrow stream: {e}").into()))?;
                if failed.is_none() {
                    failed = each(&batch).err();
                }
            }
        }
        drop(stream);
        // The second answer: whether the query ended well on the tailer's side.
        self.answer()?;
        failed.map_or(Ok(()), Err)
    }

    /// The tailer's views fingerprint (`None`: a tailer too old to say).
    pub fn views_fingerprint(&self) -> Result<Option<String>, QueryError> {
        self.ask(&Request { views: true, ..Default::default() })?;
        Ok(self.views.borrow().clone())
    }

    /// A failure of the socket itself (not of a query).
    fn socket_error(&self, source: crate::BoxError) -> QueryError {
        QueryError::Socket { path: self.path.clone(), source }
    }

    fn send(&self, req: &Request) -> Result<(), QueryError> {
        let serr = |source| self.socket_error(source);
        let mut line = serde_json::to_string(req).map_err(|e| serr(e.into()))?;
        line.push('\n');
        self.stream.borrow_mut().get_mut().write_all(line.as_bytes()).map_err(|e| serr(e.into()))
    }

    fn ask(&self, req: &Request) -> Result<QueryResult, QueryError> {
        self.send(req)?;
        Ok(self.answer()?.0)
    }

    /// Reads one answer line: its result, and whether an Arrow stream follows it.
    fn answer(&self) -> Result<(QueryResult, bool), QueryError> {
        let serr = |source| self.socket_error(source);
        let mut line = String::new();
        let mut stream = self.stream.borrow_mut();
        stream.read_line(&mut line).map_err(|e| serr(e.into()))?;
        if line.is_empty() {
            return Err(serr("the tailer closed the connection (it stopped, or the session was idle too long)".into()));
        }
        let resp: Response = serde_json::from_str(&line).map_err(|e| serr(format!("bad answer: {e}").into()))?;
        self.views.replace(resp.views.clone());
        self.protocol.replace(Some(resp.protocol));
        if let Some(sessions) = resp.busy {
            return Err(QueryError::Busy { path: self.path.clone(), sessions });
        }
        match (resp.ok, resp.result, resp.error) {
            (true, Some(r), _) => Ok((r, resp.arrow)),
            (_, _, Some(e)) if resp.refused => Err(QueryError::ReadOnly(e)),
            (_, _, Some(e)) => Err(QueryError::Sql(e)),
            _ => Err(serr("empty answer".into())),
        }
    }
}
