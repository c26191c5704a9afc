//! The manifest: a DuckDB file (table `manifest`, index `idx_symbol_timestamp`, table
//! `seen_symbols`) that remembers every key the engine cached and why each is no longer
//! cached. The engine keeps the live copy in memory and writes here in batches through
//! short-lived connections, so other processes (the runbook's `duckdb` checks, `cachescope
//! cache stats`) can open the file between batches. Also: detecting who holds the file's
//! lock (DuckDB takes an `fcntl` write lock on the whole file), and setting a corrupt file
//! aside.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use duckdb::{params, Connection};

use super::key::CacheKey;
use crate::queries;
use crate::vocab::{MissReason, RetireReason};

/// Why a key is (or is no longer) cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryState {
    Cached,
    EvictedCapacity,
    EvictedRetention,
    InvalidatedData,
    InvalidatedConfig,
    MissingFile,
    WriteFailed,
    ComputeFailed,
}

impl EntryState {
    pub const ALL: [EntryState; 8] = [
        EntryState::Cached,
        EntryState::EvictedCapacity,
        EntryState::EvictedRetention,
        EntryState::InvalidatedData,
        EntryState::InvalidatedConfig,
        EntryState::MissingFile,
        EntryState::WriteFailed,
        EntryState::ComputeFailed,
    ];

    /// The name stored in the manifest; for a non-cached state, the miss reason a later
    /// request of the key gets.
    pub fn as_str(self) -> &'static str {
        self.miss_reason().map_or("cached", MissReason::as_str)
    }

    pub fn parse(s: &str) -> Option<EntryState> {
        EntryState::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Why a request of a key in this state misses (`None`: it is cached).
    pub fn miss_reason(self) -> Option<MissReason> {
        Some(match self {
            EntryState::Cached => return None,
            EntryState::EvictedCapacity => MissReason::EvictedCapacity,
            EntryState::EvictedRetention => MissReason::EvictedRetention,
            EntryState::InvalidatedData => MissReason::InvalidatedData,
            EntryState::InvalidatedConfig => MissReason::InvalidatedConfig,
            EntryState::MissingFile => MissReason::MissingFile,
            EntryState::WriteFailed => MissReason::WriteFailed,
            EntryState::ComputeFailed => MissReason::ComputeFailed,
        })
    }
}

impl From<RetireReason> for EntryState {
    fn from(r: RetireReason) -> EntryState {
        match r {
            RetireReason::MarketData => EntryState::InvalidatedData,
            RetireReason::Config => EntryState::InvalidatedConfig,
            RetireReason::Capacity => EntryState::EvictedCapacity,
            RetireReason::Retention => EntryState::EvictedRetention,
        }
    }
}

/// One remembered key.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: CacheKey,
    pub id: String,
    pub slot: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub created: NaiveDateTime,
    pub last_access: NaiveDateTime,
    pub state: EntryState,
}

impl Entry {
    pub fn new(key: CacheKey, path: PathBuf, bytes: u64, now: NaiveDateTime, state: EntryState) -> Entry {
        Entry {
            id: key.id(),
            slot: key.slot(),
            key,
            path,
            bytes,
            created: now,
            last_access: now,
            state,
        }
    }
}

/// What the manifest file holds.
#[derive(Debug, Default)]
pub struct Loaded {
    pub entries: Vec<Entry>,
    pub symbols: Vec<String>,
}

/// Who holds the manifest's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockStatus {
    Free,
    HeldBy { pid: i32, command: String },
}

impl LockStatus {
    /// `PID 1234 (cmd args)`.
    pub fn describe(&self) -> String {
        match self {
            LockStatus::Free => "nobody".into(),
            LockStatus::HeldBy { pid, command } if command.is_empty() => format!("PID {pid}"),
            LockStatus::HeldBy { pid, command } => format!("PID {pid} ({command})"),
        }
    }
}

/// Failure to use the manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest {path} is locked by another process: {holder}")]
    Locked { path: PathBuf, holder: String },
    #[error("manifest {path} cannot be opened or is corrupt: {source}")]
    Corrupt { path: PathBuf, source: crate::BoxError },
    #[error("manifest {path}: {what}: {source}")]
    Io { path: PathBuf, what: String, source: std::io::Error },
}

/// Handle on the manifest file (no connection is held between calls).
#[derive(Debug, Clone)]
pub struct Manifest {
    path: PathBuf,
}

impl Manifest {
    pub fn new(path: impl Into<PathBuf>) -> Manifest {
        Manifest { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Asks the kernel whether another process holds a lock on the manifest (`F_GETLK`),
    /// and names it from `/proc`. Costs one open and one fcntl: cheap enough to run often.
    pub fn probe(&self) -> LockStatus {
        probe_lock(&self.path)
    }

    fn classify(&self, e: duckdb::Error) -> ManifestError {
        let message = e.to_string();
        if is_lock_conflict(&e) {
            let holder = match self.probe() {
                LockStatus::Free => message
                    .split("Conflicting lock is held in ")
                    .nth(1)
                    .map(|s| s.split(". ").next().unwrap_or(s).to_string())
                    .unwrap_or_else(|| "unknown process".into()),
                held => held.describe(),
            };
            ManifestError::Locked {
                path: self.path.clone(),
                holder,
            }
        } else {
            ManifestError::Corrupt {
                path: self.path.clone(),
                source: e.into(),
            }
        }
    }

    fn connect(&self) -> Result<Connection, ManifestError> {
        if let Some(dir) = self.path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|source| ManifestError::Io {
                    path: self.path.clone(),
                    what: format!("cannot create directory {}", dir.display()),
                    source,
                })?;
            }
        }
        let conn = Connection::open(&self.path).map_err(|e| self.classify(e))?;
        conn.execute_batch(queries::MANIFEST_SCHEMA)
            .map_err(|e| self.classify(e))?;
        Ok(conn)
    }

    /// Reads every entry and symbol (creating the tables in a new file).
    pub fn load(&self) -> Result<Loaded, ManifestError> {
        let conn = self.connect()?;
        self.read_all(&conn)
    }

    fn read_all(&self, conn: &Connection) -> Result<Loaded, ManifestError> {
        let err = |e: duckdb::Error| self.classify(e);
        let mut stmt = conn.prepare(queries::MANIFEST_LOAD).map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    CacheKey {
                        symbol: r.get(2)?,
                        feature_set: r.get(3)?,
                        config_hash: r.get(4)?,
                        start: r.get(5)?,
                        end: r.get(6)?,
                        data_version: r.get(7)?,
                    },
                    r.get::<_, String>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, NaiveDateTime>(10)?,
                    r.get::<_, NaiveDateTime>(11)?,
                    r.get::<_, String>(12)?,
                ))
            })
            .map_err(err)?;
        let mut loaded = Loaded::default();
        for row in rows {
            let (id, slot, key, path, bytes, created, last_access, state) = row.map_err(err)?;
            let state = EntryState::parse(&state).ok_or_else(|| ManifestError::Corrupt {
                path: self.path.clone(),
                source: format!("key {id} has unknown state `{state}`").into(),
            })?;
            loaded.entries.push(Entry {
                key,
                id,
                slot,
                path: PathBuf::from(path),
                bytes: bytes.max(0) as u64,
                created,
                last_access,
                state,
            });
        }
        let mut stmt = conn.prepare(queries::SYMBOLS_LOAD).map_err(err)?;
        loaded.symbols = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok(loaded)
    }

    /// Reads every entry without creating or changing anything (for health checks).
    pub fn load_read_only(&self) -> Result<Loaded, ManifestError> {
        let config = duckdb::Config::default()
            .access_mode(duckdb::AccessMode::ReadOnly)
            .map_err(|e| self.classify(e))?;
        let conn = Connection::open_with_flags(&self.path, config).map_err(|e| self.classify(e))?;
        self.read_all(&conn)
    }

    /// Writes a batch of changed entries and new symbols in one transaction.
    pub fn write(&self, entries: &[&Entry], symbols: &[(String, NaiveDateTime)]) -> Result<(), ManifestError> {
        if entries.is_empty() && symbols.is_empty() {
            return Ok(());
        }
        let mut conn = self.connect()?;
        let err = |e: duckdb::Error| self.classify(e);
        let tx = conn.transaction().map_err(err)?;
        {
            let mut app = tx
                .appender_to_catalog_and_db("manifest_stage", "temp", "main")
                .map_err(err)?;
            for e in entries {
                app.append_row(params![
                    e.id,
                    e.slot,
                    e.key.symbol,
                    e.key.feature_set,
                    e.key.config_hash,
                    e.key.start,
                    e.key.end,
                    e.key.data_version,
                    e.path.to_string_lossy(),
                    e.bytes as i64,
                    e.created,
                    e.last_access,
                    e.state.as_str(),
                ])
                .map_err(err)?;
            }
            app.flush().map_err(err)?;
            let mut app = tx
                .appender_to_catalog_and_db("symbols_stage", "temp", "main")
                .map_err(err)?;
            for (s, t) in symbols {
                app.append_row(params![s, t]).map_err(err)?;
            }
            app.flush().map_err(err)?;
        }
        tx.execute_batch(queries::MANIFEST_MERGE).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(())
    }

    /// Keys and bytes per state, as the file has them.
    pub fn summary(&self) -> Result<Vec<(String, i64, i64)>, ManifestError> {
        let conn = self.connect()?;
        let err = |e: duckdb::Error| self.classify(e);
        let mut stmt = conn.prepare(queries::MANIFEST_SUMMARY).map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Moves an unusable manifest (and its WAL) aside as `<name>.corrupt-<timestamp>`.
    pub fn set_aside(&self, now: NaiveDateTime) -> Result<PathBuf, ManifestError> {
        let stamp = now.format("%Y%m%dT%H%M%S%.6f");
        let target = PathBuf::from(format!("{}.corrupt-{stamp}", self.path.display()));
        std::fs::rename(&self.path, &target).map_err(|source| ManifestError::Io {
            path: self.path.clone(),
            what: format!("cannot move the unusable manifest to {}", target.display()),
            source,
        })?;
        let wal = PathBuf::from(format!("{}.wal", self.path.display()));
        if wal.exists() {
            let _ = std::fs::rename(&wal, format!("{}.wal", target.display()));
        }
        Ok(target)
    }
}

/// Whether DuckDB refused to open a file because another process holds its lock. DuckDB
/// says so only in words ("Could not set lock on file ..."), so the words are matched here,
/// once, for the manifest, the ingester and the query sessions.
pub fn is_lock_conflict(e: &duckdb::Error) -> bool {
    e.to_string().contains("Could not set lock")
}

/// `F_GETLK` on `path`: who (other than this process) holds a conflicting lock.
pub fn probe_lock(path: &Path) -> LockStatus {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::File::open(path) else {
        return LockStatus::Free;
    };
    // SAFETY: `fl` is a plain C struct fully initialised by zeroing; fcntl gets a valid fd.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = 0;
    fl.l_len = 0;
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    drop(f);
    if rc == -1 || fl.l_type as i32 == libc::F_UNLCK {
        return LockStatus::Free;
    }
    let pid = fl.l_pid;
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    LockStatus::HeldBy { pid, command }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::parse_ts;

    fn entry(sym: &str, state: EntryState, t: &str) -> Entry {
        let key = CacheKey {
            symbol: sym.into(),
            feature_set: "returns".into(),
            config_hash: "c".into(),
            start: parse_ts("2026-11-26T09:30:00Z").unwrap(),
            end: parse_ts("2026-11-26T16:00:00Z").unwrap(),
            data_version: "v0".into(),
        };
        Entry::new(key, PathBuf::from(format!("/c/{sym}.parquet.zst")), 100, parse_ts(t).unwrap(), state)
    }

    #[test]
    fn batches_round_trip_and_replace_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::new(dir.path().join("manifest.duckdb"));
        let a = entry("AAPL", EntryState::Cached, "2026-11-26T09:31:00Z");
        let b = entry("MSFT", EntryState::Cached, "2026-11-26T09:30:30.5Z");
        let t = parse_ts("2026-11-26T09:30:00Z").unwrap();
        m.write(&[&a, &b], &[("AAPL".into(), t), ("MSFT".into(), t)]).unwrap();
        let mut b2 = b.clone();
        b2.state = EntryState::EvictedCapacity;
        m.write(&[&b2], &[("AAPL".into(), t)]).unwrap();
        let loaded = m.load().unwrap();
        assert_eq!(loaded.entries, vec![b2, a]);
        assert_eq!(loaded.symbols, vec!["AAPL".to_string(), "MSFT".to_string()]);
        assert_eq!(
            m.summary().unwrap(),
            vec![("cached".to_string(), 1, 100), ("evicted_capacity".to_string(), 1, 100)]
        );
    }

    #[test]
    fn the_runbook_index_exists() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.duckdb");
        Manifest::new(&p).load().unwrap();
        let c = Connection::open(&p).unwrap();
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'idx_symbol_timestamp' AND table_name = 'manifest'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn garbage_is_reported_as_corrupt_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.duckdb");
        std::fs::write(&p, vec![0x5a; 10_000]).unwrap();
        let m = Manifest::new(&p);
        assert!(matches!(m.load(), Err(ManifestError::Corrupt { .. })));
        let aside = m.set_aside(parse_ts("2026-11-26T09:30:00Z").unwrap()).unwrap();
        assert!(aside.exists() && !p.exists());
        m.load().unwrap();
    }

    #[test]
    fn an_unlocked_file_probes_free() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("manifest.duckdb");
        assert_eq!(probe_lock(&p), LockStatus::Free);
        Manifest::new(&p).load().unwrap();
        assert_eq!(probe_lock(&p), LockStatus::Free);
    }
}
