//! `cachescope doctor` against caches broken in each way it checks: statuses and exit codes.

mod common;

use std::path::Path;

use assert_cmd::Command;

fn cachescope() -> Command {
    let mut c = Command::cargo_bin("cachescope").unwrap();
    c.env_remove("FEATURE_CACHE_RETENTION_DAYS").env_remove("CACHESCOPE_CONFIG");
    c
}

/// A config for a cache in `cache_dir`, warmed with 8 files.
fn warmed(dir: &Path, cache_dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("cachescope.toml");
    std::fs::write(&cfg, format!("[feature_store]\ncache_dir = \"{}\"\n", cache_dir.display())).unwrap();
    let out = cachescope()
        .args(["cache", "warm", "--symbols", "AAPL,GOOGL,MSFT,TSLA", "--feature-sets", "returns,momentum", "--range", "2026-11-23T14:30:00Z..2026-11-23T21:00:00Z", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cfg
}

fn doctor(cfg: &Path) -> (i32, Vec<serde_json::Value>) {
    let out = cachescope().args(["doctor", "--format", "json", "--config"]).arg(cfg).output().unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), v)
}

fn status<'a>(checks: &'a [serde_json::Value], name: &str) -> (&'a str, &'a str) {
    let c = checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}"));
    (c["status"].as_str().unwrap(), c["figure"].as_str().unwrap())
}

#[test]
fn a_healthy_cache_is_all_ok() {
    let d = tempfile::tempdir().unwrap();
    let cfg = warmed(d.path(), &d.path().join("fc"));
    let (code, checks) = doctor(&cfg);
    assert_eq!(code, 0, "{checks:?}");
    assert!(checks.iter().all(|c| c["status"] == "ok"), "{checks:?}");
    assert!(status(&checks, "manifest agrees with the files").1.starts_with("0 entries without a file, 0 files without an entry"));
}

#[test]
fn deleted_and_orphan_files_warn() {
    let d = tempfile::tempdir().unwrap();
    let fc = d.path().join("fc");
    let cfg = warmed(d.path(), &fc);
    let files = cachescope::engine::cachefile::scan(&fc).unwrap().0;
    std::fs::remove_file(&files[0]).unwrap();
    std::fs::copy(&files[1], fc.join("returns/0123456789abcdef.parquet.zst")).unwrap();
    let (code, checks) = doctor(&cfg);
    assert_eq!(code, 1, "{checks:?}");
    let (st, fig) = status(&checks, "manifest agrees with the files");
    assert_eq!(st, "warn");
    assert!(fig.starts_with("1 entries without a file, 1 files without an entry"), "{fig}");
}

#[test]
fn a_held_lock_and_a_corrupt_manifest_fail() {
    let d = tempfile::tempdir().unwrap();
    let fc = d.path().join("fc");
    let cfg = warmed(d.path(), &fc);
    let manifest = fc.join("manifest.duckdb");
    let holder = cachescope::replay::LockHolder::start(&assert_cmd::cargo::cargo_bin("cachescope"), &manifest).unwrap();
    let (code, checks) = doctor(&cfg);
    assert_eq!(code, 2);
    let (st, fig) = status(&checks, "manifest lock");
    assert_eq!(st, "fail");
    assert!(fig.contains(&format!("PID {}", holder.pid())), "{fig}");
    holder.release();
    std::fs::write(&manifest, vec![7u8; 50_000]).unwrap();
    let (code, checks) = doctor(&cfg);
    assert_eq!(code, 2);
    assert_eq!(status(&checks, "manifest").0, "fail");
}


#[test]
fn a_full_cache_volume_fails() {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    let _m = common::Mount::tmpfs(&mnt, "2m");
    let cfg = warmed(d.path(), &mnt.join("fc"));
    let (_, checks) = doctor(&cfg);
    assert_eq!(status(&checks, "disk usage of the cache volume").0, "ok");
    // Fill the volume to about 95%.
    let (used, total) = cachescope::doctor::disk_usage(&mnt).unwrap();
    let fill = (total as f64 * 0.95) as u64 - used;
    std::fs::write(mnt.join("filler"), vec![0u8; fill as usize]).unwrap();
    let (code, checks) = doctor(&cfg);
    assert_eq!(code, 2, "{checks:?}");
    let (st, fig) = status(&checks, "disk usage of the cache volume");
    assert_eq!(st, "fail");
    assert!(fig.contains("% of 2.1 MB used"), "{fig}");
    let pct: f64 = fig.split('%').next().unwrap().parse().unwrap();
    assert!(pct >= 90.0, "{fig}");
}

#[test]
fn events_checks_report_the_slo_figures() {
    let d = tempfile::tempdir().unwrap();
    let cfg = warmed(d.path(), &d.path().join("fc"));
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/disk_full/trading-system.log.zst")).unwrap();
    let log = d.path().join("trading-system.log");
    std::fs::write(&log, zstd::decode_all(&z[..]).unwrap()).unwrap();
    let db = d.path().join("ev.duckdb");
    assert!(cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap().status.success());
    let out = cachescope().args(["doctor", "--format", "json", "--config"]).arg(&cfg).arg("--db").arg(&db).output().unwrap();
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let (st, fig) = status(&checks, "write failures in the last hour");
    assert_eq!(st, "warn");
    assert!(fig.parse::<i64>().unwrap() > 0);
    assert!(status(&checks, "5-minute hit ratio (latest)").1.contains('%'));
    assert_eq!(out.status.code(), Some(1));
    // Doctor evaluates only the last hours: the same latest ratio and firing alerts as the
    // views over the whole history.
    let sql = |q: &str| -> serde_json::Value {
        let out = cachescope().args(["sql", "--format", "json", "--db"]).arg(&db).arg(q).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
    };
    let latest = sql("SELECT printf('%.2f%% at ', hit_ratio * 100) || strftime(eval_time, '%Y-%m-%dT%H:%M:%SZ') AS f FROM hit_ratio_5m ORDER BY eval_time DESC LIMIT 1");
    assert_eq!(status(&checks, "5-minute hit ratio (latest)").1, latest["f"].as_str().unwrap());
    let firing = sql("SELECT coalesce(string_agg(alert, ', '), 'none') AS f FROM alerts WHERE resolved_at IS NULL AND firing_since IS NOT NULL");
    assert_eq!(status(&checks, "alerts firing").1, firing["f"].as_str().unwrap());
}
