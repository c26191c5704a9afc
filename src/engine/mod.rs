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

mod operations;
mod persistence;
mod recovery;
mod request;
mod retire;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use chrono::NaiveDateTime;

pub use cachefile::DiskFaults;
pub use clock::{Clock, SystemClock, VirtualClock};
pub use config::{Config, ConfigError};
pub use eventlog::{EventLog, Level};
pub use features::{FeatureRegistry, FeatureSet, Params};
pub use key::{CacheKey, FeatureRequest};
pub use manifest::{EntryState, LockStatus, Manifest};
pub use market_data::{MarketData, ParquetDirMarketData, SyntheticMarketData};
pub use metrics::{Metrics, MetricsExporter};
pub use crate::vocab::MissReason;

use features::{ComputeError, FeatureConfigError};
use index::Index;
use manifest::ManifestError;
use market_data::MarketDataError;

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

/// Whether the manifest can be used.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mode {
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

    // ---- introspection ----------------------------------------------------------------------

    pub(super) fn cached_totals(&self) -> (u64, u64) {
        self.index.cached_totals()
    }

    pub(super) fn publish_gauges(&self) {
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
    pub fn redact_log_field(&mut self, field: crate::vocab::Field, from: impl Into<String>, to: impl Into<String>) {
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
