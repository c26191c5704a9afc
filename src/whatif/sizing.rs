//! What-if sizing inside `report` and `incident`: a "Cache sizing" section when capacity
//! evictions are among the report's top causes, and for each thrashing episode of an
//! incident the size that would have avoided it.

use super::{read_shared, whatif_in, Question, SharedTrace, WhatIf, WhatIfError};
use crate::analysis::{EpisodeRow, Incident, Period, Report, Sizing};
use crate::engine::clock::parse_ts;
use crate::query::Session;
use crate::vocab::EpisodeKind;

fn sizing_of(w: &WhatIf) -> Sizing {
    let pct = |x: f64| format!("{:.2}%", x * 100.0);
    let note = match (&w.blocked, &w.blocked_every_window) {
        (Some(b), _) => Some(format!(
            "No size holds {} over the period: an infinite cache would have served {}; {} stand in the way",
            pct(w.slo_target),
            pct(b.ceiling_hit_ratio),
            b.cause
        )),
        (None, Some(b)) => Some(format!(
            "No size holds {} in every 5-minute window: in the worst{}, an infinite cache would have served {}; {} stand in the way",
            pct(w.slo_target),
            b.window_end.as_ref().map(|t| format!(" (ending {t})")).unwrap_or_default(),
            pct(b.ceiling_hit_ratio),
            b.cause
        )),
        _ => None,
    };
    Sizing {
        current_gb: w.current.capacity_gb,
        smallest_gb: w.current.smallest_capacity_gb,
        predicted_hit_ratio: w.current.predicted_hit_ratio,
        period_gb: w.recommendation.as_ref().map(|r| r.capacity_gb),
        every_window_gb: w.recommendation_every_window.as_ref().map(|r| r.capacity_gb),
        ceiling_hit_ratio: Some(w.ceiling_hit_ratio),
        note,
        sized_from: None,
    }
}

/// The sizing of `period`, or a note saying how to get it when it cannot be computed here
/// (its trace taken out of `shared` when given).
fn size(db: &Session, period: Period, shared: Option<&SharedTrace>) -> Result<Sizing, WhatIfError> {
    let q = Question { period: Some(period), skip_curve: true, ..Default::default() };
    match whatif_in(db, &q, shared) {
        Ok(w) => Ok(sizing_of(&w)),
        Err(WhatIfError::NoRequests(_)) => Ok(Sizing { note: Some("No requests in the period".into()), ..Default::default() }),
        Err(e) => Err(e),
    }
}

/// The report of `period` with its "Cache sizing" section when it needs one (what `report`
/// and `demo` print).
pub fn report(db: &Session, period: Period) -> Result<Report, WhatIfError> {
    let mut r = crate::analysis::report(db, period)?;
    size_report(db, &mut r)?;
    Ok(r)
}

/// The incident summary of `period`, its thrashing episodes sized.
pub fn incident(db: &Session, period: Period) -> Result<Incident, WhatIfError> {
    let mut inc = crate::analysis::incident(db, period)?;
    size_incident(db, &mut inc)?;
    Ok(inc)
}

/// A report sizes the cache by replaying every request of what it sizes through the model (an
/// LRU pass): a longer period is sized over its last this many days, and the section says so
/// (`whatif` sizes any period). Over 173 days of 10M lines the whole period took 11.6 s of a
/// report's 16 s (BENCHMARKS.md); a week also covers the weekly pattern of a trading desk.
pub const REPORT_SIZING_DAYS: i64 = 7;

/// Adds the "Cache sizing" section when capacity evictions are among the top causes.
pub fn size_report(db: &Session, r: &mut Report) -> Result<(), WhatIfError> {
    size_report_in(db, r, None)
}

/// The period a report's sizing covers (`None`: it has none), and where it begins when that is
/// not the report's start.
fn report_sizing_period(r: &Report) -> Option<(Period, Option<String>)> {
    if !r.evictions_among_top_causes() {
        return None;
    }
    let last = r.period.until - chrono::Duration::days(REPORT_SIZING_DAYS);
    Some(match r.period.from < last {
        true => (Period { from: last, until: r.period.until }, Some(crate::engine::clock::fmt_ts(last))),
        false => (r.period, None),
    })
}

fn size_report_in(db: &Session, r: &mut Report, shared: Option<&SharedTrace>) -> Result<(), WhatIfError> {
    if let Some((period, sized_from)) = report_sizing_period(r) {
        r.sizing = Some(Sizing { sized_from, ..size(db, period, shared)? });
    }
    Ok(())
}

/// A thrashing episode's period (its minutes, the last one's second included).
fn episode_period(e: &EpisodeRow) -> Option<Period> {
    let (start, end) = (parse_ts(&e.start)?, parse_ts(&e.end)?);
    Some(Period { from: start, until: end + chrono::Duration::seconds(1) })
}

/// Sizes the incident's report and each of its thrashing episodes (over the episode's minutes:
/// the size at which none of its 5-minute windows would have been below the SLO). Their
/// periods overlap and share their warm-up: the requests are read once for all of them.
pub fn size_incident(db: &Session, inc: &mut Incident) -> Result<(), WhatIfError> {
    let thrashing = |e: &&mut EpisodeRow| e.kind == EpisodeKind::Thrashing.as_str();
    let mut periods: Vec<Period> = report_sizing_period(&inc.report).map(|(p, _)| p).into_iter().collect();
    periods.extend(inc.report.episodes.iter_mut().filter(thrashing).filter_map(|e| episode_period(e)));
    let shared = match periods.len() {
        0 | 1 => None,
        _ => Some(read_shared(db, &periods)?),
    };
    size_report_in(db, &mut inc.report, shared.as_ref())?;
    for e in inc.report.episodes.iter_mut().filter(thrashing) {
        let Some(period) = episode_period(e) else { continue };
        e.sizing = Some(size(db, period, shared.as_ref())?);
    }
    Ok(())
}
