//! Following logs: [`Tailer`] keeps the events database open, ingests what the watched files
//! gain (woken by inotify through `notify`, with a periodic re-scan as a backstop), serves
//! read-only queries to other processes over `<db>.sock` meanwhile, and on shutdown finishes
//! the batch in hand and commits before it returns. Exactly-once comes from the ingester:
//! every wake-up reads from the committed checkpoints. Each log's current file is kept open,
//! so when rotation renames it to any name (`NAME-20261127`, `old/NAME`) or deletes it, the
//! lines it gained before that are still read, from the open file, before it is let go.

pub mod metrics;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::ingest::{IngestError, Ingester};
use crate::query::{MemoryBudget, QueryServer};

/// Totals of a tail session.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TailTotals {
    pub wakeups: u64,
    pub lines: u64,
    pub events: u64,
    pub quarantined: u64,
}

/// Failure of the tailer.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
    #[error("{0} is not a regular file (a directory, pipe or device): tail follows log files and reads each again from where it stopped, which a pipe cannot do; give the files themselves (for a directory, DIR/*.log)")]
    NotAFile(PathBuf),
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// Follows a set of log files into an events database.
pub struct Tailer {
    ingester: Ingester,
    db: PathBuf,
    logs: Vec<PathBuf>,
    rotated: bool,
    rescan: Duration,
    metrics: Option<metrics::TailMetrics>,
    /// The file each log named when last looked at, kept open: when the name moves on
    /// (renamed to any name, or deleted), the old file's last lines are still read.
    held: HashMap<PathBuf, std::fs::File>,
    /// What a query through the socket may use on top of the ingest budget (MB).
    query_memory_mb: u64,
}

/// How often a tailer advances the kept episodes (src/ingest/episodes.rs): the open clusters
/// a report finds itself are at most this much older than they could be.
pub const EPISODES_EVERY: Duration = Duration::from_secs(60);

/// The default of `tail --query-memory` (MB): what a reader's session may use on the file too.
pub const DEFAULT_QUERY_MEMORY_MB: u64 = crate::query::QUERY_MEMORY_MB;

impl Tailer {
    /// Takes the database (a second tailer on it fails here, naming the first).
    pub fn new(mut ingester: Ingester, db: PathBuf, logs: Vec<PathBuf>, rotated: bool, rescan: Duration) -> Tailer {
        // A tailer runs for weeks within a memory budget (150 MB): smaller chunks keep the
        // peak of a large catch-up ~10 MB lower (BENCHMARKS.md).
        ingester.set_small_chunks();
        ingester.set_episodes_every(EPISODES_EVERY);
        Tailer {
            ingester,
            db,
            logs,
            rotated,
            rescan,
            metrics: None,
            held: HashMap::new(),
            query_memory_mb: DEFAULT_QUERY_MEMORY_MB,
        }
    }

    /// Lets a query through the socket use `mb` MB on top of the ingest budget.
    pub fn with_query_memory(mut self, mb: u64) -> Tailer {
        self.query_memory_mb = mb;
        self
    }

    /// Keeps `m` up to date after every pass.
    pub fn with_metrics(mut self, m: metrics::TailMetrics) -> Tailer {
        self.metrics = Some(m);
        self
    }

    /// Runs until `shutdown` is set; `report` sees the totals after every commit.
    pub fn run(mut self, shutdown: &AtomicBool, mut report: impl FnMut(&TailTotals)) -> Result<TailTotals, TailError> {
        // A log that does not exist yet is waited for; one that is not a file never becomes one.
        if let Some(p) = self.logs.iter().find(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_file())) {
            return Err(TailError::NotAFile(p.clone()));
        }
        let budget = MemoryBudget {
            ingest_mb: crate::ingest::INGEST_MEMORY_MB,
            query_mb: self.query_memory_mb,
        };
        let server = QueryServer::start(&self.db, self.ingester.query_connector()?, budget)?;
        let (tx, rx) = mpsc::channel::<()>();
        // Only changes to the logs (and their rotated siblings) wake us: not our own reads,
        // not the database's writes in the same directory.
        let names: Vec<std::ffi::OsString> = self.logs.iter().filter_map(|p| p.file_name().map(|n| n.to_os_string())).collect();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            let Ok(ev) = res else { return };
            let relevant_kind = matches!(
                ev.kind,
                notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
            );
            let relevant_path = ev.paths.iter().any(|p| {
                p.file_name()
                    .map(|f| names.iter().any(|n| f.as_encoded_bytes().starts_with(n.as_encoded_bytes())))
                    .unwrap_or(false)
            });
            if relevant_kind && relevant_path {
                let _ = tx.send(());
            }
        })
        .map_err(|source| TailError::Watch { path: PathBuf::new(), source })?;
        let mut dirs: Vec<PathBuf> = self
            .logs
            .iter()
            .map(|p| match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        for d in &dirs {
            watcher
                .watch(d, RecursiveMode::NonRecursive)
                .map_err(|source| TailError::Watch { path: d.clone(), source })?;
        }
        let mut totals = TailTotals::default();
        let mut first = true;
        loop {
            let stopping = shutdown.load(Ordering::SeqCst);
            let mut sum = self.finish_rotated_away()?;
            self.hold_current();
            let live = self.ingester.ingest(&self.logs, self.rotated && first, |_| {})?;
            live.files.into_iter().for_each(|r| sum.add(r));
            first = false;
            totals.wakeups += 1;
            totals.lines += sum.lines;
            totals.events += sum.events;
            totals.quarantined += sum.quarantined;
            if let Some(m) = &self.metrics {
                m.record(&self.ingester.take_committed(), self.ingester.lag_bytes(&self.logs));
            }
            if sum.lines > 0 {
                report(&totals);
            }
            if stopping {
                break;
            }
            // Sleep until a file event or the re-scan backstop, in short slices so a
            // shutdown request is seen quickly.
            let deadline = Instant::now() + self.rescan;
            loop {
                if shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                    Ok(()) => {
                        // Coalesce a burst of events.
                        while rx.try_recv().is_ok() {}
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        drop(watcher);
        server.stop();
        Ok(totals)
    }

    /// Reads to its end every held file its log's name no longer points to.
    fn finish_rotated_away(&mut self) -> Result<crate::ingest::IngestSummary, IngestError> {
        let id = |m: std::fs::Metadata| (m.dev(), m.ino());
        let moved: Vec<PathBuf> = self
            .held
            .iter()
            .filter(|(path, f)| std::fs::metadata(path).ok().map(id) != f.metadata().ok().map(id))
            .map(|(path, _)| path.clone())
            .collect();
        let mut sum = crate::ingest::IngestSummary::default();
        for path in moved {
            if let Some(f) = self.held.remove(&path) {
                sum.add(self.ingester.ingest_open_file(&f, &path, &mut |_| {})?);
            }
        }
        Ok(sum)
    }

    /// Opens (and keeps) the file each log names, where none is held.
    fn hold_current(&mut self) {
        for path in &self.logs {
            if !self.held.contains_key(path) {
                if let Ok(f) = std::fs::File::open(path) {
                    self.held.insert(path.clone(), f);
                }
            }
        }
    }
}
