//! The SQL analysis against the simulator's truth, over every scenario and several seeds:
//! `miss_causes` agrees with the engine's own reasons on at least 99% of misses (the test
//! prints the confusion matrix), every injected episode is found by `episodes` with start and
//! end within a minute, `steady` has no episode and no alert, `mixed_day` fires both alerts.

use std::collections::BTreeMap;
use std::path::Path;

use cachescope::ingest::formats::Formats;
use cachescope::ingest::Ingester;
use cachescope::sim::{simulate, Scenario, SimOptions};

fn secs(t: &str) -> i64 {
    cachescope::engine::clock::parse_ts(t).unwrap().and_utc().timestamp()
}

/// Checks `episodes` and `alerts` against `scenario.json`; returns (logged_reason, cause) -> misses.
fn check_run(name: &str, log: &Path, truth: &serde_json::Value, db: &Path) -> BTreeMap<(String, String), i64> {
    let mut ing = Ingester::open(db, Formats::default()).unwrap();
    let sum = ing.ingest(&[log.to_path_buf()], false, |_| {}).unwrap();
    assert_eq!(sum.quarantined, 0);
    drop(ing);
    // Read as the reports do: a read-only session with the views computed once.
    let session = cachescope::analysis::session(db).unwrap();
    let c = session.direct_connection().expect("the file is free");
    let found: Vec<(String, String, String)> = c
        .prepare("SELECT kind, strftime(start, '%Y-%m-%dT%H:%M:%S.%fZ'), strftime(\"end\", '%Y-%m-%dT%H:%M:%S.%fZ') FROM episodes")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    for e in truth["episodes"].as_array().unwrap() {
        let kind = e["kind"].as_str().unwrap();
        let (ts, te) = (secs(e["start"].as_str().unwrap()), secs(e["end"].as_str().unwrap()));
        let hit = found
            .iter()
            .any(|(k, s, en)| k == kind && (secs(s) - ts).abs() <= 60 && (secs(en) - te).abs() <= 60);
        assert!(hit, "{name}: episode {kind} {} .. {} not found within a minute; found {found:?}", e["start"], e["end"]);
    }
    let fired: Vec<String> = c
        .prepare("SELECT alert FROM alerts WHERE firing_since IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    match truth["scenario"].as_str().unwrap() {
        "steady" => {
            assert!(found.is_empty(), "{name}: steady has episodes {found:?}");
            assert!(fired.is_empty(), "{name}: steady fired {fired:?}");
        }
        "mixed_day" => {
            assert!(fired.iter().any(|a| a == "FeatureStoreHitRatioLow"), "{name}: {fired:?}");
            assert!(fired.iter().any(|a| a == "FeatureStoreHitRatioCritical"), "{name}: {fired:?}");
        }
        _ => {}
    }
    let mut s = c
        .prepare("SELECT logged_reason, cause, count(*) FROM miss_causes GROUP BY ALL")
        .unwrap();
    s.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .map(|x| x.unwrap())
        .collect()
}

#[test]
fn analysis_matches_the_truth_on_every_scenario_and_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("cachescope");
    let mut total: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut runs = 0;
    for s in Scenario::ALL {
        // The committed fixture (seed 1) and fresh runs with other seeds.
        let fixture = tmp.path().join(format!("{}-fixture.log", s.name()));
        let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/{}/trading-system.log.zst", s.name()))).unwrap();
        std::fs::write(&fixture, zstd::decode_all(&z[..]).unwrap()).unwrap();
        let fixture_truth: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/{}/scenario.json", s.name()))).unwrap(),
        )
        .unwrap();
        let mut logs = vec![(fixture, fixture_truth)];
        for seed in [2u64, 3] {
            if s == Scenario::MixedDay && seed == 3 {
                continue;
            }
            let out = tmp.path().join(format!("{}-{seed}", s.name()));
            simulate(&SimOptions {
                scenario: s,
                seed,
                scale: if s == Scenario::MixedDay { 0.15 } else { 0.3 },
                out: out.clone(),
                lock_helper: bin.clone(),
            })
            .unwrap();
            let truth = serde_json::from_str(&std::fs::read_to_string(out.join("scenario.json")).unwrap()).unwrap();
            logs.push((out.join("trading-system.log"), truth));
        }
        for (i, (log, truth)) in logs.iter().enumerate() {
            let name = format!("{} run {i}", s.name());
            let m = check_run(&name, log, truth, &tmp.path().join(format!("{}-{i}.duckdb", s.name())));
            let (ok, all): (i64, i64) = m.iter().fold((0, 0), |a, ((l, c), n)| (a.0 + if l == c { *n } else { 0 }, a.1 + n));
            assert!(all > 0 || s == Scenario::Steady, "{}: no misses", s.name());
            assert!(ok as f64 >= 0.99 * all as f64, "{} run {i}: {ok}/{all} agree: {m:?}", s.name());
            for (k, n) in m {
                *total.entry(k).or_default() += n;
            }
            runs += 1;
        }
    }
    let reasons: Vec<String> = {
        let mut v: Vec<String> = total.keys().flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
        v.sort();
        v.dedup();
        v
    };
    println!("confusion matrix over {runs} runs (rows: engine reason, columns: inferred cause)");
    print!("{:<22}", "");
    for r in &reasons {
        print!("{:>11}", &r[..r.len().min(10)]);
    }
    println!();
    for l in &reasons {
        print!("{l:<22}");
        for c in &reasons {
            print!("{:>11}", total.get(&(l.clone(), c.clone())).copied().unwrap_or(0));
        }
        println!();
    }
    let ok: i64 = total.iter().filter(|((l, c), _)| l == c).map(|(_, n)| n).sum();
    let all: i64 = total.values().sum();
    println!("agreement: {ok}/{all} = {:.3}%", ok as f64 * 100.0 / all as f64);
    assert!(ok as f64 >= 0.99 * all as f64);
    // Every engine reason was exercised.
    for r in cachescope::engine::MissReason::ALL {
        assert!(total.keys().any(|(l, _)| l == r.as_str()), "{} never happened", r.as_str());
    }
}

/// A day served by two engine processes after another: the engine restarts mid-day, once
/// keeping the market-data versions (a real market-data service) and once starting them
/// again at v0 (an in-process source). Invalidation lines before a restart and the misses
/// after it must still get the invalidation's own reason: 100% agreement.
#[test]
fn a_day_served_by_engines_restarted_mid_day_agrees_with_the_engine() {
    use cachescope::engine::config::Config;
    use cachescope::replay::{replay, ReplayOptions, Trace};
    let tmp = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("cachescope");
    let mut checked = 0;
    for (scenario, seed) in [(Scenario::InvalidationStorm, 5u64), (Scenario::ConfigChange, 6), (Scenario::MixedDay, 7)] {
        let gen = cachescope::sim::generate(scenario, seed, if scenario == Scenario::MixedDay { 0.15 } else { 0.4 }).unwrap();
        // Restarts at 55% and 80% of the rows: after the injected invalidations, before the
        // misses that follow them have all happened.
        let lines: Vec<&str> = gen.csv.lines().collect();
        let mut csv = String::new();
        let (a, b) = (lines.len() * 55 / 100, lines.len() * 80 / 100);
        for (i, l) in lines.iter().enumerate() {
            if i == a || i == b {
                let ts = l.split(',').next().unwrap();
                let how = if i == a { "keep_market_data" } else { "reset_market_data" };
                csv.push_str(&format!("{ts},restart,,,,,{how}\n"));
            }
            csv.push_str(l);
            csv.push('\n');
        }
        let trace = Trace::parse("trace.csv", csv.as_bytes()).unwrap();
        let cache = tmp.path().join(format!("cache-{seed}"));
        let mut config = Config::with_cache_dir(cache);
        config.max_cache_size_gb = gen.normal_cache_gb;
        config.manifest_flush_interval_s = 120.0;
        let log = tmp.path().join(format!("two-processes-{seed}.log"));
        let sum = replay(
            &trace,
            &ReplayOptions {
                config,
                log: log.clone(),
                seed,
                lock_helper: bin.clone(),
                metrics_out: None,
                metrics_addr: None,
                deterministic: true,
            },
        )
        .unwrap();
        assert_eq!(sum.restarts, 2);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.matches("event=startup").count(), 3, "three engine processes wrote the log");
        let db = tmp.path().join(format!("two-processes-{seed}.duckdb"));
        let mut ing = Ingester::open(&db, Formats::default()).unwrap();
        ing.ingest(&[log.clone()], false, |_| {}).unwrap();
        drop(ing);
        let session = cachescope::analysis::session(&db).unwrap();
        let c = session.direct_connection().unwrap();
        let wrong: Vec<(String, String, i64)> = c
            .prepare("SELECT logged_reason, cause, count(*) FROM miss_causes WHERE logged_reason <> cause GROUP BY ALL")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|x| x.unwrap())
            .collect();
        let all: i64 = c.query_row("SELECT count(*) FROM miss_causes", [], |r| r.get(0)).unwrap();
        let after_restart: i64 = c
            .query_row(
                "SELECT count(*) FROM miss_causes WHERE logged_reason LIKE 'invalidated%' AND ts > (SELECT min(ts) FROM events WHERE event = 'startup' AND line_no > 1)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(after_restart > 0, "{}: no invalidation misses after the restart; the test proves nothing", scenario.name());
        assert!(wrong.is_empty(), "{} seed {seed}: {wrong:?} of {all} misses disagree", scenario.name());
        checked += all;
    }
    assert!(checked > 0);
}
