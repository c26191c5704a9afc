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
    fn virtual_clock_never_goes_back() {
        let a = parse_ts("2026-11-26T09:30:00Z").unwrap();
        let c = VirtualClock::new(a);
        c.set(parse_ts("2026-11-26T09:31:00Z").unwrap());
        c.set(a);
        assert_eq!(fmt_ts(c.now()), "2026-11-26T09:31:00.000000Z");
    }
}
