//! The pure least-recently-used curve of a [`Trace`]: each request's stack distance (one pass,
//! [`StackDistances`]), the hit ratio at every capacity from them, and what no capacity fixes
//! (the ceiling, by cause).

use serde::Serialize;

use super::trace::{OpKind, Trace};
use super::StackDistances;

/// A request no cache serves: `NONE` as its distance.
pub const NONE: u64 = u64::MAX;

/// Why a request no capacity serves is unservable (`Unservable`'s fields, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Why {
    Servable = 0,
    FirstRequest,
    Invalidated,
    Retention,
    Failed,
    ManifestOutage,
}

/// Requests no capacity serves, by why.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Unservable {
    /// First requests of a key (new symbols, new data versions or configurations, cold start).
    pub first_requests: u64,
    /// Requests of a key invalidated or deleted behind the engine's back since its last use.
    pub invalidated: u64,
    /// Requests of a key a retention clean-up removed (as logged) since its last use.
    pub retention: u64,
    /// Requests whose result could not be stored (write or compute failure).
    pub failed: u64,
    /// Requests served uncached while the manifest was unavailable.
    pub manifest_outage: u64,
}

impl Unservable {
    fn add(&mut self, why: Why) {
        match why {
            Why::Servable => {}
            Why::FirstRequest => self.first_requests += 1,
            Why::Invalidated => self.invalidated += 1,
            Why::Retention => self.retention += 1,
            Why::Failed => self.failed += 1,
            Why::ManifestOutage => self.manifest_outage += 1,
        }
    }

    /// The counts of requests with these reasons.
    pub fn of(whys: &[Why]) -> Unservable {
        let mut u = Unservable::default();
        for w in whys {
            u.add(*w);
        }
        u
    }

    /// The largest cause, in words, with its share of `requests`.
    pub fn largest(&self, requests: u64) -> String {
        let mut causes = [
            (self.first_requests, "first requests of keys (new symbols, data versions or configurations)"),
            (self.invalidated, "requests after invalidations or deleted files"),
            (self.retention, "requests after retention clean-ups (a longer `retention_days` helps)"),
            (self.failed, "results that could not be stored (write or compute failures)"),
            (self.manifest_outage, "requests during manifest outages"),
        ];
        causes.sort_by_key(|c| std::cmp::Reverse(c.0));
        format!("{} ({:.2}% of requests)", causes[0].1, causes[0].0 as f64 * 100.0 / requests.max(1) as f64)
    }
}

/// Each counted request's distance ([`NONE`]: no capacity serves it) and why no capacity
/// serves it, in order, with the working set and the counts by why.
#[derive(Debug, Default)]
pub struct LruPass {
    pub distances: Vec<u64>,
    pub why: Vec<Why>,
    pub working_set_bytes: u64,
    pub unservable: Unservable,
}

/// Runs `trace` through the stack. A hit or a stored miss uses its key (a hit of a key stored
/// before the history read counts as a hit at its own size); a warm-up stores without a
/// request; a miss that could not be stored, and one during a manifest outage, misses at any
/// size; invalidations, deleted files and the retention evictions the engine logged take the
/// key out at any size.
pub fn lru_pass(trace: &Trace) -> LruPass {
    // Why each key is out of the cache at any size (`Servable`: it is not).
    let mut gone = vec![Why::Servable; trace.keys as usize];
    let mut stack = StackDistances::with_capacity(1 << 16);
    let mut out = LruPass::default();
    for op in &trace.ops {
        let (k, kind, counted) = (op.key(), op.kind(), trace.counted(op));
        let (d, why) = match kind {
            OpKind::Hit | OpKind::MissStored => {
                let why = std::mem::replace(&mut gone[k as usize], Why::Servable);
                match (stack.access(k as u64, op.bytes as u64), kind) {
                    (Some(d), _) => (d, Why::Servable),
                    // Cached before the history read: at least its own size was needed.
                    (None, OpKind::Hit) if why == Why::Servable => (op.bytes as u64, Why::Servable),
                    (None, _) if why == Why::Servable => (NONE, Why::FirstRequest),
                    (None, _) => (NONE, why),
                }
            }
            OpKind::MissFailed => {
                stack.drop_key(k as u64);
                gone[k as usize] = Why::Failed;
                (NONE, Why::Failed)
            }
            OpKind::MissUncached => (NONE, Why::ManifestOutage),
            OpKind::WarmStored => {
                gone[k as usize] = Why::Servable;
                stack.access(k as u64, op.bytes as u64);
                continue;
            }
            OpKind::Drop | OpKind::RetentionEviction => {
                stack.drop_key(k as u64);
                gone[k as usize] = if kind == OpKind::Drop { Why::Invalidated } else { Why::Retention };
                continue;
            }
            OpKind::Cleanup => continue,
        };
        if counted {
            // A sampled stack is the whole one shrunk by the rate: distances grow back by it.
            let d = match trace.sample_rate {
                Some(rate) if d != NONE => (d as f64 / rate).round() as u64,
                _ => d,
            };
            out.distances.push(d);
            out.why.push(why);
            out.unservable.add(why);
        }
    }
    out.working_set_bytes = (stack.working_set_bytes() as f64 / trace.sample_rate.unwrap_or(1.0)).round() as u64;
    out
}

/// Hit ratios by capacity, from each request's stack distance.
#[derive(Debug, Clone, Default)]
pub struct Curve {
    /// The finite distances, sorted.
    distances: Vec<u64>,
    /// Requests in all (those no cache serves included).
    requests: u64,
    /// For a sample: the requests a sample of its rate should have had, and the difference
    /// counted as hits at any size (SHARDS-adj: a sample's excess or shortfall of requests is
    /// its hottest keys'). Exact: `requests` and 0.
    expected: f64,
    extra: f64,
}

/// SHARDS-adj (Waldspurger et al., FAST'15): a sample's hit ratio, corrected for the sample
/// holding more or fewer requests than `expected` (its rate times all the requests).
pub fn adjusted_ratio(hits: u64, requests: u64, expected: Option<f64>) -> Option<f64> {
    match expected {
        Some(e) if e > 0.0 => Some(((hits as f64 + e - requests as f64) / e).clamp(0.0, 1.0)),
        _ => (requests > 0).then(|| hits as f64 / requests as f64),
    }
}

impl Curve {
    /// The curve of requests whose distances are `distances` ([`NONE`]: no cache serves it).
    pub fn new(distances: &[u64]) -> Curve {
        let mut finite: Vec<u64> = distances.iter().copied().filter(|d| *d != NONE).collect();
        finite.sort_unstable();
        let requests = distances.len() as u64;
        Curve { distances: finite, requests, expected: requests as f64, extra: 0.0 }
    }

    /// The curve of a sample that should have had `expected` requests (see [`adjusted_ratio`]).
    pub fn sampled(self, expected: f64) -> Curve {
        Curve { extra: expected - self.requests as f64, expected, ..self }
    }

    fn ratio(&self, hits: usize) -> Option<f64> {
        (self.requests > 0 && self.expected > 0.0).then(|| ((hits as f64 + self.extra) / self.expected).clamp(0.0, 1.0))
    }

    /// The share of requests an LRU cache of `bytes` would have served.
    pub fn hit_ratio(&self, bytes: u64) -> Option<f64> {
        self.ratio(self.distances.partition_point(|d| *d <= bytes))
    }

    /// What an infinite cache would have served: the ceiling no capacity passes.
    pub fn ceiling(&self) -> Option<f64> {
        self.ratio(self.distances.len())
    }

    /// The smallest capacity (bytes) whose hit ratio is at least `target`, if any is.
    pub fn smallest_for(&self, target: f64) -> Option<u64> {
        if self.requests == 0 {
            return None;
        }
        let needed = (target * self.expected - self.extra).ceil().max(0.0) as usize;
        match needed {
            0 => Some(0),
            n if n <= self.distances.len() => Some(self.distances[n - 1]),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_rises_to_its_ceiling_and_names_the_smallest_size_for_a_target() {
        let c = Curve::new(&[NONE, 10, 30, 20, NONE, 10, 50, 40, 10, 20]);
        assert_eq!(c.hit_ratio(0), Some(0.0));
        assert_eq!(c.hit_ratio(10), Some(0.3));
        assert_eq!(c.hit_ratio(25), Some(0.5));
        assert_eq!(c.hit_ratio(u64::MAX), Some(0.8));
        assert_eq!(c.ceiling(), Some(0.8));
        assert_eq!(c.smallest_for(0.5), Some(20));
        assert_eq!(c.smallest_for(0.8), Some(50));
        assert_eq!(c.smallest_for(0.9), None, "above the ceiling no size will do");
        assert_eq!(Curve::new(&[]).hit_ratio(5), None);
        // A sample with 2 requests more than expected: they count as hits of hot keys, less.
        let s = Curve::new(&[NONE, 10, 30, 20, NONE, 10, 50, 40, 10, 20]).sampled(8.0);
        assert_eq!(s.hit_ratio(10), Some(1.0 / 8.0));
        assert_eq!(s.ceiling(), Some(6.0 / 8.0));
        assert_eq!(s.smallest_for(0.5), Some(30), "4 of 8: 6 of the sample's hits");
        assert_eq!(adjusted_ratio(3, 10, Some(8.0)), Some(1.0 / 8.0));
        assert_eq!(adjusted_ratio(3, 10, None), Some(0.3));
    }
}
