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

/// Figures by (minute, feature set).
#[derive(Debug, Default)]
pub(crate) struct MinuteCounts {
    minutes: HashMap<i64, Sets, foldhash::fast::RandomState>,
}

/// Feature sets searched in a list, beyond which they are indexed.
const SHORT: usize = 16;

/// One minute's figures by feature set. A minute holds few feature sets, searched in a short
/// list (no hashing, no allocation per request); past [`SHORT`] of them (a log whose
/// `feature_set=` is free text) an index finds them: the list alone made such a log
/// quadratic (300k lines of 200k feature sets took 16 s to ingest).
#[derive(Debug, Default)]
struct Sets {
    list: Vec<(Box<str>, Agg)>,
    index: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
}

impl Sets {
    fn add(&mut self, feature_set: &str, agg: &Agg) {
        let at = if self.index.is_empty() {
            self.list.iter().position(|(f, _)| &**f == feature_set)
        } else {
            self.index.get(feature_set).copied()
        };
        if let Some(i) = at {
            self.list[i].1.add(agg);
            return;
        }
        self.list.push((feature_set.into(), *agg));
        if self.list.len() > SHORT {
            let from = if self.index.is_empty() { 0 } else { self.list.len() - 1 };
            for (i, (f, _)) in self.list.iter().enumerate().skip(from) {
                self.index.insert(f.clone(), i);
            }
        }
    }
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
        self.minutes.entry(minute).or_default().add(feature_set, agg);
    }

    /// Adds everything `other` holds (and empties it).
    pub fn merge(&mut self, other: &mut MinuteCounts) {
        for (minute, sets) in other.minutes.drain() {
            for (fs, agg) in sets.list {
                self.add(minute, &fs, &agg);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// How many (minute, feature set) rows it holds.
    pub fn len(&self) -> usize {
        self.minutes.values().map(|s| s.list.len()).sum()
    }

    /// (minute start in microseconds, feature set, figures), sorted; empties `self`.
    pub fn take(&mut self) -> Vec<(i64, Box<str>, Agg)> {
        let mut v: Vec<_> = self
            .minutes
            .drain()
            .flat_map(|(m, sets)| sets.list.into_iter().map(move |(fs, a)| (m * MINUTE_US, fs, a)))
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

    proptest::proptest! {
        /// Past the short list (many feature sets in a minute), figures still add up per
        /// (minute, feature set), as a plain map of them says, merged or not.
        #[test]
        fn many_feature_sets_in_a_minute_add_up_as_a_map_says(
            reqs in proptest::collection::vec((0i64..3, 0u32..60, proptest::bool::ANY, 0i64..1000), 0..600),
            split in 0usize..600,
        ) {
            let t0 = 1_764_000_000_000_000i64;
            let (mut a, mut b) = (MinuteCounts::default(), MinuteCounts::default());
            let mut model = std::collections::BTreeMap::<(i64, String), (i64, i64, i64)>::new();
            for (i, &(minute, fs, hit, bytes)) in reqs.iter().enumerate() {
                let fs = format!("fs{fs}");
                let into = if i < split { &mut a } else { &mut b };
                into.request(Some(t0 + minute * MINUTE_US + i as i64), Some(&fs), hit, Some(bytes), Some(1));
                let m = model.entry((t0 + minute * MINUTE_US, fs)).or_default();
                *m = (m.0 + hit as i64, m.1 + !hit as i64, m.2 + bytes);
            }
            a.merge(&mut b);
            proptest::prop_assert_eq!(a.len(), model.len());
            let got: std::collections::BTreeMap<(i64, String), (i64, i64, i64)> = a
                .take()
                .into_iter()
                .map(|(m, fs, g)| ((m, fs.to_string()), (g.hits, g.misses, g.hit_bytes + g.miss_bytes)))
                .collect();
            proptest::prop_assert_eq!(got, model);
        }
    }
}
