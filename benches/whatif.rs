//! The exact LRU curve's one pass (`whatif::StackDistances`) and one simulation of the
//! engine's policy at one capacity (`whatif::policy::simulate`): requests per second on one
//! core, Zipf-popular keys (exponent 1.0) with cache-file sizes of 5-50 kB, for 100k and 1M
//! distinct keys.
//!
//! ```sh
//! taskset -c 0 cargo bench --bench whatif                  # 10M requests each
//! WHATIF_BENCH_REQUESTS=1000000 cargo bench --bench whatif
//! ```

use std::time::Instant;

use cachescope::whatif::curve::NONE;
use cachescope::whatif::policy::{simulate, Policy};
use cachescope::whatif::trace::{Op, OpKind, Trace};
use cachescope::whatif::{Curve, StackDistances};
use rand::{Rng, SeedableRng};

fn main() {
    let requests: usize = std::env::var("WHATIF_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    println!("| distinct keys | requests | LRU pass (s) | LRU requests/s | LRU hit ratio at 1 GB | ceiling | policy at 1 GB (s) | policy requests/s | policy hit ratio at 1 GB |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for keys in [100_000u64, 1_000_000] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(keys);
        // Zipf(1.0) by inverse transform over the keys' cumulative weights.
        let mut cum = Vec::with_capacity(keys as usize);
        let mut acc = 0.0;
        for r in 0..keys {
            acc += 1.0 / (r + 1) as f64;
            cum.push(acc);
        }
        let size = |k: u64| 5_000 + (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 45_000;
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
    }
}
