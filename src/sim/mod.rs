//! Scenario simulator: generates a realistic request trace for a named scenario (a universe
//! of symbols with Zipf popularity, several feature sets, trading hours with bursts at the
//! open and the close), replays it through the real engine (deterministically), and writes
//! the ground truth: which episodes were injected, when, what they touched, and how many of
//! the engine's misses they explain. Same seed, same files, byte for byte.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::engine::clock::fmt_ts;
use crate::ingest::formats::scan_engine;
use crate::engine::Config;
use crate::replay::{self, ReplayError, ReplayOptions, Trace};

/// Failure of a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown scenario `{name}`; known: {}", Scenario::ALL.map(|s| s.name()).join(", "))]
    UnknownScenario { name: String },
    #[error("--scale must be between 0.01 and 100, got {0}")]
    BadScale(f64),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("generated trace was refused (a simulator bug): {0}")]
    Trace(ReplayError),
    #[error(transparent)]
    Replay(#[from] Box<ReplayError>),
}

/// The scenarios, each an episode kind in `scenario.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    Steady,
    NewSymbols,
    InvalidationStorm,
    ConfigChange,
    Thrashing,
    Retention,
    DiskFull,
    MemoryPressure,
    ManifestOutage,
    ExternalDeletion,
    MixedDay,
}

impl Scenario {
    pub const ALL: [Scenario; 11] = [
        Scenario::Steady,
        Scenario::NewSymbols,
        Scenario::InvalidationStorm,
        Scenario::ConfigChange,
        Scenario::Thrashing,
        Scenario::Retention,
        Scenario::DiskFull,
        Scenario::MemoryPressure,
        Scenario::ManifestOutage,
        Scenario::ExternalDeletion,
        Scenario::MixedDay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::NewSymbols => "new_symbols",
            Scenario::InvalidationStorm => "invalidation_storm",
            Scenario::ConfigChange => "config_change",
            Scenario::Thrashing => "thrashing",
            Scenario::Retention => "retention",
            Scenario::DiskFull => "disk_full",
            Scenario::MemoryPressure => "memory_pressure",
            Scenario::ManifestOutage => "manifest_outage",
            Scenario::ExternalDeletion => "external_deletion",
            Scenario::MixedDay => "mixed_day",
        }
    }

    pub fn parse(s: &str) -> Result<Scenario, SimError> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| SimError::UnknownScenario { name: s.to_string() })
    }
}

/// An episode kind: what the engine's misses look like while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeKind {
    NewSymbols,
    InvalidationStorm,
    ConfigChange,
    Thrashing,
    Retention,
    DiskFull,
    MemoryPressure,
    ManifestOutage,
    ExternalDeletion,
}

impl EpisodeKind {
    pub fn name(self) -> &'static str {
        match self {
            EpisodeKind::NewSymbols => "new_symbols",
            EpisodeKind::InvalidationStorm => "invalidation_storm",
            EpisodeKind::ConfigChange => "config_change",
            EpisodeKind::Thrashing => "thrashing",
            EpisodeKind::Retention => "retention",
            EpisodeKind::DiskFull => "disk_full",
            EpisodeKind::MemoryPressure => "memory_pressure",
            EpisodeKind::ManifestOutage => "manifest_outage",
            EpisodeKind::ExternalDeletion => "external_deletion",
        }
    }

    /// The engine reasons of the misses this episode explains.
    pub fn reasons(self) -> &'static [&'static str] {
        match self {
            EpisodeKind::NewSymbols => &["new_symbol", "new_key"],
            EpisodeKind::InvalidationStorm => &["invalidated_data"],
            EpisodeKind::ConfigChange => &["invalidated_config"],
            EpisodeKind::Thrashing => &["evicted_capacity"],
            EpisodeKind::Retention => &["evicted_retention"],
            EpisodeKind::DiskFull => &["write_failed"],
            EpisodeKind::MemoryPressure => &["compute_failed"],
            EpisodeKind::ManifestOutage => &["manifest_unavailable"],
            EpisodeKind::ExternalDeletion => &["missing_file"],
        }
    }

    /// How the runbook sees it: churn to silence, or something to fix.
    pub fn runbook_class(self) -> &'static str {
        match self {
            EpisodeKind::NewSymbols | EpisodeKind::InvalidationStorm | EpisodeKind::ConfigChange => "expected_churn",
            _ => "actionable",
        }
    }
}

/// What an episode touched: planned by the generator, reported in `scenario.json`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Touched {
    /// Symbols it touched (empty: not symbol-specific).
    pub symbols: Vec<String>,
    /// Feature sets it touched (empty: all).
    pub feature_sets: Vec<String>,
    /// Requests whose cache files it touched (`SYMBOL/feature_set/start/end`).
    pub requests: Vec<String>,
}

/// One injected episode, as planned by the generator.
#[derive(Debug, Clone)]
pub struct PlannedEpisode {
    pub kind: EpisodeKind,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub touched: Touched,
}

/// An episode in `scenario.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpisodeTruth {
    pub kind: String,
    /// When the episode starts: the first injected event.
    pub start: String,
    /// When it ends: the later of the last injected event and the time by which 95% of the
    /// misses it explains had happened.
    pub end: String,
    pub injected_start: String,
    pub injected_end: String,
    pub runbook: String,
    pub reasons: Vec<String>,
    /// Misses the engine logged with one of `reasons` (on the touched symbols/sets) from
    /// `start` to 15 minutes after `injected_end`.
    pub misses: u64,
    pub last_miss: Option<String>,
    #[serde(flatten)]
    pub touched: Touched,
}

/// `scenario.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Truth {
    pub scenario: String,
    pub seed: u64,
    pub scale: f64,
    pub trading_day: String,
    pub start: String,
    pub end: String,
    pub universe: usize,
    pub max_cache_size_gb: f64,
    pub requests: u64,
    pub hits: u64,
    pub misses: u64,
    pub hit_ratio: Option<f64>,
    pub misses_by_reason: BTreeMap<String, u64>,
    pub episodes: Vec<EpisodeTruth>,
}

const TRADING_DAY: (i32, u32, u32) = (2026, 11, 24);
/// Feature ranges requested: the previous two sessions (09:30-16:00 New York = 14:30-21:00 UTC).
const RANGES: [((i32, u32, u32), f64); 2] = [((2026, 11, 23), 0.93), ((2026, 11, 20), 0.07)];
const SETS: [(&str, f64, f64); 5] = [
    // name, request share, approximate cache file size in bytes
    ("returns", 0.34, 9_800.0),
    ("volatility", 0.26, 9_000.0),
    ("vwap", 0.20, 9_000.0),
    ("momentum", 0.12, 6_000.0),
    ("multi_horizon", 0.08, 45_000.0),
];
/// Exponent of the symbols' Zipf popularity.
const ZIPF: f64 = 1.25;
const FAMOUS: [&str; 24] = [
    "AAPL", "MSFT", "GOOGL", "TSLA", "AMZN", "NVDA", "META", "JPM", "V", "UNH", "XOM", "JNJ", "WMT", "PG", "MA",
    "HD", "CVX", "BAC", "KO", "PEP", "AVGO", "COST", "MRK", "ABBV",
];

fn session(d: (i32, u32, u32)) -> (NaiveDateTime, NaiveDateTime) {
    crate::engine::session::of(NaiveDate::from_ymd_opt(d.0, d.1, d.2).expect("valid date"))
}

/// A generated trace and its plan.
pub struct Generated {
    pub csv: String,
    pub episodes: Vec<PlannedEpisode>,
    pub universe: usize,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub normal_cache_gb: f64,
}

struct Gen {
    rng: ChaCha8Rng,
    rows: Vec<(NaiveDateTime, u64, String)>,
    seq: u64,
}

impl Gen {
    fn push(&mut self, ts: NaiveDateTime, row: String) {
        self.seq += 1;
        self.rows.push((ts, self.seq, format!("{},{row}", fmt_ts(ts))));
    }
    fn op(&mut self, ts: NaiveDateTime, op: &str, value: &str) {
        self.push(ts, format!("{op},,,,,{value}"));
    }
    fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }
    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda > 30.0 {
            // Normal approximation.
            let (u1, u2) = (self.unit().max(1e-12), self.unit());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
        }
        let l = (-lambda).exp();
        let (mut k, mut p) = (0u64, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

fn pick(cum: &[f64], u: f64) -> usize {
    let total = *cum.last().expect("non-empty");
    cum.partition_point(|c| *c < u * total).min(cum.len() - 1)
}

fn cumulative(w: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    w.map(|x| {
        acc += x;
        acc
    })
    .collect()
}

fn symbols(rng: &mut ChaCha8Rng, n: usize, taken: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut seen = taken.clone();
    for f in FAMOUS {
        if out.len() < n && seen.insert(f.to_string()) {
            out.push(f.to_string());
        }
    }
    while out.len() < n {
        let len = if rng.random::<f64>() < 0.6 { 3 } else { 4 };
        let s: String = (0..len).map(|_| (b'A' + rng.random_range(0..26u8)) as char).collect();
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    out
}

/// Requests per second at `minute` of the session (bursts at the open and the close).
fn profile(minute: f64) -> f64 {
    1.0 + 2.0 * (-minute / 15.0).exp() + 1.5 * (-(390.0 - minute) / 15.0).exp()
}

/// Generates the trace of `scenario`.
pub fn generate(scenario: Scenario, seed: u64, scale: f64) -> Result<Generated, SimError> {
    if !(0.01..=100.0).contains(&scale) || !scale.is_finite() {
        return Err(SimError::BadScale(scale));
    }
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed ^ (scenario as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        rows: Vec::new(),
        seq: 0,
    };
    let open = NaiveDate::from_ymd_opt(TRADING_DAY.0, TRADING_DAY.1, TRADING_DAY.2)
        .expect("valid date")
        .and_hms_opt(14, 30, 0)
        .expect("valid time");
    let minutes = if scenario == Scenario::MixedDay { 390.0 } else { (20.0 * scale).clamp(10.0, 390.0) };
    let rate = 4.0 * scale;
    let end = open + Duration::milliseconds((minutes * 60_000.0) as i64);
    let at = |f: f64| open + Duration::milliseconds((f * minutes * 60_000.0) as i64);
    let n_base = ((60.0 + 12.0 * scale).round() as usize).clamp(60, 600);
    let mut universe = symbols(&mut g.rng, n_base, &BTreeSet::new());
    let ranges: Vec<(String, String)> = RANGES
        .iter()
        .map(|(d, _)| {
            let (s, e) = session(*d);
            (fmt_ts(s), fmt_ts(e))
        })
        .collect();
    let range_cum = cumulative(RANGES.iter().map(|r| r.1));
    let set_cum = cumulative(SETS.iter().map(|s| s.1));
    let size_of: HashMap<&str, f64> = SETS.iter().map(|s| (s.0, s.2)).collect();
    let normal_bytes: f64 = 2.0 * (n_base as f64 * 1.3) * SETS.iter().map(|s| s.2).sum::<f64>() * RANGES.len() as f64;
    let normal_gb = (normal_bytes / 1e9 * 1e6).ceil() / 1e6;

    // Episodes of the scenario: (kind, start fraction, end fraction).
    let plan: Vec<(EpisodeKind, f64, f64)> = match scenario {
        Scenario::Steady => vec![],
        Scenario::NewSymbols => vec![(EpisodeKind::NewSymbols, 0.4, 0.4)],
        Scenario::InvalidationStorm => vec![(EpisodeKind::InvalidationStorm, 0.5, 0.5)],
        Scenario::ConfigChange => vec![(EpisodeKind::ConfigChange, 0.5, 0.5)],
        Scenario::Thrashing => vec![(EpisodeKind::Thrashing, 0.4, 0.7)],
        Scenario::Retention => vec![(EpisodeKind::Retention, 0.45, 0.75)],
        Scenario::DiskFull => vec![(EpisodeKind::DiskFull, 0.45, 0.6)],
        Scenario::MemoryPressure => vec![(EpisodeKind::MemoryPressure, 0.45, 0.6)],
        Scenario::ManifestOutage => vec![(EpisodeKind::ManifestOutage, 0.5, 0.55)],
        Scenario::ExternalDeletion => vec![(EpisodeKind::ExternalDeletion, 0.5, 0.5)],
        Scenario::MixedDay => vec![
            (EpisodeKind::NewSymbols, 0.12, 0.12),
            (EpisodeKind::InvalidationStorm, 0.25, 0.25),
            (EpisodeKind::Thrashing, 0.40, 0.48),
            (EpisodeKind::DiskFull, 0.58, 0.62),
            (EpisodeKind::ConfigChange, 0.70, 0.70),
            (EpisodeKind::ManifestOutage, 0.82, 0.84),
        ],
    };
    let new_symbols_at = plan.iter().find(|p| p.0 == EpisodeKind::NewSymbols).map(|p| at(p.1));
    let newcomers = match new_symbols_at {
        Some(_) => {
            let taken: BTreeSet<String> = universe.iter().cloned().collect();
            // Random tickers (not the famous ones, all taken).
            let n = (n_base as f64 * 0.3).round() as usize;
            let mut v = symbols(&mut g.rng, n + FAMOUS.len(), &taken);
            v.retain(|s| !FAMOUS.contains(&s.as_str()));
            v.truncate(n);
            v
        }
        None => vec![],
    };

    // Requests, second by second, remembering what was requested recently.
    let base_cum = cumulative((0..universe.len()).map(|r| 1.0 / ((r + 1) as f64).powf(ZIPF)));
    let mut full_order = universe.clone();
    for s in &newcomers {
        let pos = g.rng.random_range(0..=full_order.len());
        full_order.insert(pos, s.clone());
    }
    let full_cum = cumulative((0..full_order.len()).map(|r| 1.0 / ((r + 1) as f64).powf(ZIPF)));
    let mut recent: Vec<(NaiveDateTime, String, usize, usize)> = Vec::new();
    let total_s = (minutes * 60.0) as i64;
    for sec in 0..total_s {
        let t = open + Duration::seconds(sec);
        let minute = sec as f64 / 60.0;
        let n = g.poisson(rate * profile(minute));
        let joined = new_symbols_at.is_some_and(|j| t >= j + Duration::seconds(60));
        let mut times: Vec<i64> = (0..n).map(|_| g.rng.random_range(0..1_000_000i64)).collect();
        times.sort();
        for us in times {
            let ts = t + Duration::microseconds(us);
            let (order, cum) = if joined { (&full_order, &full_cum) } else { (&universe, &base_cum) };
            let u = g.unit();
            let sym = order[pick(cum, u)].clone();
            let u = g.unit();
            let set = pick(&set_cum, u);
            let u = g.unit();
            let r = pick(&range_cum, u);
            g.push(ts, format!("request,{sym},{},{},{},", SETS[set].0, ranges[r].0, ranges[r].1));
            recent.push((ts, sym, set, r));
        }
    }

    let working_set = |t: NaiveDateTime, recent: &[(NaiveDateTime, String, usize, usize)]| -> (f64, Vec<(String, usize, usize)>) {
        let mut keys = BTreeSet::new();
        for (ts, s, f, r) in recent.iter().filter(|x| x.0 <= t && x.0 > t - Duration::minutes(10)) {
            let _ = ts;
            keys.insert((s.clone(), *f, *r));
        }
        let bytes = keys.iter().map(|(_, f, _)| size_of[SETS[*f].0]).sum();
        (bytes, keys.into_iter().collect())
    };
    let popular: Vec<String> = universe.iter().take(5).cloned().collect();
    // The pre-open warm-up job (the runbook's cache warming, run daily at 09:00 New York):
    // the last session's features for the whole universe, the one before for the more
    // popular half. What is left cold are the long tail's older ranges.
    let all_sets = SETS.map(|s| s.0).join(";");
    let warm_all = universe.join(";");
    let warm_half = universe[..universe.len() / 2].join(";");
    g.push(open - Duration::minutes(30), format!("warm,{warm_all},{all_sets},{},{},", ranges[0].0, ranges[0].1));
    g.push(open - Duration::minutes(29), format!("warm,{warm_half},{all_sets},{},{},", ranges[1].0, ranges[1].1));

    let mut episodes = Vec::new();
    for (kind, f0, f1) in plan {
        let (s, e) = (at(f0), at(f1));
        let mut ep = PlannedEpisode {
            kind,
            start: s,
            end: e,
            touched: Touched::default(),
        };
        match kind {
            EpisodeKind::NewSymbols => {
                // Symbols join over a minute; each is onboarded with every feature set.
                ep.end = s + Duration::seconds(60);
                for sym in &newcomers {
                    let join = s + Duration::milliseconds(g.rng.random_range(0..60_000));
                    for (set, ..) in SETS {
                        let ts = join + Duration::milliseconds(g.rng.random_range(0..120_000));
                        g.push(ts, format!("request,{sym},{set},{},{},", ranges[0].0, ranges[0].1));
                    }
                }
                ep.touched.symbols = newcomers.clone();
                universe.extend(newcomers.iter().cloned());
            }
            EpisodeKind::InvalidationStorm => {
                ep.end = s + Duration::seconds(60);
                let mut touched: Vec<String> = universe.iter().filter(|_| g.unit() < 0.8).cloned().collect();
                touched.sort();
                for sym in &touched {
                    let ts = s + Duration::milliseconds(g.rng.random_range(0..60_000));
                    g.push(ts, format!("market_data_update,{sym},,,,"));
                }
                ep.touched.symbols = touched;
            }
            EpisodeKind::ConfigChange => {
                g.push(s, "config_change,,volatility,,,window=30".into());
                ep.touched.feature_sets = vec!["volatility".into()];
            }
            EpisodeKind::Thrashing => {
                let (ws, _) = working_set(s, &recent);
                let gb = ((ws * 0.3).max(20_000.0) / 1e9 * 1e9).round() / 1e9;
                g.op(s, "set_max_cache_size_gb", &format!("{gb}"));
                g.op(e, "set_max_cache_size_gb", &format!("{normal_gb}"));
            }
            EpisodeKind::Retention => {
                // Retention cut to 5 minutes; the clean-up timer runs every 2 minutes.
                let mut t = s;
                while t < e {
                    g.op(t, "cleanup", "0.0034722");
                    t += Duration::minutes(2);
                }
                g.op(e, "cleanup", "7");
            }
            EpisodeKind::DiskFull | EpisodeKind::MemoryPressure => {
                let (on, off) = if kind == EpisodeKind::DiskFull {
                    (("disk_full_on", ""), ("disk_full_off", ""))
                } else {
                    (("memory_limit_mb", "0.08"), ("memory_limit_mb", "2048"))
                };
                g.op(s, on.0, on.1);
                // Routine corrections of a few popular symbols: their keys must be recomputed
                // while the fault lasts.
                for (i, sym) in popular.iter().enumerate() {
                    g.push(s + Duration::seconds(5 + i as i64), format!("market_data_update,{sym},,,,"));
                }
                g.op(e, off.0, off.1);
                ep.touched.symbols = popular.clone();
                if kind == EpisodeKind::MemoryPressure {
                    ep.touched.feature_sets = vec!["multi_horizon".into()];
                }
            }
            EpisodeKind::ManifestOutage => {
                g.op(s, "lock_manifest", "");
                g.op(e, "unlock_manifest", "");
            }
            EpisodeKind::ExternalDeletion => {
                ep.end = s + Duration::seconds(30);
                let (_, keys) = working_set(s, &recent);
                for (sym, f, r) in keys {
                    if g.unit() < 0.4 {
                        let ts = s + Duration::milliseconds(g.rng.random_range(0..30_000));
                        g.push(ts, format!("delete_file,{sym},{},{},{},", SETS[f].0, ranges[r].0, ranges[r].1));
                        ep.touched.requests.push(format!("{sym}/{}/{}/{}", SETS[f].0, ranges[r].0, ranges[r].1));
                    }
                }
                ep.touched.requests.sort();
            }
        }
        episodes.push(ep);
    }
    g.rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut csv = String::with_capacity(g.rows.len() * 110);
    csv.push_str("ts,op,symbol,feature_set,start,end,value\n");
    for (_, _, row) in &g.rows {
        csv.push_str(row);
        csv.push('\n');
    }
    Ok(Generated {
        csv,
        episodes,
        universe: universe.len(),
        start: open,
        end,
        normal_cache_gb: normal_gb,
    })
}

/// How to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub scenario: Scenario,
    pub seed: u64,
    pub scale: f64,
    pub out: PathBuf,
    /// The program that holds the manifest lock (the `cachescope` binary).
    pub lock_helper: PathBuf,
}

/// Generates, replays and writes `trace.csv`, `trading-system.log`, `metrics.prom` and
/// `scenario.json` into `opts.out`.
pub fn simulate(opts: &SimOptions) -> Result<Truth, SimError> {
    let gen = generate(opts.scenario, opts.seed, opts.scale)?;
    let trace = Trace::parse("trace.csv", gen.csv.as_bytes()).map_err(SimError::Trace)?;
    let write = |name: &str, body: &[u8]| -> Result<PathBuf, SimError> {
        let p = opts.out.join(name);
        std::fs::write(&p, body).map_err(|source| SimError::Write { path: p.clone(), source })?;
        Ok(p)
    };
    std::fs::create_dir_all(&opts.out).map_err(|source| SimError::Write {
        path: opts.out.clone(),
        source,
    })?;
    write("trace.csv", gen.csv.as_bytes())?;
    let cache = tempfile::Builder::new()
        .prefix("cachescope-sim-")
        .tempdir()
        .map_err(|source| SimError::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let mut config = Config::with_cache_dir(cache.path().to_path_buf());
    config.max_cache_size_gb = gen.normal_cache_gb;
    // Fewer manifest batches: a simulated day replays in seconds, not hours.
    config.manifest_flush_interval_s = 120.0;
    let log = opts.out.join("trading-system.log");
    let sum = replay::replay(
        &trace,
        &ReplayOptions {
            config,
            log: log.clone(),
            seed: opts.seed,
            lock_helper: opts.lock_helper.clone(),
            metrics_out: Some(opts.out.join("metrics.prom")),
            metrics_addr: None,
            deterministic: true,
        },
    )
    .map_err(Box::new)?;
    let misses = read_misses(&log)?;
    let truth = Truth {
        scenario: opts.scenario.name().into(),
        seed: opts.seed,
        scale: opts.scale,
        trading_day: format!("{:04}-{:02}-{:02}", TRADING_DAY.0, TRADING_DAY.1, TRADING_DAY.2),
        start: fmt_ts(gen.start),
        end: fmt_ts(gen.end),
        universe: gen.universe,
        max_cache_size_gb: gen.normal_cache_gb,
        requests: sum.requests,
        hits: sum.hits,
        misses: sum.misses,
        hit_ratio: sum.hit_ratio,
        misses_by_reason: sum.misses_by_reason.clone(),
        episodes: gen.episodes.iter().map(|e| episode_truth(e, &misses)).collect(),
    };
    let mut json = serde_json::to_string_pretty(&truth).expect("truth serialises");
    json.push('\n');
    write("scenario.json", json.as_bytes())?;
    Ok(truth)
}

/// A miss line: time, reason, symbol, feature set.
struct Miss {
    ts: NaiveDateTime,
    reason: String,
    symbol: String,
    feature_set: String,
}

fn read_misses(log: &Path) -> Result<Vec<Miss>, SimError> {
    let text = std::fs::read_to_string(log).map_err(|source| SimError::Write {
        path: log.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.contains(" event=miss ") {
            continue;
        }
        let (mut reason, mut symbol, mut feature_set) = (String::new(), String::new(), String::new());
        let head = scan_engine(line, |k, v| {
            match k {
                "reason" => reason = v.into_owned(),
                "symbol" => symbol = v.into_owned(),
                "feature_set" => feature_set = v.into_owned(),
                _ => {}
            }
            Ok(())
        });
        let Ok(head) = head else { continue };
        if let Some(ts) = chrono::DateTime::from_timestamp_micros(head.ts).map(|t| t.naive_utc()) {
            out.push(Miss {
                ts,
                reason,
                symbol,
                feature_set,
            });
        }
    }
    Ok(out)
}

fn episode_truth(e: &PlannedEpisode, misses: &[Miss]) -> EpisodeTruth {
    let horizon = e.end + Duration::minutes(15);
    let syms: BTreeSet<&str> = e.touched.symbols.iter().map(String::as_str).collect();
    let sets: BTreeSet<&str> = e.touched.feature_sets.iter().map(String::as_str).collect();
    let mut times: Vec<NaiveDateTime> = misses
        .iter()
        .filter(|m| m.ts >= e.start && m.ts <= horizon)
        .filter(|m| e.kind.reasons().contains(&m.reason.as_str()))
        .filter(|m| syms.is_empty() || syms.contains(m.symbol.as_str()))
        .filter(|m| sets.is_empty() || sets.contains(m.feature_set.as_str()))
        .map(|m| m.ts)
        .collect();
    times.sort();
    let p95 = times.get(((times.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied();
    let end = p95.map_or(e.end, |t| t.max(e.end));
    EpisodeTruth {
        kind: e.kind.name().into(),
        start: fmt_ts(e.start),
        end: fmt_ts(end),
        injected_start: fmt_ts(e.start),
        injected_end: fmt_ts(e.end),
        runbook: e.kind.runbook_class().into(),
        reasons: e.kind.reasons().iter().map(|r| r.to_string()).collect(),
        misses: times.len() as u64,
        last_miss: times.last().map(|t| fmt_ts(*t)),
        touched: e.touched.clone(),
    }
}

/// The human summary of a simulation.
pub fn render(t: &Truth, out: &Path) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "scenario {} (seed {}, scale {}): {} .. {}, {} symbols",
        t.scenario, t.seed, t.scale, t.start, t.end, t.universe
    );
    let _ = writeln!(
        o,
        "requests {}  hits {}  misses {}  hit ratio {}",
        t.requests,
        t.hits,
        t.misses,
        t.hit_ratio.map(|r| format!("{:.2}%", r * 100.0)).unwrap_or_else(|| "n/a".into())
    );
    if t.episodes.is_empty() {
        let _ = writeln!(o, "episodes: none");
    }
    for e in &t.episodes {
        let _ = writeln!(
            o,
            "episode {:<19} {} .. {}  {:>6} misses ({})  [{}]",
            e.kind,
            e.start,
            e.end,
            e.misses,
            e.reasons.join("/"),
            e.runbook
        );
    }
    let _ = writeln!(
        o,
        "wrote {}/{{trace.csv,trading-system.log,metrics.prom,scenario.json}}",
        out.display()
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_seed_dependent() {
        let a = generate(Scenario::MixedDay, 3, 0.05).unwrap();
        let b = generate(Scenario::MixedDay, 3, 0.05).unwrap();
        let c = generate(Scenario::MixedDay, 4, 0.05).unwrap();
        assert_eq!(a.csv, b.csv);
        assert_ne!(a.csv, c.csv);
        assert_eq!(a.episodes.len(), 6);
    }

    #[test]
    fn traffic_follows_zipf_and_the_opening_burst() {
        let g = generate(Scenario::Steady, 1, 1.0).unwrap();
        let t = Trace::parse("t", g.csv.as_bytes()).unwrap();
        let mut per_symbol: HashMap<String, usize> = HashMap::new();
        let mut first_minute = 0;
        let mut last_minute = 0;
        for r in &t.rows {
            if let crate::replay::Op::Request(q) = &r.op {
                *per_symbol.entry(q.symbol.clone()).or_default() += 1;
                let m = (r.ts - g.start).num_seconds() / 60;
                if m == 0 {
                    first_minute += 1;
                }
                if m == 19 {
                    last_minute += 1;
                }
            }
        }
        assert!(per_symbol["AAPL"] > 10 * per_symbol.get("ABBV").copied().unwrap_or(1), "{per_symbol:?}");
        assert!(first_minute > 2 * last_minute, "{first_minute} vs {last_minute}");
    }

    #[test]
    fn bad_scale_and_unknown_scenario_are_refused() {
        assert!(matches!(generate(Scenario::Steady, 1, 0.0), Err(SimError::BadScale(_))));
        assert!(Scenario::parse("nope").unwrap_err().to_string().contains("mixed_day"));
    }
}
