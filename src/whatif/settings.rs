//! The engine's settings as its log tells them: the lines that set them (startups, capacity and
//! retention changes, queries/whatif_settings_lines.sql) read once for a range, and from them
//! the settings in effect at any moment inside it and the capacities the engine ran with in
//! any period inside it. A report's sizing and its incident's episodes ask several such
//! questions; each used to be a query of its own (30-80 ms at 10M lines).

use chrono::NaiveDateTime;
use serde::Deserialize;

use super::{Settings, WhatIfError};
use crate::analysis::Period;
use crate::engine::config::Config;
use crate::queries;
use crate::query::Session;
use crate::vocab::Event;

/// The settings' lines are looked for this far back first, then 8x further each time, then
/// in all of the history: an engine that restarts every trading day logs them daily, and a
/// scan of the whole history's lines cost 0.45 s and 250 MB over 100M lines.
pub const LOOK_BACK_DAYS: [i64; 3] = [32, 256, 2048];

/// A row of queries/whatif_settings_lines.sql.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRow {
    event: String,
    us: i64,
    line_no: i64,
    has_values: bool,
    capacity_gb: Option<f64>,
    retention_days: Option<f64>,
    cleanup_threshold: Option<f64>,
    eviction_target: Option<f64>,
}

/// What a line sets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Startup,
    Capacity,
    Retention,
}

#[derive(Debug, Clone)]
struct Line {
    kind: Kind,
    /// Its time (microseconds since the epoch) and line: the log's order.
    at: (i64, i64),
    /// Whether what it sets was read (queries/whatif_settings_lines.sql reads it from the
    /// last startup before the first moment asked about on).
    has_values: bool,
    capacity_gb: Option<f64>,
    retention_days: Option<f64>,
    cleanup_threshold: Option<f64>,
    eviction_target: Option<f64>,
}

impl Line {
    fn sets_capacity(&self) -> bool {
        matches!(self.kind, Kind::Startup | Kind::Capacity)
    }

    fn sets_retention(&self) -> bool {
        matches!(self.kind, Kind::Startup | Kind::Retention)
    }
}

/// The settings' lines of `[since, until)`, in the log's order.
#[derive(Debug, Clone)]
pub struct SettingLines {
    since: i64,
    until: i64,
    lines: Vec<Line>,
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

impl SettingLines {
    /// Reads the lines of `[since, until)` (`since`: `None`, all of the history), to answer
    /// questions about moments from `from` on.
    pub fn read(db: &Session, since: Option<NaiveDateTime>, from: NaiveDateTime, until: NaiveDateTime) -> Result<SettingLines, WhatIfError> {
        let since_s = since.map_or_else(|| "-infinity".to_string(), |s| s.to_string());
        let rows: Vec<LineRow> = db.query_own(queries::WHATIF_SETTINGS_LINES, &[since_s, from.to_string(), until.to_string()])?.decode()?;
        let lines = rows
            .into_iter()
            .filter_map(|r| {
                let kind = match Event::parse(&r.event)? {
                    Event::Startup => Kind::Startup,
                    Event::CapacityChange => Kind::Capacity,
                    Event::RetentionChange => Kind::Retention,
                    _ => return None,
                };
                Some(Line {
                    kind,
                    at: (r.us, r.line_no),
                    has_values: r.has_values,
                    capacity_gb: r.capacity_gb,
                    retention_days: r.retention_days,
                    cleanup_threshold: r.cleanup_threshold,
                    eviction_target: r.eviction_target,
                })
            })
            .collect();
        Ok(SettingLines { since: since.map_or(i64::MIN, micros), until: micros(until), lines })
    }

    /// The lines before `t` (within the range read).
    fn before(&self, t: i64) -> &[Line] {
        &self.lines[..self.lines.partition_point(|l| l.at.0 < t)]
    }

    /// The settings in effect at `until` (the engine's defaults where the log does not say):
    /// the last capacity and retention set before it, the last startup's others. `None` when
    /// the range does not answer: `until` is outside it, or no startup is in it before `until`
    /// (one may be further back; with all of the history read, the lines there are the answer).
    pub fn at(&self, until: NaiveDateTime) -> Option<Settings> {
        let t = micros(until);
        if t > self.until || t < self.since {
            return None;
        }
        let before = self.before(t);
        let last = |f: fn(&Line) -> bool| before.iter().rev().find(|l| f(l));
        let startup = last(|l| l.kind == Kind::Startup);
        if startup.is_none() && self.since != i64::MIN {
            return None;
        }
        let (capacity, retention) = (last(Line::sets_capacity), last(Line::sets_retention));
        if [startup, capacity, retention].iter().flatten().any(|l| !l.has_values) {
            return None;
        }
        let d = Config::with_cache_dir(Default::default());
        Some(Settings {
            capacity_gb: capacity.and_then(|l| l.capacity_gb),
            retention_days: retention.and_then(|l| l.retention_days),
            cleanup_threshold: startup.and_then(|l| l.cleanup_threshold).unwrap_or(d.cleanup_threshold),
            eviction_target: startup.and_then(|l| l.eviction_target).unwrap_or(d.eviction_target),
        })
    }

    /// How many times the capacity changed in `period`, and the smallest it ran with in it (the
    /// one in effect at its start, or set during it). `None` when the range does not answer:
    /// the period is outside it, or the line in effect at its start is not in it.
    pub fn capacity_changes(&self, period: Period) -> Option<(i64, Option<f64>)> {
        let (from, until) = (micros(period.from), micros(period.until));
        if until > self.until || from < self.since {
            return None;
        }
        let lines: Vec<&Line> = self.before(until).iter().filter(|l| l.sets_capacity()).collect();
        let in_effect = lines.iter().rev().find(|l| l.at.0 <= from);
        if in_effect.is_none() && self.since != i64::MIN {
            return None;
        }
        let changes = lines.iter().filter(|l| l.kind == Kind::Capacity && l.at.0 >= from).count() as i64;
        let ran: Vec<&&Line> = in_effect.into_iter().chain(lines.iter().filter(|l| l.at.0 > from)).collect();
        if ran.iter().any(|l| !l.has_values) {
            return None;
        }
        Some((changes, ran.iter().filter_map(|l| l.capacity_gb).reduce(f64::min)))
    }
}

/// Reads the lines of each look-back before `from` in turn until `answer` answers, and of all
/// of the history last.
fn looking_back<T>(db: &Session, from: NaiveDateTime, until: NaiveDateTime, answer: impl Fn(&SettingLines) -> Option<T>) -> Result<T, WhatIfError> {
    for days in LOOK_BACK_DAYS {
        if let Some(a) = answer(&SettingLines::read(db, Some(from - chrono::Duration::days(days)), from, until)?) {
            return Ok(a);
        }
    }
    Ok(answer(&SettingLines::read(db, None, from, until)?).expect("all of the history answers"))
}

/// The settings in the log at `until` (the engine's defaults where it does not say).
pub fn settings(db: &Session, until: NaiveDateTime) -> Result<Settings, WhatIfError> {
    looking_back(db, until, until, |lines| lines.at(until))
}

/// [`SettingLines::capacity_changes`] of `period`, looked for as far back as needed.
pub fn capacity_changes(db: &Session, period: Period) -> Result<(i64, Option<f64>), WhatIfError> {
    looking_back(db, period.from, period.until, |lines| lines.capacity_changes(period))
}

/// The lines a question about `periods` needs, when the first look-back answers (where it
/// does not, [`settings`] and [`capacity_changes`] look further).
pub fn lines_for(db: &Session, periods: &[Period]) -> Result<Option<SettingLines>, WhatIfError> {
    let (Some(from), Some(until)) = (periods.iter().map(|p| p.from).min(), periods.iter().map(|p| p.until).max()) else { return Ok(None) };
    Ok(Some(SettingLines::read(db, Some(from - chrono::Duration::days(LOOK_BACK_DAYS[0])), from, until)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        crate::engine::clock::parse_ts(s).unwrap()
    }

    /// A startup, then a capacity change and a retention change (time, event, text).
    const FIRST_LINES: [(&str, &str, &str); 3] = [
        ("2026-01-01 00:00:00", "startup", "event=startup max_cache_size_gb=5 retention_days=7 cleanup_threshold=0.85 eviction_target=0.7"),
        ("2026-01-10 00:00:00", "capacity_change", "event=capacity_change max_cache_size_gb=3 previous_max_cache_size_gb=5"),
        ("2026-03-01 00:00:00", "retention_change", "event=retention_change retention_days=3"),
    ];

    /// An events database holding `lines` (time, event, text), each on its own line of one file.
    fn with_lines(lines: &[(&str, &str, &str)]) -> Session {
        let session = Session::in_memory().unwrap();
        let c = session.direct_connection().unwrap();
        c.execute_batch(queries::EVENTS_SCHEMA).unwrap();
        let mut add = c.prepare("INSERT INTO event_rows (ts, event, raw, file_id, byte_offset, line_no) VALUES (CAST(? AS TIMESTAMP), ?, ?, 'f', 0, ?)").unwrap();
        for (n, (ts, event, raw)) in lines.iter().enumerate() {
            add.execute(duckdb::params![ts, event, raw, n as i64 + 1]).unwrap();
        }
        drop(add);
        session
    }

    #[test]
    fn settings_far_back_are_found_and_the_latest_wins() {
        let session = with_lines(&[
            FIRST_LINES[0],
            FIRST_LINES[1],
            FIRST_LINES[2],
            ("2026-05-15 00:00:00", "capacity_change", "event=capacity_change max_cache_size_gb=1 previous_max_cache_size_gb=3"),
        ]);
        // The startup 135 days back (the second look), 30 days back (the first), 2,557 days
        // back (all of the history): the latest capacity and retention, the startup's others.
        let at = |until: &str| settings(&session, t(until)).unwrap();
        let want = |gb: f64, days: f64| Settings { capacity_gb: Some(gb), retention_days: Some(days), cleanup_threshold: 0.85, eviction_target: 0.7 };
        assert_eq!(at("2026-05-16T00:00:00Z"), want(1.0, 3.0));
        assert_eq!(at("2026-01-31T00:00:00Z"), want(3.0, 7.0));
        assert_eq!(at("2033-01-01T00:00:00Z"), want(1.0, 3.0));
        // Before any line: the engine's defaults.
        let none = at("2025-12-01T00:00:00Z");
        assert_eq!((none.capacity_gb, none.retention_days), (None, None));
        // The capacity in effect at a period's start, set 111 days before it, and a change in it.
        let p = |from: &str, until: &str| Period { from: t(from), until: t(until) };
        assert_eq!(capacity_changes(&session, p("2026-05-01T00:00:00Z", "2026-05-10T00:00:00Z")).unwrap(), (0, Some(3.0)));
        assert_eq!(capacity_changes(&session, p("2026-05-01T00:00:00Z", "2026-06-01T00:00:00Z")).unwrap(), (1, Some(1.0)));
        assert_eq!(capacity_changes(&session, p("2032-01-01T00:00:00Z", "2032-02-01T00:00:00Z")).unwrap(), (0, Some(1.0)));
    }

    /// Lines read once for a range answer every moment and period inside it as the look-backs
    /// do, and say when they cannot (no startup, or no capacity in effect, in the range).
    #[test]
    fn lines_read_once_answer_as_the_look_backs_do() {
        let session = with_lines(&[
            FIRST_LINES[0],
            FIRST_LINES[1],
            FIRST_LINES[2],
            ("2026-03-05 00:00:00", "startup", "event=startup max_cache_size_gb=4 retention_days=5 cleanup_threshold=0.95 eviction_target=0.9"),
            // Two lines of the same moment: the later line wins.
            ("2026-03-20 00:00:00", "capacity_change", "event=capacity_change max_cache_size_gb=2 previous_max_cache_size_gb=4"),
            ("2026-03-20 00:00:00", "capacity_change", "event=capacity_change max_cache_size_gb=6 previous_max_cache_size_gb=2"),
            ("2026-05-15 00:00:00", "capacity_change", "event=capacity_change max_cache_size_gb=1 previous_max_cache_size_gb=6"),
        ]);
        let days = |d: i64| t("2025-12-15T00:00:00Z") + chrono::Duration::hours(d * 12);
        let mut answered = 0;
        for a in (0..400).step_by(3) {
            for len in [1, 60] {
                let p = Period { from: days(a), until: days(a + len) };
                let once = lines_for(&session, &[p]).unwrap().unwrap();
                match once.at(p.until) {
                    Some(s) => {
                        assert_eq!(s, settings(&session, p.until).unwrap(), "settings at {}", p.until);
                        answered += 1;
                    }
                    None => assert!(!once.lines.iter().any(|l| l.kind == Kind::Startup && l.at.0 < micros(p.until)), "a startup was in range before {}", p.until),
                }
                if let Some(c) = once.capacity_changes(p) {
                    assert_eq!(c, capacity_changes(&session, p).unwrap(), "capacities in {p:?}");
                }
            }
        }
        assert!(answered > 100, "the lines read once answered {answered} questions");
        // From the moment the two lines were written, the later one is in effect (the other
        // lasted no time); both count as changes.
        let p = Period { from: t("2026-03-20T00:00:00Z"), until: t("2026-03-21T00:00:00Z") };
        let once = lines_for(&session, &[p]).unwrap().unwrap();
        assert_eq!(once.at(p.until).unwrap().capacity_gb, Some(6.0));
        assert_eq!(once.capacity_changes(p), Some((2, Some(6.0))));
        assert_eq!(once.capacity_changes(p), Some(capacity_changes(&session, p).unwrap()));
        let before = Period { from: t("2026-03-19T00:00:00Z"), until: t("2026-03-21T00:00:00Z") };
        assert_eq!(once.capacity_changes(before), Some((2, Some(2.0))));
        // Outside the range read, or without the line in effect: no answer.
        assert_eq!(once.at(t("2026-03-22T00:00:00Z")), None);
        let late = Period { from: t("2026-07-01T00:00:00Z"), until: t("2026-07-02T00:00:00Z") };
        let far = lines_for(&session, &[late]).unwrap().unwrap();
        assert_eq!((far.at(late.until), far.capacity_changes(late)), (None, None));
        assert_eq!(capacity_changes(&session, late).unwrap(), (0, Some(1.0)));
        // Read for questions from 2026-05-16 on, the lines before its last startup (2026-03-05)
        // have no values: a moment they decide is not answered, one after the startup is.
        let since = Some(t("2025-12-01T00:00:00Z"));
        let may = SettingLines::read(&session, since, t("2026-05-16T00:00:00Z"), t("2026-06-01T00:00:00Z")).unwrap();
        assert_eq!(may.lines.iter().filter(|l| l.has_values).count(), 4);
        assert_eq!(may.at(t("2026-03-02T00:00:00Z")), None);
        assert_eq!(may.capacity_changes(Period { from: t("2026-02-01T00:00:00Z"), until: t("2026-03-10T00:00:00Z") }), None);
        assert_eq!(may.at(t("2026-03-10T00:00:00Z")), Some(settings(&session, t("2026-03-10T00:00:00Z")).unwrap()));
        // A startup at the first moment asked about is not yet in effect then: the lines
        // before it answer that moment.
        let at_startup = t("2026-03-05T00:00:00Z");
        let then = SettingLines::read(&session, since, at_startup, t("2026-06-01T00:00:00Z")).unwrap();
        assert_eq!(then.at(at_startup), Some(settings(&session, at_startup).unwrap()));
        assert_eq!(then.at(at_startup).unwrap().cleanup_threshold, 0.85);
    }
}
