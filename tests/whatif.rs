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
    let w = whatif_json(&db, "0.00000002,0.00000003,0.000000034");
    assert_eq!(w["requests"], 7);
    let at = |gb: f64, what: &str| w["points"].as_array().unwrap().iter().find(|p| (p["capacity_gb"].as_f64().unwrap() - gb).abs() < 1e-15).unwrap()[what].as_f64().unwrap();
    // Pure LRU: A again costs itself and B, C since (30 bytes); B again: itself, C and A.
    assert_eq!(at(0.00000002, "lru_hit_ratio"), 0.0);
    assert!((at(0.00000003, "lru_hit_ratio") - 2.0 / 7.0).abs() < 1e-12);
    // The engine at 30 bytes passes its 27-byte threshold with C and evicts A (down to 24
    // bytes); A's return evicts B: no hits. At 34 bytes (threshold 30.6) nothing is evicted.
    assert_eq!(at(0.00000003, "hit_ratio"), 0.0);
    assert!((at(0.000000034, "hit_ratio") - 2.0 / 7.0).abs() < 1e-12);
    assert!((w["ceiling_hit_ratio"].as_f64().unwrap() - 2.0 / 7.0).abs() < 1e-12, "the invalidated and the unstored miss at any size");
    assert_eq!(w["unservable"], serde_json::json!({"first_requests": 3, "invalidated": 1, "retention": 0, "failed": 1, "manifest_outage": 0}));
    assert_eq!(w["current"]["capacity_gb"], 0.00000002);
    assert!((w["current"]["hit_ratio"].as_f64().unwrap() - 2.0 / 7.0).abs() < 1e-12);
    assert!(w["blocked"]["cause"].as_str().unwrap().starts_with("first requests of keys"), "{w}");
    assert!(w["recommendation"].is_null(), "no size reaches 95%");
    assert_eq!(w["current"]["capacity_changes"], 0);
    assert_eq!(w["cleanups"], 0);
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
    let lru: Vec<f64> = points.iter().map(|p| p["lru_hit_ratio"].as_f64().unwrap()).collect();
    assert!(lru.windows(2).all(|r| r[0] <= r[1]), "pure LRU never falls with more space: {lru:?}");
    for p in points {
        assert!(p["hit_ratio"].as_f64().unwrap() <= p["lru_hit_ratio"].as_f64().unwrap() + 1e-12, "batch eviction keeps less than LRU: {p}");
    }
    let ceiling = w["ceiling_hit_ratio"].as_f64().unwrap();
    let working_set = w["working_set_gb"].as_f64().unwrap();
    let last = points.last().unwrap();
    assert!(last["capacity_gb"].as_f64().unwrap() >= working_set / 0.9 * 0.999, "the curve goes up to the size that never evicts");
    assert!((last["hit_ratio"].as_f64().unwrap() - ceiling).abs() < 1e-12, "the whole working set reaches the ceiling");
    // Thrashing is a capacity problem: some size holds the SLO, and the model says so.
    let rec = &w["recommendation"];
    assert!(rec["hit_ratio"].as_f64().unwrap() >= 0.95, "{rec}");
    let every = &w["recommendation_every_window"];
    assert_eq!(every["minutes_below_slo"], 0, "{every}");
    assert!(every["capacity_gb"].as_f64().unwrap() >= rec["capacity_gb"].as_f64().unwrap());
    // Three significant digits, and the smallest: 1% less does not hold the SLO.
    let below = whatif_json(&db, &format!("{}", rec["capacity_gb"].as_f64().unwrap() * 0.99));
    assert!(below["points"][0]["hit_ratio"].as_f64().unwrap() < 0.95, "{below}");
    let measured = w["current"]["hit_ratio"].as_f64().unwrap();
    assert!(measured < 0.95 && ceiling > measured, "measured {measured}, ceiling {ceiling}");
    // The day shrank the cache and restored it: said, since the measured ratio mixes both,
    // with the settings as the log's lines give them (the startup's, then the two changes).
    assert_eq!(w["current"]["capacity_changes"], 2);
    assert_eq!(w["current"]["smallest_capacity_gb"], 0.00097938, "{w}");
    assert_eq!(w["current"]["capacity_gb"], 0.027045, "the capacity restored at the end");
    assert_eq!((w["current"]["cleanup_threshold"].as_f64(), w["current"]["eviction_target"].as_f64()), (Some(0.9), Some(0.8)));
}

/// One scenario simulated at its normal capacity: its directory (trace, log) and events database.
fn simulated(scenario: &str, scale: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    cachescope().args(["simulate", "--scenario", scenario, "--seed", "1", "--scale", scale, "--out"]).arg(d.path()).assert().success();
    let db = d.path().join("ev.duckdb");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(d.path().join("trading-system.log")).assert().success();
    (d, db)
}

/// The trace with its capacity changes taken out (and, with `retention`, the clean-ups run at
/// the configuration's retention), replayed by the real engine at `capacity_gb`: its hit ratio.
fn replayed(dir: &Path, capacity_gb: f64, retention_days: Option<f64>) -> f64 {
    let trace = std::fs::read_to_string(dir.join("trace.csv")).unwrap();
    let mut fixed = String::new();
    for line in trace.lines() {
        let cells: Vec<&str> = line.split(',').collect();
        match cells.get(1) {
            Some(&"set_max_cache_size_gb") => continue,
            Some(&"cleanup") if retention_days.is_some() => fixed += &format!("{},\n", cells[..cells.len() - 1].join(",")),
            _ => fixed += &format!("{line}\n"),
        }
    }
    let run = tempfile::tempdir().unwrap();
    let (t, cfg) = (run.path().join("trace.csv"), run.path().join("cachescope.toml"));
    std::fs::write(&t, fixed).unwrap();
    let retention = retention_days.map(|r| format!("retention_days = {r}\n")).unwrap_or_default();
    std::fs::write(&cfg, format!("[feature_store]\ncache_dir = {:?}\nmax_cache_size_gb = {capacity_gb}\nmanifest_flush_interval_s = 120\n{retention}", run.path().join("cache"))).unwrap();
    let out = cachescope()
        .arg("replay")
        .arg(&t)
        .arg("--config")
        .arg(&cfg)
        .arg("--log")
        .arg(run.path().join("replay.log"))
        .args(["--seed", "1", "--deterministic", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["hit_ratio"].as_f64().unwrap()
}

/// The real engine is the oracle: the prediction made from one run's log at its own settings
/// is within 1 percentage point of what the engine measures when the same trace is replayed at
/// each other setting (capacities on a thrashing day, a Zipf-popularity day and a mixed day
/// with every fault; retentions on a day of aggressive clean-ups).
#[test]
fn predictions_match_the_engine_replayed_at_other_settings() {
    let cases: [(&str, &str, &[f64], &[f64]); 4] = [
        ("thrashing", "1", &[0.001, 0.002, 0.004, 0.006, 0.008], &[]),
        ("steady", "1", &[0.0005, 0.001, 0.002, 0.004, 0.03], &[]),
        ("mixed_day", "0.2", &[0.001, 0.003, 0.006, 0.01, 0.03], &[]),
        ("retention", "1", &[0.0295], &[0.001, 0.0035, 0.01, 0.1, 7.0]),
    ];
    let mut checks = Vec::new();
    let mut dirs = Vec::new();
    for (scenario, scale, capacities, retentions) in cases {
        let (dir, db) = simulated(scenario, scale);
        let mut c = cachescope();
        c.args(["whatif", "--format", "json", "--db"]).arg(&db);
        c.arg("--capacity-gb").arg(capacities.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","));
        if !retentions.is_empty() {
            c.arg("--retention-days").arg(retentions.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","));
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if !retentions.is_empty() {
            assert_eq!(w["cleanups"], 4, "the retention day runs four clean-ups");
        }
        let settings: Vec<(f64, Option<f64>)> = if retentions.is_empty() {
            capacities.iter().map(|c| (*c, None)).collect()
        } else {
            retentions.iter().map(|r| (capacities[0], Some(*r))).collect()
        };
        for (capacity, retention) in settings {
            let predicted = w["points"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["capacity_gb"].as_f64() == Some(capacity) && p["retention_days"].as_f64() == retention)
                .unwrap_or_else(|| panic!("{scenario}: no point at {capacity} GB, {retention:?} days: {w}"))["hit_ratio"]
                .as_f64()
                .unwrap();
            checks.push((scenario, capacity, retention, predicted, dir.path().to_path_buf()));
        }
        dirs.push(dir);
    }
    // The replays, two at a time.
    let results: Vec<(String, f64)> = std::thread::scope(|s| {
        let half = checks.len().div_ceil(2);
        let handles: Vec<_> = checks
            .chunks(half)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(scenario, capacity, retention, predicted, dir)| {
                            let measured = replayed(dir, *capacity, *retention);
                            (format!("{scenario} at {capacity} GB, retention {retention:?}: predicted {predicted:.4}, measured {measured:.4}"), (predicted - measured).abs())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(results.len() >= 20);
    for (what, error) in &results {
        eprintln!("{what}");
        assert!(*error <= 0.01, "{what}");
    }
    // The settings give different answers (the test could fail), and retention matters.
    let distinct: std::collections::BTreeSet<u64> = checks.iter().map(|c| (c.3 * 1e6) as u64).collect();
    assert!(distinct.len() >= 15, "{results:?}");
}

fn thrashing_fixture(dir: &Path) -> std::path::PathBuf {
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/thrashing/trading-system.log.zst")).unwrap();
    let log = dir.join("trading-system.log");
    std::fs::write(&log, zstd::decode_all(&z[..]).unwrap()).unwrap();
    log
}

#[test]
fn svg_periods_and_bad_arguments() {
    let d = tempfile::tempdir().unwrap();
    let log = thrashing_fixture(d.path());
    let db = d.path().join("ev.duckdb");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let w = whatif_json(&db, "");
    // The SVG: one dot per point, the SLO line, the current setting and both recommendations.
    let svg_path = d.path().join("curve.svg");
    cachescope().args(["whatif", "--format", "svg", "--out"]).arg(&svg_path).arg("--db").arg(&db).assert().success();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert_eq!(svg.matches("<circle").count(), w["points"].as_array().unwrap().len(), "one dot per point");
    let rec = w["recommendation"]["capacity_gb"].as_f64().unwrap();
    let every = w["recommendation_every_window"]["capacity_gb"].as_f64().unwrap();
    for label in ["SLO 95%", "current 0.027045 GB", &format!("{rec} GB: period"), &format!("{every} GB: every 5-minute window")] {
        assert!(svg.contains(label), "no {label:?} in the chart");
    }
    // A period: only its requests count, the history before it sets the cache up.
    let part = cachescope()
        .args(["whatif", "--format", "json", "--from", "2026-11-24T14:34:00Z", "--until", "2026-11-24T14:37:00Z", "--capacity-gb", "0.003", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(part.status.success(), "{}", String::from_utf8_lossy(&part.stderr));
    let part: serde_json::Value = serde_json::from_slice(&part.stdout).unwrap();
    let (n, all) = (part["requests"].as_u64().unwrap(), w["requests"].as_u64().unwrap());
    assert!(n > 0 && n < all / 2, "{n} of {all}");
    assert_eq!(part["from"], "2026-11-24T14:34:00.000000Z");
    // Keys stored before the period are not first requests: only those the engine logged as new are.
    let new = cachescope()
        .args(["sql", "--format", "csv", "--db"])
        .arg(&db)
        .arg("SELECT count(*) AS n FROM events WHERE event = 'miss' AND reason IN ('new_key', 'new_symbol') AND ts >= '2026-11-24 14:34:00' AND ts < '2026-11-24 14:37:00'")
        .output()
        .unwrap();
    let new: u64 = String::from_utf8(new.stdout).unwrap().lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(part["unservable"]["first_requests"].as_u64().unwrap(), new);
    // Bad arguments: refused with what to do, exit code 2.
    for (args, says) in [
        (vec!["--retention-days", "0"], "give retentions in days"),
        (vec!["--capacity-gb=-1"], "give sizes in GB"),
        (vec!["--capacity-gb", "0.1,nan"], "give sizes in GB"),
        (vec!["--from", "yesterday"], "--from"),
        (vec!["--sample", "0"], "give the share of keys"),
        (vec!["--sample", "1.5"], "give the share of keys"),
        (vec!["--from", "2026-11-24T15:00:00Z", "--until", "2026-11-24T14:00:00Z"], "the period is empty"),
    ] {
        let out = cachescope().arg("whatif").args(&args).arg("--db").arg(&db).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A spatial sample: about its share of the keys, said in the output; 1 is the exact pass.
    let half = cachescope().args(["whatif", "--sample", "0.5", "--format", "json", "--db"]).arg(&db).output().unwrap();
    let half: serde_json::Value = serde_json::from_slice(&half.stdout).unwrap();
    assert_eq!(half["sample_rate"], 0.5);
    let share = half["keys"].as_f64().unwrap() / w["keys"].as_f64().unwrap();
    assert!((0.35..0.65).contains(&share), "{share}");
    let md = cachescope().args(["whatif", "--sample", "0.5", "--db"]).arg(&db).output().unwrap();
    assert!(String::from_utf8_lossy(&md.stdout).contains("keys in the sample: expect errors of several percentage points"));
    let one = cachescope().args(["whatif", "--sample", "1", "--format", "json", "--db"]).arg(&db).output().unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&one.stdout).unwrap(), w, "--sample 1 is the exact pass");
    // A retention longer than any history, asked or in the log's own startup line: as long
    // as forever (it panicked subtracting 1e9 days from the period's start).
    let forever = cachescope().args(["whatif", "--retention-days", "1e9", "--format", "json", "--db"]).arg(&db).output().unwrap();
    assert!(forever.status.success(), "{}", String::from_utf8_lossy(&forever.stderr));
    let text = std::fs::read_to_string(&log).unwrap().replacen(" retention_days=", " retention_days=1e9 was=", 1);
    let (log2, db2) = (d.path().join("forever.log"), d.path().join("forever.duckdb"));
    std::fs::write(&log2, text).unwrap();
    cachescope().arg("ingest").arg("--db").arg(&db2).arg(&log2).assert().success();
    let out = cachescope().args(["whatif", "--format", "json", "--db"]).arg(&db2).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w2: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w2["current"]["retention_days"], 1e9, "{w2}");
    let empty = cachescope().args(["whatif", "--from", "2030-01-01T00:00:00Z", "--until", "2030-01-02T00:00:00Z", "--db"]).arg(&db).output().unwrap();
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no requests"), "{}", String::from_utf8_lossy(&empty.stderr));
}

/// `report` sizes the cache when evictions lead (the same answer as `whatif` over the same
/// period), and so do `whatif` and `incident`, on the file and through a running `tail` alike
/// (the tailer streams the requests to the reader: the same figures).
#[test]
fn reports_size_the_cache_on_the_file_and_through_tail_alike() {
    let d = tempfile::tempdir().unwrap();
    let log = thrashing_fixture(d.path());
    let db = d.path().join("ev.duckdb");
    let tail = common::spawn_tail(&db, &log);
    let run = |args: &[&str]| -> Option<serde_json::Value> {
        let out = cachescope().args(args).arg("--db").arg(&db).output().unwrap();
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    };
    let report = || run(&["report", "--format", "json"]);
    let incident_args = ["incident", "--format", "json", "--from", "2026-11-24T14:30:00Z", "--to", "2026-11-24T14:40:00Z"];
    // Only once the tailer serves its socket does it hold the file for good.
    common::wait_for_socket(&db);
    let started = std::time::Instant::now();
    let mut last = serde_json::Value::Null;
    let through_tail = loop {
        if let Some(r) = report() {
            if r["requests"] == 2929 {
                break r;
            }
            last = r;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "tail never served the whole log: last report {last}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    // The tailer holds the file: these go through its socket.
    let whatif_tail = whatif_json(&db, "");
    let incident_tail = run(&incident_args).expect("incident through tail");
    common::stop_tail(tail);
    let direct = report().unwrap();
    let s = &direct["sizing"];
    assert!(s["note"].is_null(), "{s}");
    assert_eq!(through_tail["sizing"], direct["sizing"], "the report's sizing through tail and on the file");
    let w = whatif_json(&db, "");
    assert_eq!(whatif_tail, w, "whatif through tail and on the file");
    assert_eq!(s["period_gb"], w["recommendation"]["capacity_gb"]);
    assert_eq!(s["every_window_gb"], w["recommendation_every_window"]["capacity_gb"]);
    assert_eq!(s["current_gb"], 0.027045);
    assert_eq!(s["smallest_gb"], 0.00097938);
    // The incident names the size that would have avoided the thrashing episode.
    let inc = cachescope().args(["incident", "--from", "2026-11-24T14:30:00Z", "--to", "2026-11-24T14:40:00Z", "--db"]).arg(&db).output().unwrap();
    let md = String::from_utf8(inc.stdout).unwrap();
    // Its window and its episode are sized from one read of the requests: the same figures
    // as what-if reading each period on its own.
    let inc = run(&incident_args).unwrap();
    let sizings = |i: &serde_json::Value| -> Vec<serde_json::Value> {
        let mut v = vec![i["report"]["sizing"].clone()];
        v.extend(i["report"]["episodes"].as_array().unwrap().iter().map(|e| e["sizing"].clone()));
        v
    };
    assert_eq!(sizings(&incident_tail), sizings(&inc), "the incident's sizings through tail and on the file");
    let own = |from: &str, until: &str| -> serde_json::Value {
        let out = cachescope().args(["whatif", "--format", "json", "--from", from, "--until", until, "--db"]).arg(&db).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let same = |s: &serde_json::Value, w: &serde_json::Value| {
        assert_eq!(s["period_gb"], w["recommendation"]["capacity_gb"], "{s} {w}");
        assert_eq!(s["every_window_gb"], w["recommendation_every_window"]["capacity_gb"], "{s} {w}");
        assert_eq!(s["ceiling_hit_ratio"], w["ceiling_hit_ratio"], "{s} {w}");
        assert_eq!(s["predicted_hit_ratio"], w["current"]["predicted_hit_ratio"], "{s} {w}");
    };
    same(&inc["report"]["sizing"], &own("2026-11-24T14:30:00Z", "2026-11-24T14:40:00Z"));
    let ep = inc["report"]["episodes"].as_array().unwrap().iter().find(|e| e["kind"] == "thrashing").unwrap_or_else(|| panic!("{inc}"));
    let end = chrono::DateTime::parse_from_rfc3339(ep["end"].as_str().unwrap()).unwrap() + chrono::Duration::seconds(1);
    same(&ep["sizing"], &own(ep["start"].as_str().unwrap(), &end.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)));
    let line = md.lines().find(|l| l.contains("Sizing:")).unwrap_or_else(|| panic!("{md}"));
    assert!(line.contains("would have avoided it") && line.contains("as little as 0.00097938 GB"), "{line}");
}

/// A second host's log for the thrashing fixture's window: more misses of three other causes
/// than its thrashing episode has (new symbols, new keys, a manifest outage), so that capacity
/// evictions are not among the top three causes.
fn other_causes_log(dir: &Path) -> std::path::PathBuf {
    let mut n: u64 = 0;
    let mut miss = |ms: u32, symbol: &str, outcome: &str| -> String {
        n += 1;
        let key = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        format!(
            "2026-11-24T14:35:{:02}.{:06}Z INFO cachescope::engine: Cache MISS for {symbol} event=miss op=get_or_compute symbol={symbol} feature_set=returns key={key:016x} slot={:016x} config=f92e97f5751ccd2a data_version=v0 start=2026-11-20T14:30:00.000000Z end=2026-11-20T21:00:00.000000Z bytes=900 latency_us=500 outcome={outcome}\n",
            ms / 1000,
            (ms % 1000) * 1000,
            key.rotate_left(17)
        )
    };
    let mut lines = String::new();
    for i in 0..450 {
        lines.push_str(&miss(2 * i, &format!("NS{i}"), "stored"));
        lines.push_str(&miss(2 * i + 1, "JFH", "stored"));
    }
    lines.push_str("2026-11-24T14:35:02.000000Z ERROR cachescope::engine: Manifest /mnt/feature_cache/manifest.duckdb is locked by another process; running UNCACHED: every request will be recomputed event=manifest_unavailable path=/mnt/feature_cache/manifest.duckdb pid=4242\n");
    for i in 0..450 {
        lines.push_str(&miss(2001 + i, "JFH", "uncached"));
    }
    lines.push_str("2026-11-24T14:35:04.000000Z WARN cachescope::engine: Manifest available again; cache re-enabled event=manifest_available path=/mnt/feature_cache/manifest.duckdb unavailable_s=2\n");
    let log = dir.join("other-host.log");
    std::fs::write(&log, lines).unwrap();
    log
}

#[test]
fn an_incident_whose_report_sizes_nothing_still_sizes_its_thrashing_episode() {
    let d = tempfile::tempdir().unwrap();
    let (log, other) = (thrashing_fixture(d.path()), other_causes_log(d.path()));
    let db = d.path().join("ev.duckdb");
    cachescope().args(["ingest", "--db"]).arg(&db).arg(&log).arg(&other).assert().success();
    let out = cachescope().args(["incident", "--format", "json", "--from", "2026-11-24T14:30:00Z", "--to", "2026-11-24T14:40:00Z", "--db"]).arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let causes: Vec<&str> = inc["report"]["causes"].as_array().unwrap().iter().map(|c| c["cause"].as_str().unwrap()).collect();
    assert_eq!(causes.iter().position(|c| *c == "evicted_capacity"), Some(3), "evictions are fourth: {causes:?}");
    assert!(inc["report"]["sizing"].is_null(), "the report sizes nothing: {}", inc["report"]["sizing"]);
    let ep = inc["report"]["episodes"].as_array().unwrap().iter().find(|e| e["kind"] == "thrashing").unwrap_or_else(|| panic!("{inc}"));
    let end = chrono::DateTime::parse_from_rfc3339(ep["end"].as_str().unwrap()).unwrap() + chrono::Duration::seconds(1);
    let own = cachescope()
        .args(["whatif", "--format", "json", "--from", ep["start"].as_str().unwrap(), "--until", &end.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(own.status.success(), "{}", String::from_utf8_lossy(&own.stderr));
    let w: serde_json::Value = serde_json::from_slice(&own.stdout).unwrap();
    let s = &ep["sizing"];
    assert!(s.is_object(), "the thrashing episode is sized: {ep}");
    assert_eq!(s["ceiling_hit_ratio"], w["ceiling_hit_ratio"], "{s} {w}");
    assert_eq!(s["predicted_hit_ratio"], w["current"]["predicted_hit_ratio"], "{s} {w}");
    assert_eq!(s["period_gb"], w["recommendation"]["capacity_gb"], "{s} {w}");
    assert_eq!(s["every_window_gb"], w["recommendation_every_window"]["capacity_gb"], "{s} {w}");
    // The other episodes are not thrashing: nothing to size.
    assert!(inc["report"]["episodes"].as_array().unwrap().iter().filter(|e| e["kind"] != "thrashing").all(|e| e["sizing"].is_null()), "{inc}");
}

/// `days` days of the mixed-day fixture, each repetition the next day (as a host's log).
fn days_of_mixed_day(dir: &Path, days: i64) -> std::path::PathBuf {
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mixed_day/trading-system.log.zst")).unwrap();
    let day = String::from_utf8(zstd::decode_all(&z[..]).unwrap()).unwrap();
    let day0 = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let prefix = day0.format("%Y-%m-%d").to_string();
    let mut out = String::new();
    for d in 0..days {
        let date = (day0 + chrono::Duration::days(d)).format("%Y-%m-%d").to_string();
        for l in day.lines() {
            match l.strip_prefix(prefix.as_str()) {
                Some(rest) => out.push_str(&format!("{date}{rest}\n")),
                None => out.push_str(&format!("{l}\n")),
            }
        }
    }
    let log = dir.join("trading-system.log");
    std::fs::write(&log, out).unwrap();
    log
}

#[test]
fn a_long_report_sizes_its_last_week_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let log = days_of_mixed_day(d.path(), 9);
    let db = d.path().join("events.duckdb");
    cachescope().args(["ingest", "--db"]).arg(&db).arg(&log).assert().success();
    let report = |extra: &[&str]| -> serde_json::Value {
        let out = cachescope().args(["report", "--format", "json", "--db"]).arg(&db).args(extra).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let r = report(&[]);
    let until = r["period"]["until"].as_str().unwrap().to_string();
    let s = &r["sizing"];
    let from = s["sized_from"].as_str().unwrap_or_else(|| panic!("a 9-day report sizes its last 7 days: {s}")).to_string();
    let t = |v: &str| chrono::DateTime::parse_from_rfc3339(v).unwrap();
    assert_eq!(t(&until) - t(&from), chrono::Duration::days(7), "{from} .. {until}");
    // The figures are what-if's over those 7 days.
    let out = cachescope().args(["whatif", "--format", "json", "--from", &from, "--until", &until, "--db"]).arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["period_gb"], w["recommendation"]["capacity_gb"]);
    assert_eq!(s["every_window_gb"], w["recommendation_every_window"]["capacity_gb"]);
    assert_eq!(s["ceiling_hit_ratio"], w["ceiling_hit_ratio"]);
    let md = cachescope().args(["report", "--db"]).arg(&db).output().unwrap();
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.contains(&format!("Sized over the last 7 days of the period, from {from}")), "{md}");
    // So does an incident over the 9 days (its Markdown names the window's sizing only when a
    // size holds every 5-minute window, which none does here).
    let inc = cachescope().args(["incident", "--format", "json", "--from", "2026-11-24T00:00:00Z", "--to"]).arg(&until).arg("--db").arg(&db).output().unwrap();
    assert!(inc.status.success(), "{}", String::from_utf8_lossy(&inc.stderr));
    let inc: serde_json::Value = serde_json::from_slice(&inc.stdout).unwrap();
    assert_eq!(inc["report"]["sizing"]["sized_from"].as_str(), Some(from.as_str()), "{}", inc["report"]["sizing"]);
    // A report of two days sizes all of it, and says nothing of the kind.
    let short = report(&["--from", "2026-11-30T00:00:00Z", "--until", "2026-12-02T00:00:00Z"]);
    assert!(short["sizing"].is_object() && short["sizing"].get("sized_from").is_none(), "{}", short["sizing"]);
}

/// Through a running `tail`, rows come in the order a query asks for, and what-if's figures
/// are the file's. The tailer's ingester lets DuckDB drop insertion order (a global setting):
/// DuckDB then returned an ORDER BY's rows as two ordered runs (as JSON rows) and streamed
/// some out of place, once a table held more than one row group.
#[test]
fn through_tail_rows_come_in_order_and_whatif_sizes_as_on_the_file() {
    let d = tempfile::tempdir().unwrap();
    let log = days_of_mixed_day(d.path(), 3);
    let db = d.path().join("ev.duckdb");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let period = ["--from", "2026-11-26T14:00:00Z", "--until", "2026-11-26T21:00:00Z"];
    let whatif = || -> serde_json::Value {
        let out = cachescope().args(["whatif", "--format", "json"]).args(period).arg("--db").arg(&db).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let on_file = whatif();
    let empty = d.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let tail = common::spawn_tail(&db, &empty);
    common::wait_for_socket(&db);
    let q = "SELECT ts, line_no FROM hit_rows ORDER BY ts, line_no";
    let out = cachescope().args(["sql", "--format", "csv", "--db"]).arg(&db).arg(q).output().unwrap();
    let through_tail = whatif();
    common::stop_tail(tail);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(String, i64)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (ts, line) = l.split_once(',').unwrap();
            (ts.to_string(), line.parse().unwrap())
        })
        .collect();
    assert!(rows.len() > 122_880, "more than one row group: {}", rows.len());
    assert_eq!(rows.windows(2).filter(|w| w[1] < w[0]).count(), 0, "rows out of order through tail");
    assert_eq!(through_tail, on_file, "what-if through tail and on the file");
}
