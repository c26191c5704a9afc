//! Analysis: turns the SQL views (`miss_causes`, `episodes`, `hit_ratio_5m`, `alerts`, error
//! budget) into a [`Report`] for a period, and an [`Incident`] around an alert: what happened,
//! for how long, what it cost, which runbook level and owner, the causes ranked with their
//! evidence lines and the runbook action for each. All numbers come from `queries/*.sql`.

use std::path::Path;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::engine::clock::{fmt_ts, parse_ts};
use crate::queries;
use crate::vocab::{Cause, MissReason};
use crate::query::{QueryError, Session};

mod evaluations;
pub mod fleet;
pub mod slo;
mod status;
pub use evaluations::{evaluate_latest, last_alert};
pub use status::{slo_status, AlertState, SloStatus};

pub use fleet::{FleetFigures, HostCause, HostFigures, MissingFile};
pub use slo::{SloPolicy, SLO};

/// Failure of an analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("no alert has fired in the events database{db}; give --from and --to instead")]
    NoAlert { db: String },
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
    /// The host it happened on (fleet reports; an episode is one host's: its cache is its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
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
    /// For a thrashing episode in an incident: the size that would have avoided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizing: Option<Sizing>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    pub path: String,
    pub line: i64,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
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
    /// The 5-minute ratio over the period, for charts (at most [`TIMELINE_POINTS`] points).
    #[serde(skip)]
    pub timeline: Vec<Point>,
    /// What-if cache sizing, when capacity evictions are among the top causes
    /// (`whatif::sizing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizing: Option<Sizing>,
    /// A fleet report's hosts (`--fleet`): each host's figures and causes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetFigures>,
    /// Lines the classification reads that were classified out of the log's order since the
    /// last `reclassify` (they arrived after later ones; `ingest::classify`): the causes of
    /// misses among and after them may differ from the log's order.
    #[serde(skip_serializing_if = "is_zero")]
    pub late_lines: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The cache size that would have held the SLO (from `cachescope whatif`'s model).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Sizing {
    /// The capacity the engine ran with at the end of the period...
    pub current_gb: Option<f64>,
    /// ...and the smallest it ran with during it.
    pub smallest_gb: Option<f64>,
    /// The model's hit ratio at that capacity.
    pub predicted_hit_ratio: Option<f64>,
    /// The smallest capacity that holds the SLO over the period...
    pub period_gb: Option<f64>,
    /// ...and in every 5-minute window (no alert would have fired).
    pub every_window_gb: Option<f64>,
    /// What an infinite cache would have served.
    pub ceiling_hit_ratio: Option<f64>,
    /// Why there are no figures, or what stands in the way when no size holds the SLO.
    pub note: Option<String>,
    /// When only the last part of a long period was sized: where that part begins
    /// (`whatif::sizing::REPORT_SIZING_DAYS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sized_from: Option<String>,
}

impl Report {
    /// How many of the top causes are looked at for a "Cache sizing" section.
    pub const SIZING_TOP_CAUSES: usize = 3;

    /// Whether capacity evictions are among the top causes (the report then sizes the cache).
    pub fn evictions_among_top_causes(&self) -> bool {
        evictions_among_top_causes(&self.causes)
    }
}

/// Whether capacity evictions are among the top [`Report::SIZING_TOP_CAUSES`] of `causes`
/// (ordered as a report lists them).
pub fn evictions_among_top_causes(causes: &[CauseRow]) -> bool {
    causes
        .iter()
        .take(Report::SIZING_TOP_CAUSES)
        .any(|c| matches!(Cause::parse(&c.cause), Some(Cause::Engine(MissReason::EvictedCapacity) | Cause::Evicted)))
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
    let cause = Cause::parse(cause).unwrap_or(Cause::Unknown);
    let (section, action) = match cause {
        Cause::Engine(MissReason::WriteFailed) => ("1. Disk Space Issues", "Check `df -h` on the cache volume; clean old cache files (`find <cache_dir> -name \"*.parquet.zst\" -mtime +7 -delete`) or grow the volume."),
        Cause::Engine(MissReason::EvictedCapacity) | Cause::Evicted => ("5. Cache Thrashing; Medium-term 1. Optimize Cache Configuration", "The working set does not fit: raise `max_cache_size_gb` (and `cleanup_threshold`) in cachescope.toml."),
        Cause::Engine(MissReason::EvictedRetention) => ("Immediate 2. Increase Cache Retention", "Retention is too short for the workload: `systemctl stop feature-cache-cleanup.timer`, or `export FEATURE_CACHE_RETENTION_DAYS=14` and restart."),
        Cause::Engine(MissReason::NewSymbol) | Cause::Engine(MissReason::NewKey) => ("3. High Data Churn (expected); Immediate 1. Emergency Cache Warming", "New symbols joined the universe: warm the cache for them (`warm` op / FeatureStore::warm); silence the alert for 30 minutes if expected."),
        Cause::Engine(MissReason::InvalidatedData) | Cause::Invalidated => ("3. High Data Churn (expected)", "Market-data updates invalidated cached features: expected churn; silence the alert (Grafana, 30 minutes) and let the cache refill."),
        Cause::Engine(MissReason::InvalidatedConfig) => ("3. High Data Churn (expected)", "A feature set's configuration changed: expected churn; silence the alert (Grafana, 30 minutes) and let the cache refill."),
        Cause::Engine(MissReason::ComputeFailed) => ("4. Memory Pressure", "Feature computations ran out of memory: check `free -h` and the process memory (`ps aux | grep -E \"(trading|feature)\" | sort -k4 -nr`), `grep -i \"memory\\|oom\"` the log; raise the computation limit or add memory."),
        Cause::Engine(MissReason::ManifestUnavailable) => ("2. DuckDB Manifest Database Issues", "Another process held the manifest: `lsof ~/.feature_cache/manifest.duckdb` names it; stop it. If the manifest is corrupt, back it up and restart to rebuild it."),
        Cause::Engine(MissReason::MissingFile) => ("1. Disk Space Issues (clean-up) / Post-Incident 3", "Cache files were deleted behind the engine's back (a `find ... -delete`?): stop the external deletion; the files are recomputed on demand; warm critical symbols."),
        Cause::Unknown => ("Root Cause Analysis", "The log does not say enough to name a cause: check the application log around these lines."),
    };
    RunbookAction {
        section: section.into(),
        action: action.into(),
        expected_churn: cause.expected_churn(),
    }
}

/// Runs one of the crate's own queries and decodes its rows by column name.
fn rows<T: serde::de::DeserializeOwned>(db: &Session, sql: &'static str, params: &[String]) -> Result<Vec<T>, AnalysisError> {
    Ok(db.query_own(sql, params)?.decode()?)
}

/// [`rows`] of a query that returns exactly one row.
fn row<T: serde::de::DeserializeOwned>(db: &Session, sql: &'static str, params: &[String]) -> Result<T, AnalysisError> {
    Ok(db.query_own(sql, params)?.decode_one()?)
}

// Rows as the queries in `queries/` name their columns.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeRow {
    first_ts: Option<String>,
    last_ts: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotalsRow {
    hits: i64,
    misses: i64,
    requests: i64,
    #[allow(dead_code)]
    first_ts: Option<String>,
    #[allow(dead_code)]
    last_ts: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CauseSqlRow {
    cause: String,
    misses: i64,
    share: f64,
    top_symbols: Vec<String>,
    top_symbol_misses: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EpisodeSqlRow {
    #[serde(default)]
    host: Option<String>,
    kind: String,
    start: String,
    end: String,
    misses: i64,
    keys: i64,
    n_symbols: i64,
    symbols: Vec<String>,
    causes: Vec<String>,
    runbook: String,
    first_signal: Option<String>,
    signal_path: Option<String>,
    signal_line_no: Option<i64>,
    first_miss_line: Option<String>,
    miss_path: Option<String>,
    miss_line_no: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetRow {
    slo_target: f64,
    budget_window_days: i64,
    window_requests: i64,
    window_misses: i64,
    window_allowed_misses: f64,
    window_consumed: Option<f64>,
    breach_minutes: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointRow {
    eval_time: String,
    hit_ratio: Option<f64>,
    requests: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceRow {
    cause: String,
    raw: Option<String>,
    path: Option<String>,
    line_no: i64,
}

/// Opens `db` for the analysis (`report`, `incident`, `slo`, ...): each question computes the
/// 5-minute ratios of its own range (`evaluations`); the misses' causes are read from the
/// `miss_causes` table and the episodes found from the period's events.
pub fn session(db: &Path) -> Result<Session, AnalysisError> {
    let s = Session::open(db)?;
    s.use_own_views()?;
    Ok(s)
}

/// The time range of all requests in the database, within the times cachescope accepts (a
/// database ingested before they were checked may hold a line of the year 9999).
pub fn data_range(db: &Session) -> Result<Option<Period>, AnalysisError> {
    let r: RangeRow = row(db, queries::DATA_RANGE, &[])?;
    let (first, last) = crate::engine::clock::accepted_bounds();
    match (r.first_ts.as_deref().and_then(parse_ts), r.last_ts.as_deref().and_then(parse_ts)) {
        (Some(a), Some(b)) => Ok(Some(Period {
            from: a.clamp(first, last),
            until: b.clamp(first, last) + chrono::Duration::microseconds(1),
        })),
        _ => Ok(None),
    }
}

/// What the SLO says of a period: read from the per-minute figures, never from the
/// classification (cheap whatever the history).
pub(crate) struct SloFigures {
    pub requests: i64,
    pub hits: i64,
    pub misses: i64,
    pub hit_ratio: Option<f64>,
    pub slo: Slo,
    pub error_budget: Budget,
    pub alerts: Vec<AlertRow>,
    pub timeline: Vec<Point>,
}

/// The share of requests served from cache in `period` (`None`: no requests).
pub fn hit_ratio(db: &Session, period: Period) -> Result<Option<f64>, AnalysisError> {
    Ok(requests_and_hit_ratio(db, period)?.1)
}

/// The requests of `period` and the share served from cache.
pub fn requests_and_hit_ratio(db: &Session, period: Period) -> Result<(u64, Option<f64>), AnalysisError> {
    Ok(totals(db, period)?.requests_and_hit_ratio())
}

/// A period's requests, hits and misses (queries/report_totals.sql), counted once where a
/// report and its sizing both need them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    hits: i64,
    misses: i64,
    requests: i64,
}

impl Totals {
    /// The requests and the share served from cache (`None`: no requests).
    pub fn requests_and_hit_ratio(&self) -> (u64, Option<f64>) {
        (self.requests.max(0) as u64, (self.requests > 0).then(|| self.hits as f64 / self.requests as f64))
    }
}

/// The [`Totals`] of `period`.
pub fn totals(db: &Session, period: Period) -> Result<Totals, AnalysisError> {
    let TotalsRow { hits, misses, requests, .. } = row(db, queries::REPORT_TOTALS, &period.params())?;
    Ok(Totals { hits, misses, requests })
}

/// The most points a period's timeline has (a chart is 960 pixels wide): a longer period's
/// are each the lowest 5-minute ratio of their stretch (queries/report_timeline.sql). Two
/// days of evaluations fit whole.
pub const TIMELINE_POINTS: usize = 2_880;

/// [`SloFigures`] of `period`.
pub(crate) fn slo_figures(db: &Session, period: Period) -> Result<SloFigures, AnalysisError> {
    slo_figures_counted(db, period, None)
}

/// [`slo_figures`], with the period's [`Totals`] when they were counted already.
fn slo_figures_counted(db: &Session, period: Period, counted: Option<Totals>) -> Result<SloFigures, AnalysisError> {
    evaluations::evaluate(db, period)?;
    let Totals { hits, misses, requests } = match counted {
        Some(t) => t,
        None => totals(db, period)?,
    };
    let fired = [period.from.to_string(), period.until.to_string(), "true".into()];
    let alerts: Vec<AlertRow> = rows(db, queries::REPORT_ALERTS, &fired)?;
    let bp = [period.until.to_string(), period.until.to_string(), period.from.to_string(), period.until.to_string()];
    let b: BudgetRow = row(db, queries::REPORT_BUDGET, &bp)?;
    let target = b.slo_target;
    let budget = Budget {
        slo_target: target,
        window_days: b.budget_window_days,
        window_requests: b.window_requests,
        window_misses: b.window_misses,
        allowed_misses: b.window_allowed_misses,
        consumed: b.window_consumed,
        remaining: b.window_consumed.map(|c| 1.0 - c),
        // The share of the period's requests missed, over the share the SLO allows.
        burn_rate: (requests > 0).then(|| (misses as f64 / requests as f64) / (1.0 - target)),
    };
    let breach_minutes = b.breach_minutes;
    let hit_ratio = (requests > 0).then(|| hits as f64 / requests as f64);
    let status = match hit_ratio {
        None => "no traffic",
        Some(r) if r >= target && breach_minutes == 0 => "met",
        _ => "breached",
    };
    let points = [period.from.to_string(), period.until.to_string(), TIMELINE_POINTS.to_string()];
    let timeline = rows::<PointRow>(db, queries::REPORT_TIMELINE, &points)?
        .into_iter()
        .map(|r| Point {
            t: r.eval_time,
            hit_ratio: r.hit_ratio,
            requests: r.requests,
        })
        .collect();
    Ok(SloFigures {
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
        alerts,
        timeline,
    })
}

/// Which query lists a report's episodes: a host's ([`queries::REPORT_EPISODES`]) or the
/// fleet's, with their host ([`queries::FLEET_EPISODES`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scope {
    Host,
    Fleet,
}

impl Scope {
    fn episodes_sql(self) -> &'static str {
        match self {
            Scope::Host => queries::REPORT_EPISODES,
            Scope::Fleet => queries::FLEET_EPISODES,
        }
    }
}

/// Builds the report for `period`, listing the episodes of `scope`, without its cache sizing
/// (`whatif::sizing::report` adds it; a fleet says how to get it).
pub fn report_of(db: &Session, period: Period, scope: Scope) -> Result<Report, AnalysisError> {
    report_with(db, findings(db, period, scope, causes(db, period)?)?)
}

/// What a report finds in its period before its figures: the misses' causes and the episodes.
/// They decide whether the report sizes the cache (`whatif::sizing`), which can then begin
/// beside the rest of the report.
pub struct Findings {
    period: Period,
    scope: Scope,
    pub causes: Vec<CauseRow>,
    pub episodes: Vec<EpisodeRow>,
    /// The period's totals, when they were counted before the figures (for its sizing).
    totals: Option<Totals>,
}

impl Findings {
    /// These findings with their period's totals, counted already: the figures use them.
    pub fn counted(self, totals: Totals) -> Findings {
        Findings { totals: Some(totals), ..self }
    }
}

/// The misses of `period` by cause, the largest first.
pub fn causes(db: &Session, period: Period) -> Result<Vec<CauseRow>, AnalysisError> {
    Ok(rows::<CauseSqlRow>(db, queries::REPORT_CAUSES, &period.params())?
        .into_iter()
        .map(|r| CauseRow {
            runbook: runbook_for(&r.cause),
            cause: r.cause,
            misses: r.misses,
            share: r.share,
            top_symbols: r
                .top_symbols
                .into_iter()
                .zip(r.top_symbol_misses)
                .map(|(symbol, misses)| SymbolCount { symbol, misses })
                .collect(),
        })
        .collect())
}

/// The findings of `period`: its `causes` and its episodes (those of `scope`).
pub fn findings(db: &Session, period: Period, scope: Scope, causes: Vec<CauseRow>) -> Result<Findings, AnalysisError> {
    let episodes = rows::<EpisodeSqlRow>(db, scope.episodes_sql(), &period.params())?
        .into_iter()
        .map(|r| {
            let mut evidence = Vec::new();
            if let Some(text) = r.first_signal {
                evidence.push(Evidence { path: r.signal_path.unwrap_or_default(), line: r.signal_line_no.unwrap_or(0), text });
            }
            if let Some(text) = r.first_miss_line {
                let e = Evidence { path: r.miss_path.unwrap_or_default(), line: r.miss_line_no.unwrap_or(0), text };
                // When the first signal is the first miss (new symbols), quote it once.
                if !evidence.contains(&e) {
                    evidence.push(e);
                }
            }
            EpisodeRow {
                host: r.host,
                kind: r.kind,
                start: r.start,
                end: r.end,
                misses: r.misses,
                keys: r.keys,
                symbols: r.n_symbols,
                some_symbols: r.symbols,
                causes: r.causes,
                runbook: r.runbook,
                evidence,
                sizing: None,
            }
        })
        .collect();
    Ok(Findings { period, scope, causes, episodes, totals: None })
}

/// The report of what `findings` found, with the figures of its period.
pub fn report_with(db: &Session, findings: Findings) -> Result<Report, AnalysisError> {
    let Findings { period, scope, causes, episodes, totals } = findings;
    let SloFigures { requests, hits, misses, hit_ratio, slo, error_budget, alerts, timeline } = slo_figures_counted(db, period, totals)?;
    Ok(Report {
        period,
        requests,
        hits,
        misses,
        hit_ratio,
        slo,
        error_budget,
        causes,
        episodes,
        alerts,
        timeline,
        sizing: None,
        fleet: None,
        late_lines: match scope {
            Scope::Host => late_lines(db)?,
            Scope::Fleet => 0,
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LateRow {
    late_events: i64,
}

/// Lines the ingester classified out of the log's order.
fn late_lines(db: &Session) -> Result<i64, AnalysisError> {
    Ok(row::<LateRow>(db, queries::REPORT_LATE, &[])?.late_events)
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

/// The alerts of a report: its own, then (a fleet's) each host's, with the host.
fn all_alerts(report: &Report) -> impl Iterator<Item = (Option<&str>, &AlertRow)> {
    let hosts = report.fleet.iter().flat_map(|f| f.hosts.iter()).flat_map(|h| h.alerts.iter().map(move |a| (Some(h.host.as_str()), a)));
    report.alerts.iter().map(|a| (None, a)).chain(hosts)
}

/// The incident's alerts and episodes as one list in time order (ties: alerts before
/// episodes, each in report order). A host's alert says its host.
fn timeline(report: &Report) -> Vec<TimelineEntry> {
    let mut t: Vec<(NaiveDateTime, usize, TimelineEntry)> = Vec::new();
    let mut push = |time: &str, event: String| {
        if let Some(at) = parse_ts(time) {
            let n = t.len();
            t.push((at, n, TimelineEntry { time: time.to_string(), event }));
        }
    };
    for (host, a) in all_alerts(report) {
        let on = host.map(|h| format!("{h}: ")).unwrap_or_default();
        if let Some(p) = &a.pending_since {
            push(p, format!("{on}{} pending", a.alert));
        }
        if let Some(f) = &a.start {
            push(f, format!("{on}{} **firing** ({})", a.alert, a.severity));
        }
        let worst = a.worst_ratio.map(|w| format!("{:.2}%", w * 100.0)).unwrap_or_else(|| "n/a".into());
        match &a.end {
            Some(e) => push(e, format!("{on}{} resolved (worst 5-minute ratio {worst})", a.alert)),
            None => push(&fmt_ts(report.period.until), format!("{on}{} still firing at the end of the window (worst 5-minute ratio {worst})", a.alert)),
        }
    }
    for e in &report.episodes {
        let on = e.host.as_deref().map(|h| format!(" on {h}")).unwrap_or_default();
        push(&e.start, format!("episode {}{on} starts ({} misses, {})", e.kind, e.misses, e.runbook));
        push(&e.end, format!("episode {}{on} ends", e.kind));
    }
    t.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    t.into_iter().map(|x| x.2).collect()
}

/// Builds the incident summary for `period` around its `report` (which a fleet's completes
/// with its hosts first: their alerts count as the fleet's for the escalation).
pub fn incident_of(report: Report, db: &Session, period: Period) -> Result<Incident, AnalysisError> {
    let mut longest = 0.0f64;
    let mut critical = false;
    let mut warning = false;
    for (_, a) in all_alerts(&report) {
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
    let ev: Vec<EvidenceRow> = rows(db, queries::INCIDENT_EVIDENCE, &period.params())?;
    let mut evidence: Vec<(String, Vec<Evidence>)> = Vec::new();
    for c in &report.causes {
        let lines = ev
            .iter()
            .filter(|r| r.cause == c.cause)
            .map(|r| Evidence {
                text: r.raw.clone().unwrap_or_default(),
                path: r.path.clone().unwrap_or_default(),
                line: r.line_no,
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
