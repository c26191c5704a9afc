//! `cachescope whatif` on real logs: exact predictions on a hand-made one, and a consistent
//! curve on a simulated thrashing day.

mod common;

use std::path::Path;

use assert_cmd::Command;

fn cachescope() -> Command {
    let mut c = Command::cargo_bin("cachescope").unwrap();
    c.env_remove("CACHESCOPE_DB");
    c
}

fn line(sec: u32, event: &str, key: &str, bytes: u64, extra: &str) -> String {
    format!(
        "2026-11-26T14:30:{sec:02}.000000Z INFO cachescope::engine: Cache {} for AAPL event={event} op=get_or_compute symbol=AAPL feature_set=returns key={key} slot=s{key} config=c data_version=v0 bytes={bytes} latency_us=5{extra}\n",
        if event == "hit" { "HIT" } else { "MISS" }
    )
}

fn whatif_json(db: &Path, capacities: &str) -> serde_json::Value {
    let mut c = cachescope();
    c.args(["whatif", "--format", "json", "--db"]).arg(db);
    if !capacities.is_empty() {
        c.args(["--capacity-gb", capacities]);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn predictions_on_a_hand_made_log_are_exact() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    let stored = " reason=new_key outcome=stored";
    // A, B, C stored (10 bytes each); A and B hit; C is invalidated, then D fails to store.
    let mut body = String::from("2026-11-26T14:30:00.000000Z INFO cachescope::engine: FeatureStore started event=startup max_cache_size_gb=0.00000002\n");
    body += &line(1, "miss", "aaaaaaaaaaaaaaaa", 10, stored);
    body += &line(2, "miss", "bbbbbbbbbbbbbbbb", 10, stored);
    body += &line(3, "miss", "cccccccccccccccc", 10, stored);
    body += &line(4, "hit", "aaaaaaaaaaaaaaaa", 10, "");
    body += &line(5, "hit", "bbbbbbbbbbbbbbbb", 10, "");
    body += "2026-11-26T14:30:06.000000Z INFO cachescope::engine: Cache key cccccccccccccccc invalidated event=invalidation reason=market_data symbol=AAPL feature_set=returns key=cccccccccccccccc slot=sc config=c data_version=v0 bytes=10\n";
    body += &line(7, "miss", "cccccccccccccccc", 10, " reason=invalidated_data outcome=stored");
    body += &line(8, "miss", "dddddddddddddddd", 0, " reason=new_key outcome=write_failed");
    std::fs::write(&log, body).unwrap();
    let db = d.path().join("ev.duckdb");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let w = whatif_json(&db, "0.00000002,0.00000003");
    assert_eq!(w["requests"], 7);
    // A again: itself and B, C since (30 bytes); B again: itself, C and A (30 bytes).
    let at = |gb: f64| w["points"].as_array().unwrap().iter().find(|p| (p["capacity_gb"].as_f64().unwrap() - gb).abs() < 1e-15).unwrap()["hit_ratio"].as_f64().unwrap();
    assert_eq!(at(0.00000002), 0.0);
    assert!((at(0.00000003) - 2.0 / 7.0).abs() < 1e-12);
    assert!((w["ceiling_hit_ratio"].as_f64().unwrap() - 2.0 / 7.0).abs() < 1e-12, "the invalidated and the unstored miss at any size");
    assert_eq!(w["current"]["capacity_gb"], 0.00000002);
    assert!((w["current"]["hit_ratio"].as_f64().unwrap() - 2.0 / 7.0).abs() < 1e-12);
    assert!(w["recommendation"].is_null(), "no size reaches 95%");
    assert_eq!(w["current"]["capacity_changes"], 0);
    let md = cachescope().args(["whatif", "--db"]).arg(&db).output().unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains("No capacity reaches 95.00%"), "{md}");
}

#[test]
fn the_curve_of_a_thrashing_day_rises_to_its_ceiling_and_the_recommendation_holds_the_slo() {
    let d = tempfile::tempdir().unwrap();
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/thrashing/trading-system.log.zst")).unwrap();
    let log = d.path().join("trading-system.log");
    std::fs::write(&log, zstd::decode_all(&z[..]).unwrap()).unwrap();
    let db = d.path().join("ev.duckdb");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let w = whatif_json(&db, "");
    let points = w["points"].as_array().unwrap();
    assert!(points.len() >= 13, "{w}");
    let ratios: Vec<f64> = points.iter().map(|p| p["hit_ratio"].as_f64().unwrap()).collect();
    assert!(ratios.windows(2).all(|r| r[0] <= r[1]), "the curve never falls: {ratios:?}");
    let ceiling = w["ceiling_hit_ratio"].as_f64().unwrap();
    let working_set = w["working_set_gb"].as_f64().unwrap();
    let last = points.iter().find(|p| p["capacity_gb"].as_f64().unwrap() >= working_set).unwrap();
    assert!((last["hit_ratio"].as_f64().unwrap() - ceiling).abs() < 1e-12, "the whole working set reaches the ceiling");
    // Thrashing is a capacity problem: some size holds the SLO, and the model says so.
    let rec = w["recommendation"]["capacity_gb"].as_f64().expect("a recommendation");
    let at_rec = points.iter().find(|p| p["capacity_gb"].as_f64().unwrap() == rec).unwrap()["hit_ratio"].as_f64().unwrap();
    assert!(at_rec >= 0.95, "{at_rec}");
    let measured = w["current"]["hit_ratio"].as_f64().unwrap();
    assert!(measured < 0.95 && ceiling > measured, "measured {measured}, ceiling {ceiling}");
    // The day shrank the cache and restored it: said, since the measured ratio mixes both.
    assert_eq!(w["current"]["capacity_changes"], 2);
}
