//! What-if cache sizing (`cachescope whatif`): the hit ratio the feature store would have had
//! at other capacities and retentions, from the request stream in the events database.
//! [`stream`] reads it into a compact [`trace::Trace`]; [`curve`] runs the exact one-pass
//! least-recently-used curve ([`stack::StackDistances`]) and the ceiling no size passes;
//! [`policy`] replays the engine's own policy (batch eviction at the clean-up threshold down
//! to the eviction target, retention clean-ups when they ran) at each point; [`windows`]
//! judges the SLO over 5-minute windows; [`search`] finds the smallest capacities that hold
//! it; [`chart`] draws the curve; [`sizing`] puts the answer into reports and incidents.

pub mod chart;
pub mod curve;
pub mod early;
pub mod policy;
pub mod search;
pub mod settings;
pub mod sizing;
pub mod stack;
pub mod stream;
pub mod trace;
pub mod windows;

pub use curve::{Curve, Unservable};
pub use stack::StackDistances;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::analysis::{self, Period, SloPolicy, SLO};
use crate::engine::clock::fmt_ts;
use crate::queries;
use crate::query::{QueryError, Session};
use settings::SettingLines;

/// Failure of a what-if analysis.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    #[error(transparent)]
    Analysis(#[from] analysis::AnalysisError),
    #[error("reading the request stream: {0}")]
    Db(#[from] duckdb::Error),
    #[error("reading the requests and settings for what-if: {0}")]
    Query(#[from] QueryError),
    #[error("the database has no requests (hits or misses){0} to size a cache from")]
    NoRequests(String),
    #[error("drawing the what-if curve: {0}")]
    Chart(#[source] crate::BoxError),
}

/// The settings the engine ran with at the end of the period (from its log).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub capacity_gb: Option<f64>,
    pub retention_days: Option<f64>,
    pub cleanup_threshold: f64,
    pub eviction_target: f64,
}

/// The capacity the engine ran with and what it served.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Current {
    pub capacity_gb: Option<f64>,
    pub retention_days: Option<f64>,
    pub cleanup_threshold: f64,
    pub eviction_target: f64,
    /// Measured: the share of requests the engine served from cache.
    pub hit_ratio: Option<f64>,
    /// The engine-policy model's hit ratio at the current settings (how far the model is from
    /// the engine).
    pub predicted_hit_ratio: Option<f64>,
    /// Pure LRU's at the current capacity.
    pub lru_hit_ratio: Option<f64>,
    /// Times the capacity changed during the period: the measured ratio then mixes capacities.
    pub capacity_changes: u64,
    /// The smallest capacity the engine ran with during the period.
    pub smallest_capacity_gb: Option<f64>,
}

/// One setting's predicted hit ratio.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SizePoint {
    pub capacity_gb: f64,
    /// The retention of every clean-up; `null`: each clean-up's own, as logged.
    pub retention_days: Option<f64>,
    /// The engine's policy (batch eviction, retention clean-ups) at this setting.
    pub hit_ratio: f64,
    /// Pure least-recently-used at this capacity (with the retention as logged).
    pub lru_hit_ratio: Option<f64>,
    /// Evaluation minutes whose 5-minute window would have been below the SLO.
    pub minutes_below_slo: u64,
}

/// A capacity (and retention) to set, and what it would have given.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recommendation {
    pub capacity_gb: f64,
    pub retention_days: Option<f64>,
    pub hit_ratio: f64,
    pub minutes_below_slo: u64,
}

/// What stands in the way when no size holds the SLO.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Blocked {
    /// Whole period: what an infinite cache would have served. Every window: the worst window's.
    pub ceiling_hit_ratio: f64,
    /// The worst window's end (every-window question only).
    pub window_end: Option<String>,
    /// The largest share of the requests no size serves, in words.
    pub cause: String,
}

/// `cachescope whatif`'s answer (its JSON shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WhatIf {
    pub from: String,
    pub until: String,
    pub requests: u64,
    pub keys: u64,
    pub working_set_gb: f64,
    pub current: Current,
    /// What an infinite cache would have served.
    pub ceiling_hit_ratio: f64,
    /// The requests no capacity serves, by why.
    pub unservable: Unservable,
    /// Retention clean-ups that ran in the period: `retention_days` acts only at them.
    pub cleanups: u64,
    pub points: Vec<SizePoint>,
    /// The smallest capacity whose hit ratio over the whole period meets the SLO.
    pub recommendation: Option<Recommendation>,
    /// The smallest capacity that keeps every 5-minute window at the SLO (no alert fires).
    pub recommendation_every_window: Option<Recommendation>,
    /// Why no size reaches the SLO over the period / in every window (when none does).
    pub blocked: Option<Blocked>,
    pub blocked_every_window: Option<Blocked>,
    pub slo_target: f64,
    /// Spatial sampling of keys, when the answer is from a sample (`requests`, `keys` and
    /// `unservable` are then the sample's).
    pub sample_rate: Option<f64>,
    pub model: String,
}

/// What to size.
#[derive(Debug, Clone, Default)]
pub struct Question {
    pub period: Option<Period>,
    /// Capacities to show (GB); none: a curve from a hundredth of the working set to all of it.
    pub capacities_gb: Vec<f64>,
    /// Retentions to try (days); none: the clean-ups as they ran.
    pub retention_days: Vec<f64>,
    /// Only the current capacity and the recommendations, no curve (for reports).
    pub skip_curve: bool,
    /// Spatial sampling of keys (0 < rate <= 1); none: exact.
    pub sample_rate: Option<f64>,
}

/// A sample with fewer keys than this is said to be too small to trust to a point.
pub const SAMPLE_KEYS_ENOUGH: u64 = 10_000;

const GB: f64 = 1e9;
/// History read before the period so that the cache starts in the state it would have had.
const WARM_UP_DAYS: f64 = 1.0;

/// The events of a span read once for several what-if questions over periods within it (an
/// incident's window and its thrashing episodes): each takes its own trace out of it
/// ([`trace::Trace::slice`]), the same as a read of its own.
pub struct SharedTrace {
    trace: trace::Trace,
    /// Each op's time in microseconds.
    us: Vec<i64>,
    warm_from: NaiveDateTime,
    until: NaiveDateTime,
    /// Each period's settings and the start of its read ([`start_of_read`] with the log's
    /// retention), looked up once.
    starts: Vec<(Period, Settings, NaiveDateTime)>,
    /// The settings' lines around the periods, for other periods inside (an incident's episodes).
    lines: Option<SettingLines>,
}

/// Reads once what the exact what-if questions of `periods` (the log's retention, no
/// sample) read, for [`whatif_in`].
pub fn read_shared(db: &Session, periods: &[Period]) -> Result<SharedTrace, WhatIfError> {
    let mut span: Option<(NaiveDateTime, NaiveDateTime)> = None;
    let mut starts = Vec::with_capacity(periods.len());
    let lines = settings::lines_for(db, periods)?;
    for p in periods {
        let (settings, warm_from) = start_of_read(db, *p, &[], lines.as_ref())?;
        starts.push((*p, settings, warm_from));
        span = Some(match span {
            Some((a, b)) => (a.min(warm_from), b.max(p.until)),
            None => (warm_from, p.until),
        });
    }
    let (warm_from, until) = span.unwrap_or_default();
    let mut us = Vec::new();
    let started = std::time::Instant::now();
    let trace = read_trace(db, warm_from, warm_from.and_utc().timestamp_millis(), until, None, Some(&mut us))?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, ops = trace.ops.len(), periods = periods.len(), "what-if: read the trace shared from {warm_from}");
    Ok(SharedTrace { trace, us, warm_from, until, starts, lines })
}

/// The settings at the end of `period` (from `lines` when they say), and where its read
/// starts: the longest retention (the log's, or one asked) and a day before it, so that the
/// cache starts in the state it would have had.
fn start_of_read(db: &Session, period: Period, retentions: &[f64], lines: Option<&SettingLines>) -> Result<(Settings, NaiveDateTime), WhatIfError> {
    let s = match lines.and_then(|l| l.at(period.until)) {
        Some(s) => s,
        None => settings::settings(db, period.until)?,
    };
    let longest_retention = retentions.iter().copied().chain(s.retention_days).fold(0.0, f64::max);
    Ok((s, period.from - chrono::Duration::milliseconds(trace::retention_ms(longest_retention + WARM_UP_DAYS))))
}

/// Reads the trace of `[warm_from, until)`. On the file, under what-if's memory cap (twice it
/// if DuckDB's sort did not fit), then the session's own cap is put back; through a running
/// tailer, under the cap of the queries it serves (`tail --query-memory`).
fn read_trace(
    db: &Session,
    warm_from: NaiveDateTime,
    from_ms: i64,
    until: NaiveDateTime,
    sample_rate: Option<f64>,
    times: Option<&mut Vec<i64>>,
) -> Result<trace::Trace, WhatIfError> {
    let (warm_from, until) = (warm_from.to_string(), until.to_string());
    let Some(conn) = db.direct_connection() else {
        return Ok(stream::read(db, &warm_from, from_ms, &until, sample_rate, times)?);
    };
    conn.execute_batch(queries::WHATIF_MEMORY_KEEP)?;
    conn.execute_batch(queries::WHATIF_MEMORY)?;
    let read = read_trace_capped(db, conn, &warm_from, from_ms, &until, sample_rate, times);
    conn.execute_batch(queries::WHATIF_MEMORY_RESTORE)?;
    read
}

/// [`read_trace`] on the file, under the cap already set.
fn read_trace_capped(
    db: &Session,
    conn: &duckdb::Connection,
    warm_from: &str,
    from_ms: i64,
    until: &str,
    sample_rate: Option<f64>,
    mut times: Option<&mut Vec<i64>>,
) -> Result<trace::Trace, WhatIfError> {
    match stream::read(db, warm_from, from_ms, until, sample_rate, times.as_deref_mut()) {
        Err(e) if e.to_string().contains("Out of Memory") => {
            tracing::warn!("what-if: DuckDB's sort did not fit its memory cap ({e}); trying again with twice the cap");
            conn.execute_batch(queries::WHATIF_MEMORY_RETRY)?;
            if let Some(t) = times.as_deref_mut() {
                t.clear();
            }
            Ok(stream::read(db, warm_from, from_ms, until, sample_rate, times)?)
        }
        r => Ok(r?),
    }
}

/// Sizes the cache from the requests of the period (default: the whole database).
pub fn whatif(db: &Session, q: &Question) -> Result<WhatIf, WhatIfError> {
    whatif_in(db, q, None)
}

/// [`whatif`], taking its trace out of `shared` when that covers it (an exact question).
pub fn whatif_in(db: &Session, q: &Question, shared: Option<&SharedTrace>) -> Result<WhatIf, WhatIfError> {
    let period = match q.period {
        Some(p) => p,
        None => analysis::data_range(db)?.ok_or_else(|| WhatIfError::NoRequests(String::new()))?,
    };
    let totals = analysis::requests_and_hit_ratio(db, period)?;
    whatif_of(db, q, period, totals, shared)
}

/// [`whatif_in`] of `period` with its requests and measured hit ratio (`totals`) given: `db`
/// needs only the events' tables, none of the views (a second connection, [`Session::fork`],
/// has no other).
pub fn whatif_of(db: &Session, q: &Question, period: Period, totals: (u64, Option<f64>), shared: Option<&SharedTrace>) -> Result<WhatIf, WhatIfError> {
    let known = shared
        .filter(|_| q.retention_days.is_empty())
        .and_then(|sh| sh.starts.iter().find(|(p, _, _)| *p == period))
        .map(|(_, s, w)| (*s, *w));
    // The settings' lines: the shared read's, else the period's own, read once for both questions.
    let own;
    let lines = match shared.and_then(|sh| sh.lines.as_ref()) {
        Some(l) => Some(l),
        None => {
            own = settings::lines_for(db, &[period])?;
            own.as_ref()
        }
    };
    let (s, warm_from) = match known {
        Some(k) => k,
        None => start_of_read(db, period, &q.retention_days, lines)?,
    };
    let from_ms = period.from.and_utc().timestamp_millis();
    let (requests, measured) = totals;
    let (capacity_changes, smallest_capacity_gb) = match lines.and_then(|l| l.capacity_changes(period)) {
        Some(c) => c,
        None => settings::capacity_changes(db, period)?,
    };
    let sample_rate = q.sample_rate.filter(|r| *r < 1.0);
    let started = std::time::Instant::now();
    let trace = match shared.filter(|sh| sample_rate.is_none() && sh.warm_from <= warm_from && period.until <= sh.until) {
        Some(sh) => sh.trace.slice(&sh.us, warm_from.and_utc().timestamp_micros(), from_ms, period.until.and_utc().timestamp_micros()),
        None => read_trace(db, warm_from, from_ms, period.until, sample_rate, None)?,
    };
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, ops = trace.ops.len(), "what-if: read the trace from {warm_from}");
    let started = std::time::Instant::now();
    let lru = curve::lru_pass(&trace);
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "what-if: LRU pass");
    let started = std::time::Instant::now();
    if lru.distances.is_empty() {
        return Err(WhatIfError::NoRequests(format!(" in {} .. {}", fmt_ts(period.from), fmt_ts(period.until))));
    }
    // A sample's ratios are corrected for it holding more or fewer requests than its share.
    let expected_requests = sample_rate.map(|r| r * requests as f64);
    let curve = match expected_requests {
        Some(e) => Curve::new(&lru.distances).sampled(e),
        None => Curve::new(&lru.distances),
    };
    let working_set_gb = lru.working_set_bytes as f64 / GB;
    // A sample's windows hold the rate's share of the requests.
    let slo = SloPolicy { min_requests_5m: ((SLO.min_requests_5m as f64 * sample_rate.unwrap_or(1.0)).ceil() as u32).max(1), ..SLO };
    let every_window = windows::every_window_lru(&trace, &lru, &slo);
    let model = search::Model { trace: &trace, lru: &lru, curve: &curve, settings: s, slo, expected_requests, every_window };
    let retentions: Vec<Option<f64>> = if q.retention_days.is_empty() { vec![None] } else { q.retention_days.iter().map(|d| Some(*d)).collect() };
    let mut recs = Vec::new();
    let mut recs_every = Vec::new();
    for r in &retentions {
        let (period, every) = model.smallest_both(*r);
        recs.extend(period);
        recs_every.extend(every);
    }
    let best = |v: Vec<Recommendation>| v.into_iter().min_by(|a, b| a.capacity_gb.total_cmp(&b.capacity_gb));
    let (recommendation, recommendation_every_window) = (best(recs), best(recs_every));
    let mut sizes: Vec<f64> = if q.skip_curve {
        Vec::new()
    } else if q.capacities_gb.is_empty() {
        let all = working_set_gb / s.cleanup_threshold;
        (0..=12).map(|i| all * 10f64.powf(-2.0 + 2.0 * i as f64 / 12.0)).collect()
    } else {
        q.capacities_gb.clone()
    };
    sizes.extend(s.capacity_gb);
    sizes.extend(recommendation.iter().chain(&recommendation_every_window).map(|r| r.capacity_gb));
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let settings_list: Vec<(f64, Option<f64>)> = retentions.iter().flat_map(|r| sizes.iter().map(move |c| (*c, *r))).collect();
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "what-if: searched the smallest sizes");
    let started = std::time::Instant::now();
    let points = model.points(&settings_list);
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, points = settings_list.len(), "what-if: simulated the points");
    // The current capacity is among the points (with the log's retention when no list is
    // given); otherwise it is simulated on its own.
    let current_point = s.capacity_gb.map(|c| {
        points
            .iter()
            .find(|p| p.capacity_gb == c && p.retention_days.is_none())
            .cloned()
            .unwrap_or_else(|| model.point(c, None))
    });
    Ok(WhatIf {
        from: fmt_ts(period.from),
        until: fmt_ts(period.until),
        requests: lru.distances.len() as u64,
        keys: trace.keys as u64,
        working_set_gb,
        current: Current {
            capacity_gb: s.capacity_gb,
            retention_days: s.retention_days,
            cleanup_threshold: s.cleanup_threshold,
            eviction_target: s.eviction_target,
            hit_ratio: measured,
            predicted_hit_ratio: current_point.as_ref().map(|p| p.hit_ratio),
            lru_hit_ratio: current_point.as_ref().and_then(|p| p.lru_hit_ratio),
            capacity_changes: capacity_changes.max(0) as u64,
            smallest_capacity_gb,
        },
        ceiling_hit_ratio: curve.ceiling().unwrap_or(0.0),
        unservable: lru.unservable.clone(),
        cleanups: trace.ops.iter().filter(|o| o.kind() == trace::OpKind::Cleanup && o.ms >= from_ms).count() as u64,
        blocked: recommendation.is_none().then(|| model.blocked_for_period()),
        blocked_every_window: recommendation_every_window.is_none().then(|| model.blocked_for_every_window()),
        points,
        recommendation,
        recommendation_every_window,
        slo_target: SLO.target,
        sample_rate,
        model: format!(
            "the engine's policy: least-recently-used by bytes, evicting down to {} of the capacity when it passes {} (the file just stored kept); retention clean-ups when they ran, by creation time; a miss that could not be stored misses at any size. `lru_hit_ratio`: pure LRU (exact, one pass)",
            s.eviction_target, s.cleanup_threshold
        ),
    })
}

impl WhatIf {
    /// The Markdown `cachescope whatif` prints.
    pub fn markdown(&self) -> String {
        let pct = |x: f64| format!("{:.2}%", x * 100.0);
        let days = |d: Option<f64>| d.map(|d| format!("{d} d")).unwrap_or_else(|| "as logged".into());
        let mut s = format!(
            "# What-if cache sizing\n\n{} .. {}: {} requests of {} keys; working set {:.6} GB.\n\n",
            self.from, self.until, self.requests, self.keys, self.working_set_gb
        );
        if let Some(r) = self.sample_rate {
            s += &format!(
                "Sampled: the requests of {:.3}% of the keys (spatial sampling; a cache {:.3}% the size simulated for each capacity), so the counts are the sample's.",
                r * 100.0,
                r * 100.0
            );
            if self.keys < SAMPLE_KEYS_ENOUGH {
                s += &format!(" Only {} keys in the sample: expect errors of several percentage points; sample more.", self.keys);
            }
            s += "\n\n";
        }
        match (self.current.capacity_gb, self.current.hit_ratio) {
            (Some(gb), Some(h)) => {
                s += &format!(
                    "Current: `max_cache_size_gb = {gb}`{} served {}; the model predicts {} at that size (pure LRU: {}).",
                    self.current.retention_days.map(|d| format!(", `retention_days = {d}`")).unwrap_or_default(),
                    pct(h),
                    self.current.predicted_hit_ratio.map(pct).unwrap_or_default(),
                    self.current.lru_hit_ratio.map(pct).unwrap_or_default(),
                );
                if self.current.capacity_changes > 0 {
                    s += &format!(
                        " The capacity changed {} times during the period (down to {} GB), so the measured ratio mixes capacities.",
                        self.current.capacity_changes,
                        self.current.smallest_capacity_gb.unwrap_or(gb)
                    );
                }
                s += "\n\n";
            }
            (None, Some(h)) => s += &format!("Current: the log does not say the capacity; the engine served {}.\n\n", pct(h)),
            _ => {}
        }
        let u = &self.unservable;
        s += &format!(
            "Ceiling: an infinite cache would have served {} ({} first requests of keys, {} after invalidations or deleted files, {} after retention clean-ups, {} not stored after a failure, {} during manifest outages).\n\n",
            pct(self.ceiling_hit_ratio),
            u.first_requests,
            u.invalidated,
            u.retention,
            u.failed,
            u.manifest_outage
        );
        s += &match self.cleanups {
            0 => "Retention: no clean-up ran in the period, so `retention_days` changes nothing here.\n\n".to_string(),
            n => format!("Retention: {n} clean-ups ran in the period; `retention_days` acts at them.\n\n"),
        };
        s += "| capacity (GB) | retention | engine policy | pure LRU | minutes below SLO |\n| ---: | ---: | ---: | ---: | ---: |\n";
        for p in &self.points {
            s += &format!(
                "| {:.6} | {} | {} | {} | {} |\n",
                p.capacity_gb,
                days(p.retention_days),
                pct(p.hit_ratio),
                p.lru_hit_ratio.map(pct).unwrap_or_else(|| "-".into()),
                p.minutes_below_slo
            );
        }
        s += "\n";
        let answer = |r: &Option<Recommendation>, b: &Option<Blocked>, what: &str| match (r, b) {
            (Some(r), _) => format!(
                "Smallest capacity for >= {} {what}: **`max_cache_size_gb = {}`**{} ({} over the period, {} minutes below the SLO).\n",
                pct(self.slo_target),
                r.capacity_gb,
                r.retention_days.map(|d| format!(" with `retention_days = {d}`")).unwrap_or_default(),
                pct(r.hit_ratio),
                r.minutes_below_slo
            ),
            (None, Some(b)) => format!(
                "No capacity reaches {} {what}{}: an infinite cache would have served {}; {} stand in the way.\n",
                pct(self.slo_target),
                b.window_end.as_ref().map(|w| format!(" (worst window ending {w})")).unwrap_or_default(),
                pct(b.ceiling_hit_ratio),
                b.cause
            ),
            (None, None) => String::new(),
        };
        s += &answer(&self.recommendation, &self.blocked, "over the period");
        s += &answer(&self.recommendation_every_window, &self.blocked_every_window, "in every 5-minute window (no alert)");
        s += &format!("\nModel: {}.\n", self.model);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        crate::engine::clock::parse_ts(s).unwrap()
    }

    #[test]
    fn the_sessions_memory_cap_is_put_back_after_the_read() {
        let session = Session::in_memory().unwrap();
        let c = session.direct_connection().unwrap();
        c.execute_batch(queries::EVENTS_SCHEMA).unwrap();
        c.execute_batch("SET memory_limit = '777MB'; INSERT INTO hit_rows VALUES ('2026-01-01 00:00:01', 1, 1, 42, 100, 10, 1, 0, 1)").unwrap();
        let cap = || -> String { c.query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0)).unwrap() };
        let before = cap();
        let trace = read_trace(&session, t("2025-12-31T00:00:00Z"), 0, t("2026-01-02T00:00:00Z"), None, None).unwrap();
        assert!(!trace.ops.is_empty(), "the read saw the request");
        assert_eq!(cap(), before, "what-if's 512 MB stayed after its read");
    }
}
