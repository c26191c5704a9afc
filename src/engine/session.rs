//! The New York equity session the runbook means by "the trading day": 09:30-16:00
//! America/New_York, in UTC as every time in cachescope (14:30-21:00 in winter, 13:30-20:00
//! in summer), from the time-zone database. Weekends have no session; exchange holidays are
//! not known here.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::America::New_York;

/// The session of `day` (a New York date), as naive UTC times.
pub fn of(day: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let at = |h: u32, m: u32| {
        let local = day.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("valid time"));
        // 09:30 and 16:00 are never in a DST gap or fold (those are at 02:00).
        New_York.from_local_datetime(&local).single().expect("unambiguous in New York").naive_utc()
    };
    (at(9, 30), at(16, 0))
}

/// The last complete session before `now` (UTC): yesterday's in New York, or Friday's after
/// a weekend.
pub fn previous(now: NaiveDateTime) -> (NaiveDateTime, NaiveDateTime) {
    let mut day = New_York.from_utc_datetime(&now).date_naive() - Duration::days(1);
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day -= Duration::days(1);
    }
    of(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::parse_ts;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_session_moves_with_daylight_saving_time() {
        assert_eq!(of(d(2026, 11, 24)), (parse_ts("2026-11-24T14:30:00Z").unwrap(), parse_ts("2026-11-24T21:00:00Z").unwrap()));
        assert_eq!(of(d(2026, 7, 1)), (parse_ts("2026-07-01T13:30:00Z").unwrap(), parse_ts("2026-07-01T20:00:00Z").unwrap()));
        // The Monday after the spring change (2026-03-08).
        assert_eq!(of(d(2026, 3, 9)).0, parse_ts("2026-03-09T13:30:00Z").unwrap());
    }

    #[test]
    fn the_previous_session_skips_the_weekend_and_uses_the_new_york_date() {
        // Monday 2026-11-30 10:00 UTC: Friday's session.
        assert_eq!(previous(parse_ts("2026-11-30T10:00:00Z").unwrap()).0, parse_ts("2026-11-27T14:30:00Z").unwrap());
        // Wednesday 2026-07-01 02:00 UTC is still Tuesday evening in New York: Monday's.
        assert_eq!(previous(parse_ts("2026-07-01T02:00:00Z").unwrap()).0, parse_ts("2026-06-29T13:30:00Z").unwrap());
    }
}
