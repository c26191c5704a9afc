//! The SLO over 5-minute windows: how many minutes a simulated cache would have spent below
//! the target (evaluated each minute over the last 5, with at least `min_requests_5m`
//! requests: the `hit_ratio_5m` view's and the alerts' rule), and the smallest pure-LRU
//! capacity that keeps every window at the target.

use super::curve::{LruPass, Unservable, NONE};
use super::trace::Trace;
use crate::analysis::SloPolicy;

/// Minutes per window (`hit_ratio_5m`: the minute and the 4 before it).
pub const WINDOW_MINUTES: usize = 5;

/// Whether a window of `hits` out of `requests` is below the SLO.
fn below(hits: u64, requests: u64, slo: &SloPolicy) -> bool {
    requests >= slo.min_requests_5m as u64 && (hits as f64) < slo.target * requests as f64
}

/// Evaluation minutes whose 5-minute window is below the target, from (hits, requests) by minute.
pub fn minutes_below_slo(minutes: &[(u32, u32)], slo: &SloPolicy) -> u64 {
    let (mut hits, mut requests, mut n) = (0u64, 0u64, 0u64);
    for i in 0..minutes.len() {
        hits += minutes[i].0 as u64;
        requests += minutes[i].1 as u64;
        if i >= WINDOW_MINUTES {
            hits -= minutes[i - WINDOW_MINUTES].0 as u64;
            requests -= minutes[i - WINDOW_MINUTES].1 as u64;
        }
        n += u64::from(below(hits, requests, slo));
    }
    n
}

/// The window no capacity brings to the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreachable {
    /// Its last minute (ms since the epoch).
    pub minute_ms: i64,
    pub requests: u64,
    /// What an infinite cache would have served in it...
    pub ceiling: f64,
    /// ...and why not more.
    pub unservable: Unservable,
}

/// The smallest pure-LRU capacity (bytes) at which every window meets the target, from the
/// requests' stack distances (in the trace's order); or the worst window no size saves.
pub fn every_window_lru(trace: &Trace, lru: &LruPass, slo: &SloPolicy) -> Result<u64, Unreachable> {
    let distances = &lru.distances;
    // Requests are in time order: each minute's distances are one slice.
    let mut starts: Vec<usize> = Vec::new();
    let mut i = 0;
    for op in trace.ops.iter().filter(|o| trace.counted(o)) {
        let m = trace.minute(op.ms);
        while starts.len() <= m {
            starts.push(i);
        }
        i += 1;
    }
    starts.push(i);
    let minutes = starts.len() - 1;
    let mut need = 0u64;
    let mut worst: Option<Unreachable> = None;
    let mut window: Vec<u64> = Vec::new();
    for m in 0..minutes {
        let lo = starts[(m + 1).saturating_sub(WINDOW_MINUTES)];
        let hi = starts[m + 1];
        let requests = (hi - lo) as u64;
        if requests < slo.min_requests_5m as u64 || requests == 0 {
            continue;
        }
        let k = (slo.target * requests as f64).ceil() as usize;
        if k == 0 {
            continue;
        }
        window.clear();
        window.extend_from_slice(&distances[lo..hi]);
        let (_, kth, _) = window.select_nth_unstable(k - 1);
        if *kth == NONE {
            let ceiling = distances[lo..hi].iter().filter(|d| **d != NONE).count() as f64 / requests as f64;
            if worst.as_ref().is_none_or(|w| ceiling < w.ceiling) {
                let minute_ms = (trace.from_ms.div_euclid(60_000) + m as i64) * 60_000;
                worst = Some(Unreachable { minute_ms, requests, ceiling, unservable: Unservable::of(&lru.why[lo..hi]) });
            }
        } else {
            need = need.max(*kth);
        }
    }
    match worst {
        Some(w) => Err(w),
        None => Ok(need),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::SLO;
    use crate::whatif::curve::Why;
    use crate::whatif::trace::{Op, OpKind};

    #[test]
    fn the_window_is_the_one_the_alerts_use() {
        // queries/evaluations_macro.sql, `evaluations_5m_of`: the minutes before an evaluation it
        // reads, and the evaluations after a minute it counts in.
        let sql = crate::queries::EVALUATIONS_MACRO;
        assert!(sql.contains(&format!("lo - INTERVAL {WINDOW_MINUTES} MINUTE AS lo_m")), "the window's reach");
        assert!(sql.contains(&format!("range(1, {}) k(k)", WINDOW_MINUTES + 1)), "the evaluations a minute counts in");
        // ...and the ingester's update of them (queries/evaluations_update.sql).
        let sql = crate::queries::EVALUATIONS_UPDATE;
        assert_eq!(sql.matches(&format!("range(1, {}) k(k)", WINDOW_MINUTES + 1)).count(), 2, "the evaluations a minute counts in, the minutes of one");
        assert!(sql.contains(&format!("e.eval_time - INTERVAL {WINDOW_MINUTES} MINUTE")), "the window's reach");
    }

    #[test]
    fn minutes_below_count_windows_of_enough_requests_under_the_target() {
        let slo = SloPolicy { min_requests_5m: 10, ..SLO };
        // Minute 2 alone is bad (5 of 10), and drags the windows ending at 2..=6 down.
        let m = [(10, 10), (10, 10), (5, 10), (10, 10), (10, 10), (10, 10), (10, 10), (10, 10)];
        // Windows ending at 2: 25/30; 3: 35/40; 4: 45/50 = 90%; 5: 45/50; 6: 45/50; 7: 50/50.
        assert_eq!(minutes_below_slo(&m, &slo), 5);
        assert_eq!(minutes_below_slo(&[(0, 9)], &slo), 0, "too few requests to judge");
    }

    #[test]
    fn every_window_needs_the_largest_window_distance_or_names_the_hopeless_window() {
        let slo = SloPolicy { min_requests_5m: 2, target: 0.5, ..SLO };
        let t = Trace {
            ops: (0..4).map(|i| Op::new(i * 60_000, OpKind::Hit, 0, 1)).collect(),
            from_ms: 0,
            cleanup_retention_ms: vec![],
            keys: 1,
            sample_rate: None,
        };
        let pass = |distances: &[u64]| LruPass {
            distances: distances.to_vec(),
            why: distances.iter().map(|d| if *d == NONE { Why::FirstRequest } else { Why::Servable }).collect(),
            ..Default::default()
        };
        // Windows ending at minute 1 need 1 of [3, 9]; at 2, 2 of [3, 9, 100]; at 3, 2 of [3, 9, 100, 7].
        assert_eq!(every_window_lru(&t, &pass(&[3, 9, 100, 7]), &slo), Ok(9));
        let e = every_window_lru(&t, &pass(&[NONE, NONE, 7, NONE]), &slo).unwrap_err();
        assert_eq!((e.minute_ms, e.requests), (60_000, 2));
        assert_eq!(e.ceiling, 0.0);
        assert_eq!(e.unservable.first_requests, 2);
    }
}
