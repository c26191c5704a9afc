//! The feature-store engine: [`FeatureStore::get_or_compute`] over Parquet+zstd cache files
//! and a DuckDB manifest. It owns the cache key, the in-memory index (the request hot path
//! never queries DuckDB), batched manifest writes, invalidation, LRU eviction, retention,
//! warming, fault handling, and the instrumentation every later stage reads: one log line per
//! event (`docs/log-format.md`) and `featurestore_*` Prometheus metrics.

pub mod cachefile;
pub mod clock;
pub mod config;
pub mod eventlog;
pub mod features;
pub mod index;
pub mod key;
pub mod manifest;
pub mod market_data;
pub mod metrics;
pub mod session;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::{Duration, NaiveDateTime};

pub use cachefile::DiskFaults;
pub use clock::{Clock, SystemClock, VirtualClock};
pub use config::{Config, ConfigError};
pub use eventlog::{EventLog, Level};
pub use features::{FeatureRegistry, FeatureSet, Params};
pub use key::{CacheKey, FeatureRequest};
pub use manifest::{EntryState, LockStatus, Manifest};
pub use market_data::{MarketData, ParquetDirMarketData, SyntheticMarketData};
pub use metrics::{Metrics, MetricsExporter};

use clock::fmt_ts;
use eventlog::quote;
use features::{ComputeError, FeatureConfigError, MemoryBudget};
use index::Index;
use manifest::{Entry, ManifestError};
use market_data::MarketDataError;

/// Why a request was not served from cache: the engine's own `reason=` vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissReason {
    NewSymbol,
    NewKey,
    InvalidatedData,
    InvalidatedConfig,
    EvictedCapacity,
    EvictedRetention,
    WriteFailed,
    ComputeFailed,
    MissingFile,
    ManifestUnavailable,
}

impl MissReason {
    pub const ALL: [MissReason; 10] = [
        MissReason::NewSymbol,
        MissReason::NewKey,
        MissReason::InvalidatedData,
        MissReason::InvalidatedConfig,
        MissReason::EvictedCapacity,
        MissReason::EvictedRetention,
        MissReason::WriteFailed,
        MissReason::ComputeFailed,
        MissReason::MissingFile,
        MissReason::ManifestUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::NewSymbol => "new_symbol",
            MissReason::NewKey => "new_key",
            MissReason::InvalidatedData => "invalidated_data",
            MissReason::InvalidatedConfig => "invalidated_config",
            MissReason::EvictedCapacity => "evicted_capacity",
            MissReason::EvictedRetention => "evicted_retention",
            MissReason::WriteFailed => "write_failed",
            MissReason::ComputeFailed => "compute_failed",
            MissReason::MissingFile => "missing_file",
            MissReason::ManifestUnavailable => "manifest_unavailable",
        }
    }

    fn from_state(s: EntryState) -> Option<MissReason> {
        Some(match s {
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

/// What a request returned and how.
#[derive(Debug, Clone)]
pub struct Features {
    pub batches: Vec<RecordBatch>,
    pub key: CacheKey,
    pub key_id: String,
    pub outcome: Outcome,
}

/// Hit, or miss with its reason and whether the result was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss { reason: MissReason, stored: bool },
}

/// Errors a caller of the engine sees.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    FeatureConfig(#[from] FeatureConfigError),
    #[error("market data for `{symbol}`: {source}")]
    MarketData {
        symbol: String,
        source: MarketDataError,
    },
    #[error("computing `{feature_set}` for `{symbol}` (key {key}): {source}")]
    Compute {
        symbol: String,
        feature_set: String,
        key: String,
        /// The reason of the miss that led to the computation.
        reason: Option<MissReason>,
        source: ComputeError,
    },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What `cleanup()` did (or would do, with `dry_run`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CleanupReport {
    pub dry_run: bool,
    pub retention_days: f64,
    pub removed_files: u64,
    pub freed_bytes: u64,
    pub removed_temp_files: u64,
    pub remaining_files: u64,
    pub remaining_bytes: u64,
}

/// What `warm()` did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct WarmReport {
    pub requested: u64,
    pub already_cached: u64,
    pub stored: u64,
    pub failed: u64,
}

/// Counts for `cache stats` and tests.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StoreStats {
    pub cached_files: u64,
    pub cached_bytes: u64,
    pub max_bytes: u64,
    pub remembered_keys: u64,
    pub symbols: u64,
    pub manifest_available: bool,
    pub by_state: BTreeMap<String, u64>,
}

/// How `latency_us` and the latency histogram are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum LatencyMode {
    /// Wall-clock time of the call (production).
    #[default]
    Measured,
    /// A deterministic cost model of the work done (for reproducible simulations):
    /// a hit costs 50 us + bytes read at 150 MB/s; a miss 200 us + 0.2 us per computed
    /// value + bytes written at 80 MB/s.
    Modelled,
}

/// The work a request did, for the latency model.
#[derive(Debug, Clone, Copy, Default)]
struct Work {
    hit: bool,
    bytes: u64,
    cells: u64,
}

fn modelled_latency(w: Work) -> f64 {
    if w.hit {
        50e-6 + w.bytes as f64 / 150e6
    } else {
        200e-6 + w.cells as f64 * 0.2e-6 + w.bytes as f64 / 80e6
    }
}

fn cells(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| (b.num_rows() * b.num_columns()) as u64).sum()
}

/// Whether the manifest can be used.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Available,
    Unavailable { since: NaiveDateTime, holder: String },
}

/// Builder for a [`FeatureStore`] with a non-default clock, market data, log or faults.
pub struct FeatureStoreBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
    source: Arc<dyn MarketData>,
    log: Option<EventLog>,
    faults: Arc<DiskFaults>,
    metrics: Metrics,
    extra_sets: Vec<Arc<dyn FeatureSet>>,
    latency: LatencyMode,
    replayed: bool,
}

impl FeatureStoreBuilder {
    /// The store replays a trace: its faults (a locked manifest) are the trace's, and the
    /// notices it prints to the terminal say so.
    pub fn replayed(mut self, yes: bool) -> Self {
        self.replayed = yes;
        self
    }
    pub fn latency(mut self, l: LatencyMode) -> Self {
        self.latency = l;
        self
    }
    pub fn clock(mut self, c: Arc<dyn Clock>) -> Self {
        self.clock = c;
        self
    }
    pub fn market_data(mut self, s: Arc<dyn MarketData>) -> Self {
        self.source = s;
        self
    }
    pub fn log(mut self, l: EventLog) -> Self {
        self.log = Some(l);
        self
    }
    pub fn faults(mut self, f: Arc<DiskFaults>) -> Self {
        self.faults = f;
        self
    }
    pub fn metrics(mut self, m: Metrics) -> Self {
        self.metrics = m;
        self
    }
    /// Adds an application's own feature set.
    pub fn feature_set(mut self, s: Arc<dyn FeatureSet>) -> Self {
        self.extra_sets.push(s);
        self
    }

    pub fn open(self) -> Result<FeatureStore, EngineError> {
        FeatureStore::open_with(self)
    }
}

/// The feature store. Single-threaded (`&mut self`); wrap it in a mutex to share it.
pub struct FeatureStore {
    cfg: Config,
    clock: Arc<dyn Clock>,
    source: Arc<dyn MarketData>,
    features: FeatureRegistry,
    manifest: Manifest,
    log: EventLog,
    metrics: Metrics,
    faults: Arc<DiskFaults>,
    memory_limit_bytes: u64,
    /// Every remembered key, the newest of each slot, the cached ones by recency.
    index: Index,
    symbols: HashSet<String>,
    dirty: HashSet<String>,
    new_symbols: Vec<(String, NaiveDateTime)>,
    last_flush: NaiveDateTime,
    last_probe: Option<NaiveDateTime>,
    mode: Mode,
    loaded: bool,
    closed: bool,
    latency: LatencyMode,
    /// Replaying a trace: terminal notices say that a fault is the trace's.
    replayed: bool,
}

impl FeatureStore {
    /// A builder with the system clock, a synthetic market-data source (seed 0), the log on
    /// stderr and no injected faults.
    pub fn builder(config: Config) -> FeatureStoreBuilder {
        FeatureStoreBuilder {
            config,
            clock: Arc::new(SystemClock),
            source: Arc::new(SyntheticMarketData::new(0)),
            log: None,
            faults: Arc::new(DiskFaults::default()),
            metrics: Metrics::new(),
            extra_sets: Vec::new(),
            latency: LatencyMode::Measured,
            replayed: false,
        }
    }

    /// Opens the store with defaults for everything but the configuration.
    pub fn open(config: Config) -> Result<FeatureStore, EngineError> {
        FeatureStore::builder(config).open()
    }

    fn open_with(b: FeatureStoreBuilder) -> Result<FeatureStore, EngineError> {
        b.config.validate()?;
        let mut features = FeatureRegistry::with_builtins(&BTreeMap::new())?;
        for s in b.extra_sets {
            features.register(s);
        }
        for (name, p) in &b.config.feature_sets {
            features.configure(name, p)?;
        }
        std::fs::create_dir_all(&b.config.cache_dir).map_err(|source| EngineError::Io {
            what: "cannot create the cache directory",
            path: b.config.cache_dir.clone(),
            source,
        })?;
        let now = b.clock.now();
        let log = b
            .log
            .unwrap_or_else(|| EventLog::new(Box::new(std::io::stderr()), true));
        let mut store = FeatureStore {
            manifest: Manifest::new(&b.config.manifest_path),
            memory_limit_bytes: (b.config.memory_limit_mb * 1e6) as u64,
            cfg: b.config,
            clock: b.clock,
            source: b.source,
            features,
            log,
            metrics: b.metrics,
            faults: b.faults,
            index: Index::new(),
            symbols: HashSet::new(),
            dirty: HashSet::new(),
            new_symbols: Vec::new(),
            last_flush: now,
            last_probe: None,
            mode: Mode::Available,
            loaded: false,
            closed: false,
            latency: b.latency,
            replayed: b.replayed,
        };
        store.log_startup(now);
        store.remove_stale_temps(now, None);
        match store.manifest.probe() {
            LockStatus::Free => store.load_manifest(now)?,
            LockStatus::HeldBy { .. } => store.enter_unavailable(now, None),
        }
        store.publish_gauges();
        Ok(store)
    }

    fn log_startup(&mut self, now: NaiveDateTime) {
        let c = &self.cfg;
        let sets = self
            .features
            .iter()
            .map(|s| format!("{}:{}", s.set.name(), s.config_hash))
            .collect::<Vec<_>>()
            .join(",");
        self.log.write(
            now,
            Level::Info,
            "FeatureStore started",
            &[
                ("event", &"startup"),
                ("version", &env!("CARGO_PKG_VERSION")),
                ("cache_dir", &c.cache_dir.display()),
                ("manifest_path", &c.manifest_path.display()),
                ("compression_level", &c.compression_level),
                ("max_cache_size_gb", &c.max_cache_size_gb),
                ("cleanup_threshold", &c.cleanup_threshold),
                ("eviction_target", &c.eviction_target),
                ("retention_days", &c.retention_days),
                ("compute_limit_mb", &c.memory_limit_mb),
                ("market_data", &self.source.describe()),
                ("feature_sets", &sets),
            ],
        );
    }

    /// Loads the manifest into memory, rebuilding it from the file footers when it is
    /// missing or corrupt, and adopting files a crash left out of it.
    fn load_manifest(&mut self, now: NaiveDateTime) -> Result<(), EngineError> {
        let existed = self.manifest.exists();
        match self.manifest.load() {
            Ok(loaded) => {
                for e in loaded.entries {
                    self.insert_loaded(e);
                }
                self.symbols.extend(loaded.symbols);
                self.loaded = true;
                if !existed {
                    self.rebuild_from_files(now, "missing", None)?;
                } else {
                    self.adopt_unlisted_files(now);
                }
            }
            Err(ManifestError::Locked { holder, .. }) => {
                self.enter_unavailable(now, Some(holder));
                return Ok(());
            }
            Err(ManifestError::Corrupt { message, .. }) => {
                let aside = self.manifest.set_aside(now)?;
                self.loaded = true;
                self.rebuild_from_files(now, "corrupt", Some((aside, message)))?;
            }
            Err(e @ ManifestError::Io { .. }) => return Err(e.into()),
        }
        self.flush_now(now);
        Ok(())
    }

    fn insert_loaded(&mut self, e: Entry) {
        // Loaded oldest access first, so the newest key of a slot wins.
        self.index.insert(e);
    }

    fn rebuild_from_files(
        &mut self,
        now: NaiveDateTime,
        why: &str,
        aside: Option<(PathBuf, String)>,
    ) -> Result<(), EngineError> {
        let (files, _) = cachefile::scan(&self.cfg.cache_dir).map_err(|source| EngineError::Io {
            what: "cannot scan the cache directory",
            path: self.cfg.cache_dir.clone(),
            source,
        })?;
        let mut adopted = 0u64;
        let mut bytes = 0u64;
        for p in files {
            if let Some(e) = self.entry_from_footer(now, &p) {
                adopted += 1;
                bytes += e.bytes;
                self.symbols.insert(e.key.symbol.clone());
                self.new_symbols.push((e.key.symbol.clone(), e.created));
                self.dirty.insert(e.id.clone());
                self.insert_loaded(e);
            }
        }
        let (aside_path, error) = aside
            .map(|(p, m)| (p.display().to_string(), m))
            .unwrap_or_default();
        if why == "missing" && adopted == 0 {
            self.log.write(
                now,
                Level::Info,
                "Manifest created",
                &[("event", &"manifest_created"), ("path", &self.manifest.path().display())],
            );
            return Ok(());
        }
        self.log.write(
            now,
            Level::Warn,
            &format!("Manifest {why}; rebuilt from cache file footers"),
            &[
                ("event", &"manifest_rebuilt"),
                ("reason", &why),
                ("path", &self.manifest.path().display()),
                ("files", &adopted),
                ("bytes", &bytes),
                ("set_aside", &aside_path),
                ("error", &error),
            ],
        );
        Ok(())
    }

    /// Reads a footer into a cached entry, logging files that cannot be used.
    fn entry_from_footer(&mut self, now: NaiveDateTime, p: &Path) -> Option<Entry> {
        match cachefile::read_footer(p) {
            Ok(f) if cachefile::path_for(&self.cfg.cache_dir, &f.key) == p => {
                let mut e = Entry::new(f.key, p.to_path_buf(), f.bytes, f.created, EntryState::Cached);
                e.last_access = f.created;
                Some(e)
            }
            Ok(f) => {
                self.log.write(
                    now,
                    Level::Warn,
                    "Cache file is not where its key belongs; ignored",
                    &[("event", &"unreadable_file"), ("path", &p.display()), ("key", &f.key_id)],
                );
                None
            }
            Err(err) => {
                self.log.write(
                    now,
                    Level::Warn,
                    "Cache file unreadable; ignored",
                    &[("event", &"unreadable_file"), ("path", &p.display()), ("error", &err)],
                );
                None
            }
        }
    }

    /// Files written just before a crash may be missing from the manifest: adopt them.
    fn adopt_unlisted_files(&mut self, now: NaiveDateTime) {
        let Ok((files, _)) = cachefile::scan(&self.cfg.cache_dir) else {
            return;
        };
        let mut adopted = 0u64;
        for p in files {
            let listed = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(cachefile::EXTENSION))
                .and_then(|id| self.index.cached(id))
                .is_some_and(|e| e.path == p);
            if listed {
                continue;
            }
            if let Some(e) = self.entry_from_footer(now, &p) {
                if self.index.cached(&e.id).is_some() {
                    continue;
                }
                adopted += 1;
                self.dirty.insert(e.id.clone());
                self.insert_loaded(e);
            }
        }
        if adopted > 0 {
            self.log.write(
                now,
                Level::Warn,
                "Cache files missing from the manifest adopted",
                &[("event", &"manifest_reconciled"), ("files", &adopted)],
            );
        }
    }

    fn remove_stale_temps(&mut self, now: NaiveDateTime, older_than: Option<Duration>) -> u64 {
        let Ok((_, temps)) = cachefile::scan(&self.cfg.cache_dir) else {
            return 0;
        };
        let mut n = 0;
        for t in temps {
            let old_enough = match older_than {
                None => true,
                Some(age) => std::fs::metadata(&t)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|e| e.as_secs_f64() > age.num_seconds() as f64),
            };
            if old_enough && std::fs::remove_file(&t).is_ok() {
                n += 1;
            }
        }
        if n > 0 {
            self.log.write(
                now,
                Level::Warn,
                "Removed temp files left by an interrupted write",
                &[("event", &"temp_files_removed"), ("files", &n)],
            );
        }
        n
    }

    // ---- the request path -------------------------------------------------------------

    /// Serves `req` from cache, or computes, stores and returns it.
    pub fn get_or_compute(&mut self, req: &FeatureRequest) -> Result<Features, EngineError> {
        let started = Instant::now();
        let now = self.clock.now();
        self.housekeeping(now);
        if req.end <= req.start {
            return Err(EngineError::BadRequest(format!(
                "range of `{}`/`{}` ends ({}) before it starts ({})",
                req.symbol,
                req.feature_set,
                fmt_ts(req.end),
                fmt_ts(req.start)
            )));
        }
        let key = self.key_for(req)?;
        let id = key.id();

        let mut reason = None;
        if self.mode == Mode::Available {
            if let Some(e) = self.index.cached(&id) {
                let path = e.path.clone();
                match cachefile::read(&path, &id) {
                    Ok(batches) => {
                        let bytes = self.record_hit(&id, now);
                        let secs = self.latency_of(started, Work { hit: true, bytes, cells: 0 });
                        self.metrics.hit(secs);
                        self.log_request(now, "Cache HIT", "hit", &key, &id, bytes, secs, None);
                        return Ok(Features {
                            batches,
                            key,
                            key_id: id,
                            outcome: Outcome::Hit,
                        });
                    }
                    Err(err) => {
                        self.log.write(
                            now,
                            Level::Warn,
                            &format!("Cache file missing or unreadable for {}", quote(&req.symbol)),
                            &[
                                ("event", &"missing_file"),
                                ("symbol", &req.symbol),
                                ("feature_set", &req.feature_set),
                                ("key", &id),
                                ("path", &path.display()),
                                ("error", &err),
                            ],
                        );
                        self.uncache(&id, EntryState::MissingFile, now);
                        reason = Some(MissReason::MissingFile);
                    }
                }
            }
        }
        let reason = match reason {
            Some(r) => r,
            None => self.miss_reason(&key, &id, now),
        };
        if self.symbols.insert(req.symbol.clone()) {
            self.new_symbols.push((req.symbol.clone(), now));
        }
        let result = self.fill(&key, &id, now);
        let work = match &result {
            Ok((b, _, bytes)) => Work { hit: false, bytes: *bytes, cells: cells(b) },
            Err(_) => Work::default(),
        };
        let secs = self.latency_of(started, work);
        self.metrics.miss(reason.as_str(), secs);
        match result {
            Ok((batches, stored, bytes)) => {
                let outcome = if stored { "stored" } else if self.mode == Mode::Available { "write_failed" } else { "uncached" };
                self.log_request(now, "Cache MISS", "miss", &key, &id, bytes, secs, Some((reason, outcome)));
                self.maybe_flush(now);
                Ok(Features {
                    batches,
                    key,
                    key_id: id,
                    outcome: Outcome::Miss { reason, stored },
                })
            }
            Err(mut e) => {
                self.log_request(now, "Cache MISS", "miss", &key, &id, 0, secs, Some((reason, "compute_failed")));
                self.maybe_flush(now);
                if let EngineError::Compute { reason: r, .. } = &mut e {
                    *r = Some(reason);
                }
                Err(e)
            }
        }
    }

    fn latency_of(&self, started: Instant, work: Work) -> f64 {
        match self.latency {
            LatencyMode::Measured => started.elapsed().as_secs_f64(),
            LatencyMode::Modelled => modelled_latency(work),
        }
    }

    fn key_for(&self, req: &FeatureRequest) -> Result<CacheKey, EngineError> {
        let set = self.features.get(&req.feature_set)?;
        let data_version = self
            .source
            .version(&req.symbol)
            .map_err(|source| EngineError::MarketData {
                symbol: req.symbol.clone(),
                source,
            })?;
        Ok(CacheKey {
            symbol: req.symbol.clone(),
            feature_set: req.feature_set.clone(),
            config_hash: set.config_hash.clone(),
            start: req.start,
            end: req.end,
            data_version,
        })
    }

    /// The engine's own reason for a miss of `key` (not cached or unreadable).
    fn miss_reason(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> MissReason {
        if let Mode::Unavailable { .. } = self.mode {
            return MissReason::ManifestUnavailable;
        }
        if let Some(r) = self.index.get(id).and_then(|e| MissReason::from_state(e.state)) {
            return r;
        }
        if let Some(state) = self.supersede(key, id, now) {
            return MissReason::from_state(state).unwrap_or(MissReason::NewKey);
        }
        if !self.symbols.contains(&key.symbol) {
            MissReason::NewSymbol
        } else {
            MissReason::NewKey
        }
    }

    /// Invalidates the key `key` replaces in its slot (an older version), if it is still
    /// cached; returns why that key is stale.
    fn supersede(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> Option<EntryState> {
        let s = self.index.superseded(key, id)?;
        if s.cached {
            self.retire(&s.id, s.reason, now);
        }
        Some(s.reason)
    }

    /// Computes `key` and, when the manifest is usable, stores it. Returns the batches,
    /// whether they were stored, and the stored size.
    fn fill(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> Result<(Vec<RecordBatch>, bool, u64), EngineError> {
        let available = self.mode == Mode::Available;
        let batch = match self.compute(key, id, now) {
            Ok(b) => b,
            Err(e) => {
                if available {
                    self.remember(key, id, EntryState::ComputeFailed, 0, now);
                }
                return Err(e);
            }
        };
        let batches = vec![batch];
        if !available {
            return Ok((batches, false, 0));
        }
        match cachefile::write(&self.cfg.cache_dir, key, &batches, self.cfg.compression_level, now, &self.faults) {
            Ok(bytes) => {
                self.remember(key, id, EntryState::Cached, bytes, now);
                self.enforce_capacity(now, Some(id));
                Ok((batches, true, bytes))
            }
            Err(err) => {
                self.metrics.write_failure();
                let os = err.raw_os_error().map(|c| c.to_string()).unwrap_or_default();
                let what = if err.raw_os_error() == Some(libc::ENOSPC) { "disk full" } else { "I/O error" };
                self.log.write(
                    now,
                    Level::Error,
                    &format!("Cache write failed for {} ({what}); result served uncached", quote(&key.symbol)),
                    &[
                        ("event", &"write_failed"),
                        ("symbol", &key.symbol),
                        ("feature_set", &key.feature_set),
                        ("key", &id),
                        ("slot", &key.slot()),
                        ("os_error", &os),
                        ("error", &err),
                    ],
                );
                self.remember(key, id, EntryState::WriteFailed, 0, now);
                Ok((batches, false, 0))
            }
        }
    }

    fn compute(&mut self, key: &CacheKey, id: &str, now: NaiveDateTime) -> Result<RecordBatch, EngineError> {
        let set = self.features.get(&key.feature_set)?.clone();
        let bars = self
            .source
            .bars(&key.symbol, key.start, key.end)
            .map_err(|source| EngineError::MarketData {
                symbol: key.symbol.clone(),
                source,
            })?;
        let mut budget = MemoryBudget::new(set.set.name(), self.memory_limit_bytes);
        let result = budget
            .charge(bars.get_array_memory_size() as u64)
            .and_then(|_| set.set.compute(&bars, &set.params, &mut budget));
        result.map_err(|source| {
            self.metrics.compute_failure();
            let (needed, limit) = match &source {
                ComputeError::OutOfMemory { needed_bytes, limit_bytes, .. } => (*needed_bytes, *limit_bytes),
                _ => (0, self.memory_limit_bytes),
            };
            let msg = match &source {
                ComputeError::OutOfMemory { .. } => format!(
                    "Feature computation failed for {}: out of memory (OOM)",
                    quote(&key.symbol)
                ),
                _ => format!("Feature computation failed for {}", quote(&key.symbol)),
            };
            self.log.write(
                now,
                Level::Error,
                &msg,
                &[
                    ("event", &"compute_failed"),
                    ("symbol", &key.symbol),
                    ("feature_set", &key.feature_set),
                    ("key", &id),
                    ("slot", &key.slot()),
                    ("needed_bytes", &needed),
                    ("limit_bytes", &limit),
                    ("error", &source),
                ],
            );
            EngineError::Compute {
                symbol: key.symbol.clone(),
                feature_set: key.feature_set.clone(),
                key: id.to_string(),
                reason: None,
                source,
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn log_request(
        &mut self,
        now: NaiveDateTime,
        what: &str,
        event: &str,
        key: &CacheKey,
        id: &str,
        bytes: u64,
        secs: f64,
        miss: Option<(MissReason, &str)>,
    ) {
        let msg = format!("{what} for {}", quote(&key.symbol));
        let latency_us = (secs * 1e6).round() as u64;
        let slot = key.slot();
        let (start, end) = (fmt_ts(key.start), fmt_ts(key.end));
        let mut fields: Vec<(&str, &dyn std::fmt::Display)> = vec![
            ("event", &event),
            ("op", &"get_or_compute"),
            ("symbol", &key.symbol),
            ("feature_set", &key.feature_set),
            ("key", &id),
            ("slot", &slot),
            ("config", &key.config_hash),
            ("data_version", &key.data_version),
            ("start", &start),
            ("end", &end),
            ("bytes", &bytes),
            ("latency_us", &latency_us),
        ];
        let reason;
        let outcome;
        if let Some((r, o)) = miss {
            reason = r.as_str();
            outcome = o;
            fields.push(("reason", &reason));
            fields.push(("outcome", &outcome));
        }
        self.log.write(now, Level::Info, &msg, &fields);
    }

    fn record_hit(&mut self, id: &str, now: NaiveDateTime) -> u64 {
        let bytes = self.index.hit(id, now);
        self.dirty.insert(id.to_string());
        self.maybe_flush(now);
        bytes
    }

    /// Records `key` in `state` (replacing any previous record of it).
    fn remember(&mut self, key: &CacheKey, id: &str, state: EntryState, bytes: u64, now: NaiveDateTime) {
        let path = if state == EntryState::Cached {
            cachefile::path_for(&self.cfg.cache_dir, key)
        } else {
            PathBuf::new()
        };
        self.index.insert(Entry::new(key.clone(), path, bytes, now, state));
        self.dirty.insert(id.to_string());
        self.publish_gauges();
    }

    /// Takes a cached key out of the cache accounting (the file is handled by the caller).
    fn uncache(&mut self, id: &str, state: EntryState, now: NaiveDateTime) {
        self.index.set_state(id, state, now);
        self.dirty.insert(id.to_string());
        self.publish_gauges();
    }

    fn delete_file(&mut self, id: &str) -> u64 {
        let Some(e) = self.index.get(id) else { return 0 };
        let bytes = e.bytes;
        if let Err(err) = std::fs::remove_file(&e.path) {
            if err.kind() != std::io::ErrorKind::NotFound {
                let path = e.path.clone();
                let now = self.clock.now();
                self.log.write(
                    now,
                    Level::Warn,
                    "Cannot delete cache file",
                    &[("event", &"delete_failed"), ("key", &id), ("path", &path.display()), ("error", &err)],
                );
            }
        }
        bytes
    }

    /// Invalidates every cached key matching `stale`, least recently used first; returns how many.
    fn invalidate_where(&mut self, state: EntryState, now: NaiveDateTime, stale: impl Fn(&CacheKey) -> bool) -> u64 {
        let ids: Vec<String> = self
            .index
            .least_recent()
            .filter(|id| self.index.get(id).is_some_and(|e| stale(&e.key)))
            .cloned()
            .collect();
        for id in &ids {
            self.retire(id, state, now);
        }
        ids.len() as u64
    }

    /// Takes a cached key out of the cache for good: deletes its file, records it in `state`
    /// (invalidated or evicted), counts and logs it. Returns the bytes freed.
    fn retire(&mut self, id: &str, state: EntryState, now: NaiveDateTime) -> u64 {
        let bytes = self.delete_file(id);
        self.uncache(id, state, now);
        let (event, reason, verb) = match state {
            EntryState::InvalidatedConfig => ("invalidation", "config", "invalidated"),
            EntryState::InvalidatedData => ("invalidation", "market_data", "invalidated"),
            EntryState::EvictedRetention => ("eviction", "retention", "evicted"),
            _ => ("eviction", "capacity", "evicted"),
        };
        let Some(e) = self.index.get(id) else { return bytes };
        let age_s = (now - e.created).num_milliseconds() as f64 / 1000.0;
        let (sym, fs, slot, cfg, dv) = (
            e.key.symbol.clone(),
            e.key.feature_set.clone(),
            e.slot.clone(),
            e.key.config_hash.clone(),
            e.key.data_version.clone(),
        );
        let mut fields: Vec<(&str, &dyn std::fmt::Display)> = vec![
            ("event", &event),
            ("reason", &reason),
            ("symbol", &sym),
            ("feature_set", &fs),
            ("key", &id),
            ("slot", &slot),
            ("config", &cfg),
            ("data_version", &dv),
            ("bytes", &bytes),
        ];
        if event == "eviction" {
            self.metrics.eviction(reason, bytes);
            fields.push(("age_s", &age_s));
        } else {
            self.metrics.invalidation(reason);
        }
        self.log.write(now, Level::Info, &format!("Cache key {id} {verb}"), &fields);
        bytes
    }

    /// Evicts least-recently-used files when usage passes the threshold, down to the target.
    fn enforce_capacity(&mut self, now: NaiveDateTime, keep: Option<&str>) {
        let max = self.cfg.max_cache_bytes() as f64;
        let cached_bytes = || self.index.cached_totals().1;
        if (cached_bytes() as f64) <= self.cfg.cleanup_threshold * max {
            return;
        }
        let used_before = cached_bytes();
        let target = (self.cfg.eviction_target * max) as u64;
        let mut evicted = 0u64;
        let mut freed = 0u64;
        let mut cursor = 0u64;
        while self.index.cached_totals().1 > target {
            let Some((pos, id)) = self.index.least_recent_from(cursor) else { break };
            cursor = pos + 1;
            if Some(id.as_str()) == keep {
                continue;
            }
            let id = id.clone();
            freed += self.retire(&id, EntryState::EvictedCapacity, now);
            evicted += 1;
        }
        self.log.write(
            now,
            Level::Warn,
            "Cache over capacity; least-recently-used files evicted",
            &[
                ("event", &"capacity_cleanup"),
                ("evicted", &evicted),
                ("freed_bytes", &freed),
                ("used_before", &used_before),
                ("used_after", &self.index.cached_totals().1),
                ("max_bytes", &self.cfg.max_cache_bytes()),
            ],
        );
    }

    // ---- operations ---------------------------------------------------------------------

    /// A market-data update for `symbol`: every cached key built on an older version is
    /// invalidated (its file deleted). Returns how many.
    pub fn market_data_updated(&mut self, symbol: &str) -> Result<u64, EngineError> {
        let now = self.clock.now();
        self.housekeeping(now);
        let version = self.source.version(symbol).map_err(|source| EngineError::MarketData {
            symbol: symbol.to_string(),
            source,
        })?;
        let stale = self.invalidate_where(EntryState::InvalidatedData, now, |k| {
            k.symbol == symbol && k.data_version != version
        });
        self.log.write(
            now,
            Level::Info,
            &format!("Market data updated for {}", quote(symbol)),
            &[
                ("event", &"market_data_update"),
                ("symbol", &symbol),
                ("data_version", &version),
                ("invalidated", &stale),
            ],
        );
        self.maybe_flush(now);
        Ok(stale)
    }

    /// Changes a feature set's configuration; every cached key of the set with another
    /// configuration hash is invalidated. Returns the new hash and how many were invalidated.
    pub fn set_feature_config(&mut self, name: &str, changes: &Params) -> Result<(String, u64), EngineError> {
        let now = self.clock.now();
        self.housekeeping(now);
        let previous = self.features.get(name)?.config_hash.clone();
        let hash = self.features.configure(name, changes)?;
        let params = self.features.get(name)?.params_string();
        let stale = self.invalidate_where(EntryState::InvalidatedConfig, now, |k| {
            k.feature_set == name && k.config_hash != hash
        });
        self.log.write(
            now,
            Level::Info,
            &format!("Feature set {name} configuration changed"),
            &[
                ("event", &"config_change"),
                ("feature_set", &name),
                ("config", &hash),
                ("previous_config", &previous),
                ("params", &params),
                ("invalidated", &stale),
            ],
        );
        self.maybe_flush(now);
        Ok((hash, stale))
    }

    /// Changes the capacity; shrinking it evicts at once.
    pub fn set_max_cache_size_gb(&mut self, gb: f64) -> Result<(), EngineError> {
        let used = self.index.cached_totals().1;
        let now = self.change_setting(|c| &mut c.max_cache_size_gb, gb, "Cache capacity changed", "capacity_change", "max_cache_size_gb", &[("used_bytes", &used)])?;
        self.enforce_capacity(now, None);
        self.maybe_flush(now);
        Ok(())
    }

    /// Changes the retention used by the next `cleanup()`.
    pub fn set_retention_days(&mut self, days: f64) -> Result<(), EngineError> {
        self.change_setting(|c| &mut c.retention_days, days, "Cache retention changed", "retention_change", "retention_days", &[])?;
        Ok(())
    }

    /// Changes the memory budget of each feature computation.
    pub fn set_memory_limit_mb(&mut self, mb: f64) -> Result<(), EngineError> {
        self.change_setting(|c| &mut c.memory_limit_mb, mb, "Feature computation limit changed", "compute_limit_change", "compute_limit_mb", &[])?;
        self.memory_limit_bytes = (mb * 1e6) as u64;
        Ok(())
    }

    /// Sets one number of the configuration (validated as a whole) and logs `event` with the
    /// new value as `name`, the old one as `previous_<name>`, then `extra`. Returns the time.
    fn change_setting(
        &mut self,
        field: fn(&mut Config) -> &mut f64,
        value: f64,
        message: &str,
        event: &str,
        name: &str,
        extra: &[(&str, &dyn std::fmt::Display)],
    ) -> Result<NaiveDateTime, EngineError> {
        let mut c = self.cfg.clone();
        let previous = *field(&mut c);
        *field(&mut c) = value;
        c.validate()?;
        self.cfg = c;
        let now = self.clock.now();
        let previous_name = format!("previous_{name}");
        let mut fields: Vec<(&str, &dyn std::fmt::Display)> = vec![("event", &event), (name, &value), (&previous_name, &previous)];
        fields.extend_from_slice(extra);
        self.log.write(now, Level::Warn, message, &fields);
        Ok(now)
    }

    /// Deletes cache files older than `retention_days` (by creation time) and temp files
    /// left by interrupted writes. With `dry_run`, only reports what it would do.
    pub fn cleanup(&mut self, dry_run: bool) -> CleanupReport {
        let now = self.clock.now();
        self.housekeeping(now);
        let cutoff = now - Duration::milliseconds((self.cfg.retention_days * 86_400_000.0) as i64);
        let mut old: Vec<(NaiveDateTime, String, u64)> = self
            .index
            .entries()
            .filter(|e| e.state == EntryState::Cached && e.created < cutoff)
            .map(|e| (e.created, e.id.clone(), e.bytes))
            .collect();
        old.sort();
        let mut report = CleanupReport {
            dry_run,
            retention_days: self.cfg.retention_days,
            ..Default::default()
        };
        for (_, id, bytes) in &old {
            report.removed_files += 1;
            report.freed_bytes += if dry_run { *bytes } else { self.retire(id, EntryState::EvictedRetention, now) };
        }
        if !dry_run {
            report.removed_temp_files = self.remove_stale_temps(now, Some(Duration::hours(1)));
        }
        let (files, bytes) = self.cached_totals();
        report.remaining_files = files - if dry_run { report.removed_files } else { 0 };
        report.remaining_bytes = bytes - if dry_run { report.freed_bytes } else { 0 };
        self.log.write(
            now,
            Level::Info,
            if dry_run { "Cache cleanup dry run" } else { "Cache cleanup finished" },
            &[
                ("event", &"cleanup"),
                ("dry_run", &dry_run),
                ("retention_days", &report.retention_days),
                ("removed_files", &report.removed_files),
                ("freed_bytes", &report.freed_bytes),
                ("remaining_files", &report.remaining_files),
                ("remaining_bytes", &report.remaining_bytes),
            ],
        );
        if !dry_run {
            self.flush_now(now);
        }
        report
    }

    /// The runbook's emergency cache warming: computes and stores every (symbol, feature
    /// set) for the range that is not cached yet. Warm-ups are not requests: they log
    /// `warm_fill` lines, not `Cache MISS`.
    pub fn warm(
        &mut self,
        symbols: &[String],
        feature_sets: &[String],
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<WarmReport, EngineError> {
        let now = self.clock.now();
        self.housekeeping(now);
        if end <= start {
            return Err(EngineError::BadRequest(format!(
                "warm range ends ({}) before it starts ({})",
                fmt_ts(end),
                fmt_ts(start)
            )));
        }
        for fs in feature_sets {
            self.features.get(fs)?;
        }
        let mut report = WarmReport::default();
        for sym in symbols {
            for fs in feature_sets {
                report.requested += 1;
                let started = Instant::now();
                let key = self.key_for(&FeatureRequest::new(sym, fs, start, end))?;
                let id = key.id();
                let cached = self.index.cached(&id).is_some_and(|e| e.path.is_file());
                if cached {
                    report.already_cached += 1;
                    continue;
                }
                if self.mode != Mode::Available {
                    report.failed += 1;
                    continue;
                }
                self.supersede(&key, &id, now);
                if self.symbols.insert(sym.clone()) {
                    self.new_symbols.push((sym.clone(), now));
                }
                let (outcome, bytes, n) = match self.fill(&key, &id, now) {
                    Ok((b, true, bytes)) => {
                        report.stored += 1;
                        ("stored", bytes, cells(&b))
                    }
                    Ok((b, false, _)) => {
                        report.failed += 1;
                        ("write_failed", 0, cells(&b))
                    }
                    Err(_) => {
                        report.failed += 1;
                        ("compute_failed", 0, 0)
                    }
                };
                let secs = self.latency_of(started, Work { hit: false, bytes, cells: n });
                let latency_us = (secs * 1e6).round() as u64;
                self.log.write(
                    now,
                    Level::Info,
                    &format!("Cache warm-up filled {}", quote(sym)),
                    &[
                        ("event", &"warm_fill"),
                        ("symbol", sym),
                        ("feature_set", fs),
                        ("key", &id),
                        ("slot", &key.slot()),
                        ("config", &key.config_hash),
                        ("data_version", &key.data_version),
                        ("bytes", &bytes),
                        ("latency_us", &latency_us),
                        ("outcome", &outcome),
                    ],
                );
            }
        }
        self.log.write(
            now,
            Level::Info,
            "Cache warm-up finished",
            &[
                ("event", &"warm"),
                ("symbols", &symbols.len()),
                ("feature_sets", &feature_sets.join(",")),
                ("start", &fmt_ts(start)),
                ("end", &fmt_ts(end)),
                ("requested", &report.requested),
                ("already_cached", &report.already_cached),
                ("stored", &report.stored),
                ("failed", &report.failed),
            ],
        );
        self.flush_now(now);
        Ok(report)
    }

    // ---- manifest availability and persistence --------------------------------------------

    /// Per-operation upkeep: notice a manifest lock taken or released by another process,
    /// and write the manifest when a batch is due.
    fn housekeeping(&mut self, now: NaiveDateTime) {
        let due = match self.last_probe {
            None => true,
            Some(t) => (now - t).num_milliseconds() as f64 >= self.cfg.manifest_probe_interval_s * 1000.0,
        };
        if due {
            self.last_probe = Some(now);
            self.check_manifest(now);
        }
        self.maybe_flush(now);
    }

    /// Probes the manifest lock now: enters or leaves uncached mode.
    pub fn check_manifest(&mut self, now: NaiveDateTime) {
        match (self.manifest.probe(), &self.mode) {
            (LockStatus::Free, Mode::Unavailable { since, .. }) => {
                let since = *since;
                if !self.loaded {
                    if let Err(e) = self.load_manifest(now) {
                        self.log.write(
                            now,
                            Level::Error,
                            "Manifest still unusable",
                            &[("event", &"manifest_error"), ("error", &e)],
                        );
                        return;
                    }
                    if !self.loaded {
                        return;
                    }
                }
                self.mode = Mode::Available;
                self.metrics.set_manifest_available(true);
                let down = (now - since).num_milliseconds() as f64 / 1000.0;
                self.log.write(
                    now,
                    Level::Warn,
                    "Manifest available again; cache re-enabled",
                    &[("event", &"manifest_available"), ("path", &self.manifest.path().display()), ("unavailable_s", &down)],
                );
                self.flush_now(now);
            }
            (LockStatus::HeldBy { .. }, Mode::Available) => self.enter_unavailable(now, None),
            _ => {}
        }
    }

    /// Switches to uncached mode, naming the lock holder: from the kernel's lock table when
    /// it knows, else from DuckDB's error text.
    fn enter_unavailable(&mut self, now: NaiveDateTime, reported: Option<String>) {
        if matches!(self.mode, Mode::Unavailable { .. }) {
            return;
        }
        let (holder, pid) = match self.manifest.probe() {
            held @ LockStatus::HeldBy { pid, .. } => (held.describe(), pid.to_string()),
            LockStatus::Free => (reported.unwrap_or_else(|| "unknown process".into()), String::new()),
        };
        self.log.write(
            now,
            Level::Error,
            &format!(
                "Manifest {} is locked by another process; running UNCACHED: every request will be recomputed",
                self.manifest.path().display()
            ),
            &[
                ("event", &"manifest_unavailable"),
                ("path", &self.manifest.path().display()),
                ("holder", &holder),
                ("pid", &pid),
            ],
        );
        if self.replayed {
            eprintln!(
                "cachescope: simulated manifest outage (the trace's lock_manifest): a helper process holds {}; the replayed engine runs UNCACHED until unlock_manifest, as a real one would",
                self.manifest.path().display()
            );
        } else {
            eprintln!(
                "cachescope: WARNING: manifest {} is locked by {holder}; the feature store runs UNCACHED until it is released",
                self.manifest.path().display()
            );
        }
        self.metrics.set_manifest_available(false);
        self.mode = Mode::Unavailable { since: now, holder };
    }

    fn maybe_flush(&mut self, now: NaiveDateTime) {
        if self.dirty.is_empty() && self.new_symbols.is_empty() {
            return;
        }
        let by_count = self.dirty.len() >= self.cfg.manifest_flush_every;
        let by_time = (now - self.last_flush).num_milliseconds() as f64 >= self.cfg.manifest_flush_interval_s * 1000.0;
        if by_count || by_time {
            self.flush_now(now);
        }
    }

    /// Writes pending manifest changes now (no-op while the manifest is unavailable).
    fn flush_now(&mut self, now: NaiveDateTime) {
        if self.mode != Mode::Available || !self.loaded {
            return;
        }
        self.last_flush = now;
        if self.dirty.is_empty() && self.new_symbols.is_empty() {
            return;
        }
        let mut ids: Vec<&String> = self.dirty.iter().collect();
        ids.sort();
        let batch: Vec<&Entry> = ids.iter().filter_map(|id| self.index.get(id)).collect();
        match self.manifest.write(&batch, &self.new_symbols) {
            Ok(()) => {
                self.dirty.clear();
                self.new_symbols.clear();
            }
            Err(ManifestError::Locked { holder, .. }) => self.enter_unavailable(now, Some(holder)),
            Err(e) => {
                self.log.write(
                    now,
                    Level::Error,
                    "Manifest write failed; changes kept in memory and retried",
                    &[("event", &"manifest_error"), ("path", &self.manifest.path().display()), ("error", &e)],
                );
            }
        }
    }

    /// Writes pending manifest changes and the log.
    pub fn flush(&mut self) {
        let now = self.clock.now();
        self.flush_now(now);
        self.log.flush();
    }

    /// Flushes everything and logs the shutdown.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let now = self.clock.now();
        self.flush_now(now);
        let (files, bytes) = self.cached_totals();
        self.log.write(
            now,
            Level::Info,
            "FeatureStore stopped",
            &[
                ("event", &"shutdown"),
                ("cached_files", &files),
                ("cached_bytes", &bytes),
                ("pending_manifest_changes", &self.dirty.len()),
            ],
        );
        self.log.flush();
    }

    // ---- introspection ----------------------------------------------------------------------

    fn cached_totals(&self) -> (u64, u64) {
        self.index.cached_totals()
    }

    fn publish_gauges(&self) {
        let (files, bytes) = self.cached_totals();
        self.metrics.set_cache(files, bytes);
        self.metrics.set_manifest_available(self.mode == Mode::Available);
    }

    /// The path of the cached file for `req` at the current versions, if cached.
    pub fn cached_path(&self, req: &FeatureRequest) -> Option<PathBuf> {
        let id = self.key_for(req).ok()?.id();
        self.index.cached(&id).map(|e| e.path.clone())
    }

    /// The cache key `req` maps to now.
    pub fn key(&self, req: &FeatureRequest) -> Result<CacheKey, EngineError> {
        self.key_for(req)
    }

    pub fn stats(&self) -> StoreStats {
        let mut by_state = BTreeMap::new();
        for e in self.index.entries() {
            *by_state.entry(e.state.as_str().to_string()).or_insert(0) += 1;
        }
        let (files, bytes) = self.cached_totals();
        StoreStats {
            cached_files: files,
            cached_bytes: bytes,
            max_bytes: self.cfg.max_cache_bytes(),
            remembered_keys: self.index.len() as u64,
            symbols: self.symbols.len() as u64,
            manifest_available: self.mode == Mode::Available,
            by_state,
        }
    }

    /// See [`EventLog::redact`].
    pub fn redact_log(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.log.redact(from, to);
    }

    /// See [`EventLog::redact_field`].
    pub fn redact_log_field(&mut self, field: &str, from: impl Into<String>, to: impl Into<String>) {
        self.log.redact_field(field, from, to);
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn feature_sets(&self) -> &FeatureRegistry {
        &self.features
    }

    pub fn faults(&self) -> &Arc<DiskFaults> {
        &self.faults
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether the engine currently runs with its cache.
    pub fn manifest_available(&self) -> bool {
        self.mode == Mode::Available
    }
}

impl Drop for FeatureStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}
