//! The pure least-recently-used curve of a [`Trace`]: each request's stack distance (one pass,
//! [`StackDistances`]), the hit ratio at every capacity from them, and what no capacity fixes
//! (the ceiling, by cause).

use serde::Serialize;

use super::trace::{OpKind, Trace};
use super::StackDistances;

/// A request no cache serves: `NONE` as its distance.
pub const NONE: u64 = u64::MAX;

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

/// Each counted request's distance ([`NONE`]: no capacity serves it), in order, with the
/// working set and why the unservable ones are.
#[derive(Debug, Default)]
pub struct LruPass {
    pub distances: Vec<u64>,
    pub working_set_bytes: u64,
    pub unservable: Unservable,
}

/// Runs `trace` through the stack. A hit or a stored miss uses its key (a hit of a key stored
/// before the history read counts as a hit at its own size); a warm-up stores without a
/// request; a miss that could not be stored, and one during a manifest outage, misses at any
/// size; invalidations, deleted files and the retention evictions the engine logged take the
/// key out at any size.
pub fn lru_pass(trace: &Trace) -> LruPass {
    #[derive(Clone, Copy, PartialEq)]
    enum Gone { No, Invalidated, Retention, Failed }
    let mut gone = vec![Gone::No; trace.keys as usize];
    let mut stack = StackDistances::with_capacity(1 << 16);
    let mut out = LruPass::default();
    for op in &trace.ops {
        let (k, kind, counted) = (op.key(), op.kind(), trace.counted(op));
        let d = match kind {
            OpKind::Hit | OpKind::MissStored => {
                let why = gone[k as usize];
                gone[k as usize] = Gone::No;
                let d = stack.access(k as u64, op.bytes as u64);
                match (d, kind) {
                    (Some(d), _) => d,
                    // Cached before the history read: at least its own size was needed.
                    (None, OpKind::Hit) if why == Gone::No => op.bytes as u64,
                    (None, _) if counted => {
                        let u = &mut out.unservable;
                        *match why {
                            Gone::No => &mut u.first_requests,
                            Gone::Invalidated => &mut u.invalidated,
                            Gone::Retention => &mut u.retention,
                            Gone::Failed => &mut u.failed,
                        } += 1;
                        NONE
                    }
                    (None, _) => NONE,
                }
            }
            OpKind::MissFailed => {
                stack.drop_key(k as u64);
                gone[k as usize] = Gone::Failed;
                out.unservable.failed += u64::from(counted);
                NONE
            }
            OpKind::MissUncached => {
                out.unservable.manifest_outage += u64::from(counted);
                NONE
            }
            OpKind::WarmStored => {
                gone[k as usize] = Gone::No;
                stack.access(k as u64, op.bytes as u64);
                continue;
            }
            OpKind::Drop | OpKind::RetentionEviction => {
                stack.drop_key(k as u64);
                gone[k as usize] = if kind == OpKind::Drop { Gone::Invalidated } else { Gone::Retention };
                continue;
            }
            OpKind::Cleanup => continue,
        };
        if counted {
            out.distances.push(d);
        }
    }
    out.working_set_bytes = stack.working_set_bytes();
    out
}

/// Hit ratios by capacity, from each request's stack distance.
#[derive(Debug, Clone, Default)]
pub struct Curve {
    /// The finite distances, sorted.
    distances: Vec<u64>,
    /// Requests in all (those no cache serves included).
    requests: u64,
}

impl Curve {
    /// The curve of requests whose distances are `distances` ([`NONE`]: no cache serves it).
    pub fn new(distances: &[u64]) -> Curve {
        let mut finite: Vec<u64> = distances.iter().copied().filter(|d| *d != NONE).collect();
        finite.sort_unstable();
        Curve { distances: finite, requests: distances.len() as u64 }
    }

    /// The share of requests an LRU cache of `bytes` would have served.
    pub fn hit_ratio(&self, bytes: u64) -> Option<f64> {
        (self.requests > 0).then(|| self.distances.partition_point(|d| *d <= bytes) as f64 / self.requests as f64)
    }

    /// What an infinite cache would have served: the ceiling no capacity passes.
    pub fn ceiling(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.distances.len() as f64 / self.requests as f64)
    }

    /// The smallest capacity (bytes) whose hit ratio is at least `target`, if any is.
    pub fn smallest_for(&self, target: f64) -> Option<u64> {
        if self.requests == 0 {
            return None;
        }
        let needed = (target * self.requests as f64).ceil() as usize;
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
    }
}
