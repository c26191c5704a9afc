//! The exact LRU curve's one pass (`whatif::StackDistances`) and one simulation of the
//! engine's policy at one capacity (`whatif::policy::simulate`): requests per second on one
//! core, Zipf-popular keys (exponent 1.0) with cache-file sizes of 5-50 kB, for 100k and 1M
//! distinct keys. Then spatial sampling (SHARDS) at 10% and 1% of the keys: its mean and
//! largest absolute error against the exact curves, at 20 capacities from 1% of the working
//! set to all of it.
//!
//! ```sh
//! taskset -c 0 cargo bench --bench whatif                  # 10M requests each
//! WHATIF_BENCH_REQUESTS=1000000 cargo bench --bench whatif
//! ```

use std::time::Instant;

use cachescope::whatif::curve::NONE;
use cachescope::whatif::policy::{simulate, Policy};
use cachescope::whatif::trace::{key_hash, sampled, Op, OpKind, Trace};
use cachescope::whatif::{Curve, StackDistances};
use rand::{Rng, SeedableRng};

/// A key's cache file size: 5-50 kB.
fn size(k: u64) -> u64 {
    5_000 + (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 45_000
}

fn main() {
    let requests: usize = std::env::var("WHATIF_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    println!("| distinct keys | requests | LRU pass (s) | LRU requests/s | LRU hit ratio at 1 GB | ceiling | policy at 1 GB (s) | policy requests/s | policy hit ratio at 1 GB |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut samples = Vec::new();
    for keys in [100_000u64, 1_000_000] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(keys);
        // Zipf(1.0) by inverse transform over the keys' cumulative weights.
        let mut cum = Vec::with_capacity(keys as usize);
        let mut acc = 0.0;
        for r in 0..keys {
            acc += 1.0 / (r + 1) as f64;
            cum.push(acc);
        }
        let stream: Vec<u64> = (0..requests)
            .map(|_| {
                let u = rng.random::<f64>() * acc;
                cum.partition_point(|c| *c < u) as u64
            })
            .collect();
        let started = Instant::now();
        let mut stack = StackDistances::with_capacity(requests);
        let distances: Vec<u64> = stream.iter().map(|&k| stack.access(k, size(k)).unwrap_or(NONE)).collect();
        let secs = started.elapsed().as_secs_f64();
        let curve = Curve::new(&distances);
        let trace = Trace {
            ops: stream.iter().enumerate().map(|(i, &k)| Op::new(i as i64, OpKind::MissStored, k as u32, size(k))).collect(),
            from_ms: 0,
            cleanup_retention_ms: vec![],
            keys: keys as u32,
            sample_rate: None,
        };
        let started = Instant::now();
        let served = simulate(&trace, &Policy { capacity_bytes: 1_000_000_000, cleanup_threshold: 0.9, eviction_target: 0.8, retention_ms: None });
        let policy_secs = started.elapsed().as_secs_f64();
        println!(
            "| {keys} | {requests} | {secs:.2} | {:.0} | {:.4} | {:.4} | {policy_secs:.2} | {:.0} | {:.4} |",
            requests as f64 / secs,
            curve.hit_ratio(1_000_000_000).unwrap_or(0.0),
            curve.ceiling().unwrap_or(0.0),
            requests as f64 / policy_secs,
            served.hit_ratio().unwrap_or(0.0)
        );
        samples.push((keys, stream, curve, trace));
    }
    println!();
    println!("| distinct keys | sample | sampled requests | LRU mean abs. error (pp) | LRU max (pp) | policy mean abs. error (pp) | policy max (pp) |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (keys, stream, exact, trace) in &samples {
        let ws: u64 = (0..*keys).map(size).sum();
        let capacities: Vec<u64> = (0..20).map(|i| (ws as f64 * 10f64.powf(-2.0 + 2.0 * i as f64 / 19.0)) as u64).collect();
        let policy = |t: &Trace, c: u64| simulate(t, &Policy { capacity_bytes: c, cleanup_threshold: 0.9, eviction_target: 0.8, retention_ms: None }).hit_ratio().unwrap_or(0.0);
        let exact_policy: Vec<f64> = capacities.iter().map(|c| policy(trace, *c)).collect();
        for rate in [0.1, 0.01] {
            let kept: Vec<u64> = stream.iter().copied().filter(|k| sampled(key_hash(Some(*k), ""), rate)).collect();
            let mut stack = StackDistances::with_capacity(kept.len());
            let d: Vec<u64> = kept.iter().map(|&k| stack.access(k, size(k)).map(|d| (d as f64 / rate).round() as u64).unwrap_or(NONE)).collect();
            let curve = Curve::new(&d);
            let t = Trace {
                ops: kept.iter().enumerate().map(|(i, &k)| Op::new(i as i64, OpKind::MissStored, k as u32, size(k))).collect(),
                from_ms: 0,
                cleanup_retention_ms: vec![],
                keys: *keys as u32,
                sample_rate: Some(rate),
            };
            // SHARDS-adj: the difference between the expected and the actual number of sampled
            // requests is hot keys' (over- or under-sampled); counted as hits at any size.
            let expected = rate * stream.len() as f64;
            let adj = |hits: f64| (hits + expected - kept.len() as f64) / expected;
            let lru_err: Vec<f64> = capacities.iter().map(|c| (adj(curve.hit_ratio(*c).unwrap() * kept.len() as f64) - exact.hit_ratio(*c).unwrap()).abs() * 100.0).collect();
            let pol_err: Vec<f64> = capacities
                .iter()
                .zip(&exact_policy)
                .map(|(c, e)| (adj(policy(&t, (*c as f64 * rate).round() as u64) * kept.len() as f64) - e).abs() * 100.0)
                .collect();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
            println!(
                "| {keys} | {rate} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                kept.len(),
                mean(&lru_err),
                max(&lru_err),
                mean(&pol_err),
                max(&pol_err)
            );
        }
    }
}
