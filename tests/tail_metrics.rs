//! `cachescope tail --metrics-addr`: the featurestore_* series derived from the logs and the
//! tailer's health, read by a Prometheus text-format parser.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

fn scrape(addr: &str) -> Scrape {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let text = body.split("\r\n\r\n").nth(1).unwrap().to_string();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

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
    let text = String::from_utf8(zstd::decode_all(&z[..]).unwrap()).unwrap();
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
    assert_eq!(value(&s, "featurestore_write_failures_total", None), failures);
    assert!((value(&s, "featurestore_hit_ratio", None) - hits / (hits + misses)).abs() < 1e-9);
    assert_eq!(value(&s, "cachescope_tail_bytes_total", None), text.len() as f64);
    assert_eq!(value(&s, "cachescope_tail_lag_bytes", None), 0.0);
    assert_eq!(value(&s, "cachescope_tail_quarantined_total", None), 0.0);
    assert!(value(&s, "cachescope_tail_last_commit_timestamp_seconds", None) > 1.7e9);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_engines_metrics_parse_and_agree_with_the_truth() {
    for s in cachescope::sim::Scenario::ALL {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(s.name());
        let text = std::fs::read_to_string(dir.join("metrics.prom")).unwrap();
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
