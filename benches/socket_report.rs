//! Reports and queries through a running tailer's socket against the same on the file
//! opened directly, over a large events database: wall time of each command, the direct
//! command's peak RSS, and the tailer's peak RSS (VmHWM) against its budget plus the
//! per-query cap (`tail --query-memory`).
//!
//! ```sh
//! cargo build --release && cargo bench --bench socket_report       # 10M lines
//! SOCKET_BENCH_LINES=1000000 SOCKET_BENCH_QUERY_MEMORY=500MB cargo bench --bench socket_report
//! ```

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{make_log, run};

/// The tailer's own budget (docs/ingest.md, BENCHMARKS.md).
const TAILER_BUDGET_MB: f64 = 150.0;

/// A heavy ad hoc query: every miss classified, by cause.
const QUERY: &str = "SELECT cause, count(*) AS misses FROM miss_causes GROUP BY ALL ORDER BY misses DESC";

fn vm_hwm_mb(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

fn main() {
    let lines: usize = std::env::var("SOCKET_BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let query_memory = std::env::var("SOCKET_BENCH_QUERY_MEMORY").unwrap_or_else(|_| "1000MB".into());
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
    let cachescope = PathBuf::from(&target).join("release/cachescope");
    assert!(cachescope.exists(), "build the binary first: cargo build --release ({})", cachescope.display());
    let dir = tempfile::tempdir().unwrap();
    let log = make_log(dir.path(), lines);
    let db = dir.path().join("ev.duckdb");
    run(Command::new(&cachescope).arg("ingest").arg("--db").arg(&db).arg(&log));
    let db_mb = std::fs::metadata(&db).unwrap().len() as f64 / 1e6;
    let report = |c: &mut Command| {
        c.arg("report").args(["--format", "json", "--db"]).arg(&db);
    };
    let sql = |c: &mut Command| {
        c.arg("sql").args(["--format", "csv", "--db"]).arg(&db).arg(QUERY);
    };
    // Direct: the file is free.
    let mut direct = Vec::new();
    for (name, how) in [("report --format json", &report as &dyn Fn(&mut Command)), ("sql (misses by cause)", &sql)] {
        let mut c = Command::new(&cachescope);
        how(&mut c);
        direct.push((name, run(&mut c)));
    }
    // Through a tailer that holds the file (already caught up).
    let mut tail = Command::new(&cachescope)
        .args(["tail", "--query-memory", &query_memory, "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = PathBuf::from(format!("{}.sock", db.display()));
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(120), "the tailer never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let idle_hwm = vm_hwm_mb(tail.id());
    let mut socket = Vec::new();
    for (name, how) in [("report --format json", &report as &dyn Fn(&mut Command)), ("sql (misses by cause)", &sql)] {
        let mut c = Command::new(&cachescope);
        how(&mut c);
        socket.push((name, run(&mut c)));
    }
    let hwm = vm_hwm_mb(tail.id());
    unsafe { libc::kill(tail.id() as i32, libc::SIGTERM) };
    tail.wait().unwrap();
    let cap: f64 = query_memory.trim_end_matches("MB").parse().unwrap_or(f64::NAN);
    println!("{lines} lines, events database {db_mb:.0} MB, tail --query-memory {query_memory}");
    println!();
    println!("| command | direct (s) | direct peak RSS (MB) | through tail (s) | ratio |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for ((name, d), (_, s)) in direct.iter().zip(&socket) {
        println!("| {name} | {:.2} | {:.0} | {:.2} | {:.2}x |", d.secs, d.max_rss_mb, s.secs, s.secs / d.secs);
    }
    println!();
    println!(
        "tailer peak RSS: {idle_hwm:.0} MB before the queries, {hwm:.0} MB after (budget {TAILER_BUDGET_MB:.0} MB + query cap {cap:.0} MB = {:.0} MB)",
        TAILER_BUDGET_MB + cap
    );
}
