//! The trace generator: a trading day of requests (a universe of symbols with Zipf
//! popularity, several feature sets, bursts at the open and the close), the pre-open warm-up,
//! and each episode a scenario plans, as trace operations (`docs/trace-format.md`).

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{EpisodeKind, PlannedEpisode, Scenario, SimError, Touched};
use crate::engine::clock::fmt_ts;

pub(super) const TRADING_DAY: (i32, u32, u32) = (2026, 11, 24);
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
    /// The trace's CSV: the rows sorted by time (ties in the order they were made).
    fn finish(mut self) -> String {
        self.rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut csv = String::with_capacity(self.rows.len() * 110);
        csv.push_str("ts,op,symbol,feature_set,start,end,value\n");
        for (_, _, row) in &self.rows {
            csv.push_str(row);
            csv.push('\n');
        }
        csv
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

/// Generates the trace of `scenario`: the day's requests, the pre-open warm-up, then each
/// planned episode's operations, sorted by time.
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
    let end = open + Duration::milliseconds((minutes * 60_000.0) as i64);
    let at = |f: f64| open + Duration::milliseconds((f * minutes * 60_000.0) as i64);
    let n_base = ((60.0 + 12.0 * scale).round() as usize).clamp(60, 600);
    let universe = symbols(&mut g.rng, n_base, &BTreeSet::new());
    let ranges: Vec<(String, String)> = RANGES
        .iter()
        .map(|(d, _)| {
            let (s, e) = session(*d);
            (fmt_ts(s), fmt_ts(e))
        })
        .collect();
    let normal_bytes: f64 = 2.0 * (n_base as f64 * 1.3) * SETS.iter().map(|s| s.2).sum::<f64>() * RANGES.len() as f64;
    let normal_gb = (normal_bytes / 1e9 * 1e6).ceil() / 1e6;

    let plan = plan(scenario);
    let new_symbols_at = plan.iter().find(|p| p.0 == EpisodeKind::NewSymbols).map(|p| at(p.1));
    let newcomers = match new_symbols_at {
        Some(_) => newcomers(&mut g, n_base, &universe),
        None => vec![],
    };
    let mut day = Day {
        recent: Vec::new(),
        popular: universe.iter().take(5).cloned().collect(),
        universe,
        newcomers,
        ranges,
        normal_gb,
    };
    requests(&mut g, &mut day, open, minutes, 4.0 * scale, new_symbols_at);
    warm_up(&mut g, &day, open);
    let episodes = plan
        .into_iter()
        .map(|(kind, f0, f1)| inject(&mut g, &mut day, kind, at(f0), at(f1)))
        .collect();
    Ok(Generated {
        csv: g.finish(),
        episodes,
        universe: day.universe.len(),
        start: open,
        end,
        normal_cache_gb: normal_gb,
    })
}

/// The scenario's episodes: (kind, start fraction, end fraction) of the day.
fn plan(scenario: Scenario) -> Vec<(EpisodeKind, f64, f64)> {
    match scenario {
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
    }
}

/// Symbols that join the universe in a new-symbols episode: random tickers (the famous ones
/// are all taken).
fn newcomers(g: &mut Gen, n_base: usize, universe: &[String]) -> Vec<String> {
    let taken: BTreeSet<String> = universe.iter().cloned().collect();
    let n = (n_base as f64 * 0.3).round() as usize;
    let mut v = symbols(&mut g.rng, n + FAMOUS.len(), &taken);
    v.retain(|s| !FAMOUS.contains(&s.as_str()));
    v.truncate(n);
    v
}

/// One request as the generator remembers it: (time, symbol, feature set, range).
type Recent = (NaiveDateTime, String, usize, usize);

/// What the episodes need to know of the day.
struct Day {
    universe: Vec<String>,
    newcomers: Vec<String>,
    /// The requests so far.
    recent: Vec<Recent>,
    /// The five most popular symbols.
    popular: Vec<String>,
    /// The requested ranges as (start, end) text.
    ranges: Vec<(String, String)>,
    /// The capacity that holds the normal working set.
    normal_gb: f64,
}

impl Day {
    /// The bytes and the keys requested in the ten minutes before `t`.
    fn working_set(&self, t: NaiveDateTime) -> (f64, Vec<(String, usize, usize)>) {
        let size_of: HashMap<&str, f64> = SETS.iter().map(|s| (s.0, s.2)).collect();
        let mut keys = BTreeSet::new();
        for (_, s, f, r) in self.recent.iter().filter(|x| x.0 <= t && x.0 > t - Duration::minutes(10)) {
            keys.insert((s.clone(), *f, *r));
        }
        let bytes = keys.iter().map(|(_, f, _)| size_of[SETS[*f].0]).sum();
        (bytes, keys.into_iter().collect())
    }
}

/// Requests, second by second (Poisson arrivals at `rate` shaped by the session's profile;
/// Zipf-popular symbols, newcomers among them a minute after they join).
fn requests(g: &mut Gen, day: &mut Day, open: NaiveDateTime, minutes: f64, rate: f64, new_symbols_at: Option<NaiveDateTime>) {
    let range_cum = cumulative(RANGES.iter().map(|r| r.1));
    let set_cum = cumulative(SETS.iter().map(|s| s.1));
    let base_cum = cumulative((0..day.universe.len()).map(|r| 1.0 / ((r + 1) as f64).powf(ZIPF)));
    let mut full_order = day.universe.clone();
    for s in &day.newcomers {
        let pos = g.rng.random_range(0..=full_order.len());
        full_order.insert(pos, s.clone());
    }
    let full_cum = cumulative((0..full_order.len()).map(|r| 1.0 / ((r + 1) as f64).powf(ZIPF)));
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
            let (order, cum) = if joined { (&full_order, &full_cum) } else { (&day.universe, &base_cum) };
            let u = g.unit();
            let sym = order[pick(cum, u)].clone();
            let u = g.unit();
            let set = pick(&set_cum, u);
            let u = g.unit();
            let r = pick(&range_cum, u);
            g.push(ts, format!("request,{sym},{},{},{},", SETS[set].0, day.ranges[r].0, day.ranges[r].1));
            day.recent.push((ts, sym, set, r));
        }
    }
}

/// The pre-open warm-up job (the runbook's cache warming, run daily at 09:00 New York): the
/// last session's features for the whole universe, the one before for the more popular half.
/// What is left cold are the long tail's older ranges.
fn warm_up(g: &mut Gen, day: &Day, open: NaiveDateTime) {
    let all_sets = SETS.map(|s| s.0).join(";");
    let warm_all = day.universe.join(";");
    let warm_half = day.universe[..day.universe.len() / 2].join(";");
    let r = &day.ranges;
    g.push(open - Duration::minutes(30), format!("warm,{warm_all},{all_sets},{},{},", r[0].0, r[0].1));
    g.push(open - Duration::minutes(29), format!("warm,{warm_half},{all_sets},{},{},", r[1].0, r[1].1));
}

/// The operations of one episode of `kind` from `s` to `e`, and what it touched.
fn inject(g: &mut Gen, day: &mut Day, kind: EpisodeKind, s: NaiveDateTime, e: NaiveDateTime) -> PlannedEpisode {
    let mut ep = PlannedEpisode {
        kind,
        start: s,
        end: e,
        touched: Touched::default(),
    };
    let ranges = day.ranges.clone();
    match kind {
        EpisodeKind::NewSymbols => {
            // Symbols join over a minute; each is onboarded with every feature set.
            ep.end = s + Duration::seconds(60);
            for sym in &day.newcomers {
                let join = s + Duration::milliseconds(g.rng.random_range(0..60_000));
                for (set, ..) in SETS {
                    let ts = join + Duration::milliseconds(g.rng.random_range(0..120_000));
                    g.push(ts, format!("request,{sym},{set},{},{},", ranges[0].0, ranges[0].1));
                }
            }
            ep.touched.symbols = day.newcomers.clone();
            let joined = day.newcomers.clone();
            day.universe.extend(joined);
        }
        EpisodeKind::InvalidationStorm => {
            ep.end = s + Duration::seconds(60);
            let mut touched: Vec<String> = day.universe.iter().filter(|_| g.unit() < 0.8).cloned().collect();
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
            let (ws, _) = day.working_set(s);
            let gb = ((ws * 0.3).max(20_000.0) / 1e9 * 1e9).round() / 1e9;
            g.op(s, "set_max_cache_size_gb", &format!("{gb}"));
            g.op(e, "set_max_cache_size_gb", &format!("{}", day.normal_gb));
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
            for (i, sym) in day.popular.iter().enumerate() {
                g.push(s + Duration::seconds(5 + i as i64), format!("market_data_update,{sym},,,,"));
            }
            g.op(e, off.0, off.1);
            ep.touched.symbols = day.popular.clone();
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
            let (_, keys) = day.working_set(s);
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
    ep
}
