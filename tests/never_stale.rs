//! Property: whatever happens (market-data updates, configuration changes, evictions,
//! deleted files, a full disk), `get_or_compute` returns exactly what a fresh computation
//! from the current data and configuration gives: a stale key is never served.

use std::collections::BTreeMap;
use std::sync::Arc;

use cachescope::engine::clock::parse_ts;
use cachescope::engine::features::{FeatureRegistry, MemoryBudget, Params};
use cachescope::engine::{
    Config, DiskFaults, EventLog, FeatureRequest, FeatureStore, MarketData, Outcome, SyntheticMarketData,
    VirtualClock,
};
use chrono::Duration;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Request(usize, usize),
    Update(usize),
    Config(usize, u8),
    Shrink(bool),
    DeleteFile(usize, usize),
    DiskFull(bool),
}

const SYMS: [&str; 3] = ["AAPL", "MSFT", "TSLA"];
const SETS: [&str; 3] = ["volatility", "vwap", "momentum"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..3usize, 0..3usize).prop_map(|(s, f)| Step::Request(s, f)),
        1 => (0..3usize).prop_map(Step::Update),
        1 => (0..3usize, 0..3u8).prop_map(|(f, w)| Step::Config(f, w)),
        1 => any::<bool>().prop_map(Step::Shrink),
        1 => (0..3usize, 0..3usize).prop_map(|(s, f)| Step::DeleteFile(s, f)),
        1 => any::<bool>().prop_map(Step::DiskFull),
    ]
}

fn param_name(set: &str) -> &'static str {
    if set == "momentum" { "lookback" } else { "window" }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn a_stale_key_is_never_served(steps in proptest::collection::vec(step(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::with_cache_dir(dir.path().join("cache"));
        cfg.manifest_path = dir.path().join("cache/manifest.duckdb");
        let t0 = parse_ts("2026-11-26T14:30:00Z").unwrap();
        let clock = Arc::new(VirtualClock::new(t0));
        let source = Arc::new(SyntheticMarketData::new(11));
        let faults = Arc::new(DiskFaults::default());
        let mut store = FeatureStore::builder(cfg)
            .clock(clock.clone())
            .market_data(source.clone())
            .faults(faults.clone())
            .log(EventLog::sink())
            .open()
            .unwrap();
        let mut reference = FeatureRegistry::with_builtins(&BTreeMap::new()).unwrap();
        let (start, end) = (parse_ts("2026-11-25T14:30:00Z").unwrap(), parse_ts("2026-11-25T16:00:00Z").unwrap());
        let mut served_from_cache = 0;
        for (i, s) in steps.iter().enumerate() {
            clock.set(t0 + Duration::seconds(i as i64));
            match s {
                Step::Request(sym, set) => {
                    let req = FeatureRequest::new(SYMS[*sym], SETS[*set], start, end);
                    let got = store.get_or_compute(&req).unwrap();
                    if got.outcome == Outcome::Hit { served_from_cache += 1; }
                    let c = reference.get(SETS[*set]).unwrap();
                    let bars = source.bars(SYMS[*sym], start, end).unwrap();
                    let mut b = MemoryBudget::new("ref", u64::MAX);
                    let want = c.set.compute(&bars, &c.params, &mut b).unwrap();
                    prop_assert_eq!(got.batches.len(), 1);
                    prop_assert_eq!(&got.batches[0], &want, "step {}: {:?} served stale data ({:?})", i, s, got.outcome);
                    prop_assert_eq!(&got.key.config_hash, &c.config_hash);
                    prop_assert_eq!(got.key.data_version.clone(), source.version(SYMS[*sym]).unwrap());
                }
                Step::Update(sym) => {
                    source.publish_correction(SYMS[*sym]);
                    store.market_data_updated(SYMS[*sym]).unwrap();
                }
                Step::Config(set, w) => {
                    let p = Params::from([(param_name(SETS[*set]).to_string(), 5.0 + *w as f64 * 5.0)]);
                    store.set_feature_config(SETS[*set], &p).unwrap();
                    reference.configure(SETS[*set], &p).unwrap();
                }
                Step::Shrink(small) => {
                    store.set_max_cache_size_gb(if *small { 0.00001 } else { 50.0 }).unwrap();
                }
                Step::DeleteFile(sym, set) => {
                    let req = FeatureRequest::new(SYMS[*sym], SETS[*set], start, end);
                    if let Some(p) = store.cached_path(&req) {
                        // Already gone if deleted before and not requested since.
                        let _ = std::fs::remove_file(p);
                    }
                }
                Step::DiskFull(on) => faults.set_disk_full(*on),
            }
        }
        let _ = served_from_cache;
    }
}

#[test]
fn an_updated_symbol_is_recomputed_even_without_notification() {
    // A source whose version changes behind the engine's back (no market_data_updated call):
    // the key changes, so the old file is not served; it is invalidated lazily.
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::with_cache_dir(dir.path().to_path_buf());
    let t0 = parse_ts("2026-11-26T14:30:00Z").unwrap();
    let source = Arc::new(SyntheticMarketData::new(1));
    let mut store = FeatureStore::builder(cfg)
        .clock(Arc::new(VirtualClock::new(t0)))
        .market_data(source.clone())
        .log(EventLog::sink())
        .open()
        .unwrap();
    let req = FeatureRequest::new("AAPL", "returns", parse_ts("2026-11-25T14:30:00Z").unwrap(), parse_ts("2026-11-25T21:00:00Z").unwrap());
    let before = store.get_or_compute(&req).unwrap();
    source.publish_correction("AAPL");
    let after = store.get_or_compute(&req).unwrap();
    assert!(matches!(after.outcome, Outcome::Miss { reason, .. } if reason.as_str() == "invalidated_data"));
    assert_ne!(before.batches, after.batches);
    assert_eq!(store.stats().cached_files, 1);
    assert_eq!(store.stats().by_state.get("invalidated_data"), Some(&1));
}
