//! The time zone of times a log writes without one. Python's `asctime` (the `python` format,
//! python-json-logger's `asctime`) and a custom format's naive `ts_format` are the writing
//! host's wall clock: `--timezone` names its zone (an IANA name, `local` for this machine's,
//! default UTC). Times written with `Z` or an offset (the engine's) are what they say.

use chrono::{NaiveDateTime, Offset, TimeZone};

/// A zone naive times are read in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Zone {
    #[default]
    Utc,
    /// This machine's (`TZ`, else `/etc/localtime`).
    Local,
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `UTC`, `local`, or an IANA name such as `America/New_York`.
    pub fn parse(s: &str) -> Result<Zone, String> {
        match s {
            "UTC" | "utc" | "Z" => Ok(Zone::Utc),
            "local" => Ok(Zone::Local),
            name => name
                .parse::<chrono_tz::Tz>()
                .map(Zone::Named)
                .map_err(|_| format!("`{name}` is not a time zone: give an IANA name such as America/New_York, `local` (this machine's) or UTC")),
        }
    }

    /// The UTC time (microseconds since the epoch) of the wall-clock time `naive_us` in this
    /// zone. A time the zone skips (spring forward) is read with the offset before the change;
    /// a repeated one (fall back) as its first occurrence.
    pub fn to_utc(self, naive_us: i64) -> Option<i64> {
        if self == Zone::Utc {
            return Some(naive_us);
        }
        // Offsets change on whole minutes: one lookup per minute of the log, not per line.
        thread_local!(static LAST: std::cell::Cell<Option<(Zone, i64, i64)>> = const { std::cell::Cell::new(None) });
        let minute = naive_us.div_euclid(60_000_000);
        if let Some((z, m, offset)) = LAST.get() {
            if z == self && m == minute {
                return Some(naive_us - offset);
            }
        }
        let naive = chrono::DateTime::from_timestamp_micros(minute * 60_000_000)?.naive_utc();
        let offset = match self {
            Zone::Utc => 0,
            Zone::Local => offset_us(&chrono::Local, naive)?,
            Zone::Named(tz) => offset_us(&tz, naive)?,
        };
        LAST.set(Some((self, minute, offset)));
        Some(naive_us - offset)
    }
}

/// The offset from UTC (microseconds) of `zone` at the wall-clock time `naive`.
fn offset_us<Z: TimeZone>(zone: &Z, naive: NaiveDateTime) -> Option<i64> {
    let at = match zone.offset_from_local_datetime(&naive) {
        chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(o, _) => o,
        // In the gap: the offset an hour before it, as a clock not yet moved forward.
        chrono::LocalResult::None => zone.offset_from_local_datetime(&(naive - chrono::Duration::hours(1))).earliest()?,
    };
    Some(at.fix().local_minus_utc() as i64 * 1_000_000)
}

/// Whether a time's text says its zone (`Z`, `+02:00`, `-0500`) after `YYYY-MM-DDTHH:MM`.
pub fn has_zone(text: &str) -> bool {
    let t = text.trim_end();
    t.ends_with(['Z', 'z']) || t.get(16..).is_some_and(|rest| rest.contains(['+', '-']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp_micros()
    }

    #[test]
    fn new_york_wall_clock_is_read_with_its_offset_across_both_changes() {
        let ny = Zone::parse("America/New_York").unwrap();
        // Winter (EST, -5) and summer (EDT, -4).
        assert_eq!(ny.to_utc(us("2026-11-24 09:30:00")), Some(us("2026-11-24 14:30:00")));
        assert_eq!(ny.to_utc(us("2026-07-01 09:30:00") + 123), Some(us("2026-07-01 13:30:00") + 123));
        // 2026-03-08 02:30 does not exist (clocks go 02:00 -> 03:00): read as EST.
        assert_eq!(ny.to_utc(us("2026-03-08 02:30:00")), Some(us("2026-03-08 07:30:00")));
        // 2026-11-01 01:30 happens twice: the first (EDT).
        assert_eq!(ny.to_utc(us("2026-11-01 01:30:00")), Some(us("2026-11-01 05:30:00")));
        // The per-minute memory does not mix zones or minutes.
        assert_eq!(Zone::Utc.to_utc(us("2026-11-24 09:30:00")), Some(us("2026-11-24 09:30:00")));
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        assert_eq!(tokyo.to_utc(us("2026-11-24 09:30:00")), Some(us("2026-11-24 00:30:00")));
        assert_eq!(ny.to_utc(us("2026-11-24 09:31:00")), Some(us("2026-11-24 14:31:00")));
    }

    #[test]
    fn zones_are_named_as_users_write_them() {
        assert_eq!(Zone::parse("UTC"), Ok(Zone::Utc));
        assert_eq!(Zone::parse("local"), Ok(Zone::Local));
        let e = Zone::parse("New York").unwrap_err();
        assert!(e.contains("America/New_York"), "{e}");
        assert!(has_zone("2026-11-24T09:30:00Z") && has_zone("2026-11-24T09:30:00.5+01:00") && has_zone("2026-11-24 09:30:00-0500"));
        assert!(!has_zone("2026-11-24 09:30:00,123") && !has_zone("2026-11-24 09:30:00"));
    }
}
