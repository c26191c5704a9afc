//! Which 5-minute evaluations a session computes. The SLO's questions (a period's timeline,
//! breach minutes and alerts, the SLO at a moment, the last alert) read `hit_ratio_5m` and the
//! `alerts` over it; a session materializes the evaluations of the range its question needs,
//! not of the whole history (a 100M-line database holds 4.7 years of minutes: 2.5M
//! evaluations, 1.3 GB to number them all). An alert period is a run of consecutive breaching
//! evaluations, so a range's alerts are exact once neither of its ends breaches (or the data
//! ends there): the range widens, doubling, until then.

use chrono::Duration;
use serde::Deserialize;

use super::{data_range, row, AnalysisError, Period};
use crate::engine::clock::parse_ts;
use crate::queries;
use crate::query::Session;

/// The first widening of a range whose end breaches (then doubled each time).
const FIRST_WIDENING_MINUTES: i64 = 60;

/// How far back from the data's end the last alert is looked for first (then four times
/// further each time, up to all of it).
const LAST_ALERT_FIRST_LOOK_DAYS: i64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgesRow {
    widen_earlier: bool,
    widen_later: bool,
}

/// Materializes the evaluations of `period` (those the timeline, the breach minutes and the
/// alerts of `period` read), widened until the alert periods at its ends are whole.
pub(crate) fn evaluate(db: &Session, period: Period) -> Result<(), AnalysisError> {
    // An alert period resolved at `from` ended with the evaluation a minute before it; the
    // evaluation at the end of `until`'s minute tells whether one goes on after it (a whole
    // history's report, whose `until` is its last request, then needs no second pass: the
    // data's last evaluation is in).
    let (mut lo, mut hi) = (period.from - Duration::minutes(1), period.until + Duration::minutes(1));
    let mut step = Duration::minutes(FIRST_WIDENING_MINUTES);
    loop {
        db.materialize(&["hit_ratio_5m"], Some((lo, hi)))?;
        let e: EdgesRow = row(db, queries::EVALUATION_EDGES, &[])?;
        if !e.widen_earlier && !e.widen_later {
            return Ok(());
        }
        if e.widen_earlier {
            lo -= step;
        }
        if e.widen_later {
            hi += step;
        }
        step = step * 2;
    }
}

/// Materializes the evaluations of the data's last six hours, its last evaluation included
/// (widened like any range): what questions about "now" read (`doctor`).
pub fn evaluate_latest(db: &Session) -> Result<(), AnalysisError> {
    match data_range(db)? {
        Some(r) => evaluate(db, Period { from: r.until - Duration::hours(6), until: r.until + Duration::minutes(1) }),
        None => Ok(db.materialize(&["hit_ratio_5m"], None)?),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LastAlertRow {
    pending_since: Option<String>,
    until: Option<String>,
}

/// The period of the last alert that fired (pending start to resolution), with five minutes
/// of context before and a minute after: looked for in the last day, then further back.
pub fn last_alert(db: &Session) -> Result<Period, AnalysisError> {
    let none = || AnalysisError::NoAlert { db: String::new() };
    let range = data_range(db)?.ok_or_else(none)?;
    let mut look = Duration::days(LAST_ALERT_FIRST_LOOK_DAYS);
    loop {
        let from = (range.until - look).max(range.from);
        evaluate(db, Period { from, until: range.until })?;
        let found: Vec<LastAlertRow> = super::rows(db, queries::LAST_ALERT, &[])?;
        if let Some(r) = found.into_iter().next() {
            return match (r.pending_since.as_deref().and_then(parse_ts), r.until.as_deref().and_then(parse_ts)) {
                (Some(a), Some(b)) => Ok(Period { from: a - Duration::minutes(5), until: b + Duration::minutes(1) }),
                _ => Err(none()),
            };
        }
        if from <= range.from {
            return Err(none());
        }
        look = look * 4;
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;

    use super::*;
    use crate::analysis::{slo_status, AlertRow};

    fn t(s: &str) -> NaiveDateTime {
        parse_ts(s).unwrap()
    }

    /// Five days of 100 requests a minute at 99% from cache, with a breach at 50% from day 1
    /// 10:00 to day 3 12:00 (longer than many widenings), one of 20 minutes on day 4, and
    /// nothing on day 5 after 06:00 but one late breach of 12 minutes ending the data.
    fn session() -> Session {
        let s = Session::in_memory().unwrap();
        let c = s.direct_connection().unwrap();
        c.execute_batch(queries::EVENTS_SCHEMA).unwrap();
        queries::install_views(c, false, queries::Fresh::ALL).unwrap();
        c.execute_batch(
            "INSERT INTO request_minutes
             SELECT m, 'fs', h, 100 - h, 0, 0, 0, m, m + INTERVAL 59 SECOND
             FROM (SELECT unnest(generate_series(TIMESTAMP '2027-01-01', TIMESTAMP '2027-01-05 06:00', INTERVAL 1 MINUTE)) AS m) x,
                  LATERAL (SELECT CASE WHEN m >= TIMESTAMP '2027-01-02 10:00' AND m < TIMESTAMP '2027-01-04 12:00' THEN 50
                                       WHEN m >= TIMESTAMP '2027-01-04 20:00' AND m < TIMESTAMP '2027-01-04 20:20' THEN 70
                                       WHEN m >= TIMESTAMP '2027-01-05 05:48' THEN 40
                                       ELSE 99 END AS h) y",
        )
        .unwrap();
        evaluate_again(c);
        s
    }

    /// The evaluations of every minute, from the figures (as an ingester's commit keeps them).
    fn evaluate_again(c: &duckdb::Connection) {
        c.execute(queries::EVALUATIONS_REBUILD, ["-infinity", "infinity"]).unwrap();
    }

    fn alerts(s: &Session, p: Period) -> Vec<AlertRow> {
        super::super::rows(s, queries::REPORT_ALERTS, &[p.from.to_string(), p.until.to_string(), "true".into()]).unwrap()
    }

    #[test]
    fn a_range_widens_until_the_alerts_at_its_ends_are_whole() {
        let s = session();
        let periods = [
            ("2027-01-03T00:00:00Z", "2027-01-03T01:00:00Z"), // inside the long breach
            ("2027-01-02T09:00:00Z", "2027-01-02T10:30:00Z"), // its start (widened to its end)
            ("2027-01-04T11:50:00Z", "2027-01-04T20:07:00Z"), // its end, the short one's start
            ("2027-01-01T00:00:00Z", "2027-01-06T00:00:00Z"), // all of it
            ("2027-01-05T05:50:00Z", "2027-01-05T06:10:00Z"), // the last, still firing
        ];
        for (from, until) in periods {
            let p = Period { from: t(from), until: t(until) };
            s.materialize(&["hit_ratio_5m"], None).unwrap();
            let whole = alerts(&s, p);
            assert!(!whole.is_empty(), "{from}: the fixture has alerts there");
            evaluate(&s, p).unwrap();
            assert_eq!(alerts(&s, p), whole, "{from} .. {until}");
        }
        // A quiet period reads its own evaluations, not the history's.
        let quiet = Period { from: t("2027-01-01T10:00:00Z"), until: t("2027-01-01T11:30:00Z") };
        evaluate(&s, quiet).unwrap();
        assert!(alerts(&s, quiet).is_empty());
        let n: i64 = s.direct_connection().unwrap().query_row("SELECT count(*) FROM hit_ratio_5m", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 93, "the evaluations from 09:59 to 11:31 (the end of until's minute), both included");
        // The long breach: pending from 10:01 of day 1 (its first window's evaluation), firing
        // 10 minutes later, resolved at the first evaluation back above.
        let p = Period { from: t("2027-01-03T00:00:00Z"), until: t("2027-01-03T01:00:00Z") };
        evaluate(&s, p).unwrap();
        let low = alerts(&s, p).into_iter().find(|a| a.alert == "FeatureStoreHitRatioLow").unwrap();
        assert_eq!(low.pending_since.as_deref(), Some("2027-01-02T10:01:00.000000Z"));
        assert_eq!(low.start.as_deref(), Some("2027-01-02T10:11:00.000000Z"));
        assert_eq!(low.end.as_deref(), Some("2027-01-04T12:05:00.000000Z"));
    }

    #[test]
    fn the_slo_at_a_moment_sees_an_alert_that_began_days_before() {
        let s = session();
        let st = slo_status(&s, Some(t("2027-01-03T18:00:00Z"))).unwrap();
        let low = st.alerts.iter().find(|a| a.alert == "FeatureStoreHitRatioLow").unwrap();
        assert_eq!((low.state.as_str(), low.since.as_deref()), ("firing", Some("2027-01-02T10:11:00.000000Z")));
        let st = slo_status(&s, Some(t("2027-01-04T20:06:00Z"))).unwrap();
        let low = st.alerts.iter().find(|a| a.alert == "FeatureStoreHitRatioLow").unwrap();
        assert_eq!((low.state.as_str(), low.since.as_deref()), ("pending", Some("2027-01-04T20:01:00.000000Z")));
    }

    #[test]
    fn the_last_alert_is_looked_for_further_back_until_found() {
        let s = session();
        // The one still firing at the data's end.
        assert_eq!(last_alert(&s).unwrap(), Period { from: t("2027-01-05T05:44:00Z"), until: t("2027-01-05T06:02:00Z") });
        // Without the last two, the last alert is the long one, ended more than a day before
        // the data: found by looking further back than the first day.
        let c = s.direct_connection().unwrap();
        c.execute_batch("UPDATE request_minutes SET hits = 99, misses = 1 WHERE minute >= TIMESTAMP '2027-01-04'").unwrap();
        evaluate_again(c);
        assert_eq!(last_alert(&s).unwrap(), Period { from: t("2027-01-02T09:56:00Z"), until: t("2027-01-04T00:06:00Z") });
        c.execute_batch("UPDATE request_minutes SET hits = 99, misses = 1").unwrap();
        evaluate_again(c);
        assert!(matches!(last_alert(&s), Err(AnalysisError::NoAlert { .. })));
    }

    #[test]
    fn a_long_timeline_keeps_its_dips_in_at_most_the_chart_points() {
        let s = session();
        let figures = |from: &str, until: &str| crate::analysis::slo_figures(&s, Period { from: t(from), until: t(until) }).unwrap().timeline;
        // A day: every evaluation.
        let day = figures("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z");
        assert_eq!(day.len(), 1440, "00:01 (the first minute's end) to midnight");
        assert!(day.windows(2).all(|w| parse_ts(&w[1].t).unwrap() - parse_ts(&w[0].t).unwrap() == Duration::minutes(1)));
        // All of it (6,121 evaluations): at most the chart's points, in time order, and the
        // lowest ratios among them (the last breach's 40%, the long one's 50%).
        let all = figures("2027-01-01T00:00:00Z", "2027-01-06T00:00:00Z");
        assert!(all.len() <= crate::analysis::TIMELINE_POINTS && all.len() > crate::analysis::TIMELINE_POINTS / 2, "{}", all.len());
        assert!(all.windows(2).all(|w| w[0].t < w[1].t));
        let lowest = all.iter().filter_map(|p| p.hit_ratio).fold(1.0, f64::min);
        assert!((lowest - 0.4).abs() < 1e-9, "{lowest}");
        let dip = all.iter().find(|p| p.hit_ratio == Some(0.5)).expect("the long breach's 50%");
        assert_eq!(dip.requests, 500);
    }
}
