//! `cachescope cache warm|cleanup|rebuild-manifest|stats`: each says what it did and is safe
//! to run twice.

use assert_cmd::Command;

fn cache(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("cachescope")
        .unwrap()
        .arg("cache")
        .args(args)
        .arg("--config")
        .arg(dir.join("cachescope.toml"))
        .env_remove("FEATURE_CACHE_RETENTION_DAYS")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn warm_stats_cleanup_and_rebuild_are_idempotent() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("cachescope.toml"), "[feature_store]\ncache_dir = \"fc\"\nretention_days = 7\n").unwrap();
    let range = "2026-11-23T14:30:00Z..2026-11-23T21:00:00Z";
    let (rc, out) = cache(d.path(), &["warm", "--symbols", "AAPL,GOOGL,MSFT,TSLA", "--feature-sets", "returns,vwap", "--range", range]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("8 stored, 0 already cached, 0 failed"), "{out}");
    let (_, out) = cache(d.path(), &["warm", "--symbols", "AAPL,GOOGL,MSFT,TSLA", "--feature-sets", "returns,vwap", "--range", range]);
    assert!(out.contains("0 stored, 8 already cached"), "{out}");
    let (rc, out) = cache(d.path(), &["stats", "--json"]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["cached_files"], 8);
    let (_, out) = cache(d.path(), &["cleanup", "--dry-run"]);
    assert!(out.contains("would remove 0 files older than 7 days"), "{out}");
    for _ in 0..2 {
        let (rc, out) = cache(d.path(), &["rebuild-manifest"]);
        assert_eq!(rc, 0, "{out}");
        assert!(out.contains("backed up") && out.contains("8 files"), "{out}");
    }
    let backups = std::fs::read_dir(d.path().join("fc"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("manifest.duckdb.backup-"))
        .count();
    assert_eq!(backups, 2, "each rebuild keeps its own backup");
    let (_, out) = cache(d.path(), &["warm", "--symbols", "AAPL", "--feature-sets", "returns", "--range", range]);
    assert!(out.contains("1 already cached"), "nothing lost in the rebuilds: {out}");
    let (rc, out) = cache(d.path(), &["warm", "--symbols", "AAPL", "--feature-sets", "nope"]);
    assert_ne!(rc, 0);
    assert!(out.contains("unknown feature set `nope`"), "{out}");
}
