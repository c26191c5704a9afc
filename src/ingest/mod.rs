//! Log ingestion into DuckDB, exactly once. [`Ingester`] reads each file from its checkpoint,
//! parses lines ([`formats`]), and commits the rows *and* the new checkpoint in one DuckDB
//! transaction, so a crash at any moment loses nothing and duplicates nothing. Files are
//! identified by the fingerprint of their first line ([`source`]), which is the same for a
//! live file, its renamed copy and its compressed archive: a line read from one is never
//! counted again from another. A file rewritten under the same identity (truncated and
//! grown back) is detected by the hash of the bytes before the checkpoint.

mod batch;
mod checkpoint;
pub mod classify;
mod create;
pub mod derived;
mod episodes;
mod minutes;
pub mod formats;
mod json_format;
mod timestamps;
pub mod zone;
mod setup;
mod pipeline;
mod sink;
pub mod source;
mod summary;
mod transaction;

pub use sink::Steps;
pub use summary::{FileReport, FileStatus, IngestSummary, Progress};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::query::guard::RawDatabase;
use crate::query::lock::LockKeeper;
use crate::query::Connector;
use crate::queries;
use batch::Batch;
use checkpoint::FileState;
use batch::Names;
use pipeline::Pipeline;
use sink::{Chunk, Schemas, Sink};
use formats::{Format, Formats, Record};
use source::{Item, LineReader};

/// Lines per transaction (about ten seconds of work). Memory does not grow with it: rows
/// move into the open transaction in chunks, DuckDB writes full row groups to the file as
/// they fill and spills the rest beyond its memory limit. Fewer, larger transactions leave
/// fewer part-filled row groups for DuckDB to rewrite: 10M lines took 10.9-13.7 s in
/// transactions of 1M lines, 9.2-10.4 s in 4M, 8.3-8.5 s in one.
pub const DEFAULT_BATCH_LINES: usize = 10_000_000;
/// Rows gathered before they move into the open transaction. Each move is a query DuckDB
/// plans anew (~0.5 ms), so fewer, larger moves are faster: 16k-row chunks cost 4-5% of a
/// catch-up ingest. Memory is bounded by [`CHUNK_BYTES`] whatever this is, but larger chunks
/// raise the peak (a 10M-line backlog: 141-153 MB against 134-136 MB with 16k rows), so a tailer,
/// whose budget is 150 MB, uses [`SMALL_CHUNK_ROWS`] ([`Ingester::set_small_chunks`]).
pub const CHUNK_ROWS: usize = 122_880;
/// Rows per chunk for a long-running process with a memory budget.
pub const SMALL_CHUNK_ROWS: usize = 16_384;
/// Bytes of text gathered before they move into the open transaction.
const CHUNK_BYTES: usize = 6 << 20;
/// Bytes of a quarantined line that are kept.
const ERROR_PREFIX: usize = 512;

/// Failure of ingestion.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("events database {db} is in use by {holder}; if that is `cachescope tail`, let it ingest, or stop it first")]
    Locked { db: PathBuf, holder: String },
    #[error("events database {db}: {source}")]
    Db {
        db: PathBuf,
        #[source]
        source: duckdb::Error,
    },
    #[error(transparent)]
    NotUtf8(#[from] crate::query::NotUtf8Path),
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot create {path}, the events database's directory: {source}; check the path given to --db (or CACHESCOPE_DB)")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("unknown format `{0}` (engine, python, json, or the name in a --format-file)")]
    UnknownFormat(String),
    #[error("--archives {pattern}: not a glob pattern: {source}")]
    Glob { pattern: String, source: glob::PatternError },
    #[error("injected commit failure (test)")]
    InjectedFailure,
    #[error("the append thread stopped unexpectedly")]
    AppendThread,
}

/// The default events database: `$CACHESCOPE_DB`, else `$XDG_DATA_HOME/cachescope/events.duckdb`,
/// else `~/.local/share/cachescope/events.duckdb`.
pub fn default_db() -> PathBuf {
    if let Some(p) = std::env::var_os("CACHESCOPE_DB") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("cachescope").join("events.duckdb")
}

/// Test hooks that stand in for a crash.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Stop (as if killed) after this many committed batches.
    pub stop_after_batches: Option<u64>,
    /// Fail the commit of the batch after this many committed ones (nothing of it lands).
    pub fail_commit_after: Option<u64>,
}

/// Reads log files into an events database.
pub struct Ingester {
    /// The open transaction: rows, names and checkpoints go in, commit or roll back together.
    /// Lent to the append thread while a file is read.
    sink: Option<Sink>,
    /// Ids of the symbols, feature sets and files of `hit_rows` (new ones committed with the rows).
    names: Names,
    /// The tables' Arrow schemas.
    schemas: Schemas,
    db: PathBuf,
    files: HashMap<String, FileState>,
    /// Checkpoints saved in the open transaction and not committed yet.
    staged: transaction::Staged,
    /// Whether a file's last checkpoint waits for the run's commit (inside [`Ingester::ingest`]).
    defer: bool,
    /// Per file, the record its next line may continue (multi-line formats), with that line's
    /// number: another line (read again after a failed commit) continues nothing.
    records: HashMap<String, (u64, Record)>,
    formats: Formats,
    forced: Option<Format>,
    batch_lines: usize,
    chunk_rows: usize,
    faults: Faults,
    batches: u64,
    committed: HashMap<(crate::vocab::Event, &'static str), u64>,
    /// Fingerprints by path, valid while (device, inode, size, mtime) stay the same: a tail
    /// pass re-checks every rotated sibling, and compressed archives never change.
    fingerprints: std::cell::RefCell<HashMap<PathBuf, ((u64, u64, u64, i128), String)>>,
    committed_lines: u64,
    committed_bytes: u64,
    committed_quarantined: u64,
    last_commit: Option<chrono::NaiveDateTime>,
    /// Globs of archives beyond the names rotators use (`--archives`).
    archive_globs: Vec<String>,
    /// The database the connections above were made from; declared last so that it is
    /// dropped after them.
    database: std::sync::Arc<RawDatabase>,
    /// The lock keeper of a process that serves queries (`query_connector`); last, so its
    /// descriptor closes only after DuckDB's.
    lock_keeper: Option<std::sync::Arc<LockKeeper>>,
}

/// DuckDB's memory budget while ingesting (MB): the buffer pool is capped so a tailer stays
/// small whatever the log size (BENCHMARKS.md); larger work spills to `<db>.tmp/`. 64 MB
/// until the classification was kept by the ingester: its steps inside a long catch-up
/// transaction ran out of 64 MB (a 2M-line log, #13), so 128 MB for now.
pub const INGEST_MEMORY_MB: u64 = 128;

/// What was committed since the last [`Ingester::take_committed`].
#[derive(Debug, Clone, Default)]
pub struct Committed {
    /// Events by (event, reason: [`crate::vocab::reason_word`]).
    pub events: HashMap<(crate::vocab::Event, &'static str), u64>,
    pub lines: u64,
    pub bytes: u64,
    pub quarantined: u64,
    pub last_commit: Option<chrono::NaiveDateTime>,
}

impl Ingester {
    /// Opens (creating) the events database.
    pub fn open(db: &Path, formats: Formats) -> Result<Ingester, IngestError> {
        Ingester::open_with(db, formats, &mut |_, _| {})
    }

    /// [`Ingester::open`], reporting the progress of an upgrade (days done, days in all) when
    /// the database's derived tables must first be built from its events.
    pub fn open_with(db: &Path, formats: Formats, upgrade: derived::RebuildProgress) -> Result<Ingester, IngestError> {
        Ingester::open_inner(db, formats, false, upgrade)
    }

    /// Opens the events database and rebuilds every derived table from `events`, once
    /// whether they were up to date or not (`cachescope reclassify`; opening a stale
    /// database and then rebuilding it built them twice).
    pub fn open_rebuilt(db: &Path, formats: Formats, progress: derived::RebuildProgress) -> Result<Ingester, IngestError> {
        Ingester::open_inner(db, formats, true, progress)
    }

    fn open_inner(db: &Path, formats: Formats, always: bool, upgrade: derived::RebuildProgress) -> Result<Ingester, IngestError> {
        let (database, conn) = setup::open_database(db)?;
        let what = if always { Some(derived::Rebuild::All) } else { derived::Rebuild::of(&derived::stale(&conn, db)?) };
        match what {
            // A database written before the derived tables (or by an older definition of
            // them, or with rows committed by an ingester that did not keep them): built
            // from its events once, before anything is added (which records that they hold
            // every event).
            Some(what) => derived::rebuild(&conn, db, what, upgrade)?,
            // Up to date: recorded as such, for a database written before the record.
            None => derived::record_events(&conn).map_err(db_error(db))?,
        }
        let files = checkpoint::load(&conn, db)?;
        let names = setup::load_names(&conn, db)?;
        Ok(Ingester {
            sink: Some(Sink::new(conn, db)),
            names,
            schemas: Schemas::default(),
            db: db.to_path_buf(),
            files,
            records: HashMap::new(),
            staged: transaction::Staged::default(),
            defer: false,
            formats,
            forced: None,
            batch_lines: DEFAULT_BATCH_LINES,
            chunk_rows: CHUNK_ROWS,
            faults: Faults::default(),
            batches: 0,
            committed: HashMap::new(),
            fingerprints: Default::default(),
            committed_lines: 0,
            committed_bytes: 0,
            committed_quarantined: 0,
            last_commit: None,
            archive_globs: Vec::new(),
            database,
            lock_keeper: None,
        })
    }

    /// Rebuilds every derived table from `events`, a day per transaction, reporting (days
    /// done, days in all).
    pub fn rebuild_derived(&mut self, progress: derived::RebuildProgress) -> Result<(), IngestError> {
        let sink = self.sink.as_ref().expect("the sink is home between files");
        derived::rebuild(sink.connection(), &self.db, derived::Rebuild::All, progress)
    }

    /// Reads every file with this format instead of detecting it.
    pub fn force_format(&mut self, name: &str) -> Result<(), IngestError> {
        self.forced = Some(
            self.formats
                .by_name(name)
                .cloned()
                .ok_or_else(|| IngestError::UnknownFormat(name.to_string()))?,
        );
        Ok(())
    }

    /// Also treats the files these globs match as archives (`--archives`): read when
    /// archives are, and always read to their end once their identity is known.
    pub fn set_archive_globs(&mut self, globs: Vec<String>) -> Result<(), IngestError> {
        for g in &globs {
            glob::Pattern::new(g).map_err(|source| IngestError::Glob { pattern: g.clone(), source })?;
        }
        self.archive_globs = globs;
        Ok(())
    }

    pub fn set_batch_lines(&mut self, n: usize) {
        self.batch_lines = n.max(1);
    }

    /// Moves rows into the transaction in chunks of [`SMALL_CHUNK_ROWS`]: a lower peak of
    /// memory for ~5% of throughput (for a tailer, which has a memory budget).
    pub fn set_small_chunks(&mut self) {
        self.chunk_rows = SMALL_CHUNK_ROWS;
    }

    /// Moves rows into the transaction in chunks of at most `rows` (tests: many chunks, so
    /// many steps, in one transaction).
    pub fn set_chunk_rows(&mut self, rows: usize) {
        self.chunk_rows = rows.max(1);
    }

    /// How often a transaction's classification and figures are brought up to date before
    /// its commit (tests make them small to exercise many steps in one transaction).
    pub fn set_steps(&mut self, steps: Steps) {
        self.sink.as_mut().expect("the sink is home between files").steps = steps;
    }

    /// Advances the kept episodes at most once per `every` instead of at every commit (a
    /// tailer: each advance finds the open clusters again, and in a long episode on a busy
    /// host they hold millions of rows; readers find what is open themselves).
    pub fn set_episodes_every(&mut self, every: std::time::Duration) {
        self.sink.as_mut().expect("the sink is home between files").episodes_every = Some(every);
    }

    pub fn set_faults(&mut self, f: Faults) {
        self.faults = f;
    }

    /// [`source::fingerprint`], remembered while the file's identity, size and mtime stay put.
    fn fingerprint(&self, path: &Path) -> std::io::Result<Option<String>> {
        Ok(self.fingerprint_and_file(path)?.map(|(fp, _)| fp))
    }

    /// The fingerprint and the (device, inode) of the file it belongs to.
    fn fingerprint_and_file(&self, path: &Path) -> std::io::Result<Option<(String, (u64, u64))>> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        let stamp = (m.dev(), m.ino(), m.len(), m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128);
        if let Some((s, fp)) = self.fingerprints.borrow().get(path) {
            if *s == stamp {
                return Ok(Some((fp.clone(), (s.0, s.1))));
            }
        }
        // Read from one open file, whose own stamp is remembered (the name may have moved on
        // to another file since the metadata above).
        let (fp, stamp) = source::fingerprint_of(path)?;
        if let Some(f) = &fp {
            self.fingerprints.borrow_mut().insert(path.to_path_buf(), (stamp, f.clone()));
        }
        Ok(fp.map(|f| (f, (stamp.0, stamp.1))))
    }

    /// What was committed since the last call (for exporters).
    pub fn take_committed(&mut self) -> Committed {
        Committed {
            events: std::mem::take(&mut self.committed),
            lines: std::mem::take(&mut self.committed_lines),
            bytes: std::mem::take(&mut self.committed_bytes),
            quarantined: std::mem::take(&mut self.committed_quarantined),
            last_commit: self.last_commit,
        }
    }

    /// Bytes of `paths` not yet committed (size minus checkpoint; unknown files count whole).
    pub fn lag_bytes(&self, paths: &[PathBuf]) -> u64 {
        paths
            .iter()
            .filter_map(|p| {
                let size = std::fs::metadata(p).ok()?.len();
                let done = self
                    .fingerprint(p)
                    .ok()
                    .flatten()
                    .and_then(|fp| self.files.get(&fp))
                    .map(|s| s.offset)
                    .unwrap_or(0);
                Some(size.saturating_sub(done))
            })
            .sum()
    }

    /// Connections to the database for serving queries while ingesting, with the events
    /// database as their default, as this one has. From then on DuckDB runs with a worker
    /// per CPU this process may use: DuckDB sizes its pool by the machine, not by `taskset`
    /// or cgroups, and oversubscribed threads cost a third of a query's speed.
    pub fn query_connector(&mut self) -> Result<Connector, IngestError> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let keeper = match &self.lock_keeper {
            Some(k) => k.clone(),
            None => {
                let k = std::sync::Arc::new(LockKeeper::new(&self.db, true).map_err(|source| IngestError::Io { path: self.db.clone(), source })?);
                self.lock_keeper = Some(k.clone());
                k
            }
        };
        let connector = Connector::new(self.database.clone(), vec![queries::INGEST_USE.to_string(), format!("SET threads = {threads};")])
            .with_file(&self.db, keeper);
        connector.connect().map_err(db_error(&self.db))?;
        Ok(connector)
    }

    /// Ingests each path (with `rotated`, its archives first, oldest first). Archives whose
    /// identity is already known are always read to their end: that is where a rotated live
    /// file's last lines went.
    pub fn ingest(
        &mut self,
        paths: &[PathBuf],
        rotated: bool,
        mut progress: impl FnMut(Progress),
    ) -> Result<IngestSummary, IngestError> {
        // Files' last checkpoints wait in the open transaction, committed every
        // `batch_lines` and at the end: many small files make few commits.
        let started = Instant::now();
        self.defer = true;
        let read = self.ingest_each(paths, rotated, &mut progress);
        self.defer = false;
        match read.and_then(|sum| self.flush().map(|()| sum)) {
            Ok(mut sum) => {
                sum.elapsed_s = started.elapsed().as_secs_f64();
                Ok(sum)
            }
            Err(e) => {
                self.roll_back();
                Err(e)
            }
        }
    }

    /// [`ingest`](Self::ingest)'s reading, file after file.
    fn ingest_each(&mut self, paths: &[PathBuf], rotated: bool, mut progress: impl FnMut(Progress)) -> Result<IngestSummary, IngestError> {
        let mut sum = IngestSummary::default();
        let globbed = source::glob_archives(&self.archive_globs).map_err(|source| IngestError::Glob {
            pattern: self.archive_globs.join(" "),
            source,
        })?;
        for s in globbed {
            if !paths.contains(&s) {
                self.ingest_archive(&s, rotated, &mut progress, &mut sum)?;
            }
        }
        for p in paths {
            let siblings = source::rotated_siblings(p).map_err(|source| IngestError::Io {
                path: p.clone(),
                source,
            })?;
            for s in siblings {
                self.ingest_archive(&s, rotated, &mut progress, &mut sum)?;
            }
            let r = self.ingest_file(p, &mut progress)?;
            sum.add(r);
            self.flush_if_due()?;
        }
        Ok(sum)
    }

    /// Reads an archive when archives are wanted (`rotated`) or when its identity is known
    /// (then it may hold a rotated live file's last lines).
    fn ingest_archive(&mut self, path: &Path, rotated: bool, progress: &mut impl FnMut(Progress), sum: &mut IngestSummary) -> Result<(), IngestError> {
        let known = self
            .fingerprint(path)
            .ok()
            .flatten()
            .is_some_and(|fp| self.files.contains_key(&fp));
        if rotated || known {
            sum.add(self.ingest_file(path, progress)?);
            self.flush_if_due()?;
        }
        Ok(())
    }

    /// Reads one file from its checkpoint to its last complete line.
    pub fn ingest_file(&mut self, path: &Path, progress: &mut impl FnMut(Progress)) -> Result<FileReport, IngestError> {
        self.ingest_file_as(path, path, progress)
    }

    /// Reads a file that is still open but may have been renamed or deleted since: `file`
    /// (a log's previous file, kept open by a tailer) is read through `/proc/self/fd`, under
    /// its current name if it has one, else `shown` marked as deleted.
    pub fn ingest_open_file(
        &mut self,
        file: &std::fs::File,
        shown: &Path,
        progress: &mut impl FnMut(Progress),
    ) -> Result<FileReport, IngestError> {
        use std::os::fd::AsRawFd;
        let via = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let name = match std::fs::read_link(&via) {
            Ok(p) if !p.to_string_lossy().ends_with(" (deleted)") => p,
            _ => PathBuf::from(format!("{} (deleted)", shown.display())),
        };
        self.ingest_file_as(&via, &name, progress)
    }

    /// Reads `path`, recording it as `shown`.
    fn ingest_file_as(&mut self, path: &Path, shown: &Path, progress: &mut impl FnMut(Progress)) -> Result<FileReport, IngestError> {
        let mut report = FileReport {
            path: shown.display().to_string(),
            ..Default::default()
        };
        let io = |source: std::io::Error| IngestError::Io {
            path: shown.to_path_buf(),
            source,
        };
        // Only a regular file can be read again from a byte offset (the checkpoint): a pipe
        // cannot seek, a device may never end, a directory holds the logs to name instead.
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            report.status = FileStatus::NotAFile;
            return Ok(report);
        }
        let (fp, fp_file) = match self.fingerprint_and_file(path) {
            Ok(Some(x)) => x,
            Ok(None) => {
                report.status = FileStatus::WaitingForFirstLine;
                return Ok(report);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.status = FileStatus::Vanished;
                return Ok(report);
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                report.status = FileStatus::Incomplete;
                return Ok(report);
            }
            Err(e) => return Err(io(e)),
        };
        report.file_id = Some(fp.clone());
        let mut state = self.files.get(&fp).cloned().unwrap_or_else(|| FileState {
            file_id: fp.clone(),
            ..Default::default()
        });
        let open_at = |offset: u64| match LineReader::at(path, offset) {
            Ok(x) => Ok(Some(x)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        };
        let opened = match open_at(state.offset) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                report.status = FileStatus::Incomplete;
                return Ok(report);
            }
            other => other.map_err(io)?,
        };
        let Some(source::Opened { mut reader, tail_hash: tail, file: (dev, inode) }) = opened else {
            report.status = FileStatus::Vanished;
            return Ok(report);
        };
        // A rotator put another file under this name between the fingerprint and the open:
        // reading it under the first file's identity would mix the two (whole files counted
        // twice). The next pass sees both files as they are.
        if (dev, inode) != fp_file {
            report.status = FileStatus::Replaced;
            return Ok(report);
        }
        let mut status = FileStatus::Read;
        if state.offset > 0 && tail.as_deref() != Some(state.tail_hash.as_str()) {
            // Same first line, different content before the checkpoint: rewritten.
            status = FileStatus::Rewritten;
            state.offset = 0;
            state.line_no = 0;
            match open_at(0).map_err(io)? {
                Some(x) if x.file == fp_file => reader = x.reader,
                Some(_) => {
                    report.status = FileStatus::Replaced;
                    return Ok(report);
                }
                None => {
                    report.status = FileStatus::Vanished;
                    return Ok(report);
                }
            }
        }
        let format = match (&self.forced, &state.format) {
            (Some(f), _) => f.clone(),
            (None, Some(name)) => match self.formats.by_name(name) {
                Some(f) => f.clone(),
                None => return Err(IngestError::UnknownFormat(name.clone())),
            },
            (None, None) => match self.detect(path)? {
                Some(f) => f,
                None => {
                    report.status = FileStatus::NoKnownFormat;
                    return Ok(report);
                }
            },
        };
        state.format = Some(format.name().to_string());
        report.format = state.format.clone();
        let path_s = shown.display().to_string();
        state.path = path_s.clone();
        if !state.paths.contains(&path_s) {
            state.paths.push(path_s.clone());
        }
        state.dev = dev;
        state.inode = inode;

        let file_no = self.names.id(&fp);
        let mut sink = self.sink.take().expect("the sink is back between files");
        sink.start_file(&fp, &path_s);
        let pipe = Pipeline::start(sink);
        let start_offset = state.offset;
        let read = self.read_lines(&pipe, &mut reader, &format, &fp, file_no, &mut state, &mut report, progress, io);
        let (sink, late) = pipe.finish();
        let read = match (read, late) {
            (Ok(r), None) => Ok(r),
            (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        };
        self.sink = Some(sink);
        if read.is_err() {
            // Nothing of the open transaction lands: its rows, names and checkpoints go together.
            self.roll_back();
        }
        if read? {
            return Ok(report);
        }
        report.bytes = reader.position() - start_offset;
        report.status = if report.lines == 0 && status == FileStatus::Read { FileStatus::UpToDate } else { status };
        Ok(report)
    }

    /// Reads `reader` to its end (or to a test hook's stop), parsing on this thread while the
    /// pipeline's worker appends, committing every `batch_lines`. Returns whether it stopped
    /// early with `report.status` set.
    #[allow(clippy::too_many_arguments)]
    fn read_lines(
        &mut self,
        pipe: &Pipeline,
        reader: &mut LineReader,
        format: &Format,
        fp: &str,
        file_no: Option<i32>,
        state: &mut FileState,
        report: &mut FileReport,
        progress: &mut impl FnMut(Progress),
        io: impl Fn(std::io::Error) -> IngestError,
    ) -> Result<bool, IngestError> {
        let mut batch = Batch::new();
        let mut pending_lines = 0u64;
        let mut line_no = state.line_no;
        let mut reported = state.offset;
        let mut reported_line = line_no;
        loop {
            let item = match reader.next_item() {
                Ok(x) => x,
                Err(e) => {
                    // The file vanished or broke mid-read, or a compressed archive is still being
                    // written: keep the complete lines read so far; the rest comes next pass.
                    if pending_lines > 0 {
                        break;
                    }
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        report.status = FileStatus::Incomplete;
                        return Ok(true);
                    }
                    return Err(io(e));
                }
            };
            let Some(item) = item else { break };
            line_no += 1;
            pending_lines += 1;
            match item {
                Item::Line { offset, bytes } => match std::str::from_utf8(bytes) {
                    Ok(text) => match format.parse(text) {
                        Ok(p) => {
                            batch.push(&p, text, fp, file_no, &mut self.names, offset, line_no);
                            if format.multiline() {
                                match self.records.get_mut(fp) {
                                    Some(r) => *r = (line_no + 1, Record::of(&p)),
                                    None => drop(self.records.insert(fp.to_owned(), (line_no + 1, Record::of(&p)))),
                                }
                            }
                        }
                        Err(e) => {
                            let record = self.records.get_mut(fp).filter(|(next, _)| *next == line_no);
                            match record.and_then(|(next, r)| format.continuation(text, r).map(|p| (next, p))) {
                                Some((next, p)) => {
                                    batch.push(&p, text, fp, file_no, &mut self.names, offset, line_no);
                                    *next = line_no + 1;
                                }
                                None => batch.errors.push((offset, line_no, prefix(bytes), e)),
                            }
                        }
                    },
                    Err(e) => batch.errors.push((offset, line_no, prefix(bytes), format!("not valid UTF-8 ({e})"))),
                },
                Item::TooLong { offset, prefix: pre, len } => {
                    batch.errors.push((offset, line_no, prefix(pre), format!("line of {len} bytes is longer than {} bytes", source::MAX_LINE)))
                }
            }
            if batch.len() + batch.errors.len() >= self.chunk_rows || batch.memory() >= CHUNK_BYTES {
                self.send_chunk(pipe, &mut batch)?;
                progress(Progress {
                    bytes: reader.position() - reported,
                    lines: line_no - reported_line,
                });
                (reported, reported_line) = (reader.position(), line_no);
            }
            if pending_lines as usize >= self.batch_lines {
                pending_lines = 0;
                if self.commit(pipe, &mut batch, state, reader, line_no, report, true)? {
                    report.status = FileStatus::Stopped;
                    return Ok(true);
                }
            }
        }
        if pending_lines > 0 {
            let now = !self.defer;
            self.commit(pipe, &mut batch, state, reader, line_no, report, now)?;
        }
        progress(Progress {
            bytes: reader.position() - reported,
            lines: line_no - reported_line,
        });
        Ok(false)
    }

    /// Hands the rows gathered in `batch` to the append thread.
    fn send_chunk(&mut self, pipe: &Pipeline, batch: &mut Batch) -> Result<(), IngestError> {
        let chunk = Chunk::take(batch, &self.schemas);
        if chunk.is_empty() {
            return Ok(());
        }
        pipe.append(chunk)
    }

    /// The format of `path`: the first of its first 20 lines that a known format parses.
    fn detect(&self, path: &Path) -> Result<Option<Format>, IngestError> {
        Ok(self.first_parsed(path)?.map(|(f, _)| f))
    }

    /// The format of `path` and the time of its first line it parses (the forced format, else
    /// the first that parses one of its first lines).
    fn first_parsed(&self, path: &Path) -> Result<Option<(Format, Option<i64>)>, IngestError> {
        let mut r = LineReader::at(path, 0)
            .map_err(|source| IngestError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .reader;
        // The first parseable line among the first few decides.
        for _ in 0..20 {
            match r.next_item() {
                Ok(Some(Item::Line { bytes, .. })) => {
                    let Ok(text) = std::str::from_utf8(bytes) else { continue };
                    let found = match &self.forced {
                        Some(f) => f.parse(text).ok().map(|p| (f.clone(), p.ts)),
                        None => self.formats.detect(text).map(|f| (f.clone(), f.parse(text).ok().and_then(|p| p.ts))),
                    };
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                Ok(Some(Item::TooLong { .. })) => {}
                Ok(None) | Err(_) => break,
            }
        }
        Ok(None)
    }

    /// `paths` oldest first, by the time of each one's first line (regular files whose first
    /// lines parse; the others after them, as given). A shell's glob gives `app.log.1,
    /// app.log.10, app.log.2`: read in that order, the misses of an older file read after a
    /// newer one's were classified as late, against the log's order.
    pub fn in_time_order(&self, paths: &[PathBuf]) -> Vec<PathBuf> {
        let mut keyed: Vec<(Option<i64>, &PathBuf)> = paths
            .iter()
            .map(|p| {
                // Not a pipe: opening one for reading waits for a writer.
                let file = std::fs::metadata(p).is_ok_and(|m| m.is_file());
                let first = if file { self.first_parsed(p).ok().flatten().and_then(|(_, ts)| ts) } else { None };
                (first, p)
            })
            .collect();
        keyed.sort_by_key(|(ts, _)| (ts.is_none(), *ts));
        keyed.into_iter().map(|(_, p)| p.clone()).collect()
    }

}

/// Maps a DuckDB error on `db` to [`IngestError::Db`].
fn db_error(db: &Path) -> impl Fn(duckdb::Error) -> IngestError + Copy + '_ {
    move |source| IngestError::Db { db: db.to_path_buf(), source }
}

fn prefix(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_PREFIX)])
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
