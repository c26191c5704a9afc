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
