//! `cachescope tail --metrics-addr`: the featurestore_* series derived from the logs and the
//! tailer's health, read by a Prometheus text-format parser.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

/// GET /metrics with an `Accept` header: (content type, body).
fn get(addr: &str, accept: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let ct = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(String::from))
        .unwrap_or_default();
    (ct, body.to_string())
}

fn scrape(addr: &str) -> Scrape {
    let (_, text) = get(addr, "*/*");
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// `promtool check metrics` on `text`: what Prometheus's own linter says (CI installs it).
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Prometheus's own Accept header (scrape_protocols: OpenMetrics first).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn value(s: &Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    s.samples
        .iter()
        .find(|x| x.metric == metric && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or_else(|| panic!("no {metric} {label:?}"))
}

#[test]
fn tail_exports_log_derived_series_and_its_health() {
    let d = tempfile::tempdir().unwrap();
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/disk_full/trading-system.log.zst")).unwrap();
    let mut text = String::from_utf8(zstd::decode_all(&z[..]).unwrap()).unwrap();
    // Misses whose reason= is free text (another program's words): one `other` series, not
    // one per line.
    let last_ts = text.lines().last().unwrap().split(' ').next().unwrap().to_string();
    for i in 0..100 {
        text.push_str(&format!(
            "{last_ts} INFO cachescope::engine: Cache MISS for ZZZ event=miss op=get_or_compute symbol=ZZZ feature_set=returns key=free{i} slot=s1 bytes=1 latency_us=1 reason=words_{i}\n"
        ));
    }
    let log = d.path().join("trading-system.log");
    std::fs::write(&log, &text).unwrap();
    let db = d.path().join("ev.duckdb");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("cachescope"))
        .args(["tail", "--metrics-addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut addr = String::new();
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.trim().strip_prefix("cachescope tail: metrics on http://") {
            addr = rest.trim_end_matches("/metrics").to_string();
            break;
        }
        line.clear();
    }
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let hits = text.lines().filter(|l| l.contains(" event=hit ")).count() as f64;
    let misses = text.lines().filter(|l| l.contains(" event=miss ")).count() as f64;
    let wf_misses = text.lines().filter(|l| l.contains(" event=miss ") && l.contains(" reason=write_failed ")).count() as f64;
    let failures = text.lines().filter(|l| l.contains(" event=write_failed ")).count() as f64;
    let t = Instant::now();
    let s = loop {
        let s = scrape(&addr);
        if value(&s, "cachescope_tail_lines_total", None) as usize == text.lines().count() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "tail never caught up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(value(&s, "featurestore_requests_total", Some(("result", "hit"))), hits);
    assert_eq!(value(&s, "featurestore_requests_total", Some(("result", "miss"))), misses);
    assert_eq!(value(&s, "featurestore_misses_total", Some(("reason", "write_failed"))), wf_misses);
    assert_eq!(value(&s, "featurestore_misses_total", Some(("reason", "other"))), 100.0);
    let reasons = s.samples.iter().filter(|x| x.metric == "featurestore_misses_total").count();
    assert!(reasons <= cachescope::vocab::MissReason::ALL.len() + 2, "{reasons} miss series");
    assert_eq!(value(&s, "featurestore_write_failures_total", None), failures);
    assert!((value(&s, "featurestore_hit_ratio", None) - hits / (hits + misses)).abs() < 1e-9);
    assert_eq!(value(&s, "cachescope_tail_bytes_total", None), text.len() as f64);
    assert_eq!(value(&s, "cachescope_tail_lag_bytes", None), 0.0);
    assert_eq!(value(&s, "cachescope_tail_quarantined_total", None), 0.0);
    assert!(value(&s, "cachescope_tail_last_commit_timestamp_seconds", None) > 1.7e9);
    // The classic text to a plain scraper, OpenMetrics to Prometheus, each labelled as what
    // it is; promtool finds nothing wrong with the classic page.
    let (ct, classic) = get(&addr, "text/plain");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(!classic.contains("# EOF") && classic.contains("# TYPE featurestore_requests_total counter"), "{classic}");
    let (ok, said) = promtool_check(&classic);
    assert!(ok && said.trim().is_empty(), "promtool check metrics: {said}\n{classic}");
    let (ct, om) = get(&addr, PROMETHEUS_ACCEPT);
    assert!(ct.starts_with("application/openmetrics-text; version=1.0.0"), "{ct}");
    assert!(om.trim_end().ends_with("# EOF") && om.contains("# TYPE featurestore_requests counter"), "{om}");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_engines_metrics_parse_and_agree_with_the_truth() {
    for s in cachescope::sim::Scenario::ALL {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(s.name());
        let text = std::fs::read_to_string(dir.join("metrics.prom")).unwrap();
        let (ok, said) = promtool_check(&text);
        assert!(ok && said.trim().is_empty(), "{}: promtool check metrics: {said}", s.name());
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("scenario.json")).unwrap()).unwrap();
        let hits = value(&scrape, "featurestore_requests_total", Some(("result", "hit")));
        let misses = value(&scrape, "featurestore_requests_total", Some(("result", "miss")));
        assert_eq!(hits as u64, truth["hits"].as_u64().unwrap(), "{}", s.name());
        assert_eq!(misses as u64, truth["misses"].as_u64().unwrap(), "{}", s.name());
        for (reason, n) in truth["misses_by_reason"].as_object().unwrap() {
            assert_eq!(value(&scrape, "featurestore_misses_total", Some(("reason", reason))) as u64, n.as_u64().unwrap(), "{} {reason}", s.name());
        }
        let hist = scrape
            .samples
            .iter()
            .find(|x| x.metric == "featurestore_get_or_compute_duration_seconds" && x.labels.get("result") == Some("hit"));
        assert!(matches!(hist.map(|h| &h.value), Some(Value::Histogram(_))), "{}", s.name());
    }
}
