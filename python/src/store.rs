//! `cachescope.FeatureStore`: the engine behind a mutex. Every call releases the GIL while
//! the engine computes, reads or writes (other Python threads run meanwhile); calls from
//! several threads are served one at a time, as the engine serves them. A Python market-data
//! callable takes the GIL back for its own call only.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::pyarrow::{IntoPyArrow, Table};
use cachescope::engine::{self, Config, EngineError, EventLog, FeatureRequest, MetricsExporter, Outcome};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{to_py, CacheWriteError, ClosedError, ConfigError};
use crate::market::Source;

/// A feature store: the same engine, configuration, cache files, manifest and log lines as
/// `cachescope replay` and `cachescope cache warm`.
#[pyclass(module = "cachescope")]
pub struct FeatureStore {
    engine: Mutex<Option<engine::FeatureStore>>,
    source: Source,
    log_path: Option<PathBuf>,
    exporter: Mutex<Option<MetricsExporter>>,
}

fn json<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

impl FeatureStore {
    fn lock(&self) -> MutexGuard<'_, Option<engine::FeatureStore>> {
        // A panic inside the engine poisons the lock; the state it protects is still whole
        // (the engine never leaves a half-done change behind), so go on.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the engine with the GIL released.
    fn with<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut engine::FeatureStore) -> T + Send) -> PyResult<T> {
        py.detach(|| {
            let mut g = self.lock();
            g.as_mut().map(f)
        })
        .ok_or_else(|| ClosedError::new_err("the feature store is closed"))
    }
}

#[pymethods]
impl FeatureStore {
    /// Opens the feature store.
    ///
    /// - `config`: a `cachescope.toml` (default: `$CACHESCOPE_CONFIG`, else `./cachescope.toml`
    ///   when it exists, else the defaults); environment variables such as
    ///   `FEATURE_CACHE_RETENTION_DAYS` and `CACHESCOPE_CACHE_DIR` apply on top.
    /// - `log`: the engine log to append to (docs/log-format.md; `cachescope tail` reads it);
    ///   default `$CACHESCOPE_LOG`, else standard error.
    /// - `market_data`: `None` (synthetic), a directory of `SYMBOL.parquet` files, or a callable
    ///   `(symbol, start, end) -> pyarrow.Table`.
    /// - `metrics_addr`: serve Prometheus metrics at `http://ADDR/metrics` (`"127.0.0.1:9187"`).
    #[new]
    #[pyo3(signature = (config=None, log=None, market_data=None, metrics_addr=None))]
    fn new(py: Python<'_>, config: Option<PathBuf>, log: Option<PathBuf>, market_data: Option<Bound<'_, PyAny>>, metrics_addr: Option<String>) -> PyResult<Self> {
        let source = Source::from_py(market_data.as_ref())?;
        let log_path = log.or_else(|| std::env::var_os("CACHESCOPE_LOG").map(PathBuf::from));
        let addr = metrics_addr
            .map(|a| a.parse::<std::net::SocketAddr>().map_err(|e| ConfigError::new_err(format!("metrics_addr `{a}`: {e} (like 127.0.0.1:9187)"))))
            .transpose()?;
        let market = source.as_market_data();
        let lp = log_path.clone();
        let opened = py.detach(move || -> Result<engine::FeatureStore, EngineError> {
            let cfg = Config::load(config.as_deref())?;
            let log = match &lp {
                Some(p) => EventLog::append_to(p, true).map_err(|source| EngineError::Io { what: "opening the engine log", path: p.clone(), source })?,
                None => EventLog::new(Box::new(std::io::stderr()), true),
            };
            engine::FeatureStore::builder(cfg).log(log).market_data(market).open()
        });
        let store = opened.map_err(to_py)?;
        let exporter = match addr {
            Some(a) => Some(MetricsExporter::start(store.metrics().clone(), a).map_err(|e| ConfigError::new_err(e.to_string()))?),
            None => None,
        };
        Ok(FeatureStore { engine: Mutex::new(Some(store)), source, log_path, exporter: Mutex::new(exporter) })
    }

    /// The features of `symbol` for `[start, end)` as a `pyarrow.Table` (the Arrow buffers
    /// handed over without a copy). `start`/`end`: `datetime` (naive means UTC) or RFC 3339.
    /// A result that could not be written to the cache is returned with a `CacheWriteError`
    /// warning; while the manifest is locked by another process results are served uncached.
    fn get_or_compute<'py>(&self, py: Python<'py>, symbol: &str, feature_set: &str, start: &Bound<'py, PyAny>, end: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let req = FeatureRequest::new(symbol, feature_set, crate::time::utc("start", start)?, crate::time::utc("end", end)?);
        let (features, write_failed) = self
            .with(py, |e| {
                let r = e.get_or_compute(&req);
                let write_failed = matches!(&r, Ok(f) if matches!(f.outcome, Outcome::Miss { stored: false, .. }) && e.manifest_available());
                r.map(|f| (f, write_failed))
            })?
            .map_err(to_py)?;
        if write_failed {
            PyErr::warn(
                py,
                &py.get_type::<CacheWriteError>(),
                &std::ffi::CString::new(format!("the result for {symbol}/{feature_set} could not be written to the cache and was served uncached (see the engine log)")).unwrap_or_default(),
                1,
            )?;
        }
        let schema = features.batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(arrow::datatypes::Schema::empty()));
        let table = Table::try_new(features.batches, schema).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        table.into_pyarrow(py)
    }

    /// The runbook's emergency cache warming: computes and stores every (symbol, feature set)
    /// of `[start, end)` not cached yet (default: every feature set, the previous New York
    /// session). Returns `{"requested", "already_cached", "stored", "failed"}`.
    #[pyo3(signature = (symbols, feature_sets=None, start=None, end=None))]
    fn warm<'py>(&self, py: Python<'py>, symbols: Vec<String>, feature_sets: Option<Vec<String>>, start: Option<Bound<'py, PyAny>>, end: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let (mut from, mut until) = engine::session::previous(chrono::Utc::now().naive_utc());
        if let Some(s) = &start {
            from = crate::time::utc("start", s)?;
        }
        if let Some(e) = &end {
            until = crate::time::utc("end", e)?;
        }
        let report = self
            .with(py, |e| {
                let sets: Vec<String> = feature_sets.unwrap_or_else(|| e.feature_sets().iter().map(|c| c.set.name().to_string()).collect());
                e.warm(&symbols, &sets, from, until)
            })?
            .map_err(to_py)?;
        json(py, &report)
    }

    /// Retention clean-up: deletes cache files older than `retention_days` (by creation) and
    /// stale temp files; with `dry_run`, only says what it would do.
    #[pyo3(signature = (dry_run=false))]
    fn cleanup<'py>(&self, py: Python<'py>, dry_run: bool) -> PyResult<Bound<'py, PyAny>> {
        let r = self.with(py, |e| e.cleanup(dry_run))?;
        json(py, &r)
    }

    /// Counts: cached files and bytes, capacity, keys by state, whether the manifest is usable.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.with(py, |e| e.stats())?;
        json(py, &s)
    }

    /// A correction of `symbol`'s market data was published: its cached features are
    /// invalidated (the synthetic and Python sources move their version). Returns how many keys.
    fn market_data_update(&self, py: Python<'_>, symbol: &str) -> PyResult<u64> {
        self.source.bump(symbol);
        self.with(py, |e| e.market_data_updated(symbol))?.map_err(to_py)
    }

    /// The feature sets: `{name: {"description", "params", "config_hash"}}`.
    fn feature_sets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let sets = self.with(py, |e| {
            e.feature_sets()
                .iter()
                .map(|c| (c.set.name().to_string(), serde_json::json!({"description": c.set.description(), "params": c.params, "config_hash": c.config_hash})))
                .collect::<serde_json::Map<String, serde_json::Value>>()
        })?;
        json(py, &sets)
    }

    /// The Prometheus metrics (OpenMetrics text), as `/metrics` serves them.
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |e| e.metrics().encode_openmetrics())
    }

    /// The engine's effective configuration (after the file and the environment).
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.with(py, |e| {
            let c = e.config();
            serde_json::json!({
                "cache_dir": c.cache_dir, "manifest_path": c.manifest_path, "max_cache_size_gb": c.max_cache_size_gb,
                "cleanup_threshold": c.cleanup_threshold, "eviction_target": c.eviction_target,
                "retention_days": c.retention_days, "memory_limit_mb": c.memory_limit_mb,
                "compression_level": c.compression_level,
            })
        })?;
        let d = json(py, &c)?;
        if let Some(p) = &self.log_path {
            d.cast::<PyDict>()?.set_item("log", p.display().to_string())?;
        }
        Ok(d)
    }

    /// Writes the manifest's pending changes and the log (also done on close and exit).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |e| e.flush())
    }

    /// Closes the store (pending manifest changes written, `shutdown` logged). Idempotent.
    fn close(&self, py: Python<'_>) {
        let exporter = self.exporter.lock().unwrap_or_else(|e| e.into_inner()).take();
        py.detach(|| {
            drop(exporter);
            if let Some(e) = self.lock().take() {
                e.close();
            }
        });
    }

    /// Test hook: while on, every cache write fails as on a full disk (ENOSPC), inside the
    /// engine's file layer (the engine's own handling runs).
    fn _set_disk_full(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.with(py, |e| e.faults().set_disk_full(on))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        // The GIL is released before the engine's lock is taken, as everywhere: a thread holding
        // that lock may be waiting for the GIL inside a Python market-data callable.
        let dir = py.detach(|| self.lock().as_ref().map(|e| e.config().cache_dir.display().to_string()));
        match dir {
            Some(d) => format!("FeatureStore(cache_dir={d:?}, market_data={:?})", self.source.as_market_data().describe()),
            None => "FeatureStore(closed)".into(),
        }
    }
}
