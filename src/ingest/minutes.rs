//! Per-minute request figures, gathered while rows are built and merged into the
//! `request_minutes` table in the transaction that commits the rows (so they are exactly-once
//! like the rows). Counts and sums are additive: lines that arrive late (an archive read
//! after its successor, a second host's log) add to their own minutes, and the table always
//! equals the aggregation of `events` (`queries/request_minutes_rebuild.sql`), which the
//! tests check.

use std::collections::HashMap;

/// One minute's figures for one feature set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Agg {
    pub hits: i64,
    pub misses: i64,
    pub hit_bytes: i64,
    pub miss_bytes: i64,
    pub latency_us: i64,
    /// First and last request time (microseconds since the epoch).
    pub first_ts: i64,
    pub last_ts: i64,
}

impl Agg {
    fn add(&mut self, other: &Agg) {
        if self.hits + self.misses == 0 {
            *self = *other;
            return;
        }
        self.hits += other.hits;
        self.misses += other.misses;
        self.hit_bytes += other.hit_bytes;
        self.miss_bytes += other.miss_bytes;
        self.latency_us += other.latency_us;
        self.first_ts = self.first_ts.min(other.first_ts);
        self.last_ts = self.last_ts.max(other.last_ts);
    }
}

/// Figures by (minute, feature set). A minute holds few feature sets: they are searched in a
/// short list, which costs no allocation per request.
#[derive(Debug, Default)]
pub(crate) struct MinuteCounts {
    minutes: HashMap<i64, Vec<(Box<str>, Agg)>, foldhash::fast::RandomState>,
}

/// Microseconds in a minute.
const MINUTE_US: i64 = 60_000_000;

impl MinuteCounts {
    /// Counts one request at `ts` (microseconds since the epoch) of `feature_set` (`""`:
    /// none). Lines without a time are not requests of any minute.
    pub fn request(&mut self, ts: Option<i64>, feature_set: Option<&str>, hit: bool, bytes: Option<i64>, latency_us: Option<i64>) {
        let Some(ts) = ts else { return };
        let (bytes, latency_us) = (bytes.unwrap_or(0), latency_us.unwrap_or(0));
        let one = Agg {
            hits: hit as i64,
            misses: !hit as i64,
            hit_bytes: if hit { bytes } else { 0 },
            miss_bytes: if hit { 0 } else { bytes },
            latency_us,
            first_ts: ts,
            last_ts: ts,
        };
        self.add(ts.div_euclid(MINUTE_US), feature_set.unwrap_or(""), &one);
    }

    fn add(&mut self, minute: i64, feature_set: &str, agg: &Agg) {
        let sets = self.minutes.entry(minute).or_default();
        match sets.iter_mut().find(|(f, _)| &**f == feature_set) {
            Some((_, a)) => a.add(agg),
            None => sets.push((feature_set.into(), *agg)),
        }
    }

    /// Adds everything `other` holds (and empties it).
    pub fn merge(&mut self, other: &mut MinuteCounts) {
        for (minute, sets) in other.minutes.drain() {
            for (fs, agg) in sets {
                self.add(minute, &fs, &agg);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// How many (minute, feature set) rows it holds.
    pub fn len(&self) -> usize {
        self.minutes.values().map(Vec::len).sum()
    }

    /// (minute start in microseconds, feature set, figures), sorted; empties `self`.
    pub fn take(&mut self) -> Vec<(i64, Box<str>, Agg)> {
        let mut v: Vec<_> = self
            .minutes
            .drain()
            .flat_map(|(m, sets)| sets.into_iter().map(move |(fs, a)| (m * MINUTE_US, fs, a)))
            .collect();
        v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_add_up_by_minute_and_feature_set_in_any_order() {
        let t = |s: i64| 1_764_000_000_000_000 + s * 1_000_000;
        let mut a = MinuteCounts::default();
        a.request(Some(t(1)), Some("returns"), true, Some(100), Some(10));
        a.request(Some(t(59)), Some("returns"), false, Some(900), Some(500));
        a.request(Some(t(61)), Some("returns"), true, Some(100), Some(10));
        a.request(Some(t(5)), None, false, None, None);
        a.request(None, Some("returns"), true, Some(1), Some(1));
        let mut b = MinuteCounts::default();
        b.request(Some(t(0)), Some("returns"), true, Some(7), Some(3));
        a.merge(&mut b);
        assert!(b.is_empty());
        assert_eq!(a.len(), 3);
        let rows = a.take();
        assert_eq!(rows.len(), 3, "{rows:?}");
        let (m, fs, agg) = &rows[1];
        assert_eq!((*m, &**fs), (t(0) - t(0).rem_euclid(MINUTE_US), "returns"));
        assert_eq!(
            *agg,
            Agg { hits: 2, misses: 1, hit_bytes: 107, miss_bytes: 900, latency_us: 513, first_ts: t(0), last_ts: t(59) }
        );
        assert_eq!(&*rows[0].1, "", "no feature set sorts first");
        assert_eq!(rows[2].2.hits, 1);
        assert!(a.is_empty());
    }
}
