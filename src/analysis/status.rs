//! `cachescope slo`: the SLO's state at one moment: the 5-minute ratio, each alert's state
//! (with Prometheus semantics), the error budget. Read from the per-minute figures only: it
//! never computes the misses' causes, so it costs what one moment costs.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::slo::ALERTS;
use super::{rows, slo_figures, AlertRow, AnalysisError, Budget, Period};
use crate::engine::clock::{fmt_ts, parse_ts};
use crate::queries;
use crate::query::Session;

/// An alert's state at the moment asked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertState {
    pub alert: String,
    /// `inactive`, `pending` or `firing`.
    pub state: String,
    /// Since when it is pending or firing.
    pub since: Option<String>,
}

/// The SLO at one moment (`cachescope slo`; its JSON shape).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SloStatus {
    pub at: String,
    pub hit_ratio_5m: Option<f64>,
    pub slo_target: f64,
    pub alerts: Vec<AlertState>,
    pub error_budget: Budget,
}

/// The SLO at `at` (default: the last request in the database, else now). Alerts are judged
/// from the evaluations of the six hours before it, widened to the whole alert periods going
/// on there; an alert is pending from its first breaching evaluation until it fires.
pub fn slo_status(db: &Session, at: Option<NaiveDateTime>) -> Result<SloStatus, AnalysisError> {
    let at = match at {
        Some(t) => t,
        None => super::data_range(db)?.map(|r| r.until).unwrap_or_else(|| chrono::Utc::now().naive_utc()),
    };
    let f = slo_figures(db, Period { from: at - Duration::hours(6), until: at })?;
    // The periods going on at `at`, fired or not (the figures' are those that fired).
    let moment = [at.to_string(), (at + Duration::microseconds(1)).to_string(), "false".into()];
    let going_on: Vec<AlertRow> = rows(db, queries::REPORT_ALERTS, &moment)?;
    let ts = |x: &Option<String>| x.as_deref().and_then(parse_ts);
    let alerts = ALERTS
        .iter()
        .map(|name| {
            // Firing between firing and resolution, pending before firing.
            let mut state = AlertState { alert: name.to_string(), state: "inactive".into(), since: None };
            for a in going_on.iter().filter(|a| a.alert == *name) {
                let (p, fired, end) = (ts(&a.pending_since), ts(&a.start), ts(&a.end));
                let open = end.is_none_or(|e| e > at);
                if fired.is_some_and(|t| t <= at) && open {
                    state.state = "firing".into();
                    state.since = a.start.clone();
                } else if p.is_some_and(|p| p <= at) && fired.is_none_or(|t| t > at) && open {
                    state.state = "pending".into();
                    state.since = a.pending_since.clone();
                }
            }
            state
        })
        .collect();
    Ok(SloStatus {
        at: fmt_ts(at),
        hit_ratio_5m: f.timeline.iter().rev().find_map(|p| p.hit_ratio),
        slo_target: f.slo.target,
        alerts,
        error_budget: f.error_budget,
    })
}

impl SloStatus {
    /// The text `cachescope slo` prints.
    pub fn text(&self) -> String {
        let pct = |x: Option<f64>, none: &str| x.map(|x| format!("{:.2}%", x * 100.0)).unwrap_or_else(|| none.into());
        let mut out = format!(
            "at {}: 5-minute hit ratio {} (SLO >= {:.0}%)\n",
            self.at,
            pct(self.hit_ratio_5m, "n/a (no traffic)"),
            self.slo_target * 100.0
        );
        for s in &self.alerts {
            let since = s.since.as_deref().map(|x| format!(" since {x}")).unwrap_or_default();
            out.push_str(&format!("  {:<30} {}{since}\n", s.alert, s.state));
        }
        let b = &self.error_budget;
        out.push_str(&format!(
            "  error budget ({} days): {} of {:.0} allowed misses used, {} remaining\n",
            b.window_days,
            b.window_misses,
            b.allowed_misses,
            b.remaining.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "n/a".into())
        ));
        out
    }
}
