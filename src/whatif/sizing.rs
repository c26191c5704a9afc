//! What-if sizing inside `report` and `incident`: a "Cache sizing" section when capacity
//! evictions are among the report's top causes, and for each thrashing episode of an
//! incident the size that would have avoided it. On the file, the sizing runs on a second
//! connection in a thread of its own beside the report's other queries (`beside`).

use std::sync::Arc;

use super::early::EarlyRead;
use super::{read_shared, whatif_of, Question, SharedTrace, WhatIf, WhatIfError};
use crate::analysis::{self, AnalysisError, CauseRow, EpisodeRow, Incident, Period, Report, Scope, Sizing, Totals};
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
    size_of(db, period, analysis::requests_and_hit_ratio(db, period)?, shared)
}

/// [`size`] with the period's requests and measured hit ratio given (`db` needs no view).
fn size_of(db: &Session, period: Period, totals: (u64, Option<f64>), shared: Option<&SharedTrace>) -> Result<Sizing, WhatIfError> {
    let q = Question { period: Some(period), skip_curve: true, ..Default::default() };
    match whatif_of(db, &q, period, totals, shared) {
        Ok(w) => Ok(sizing_of(&w)),
        Err(WhatIfError::NoRequests(_)) => Ok(Sizing { note: Some("No requests in the period".into()), ..Default::default() }),
        Err(e) => Err(e),
    }
}

/// What a report or an incident knows of its period before the session's views are installed.
#[derive(Debug, Clone, Copy)]
pub enum Known {
    /// The command line gives it whole.
    Given(Period),
    /// All of the data: its range, from the per-minute figures.
    Whole,
    /// Only the views will tell (the last alert, a bound from the data).
    Later,
}

/// Opens `db` for a report or an incident: what its report would size begins to be read
/// ([`begin_early`]) while the session installs its views, when the period is `known`.
pub fn session(db: &std::path::Path, known: Known) -> Result<(Session, Option<EarlyRead>), WhatIfError> {
    // Said as `analysis::session` says them.
    let session = Session::open(db).map_err(AnalysisError::from)?;
    let period = match known {
        Known::Given(p) => Some(p),
        // From the tables as they are: on a database whose derived tables are stale the views
        // may say another range, and the read begun is then interrupted (`beside`); one whose
        // figures cannot be read here just begins nothing, and the views say what is wrong.
        Known::Whole => analysis::data_range(&session).ok().flatten(),
        Known::Later => None,
    };
    let early = match period {
        Some(p) => begin_early(&session, p)?,
        None => None,
    };
    session.use_own_views().map_err(AnalysisError::from)?;
    Ok((session, early))
}

/// Begins reading what a report of `period` would size (the period known before the views:
/// [`EarlyRead`]), for [`report`] or [`incident`] to size from if its causes say it sizes.
pub fn begin_early(db: &Session, period: Period) -> Result<Option<EarlyRead>, WhatIfError> {
    EarlyRead::begin(db, sized_period(period).0)
}

/// The report of `period` with its "Cache sizing" section when it needs one (what `report`
/// and `demo` print). Its causes decide; the sizing then runs beside the rest of the report,
/// from `early`'s read when that is of the period it sizes.
pub fn report(db: &Session, period: Period, early: Option<EarlyRead>) -> Result<Report, WhatIfError> {
    let causes = analysis::causes(db, period)?;
    let plan = report_sizing_period(period, &causes);
    let periods: Vec<Period> = plan.iter().map(|(p, _)| *p).collect();
    let work = |counted: &[(Period, Totals)]| analysis::report_with(db, with_counted(analysis::findings(db, period, Scope::Host, causes)?, period, counted));
    let (mut r, sized) = beside(db, &periods, early, work, |_, _| Ok(()))?;
    if let Some((p, sized_from)) = plan {
        let s = match sized.and_then(|s| s.into_iter().next()) {
            Some((_, s)) => s,
            None => size(db, p, None)?,
        };
        r.sizing = Some(Sizing { sized_from, ..s });
    }
    Ok(r)
}

/// The incident summary of `period`, its thrashing episodes sized. When its report sizes the
/// cache (its causes say so), that sizing runs from then on beside the rest, and its requests
/// serve the episodes', sized here meanwhile; otherwise the thrashing episodes are sized beside
/// the figures. `early`: as [`report`]'s.
pub fn incident(db: &Session, period: Period, early: Option<EarlyRead>) -> Result<Incident, WhatIfError> {
    let causes = analysis::causes(db, period)?;
    let plan = report_sizing_period(period, &causes);
    let summary = |found: analysis::Findings| analysis::report_with(db, found).and_then(|r| analysis::incident_of(r, db, period));
    let (mut inc, sized) = match plan {
        Some((p, _)) => {
            let work = |counted: &[(Period, Totals)]| summary(with_counted(analysis::findings(db, period, Scope::Host, causes)?, period, counted));
            beside(db, &[p], early, work, |inc: &mut Incident, shared| size_episodes(db, inc, shared))?
        }
        None => {
            let found = analysis::findings(db, period, Scope::Host, causes)?;
            let episodes: Vec<Period> = found.episodes.iter().filter_map(episode_period).collect();
            beside(db, &episodes, early, |_: &[(Period, Totals)]| summary(found), |_, _| Ok(()))?
        }
    };
    let sized = match sized {
        Some(sized) => sized,
        None => {
            // Nothing sized beside (through a tailer): the periods are read once for all of them.
            let periods: Vec<Period> = plan.iter().map(|(p, _)| *p).chain(inc.report.episodes.iter().filter_map(episode_period)).collect();
            let shared = (periods.len() > 1).then(|| read_shared(db, &periods)).transpose()?;
            size_episodes(db, &mut inc, shared.as_ref())?;
            match plan {
                Some((p, _)) => vec![(p, size(db, p, shared.as_ref())?)],
                None => Vec::new(),
            }
        }
    };
    let sized_of = |p: Period| sized.iter().find(|(q, _)| *q == p).map(|(_, s)| s.clone());
    if let Some((p, sized_from)) = plan {
        inc.report.sizing = Some(Sizing { sized_from, ..sized_of(p).expect("the report's period was sized") });
    }
    // The episodes sized beside (when the report sized nothing), else here.
    for e in inc.report.episodes.iter_mut().filter(|e| e.sizing.is_none()) {
        let Some(p) = episode_period(e) else { continue };
        e.sizing = Some(match sized_of(p) {
            Some(s) => s,
            None => size(db, p, None)?,
        });
    }
    Ok(inc)
}

/// Sizes each thrashing episode of `inc`, from `shared` where it covers it.
fn size_episodes(db: &Session, inc: &mut Incident, shared: Option<&SharedTrace>) -> Result<(), WhatIfError> {
    for e in inc.report.episodes.iter_mut() {
        let Some(p) = episode_period(e) else { continue };
        e.sizing = Some(size(db, p, shared)?);
    }
    Ok(())
}

/// Runs `work` (the rest of a report) while a second connection, on another thread, reads
/// the requests of `periods` and sizes each: the sizing's read and simulations do not wait for
/// the report's queries, nor these for them; `early`, when it reads just `periods`, is that
/// read (any other is interrupted). Each period's totals (requests and measured
/// ratio) are counted here while the read begins (from the figures the report reads, which may
/// be this session's views), and handed to `work` too (a report of the same period uses them).
/// Once `work` is done and the requests are read, `then` runs here with them while the other
/// thread sizes (an incident sizes its episodes). The sizings, in the order of `periods`;
/// `None` (`work` given no totals, `then` not run) when there was nothing to size or the
/// session cannot be forked (a tailer older than this version, which answers one client at
/// a time): the caller sizes after `work`.
fn beside<T: Send>(
    db: &Session,
    periods: &[Period],
    early: Option<EarlyRead>,
    work: impl FnOnce(&[(Period, Totals)]) -> Result<T, AnalysisError>,
    then: impl FnOnce(&mut T, Option<&SharedTrace>) -> Result<(), WhatIfError>,
) -> Result<(T, Option<Vec<(Period, Sizing)>>), WhatIfError> {
    let source = match early {
        Some(e) if periods == [e.period] => Some(Source::Early(e)),
        other => {
            if let Some(e) = other {
                e.cancel(db)?;
            }
            match periods.is_empty() {
                true => None,
                false => db.fork()?.map(Source::Fork),
            }
        }
    };
    let Some(source) = source else { return Ok((work(&[])?, None)) };
    std::thread::scope(|scope| {
        let (read_tx, read_rx) = std::sync::mpsc::sync_channel::<Arc<SharedTrace>>(1);
        let (totals_tx, totals_rx) = std::sync::mpsc::sync_channel::<Vec<Totals>>(1);
        let sizing = scope.spawn(move || -> Result<Vec<(Period, Sizing)>, WhatIfError> {
            let (fork, shared) = match source {
                Source::Early(e) => e.take()?,
                Source::Fork(fork) => {
                    let shared = read_shared(&fork, periods)?;
                    (fork, shared)
                }
            };
            let shared = Arc::new(shared);
            let _ = read_tx.send(shared.clone());
            // No totals: counting them failed here, and that error is the one reported.
            let Ok(totals) = totals_rx.recv() else { return Ok(Vec::new()) };
            periods.iter().zip(totals).map(|(p, t)| Ok((*p, size_of(&fork, *p, t.requests_and_hit_ratio(), Some(&*shared))?))).collect()
        });
        let totals = periods.iter().map(|p| analysis::totals(db, *p)).collect::<Result<Vec<_>, _>>()?;
        let _ = totals_tx.send(totals.clone());
        let counted: Vec<(Period, Totals)> = periods.iter().copied().zip(totals).collect();
        let mut done = work(&counted)?;
        let Ok(shared) = read_rx.recv() else {
            // The thread ended without its read: its error says why.
            return Err(match sizing.join().expect("the sizing's thread panicked") {
                Err(e) => e,
                Ok(_) => unreachable!("the sizing's thread hands its read over before it sizes"),
            });
        };
        let then = then(&mut done, Some(&*shared));
        let sized = sizing.join().expect("the sizing's thread panicked")?;
        then?;
        Ok((done, Some(sized)))
    })
}

/// Where the sizing's read comes from: one begun before the views, or a second connection.
enum Source {
    Early(EarlyRead),
    Fork(Session),
}

/// `findings`, with the totals of their period when `counted` has them.
fn with_counted(findings: analysis::Findings, period: Period, counted: &[(Period, Totals)]) -> analysis::Findings {
    match counted.iter().find(|(p, _)| *p == period) {
        Some((_, t)) => findings.counted(*t),
        None => findings,
    }
}

/// A report sizes the cache by replaying every request of what it sizes through the model (an
/// LRU pass): a longer period is sized over its last this many days, and the section says so
/// (`whatif` sizes any period). Over 173 days of 10M lines the whole period took 11.6 s of a
/// report's 16 s (BENCHMARKS.md); a week also covers the weekly pattern of a trading desk.
pub const REPORT_SIZING_DAYS: i64 = 7;

/// The period a report of `period` sizes (`None`: it sizes none, capacity evictions are not
/// among its top `causes`), and where it begins when that is not the report's start.
fn report_sizing_period(period: Period, causes: &[CauseRow]) -> Option<(Period, Option<String>)> {
    analysis::evictions_among_top_causes(causes).then(|| sized_period(period))
}

/// The period a report of `period` sizes when it sizes, and where it begins when that is not
/// the report's start.
fn sized_period(period: Period) -> (Period, Option<String>) {
    let last = period.until - chrono::Duration::days(REPORT_SIZING_DAYS);
    match period.from < last {
        true => (Period { from: last, until: period.until }, Some(crate::engine::clock::fmt_ts(last))),
        false => (period, None),
    }
}

/// A thrashing episode's period (its minutes, the last one's second included).
fn episode_period(e: &EpisodeRow) -> Option<Period> {
    if e.kind != EpisodeKind::Thrashing.as_str() {
        return None;
    }
    let (start, end) = (parse_ts(&e.start)?, parse_ts(&e.end)?);
    Some(Period { from: start, until: end + chrono::Duration::seconds(1) })
}

