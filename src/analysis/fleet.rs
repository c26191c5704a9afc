//! What a fleet report adds to a report (`report|incident --fleet`): each host's own figures
//! (requests, hit ratio, SLO, the alerts its own 5-minute ratio fired) and the misses by host
//! and cause. The fleet-wide figures are the report itself, from counts summed per minute.
//! [`crate::fleet`] loads the hosts' files and points the views at one host or all.

use serde::{Deserialize, Serialize};

use super::{rows, slo_figures, AlertRow, AnalysisError, Period, Slo, SloFigures};
use crate::queries;
use crate::query::Session;

/// The hosts of a fleet report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FleetFigures {
    pub hosts: Vec<HostFigures>,
    pub causes_by_host: Vec<HostCause>,
    /// Days of the period whose per-minute figures were found but not their misses or
    /// episodes (not exported, or left out by the glob): their misses count in the figures
    /// but have no causes, their episodes are not listed.
    pub missing: Vec<MissingFile>,
}

/// A host's day of a table that the fleet's files do not have.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissingFile {
    pub host: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `misses` or `episodes`.
    pub table: String,
}

/// One host's figures in a fleet report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostFigures {
    pub host: String,
    pub requests: i64,
    pub hits: i64,
    pub misses: i64,
    pub hit_ratio: Option<f64>,
    /// Its share of the fleet's misses.
    pub share_of_misses: Option<f64>,
    pub slo: Slo,
    /// The share of its own error budget consumed over the budget window.
    pub budget_consumed: Option<f64>,
    /// The alerts its own 5-minute ratio fired in the period.
    pub alerts: Vec<AlertRow>,
}

/// A host's misses of one cause.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostCause {
    pub host: String,
    pub cause: String,
    pub misses: i64,
    /// Of the host's misses.
    pub share: f64,
}

/// The figures of `host` in `period`, from a session whose views read that host only.
pub fn host_figures(db: &Session, period: Period, host: &str, fleet_misses: i64) -> Result<HostFigures, AnalysisError> {
    let SloFigures { requests, hits, misses, hit_ratio, slo, error_budget, alerts, .. } = slo_figures(db, period)?;
    Ok(HostFigures {
        host: host.to_string(),
        requests,
        hits,
        misses,
        hit_ratio,
        share_of_misses: (fleet_misses > 0).then(|| misses as f64 / fleet_misses as f64),
        slo,
        budget_consumed: error_budget.consumed,
        alerts,
    })
}

/// Misses by host and cause in `period`, from a session whose views read every host.
pub fn causes_by_host(db: &Session, period: Period) -> Result<Vec<HostCause>, AnalysisError> {
    rows(db, queries::FLEET_CAUSES_BY_HOST, &period.params())
}
