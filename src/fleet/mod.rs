//! The fleet view (`report|incident|slo --fleet 'DIR or GLOB'`): every host's exported files
//! ([`crate::export`]) loaded into an in-memory DuckDB ([`Fleet`]), where the single-host
//! analysis runs unchanged over views that sum the hosts' per-minute counts (the fleet-wide
//! SLO: summed counts, never averaged ratios) or read one host (its own figures and alerts).
//! The per-minute figures of every day are loaded (small: a row per minute and feature set);
//! misses and episodes only for the days a question needs. [`discover`] finds the files;
//! [`load`] reads one; [`tally`] counts a day of misses for a report.
//!
//! Periods are whole minutes (the per-minute figures are the finest the export keeps): a
//! period is widened to the minutes it touches. A miss is classified on its own host (its
//! cache is its own), and an episode is one host's.

pub mod discover;
pub mod load;
pub mod tally;

use std::path::PathBuf;

use chrono::{Duration, NaiveDate, NaiveDateTime, Timelike};
use duckdb::Connection;
use serde::{Deserialize, Serialize};

use crate::analysis::{self, fleet as figures, AnalysisError, Incident, Period, Report, Scope, SloStatus};
use crate::export::tables;
use crate::queries;
use crate::query::Session;
pub use discover::Part;

/// Failure to read a fleet's files.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("no exported files at `{pattern}` (expected `<table>/host=<host>/date=<YYYY-MM-DD>/*.parquet` below it, as `cachescope export` writes them); check the path or the glob")]
    NoFiles { pattern: String },
    #[error("`{pattern}` is not a valid glob: {source}")]
    Pattern { pattern: String, source: glob::PatternError },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not in the export layout `<table>/host=<host>/date=<YYYY-MM-DD>/<name>.parquet` (table: request_minutes, misses or episodes); give the export's directory or a glob of its files")]
    NotInLayout { path: PathBuf },
    #[error("host {host}'s {table} of {day} is both in {first} and in {second}: it would count twice; give one copy of each host's export")]
    Duplicate { table: &'static str, host: String, day: NaiveDate, first: PathBuf, second: PathBuf },
    #[error("{path} is not a readable Parquet file: {source}; export that host's day again (`cachescope export`) or remove the file")]
    Parquet { path: PathBuf, source: crate::BoxError },
    #[error("{path} is not a `cachescope export` file: {problem}")]
    Schema { path: PathBuf, problem: String },
    #[error("loading {path}: {source}")]
    Load { path: PathBuf, source: duckdb::Error },
    #[error("setting up the fleet's in-memory database: {0}")]
    Db(#[from] duckdb::Error),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
}

/// What a fleet report says of cache sizing when capacity evictions are among its top causes.
pub const SIZING_NOTE: &str = "capacity is each host's own: size a host's cache with `cachescope whatif --db` on that host's database (the misses by host and cause say which hosts evict)";

/// A fleet's exported files, loaded for the analysis.
pub struct Fleet {
    pattern: String,
    parts: Vec<Part>,
    /// What of the misses and episodes is loaded: for which period, with the log lines or not.
    details: Option<(Period, bool)>,
    session: Session,
    hosts: Vec<String>,
    /// The host the views read now (`Some(None)`: every host), to skip setting it again.
    scoped: std::cell::RefCell<Option<Option<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostRow {
    host: String,
    #[allow(dead_code)]
    first_ts: Option<String>,
    #[allow(dead_code)]
    last_ts: Option<String>,
}

/// The SLO at one moment, fleet-wide and on each host (`slo --fleet`; its JSON shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetSlo {
    pub fleet: SloStatus,
    pub hosts: Vec<HostSlo>,
}

/// One host's SLO at the moment asked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostSlo {
    pub host: String,
    #[serde(flatten)]
    pub status: SloStatus,
}

impl Fleet {
    /// Finds the files of `pattern` (a directory or a glob) and loads every host's per-minute
    /// figures.
    pub fn open(pattern: &str) -> Result<Fleet, FleetError> {
        let parts = discover::discover(pattern)?;
        let session = Session::in_memory().map_err(AnalysisError::from)?;
        {
            let conn = session.direct_connection().expect("an in-memory session has a connection");
            conn.execute_batch(queries::FLEET_SCHEMA)?;
            conn.execute_batch(queries::EVALUATIONS_MACRO)?;
            conn.execute_batch(queries::SLO)?;
            for p in parts.iter().filter(|p| p.table == tables::MINUTES) {
                load::load(conn, p, &load::Slice { lines: false, during: None })?;
            }
        }
        let mut fleet = Fleet { pattern: pattern.into(), parts, details: None, session, hosts: Vec::new(), scoped: Default::default() };
        fleet.scope(None)?;
        let hosts: Vec<HostRow> = fleet.session.query_own(queries::FLEET_HOSTS, &[]).map_err(AnalysisError::from)?.decode().map_err(AnalysisError::from)?;
        if hosts.is_empty() {
            return Err(FleetError::NoFiles { pattern: pattern.into() });
        }
        fleet.hosts = hosts.into_iter().map(|h| h.host).collect();
        Ok(fleet)
    }

    /// The session the analysis reads (its views read the hosts [`Fleet::scope`] chose).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The hosts with per-minute figures, sorted.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The exported files found.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    fn conn(&self) -> &Connection {
        self.session.direct_connection().expect("a fleet's session is an in-memory connection")
    }

    /// Points the views at one host, or at every host (`None`): sums the scope's per-minute
    /// figures, which every SLO question reads (each computes the 5-minute ratios of its range).
    pub fn scope(&self, host: Option<&str>) -> Result<(), FleetError> {
        let wanted = Some(host.map(str::to_string));
        if *self.scoped.borrow() == wanted {
            return Ok(());
        }
        self.scoped.replace(None);
        let conn = self.conn();
        conn.execute(queries::FLEET_SCOPE_CLEAR, [])?;
        if let Some(h) = host {
            conn.execute(queries::FLEET_SCOPE_SET, [h])?;
        }
        conn.execute_batch(queries::FLEET_SCOPE_MINUTES)?;
        self.scoped.replace(wanted);
        Ok(())
    }

    /// `period` widened to the whole minutes it touches.
    pub fn whole_minutes(period: Period) -> Period {
        Period { from: floor_minute(period.from), until: ceil_minute(period.until) }
    }

    /// Loads the misses of `period` and the episodes that may overlap it (those that started
    /// up to two days before); `lines`: the misses with their log lines (an incident's
    /// evidence), else only what their counts need. What another period or less detail loaded
    /// before (or a load that failed half-way) is replaced.
    pub fn load_details(&mut self, period: Period, lines: bool) -> Result<(), FleetError> {
        if matches!(self.details, Some((p, l)) if p == period && (l || !lines)) {
            return Ok(());
        }
        self.details = None;
        self.conn().execute_batch(queries::FLEET_DETAILS_CLEAR)?;
        let last = (period.until - Duration::microseconds(1)).date();
        let first_misses = period.from.date();
        let first_episodes = first_misses - Duration::days(2);
        let misses = load::Slice { lines, during: Some((period.from, period.until)) };
        let episodes = load::Slice { lines, during: None };
        for p in &self.parts {
            let (first, slice) = match p.table {
                tables::MISSES => (first_misses, &misses),
                tables::EPISODES => (first_episodes, &episodes),
                _ => continue,
            };
            if p.day >= first && p.day <= last {
                load::load(self.conn(), p, slice)?;
            }
        }
        self.details = Some((period, lines));
        Ok(())
    }

    /// The hosts' days of `period` with per-minute figures but no misses or episodes file.
    fn missing(&self, period: Period) -> Vec<analysis::MissingFile> {
        let (first, last) = (period.from.date(), (period.until - Duration::microseconds(1)).date());
        let found: std::collections::BTreeSet<(&str, &str, NaiveDate)> = self.parts.iter().map(|p| (p.table, p.host.as_str(), p.day)).collect();
        let mut missing = Vec::new();
        for p in self.parts.iter().filter(|p| p.table == tables::MINUTES && p.day >= first && p.day <= last) {
            for table in [tables::MISSES, tables::EPISODES] {
                if !found.contains(&(table, p.host.as_str(), p.day)) {
                    missing.push(analysis::MissingFile { host: p.host.clone(), day: p.day.to_string(), table: table.to_string() });
                }
            }
        }
        missing
    }

    /// The fleet-wide report of `period` with each host's figures and causes.
    pub fn report(&mut self, period: Period) -> Result<Report, FleetError> {
        self.load_details(period, false)?;
        self.scope(None)?;
        let mut r = analysis::report_of(&self.session, period, Scope::Fleet)?;
        let mut f = analysis::FleetFigures { causes_by_host: figures::causes_by_host(&self.session, period)?, hosts: Vec::new(), missing: self.missing(period) };
        for h in &self.hosts {
            self.scope(Some(h))?;
            f.hosts.push(figures::host_figures(&self.session, period, h, r.misses)?);
        }
        self.scope(None)?;
        r.fleet = Some(f);
        if r.evictions_among_top_causes() {
            r.sizing = Some(analysis::Sizing { note: Some(SIZING_NOTE.into()), ..Default::default() });
        }
        Ok(r)
    }

    /// The post-incident summary of `period`, fleet-wide, with each host's figures.
    pub fn incident(&mut self, period: Period) -> Result<Incident, FleetError> {
        self.load_details(period, true)?;
        let r = self.report(period)?;
        Ok(analysis::incident_of(r, &self.session, period)?)
    }

    /// The period of the last alert that fired, fleet-wide or on any host.
    pub fn last_alert(&self) -> Result<Period, FleetError> {
        let mut last: Option<Period> = None;
        for h in std::iter::once(None).chain(self.hosts.iter().map(|h| Some(h.as_str()))) {
            self.scope(h)?;
            match analysis::last_alert(&self.session) {
                Ok(p) => {
                    if last.is_none_or(|l| (p.until, p.from) > (l.until, l.from)) {
                        last = Some(p);
                    }
                }
                Err(AnalysisError::NoAlert { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.scope(None)?;
        last.ok_or_else(|| AnalysisError::NoAlert { db: format!(" nor on any host of the fleet `{}`", self.pattern) }.into())
    }

    /// The SLO at `at` (default: the end of the fleet's last minute with requests; a moment
    /// within a minute is taken at its end), fleet-wide and on each host.
    pub fn slo(&self, at: Option<NaiveDateTime>) -> Result<FleetSlo, FleetError> {
        self.scope(None)?;
        let at = match at {
            Some(t) => Some(t),
            None => analysis::data_range(&self.session)?.map(|r| r.until),
        }
        .map(ceil_minute);
        let fleet = analysis::slo_status(&self.session, at)?;
        let mut hosts = Vec::new();
        for h in &self.hosts {
            self.scope(Some(h))?;
            hosts.push(HostSlo { host: h.clone(), status: analysis::slo_status(&self.session, at)? });
        }
        self.scope(None)?;
        Ok(FleetSlo { fleet, hosts })
    }
}

fn floor_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0).and_then(|t| t.with_nanosecond(0)).unwrap_or(t)
}

fn ceil_minute(t: NaiveDateTime) -> NaiveDateTime {
    if floor_minute(t) == t {
        t
    } else {
        floor_minute(t) + Duration::minutes(1)
    }
}

impl FleetSlo {
    /// The text `slo --fleet` prints: the fleet's state, then a line per host.
    pub fn text(&self) -> String {
        let mut out = format!("fleet ({} hosts) {}", self.hosts.len(), self.fleet.text());
        for h in &self.hosts {
            let s = &h.status;
            let ratio = s.hit_ratio_5m.map(|x| format!("{:.2}%", x * 100.0)).unwrap_or_else(|| "n/a".into());
            let alerts: Vec<String> = s.alerts.iter().filter(|a| a.state != "inactive").map(|a| format!("{} {}", a.alert, a.state)).collect();
            let budget = s.error_budget.remaining.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "n/a".into());
            out.push_str(&format!(
                "  host {:<20} 5-minute {:>8}  budget remaining {:>7}  {}\n",
                h.host,
                ratio,
                budget,
                if alerts.is_empty() { "no alert".to_string() } else { alerts.join(", ") }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_widen_to_whole_minutes() {
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        let p = Fleet::whole_minutes(Period { from: t("2026-11-30 09:30:12.5"), until: t("2026-11-30 10:00:00.000001") });
        assert_eq!((p.from, p.until), (t("2026-11-30 09:30:00"), t("2026-11-30 10:01:00")));
        let whole = Period { from: t("2026-11-30 09:30:00"), until: t("2026-11-30 10:00:00") };
        assert_eq!(Fleet::whole_minutes(whole), whole);
    }
}
