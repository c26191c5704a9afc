//! Log line times: the fast reader of RFC 3339 and Python's `asctime`, the zone of times
//! written without one, and the range of times a line may carry.

use super::formats::truncate;
use super::zone::{has_zone, Zone};

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (or with a space) quickly; falls back to chrono
/// for other RFC 3339 shapes. Returns microseconds since the epoch.
pub fn parse_ts_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    let fast = (|| {
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (h, mi, sec) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let mut i = 19;
        let mut frac = 0i64;
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return None;
            }
            let mut v = digits(start..start + n.min(6))?;
            for _ in n.min(6)..6 {
                v *= 10;
            }
            frac = v;
        }
        if i != b.len() && !(i + 1 == b.len() && b[i] == b'Z') {
            return None;
        }
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        Some((midnight(y, mo, d)? + h * 3600 + mi * 60 + sec) * 1_000_000 + frac)
    })();
    fast.or_else(|| crate::engine::clock::parse_ts(s).map(|t| t.and_utc().timestamp_micros()))
}

/// A line's time (`parsed` from `text`), or why the line is quarantined: not a time, or one
/// outside the times cachescope accepts.
pub(super) fn line_ts(text: &str, parsed: Option<i64>) -> Result<i64, String> {
    match parsed {
        None => Err(format!("`{}` is not a timestamp", truncate(text, 40))),
        Some(us) if !crate::engine::clock::accepted_micros(us) => Err(format!(
            "`{}` is outside the times cachescope accepts ({}): a corrupt clock or line",
            truncate(text, 40),
            crate::engine::clock::accepted_span()
        )),
        Some(us) => Ok(us),
    }
}

/// Seconds since the epoch at the start of a day. The last day asked is remembered: a log's
/// lines share their date, and chrono's calendar check was ~5% of parsing a line.
fn midnight(y: i64, mo: i64, d: i64) -> Option<i64> {
    thread_local!(static LAST: std::cell::Cell<(i64, i64)> = const { std::cell::Cell::new((-1, 0)) });
    let key = y * 10_000 + mo * 100 + d;
    let (k, secs) = LAST.get();
    if k == key {
        return Some(secs);
    }
    let secs = chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, d as u32)?.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    LAST.set((key, secs));
    Some(secs)
}

/// A time parsed from `text`, read in `zone` if the text does not say its own.
pub(super) fn in_zone(text: &str, parsed: Option<i64>, zone: Zone) -> Option<i64> {
    parsed.and_then(|us| if has_zone(text) { Some(us) } else { zone.to_utc(us) })
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_timestamps_agree_with_chrono_and_reject_impossible_dates() {
        let mut day = chrono::NaiveDate::from_ymd_opt(1899, 12, 25).unwrap();
        while day < chrono::NaiveDate::from_ymd_opt(2101, 3, 5).unwrap() {
            let t = day.and_hms_micro_opt(23, 59, 58, 123_456).unwrap();
            let text = t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
            assert_eq!(parse_ts_micros(&text), Some(t.and_utc().timestamp_micros()), "{text}");
            day = day + chrono::Duration::days(13);
        }
        for bad in ["2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-04-31T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-00T00:00:00Z"] {
            assert_eq!(parse_ts_micros(bad), None, "{bad}");
        }
        assert!(parse_ts_micros("2024-02-29T00:00:00Z").is_some());
        // Lines of one day reuse its midnight; the next day, and an impossible one after a
        // valid one, are computed again.
        let at = |s: &str| parse_ts_micros(s).map(|v| v / 1_000_000);
        assert_eq!(at("2026-02-28T00:00:00Z"), Some(1_772_236_800));
        assert_eq!(at("2026-02-28T23:59:59Z"), Some(1_772_236_800 + 86_399));
        assert_eq!(at("2026-02-29T00:00:00Z"), None);
        assert_eq!(at("2026-03-01T00:00:01Z"), Some(1_772_236_800 + 86_401));
        // (A second of 60 is a leap second to chrono's RFC 3339 reader, the fallback.)
        for bad in ["2026-03-01T23:60:00Z", "2026-03-01T24:00:00Z", "2026-03-01T99:00:00Z"] {
            assert_eq!(parse_ts_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn fast_timestamps_agree_with_chrono() {
        for (s, norm) in [
            ("2026-11-26T14:30:00Z", "2026-11-26T14:30:00Z"),
            ("2026-11-26T14:30:00.25Z", "2026-11-26T14:30:00.25Z"),
            ("2026-11-26T14:30:00.123456Z", "2026-11-26T14:30:00.123456Z"),
            ("2026-11-26 14:30:00,123", "2026-11-26T14:30:00.123Z"),
            // Python's logging with a `datefmt` of whole seconds.
            ("2026-11-26 14:30:00", "2026-11-26T14:30:00Z"),
            ("2026-11-26T15:30:00+01:00", "2026-11-26T14:30:00Z"),
        ] {
            let want = crate::engine::clock::parse_ts(norm).unwrap().and_utc().timestamp_micros();
            assert_eq!(parse_ts_micros(s), Some(want), "{s}");
        }
        assert_eq!(parse_ts_micros("2026-13-26T14:30:00Z"), None);
        assert_eq!(parse_ts_micros("yesterday"), None);
    }
}
