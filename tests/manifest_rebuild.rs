//! The manifest can be lost or corrupted without losing a cached entry: the engine rebuilds
//! it from the cache files' footers at open.

mod common;
use common::*;

fn warm_body() -> String {
    [
        req("2026-11-26T14:30:00Z", "AAPL", "returns"),
        req("2026-11-26T14:30:01Z", "MSFT", "vwap"),
        req("2026-11-26T14:30:02Z", "TSLA", "momentum"),
        req("2026-11-26T14:30:03Z", "BRK.B", "volatility"),
    ]
    .concat()
}

fn again_body() -> String {
    [
        req("2026-11-26T15:30:00Z", "AAPL", "returns"),
        req("2026-11-26T15:30:01Z", "MSFT", "vwap"),
        req("2026-11-26T15:30:02Z", "TSLA", "momentum"),
        req("2026-11-26T15:30:03Z", "BRK.B", "volatility"),
    ]
    .concat()
}

fn manifest_rows(p: &std::path::Path) -> i64 {
    let c = duckdb::Connection::open(p).unwrap();
    c.query_row("SELECT count(*) FROM manifest WHERE state = 'cached'", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn deleting_the_manifest_loses_no_cached_entry() {
    let dir = tempfile::tempdir().unwrap();
    let first = replay_in(dir.path(), &warm_body(), &[]);
    assert_eq!(first.status, 0, "{}", first.stderr);
    let manifest = first.cache.join("manifest.duckdb");
    assert_eq!(manifest_rows(&manifest), 4);
    std::fs::remove_file(&manifest).unwrap();

    let second = replay_in(dir.path(), &again_body(), &[]);
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(second.outcomes(), ["hit", "hit", "hit", "hit"]);
    let lines = second.lines();
    let rebuilt = lines.iter().find(|l| l.event() == "manifest_rebuilt").unwrap();
    assert_eq!(rebuilt.get("reason"), Some("missing"));
    assert_eq!(rebuilt.get("files"), Some("4"));
    assert_eq!(manifest_rows(&manifest), 4);
}

#[test]
fn a_corrupt_manifest_is_set_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let first = replay_in(dir.path(), &warm_body(), &[]);
    assert_eq!(first.status, 0, "{}", first.stderr);
    let manifest = first.cache.join("manifest.duckdb");
    std::fs::write(&manifest, vec![0x42u8; 64 * 1024]).unwrap();

    let second = replay_in(dir.path(), &again_body(), &[]);
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(second.outcomes(), ["hit", "hit", "hit", "hit"]);
    let lines = second.lines();
    let rebuilt = lines.iter().find(|l| l.event() == "manifest_rebuilt").unwrap();
    assert_eq!(rebuilt.get("reason"), Some("corrupt"));
    let aside = rebuilt.get("set_aside").unwrap();
    assert!(aside.contains("manifest.duckdb.corrupt-"), "{}", rebuilt.raw);
    assert_eq!(std::fs::read(aside).unwrap(), vec![0x42u8; 64 * 1024], "the bad file is kept for inspection");
    assert_eq!(manifest_rows(&manifest), 4);
}

#[test]
fn a_foreign_file_in_the_cache_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let first = replay_in(dir.path(), &warm_body(), &[]);
    assert_eq!(first.status, 0);
    std::fs::remove_file(first.cache.join("manifest.duckdb")).unwrap();
    std::fs::write(first.cache.join("returns/0000000000000000.parquet.zst"), b"junk").unwrap();
    let second = replay_in(dir.path(), &again_body(), &[]);
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(second.outcomes(), ["hit", "hit", "hit", "hit"]);
    assert!(second.lines().iter().any(|l| l.event() == "unreadable_file"));
}

#[test]
fn a_manifest_locked_at_open_runs_uncached_until_released_then_loads_it() {
    use cachescope::engine::clock::parse_ts;
    use cachescope::engine::{Config, EventLog, FeatureRequest, FeatureStore, MissReason, Outcome, VirtualClock};
    use cachescope::replay::LockHolder;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let first = replay_in(dir.path(), &warm_body(), &[]);
    assert_eq!(first.status, 0, "{}", first.stderr);
    let mut cfg = Config::with_cache_dir(first.cache.clone());
    cfg.manifest_probe_interval_s = 0.0;
    let bin = assert_cmd::cargo::cargo_bin("cachescope");
    let holder = LockHolder::start(&bin, &cfg.manifest_path).unwrap();
    let clock = Arc::new(VirtualClock::new(parse_ts("2026-11-26T16:00:00Z").unwrap()));
    let log_path = dir.path().join("lib.log");
    let mut store = FeatureStore::builder(cfg)
        .clock(clock.clone())
        .log(EventLog::create(&log_path, true).unwrap())
        .open()
        .unwrap();
    assert!(!store.manifest_available());
    let req = FeatureRequest::new("AAPL", "returns", parse_ts(DAY.0).unwrap(), parse_ts(DAY.1).unwrap());
    let got = store.get_or_compute(&req).unwrap();
    assert_eq!(got.outcome, Outcome::Miss { reason: MissReason::ManifestUnavailable, stored: false });
    let down = read_log(&log_path).into_iter().find(|l| l.event() == "manifest_unavailable").unwrap();
    assert_eq!(down.get("pid").unwrap(), holder.pid().to_string(), "{}", down.raw);
    holder.release();
    clock.set(parse_ts("2026-11-26T16:00:01Z").unwrap());
    let got = store.get_or_compute(&req).unwrap();
    assert_eq!(got.outcome, Outcome::Hit, "the manifest was loaded once released");
    assert_eq!(store.stats().cached_files, 4);
}
