//! The `featurestore_*` series derived from the logs (for trading systems without an exporter
//! of their own), and the tailer's own health. Counters count what this tailer committed since
//! it started (Prometheus' `rate()` handles the reset at a restart).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::engine::metrics::FeatureStoreFamilies;
use crate::ingest::Committed;
use crate::vocab::Event;

/// Metrics of a tailer.
#[derive(Clone)]
pub struct TailMetrics {
    registry: Arc<Registry>,
    /// The engine's own families, counted from the logs.
    families: FeatureStoreFamilies,
    lines: Counter,
    bytes: Counter,
    quarantined: Counter,
    lag: Gauge,
    last_commit: Gauge<f64, AtomicU64>,
}

impl Default for TailMetrics {
    fn default() -> Self {
        TailMetrics::new()
    }
}

impl TailMetrics {
    pub fn new() -> TailMetrics {
        let mut r = Registry::default();
        let families = FeatureStoreFamilies::register(&mut r, "the tailer started (from the logs)");
        let m = TailMetrics {
            registry: Arc::new(Registry::default()),
            families,
            lines: Counter::default(),
            bytes: Counter::default(),
            quarantined: Counter::default(),
            lag: Gauge::default(),
            last_commit: Gauge::default(),
        };
        r.register("cachescope_tail_lines", "Log lines committed to the events database", m.lines.clone());
        r.register("cachescope_tail_bytes", "Log bytes committed", m.bytes.clone());
        r.register("cachescope_tail_quarantined", "Lines quarantined to ingest_errors", m.quarantined.clone());
        r.register("cachescope_tail_lag_bytes", "Bytes of the followed files not yet committed", m.lag.clone());
        r.register(
            "cachescope_tail_last_commit_timestamp_seconds",
            "Unix time of the last commit",
            m.last_commit.clone(),
        );
        TailMetrics {
            registry: Arc::new(r),
            ..m
        }
    }

    /// Adds what a pass committed, and sets the lag.
    pub fn record(&self, c: &Committed, lag_bytes: u64) {
        let f = &self.families;
        for (&(event, reason), n) in &c.events {
            let reason = if reason.is_empty() { "unknown" } else { reason };
            match event {
                Event::Hit => {
                    f.requests.get_or_create(&[("result", "hit".into())]).inc_by(*n);
                }
                Event::Miss => {
                    f.requests.get_or_create(&[("result", "miss".into())]).inc_by(*n);
                    f.misses.get_or_create(&[("reason", reason.into())]).inc_by(*n);
                }
                Event::Eviction => {
                    f.evictions.get_or_create(&[("reason", reason.into())]).inc_by(*n);
                }
                Event::Invalidation => {
                    f.invalidations.get_or_create(&[("reason", reason.into())]).inc_by(*n);
                }
                Event::WriteFailed => {
                    f.write_failures.inc_by(*n);
                }
                Event::ComputeFailed => {
                    f.compute_failures.inc_by(*n);
                }
                _ => {}
            }
        }
        let hits = f.requests.get_or_create(&[("result", "hit".into())]).get();
        let misses = f.requests.get_or_create(&[("result", "miss".into())]).get();
        if hits + misses > 0 {
            f.hit_ratio.set(hits as f64 / (hits + misses) as f64);
        }
        self.lines.inc_by(c.lines);
        self.bytes.inc_by(c.bytes);
        self.quarantined.inc_by(c.quarantined);
        self.lag.set(lag_bytes as i64);
        if let Some(t) = c.last_commit {
            self.last_commit.set(t.and_utc().timestamp_micros() as f64 / 1e6);
        }
    }

    /// The OpenMetrics text (the exporter serves it, or its classic form, by `Accept`).
    pub fn encode_openmetrics(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry).expect("writing to a String cannot fail");
        crate::engine::metrics::canonical_order(&s)
    }
}
