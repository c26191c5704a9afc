//! Prometheus metrics of the engine (prefix `featurestore_`) and an optional `/metrics`
//! exporter on 127.0.0.1 by default.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub type Labels = [(&'static str, String); 1];

/// The `featurestore_*` families that both the engine and a tailer export (the tailer derives
/// them from the logs), declared once with their help texts; every series a dashboard or an
/// alert reads exists from the start, at zero.
#[derive(Clone)]
pub struct FeatureStoreFamilies {
    pub requests: Family<Labels, Counter>,
    pub misses: Family<Labels, Counter>,
    pub evictions: Family<Labels, Counter>,
    pub invalidations: Family<Labels, Counter>,
    pub write_failures: Counter,
    pub compute_failures: Counter,
    pub hit_ratio: Gauge<f64, AtomicU64>,
}

impl FeatureStoreFamilies {
    /// The families, registered in `r`; `since` ends the hit ratio's help ("the engine
    /// started").
    pub fn register(r: &mut Registry, since: &str) -> FeatureStoreFamilies {
        let f = FeatureStoreFamilies {
            requests: Family::default(),
            misses: Family::default(),
            evictions: Family::default(),
            invalidations: Family::default(),
            write_failures: Counter::default(),
            compute_failures: Counter::default(),
            hit_ratio: Gauge::default(),
        };
        r.register("featurestore_requests", "get_or_compute requests by result (hit or miss)", f.requests.clone());
        r.register("featurestore_misses", "Cache misses by the engine's reason", f.misses.clone());
        r.register("featurestore_evictions", "Cache files evicted, by reason (capacity or retention)", f.evictions.clone());
        r.register("featurestore_invalidations", "Cache keys invalidated, by reason (market_data or config)", f.invalidations.clone());
        r.register("featurestore_write_failures", "Cache files that could not be written", f.write_failures.clone());
        r.register("featurestore_compute_failures", "Feature computations that failed", f.compute_failures.clone());
        r.register("featurestore_hit_ratio", format!("Hits over requests since {since}"), f.hit_ratio.clone());
        for r in ["hit", "miss"] {
            let _ = f.requests.get_or_create(&[("result", r.into())]);
        }
        for r in super::MissReason::ALL {
            let _ = f.misses.get_or_create(&[("reason", r.as_str().into())]);
        }
        for r in ["capacity", "retention"] {
            let _ = f.evictions.get_or_create(&[("reason", r.into())]);
        }
        for r in ["market_data", "config"] {
            let _ = f.invalidations.get_or_create(&[("reason", r.into())]);
        }
        f
    }
}

/// Every metric the engine exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    families: FeatureStoreFamilies,
    evicted_bytes: Family<Labels, Counter>,
    cache_bytes: Gauge,
    cache_files: Gauge,
    manifest_available: Gauge,
    latency: Family<Labels, Histogram>,
    hits: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let families = FeatureStoreFamilies::register(&mut r, "the engine started");
        let m = Metrics {
            registry: Arc::new(Registry::default()),
            families,
            evicted_bytes: Family::default(),
            cache_bytes: Gauge::default(),
            cache_files: Gauge::default(),
            manifest_available: Gauge::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_025, 2.0, 18))
            }),
            hits: Arc::default(),
            total: Arc::default(),
        };
        r.register("featurestore_evicted_bytes", "Bytes of cache files evicted, by reason", m.evicted_bytes.clone());
        r.register("featurestore_cache_bytes", "Bytes of cache files the manifest holds", m.cache_bytes.clone());
        r.register("featurestore_cache_files", "Cache files the manifest holds", m.cache_files.clone());
        r.register("featurestore_manifest_available", "1 when the manifest is usable, 0 while the engine runs uncached", m.manifest_available.clone());
        r.register("featurestore_get_or_compute_duration_seconds", "Latency of get_or_compute by result", m.latency.clone());
        // Every series exists from the start (at zero), so rates and alerts see it.
        for r in ["capacity", "retention"] {
            let _ = m.evicted_bytes.get_or_create(&[("reason", r.into())]);
        }
        m.set_manifest_available(true);
        Metrics {
            registry: Arc::new(r),
            ..m
        }
    }

    pub fn hit(&self, seconds: f64) {
        self.families.requests.get_or_create(&[("result", "hit".into())]).inc();
        self.latency.get_or_create(&[("result", "hit".into())]).observe(seconds);
        self.bump(true);
    }

    pub fn miss(&self, reason: &str, seconds: f64) {
        self.families.requests.get_or_create(&[("result", "miss".into())]).inc();
        self.families.misses.get_or_create(&[("reason", reason.into())]).inc();
        self.latency.get_or_create(&[("result", "miss".into())]).observe(seconds);
        self.bump(false);
    }

    fn bump(&self, hit: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let t = self.total.fetch_add(1, Relaxed) + 1;
        let h = self.hits.fetch_add(hit as u64, Relaxed) + hit as u64;
        self.families.hit_ratio.set(h as f64 / t as f64);
    }

    pub fn eviction(&self, reason: &str, bytes: u64) {
        self.families.evictions.get_or_create(&[("reason", reason.into())]).inc();
        self.evicted_bytes.get_or_create(&[("reason", reason.into())]).inc_by(bytes);
    }

    pub fn invalidation(&self, reason: &str) {
        self.families.invalidations.get_or_create(&[("reason", reason.into())]).inc();
    }

    pub fn write_failure(&self) {
        self.families.write_failures.inc();
    }

    pub fn compute_failure(&self) {
        self.families.compute_failures.inc();
    }

    pub fn set_cache(&self, files: u64, bytes: u64) {
        self.cache_files.set(files as i64);
        self.cache_bytes.set(bytes as i64);
    }

    pub fn set_manifest_available(&self, up: bool) {
        self.manifest_available.set(up as i64);
    }

    /// The OpenMetrics text of every metric, series in a stable order.
    pub fn encode_openmetrics(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry).expect("writing to a String cannot fail");
        canonical_order(&s)
    }

    /// The classic Prometheus text format (0.0.4) of every metric: what a file such as
    /// `replay --metrics-out` holds and what `promtool check metrics` reads.
    pub fn encode(&self) -> String {
        classic_text(&self.encode_openmetrics())
    }
}

/// Content type of the OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text format.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The classic Prometheus text format of an OpenMetrics text (as prometheus-client writes
/// it): a counter's HELP and TYPE name its `_total` samples, `unknown` is `untyped`, and
/// there is no `# UNIT` or `# EOF` line.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|r| r.split_once(' '))
        .filter(|(_, t)| *t == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = if counters.contains(name) && !name.ends_with("_total") { format!("{name}_total") } else { name.to_string() };
            let tail = if *prefix == "# TYPE " && tail == "unknown" { "untyped" } else { tail };
            Some(format!("{prefix}{name} {tail}"))
        });
        out.push_str(rewritten.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Whether an HTTP `Accept` header asks for OpenMetrics (what Prometheus sends first).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let ty = fields.next().unwrap_or("");
            // A q=0 entry refuses the type.
            ty.eq_ignore_ascii_case("application/openmetrics-text") && !fields.any(|f| f.replace(' ', "") == "q=0")
        })
    })
}

/// Sorts the series of each metric family by their labels (ignoring `le`, whose buckets keep
/// their order), so the same values always encode to the same text.
pub fn canonical_order(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    let flush = |groups: &mut Vec<(String, Vec<&str>)>, out: &mut String| {
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, lines) in groups.drain(..) {
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut groups, &mut out);
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let labels = line
            .find('{')
            .and_then(|a| line[a..].find('}').map(|b| &line[a + 1..a + b]))
            .unwrap_or("");
        let key: String = labels
            .split(',')
            .filter(|kv| !kv.starts_with("le="))
            .collect::<Vec<_>>()
            .join(",");
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((key, vec![line])),
        }
    }
    flush(&mut groups, &mut out);
    out
}

/// Failure to start the exporter.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("cannot listen on {addr} for /metrics: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running `/metrics` endpoint; dropping or `stop()`ping it shuts it down.
pub struct MetricsExporter {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsExporter {
    /// Serves `metrics` at `http://addr/metrics` on a thread of its own.
    pub fn start(metrics: Metrics, addr: SocketAddr) -> Result<MetricsExporter, ExporterError> {
        MetricsExporter::start_with(move || metrics.encode_openmetrics(), addr)
    }

    /// Serves the OpenMetrics text `encode` returns at `http://addr/metrics`: as it is to a
    /// scraper that accepts OpenMetrics, else in the classic text format, each with its own
    /// content type.
    pub fn start_with(
        encode: impl Fn() -> String + Send + Sync + Clone + 'static,
        addr: SocketAddr,
    ) -> Result<MetricsExporter, ExporterError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| ExporterError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ExporterError::Bind { addr, source })?;
        let bound = listener.local_addr().map_err(|source| ExporterError::Bind { addr, source })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics-exporter".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("cachescope: metrics exporter cannot start: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("cachescope: metrics exporter cannot start: {e}");
                            return;
                        }
                    };
                    let app = axum::Router::new().route(
                        "/metrics",
                        axum::routing::get(move |headers: axum::http::HeaderMap| {
                            let body = encode();
                            let accept = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok());
                            let (content_type, body) = if wants_openmetrics(accept) {
                                (OPENMETRICS_CONTENT_TYPE, body)
                            } else {
                                (CLASSIC_CONTENT_TYPE, classic_text(&body))
                            };
                            async move { ([(axum::http::header::CONTENT_TYPE, content_type)], body) }
                        }),
                    );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                });
            })
            .map_err(|source| ExporterError::Bind { addr, source })?;
        Ok(MetricsExporter {
            addr: bound,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsExporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn counts_and_ratio_are_exported() {
        let m = Metrics::new();
        m.hit(0.0001);
        m.hit(0.0001);
        m.hit(0.0001);
        m.miss("new_symbol", 0.01);
        m.eviction("capacity", 100);
        let text = m.encode();
        assert!(text.contains("featurestore_requests_total{result=\"hit\"} 3"), "{text}");
        assert!(text.contains("featurestore_requests_total{result=\"miss\"} 1"), "{text}");
        assert!(text.contains("featurestore_misses_total{reason=\"new_symbol\"} 1"), "{text}");
        assert!(text.contains("featurestore_hit_ratio 0.75"), "{text}");
        assert!(text.contains("featurestore_evicted_bytes_total{reason=\"capacity\"} 100"), "{text}");
        assert!(text.contains("featurestore_get_or_compute_duration_seconds_bucket"), "{text}");
    }

    #[test]
    fn series_come_out_in_a_stable_order_and_exist_from_the_start() {
        let m = Metrics::new();
        for r in ["write_failed", "new_key", "compute_failed", "new_symbol"] {
            m.miss(r, 0.001);
        }
        let text = m.encode();
        let misses: Vec<&str> = text.lines().filter(|l| l.starts_with("featurestore_misses_total{")).collect();
        let mut sorted = misses.clone();
        sorted.sort();
        assert_eq!(misses, sorted);
        assert_eq!(misses.len(), 10);
        assert!(text.contains("featurestore_requests_total{result=\"hit\"} 0"), "{text}");
        let buckets: Vec<&str> = text.lines().filter(|l| l.contains("duration_seconds_bucket{")).collect();
        assert!(buckets.last().unwrap().contains("le=\"+Inf\""), "{buckets:?}");
        assert_eq!(Metrics::new().encode(), Metrics::new().encode());
    }

    #[test]
    fn the_classic_text_names_counters_by_their_samples() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{r=\"x\"} 1\n# HELP b Bytes.\n# TYPE b gauge\n# UNIT b bytes\nb 2\n# TYPE c unknown\nc 3\n# EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\na_requests_total{r=\"x\"} 1\n# HELP b Bytes.\n# TYPE b gauge\nb 2\n# TYPE c untyped\nc 3\n"
        );
        assert!(wants_openmetrics(Some("application/openmetrics-text; version=1.0.0")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0,text/plain")));
        assert!(!wants_openmetrics(None));
    }

    #[test]
    fn exporter_serves_metrics_on_loopback_and_stops() {
        let m = Metrics::new();
        m.hit(0.001);
        let ex = MetricsExporter::start(m, "127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = std::net::TcpStream::connect(ex.addr()).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("featurestore_requests_total{result=\"hit\"} 1"), "{body}");
        assert!(body.contains("content-type: text/plain; version=0.0.4"), "{body}");
        assert!(body.contains("# TYPE featurestore_requests_total counter"), "{body}");
        assert!(!body.contains("# EOF"), "{body}");
        let mut s = std::net::TcpStream::connect(ex.addr()).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert!(body.contains("content-type: application/openmetrics-text; version=1.0.0"), "{body}");
        assert!(body.contains("# TYPE featurestore_requests counter"), "{body}");
        assert!(body.trim_end().ends_with("# EOF"), "{body}");
        let addr = ex.addr();
        ex.stop();
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
