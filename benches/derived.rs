//! The SLO's questions answered from the derived tables (`request_minutes`, kept by the
//! ingester) against the same questions answered from the events (the baseline: a copy of
//! the same database without its derived tables, which readers then compute from `events`),
//! over a large events database, in the same run: wall time and peak RSS of each whole
//! command. Also the ingest itself, derived tables included.
//!
//! ```sh
//! cargo build --release && cargo bench --bench derived             # 10M lines
//! DERIVED_BENCH_LINES=100000000 cargo bench --bench derived        # 100M lines, in 10 parts
//! DERIVED_BENCH_KEEP=/tmp/10m.duckdb cargo bench --bench derived    # keep the database
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{make_log_part, run};

/// Lines per part of the log (and per `ingest`).
const PART_LINES: usize = 10_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--drop-derived" {
        // In a process of its own: a forked child's peak RSS counts its parent's pages until
        // it execs, so the measuring process must stay small.
        duckdb::Connection::open(&args[2])
            .unwrap()
            .execute_batch(
                "DROP TABLE request_minutes; DROP TABLE request_minutes_stage; DROP TABLE miss_causes; DROP TABLE classify_batch;
                 DROP TABLE classify_carry; DROP TABLE classify_state; DROP TABLE derived_tables; CHECKPOINT;",
            )
            .unwrap();
        return;
    }
    let lines: usize = std::env::var("DERIVED_BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
    let cachescope = PathBuf::from(&target).join("release/cachescope");
    assert!(cachescope.exists(), "build the binary first: cargo build --release ({})", cachescope.display());
    let dir = tempfile::tempdir().unwrap();
    // In parts of at most 10M lines (3.1 GB of text each), one `ingest` each, in order.
    let db = dir.path().join("derived.duckdb");
    let mut ingest = common::Run { secs: 0.0, max_rss_mb: 0.0 };
    for first in (0..lines).step_by(PART_LINES) {
        let log = make_log_part(dir.path(), first, PART_LINES.min(lines - first));
        unsafe { libc::sync() };
        let part = run(Command::new(&cachescope).arg("ingest").arg("--db").arg(&db).arg(&log));
        ingest.secs += part.secs;
        ingest.max_rss_mb = ingest.max_rss_mb.max(part.max_rss_mb);
        let _ = std::fs::remove_file(&log);
    }
    let db_mb = std::fs::metadata(&db).unwrap().len() as f64 / 1e6;
    // The baseline: the same database as one written before the derived tables.
    let events_only = dir.path().join("events-only.duckdb");
    std::fs::copy(&db, &events_only).unwrap();
    run(Command::new(std::env::current_exe().unwrap()).arg("--drop-derived").arg(&events_only));
    let reclassify = run(Command::new(&cachescope).arg("reclassify").arg("--db").arg(&db));
    println!("{lines} lines; events database {db_mb:.0} MB");
    println!("ingest (both cores, derived tables included): {:.2} s, {:.0} lines/s, peak RSS {:.0} MB", ingest.secs, lines as f64 / ingest.secs, ingest.max_rss_mb);
    println!("reclassify (rebuild from events): {:.2} s, peak RSS {:.0} MB", reclassify.secs, reclassify.max_rss_mb);
    println!();
    println!("| command | derived tables (s) | peak RSS (MB) | from events (s) | peak RSS (MB) | time ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let commands: [(&str, &[&str]); 4] = [
        ("slo", &["slo"]),
        ("slo --format json", &["slo", "--format", "json"]),
        ("report --format json", &["report", "--format", "json"]),
        ("incident --last-alert", &["incident", "--last-alert"]),
    ];
    for (name, args) in commands {
        let on = |db: &Path| run(Command::new(&cachescope).args(args).arg("--db").arg(db).stderr(std::process::Stdio::null()));
        let (d, e) = (on(&db), on(&events_only));
        println!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2}x |",
            d.secs,
            d.max_rss_mb,
            e.secs,
            e.max_rss_mb,
            e.secs / d.secs
        );
    }
    if let Ok(keep) = std::env::var("DERIVED_BENCH_KEEP") {
        std::fs::copy(&db, &keep).unwrap();
        println!("database kept: {keep}");
    }
}
