//! The commands around the engine: `feature-sets`, configuration errors, the replay's text
//! summary.

mod common;
use assert_cmd::Command;
use common::*;

fn cachescope() -> Command {
    let mut c = Command::cargo_bin("cachescope").unwrap();
    c.env_remove("CACHESCOPE_CONFIG").env_remove("FEATURE_CACHE_RETENTION_DAYS");
    c
}

/// `cachescope replay TRACE --config CFG --log DIR/x.log`, ready for more arguments.
fn replay_with_config(trace: &std::path::Path, cfg: &std::path::Path, dir: &std::path::Path) -> Command {
    let mut c = cachescope();
    c.arg("replay").arg(trace).arg("--config").arg(cfg).arg("--log").arg(dir.join("x.log"));
    c
}

#[test]
fn feature_sets_lists_every_builtin_with_its_hash_and_config_overrides_apply() {
    let out = cachescope().args(["feature-sets", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["momentum", "multi_horizon", "returns", "volatility", "vwap"]);
    let vol = v.as_array().unwrap().iter().find(|s| s["name"] == "volatility").unwrap();
    assert_eq!(vol["params"]["window"], 20.0);
    let default_hash = vol["config_hash"].as_str().unwrap().to_string();
    assert_eq!(default_hash.len(), 16);

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cachescope.toml");
    std::fs::write(&cfg, "[feature_sets.volatility]\nwindow = 30\n").unwrap();
    let out = cachescope().args(["feature-sets", "--config"]).arg(&cfg).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("volatility")).unwrap();
    assert!(line.contains("window=30"), "{line}");
    assert!(!line.contains(&default_hash), "{line}");
}

#[test]
fn an_invalid_configuration_is_refused_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cachescope.toml");
    std::fs::write(&cfg, "[feature_store]\ncache_dir = \"cache\"\ncleanup_threshold = 1.5\n").unwrap();
    std::fs::write(dir.path().join("t.csv"), HEADER).unwrap();
    let out = replay_with_config(&dir.path().join("t.csv"), &cfg, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("`cleanup_threshold`") && err.contains("cachescope.toml"), "{err}");

    std::fs::write(&cfg, "[feature_store]\ncache_dir = \"cache\"\n").unwrap();
    let out = replay_with_config(&dir.path().join("t.csv"), &cfg, dir.path())
        .env("FEATURE_CACHE_RETENTION_DAYS", "-3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("`retention_days`") && err.contains("FEATURE_CACHE_RETENTION_DAYS"), "{err}");
}

#[test]
fn replay_with_a_config_file_uses_its_cache_dir_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cachescope.toml");
    std::fs::write(&cfg, "[feature_store]\ncache_dir = \"fc\"\ncompression_level = 1\n").unwrap();
    let trace = dir.path().join("t.csv");
    std::fs::write(
        &trace,
        [HEADER.to_string(), req("2026-11-26T14:30:00Z", "AAPL", "returns"), req("2026-11-26T14:30:01Z", "AAPL", "returns")].concat(),
    )
    .unwrap();
    let out = replay_with_config(&trace, &cfg, dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("requests 2  hits 1  misses 1  hit ratio 50.00% (SLO >= 95%: BREACHED)"), "{text}");
    assert!(text.contains("new_symbol"), "{text}");
    let files = cachescope::engine::cachefile::scan(&dir.path().join("fc")).unwrap().0;
    assert_eq!(files.len(), 1);
    assert!(dir.path().join("fc/manifest.duckdb").exists());
    let startup = read_log(&dir.path().join("x.log")).into_iter().next().unwrap();
    assert_eq!(startup.get("compression_level"), Some("1"));
}
