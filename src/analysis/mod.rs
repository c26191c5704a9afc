//! Analysis: turns the SQL views (`miss_causes`, `episodes`, `hit_ratio_5m`, `alerts`, error
//! budget) into a [`Report`] for a period, and an [`Incident`] around an alert: what happened,
//! for how long, what it cost, which runbook level and owner, the causes ranked with their
//! evidence lines and the runbook action for each. All numbers come from `queries/*.sql`.

use std::path::Path;

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::engine::clock::{fmt_ts, parse_ts};
use crate::queries;
use crate::query::{QueryError, QueryResult, Session};

pub mod slo;

pub use slo::{SloPolicy, SLO};

/// Failure of an analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("no alert has fired in the events database{db}; give --from and --to instead")]
    NoAlert { db: String },
    #[error("unexpected answer from the analysis queries: {0}")]
    Shape(String),
}

/// A half-open time range `[from, until)`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Period {
    #[serde(serialize_with = "ser_ts")]
    pub from: NaiveDateTime,
    #[serde(serialize_with = "ser_ts")]
    pub until: NaiveDateTime,
}

fn ser_ts<S: serde::Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_ts(*t))
}

impl Period {
    fn params(&self) -> Vec<String> {
        vec![self.from.to_string(), self.until.to_string()]
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SymbolCount {
    pub symbol: String,
    pub misses: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CauseRow {
    pub cause: String,
    pub misses: i64,
    pub share: f64,
    pub top_symbols: Vec<SymbolCount>,
    pub runbook: RunbookAction,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpisodeRow {
    pub kind: String,
    pub start: String,
    pub end: String,
    pub misses: i64,
    pub keys: i64,
    pub symbols: i64,
    pub some_symbols: Vec<String>,
    pub causes: Vec<String>,
    /// `expected_churn` or `actionable`.
    pub runbook: String,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    pub path: String,
    pub line: i64,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertRow {
    pub alert: String,
    pub severity: String,
    pub pending_since: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub state: String,
    pub worst_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Budget {
    pub slo_target: f64,
    pub window_days: i64,
    pub window_requests: i64,
    pub window_misses: i64,
    pub allowed_misses: f64,
    /// Share of the window's budget consumed (1.0 = all of it).
    pub consumed: Option<f64>,
    pub remaining: Option<f64>,
    /// The period's miss rate over the allowed rate (1.0 burns the budget exactly in the window).
    pub burn_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Slo {
    pub target: f64,
    /// `met`, `breached` or `no traffic`.
    pub status: String,
    /// Minutes the 5-minute hit ratio was below target (with enough traffic).
    pub breach_minutes: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    pub t: String,
    pub hit_ratio: Option<f64>,
    pub requests: i64,
}

/// What the cron report says (`docs/analysis.md` documents the JSON shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub period: Period,
    pub requests: i64,
    pub hits: i64,
    pub misses: i64,
    pub hit_ratio: Option<f64>,
    pub slo: Slo,
    pub error_budget: Budget,
    pub causes: Vec<CauseRow>,
    pub episodes: Vec<EpisodeRow>,
    pub alerts: Vec<AlertRow>,
    #[serde(skip)]
    pub timeline: Vec<Point>,
}

/// The runbook's section and action for a cause.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunbookAction {
    pub section: String,
    pub action: String,
    pub expected_churn: bool,
}

/// The runbook's answer for each cause.
pub fn runbook_for(cause: &str) -> RunbookAction {
    let (section, action, churn) = match cause {
        "write_failed" => ("1. Disk Space Issues", "Check `df -h` on the cache volume; clean old cache files (`find <cache_dir> -name \"*.parquet.zst\" -mtime +7 -delete`) or grow the volume.", false),
        "evicted_capacity" | "evicted" => ("5. Cache Thrashing; Medium-term 1. Optimize Cache Configuration", "The working set does not fit: raise `max_cache_size_gb` (and `cleanup_threshold`) in cachescope.toml.", false),
        "evicted_retention" => ("Immediate 2. Increase Cache Retention", "Retention is too short for the workload: `systemctl stop feature-cache-cleanup.timer`, or `export FEATURE_CACHE_RETENTION_DAYS=14` and restart.", false),
        "new_symbol" | "new_key" => ("3. High Data Churn (expected); Immediate 1. Emergency Cache Warming", "New symbols joined the universe: warm the cache for them (`warm` op / FeatureStore::warm); silence the alert for 30 minutes if expected.", true),
        "invalidated_data" | "invalidated" => ("3. High Data Churn (expected)", "Market-data updates invalidated cached features: expected churn; silence the alert (Grafana, 30 minutes) and let the cache refill.", true),
        "invalidated_config" => ("3. High Data Churn (expected)", "A feature set's configuration changed: expected churn; silence the alert (Grafana, 30 minutes) and let the cache refill.", true),
        "compute_failed" => ("4. Memory Pressure", "Feature computations ran out of memory: check `free -h` and the process memory (`ps aux | grep -E \"(trading|feature)\" | sort -k4 -nr`), `grep -i \"memory\\|oom\"` the log; raise the computation limit or add memory.", false),
        "manifest_unavailable" => ("2. DuckDB Manifest Database Issues", "Another process held the manifest: `lsof ~/.feature_cache/manifest.duckdb` names it; stop it. If the manifest is corrupt, back it up and restart to rebuild it.", false),
        "missing_file" => ("1. Disk Space Issues (clean-up) / Post-Incident 3", "Cache files were deleted behind the engine's back (a `find ... -delete`?): stop the external deletion; the files are recomputed on demand; warm critical symbols.", false),
        _ => ("Root Cause Analysis", "The log does not say enough to name a cause: check the application log around these lines.", false),
    };
    RunbookAction {
        section: section.into(),
        action: action.into(),
        expected_churn: churn,
    }
}

fn s(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
fn i(v: &serde_json::Value) -> i64 {
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).unwrap_or(0)
}
fn f(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}
fn opt_s(v: &serde_json::Value) -> Option<String> {
    v.as_str().map(String::from)
}

fn run(db: &Session, sql: &'static str, params: &[String]) -> Result<QueryResult, AnalysisError> {
    Ok(db.query_own(sql, params)?)
}

/// Opens `db` for a report: the classification and the episodes are computed once.
pub fn session(db: &Path) -> Result<Session, AnalysisError> {
    let s = Session::open(db)?;
    s.define_views(&[queries::CLASSIFY_MISSES, queries::SLO, queries::EPISODES])?;
    s.materialize(&["signal_events", "miss_causes", "episodes", "hit_ratio_5m"])?;
    Ok(s)
}

/// The time range of all requests in the database.
pub fn data_range(db: &Session) -> Result<Option<Period>, AnalysisError> {
    let r = run(db, "SELECT strftime(min(ts), '%Y-%m-%dT%H:%M:%S.%fZ'), strftime(max(ts), '%Y-%m-%dT%H:%M:%S.%fZ') FROM events WHERE event IN ('hit', 'miss')", &[])?;
    let row = r.rows.first().ok_or_else(|| AnalysisError::Shape("no row".into()))?;
    match (row[0].as_str().and_then(parse_ts), row[1].as_str().and_then(parse_ts)) {
        (Some(a), Some(b)) => Ok(Some(Period {
            from: a,
            until: b + chrono::Duration::microseconds(1),
        })),
        _ => Ok(None),
    }
}

/// Builds the report for `period`.
pub fn report(db: &Session, period: Period) -> Result<Report, AnalysisError> {
    let p = period.params();
    let totals = run(db, queries::REPORT_TOTALS, &p)?;
    let t = totals.rows.first().ok_or_else(|| AnalysisError::Shape("totals".into()))?;
    let (hits, misses, requests) = (i(&t[0]), i(&t[1]), i(&t[2]));
    let causes = run(db, queries::REPORT_CAUSES, &p)?
        .rows
        .iter()
        .map(|r| CauseRow {
            cause: s(&r[0]),
            misses: i(&r[1]),
            share: f(&r[2]).unwrap_or(0.0),
            top_symbols: r[3]
                .as_array()
                .into_iter()
                .flatten()
                .zip(r[4].as_array().into_iter().flatten())
                .map(|(sym, n)| SymbolCount {
                    symbol: s(sym),
                    misses: i(n),
                })
                .collect(),
            runbook: runbook_for(&s(&r[0])),
        })
        .collect();
    let episodes = run(db, queries::REPORT_EPISODES, &p)?
        .rows
        .iter()
        .map(|r| {
            let list = |v: &serde_json::Value| -> Vec<String> { v.as_array().into_iter().flatten().map(s).collect() };
            let mut evidence = Vec::new();
            if let Some(text) = opt_s(&r[9]) {
                evidence.push(Evidence { path: s(&r[10]), line: i(&r[11]), text });
            }
            if let Some(text) = opt_s(&r[12]) {
                let e = Evidence { path: s(&r[13]), line: i(&r[14]), text };
                // When the first signal is the first miss (new symbols), quote it once.
                if !evidence.contains(&e) {
                    evidence.push(e);
                }
            }
            EpisodeRow {
                kind: s(&r[0]),
                start: s(&r[1]),
                end: s(&r[2]),
                misses: i(&r[3]),
                keys: i(&r[4]),
                symbols: i(&r[5]),
                some_symbols: list(&r[6]),
                causes: list(&r[7]),
                runbook: s(&r[8]),
                evidence,
            }
        })
        .collect();
    let alerts = run(db, queries::REPORT_ALERTS, &p)?
        .rows
        .iter()
        .map(|r| AlertRow {
            alert: s(&r[0]),
            severity: s(&r[1]),
            pending_since: opt_s(&r[2]),
            start: opt_s(&r[3]),
            end: opt_s(&r[4]),
            state: s(&r[5]),
            worst_ratio: f(&r[6]),
        })
        .collect();
    let bp = vec![
        period.until.to_string(),
        period.until.to_string(),
        period.from.to_string(),
        period.until.to_string(),
        period.from.to_string(),
        period.until.to_string(),
    ];
    let b = run(db, queries::REPORT_BUDGET, &bp)?;
    let b = b.rows.first().ok_or_else(|| AnalysisError::Shape("budget".into()))?;
    let target = f(&b[0]).unwrap_or(SLO.target);
    let consumed = f(&b[5]);
    let budget = Budget {
        slo_target: target,
        window_days: i(&b[1]),
        window_requests: i(&b[2]),
        window_misses: i(&b[3]),
        allowed_misses: f(&b[4]).unwrap_or(0.0),
        consumed,
        remaining: consumed.map(|c| 1.0 - c),
        burn_rate: f(&b[8]),
    };
    let breach_minutes = i(&b[9]);
    let hit_ratio = (requests > 0).then(|| hits as f64 / requests as f64);
    let status = match hit_ratio {
        None => "no traffic",
        Some(r) if r >= target && breach_minutes == 0 => "met",
        _ => "breached",
    };
    let timeline = run(db, queries::REPORT_TIMELINE, &[period.from.to_string(), period.until.to_string()])?
        .rows
        .iter()
        .map(|r| Point {
            t: s(&r[0]),
            hit_ratio: f(&r[1]),
            requests: i(&r[2]),
        })
        .collect();
    Ok(Report {
        period,
        requests,
        hits,
        misses,
        hit_ratio,
        slo: Slo {
            target,
            status: status.into(),
            breach_minutes,
        },
        error_budget: budget,
        causes,
        episodes,
        alerts,
        timeline,
    })
}

/// The runbook's escalation levels.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Escalation {
    pub level: u8,
    pub name: String,
    pub owner: String,
}

/// The post-incident summary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Incident {
    pub report: Report,
    pub escalation: Option<Escalation>,
    /// Longest time an alert was firing, minutes.
    pub longest_firing_minutes: f64,
    /// Misses in the incident over the window's allowed misses.
    pub budget_cost: Option<f64>,
    pub evidence: Vec<(String, Vec<Evidence>)>,
    /// Alerts and episodes, in time order.
    pub timeline: Vec<TimelineEntry>,
}

/// A moment of the incident: an alert pending, firing or resolved, an episode starting or
/// ending.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimelineEntry {
    /// RFC 3339, UTC.
    pub time: String,
    pub event: String,
}

/// The incident's alerts and episodes as one list in time order (ties: alerts before
/// episodes, each in report order).
fn timeline(report: &Report) -> Vec<TimelineEntry> {
    let mut t: Vec<(NaiveDateTime, usize, TimelineEntry)> = Vec::new();
    let mut push = |time: &str, event: String| {
        if let Some(at) = parse_ts(time) {
            let n = t.len();
            t.push((at, n, TimelineEntry { time: time.to_string(), event }));
        }
    };
    for a in &report.alerts {
        if let Some(p) = &a.pending_since {
            push(p, format!("{} pending", a.alert));
        }
        if let Some(f) = &a.start {
            push(f, format!("{} **firing** ({})", a.alert, a.severity));
        }
        let worst = a.worst_ratio.map(|w| format!("{:.2}%", w * 100.0)).unwrap_or_else(|| "n/a".into());
        match &a.end {
            Some(e) => push(e, format!("{} resolved (worst 5-minute ratio {worst})", a.alert)),
            None => push(&fmt_ts(report.period.until), format!("{} still firing at the end of the window (worst 5-minute ratio {worst})", a.alert)),
        }
    }
    for e in &report.episodes {
        push(&e.start, format!("episode {} starts ({} misses, {})", e.kind, e.misses, e.runbook));
        push(&e.end, format!("episode {} ends", e.kind));
    }
    t.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    t.into_iter().map(|x| x.2).collect()
}

/// The period of the last alert that fired (pending start to resolution).
pub fn last_alert(db: &Session) -> Result<Period, AnalysisError> {
    let r = run(db, queries::LAST_ALERT, &[])?;
    let row = r.rows.first().ok_or_else(|| AnalysisError::NoAlert { db: String::new() })?;
    match (row[0].as_str().and_then(parse_ts), row[1].as_str().and_then(parse_ts)) {
        (Some(a), Some(b)) => Ok(Period {
            from: a - chrono::Duration::minutes(5),
            until: b + chrono::Duration::minutes(1),
        }),
        _ => Err(AnalysisError::NoAlert { db: String::new() }),
    }
}

/// Builds the incident summary for `period`.
pub fn incident(db: &Session, period: Period) -> Result<Incident, AnalysisError> {
    let report = report(db, period)?;
    let mut longest = 0.0f64;
    let mut critical = false;
    let mut warning = false;
    for a in &report.alerts {
        let (Some(s), e) = (a.start.as_deref().and_then(parse_ts), a.end.as_deref().and_then(parse_ts)) else { continue };
        let end = e.unwrap_or(period.until).min(period.until);
        longest = longest.max((end - s.max(period.from)).num_seconds() as f64 / 60.0);
        match a.severity.as_str() {
            "critical" => critical = true,
            _ => warning = true,
        }
    }
    let escalation = if longest > 30.0 {
        Some(Escalation {
            level: 3,
            name: "Extended Outage (>30 minutes)".into(),
            owner: "Engineering leadership (war room); dev-data-oncall + platform-oncall".into(),
        })
    } else if critical {
        Some(Escalation {
            level: 2,
            name: format!("Critical Alert (hit ratio < {})", SloPolicy::percent(SLO.critical_ratio)),
            owner: "dev-data-oncall + platform-oncall".into(),
        })
    } else if warning {
        Some(Escalation {
            level: 1,
            name: format!("Warning Alert (hit ratio < {})", SloPolicy::percent(SLO.target)),
            owner: "dev-data-oncall".into(),
        })
    } else {
        None
    };
    let budget_cost = (report.error_budget.allowed_misses > 0.0).then(|| report.misses as f64 / report.error_budget.allowed_misses);
    let ev = run(db, queries::INCIDENT_EVIDENCE, &period.params())?;
    let mut evidence: Vec<(String, Vec<Evidence>)> = Vec::new();
    for c in &report.causes {
        let lines = ev
            .rows
            .iter()
            .filter(|r| s(&r[0]) == c.cause)
            .map(|r| Evidence {
                text: s(&r[1]),
                path: s(&r[2]),
                line: i(&r[3]),
            })
            .collect();
        evidence.push((c.cause.clone(), lines));
    }
    Ok(Incident {
        timeline: timeline(&report),
        report,
        escalation,
        longest_firing_minutes: longest,
        budget_cost,
        evidence,
    })
}
