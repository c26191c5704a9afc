//! Trace replay: drives the real engine from a CSV trace (`docs/trace-format.md`) on a
//! virtual clock, so a trading day replays in seconds and the log's timestamps are the
//! trace's. Faults are injected at the boundary, so the engine's real handling runs: the
//! write path gets ENOSPC from the file layer, computations run under the lowered memory
//! budget, the manifest lock is held by a real second process, files are really deleted.
//! The whole trace is validated before anything is applied.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::engine::clock::{fmt_ts, parse_ts};
use crate::engine::features::{parse_params, FeatureRegistry, Params};
use crate::engine::market_data::MAX_BARS;
use crate::engine::Clock;
use crate::engine::{
    Config, DiskFaults, EngineError, EventLog, FeatureRequest, FeatureStore, Metrics, MetricsExporter,
    LatencyMode, MissReason, Outcome, SyntheticMarketData, VirtualClock,
};

/// The trace's columns, in order.
pub const COLUMNS: [&str; 7] = ["ts", "op", "symbol", "feature_set", "start", "end", "value"];

/// Failure of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}:{line}: {message}")]
    Row {
        path: String,
        line: u64,
        message: String,
    },
    #[error("cannot read trace {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {what} {path}: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: the engine refused the row: {source}")]
    Engine {
        path: String,
        line: u64,
        source: EngineError,
    },
    #[error(transparent)]
    Open(#[from] EngineError),
    #[error(transparent)]
    Exporter(#[from] crate::engine::metrics::ExporterError),
    #[error("cannot hold the manifest lock with a helper process ({program}): {source}")]
    LockHelper { program: String, source: crate::BoxError },
}

/// One operation of a trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Request(FeatureRequest),
    MarketDataUpdate { symbol: String },
    ConfigChange { feature_set: String, params: Params },
    SetMaxCacheSizeGb(f64),
    Cleanup { retention_days: Option<f64> },
    Warm {
        symbols: Vec<String>,
        feature_sets: Vec<String>,
        start: NaiveDateTime,
        end: NaiveDateTime,
    },
    DiskFullOn,
    DiskFullOff,
    MemoryLimitMb(f64),
    LockManifest,
    UnlockManifest,
    DeleteFile(FeatureRequest),
    /// The engine process stops and a new one starts on the same cache, manifest and log,
    /// with the configuration as changed so far; the market-data versions carry over unless
    /// `reset_market_data` (an in-process source starting again at v0).
    Restart { reset_market_data: bool },
}

/// A parsed row with its line number in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub ts: NaiveDateTime,
    pub op: Op,
}

/// A validated trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub path: String,
    pub rows: Vec<Row>,
}

impl Trace {
    /// Reads and validates a trace file.
    pub fn from_path(path: &Path) -> Result<Trace, ReplayError> {
        let f = std::fs::File::open(path).map_err(|source| ReplayError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Trace::parse(&path.display().to_string(), f)
    }

    /// Parses and validates a trace: every row, the column header, timestamps that never go
    /// back, feature sets that exist, parameters they accept. The first problem is reported
    /// with its line number.
    pub fn parse(name: &str, input: impl Read) -> Result<Trace, ReplayError> {
        let bad = |line: u64, message: String| ReplayError::Row {
            path: name.to_string(),
            line,
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        let got: Vec<&str> = headers.iter().collect();
        if got != COLUMNS {
            return Err(bad(1, format!("header must be `{}`, found `{}`", COLUMNS.join(","), got.join(","))));
        }
        let mut registry = FeatureRegistry::with_builtins(&BTreeMap::new()).expect("built-ins are valid");
        let mut rows = Vec::new();
        let mut last: Option<NaiveDateTime> = None;
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad(line, format!("malformed CSV: {e}"))
            })?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            let field = |i: usize| rec.get(i).unwrap_or("");
            let ts_text = field(0);
            let ts = parse_ts(ts_text)
                .ok_or_else(|| bad(line, format!("`ts` = `{ts_text}` is not an RFC 3339 UTC time")))?;
            if let Some(prev) = last {
                if ts < prev {
                    return Err(bad(line, format!("`ts` {} goes back in time (previous row: {})", fmt_ts(ts), fmt_ts(prev))));
                }
            }
            last = Some(ts);
            let op = parse_op(&rec, &mut registry).map_err(|m| bad(line, m))?;
            rows.push(Row { line, ts, op });
        }
        Ok(Trace {
            path: name.to_string(),
            rows,
        })
    }
}

fn parse_op(rec: &csv::StringRecord, registry: &mut FeatureRegistry) -> Result<Op, String> {
    let get = |i: usize| rec.get(i).unwrap_or("");
    let need = |i: usize| -> Result<&str, String> {
        let v = get(i);
        if v.is_empty() {
            Err(format!("op `{}` needs `{}`", get(1), COLUMNS[i]))
        } else {
            Ok(v)
        }
    };
    let time = |i: usize| -> Result<NaiveDateTime, String> {
        let v = need(i)?;
        parse_ts(v).ok_or_else(|| format!("`{}` = `{v}` is not an RFC 3339 UTC time", COLUMNS[i]))
    };
    let number = |pred: fn(f64) -> bool, what: &str| -> Result<f64, String> {
        let v = need(6)?;
        let x: f64 = v.parse().map_err(|_| format!("`value` = `{v}` is not a number"))?;
        if x.is_finite() && pred(x) {
            Ok(x)
        } else {
            Err(format!("`value` = `{v}` must be {what}"))
        }
    };
    let range = |registry: &FeatureRegistry, sets: &[String]| -> Result<(NaiveDateTime, NaiveDateTime), String> {
        let (s, e) = (time(4)?, time(5)?);
        if e <= s {
            return Err(format!("`end` {} is not after `start` {}", fmt_ts(e), fmt_ts(s)));
        }
        if (e - s).num_minutes() > MAX_BARS {
            return Err(format!("range {} .. {} is longer than {MAX_BARS} minutes", fmt_ts(s), fmt_ts(e)));
        }
        for fs in sets {
            registry.get(fs).map_err(|e| e.to_string())?;
        }
        Ok((s, e))
    };
    let request = |registry: &FeatureRegistry| -> Result<FeatureRequest, String> {
        let (sym, fs) = (need(2)?, need(3)?);
        let (s, e) = range(registry, &[fs.to_string()])?;
        Ok(FeatureRequest::new(sym, fs, s, e))
    };
    let list = |i: usize| -> Result<Vec<String>, String> {
        Ok(need(i)?
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    };
    Ok(match get(1) {
        "request" => Op::Request(request(registry)?),
        "delete_file" => Op::DeleteFile(request(registry)?),
        "market_data_update" => Op::MarketDataUpdate {
            symbol: need(2)?.to_string(),
        },
        "config_change" => {
            let fs = need(3)?.to_string();
            let params = parse_params(get(6)).map_err(|m| format!("`value`: {m}"))?;
            registry.configure(&fs, &params).map_err(|e| e.to_string())?;
            Op::ConfigChange { feature_set: fs, params }
        }
        "set_max_cache_size_gb" => Op::SetMaxCacheSizeGb(number(|x| x > 0.0, "a positive number of GB")?),
        "memory_limit_mb" => Op::MemoryLimitMb(number(|x| x > 0.0, "a positive number of MB")?),
        "cleanup" => Op::Cleanup {
            retention_days: if get(6).is_empty() {
                None
            } else {
                Some(number(|x| x > 0.0, "a positive number of days")?)
            },
        },
        "warm" => {
            let symbols = list(2)?;
            let feature_sets = list(3)?;
            let (start, end) = range(registry, &feature_sets)?;
            Op::Warm {
                symbols,
                feature_sets,
                start,
                end,
            }
        }
        "restart" => Op::Restart {
            reset_market_data: match get(6) {
                "" | "keep_market_data" => false,
                "reset_market_data" => true,
                v => return Err(format!("`value` = `{v}`: restart takes keep_market_data (the default) or reset_market_data")),
            },
        },
        "disk_full_on" => Op::DiskFullOn,
        "disk_full_off" => Op::DiskFullOff,
        "lock_manifest" => Op::LockManifest,
        "unlock_manifest" => Op::UnlockManifest,
        "" => return Err("`op` is empty".into()),
        other => {
            return Err(format!(
                "unknown op `{other}` (expected request, market_data_update, config_change, set_max_cache_size_gb, cleanup, warm, disk_full_on, disk_full_off, memory_limit_mb, lock_manifest, unlock_manifest, delete_file, restart)"
            ))
        }
    })
}

/// A second process holding the manifest's DuckDB lock (the real thing: another process
/// with the database open read-write).
pub struct LockHolder {
    child: Child,
}

impl LockHolder {
    /// Starts `program __hold-manifest-lock PATH` and waits until it holds the lock.
    pub fn start(program: &Path, manifest: &Path) -> Result<LockHolder, ReplayError> {
        let fail = |source: crate::BoxError| ReplayError::LockHelper {
            program: program.display().to_string(),
            source,
        };
        let mut child = Command::new(program)
            .arg("__hold-manifest-lock")
            .arg(manifest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| fail(e.into()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout).read_line(&mut line).map_err(|e| fail(e.into()))?;
        if line.trim() != "locked" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("helper did not take the lock (said `{}`)", line.trim()).into()));
        }
        Ok(LockHolder { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Releases the lock: closes the helper's stdin and waits for it to exit.
    pub fn release(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The helper's side: opens the manifest read-write, says `locked`, and holds it until its
/// stdin closes.
pub fn hold_manifest_lock(manifest: &Path) -> Result<(), String> {
    let conn = duckdb::Connection::open(manifest).map_err(|e| e.to_string())?;
    println!("locked");
    use std::io::Write;
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(conn);
    Ok(())
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub config: Config,
    /// The engine log to write (truncated first).
    pub log: PathBuf,
    /// Seed of the synthetic market data.
    pub seed: u64,
    /// Program run as the lock-holding second process (normally the `cachescope` binary).
    pub lock_helper: PathBuf,
    /// Where to write the final metrics in Prometheus text format.
    pub metrics_out: Option<PathBuf>,
    /// Serve `/metrics` here while replaying.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Reproducible output: modelled latencies, the cache directory logged as
    /// [`SIM_CACHE_DIR`], the lock helper as `cachescope` with PID [`SIM_HELPER_PID`].
    pub deterministic: bool,
}

/// How a deterministic replay names its cache directory in the log.
pub const SIM_CACHE_DIR: &str = "/mnt/feature_cache";
/// How a deterministic replay names the lock helper's PID in the log.
pub const SIM_HELPER_PID: &str = "4242";

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplaySummary {
    pub trace: String,
    pub log: String,
    pub cache_dir: String,
    pub rows: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub hit_ratio: Option<f64>,
    pub misses_by_reason: BTreeMap<String, u64>,
    pub failed_requests: u64,
    pub invalidated: u64,
    pub files_deleted: u64,
    pub cleanup_removed_files: u64,
    pub warmed: u64,
    pub restarts: u64,
    pub cached_files_at_end: u64,
    pub cached_bytes_at_end: u64,
}

/// Replays `trace` through a fresh engine built from `opts`.
pub fn replay(trace: &Trace, opts: &ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let start = trace
        .rows
        .first()
        .map(|r| r.ts)
        .unwrap_or_else(|| chrono::Utc::now().naive_utc());
    let clock = Arc::new(VirtualClock::new(start));
    let mut source = Arc::new(SyntheticMarketData::new(opts.seed));
    let faults = Arc::new(DiskFaults::default());
    let metrics = Metrics::new();
    let _exporter = match opts.metrics_addr {
        Some(addr) => Some(MetricsExporter::start(metrics.clone(), addr)?),
        None => None,
    };
    // The configuration as changed so far: what a restarted engine reads (as if every
    // change had been written to cachescope.toml).
    let mut config = opts.config.clone();
    let open_store = |config: &Config, source: &Arc<SyntheticMarketData>, append: bool| -> Result<FeatureStore, ReplayError> {
        let opened = if append { EventLog::append_to(&opts.log, false) } else { EventLog::create(&opts.log, false) };
        let mut log = opened.map_err(|source| ReplayError::Write {
            what: "log",
            path: opts.log.clone(),
            source,
        })?;
        if opts.deterministic {
            log.redact(opts.config.cache_dir.display().to_string(), SIM_CACHE_DIR);
            if let Some(dir) = opts.config.manifest_path.parent() {
                if dir != opts.config.cache_dir {
                    log.redact(dir.display().to_string(), SIM_CACHE_DIR);
                }
            }
            log.redact(opts.lock_helper.display().to_string(), "cachescope");
        }
        Ok(FeatureStore::builder(config.clone())
            .metrics(metrics.clone())
            .clock(clock.clone())
            .market_data(source.clone())
            .faults(faults.clone())
            .latency(if opts.deterministic { LatencyMode::Modelled } else { LatencyMode::Measured })
            .replayed(true)
            .log(log)
            .open()?)
    };
    let mut store = open_store(&config, &source, false)?;
    let mut sum = ReplaySummary {
        trace: trace.path.clone(),
        log: opts.log.display().to_string(),
        cache_dir: opts.config.cache_dir.display().to_string(),
        rows: trace.rows.len() as u64,
        first_ts: trace.rows.first().map(|r| fmt_ts(r.ts)),
        last_ts: trace.rows.last().map(|r| fmt_ts(r.ts)),
        ..Default::default()
    };
    for r in MissReason::ALL {
        sum.misses_by_reason.insert(r.as_str().to_string(), 0);
    }
    let mut holder: Option<LockHolder> = None;
    for row in &trace.rows {
        clock.set(row.ts);
        let engine = |source: EngineError| ReplayError::Engine {
            path: trace.path.clone(),
            line: row.line,
            source,
        };
        match &row.op {
            Op::Request(req) => {
                sum.requests += 1;
                match store.get_or_compute(req) {
                    Ok(f) => match f.outcome {
                        Outcome::Hit => sum.hits += 1,
                        Outcome::Miss { reason, .. } => {
                            sum.misses += 1;
                            *sum.misses_by_reason.entry(reason.as_str().into()).or_default() += 1;
                        }
                    },
                    Err(EngineError::Compute { reason, .. }) => {
                        sum.misses += 1;
                        sum.failed_requests += 1;
                        if let Some(r) = reason {
                            *sum.misses_by_reason.entry(r.as_str().into()).or_default() += 1;
                        }
                    }
                    Err(e) => return Err(engine(e)),
                }
            }
            Op::Restart { reset_market_data } => {
                store.close();
                if *reset_market_data {
                    source = Arc::new(SyntheticMarketData::new(opts.seed));
                }
                store = open_store(&config, &source, true)?;
                sum.restarts += 1;
            }
            Op::MarketDataUpdate { symbol } => {
                source.publish_correction(symbol);
                sum.invalidated += store.market_data_updated(symbol).map_err(engine)?;
            }
            Op::ConfigChange { feature_set, params } => {
                config.feature_sets.entry(feature_set.clone()).or_default().extend(params.clone());
                sum.invalidated += store.set_feature_config(feature_set, params).map_err(engine)?.1;
            }
            Op::SetMaxCacheSizeGb(gb) => {
                config.max_cache_size_gb = *gb;
                store.set_max_cache_size_gb(*gb).map_err(engine)?
            }
            Op::Cleanup { retention_days } => {
                if let Some(d) = retention_days {
                    config.retention_days = *d;
                    store.set_retention_days(*d).map_err(engine)?;
                }
                sum.cleanup_removed_files += store.cleanup(false).removed_files;
            }
            Op::Warm {
                symbols,
                feature_sets,
                start,
                end,
            } => {
                sum.warmed += store.warm(symbols, feature_sets, *start, *end).map_err(engine)?.stored;
            }
            Op::DiskFullOn => faults.set_disk_full(true),
            Op::DiskFullOff => faults.set_disk_full(false),
            Op::MemoryLimitMb(mb) => {
                config.memory_limit_mb = *mb;
                store.set_memory_limit_mb(*mb).map_err(engine)?
            }
            Op::LockManifest => {
                if holder.is_none() {
                    store.flush();
                    let h = LockHolder::start(&opts.lock_helper, &opts.config.manifest_path)?;
                    if opts.deterministic {
                        store.redact_log(format!("PID {} (", h.pid()), format!("PID {SIM_HELPER_PID} ("));
                        store.redact_log_field(crate::vocab::Field::Pid, h.pid().to_string(), SIM_HELPER_PID);
                    }
                    holder = Some(h);
                    store.check_manifest(row.ts);
                }
            }
            Op::UnlockManifest => {
                if let Some(h) = holder.take() {
                    h.release();
                    store.check_manifest(row.ts);
                }
            }
            Op::DeleteFile(req) => {
                if let Some(p) = store.cached_path(req) {
                    if std::fs::remove_file(&p).is_ok() {
                        sum.files_deleted += 1;
                    }
                }
            }
        }
    }
    if let Some(h) = holder.take() {
        h.release();
        store.check_manifest(clock.now());
    }
    sum.hit_ratio = (sum.requests > 0).then(|| sum.hits as f64 / sum.requests as f64);
    let stats = store.stats();
    sum.cached_files_at_end = stats.cached_files;
    sum.cached_bytes_at_end = stats.cached_bytes;
    let metrics = store.metrics().clone();
    store.close();
    if let Some(p) = &opts.metrics_out {
        std::fs::write(p, metrics.encode()).map_err(|source| ReplayError::Write {
            what: "metrics",
            path: p.clone(),
            source,
        })?;
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Trace, ReplayError> {
        Trace::parse("t.csv", format!("ts,op,symbol,feature_set,start,end,value\n{body}").as_bytes())
    }

    #[test]
    fn every_op_parses() {
        let t = parse(
            "2026-11-26T09:30:00Z,request,AAPL,returns,2026-11-26T09:30:00Z,2026-11-26T16:00:00Z,\n\
             2026-11-26T09:30:00.5Z,market_data_update,AAPL,,,,\n\
             2026-11-26T09:31:00Z,config_change,,volatility,,,window=30\n\
             2026-11-26T09:31:00Z,set_max_cache_size_gb,,,,,0.001\n\
             2026-11-26T09:31:00Z,cleanup,,,,,0.5\n\
             2026-11-26T09:31:00Z,cleanup,,,,,\n\
             2026-11-26T09:31:00Z,warm,AAPL;MSFT,returns;vwap,2026-11-26T09:30:00Z,2026-11-26T16:00:00Z,\n\
             2026-11-26T09:31:00Z,disk_full_on,,,,,\n\
             2026-11-26T09:31:00Z,disk_full_off,,,,,\n\
             2026-11-26T09:31:00Z,memory_limit_mb,,,,,0.05\n\
             2026-11-26T09:31:00Z,lock_manifest,,,,,\n\
             2026-11-26T09:31:00Z,unlock_manifest,,,,,\n\
             2026-11-26T09:31:00Z,delete_file,AAPL,returns,2026-11-26T09:30:00Z,2026-11-26T16:00:00Z,\n",
        )
        .unwrap();
        assert_eq!(t.rows.len(), 13);
        assert_eq!(t.rows[1].line, 3);
        assert!(matches!(&t.rows[6].op, Op::Warm { symbols, feature_sets, .. } if symbols.len() == 2 && feature_sets.len() == 2));
        assert_eq!(t.rows[4].op, Op::Cleanup { retention_days: Some(0.5) });
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let cases = [
            ("2026-11-26T09:30:00Z,request,AAPL,returns,2026-11-26T09:30:00Z,,\n", "needs `end`"),
            ("yesterday,request,AAPL,returns,2026-11-26T09:30:00Z,2026-11-26T16:00:00Z,\n", "`ts`"),
            ("2026-11-26T09:30:00Z,request,AAPL,nope,2026-11-26T09:30:00Z,2026-11-26T16:00:00Z,\n", "unknown feature set `nope`"),
            ("2026-11-26T09:30:00Z,explode,,,,,\n", "unknown op `explode`"),
            ("2026-11-26T09:30:00Z,config_change,,volatility,,,span=3\n", "unknown parameter `span`"),
            ("2026-11-26T09:30:00Z,set_max_cache_size_gb,,,,,-2\n", "positive"),
            ("2026-11-26T09:30:00Z,request,AAPL,returns,2026-11-26T16:00:00Z,2026-11-26T09:30:00Z,\n", "is not after"),
            ("2026-11-26T09:30:00Z,request,AAPL\n", "malformed CSV"),
        ];
        for (row, want) in cases {
            let body = format!("2026-11-26T09:29:00Z,disk_full_off,,,,,\n{row}");
            let e = parse(&body).unwrap_err().to_string();
            assert!(e.starts_with("t.csv:3: "), "{row}: {e}");
            assert!(e.contains(want), "{row}: {e}");
        }
    }

    #[test]
    fn time_must_not_go_back_and_header_must_match() {
        let e = parse("2026-11-26T09:31:00Z,disk_full_on,,,,,\n2026-11-26T09:30:00Z,disk_full_off,,,,,\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:3") && e.contains("goes back"), "{e}");
        let e = Trace::parse("x", "time,op\n".as_bytes()).unwrap_err().to_string();
        assert!(e.contains("x:1") && e.contains("header"), "{e}");
    }
}
