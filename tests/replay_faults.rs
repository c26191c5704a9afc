//! Every miss reason and fault, produced through `cachescope replay` (the real binary on real
//! files) and checked in the log, the metrics and the cache directory.

mod common;
use common::*;

#[test]
fn first_requests_are_new_symbol_then_new_key_then_hits() {
    let (_d, run) = replay(&[
        req("2026-11-26T14:30:00Z", "AAPL", "returns"),
        req("2026-11-26T14:30:01Z", "AAPL", "returns"),
        req("2026-11-26T14:30:02Z", "AAPL", "vwap"),
        req("2026-11-26T14:30:03Z", "MSFT", "vwap"),
        req("2026-11-26T14:30:04Z", "AAPL", "vwap"),
    ]
    .concat());
    assert_eq!(run.outcomes(), ["new_symbol", "hit", "new_key", "new_symbol", "hit"]);
    let s = run.summary();
    assert_eq!(s["requests"], 5);
    assert_eq!(s["hits"], 2);
    assert_eq!(s["hit_ratio"], 0.4);
    let lines = run.lines();
    let hit = lines.iter().find(|l| l.event() == "hit").unwrap();
    assert!(hit.raw.contains("Cache HIT for AAPL") && hit.raw.contains("op=get_or_compute"));
    for f in ["symbol", "feature_set", "key", "slot", "bytes", "latency_us", "config", "data_version"] {
        assert!(hit.get(f).is_some(), "hit line lacks {f}: {}", hit.raw);
    }
    assert!(hit.get("bytes").unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(run.cache_files().len(), 3);
    let m = run.metrics_text();
    assert_eq!(metric(&m, "featurestore_requests_total{result=\"hit\"}"), 2.0);
    assert_eq!(metric(&m, "featurestore_requests_total{result=\"miss\"}"), 3.0);
    assert_eq!(metric(&m, "featurestore_misses_total{reason=\"new_symbol\"}"), 2.0);
    assert_eq!(metric(&m, "featurestore_cache_files"), 3.0);
    assert_eq!(metric(&m, "featurestore_hit_ratio"), 0.4);
    // The log's first line is the start-up configuration.
    let first = &lines[0];
    assert_eq!(first.event(), "startup");
    assert_eq!(first.get("compression_level"), Some("3"));
}

#[test]
fn market_data_update_invalidates_and_the_next_miss_says_so() {
    let (_d, run) = replay(&[
        req("2026-11-26T14:30:00Z", "AAPL", "returns"),
        req("2026-11-26T14:30:00Z", "AAPL", "vwap"),
        req("2026-11-26T14:30:00Z", "MSFT", "vwap"),
        format!("2026-11-26T14:31:00Z,market_data_update,AAPL,,,,\n"),
        req("2026-11-26T14:31:01Z", "AAPL", "returns"),
        req("2026-11-26T14:31:02Z", "MSFT", "vwap"),
    ]
    .concat());
    assert_eq!(run.outcomes(), ["new_symbol", "new_key", "new_symbol", "invalidated_data", "hit"]);
    let lines = run.lines();
    let inv: Vec<_> = lines.iter().filter(|l| l.event() == "invalidation").collect();
    assert_eq!(inv.len(), 2, "both AAPL keys are invalidated at the update");
    assert!(inv.iter().all(|l| l.message.starts_with("Cache key ") && l.message.ends_with(" invalidated")));
    assert!(inv.iter().all(|l| l.get("reason") == Some("market_data") && l.get("symbol") == Some("AAPL")));
    let upd = lines.iter().find(|l| l.event() == "market_data_update").unwrap();
    assert_eq!(upd.get("invalidated"), Some("2"));
    assert_eq!(upd.get("data_version"), Some("v1"));
    // The stale files are gone; the new AAPL returns file and MSFT vwap remain.
    assert_eq!(run.cache_files().len(), 2);
    let m = run.metrics_text();
    assert_eq!(metric(&m, "featurestore_invalidations_total{reason=\"market_data\"}"), 2.0);
    assert_eq!(metric(&m, "featurestore_misses_total{reason=\"invalidated_data\"}"), 1.0);
}

#[test]
fn config_change_invalidates_every_key_of_the_set_once() {
    let (_d, run) = replay(&[
        req("2026-11-26T14:30:00Z", "AAPL", "volatility"),
        req("2026-11-26T14:30:00Z", "MSFT", "volatility"),
        req("2026-11-26T14:30:00Z", "MSFT", "returns"),
        "2026-11-26T14:31:00Z,config_change,,volatility,,,window=30\n".to_string(),
        req("2026-11-26T14:31:01Z", "AAPL", "volatility"),
        req("2026-11-26T14:31:02Z", "AAPL", "volatility"),
        req("2026-11-26T14:31:03Z", "MSFT", "volatility"),
        req("2026-11-26T14:31:04Z", "MSFT", "returns"),
    ]
    .concat());
    assert_eq!(
        run.outcomes(),
        ["new_symbol", "new_symbol", "new_key", "invalidated_config", "hit", "invalidated_config", "hit"]
    );
    let lines = run.lines();
    let change = lines.iter().find(|l| l.event() == "config_change").unwrap();
    assert_eq!(change.get("invalidated"), Some("2"));
    assert_eq!(change.get("params"), Some("window=30"));
    assert_ne!(change.get("config"), change.get("previous_config"));
}

#[test]
fn disk_full_serves_uncached_then_write_failed_misses_until_it_clears() {
    let (d, run) = replay(&[
        op("2026-11-26T14:30:00Z", "disk_full_on", ""),
        req("2026-11-26T14:30:01Z", "AAPL", "returns"),
        req("2026-11-26T14:30:02Z", "AAPL", "returns"),
        op("2026-11-26T14:30:03Z", "disk_full_off", ""),
        req("2026-11-26T14:30:04Z", "AAPL", "returns"),
        req("2026-11-26T14:30:05Z", "AAPL", "returns"),
    ]
    .concat());
    assert_eq!(run.outcomes(), ["new_symbol", "write_failed", "write_failed", "hit"]);
    let lines = run.lines();
    let fails: Vec<_> = lines.iter().filter(|l| l.event() == "write_failed").collect();
    assert_eq!(fails.len(), 2);
    for f in &fails {
        assert_eq!(f.level, "ERROR");
        assert_eq!(f.get("os_error"), Some("28"));
        assert!(f.get("error").unwrap().contains("os error 28"), "{}", f.raw);
        assert!(f.message.contains("disk full"), "{}", f.raw);
    }
    let misses: Vec<_> = lines.iter().filter(|l| l.event() == "miss").collect();
    assert_eq!(misses[0].get("outcome"), Some("write_failed"));
    assert_eq!(misses[2].get("outcome"), Some("stored"));
    // The caller still got features: the summary counts no failed request.
    assert_eq!(run.summary()["failed_requests"], 0);
    assert_eq!(run.cache_files().len(), 1);
    let temps = cachescope::engine::cachefile::scan(&run.cache).unwrap().1;
    assert!(temps.is_empty(), "half-written files left: {temps:?}");
    assert_eq!(metric(&run.metrics_text(), "featurestore_write_failures_total"), 2.0);
    drop(d);
}

#[test]
fn memory_limit_fails_the_large_set_with_an_oom_event_and_error() {
    let (_d, run) = replay(&[
        op("2026-11-26T14:30:00Z", "memory_limit_mb", "0.05"),
        req("2026-11-26T14:30:01Z", "AAPL", "multi_horizon"),
        req("2026-11-26T14:30:02Z", "AAPL", "multi_horizon"),
        req("2026-11-26T14:30:03Z", "AAPL", "returns"),
        op("2026-11-26T14:31:00Z", "memory_limit_mb", "2048"),
        req("2026-11-26T14:31:01Z", "AAPL", "multi_horizon"),
        req("2026-11-26T14:31:02Z", "AAPL", "multi_horizon"),
    ]
    .concat());
    assert_eq!(run.outcomes(), ["new_symbol", "compute_failed", "new_key", "compute_failed", "hit"]);
    let s = run.summary();
    assert_eq!(s["failed_requests"], 2);
    let lines = run.lines();
    let oom: Vec<_> = lines.iter().filter(|l| l.event() == "compute_failed").collect();
    assert_eq!(oom.len(), 2);
    assert!(oom.iter().all(|l| l.level == "ERROR" && l.raw.contains("out of memory (OOM)")));
    // The runbook's `grep -i "memory\|oom"` finds exactly the memory failures.
    let grep: Vec<_> = lines
        .iter()
        .filter(|l| {
            let low = l.raw.to_lowercase();
            low.contains("memory") || low.contains("oom")
        })
        .collect();
    assert_eq!(grep.len(), 2, "{grep:?}");
    assert_eq!(metric(&run.metrics_text(), "featurestore_compute_failures_total"), 2.0);
}

#[test]
fn a_held_manifest_lock_runs_uncached_names_the_holder_and_recovers() {
    let (_d, run) = replay(&[
        req("2026-11-26T14:30:00Z", "AAPL", "returns"),
        op("2026-11-26T14:30:10Z", "lock_manifest", ""),
        req("2026-11-26T14:30:11Z", "AAPL", "returns"),
        req("2026-11-26T14:30:12Z", "MSFT", "returns"),
        op("2026-11-26T14:30:20Z", "unlock_manifest", ""),
        req("2026-11-26T14:30:21Z", "AAPL", "returns"),
        req("2026-11-26T14:30:22Z", "MSFT", "returns"),
    ]
    .concat());
    assert_eq!(
        run.outcomes(),
        ["new_symbol", "manifest_unavailable", "manifest_unavailable", "hit", "new_key"]
    );
    let lines = run.lines();
    let down = lines.iter().find(|l| l.event() == "manifest_unavailable").unwrap();
    assert_eq!(down.level, "ERROR");
    assert!(down.message.contains("UNCACHED"), "{}", down.raw);
    let pid: u32 = down.get("pid").unwrap().parse().unwrap();
    assert!(pid > 0);
    assert!(down.get("holder").unwrap().contains("__hold-manifest-lock"), "{}", down.raw);
    assert!(lines.iter().any(|l| l.event() == "manifest_available"));
    assert!(run.stderr.contains("UNCACHED"), "said loudly on stderr too: {}", run.stderr);
    // While uncached nothing was stored: MSFT only got its file after recovery.
    assert_eq!(run.cache_files().len(), 2);
    assert_eq!(metric(&run.metrics_text(), "featurestore_manifest_available"), 1.0);
}

#[test]
fn a_file_deleted_behind_the_engines_back_is_a_missing_file_miss() {
    let (_d, run) = replay(&[
        req("2026-11-26T14:30:00Z", "AAPL", "returns"),
        format!("2026-11-26T14:30:05Z,delete_file,AAPL,returns,{},{},\n", DAY.0, DAY.1),
        req("2026-11-26T14:30:06Z", "AAPL", "returns"),
        req("2026-11-26T14:30:07Z", "AAPL", "returns"),
    ]
    .concat());
    assert_eq!(run.outcomes(), ["new_symbol", "missing_file", "hit"]);
    let lines = run.lines();
    let missing = lines.iter().find(|l| l.event() == "missing_file").unwrap();
    assert_eq!(missing.level, "WARN");
    assert!(missing.get("path").unwrap().ends_with(".parquet.zst"));
    assert_eq!(run.summary()["files_deleted"], 1);
}

#[test]
fn shrinking_the_cache_evicts_lru_and_evicted_keys_miss_as_capacity() {
    let syms = ["A", "B", "C", "D", "E", "F"];
    let mut body = String::new();
    for (i, s) in syms.iter().enumerate() {
        body += &req(&format!("2026-11-26T14:30:0{i}Z"), s, "returns");
    }
    // Touch A so B is the least recently used.
    body += &req("2026-11-26T14:30:10Z", "A", "returns");
    // Room for about two files (each is a few KB).
    body += &op("2026-11-26T14:31:00Z", "set_max_cache_size_gb", "0.000012");
    body += &req("2026-11-26T14:31:01Z", "B", "returns");
    let (_d, run) = replay(&body);
    let outcomes = run.outcomes();
    assert_eq!(outcomes.last().unwrap(), "evicted_capacity");
    let lines = run.lines();
    let ev: Vec<_> = lines.iter().filter(|l| l.event() == "eviction").collect();
    assert!(!ev.is_empty());
    assert!(ev.iter().all(|l| l.get("reason") == Some("capacity") && l.message.ends_with(" evicted")));
    assert_eq!(ev[0].get("symbol"), Some("B"), "least recently used goes first");
    let bytes: u64 = run
        .cache_files()
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(bytes as f64 <= 0.000012e9 * 0.9 + 20_000.0, "{bytes} bytes on disk");
    assert!(metric(&run.metrics_text(), "featurestore_evictions_total{reason=\"capacity\"}") >= 1.0);
}

#[test]
fn retention_cleanup_removes_old_files_and_they_miss_as_retention() {
    let (_d, run) = replay(&[
        req("2026-11-26T14:30:00Z", "AAPL", "returns"),
        req("2026-11-26T14:30:00Z", "MSFT", "returns"),
        req("2026-11-26T15:29:00Z", "TSLA", "returns"),
        // Retention of one hour: files from 14:30 are older than that at 15:31.
        op("2026-11-26T15:31:00Z", "cleanup", "0.041666"),
        req("2026-11-26T15:32:00Z", "AAPL", "returns"),
        req("2026-11-26T15:32:01Z", "TSLA", "returns"),
    ]
    .concat());
    assert_eq!(run.outcomes(), ["new_symbol", "new_symbol", "new_symbol", "evicted_retention", "hit"]);
    let lines = run.lines();
    let c = lines.iter().find(|l| l.event() == "cleanup").unwrap();
    assert_eq!(c.get("removed_files"), Some("2"));
    assert_eq!(run.summary()["cleanup_removed_files"], 2);
    assert_eq!(run.cache_files().len(), 2, "TSLA kept, AAPL re-cached, MSFT gone");
}

#[test]
fn warm_fills_without_counting_requests() {
    let (_d, run) = replay(&[
        format!("2026-11-26T14:30:00Z,warm,AAPL;GOOGL;MSFT;TSLA,returns;vwap,{},{},\n", DAY.0, DAY.1),
        req("2026-11-26T14:30:01Z", "TSLA", "vwap"),
    ]
    .concat());
    assert_eq!(run.outcomes(), ["hit"]);
    assert_eq!(run.summary()["warmed"], 8);
    let lines = run.lines();
    assert_eq!(lines.iter().filter(|l| l.event() == "warm_fill").count(), 8);
    let w = lines.iter().find(|l| l.event() == "warm").unwrap();
    assert_eq!(w.get("stored"), Some("8"));
    assert!(!lines.iter().any(|l| l.event() == "warm_fill" && l.raw.contains("get_or_compute")));
}

#[test]
fn a_malformed_row_is_reported_with_its_line_and_nothing_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let body = [
        req("2026-11-26T14:30:00Z", "AAPL", "returns"),
        "2026-11-26T14:30:01Z,request,AAPL,returns,not-a-time,2026-11-25T21:00:00Z,\n".to_string(),
    ]
    .concat();
    let run = replay_in(dir.path(), &body, &[]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("trace.csv:3:"), "{}", run.stderr);
    assert!(run.stderr.contains("`start`"), "{}", run.stderr);
    assert!(!run.log.exists(), "the engine never started");
    assert!(!run.cache.exists());
}

#[test]
fn the_runbook_greps_work_on_the_example_log() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/example-trace.csv")).unwrap();
    let run = replay_in(dir.path(), example.strip_prefix(HEADER).unwrap(), &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let s = run.summary();
    let text = std::fs::read_to_string(&run.log).unwrap();
    let count = |pat: &dyn Fn(&str) -> bool| text.lines().filter(|l| pat(l)).count() as u64;
    let requests = s["requests"].as_u64().unwrap();
    let misses = s["misses"].as_u64().unwrap();
    assert_eq!(count(&|l| l.contains("get_or_compute")), requests);
    assert_eq!(count(&|l| l.contains("Cache MISS")), misses);
    let re = regex::Regex::new("Cache key.*invalidated").unwrap();
    let lines = run.lines();
    let invalidations = lines.iter().filter(|l| l.event() == "invalidation").count() as u64;
    assert!(invalidations > 0);
    assert_eq!(count(&|l| re.is_match(l)), invalidations);
    assert_eq!(invalidations, s["invalidated"].as_u64().unwrap());
    // Every miss reason the example exercises appears in the log and the summary agrees.
    let by_reason = s["misses_by_reason"].as_object().unwrap();
    for (reason, n) in by_reason {
        let in_log = lines.iter().filter(|l| l.event() == "miss" && l.get("reason") == Some(reason.as_str())).count() as u64;
        assert_eq!(in_log, n.as_u64().unwrap(), "{reason}");
    }
    for reason in cachescope::engine::MissReason::ALL.iter().map(|r| r.as_str()) {
        assert!(by_reason[reason].as_u64().unwrap() > 0, "example exercises {reason}: {s}");
    }
}
