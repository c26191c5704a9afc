//! Tail latency: lines written at a steady rate to a log that `cachescope tail` follows; how
//! long from a line's write until a query through the tailer's socket sees it (p50/p99).
//!
//! ```sh
//! cargo build --release && cargo bench --bench tail_latency      # 100k lines/s for 5 s
//! TAIL_BENCH_RATE=20000 TAIL_BENCH_SECS=10 cargo bench --bench tail_latency
//! TAIL_BENCH_MIX=1 cargo bench --bench tail_latency   # the mixed day's lines, not only hits
//! RUST_LOG=cachescope=debug TAIL_BENCH_STDERR=/tmp/tail.err cargo bench --bench tail_latency
//! ```
//!
//! By default every line is an ordinary hit: the cheapest line there is (no classification,
//! no episode). `TAIL_BENCH_MIX` writes the mixed day's log instead (misses, evictions,
//! invalidations, failures: what the derived tables work on), cycled, each line's time
//! moving on at the rate written.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cachescope::query::Session;

fn main() {
    let rate: u64 = std::env::var("TAIL_BENCH_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let secs: u64 = std::env::var("TAIL_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
    let bin = PathBuf::from(target).join("release/cachescope");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trading-system.log");
    let db = dir.path().join("events.duckdb");
    std::fs::write(&log, "2026-11-24T14:30:00.000000Z INFO cachescope::engine: FeatureStore started event=startup\n").unwrap();
    let mut tail = Command::new(&bin)
        .args(["tail", "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        // TAIL_BENCH_STDERR=FILE keeps the tailer's stderr (with RUST_LOG=cachescope=debug:
        // each commit's parts, timed).
        .stderr(match std::env::var_os("TAIL_BENCH_STDERR") {
            Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
            None => Stdio::null(),
        })
        .spawn()
        .unwrap();
    let sock = cachescope::query::socket_path(&db);
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "tail did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let total = rate * secs;
    let batch = (rate / 100).max(1); // every 10 ms
    let mix: Option<Vec<String>> = std::env::var_os("TAIL_BENCH_MIX").map(|_| {
        let z = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mixed_day/trading-system.log.zst")).unwrap();
        let text = String::from_utf8(zstd::decode_all(&z[..]).unwrap()).unwrap();
        text.lines().filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string())).collect()
    });
    let first = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(14, 30, 0).unwrap();
    let start = Instant::now();
    // Writer: line i (1-based after the startup line) written at writes[i].
    let writer = {
        let log = log.clone();
        let mix = mix.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let mut writes = Vec::with_capacity(total as usize);
            let mut n = 0u64;
            let mut buf = String::new();
            while n < total {
                let due = start + Duration::from_micros(n * 1_000_000 / rate);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                buf.clear();
                for _ in 0..batch.min(total - n) {
                    n += 1;
                    match &mix {
                        Some(lines) => {
                            let ts = first + chrono::Duration::microseconds((n * 1_000_000 / rate) as i64);
                            let rest = &lines[(n as usize - 1) % lines.len()];
                            buf.push_str(&format!("{} {rest}\n", ts.format("%Y-%m-%dT%H:%M:%S%.6fZ")));
                        }
                        None => buf.push_str(&format!(
                            "2026-11-24T14:30:00.000000Z INFO cachescope::engine: Cache HIT for AAPL event=hit op=get_or_compute symbol=AAPL feature_set=returns key={n:016x} bytes=1 latency_us=1\n"
                        )),
                    }
                }
                f.write_all(buf.as_bytes()).unwrap();
                let at = start.elapsed();
                while (writes.len() as u64) < n {
                    writes.push(at);
                }
            }
            writes
        })
    };
    // Reader: how many lines are queryable, as often as the socket answers.
    let session = Session::Socket(cachescope::query::SocketClient::connect(&sock).unwrap());
    let mut seen: Vec<(Duration, u64)> = Vec::new();
    loop {
        // Every line is an event (the startup line too, before the first written).
        let counted = if mix.is_some() { "SELECT count(*) - 1 FROM events" } else { "SELECT count(*) FROM events WHERE event = 'hit'" };
        let r = session.query(counted, &[]).unwrap();
        let n = r.rows[0][0].as_u64().unwrap_or(0);
        seen.push((start.elapsed(), n));
        if n >= total || start.elapsed() > Duration::from_secs(secs + 30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let writes = writer.join().unwrap();
    // The tailer's peak resident memory (it also served every query above).
    let status = std::fs::read_to_string(format!("/proc/{}/status", tail.id())).unwrap_or_default();
    let peak_mb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0);
    unsafe { libc::kill(tail.id() as i32, libc::SIGTERM) };
    let _ = tail.wait();
    let mut lat: Vec<f64> = Vec::with_capacity(writes.len());
    let mut j = 0;
    for (i, w) in writes.iter().enumerate() {
        while j < seen.len() && seen[j].1 < (i as u64 + 1) {
            j += 1;
        }
        if j == seen.len() {
            break;
        }
        lat.push((seen[j].0.saturating_sub(*w)).as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    println!("| rate (lines/s) | lines | queryable | p50 (ms) | p99 (ms) | max (ms) | polls | tail peak RSS (MB) |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {rate} | {total} | {} | {:.1} | {:.1} | {:.1} | {} | {:.0} |",
        lat.len(),
        p(0.5),
        p(0.99),
        lat.last().copied().unwrap_or(0.0),
        seen.len(),
        peak_mb
    );
}
