//! Scenario simulator: generates a realistic request trace for a named scenario (a universe
//! of symbols with Zipf popularity, several feature sets, trading hours with bursts at the
//! open and the close), replays it through the real engine (deterministically), and writes
//! the ground truth: which episodes were injected, when, what they touched, and how many of
//! the engine's misses they explain. Same seed, same files, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use crate::engine::clock::fmt_ts;
use crate::ingest::formats::scan_engine;
use crate::engine::Config;
use crate::replay::{self, ReplayError, ReplayOptions, Trace};
pub use crate::vocab::EpisodeKind;
pub use generate::{generate, Generated};

mod generate;
use generate::TRADING_DAY;

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
        .filter(|m| e.kind.reasons().iter().any(|r| r.as_str() == m.reason))
        .filter(|m| syms.is_empty() || syms.contains(m.symbol.as_str()))
        .filter(|m| sets.is_empty() || sets.contains(m.feature_set.as_str()))
        .map(|m| m.ts)
        .collect();
    times.sort();
    let p95 = times.get(((times.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied();
    let end = p95.map_or(e.end, |t| t.max(e.end));
    EpisodeTruth {
        kind: e.kind.as_str().into(),
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
    use std::collections::HashMap;

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
