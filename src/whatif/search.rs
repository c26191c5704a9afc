//! Finding the settings that hold the SLO: the engine-policy simulation at each point (on all
//! cores), and the smallest capacity that meets the target over the period or in every
//! 5-minute window, by bisection inside the bracket pure LRU gives. The engine's cache is
//! always a most-recent prefix of the LRU stack holding at most `cleanup_threshold` and at
//! least `eviction_target` of the capacity, so with the log's own retention it serves between
//! LRU at `eviction_target x C` and LRU at `cleanup_threshold x C`.

use super::curve::{adjusted_ratio, Curve, LruPass};
use super::policy::{self, Policy, Served};
use super::trace::{retention_ms, Trace};
use super::windows;
use super::{Blocked, Recommendation, Settings, SizePoint, GB};
use crate::analysis::SloPolicy;
use crate::engine::clock::fmt_ts;

/// Everything the searches need.
pub struct Model<'a> {
    pub trace: &'a Trace,
    pub lru: &'a LruPass,
    pub curve: &'a Curve,
    pub settings: Settings,
    pub slo: SloPolicy,
    /// For a sample: the requests it should have had (see [`adjusted_ratio`]).
    pub expected_requests: Option<f64>,
    /// Pure LRU's answer for every window ([`windows::every_window_lru`]), computed once.
    pub every_window: Result<u64, windows::Unreachable>,
}

/// Capacities are searched to this share of their size.
const PRECISION: f64 = 0.002;

impl Model<'_> {
    fn policy(&self, bytes: u64, retention_days: Option<f64>) -> Policy {
        Policy {
            // A sampled trace runs through a cache shrunk by the sampling rate.
            capacity_bytes: (bytes as f64 * self.trace.sample_rate.unwrap_or(1.0)).round() as u64,
            cleanup_threshold: self.settings.cleanup_threshold,
            eviction_target: self.settings.eviction_target,
            retention_ms: retention_days.map(retention_ms),
        }
    }

    fn serve(&self, bytes: u64, retention_days: Option<f64>) -> Served {
        policy::simulate(self.trace, &self.policy(bytes, retention_days))
    }

    /// A simulation's hit ratio (a sample's adjusted).
    fn ratio(&self, s: &Served) -> Option<f64> {
        adjusted_ratio(s.hits, s.requests, self.expected_requests)
    }

    fn meets_period(&self, s: &Served) -> bool {
        self.ratio(s).is_some_and(|h| h >= self.slo.target)
    }

    fn meets_every_window(&self, s: &Served) -> bool {
        windows::minutes_below_slo(&s.minutes, &self.slo) == 0
    }

    /// The capacity that holds every key ever stored without evicting.
    fn everything(&self) -> u64 {
        (self.lru.working_set_bytes as f64 / self.settings.cleanup_threshold).ceil() as u64 + 1
    }

    /// One setting's point.
    pub fn point(&self, capacity_gb: f64, retention_days: Option<f64>) -> SizePoint {
        let bytes = (capacity_gb * GB).round() as u64;
        let s = self.serve(bytes, retention_days);
        SizePoint {
            capacity_gb,
            retention_days,
            hit_ratio: self.ratio(&s).unwrap_or(0.0),
            lru_hit_ratio: retention_days.is_none().then(|| self.curve.hit_ratio(bytes).unwrap_or(0.0)),
            minutes_below_slo: windows::minutes_below_slo(&s.minutes, &self.slo),
        }
    }

    /// The points of several settings, simulated on all cores.
    pub fn points(&self, settings: &[(f64, Option<f64>)]) -> Vec<SizePoint> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(settings.len().max(1));
        let chunk = settings.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = settings
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(|(c, r)| self.point(*c, *r)).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("a what-if simulation thread panicked")).collect()
        })
    }

    /// The smallest capacity (bytes) for which `ok` holds, searched in `[lo, hi]` (hints that
    /// are checked), rounded up to three significant digits in GB.
    fn smallest(&self, retention_days: Option<f64>, lo: u64, hi: u64, ok: impl Fn(&Served) -> bool) -> Option<Recommendation> {
        let test = |b: u64| ok(&self.serve(b, retention_days));
        let mut hi = if hi > 0 && test(hi) {
            hi
        } else {
            let all = self.everything();
            if !test(all) {
                return None;
            }
            all
        };
        let mut lo = match lo {
            l if l > 0 && l < hi && test(l) => {
                hi = l;
                0
            }
            l if l < hi => l,
            _ => 0,
        };
        while hi > lo + ((hi as f64 * PRECISION) as u64).max(1) {
            let mid = lo + (hi - lo) / 2;
            if test(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let nice = round_up_gb(hi as f64 / GB);
        let bytes = (nice * GB).round() as u64;
        let s = self.serve(bytes, retention_days);
        let (capacity_gb, s) = if ok(&s) { (nice, s) } else { (hi as f64 / GB, self.serve(hi, retention_days)) };
        Some(Recommendation {
            capacity_gb,
            retention_days,
            hit_ratio: self.ratio(&s).unwrap_or(0.0),
            minutes_below_slo: windows::minutes_below_slo(&s.minutes, &self.slo),
        })
    }

    /// The LRU bracket `[C / threshold, C / target]` of the engine's answer, from LRU's `C`
    /// (valid with the log's retention; otherwise only a starting guess).
    fn bracket(&self, lru: u64) -> (u64, u64) {
        let (t, g) = (self.settings.cleanup_threshold, self.settings.eviction_target);
        ((lru as f64 / t * (1.0 - PRECISION)) as u64, (lru as f64 / g).ceil() as u64 + 1)
    }

    /// The smallest capacity whose hit ratio over the period meets the SLO.
    pub fn smallest_for_period(&self, retention_days: Option<f64>) -> Option<Recommendation> {
        let lru = self.curve.smallest_for(self.slo.target);
        let (lo, hi) = lru.map(|c| self.bracket(c)).unwrap_or((0, 0));
        self.smallest(retention_days, lo, hi, |s| self.meets_period(s))
    }

    /// The smallest capacity that keeps every 5-minute window at the SLO.
    pub fn smallest_for_every_window(&self, retention_days: Option<f64>) -> Option<Recommendation> {
        let lru = self.every_window.as_ref().ok().copied();
        let (lo, hi) = lru.map(|c| self.bracket(c)).unwrap_or((0, 0));
        self.smallest(retention_days, lo, hi, |s| self.meets_every_window(s))
    }

    /// [`Self::smallest_for_period`] and [`Self::smallest_for_every_window`], side by side on
    /// two cores: each is a bisection of whole simulations, one after the other.
    pub fn smallest_both(&self, retention_days: Option<f64>) -> (Option<Recommendation>, Option<Recommendation>) {
        std::thread::scope(|scope| {
            let every = scope.spawn(|| self.smallest_for_every_window(retention_days));
            let period = self.smallest_for_period(retention_days);
            (period, every.join().expect("a what-if search thread panicked"))
        })
    }

    pub fn blocked_for_period(&self) -> Blocked {
        Blocked {
            ceiling_hit_ratio: self.curve.ceiling().unwrap_or(0.0),
            window_end: None,
            cause: self.lru.unservable.largest(self.lru.distances.len() as u64),
        }
    }

    pub fn blocked_for_every_window(&self) -> Blocked {
        match &self.every_window {
            Err(w) => Blocked {
                ceiling_hit_ratio: w.ceiling,
                window_end: chrono::DateTime::from_timestamp_millis(w.minute_ms + 60_000).map(|t| fmt_ts(t.naive_utc())),
                cause: w.unservable.largest(w.requests),
            },
            // Pure LRU could, the engine's policy with this retention could not.
            Ok(_) => Blocked {
                ceiling_hit_ratio: self.curve.ceiling().unwrap_or(0.0),
                window_end: None,
                cause: "the retention clean-ups".into(),
            },
        }
    }
}

/// `gb` rounded up to three significant digits.
pub fn round_up_gb(gb: f64) -> f64 {
    if gb <= 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(2 - gb.log10().floor() as i32);
    let r = (gb * scale).ceil() / scale;
    // Printing `r` must give the digits, not 0.30000000000000004.
    format!("{r:.*}", (2 - gb.log10().floor() as i32).max(0) as usize).parse().unwrap_or(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_three_digits() {
        assert_eq!(round_up_gb(0.0041234), 0.00413);
        assert_eq!(round_up_gb(123.01), 124.0);
        assert_eq!(round_up_gb(1.0), 1.0);
        assert_eq!(round_up_gb(0.3), 0.3);
        assert_eq!(round_up_gb(0.0), 0.0);
    }
}
