//! Hit-path benchmark: hits/s and p50/p99 latency of `get_or_compute` on a warm cache, and
//! the share spent reading the Parquet file versus the engine's own bookkeeping (index
//! lookup, LRU, log line, metrics). Run on one core:
//!
//! ```sh
//! taskset -c 0 cargo bench --bench hit_path
//! ```

use std::sync::Arc;
use std::time::Instant;

use cachescope::engine::cachefile;
use cachescope::engine::clock::parse_ts;
use cachescope::engine::{Config, EventLog, FeatureRequest, FeatureStore, Outcome, SystemClock};

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Stats {
    per_s: f64,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
}

fn stats(mut lat: Vec<f64>, total_s: f64) -> Stats {
    let n = lat.len() as f64;
    let mean_us = lat.iter().sum::<f64>() / n * 1e6;
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Stats {
        per_s: n / total_s,
        p50_us: pct(&lat, 0.5) * 1e6,
        p99_us: pct(&lat, 0.99) * 1e6,
        mean_us,
    }
}

fn main() {
    let n: usize = std::env::var("HIT_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::with_cache_dir(dir.path().join("cache"));
    let log = EventLog::append_to(&dir.path().join("engine.log"), true).unwrap();
    let mut store = FeatureStore::builder(cfg)
        .clock(Arc::new(SystemClock))
        .log(log)
        .open()
        .unwrap();
    let (s, e) = (parse_ts("2026-11-25T14:30:00Z").unwrap(), parse_ts("2026-11-25T21:00:00Z").unwrap());
    let syms: Vec<String> = (0..50).map(|i| format!("SYM{i:03}")).collect();
    let sets = ["returns", "volatility", "vwap", "momentum"];
    let mut reqs = Vec::new();
    for sym in &syms {
        for fs in sets {
            let r = FeatureRequest::new(sym, fs, s, e);
            store.get_or_compute(&r).unwrap();
            reqs.push(r);
        }
    }
    // A fixed pseudo-random order over the warm keys.
    let order: Vec<usize> = (0..n).map(|i| (i.wrapping_mul(2_654_435_761) >> 3) % reqs.len()).collect();
    let paths: Vec<(std::path::PathBuf, String)> = reqs
        .iter()
        .map(|r| {
            let k = store.key(r).unwrap();
            (store.cached_path(r).unwrap(), k.id())
        })
        .collect();

    // Warm the page cache and the allocator for both loops.
    for &i in order.iter().take(1000) {
        store.get_or_compute(&reqs[i]).unwrap();
        cachefile::read(&paths[i].0, &paths[i].1).unwrap();
    }

    let mut lat = Vec::with_capacity(n);
    let t = Instant::now();
    for &i in &order {
        let t0 = Instant::now();
        let f = store.get_or_compute(&reqs[i]).unwrap();
        lat.push(t0.elapsed().as_secs_f64());
        assert_eq!(f.outcome, Outcome::Hit);
    }
    let full = stats(lat, t.elapsed().as_secs_f64());

    let mut lat = Vec::with_capacity(n);
    let t = Instant::now();
    for &i in &order {
        let t0 = Instant::now();
        let b = cachefile::read(&paths[i].0, &paths[i].1).unwrap();
        lat.push(t0.elapsed().as_secs_f64());
        assert!(!b.is_empty());
    }
    let read = stats(lat, t.elapsed().as_secs_f64());
    store.close();

    let bookkeeping_us = full.mean_us - read.mean_us;
    println!("hit path, {n} hits over {} warm keys (390-row files), log flushed per line", reqs.len());
    println!("| measurement | per second | p50 (us) | p99 (us) | mean (us) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!("| get_or_compute hit (whole path) | {:.0} | {:.1} | {:.1} | {:.1} |", full.per_s, full.p50_us, full.p99_us, full.mean_us);
    println!("| cache file read alone (Parquet+zstd decode) | {:.0} | {:.1} | {:.1} | {:.1} |", read.per_s, read.p50_us, read.p99_us, read.mean_us);
    println!(
        "| share: Parquet read {:.1}% / engine bookkeeping {:.1}% ({:.1} us per hit) | | | | |",
        read.mean_us / full.mean_us * 100.0,
        bookkeeping_us / full.mean_us * 100.0,
        bookkeeping_us
    );
}
