//! The simulator's scenarios, proven on the committed fixtures (which a test regenerates from
//! their seeds): each injected episode really happens in the engine's log.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cachescope::engine::clock::parse_ts;
use cachescope::sim::{generate, Scenario};
use chrono::{Duration, NaiveDateTime};
use common::Line;

const FIXTURE_SEED: u64 = 1;
const FIXTURE_SCALE: f64 = 0.5;

fn fixture_dir(s: Scenario) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(s.name())
}

fn unzstd(p: &Path) -> Vec<u8> {
    zstd::decode_all(std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

struct Fixture {
    truth: serde_json::Value,
    lines: Vec<Line>,
}

fn load(s: Scenario) -> Fixture {
    let dir = fixture_dir(s);
    let truth = serde_json::from_str(&std::fs::read_to_string(dir.join("scenario.json")).unwrap()).unwrap();
    let log = String::from_utf8(unzstd(&dir.join("trading-system.log.zst"))).unwrap();
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), log).unwrap();
    Fixture {
        truth,
        lines: common::read_log(tmp.path()),
    }
}

fn ts(l: &Line) -> NaiveDateTime {
    parse_ts(l.raw.split(' ').next().unwrap()).unwrap()
}

fn t(v: &serde_json::Value) -> NaiveDateTime {
    parse_ts(v.as_str().unwrap()).unwrap()
}

/// The single episode of a one-episode scenario: its window and the miss lines inside it.
fn episode(f: &Fixture) -> (serde_json::Value, Vec<&Line>) {
    let eps = f.truth["episodes"].as_array().unwrap();
    assert_eq!(eps.len(), 1, "{}", f.truth);
    let e = eps[0].clone();
    let (s, end) = (t(&e["start"]), t(&e["end"]));
    let misses = f
        .lines
        .iter()
        .filter(|l| l.event() == "miss" && ts(l) >= s && ts(l) <= end)
        .collect();
    (e, misses)
}

fn count_reason(misses: &[&Line], reason: &str) -> usize {
    misses.iter().filter(|l| l.get("reason") == Some(reason)).count()
}

fn max_repeats(misses: &[&Line], reason: &str) -> usize {
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for l in misses.iter().filter(|l| l.get("reason") == Some(reason)) {
        *per_key.entry(l.get("slot").unwrap()).or_default() += 1;
    }
    per_key.values().copied().max().unwrap_or(0)
}

#[test]
fn steady_holds_the_slo_with_no_episode() {
    let f = load(Scenario::Steady);
    assert!(f.truth["episodes"].as_array().unwrap().is_empty());
    assert!(f.truth["hit_ratio"].as_f64().unwrap() >= 0.95, "{}", f.truth["hit_ratio"]);
    let reasons: Vec<&str> = f.lines.iter().filter(|l| l.event() == "miss").map(|l| l.get("reason").unwrap()).collect();
    assert!(reasons.iter().all(|r| *r == "new_key" || *r == "new_symbol"), "{reasons:?}");
}

#[test]
fn new_symbols_burst_of_new_symbol_misses() {
    let f = load(Scenario::NewSymbols);
    let (e, misses) = episode(&f);
    let newcomers: Vec<&str> = e["symbols"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(newcomers.len() >= 15);
    // Each newcomer misses as a new symbol exactly once, inside the episode.
    for s in &newcomers {
        let n = misses.iter().filter(|l| l.get("symbol") == Some(s) && l.get("reason") == Some("new_symbol")).count();
        assert_eq!(n, 1, "{s}");
    }
    assert!(count_reason(&misses, "new_key") >= 3 * newcomers.len(), "onboarding of every feature set");
    assert!(!f.lines.iter().any(|l| l.get("reason") == Some("new_symbol") && newcomers.contains(&l.get("symbol").unwrap()) && ts(l) < t(&e["start"])));
}

#[test]
fn invalidation_storm_then_invalidated_data_misses() {
    let f = load(Scenario::InvalidationStorm);
    let (e, misses) = episode(&f);
    let (s, inj_end) = (t(&e["start"]), t(&e["injected_end"]));
    let touched = e["symbols"].as_array().unwrap().len();
    assert!(touched as f64 >= 0.6 * f.truth["universe"].as_f64().unwrap(), "most symbols");
    let updates = f.lines.iter().filter(|l| l.event() == "market_data_update" && ts(l) >= s && ts(l) <= inj_end).count();
    assert_eq!(updates, touched);
    let invalidations = f.lines.iter().filter(|l| l.event() == "invalidation" && ts(l) >= s && ts(l) <= inj_end).count();
    assert!(invalidations >= 2 * touched, "{invalidations} invalidations in the storm minute");
    assert!(count_reason(&misses, "invalidated_data") >= 100);
    assert!(count_reason(&misses, "invalidated_data") as f64 >= 0.9 * misses.len() as f64);
    // `end` is when 95% of the episode's misses (counted up to 15 minutes on) had happened.
    let in_window = count_reason(&misses, "invalidated_data") as f64;
    let total = e["misses"].as_f64().unwrap();
    assert!(in_window >= 0.95 * total - 1.0 && in_window <= total, "{in_window} of {total}");
}

#[test]
fn config_change_misses_every_key_of_the_set_once() {
    let f = load(Scenario::ConfigChange);
    let (e, misses) = episode(&f);
    let changes: Vec<_> = f.lines.iter().filter(|l| l.event() == "config_change").collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].get("feature_set"), Some("volatility"));
    let cfg: Vec<_> = misses.iter().filter(|l| l.get("reason") == Some("invalidated_config")).collect();
    assert!(cfg.len() >= 30);
    assert!(cfg.iter().all(|l| l.get("feature_set") == Some("volatility")));
    assert_eq!(max_repeats(&misses, "invalidated_config"), 1, "each key misses once");
    assert!(f.lines.iter().filter(|l| l.get("reason") == Some("invalidated_config")).all(|l| ts(l) >= t(&e["start"])));
}

#[test]
fn thrashing_evicts_and_misses_the_same_keys_again_and_again() {
    let f = load(Scenario::Thrashing);
    let (_e, misses) = episode(&f);
    assert!(count_reason(&misses, "evicted_capacity") >= 200);
    assert!(max_repeats(&misses, "evicted_capacity") >= 3, "the same keys miss repeatedly");
    assert!(f.lines.iter().filter(|l| l.event() == "eviction" && l.get("reason") == Some("capacity")).count() >= 200);
}

#[test]
fn retention_cut_gives_evicted_retention_misses() {
    let f = load(Scenario::Retention);
    let (e, misses) = episode(&f);
    assert!(count_reason(&misses, "evicted_retention") >= 100);
    let cleanups = f.lines.iter().filter(|l| l.event() == "cleanup").count();
    assert!(cleanups >= 2);
    assert!(f.lines.iter().filter(|l| l.get("reason") == Some("evicted_retention")).all(|l| ts(l) >= t(&e["start"])));
}

#[test]
fn disk_full_gives_write_failures_then_repeated_write_failed_misses() {
    let f = load(Scenario::DiskFull);
    let (e, misses) = episode(&f);
    let (s, inj_end) = (t(&e["injected_start"]), t(&e["injected_end"]));
    let fails: Vec<_> = f.lines.iter().filter(|l| l.event() == "write_failed").collect();
    assert!(fails.len() >= 20);
    assert!(fails.iter().all(|l| l.get("os_error") == Some("28") && ts(l) >= s && ts(l) <= inj_end));
    assert!(count_reason(&misses, "write_failed") >= 50);
    assert!(max_repeats(&misses, "write_failed") >= 3);
}

#[test]
fn memory_pressure_fails_the_large_set_and_its_retries() {
    let f = load(Scenario::MemoryPressure);
    let (e, misses) = episode(&f);
    let ooms: Vec<_> = f.lines.iter().filter(|l| l.event() == "compute_failed").collect();
    assert!(ooms.len() >= 5);
    assert!(ooms.iter().all(|l| l.get("feature_set") == Some("multi_horizon") && l.raw.contains("out of memory (OOM)")));
    assert!(ooms.iter().all(|l| ts(l) >= t(&e["injected_start"]) && ts(l) <= t(&e["injected_end"])));
    assert!(count_reason(&misses, "compute_failed") >= 5);
}

#[test]
fn manifest_outage_misses_every_request_while_locked() {
    let f = load(Scenario::ManifestOutage);
    let (e, _) = episode(&f);
    let (s, end) = (t(&e["injected_start"]), t(&e["injected_end"]));
    let during: Vec<_> = f.lines.iter().filter(|l| l.get("op") == Some("get_or_compute") && ts(l) > s && ts(l) < end).collect();
    assert!(during.len() >= 50);
    assert!(during.iter().all(|l| l.get("reason") == Some("manifest_unavailable")));
    let down = f.lines.iter().find(|l| l.event() == "manifest_unavailable").unwrap();
    assert_eq!(down.get("pid"), Some("4242"));
    assert_eq!(e["misses"].as_u64().unwrap(), during.len() as u64 + f.lines.iter().filter(|l| l.get("reason") == Some("manifest_unavailable") && (ts(l) == s || ts(l) == end)).count() as u64);
}

#[test]
fn external_deletion_gives_missing_file_misses() {
    let f = load(Scenario::ExternalDeletion);
    let (e, misses) = episode(&f);
    let deleted = e["requests"].as_array().unwrap().len();
    assert!(deleted >= 20);
    let missing = count_reason(&misses, "missing_file");
    assert!(missing >= 20 && missing <= deleted, "{missing} of {deleted}");
    assert!(f.lines.iter().filter(|l| l.event() == "missing_file").count() >= missing);
}

/// Minutes at which the 5-minute hit ratio (evaluated every minute) is below `below`,
/// longest run.
fn longest_run_below(lines: &[Line], below: f64) -> usize {
    let mut per_min: BTreeMap<NaiveDateTime, (u64, u64)> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.get("op") == Some("get_or_compute")) {
        let m = ts(l);
        let m = m - Duration::seconds(m.and_utc().timestamp() % 60) - Duration::nanoseconds(m.and_utc().timestamp_subsec_nanos() as i64);
        let e = per_min.entry(m).or_default();
        e.1 += 1;
        if l.event() == "hit" {
            e.0 += 1;
        }
    }
    let mins: Vec<_> = per_min.keys().copied().collect();
    let (mut run, mut best) = (0, 0);
    for m in &mins {
        let (h, n) = per_min
            .range(*m - Duration::minutes(4)..=*m)
            .fold((0, 0), |a, (_, v)| (a.0 + v.0, a.1 + v.1));
        run = if (h as f64) < below * n as f64 { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[test]
fn mixed_day_has_several_causes_a_warning_and_a_critical() {
    let f = load(Scenario::MixedDay);
    let eps = f.truth["episodes"].as_array().unwrap();
    let kinds: Vec<&str> = eps.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["new_symbols", "invalidation_storm", "thrashing", "disk_full", "config_change", "manifest_outage"]);
    assert!(eps.iter().all(|e| e["misses"].as_u64().unwrap() > 0));
    assert!(longest_run_below(&f.lines, 0.95) >= 10, "FeatureStoreHitRatioLow would fire");
    assert!(longest_run_below(&f.lines, 0.80) >= 5, "FeatureStoreHitRatioCritical would fire");
    let steady = load(Scenario::Steady);
    assert!(longest_run_below(&steady.lines, 0.95) < 10);
}

/// Regenerates every fixture from its seed and compares it with the committed files.
/// `CACHESCOPE_BLESS=1` rewrites the fixtures instead.
#[test]
fn fixtures_are_what_the_simulator_makes() {
    let bless = std::env::var_os("CACHESCOPE_BLESS").is_some();
    for s in Scenario::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let out = assert_cmd::Command::cargo_bin("cachescope")
            .unwrap()
            .args(["simulate", "--scenario", s.name(), "--seed", &FIXTURE_SEED.to_string(), "--scale", &FIXTURE_SCALE.to_string(), "--out"])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", s.name(), String::from_utf8_lossy(&out.stderr));
        let dir = fixture_dir(s);
        for name in ["trace.csv", "trading-system.log", "metrics.prom", "scenario.json"] {
            let fresh = std::fs::read(tmp.path().join(name)).unwrap();
            let compressed = name.ends_with(".csv") || name.ends_with(".log");
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                if compressed {
                    let z = zstd::encode_all(&fresh[..], 19).unwrap();
                    std::fs::write(dir.join(format!("{name}.zst")), z).unwrap();
                } else {
                    std::fs::write(dir.join(name), &fresh).unwrap();
                }
                continue;
            }
            let committed = if compressed { unzstd(&dir.join(format!("{name}.zst"))) } else { std::fs::read(dir.join(name)).unwrap() };
            assert!(committed == fresh, "fixtures/{}/{name} differs from what `simulate` makes now; rerun with CACHESCOPE_BLESS=1 if the change is intended", s.name());
        }
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_trace() {
    let a = generate(Scenario::DiskFull, 9, 0.2).unwrap().csv;
    assert_eq!(a, generate(Scenario::DiskFull, 9, 0.2).unwrap().csv);
    assert_ne!(a, generate(Scenario::DiskFull, 10, 0.2).unwrap().csv);
}

mod prop {
    use super::*;
    use cachescope::replay::Trace;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20, failure_persistence: None, .. ProptestConfig::default() })]
        /// Whatever the scenario, seed and scale, `replay` accepts the generated trace.
        #[test]
        fn replay_never_rejects_a_generated_trace(idx in 0..11usize, seed in any::<u64>(), scale in 0.02f64..0.6) {
            let s = Scenario::ALL[idx];
            let g = generate(s, seed, scale).unwrap();
            let parsed = Trace::parse("gen.csv", g.csv.as_bytes());
            prop_assert!(parsed.is_ok(), "{}: {}", s.name(), parsed.unwrap_err());
            prop_assert!(parsed.unwrap().rows.len() > 10);
        }
    }
}
