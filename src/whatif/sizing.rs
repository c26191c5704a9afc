//! What-if sizing inside `report` and `incident`: a "Cache sizing" section when capacity
//! evictions are among the report's top causes, and for each thrashing episode of an
//! incident the size that would have avoided it.

use super::{read_shared, whatif_in, Question, SharedTrace, WhatIf, WhatIfError};
use crate::analysis::{self, AnalysisError, CauseRow, EpisodeRow, Incident, Period, Report, Scope, Sizing};
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
/// and `demo` print). Its causes decide; the requests the sizing replays are then read beside
/// the rest of the report.
pub fn report(db: &Session, period: Period) -> Result<Report, WhatIfError> {
    let causes = analysis::causes(db, period)?;
    let periods: Vec<Period> = report_sizing_period(period, &causes).map(|(p, _)| p).into_iter().collect();
    let (mut r, shared) = beside(db, &periods, || analysis::report_with(db, analysis::findings(db, period, Scope::Host, causes)?))?;
    size_report_in(db, &mut r, shared.as_ref())?;
    Ok(r)
}

/// The incident summary of `period`, its thrashing episodes sized. When its report sizes the
/// cache (its causes say so), the requests are read from then on, beside the rest (the
/// episodes, within the period, are covered by that read); otherwise, when its episodes say
/// that some thrashed, beside the figures.
pub fn incident(db: &Session, period: Period) -> Result<Incident, WhatIfError> {
    let causes = analysis::causes(db, period)?;
    let summary = |found: analysis::Findings| analysis::report_with(db, found).and_then(|r| analysis::incident_of(r, db, period));
    let (mut inc, shared) = match report_sizing_period(period, &causes) {
        Some((p, _)) => beside(db, &[p], || summary(analysis::findings(db, period, Scope::Host, causes)?))?,
        None => {
            let found = analysis::findings(db, period, Scope::Host, causes)?;
            let periods: Vec<Period> = found.episodes.iter().filter_map(episode_period).collect();
            beside(db, &periods, || summary(found))?
        }
    };
    // Without a read beside (through a tailer), the periods are read once for all of them.
    let shared = match shared {
        Some(s) => Some(s),
        None => {
            let mut periods: Vec<Period> = report_sizing_period(period, &inc.report.causes).map(|(p, _)| p).into_iter().collect();
            periods.extend(inc.report.episodes.iter().filter_map(episode_period));
            (periods.len() > 1).then(|| read_shared(db, &periods)).transpose()?
        }
    };
    size_incident_in(db, &mut inc, shared.as_ref())?;
    Ok(inc)
}

/// Runs `work` (the rest of a report) while the requests the sizing of `periods` replays are
/// read on a second connection, on another thread: that read is most of a sizing's time, and
/// the report's queries do not wait for it. Through a tailer (which answers one client at a
/// time) the sizings read after `work`.
fn beside<T: Send>(db: &Session, periods: &[Period], work: impl FnOnce() -> Result<T, AnalysisError>) -> Result<(T, Option<SharedTrace>), WhatIfError> {
    let fork = match periods.is_empty() {
        true => None,
        false => db.fork()?,
    };
    let Some(fork) = fork else { return Ok((work()?, None)) };
    std::thread::scope(|scope| {
        let read = scope.spawn(move || read_shared(&fork, periods));
        let done = work()?;
        let shared = read.join().expect("the sizing's read thread panicked")?;
        Ok((done, Some(shared)))
    })
}

/// A report sizes the cache by replaying every request of what it sizes through the model (an
/// LRU pass): a longer period is sized over its last this many days, and the section says so
/// (`whatif` sizes any period). Over 173 days of 10M lines the whole period took 11.6 s of a
/// report's 16 s (BENCHMARKS.md); a week also covers the weekly pattern of a trading desk.
pub const REPORT_SIZING_DAYS: i64 = 7;

/// The period a report of `period` sizes (`None`: it sizes none, capacity evictions are not
/// among its top `causes`), and where it begins when that is not the report's start.
fn report_sizing_period(period: Period, causes: &[CauseRow]) -> Option<(Period, Option<String>)> {
    if !analysis::evictions_among_top_causes(causes) {
        return None;
    }
    let last = period.until - chrono::Duration::days(REPORT_SIZING_DAYS);
    Some(match period.from < last {
        true => (Period { from: last, until: period.until }, Some(crate::engine::clock::fmt_ts(last))),
        false => (period, None),
    })
}

fn size_report_in(db: &Session, r: &mut Report, shared: Option<&SharedTrace>) -> Result<(), WhatIfError> {
    if let Some((period, sized_from)) = report_sizing_period(r.period, &r.causes) {
        r.sizing = Some(Sizing { sized_from, ..size(db, period, shared)? });
    }
    Ok(())
}

/// A thrashing episode's period (its minutes, the last one's second included).
fn episode_period(e: &EpisodeRow) -> Option<Period> {
    if e.kind != EpisodeKind::Thrashing.as_str() {
        return None;
    }
    let (start, end) = (parse_ts(&e.start)?, parse_ts(&e.end)?);
    Some(Period { from: start, until: end + chrono::Duration::seconds(1) })
}

/// Sizes the incident's report and each of its thrashing episodes (over the episode's minutes:
/// the size at which none of its 5-minute windows would have been below the SLO), their
/// requests taken out of `shared` where it covers them (their periods overlap and share their
/// warm-up: they are read once for all of them).
fn size_incident_in(db: &Session, inc: &mut Incident, shared: Option<&SharedTrace>) -> Result<(), WhatIfError> {
    size_report_in(db, &mut inc.report, shared)?;
    for e in inc.report.episodes.iter_mut() {
        let Some(period) = episode_period(e) else { continue };
        e.sizing = Some(size(db, period, shared)?);
    }
    Ok(())
}
