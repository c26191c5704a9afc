//! Time as the engine sees it: the system clock in production, a virtual clock in replay
//! (so a trading day replays in seconds and log timestamps are the trace's).

use std::sync::Mutex;

use chrono::{NaiveDateTime, Utc};

/// Source of "now" (naive UTC).
pub trait Clock: Send + Sync {
    fn now(&self) -> NaiveDateTime;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> NaiveDateTime {
        Utc::now().naive_utc()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<NaiveDateTime>,
}

impl VirtualClock {
    pub fn new(start: NaiveDateTime) -> VirtualClock {
        VirtualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock to `t` (never backwards: an earlier `t` is ignored).
    pub fn set(&self, t: NaiveDateTime) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        if t > *now {
            *now = t;
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> NaiveDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Formats a timestamp as the log and the manifest write it: RFC 3339, microseconds, `Z`.
pub fn fmt_ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The times cachescope accepts, in log lines and on the command line, in microseconds since
/// the epoch: from 2000-01-01 up to (not including) 2200-01-01 UTC. A line dated outside them
/// is corrupt (an unset clock's 1970, a garbled year 9999) and is quarantined: one such line
/// would stretch every default period to it, and past the year 9999 DuckDB cannot read back
/// the times the analyses compute from it.
pub const ACCEPTED_MICROS: std::ops::Range<i64> = 946_684_800_000_000..7_258_118_400_000_000;

/// Whether a time (microseconds since the epoch) is one cachescope accepts ([`ACCEPTED_MICROS`]).
pub fn accepted_micros(us: i64) -> bool {
    ACCEPTED_MICROS.contains(&us)
}

/// Whether a time is one cachescope accepts ([`ACCEPTED_MICROS`]).
pub fn accepted(t: NaiveDateTime) -> bool {
    accepted_micros(t.and_utc().timestamp_micros())
}

/// The first and the last accepted time.
pub fn accepted_bounds() -> (NaiveDateTime, NaiveDateTime) {
    let at = |us: i64| chrono::DateTime::from_timestamp_micros(us).map(|d| d.naive_utc()).unwrap_or_default();
    (at(ACCEPTED_MICROS.start), at(ACCEPTED_MICROS.end - 1))
}

/// The accepted times in words, for errors: `2000-01-01 .. 2199-12-31`.
pub fn accepted_span() -> String {
    let (first, last) = accepted_bounds();
    format!("{} .. {}", first.format("%Y-%m-%d"), last.format("%Y-%m-%d"))
}

/// Parses RFC 3339 UTC (`Z` or `+00:00`, fractional seconds optional) into naive UTC.
/// Offsets other than zero are converted to UTC.
pub fn parse_ts(s: &str) -> Option<NaiveDateTime> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.naive_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        let t = parse_ts("2026-11-26T09:30:00.25Z").unwrap();
        assert_eq!(fmt_ts(t), "2026-11-26T09:30:00.250000Z");
        let t2 = parse_ts("2026-11-26T10:30:00+01:00").unwrap();
        assert_eq!(fmt_ts(t2), "2026-11-26T09:30:00.000000Z");
        assert!(parse_ts("2026-11-26 09:30").is_none());
    }

    #[test]
    fn accepted_times_are_the_years_2000_to_2199() {
        let at = |s: &str| accepted(parse_ts(s).unwrap());
        assert!(at("2000-01-01T00:00:00Z"));
        assert!(at("2199-12-31T23:59:59.999999Z"));
        assert!(!at("1999-12-31T23:59:59.999999Z"));
        assert!(!at("1970-01-01T00:00:00Z"));
        assert!(!at("2200-01-01T00:00:00Z"));
        assert!(!at("9999-12-31T23:59:59Z"));
        assert_eq!(accepted_span(), "2000-01-01 .. 2199-12-31");
    }

    #[test]
    fn virtual_clock_never_goes_back() {
        let a = parse_ts("2026-11-26T09:30:00Z").unwrap();
        let c = VirtualClock::new(a);
        c.set(parse_ts("2026-11-26T09:31:00Z").unwrap());
        c.set(a);
        assert_eq!(fmt_ts(c.now()), "2026-11-26T09:31:00.000000Z");
    }
}
