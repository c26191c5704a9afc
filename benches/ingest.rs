//! Catch-up ingest benchmark: `cachescope ingest` against the way a person would do it by
//! hand with DuckDB (`read_csv` + `regexp_extract` into the same columns) and against
//! `grep -c "Cache MISS"` (the floor), on the same file, in one run: each pinned to one core,
//! or with `INGEST_BENCH_CORES=all` each free to use the machine (DuckDB by hand at its
//! default threads; cachescope parsing and appending on two threads).
//!
//! ```sh
//! cargo bench --bench ingest            # 1M and 10M lines (needs ~3.5 GB in $TMPDIR)
//! INGEST_BENCH_LINES=1000000 cargo bench --bench ingest
//! INGEST_BENCH_CORES=all cargo bench --bench ingest
//! ```

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{make_log, run};

/// What DuckDB by hand looks like: every field pulled out with a regex.
const BY_HAND: &str = r#"
SET threads = 1;
CREATE TABLE events AS
SELECT
    strptime(regexp_extract(line, '^(\S+)', 1), '%Y-%m-%dT%H:%M:%S.%fZ') AS ts,
    regexp_extract(line, '^\S+ (\S+)', 1) AS level,
    regexp_extract(line, ' event=(\S+)', 1) AS event,
    regexp_extract(line, ' symbol=(\S+)', 1) AS symbol,
    regexp_extract(line, ' feature_set=(\S+)', 1) AS feature_set,
    regexp_extract(line, ' key=(\S+)', 1) AS key,
    regexp_extract(line, ' slot=(\S+)', 1) AS slot,
    regexp_extract(line, ' reason=(\S+)', 1) AS reason,
    regexp_extract(line, ' outcome=(\S+)', 1) AS outcome,
    TRY_CAST(regexp_extract(line, ' bytes=(\d+)', 1) AS BIGINT) AS bytes,
    TRY_CAST(regexp_extract(line, ' latency_us=(\d+)', 1) AS BIGINT) AS latency_us,
    CASE WHEN line LIKE '%event=hit %' THEN NULL ELSE line END AS raw
FROM read_csv(?, columns = {'line': 'VARCHAR'}, delim = '\x01', quote = '', escape = '',
              header = false, auto_detect = false);
"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let all_cores = std::env::var("INGEST_BENCH_CORES").is_ok_and(|v| v == "all");
    if args.len() == 4 && args[1] == "--by-hand" {
        let c = duckdb::Connection::open(&args[2]).unwrap();
        if !all_cores {
            c.execute_batch("SET threads = 1;").unwrap();
        }
        let sql = BY_HAND.replace("SET threads = 1;", "");
        c.execute(&sql, [&args[3]]).unwrap();
        return;
    }
    let counts: Vec<usize> = match std::env::var("INGEST_BENCH_LINES") {
        Ok(v) => v.split(',').map(|x| x.parse().unwrap()).collect(),
        Err(_) => vec![1_000_000, 10_000_000],
    };
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")));
    let cachescope = PathBuf::from(&target).join("release/cachescope");
    assert!(cachescope.exists(), "build the binary first: cargo build --release ({})", cachescope.display());
    let me = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    println!("| lines | MB | tool | seconds | lines/s | MB/s | peak RSS (MB) | vs cachescope |");
    println!("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for n in counts {
        let log = make_log(dir.path(), n);
        // Write the fresh log out before timing: otherwise the first tool measured competes
        // with the kernel writing back gigabytes of dirty pages.
        unsafe { libc::sync() };
        let mb = std::fs::metadata(&log).unwrap().len() as f64 / 1e6;
        let db1 = dir.path().join(format!("cs-{n}.duckdb"));
        let cores = if all_cores { "0,1" } else { "0" };
        let ours = run(Command::new("taskset").args(["-c", cores]).arg(&cachescope).arg("ingest").arg("--db").arg(&db1).arg(&log));
        let db2 = dir.path().join(format!("hand-{n}.duckdb"));
        let hand = run(Command::new("taskset").args(["-c", cores]).arg(&me).arg("--by-hand").arg(&db2).arg(&log));
        let grep = run(Command::new("taskset").args(["-c", cores]).args(["grep", "-c", "Cache MISS"]).arg(&log));
        for (name, r) in [("cachescope ingest", &ours), ("DuckDB by hand (read_csv + regexp_extract)", &hand), ("grep -c \"Cache MISS\" (floor)", &grep)] {
            println!(
                "| {n} | {mb:.0} | {name} | {:.2} | {:.0} | {:.0} | {:.0} | {:.2}x |",
                r.secs,
                n as f64 / r.secs,
                mb / r.secs,
                r.max_rss_mb,
                r.secs / ours.secs
            );
        }
        for p in [&log, &db1, &db2] {
            let _ = std::fs::remove_file(p);
        }
    }
}
