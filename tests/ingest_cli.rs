//! `cachescope ingest` on real files: formats, bad input, kill -9 and restart, locks.

use std::io::Write;
mod common;

use std::path::Path;
use std::process::Command as StdCommand;
use std::time::Duration;

use assert_cmd::Command;

fn cachescope() -> Command {
    let mut c = Command::cargo_bin("cachescope").unwrap();
    c.env_remove("CACHESCOPE_DB");
    c
}

fn query_i64(db: &Path, sql: &str) -> i64 {
    let c = duckdb::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn engine_line(n: u64) -> String {
    format!(
        "{} INFO cachescope::engine: Cache MISS for S{} event=miss op=get_or_compute symbol=S{} feature_set=returns key=k{n:010} slot=s{} bytes=10 latency_us=5 reason=new_key outcome=stored\n",
        common::engine_ts(n),
        n % 50,
        n % 50,
        n % 7
    )
}

/// An ordinary engine hit (stored in `hit_rows`), with a key unique to `n`.
fn hit_line(n: u64) -> String {
    format!(
        "{} INFO cachescope::engine: Cache HIT for S{} event=hit op=get_or_compute symbol=S{} feature_set=returns key={n:016x} slot=s{} bytes=10 latency_us=5\n",
        common::engine_ts(n),
        n % 50,
        n % 50,
        n % 7
    )
}

/// A log of `n` engine lines: a miss every `miss_every` lines, hits otherwise (so both
/// tables are written).
fn mixed_log(path: &Path, n: u64, miss_every: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let line = if i % miss_every == 0 { engine_line(i) } else { hit_line(i) };
        f.write_all(line.as_bytes()).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// `cachescope ingest [extra] --db DB LOG`, killed with SIGKILL after `delay_ms`.
fn ingest_killed_after(extra: &[&str], db: &Path, log: &Path, delay_ms: u64) {
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("cachescope"))
        .arg("ingest")
        .args(extra)
        .arg("--db")
        .arg(db)
        .arg(log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(delay_ms));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

fn fixture_log(dir: &Path, scenario: &str) -> std::path::PathBuf {
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/{scenario}/trading-system.log.zst"))).unwrap();
    let p = dir.join("trading-system.log");
    std::fs::write(&p, zstd::decode_all(&z[..]).unwrap()).unwrap();
    p
}

#[test]
fn a_fixture_log_ingests_every_line_once_and_a_rerun_adds_nothing() {
    let d = tempfile::tempdir().unwrap();
    let log = fixture_log(d.path(), "disk_full");
    let db = d.path().join("ev.duckdb");
    let lines = std::fs::read_to_string(&log).unwrap().lines().count() as i64;
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("ingested {lines} lines ({lines} events, 0 quarantined")), "{text}");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), lines);
    // Raw lines are kept for everything but hits.
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events WHERE event = 'hit' AND raw IS NOT NULL"), 0);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events WHERE event <> 'hit' AND raw IS NULL"), 0);
    assert!(query_i64(&db, "SELECT count(*) FROM miss_events WHERE reason = 'write_failed'") > 0);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM events WHERE event = 'write_failed' AND error LIKE '%os error 28%'"),
        query_i64(&db, "SELECT count(*) FROM events WHERE event = 'write_failed'")
    );
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert!(out.status.success());
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), lines);
    // CACHESCOPE_DB names the database when --db is absent.
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(engine_line(1).as_bytes()).unwrap();
    let out = cachescope().arg("ingest").arg(&log).env("CACHESCOPE_DB", &db).output().unwrap();
    assert!(out.status.success());
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), lines + 1);
}

#[test]
fn kill_9_at_any_moment_then_restart_gives_the_same_table() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("big.log");
    let n = 300_000u64;
    // Hits and misses: both tables are written in each transaction.
    mixed_log(&log, n, 4);
    let db = d.path().join("ev.duckdb");
    for delay_ms in [30u64, 90, 150, 250] {
        ingest_killed_after(&["--batch-lines", "5000"], &db, &log, delay_ms);
    }
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), n as i64);
    assert_eq!(query_i64(&db, "SELECT count(DISTINCT key) FROM events"), n as i64);
    assert_eq!(query_i64(&db, "SELECT max(line_no) FROM events"), n as i64);
}

#[test]
fn bad_bytes_are_quarantined_with_file_and_offset_and_the_rest_is_kept() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("bad.log");
    let mut body = Vec::new();
    body.extend_from_slice(engine_line(1).as_bytes());
    body.extend_from_slice(b"\xff\xfe not utf8\n");
    body.extend_from_slice(b"NUL \x00\x00 bytes\n");
    body.extend_from_slice(&vec![b'y'; (1 << 20) + 100]);
    body.push(b'\n');
    body.extend_from_slice(b"2026-11-26T14:30:00Z INFO cachescope::engine: no event field\n");
    body.extend_from_slice(b"not-a-time INFO cachescope::engine: m event=hit\n");
    let good2 = engine_line(2);
    body.extend_from_slice(good2.as_bytes());
    std::fs::write(&log, &body).unwrap();
    let db = d.path().join("ev.duckdb");
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "partial ingest has its own exit code");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("5 lines quarantined"), "{err}");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 2);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM ingest_errors"), 5);
    let first_bad = engine_line(1).len() as i64;
    assert_eq!(query_i64(&db, "SELECT byte_offset FROM ingest_errors WHERE line_no = 2"), first_bad);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM ingest_errors WHERE error LIKE '%UTF-8%'"), 1);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM ingest_errors WHERE error LIKE '%longer than%'"), 1);
    assert_eq!(query_i64(&db, "SELECT max(length(prefix)) FROM ingest_errors"), 512);
    assert_eq!(query_i64(&db, "SELECT line_no FROM events WHERE key = 'k0000000002'"), 7);
}

/// A line dated by a corrupt clock (an unset one's 1970, a garbled year 9999) is quarantined:
/// kept, it stretched every default period to it, and from the year 9999 on every analysis
/// failed (DuckDB cannot read back a time past it). A time past the accepted ones on the
/// command line is a usage error, not DuckDB's.
#[test]
fn lines_dated_by_a_corrupt_clock_are_quarantined_and_the_analyses_go_on() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    let mut body = String::new();
    for n in 0..200 {
        body.push_str(&if n % 10 == 0 { engine_line(n) } else { hit_line(n) });
    }
    let good = hit_line(500);
    let ts_len = good.find(' ').unwrap();
    for bogus in ["9999-12-31T23:59:59.999999Z", "1970-01-01T00:00:00.000000Z", "2262-04-12T00:00:00.000000Z"] {
        body.push_str(&format!("{bogus}{}", &good[ts_len..]));
    }
    body.push_str(&hit_line(201));
    std::fs::write(&log, &body).unwrap();
    let db = d.path().join("ev.duckdb");
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 201);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM ingest_errors WHERE error LIKE '%outside the times cachescope accepts (2000-01-01 .. 2199-12-31)%'"),
        3
    );
    let last = common::engine_ts(201);
    for args in [&["report", "--format", "json"][..], &["slo", "--format", "json"], &["whatif", "--format", "json"]] {
        let out = cachescope().args(args).arg("--db").arg(&db).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!text.contains("9999-12") && !text.contains("1970-01") && !text.contains("2262-04"), "{args:?}: {text}");
        assert!(text.contains(&last[..16]), "{args:?} ends at the last line ({last}): {text}");
    }
    let out = cachescope()
        .args(["report", "--from", "2026-01-01T00:00:00Z", "--until", "9999-12-31T23:59:59Z", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--until `9999-12-31T23:59:59Z` is after the times cachescope handles"), "{err}");
}

/// Python's asctime is the writing host's wall clock: `--timezone` reads it in that zone (New
/// York's offset changes in the log's year); times that say their zone (the engine's `Z`) are
/// kept as they are, and an unknown zone is a usage error.
#[test]
fn times_without_a_zone_are_read_in_the_zone_given() {
    let d = tempfile::tempdir().unwrap();
    let py = d.path().join("trading-system.log");
    std::fs::write(&py, "2026-11-24 09:30:00,250 - fs - INFO - Cache MISS for AAPL\n2026-07-01 09:30:00 - fs - INFO - Cache MISS for MSFT\n").unwrap();
    let engine = d.path().join("engine.log");
    std::fs::write(&engine, engine_line(1)).unwrap();
    let db = d.path().join("ev.duckdb");
    cachescope().args(["ingest", "--timezone", "America/New_York", "--db"]).arg(&db).arg(&py).arg(&engine).assert().success();
    let at = |sql: &str| {
        let c = duckdb::Connection::open(&db).unwrap();
        c.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap()
    };
    assert_eq!(at("SELECT strftime(ts, '%Y-%m-%d %H:%M:%S.%f') FROM events WHERE symbol = 'AAPL'"), "2026-11-24 14:30:00.250000");
    assert_eq!(at("SELECT strftime(ts, '%Y-%m-%d %H:%M:%S') FROM events WHERE symbol = 'MSFT'"), "2026-07-01 13:30:00");
    assert_eq!(at("SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S.%fZ') FROM events WHERE key = 'k0000000001'"), common::engine_ts(1));
    let out = cachescope().args(["ingest", "--timezone", "New York", "--db"]).arg(&db).arg(&py).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("America/New_York"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The files of one run share transactions: 20 small files make one commit (a commit's
/// derived-table work has a fixed cost: 300 files took 44 s at a commit each), or one per
/// `--batch-lines`; every line lands once, and a second run adds nothing.
#[test]
fn many_small_files_are_committed_together() {
    let d = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for f in 0..20u64 {
        let p = d.path().join(format!("part-{f:02}.log"));
        let body: String = (f * 30..f * 30 + 30).map(|n| if n % 4 == 0 { engine_line(n) } else { hit_line(n) }).collect();
        std::fs::write(&p, body).unwrap();
        files.push(p);
    }
    let commits = |db: &Path, extra: &[&str]| {
        let out = cachescope().env("RUST_LOG", "cachescope=debug").arg("ingest").args(extra).arg("--db").arg(db).args(&files).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(" committed ")).count()
    };
    let db = d.path().join("one.duckdb");
    assert_eq!(commits(&db, &[]), 1);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 600);
    assert_eq!(query_i64(&db, "SELECT sum(events) FROM ingest_files"), 600);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM miss_causes"), 150);
    assert_eq!(commits(&db, &[]), 0, "nothing new");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 600);
    let db = d.path().join("batches.duckdb");
    assert_eq!(commits(&db, &["--batch-lines", "100"]), 5, "a commit once 120 lines wait");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 600);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM miss_causes"), 150);
}

/// Logs given out of time order (a shell's glob: `part-1, part-10, part-11, part-2, ...`)
/// are read oldest first, by their first line: their misses are classified in the log's
/// order and agree with the engine's reasons as when the day is read whole.
#[test]
fn logs_given_out_of_order_are_read_oldest_first() {
    let d = tempfile::tempdir().unwrap();
    let whole = fixture_log(d.path(), "mixed_day");
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let per = lines.len().div_ceil(12);
    let mut parts: Vec<std::path::PathBuf> = Vec::new();
    for (i, chunk) in lines.chunks(per).enumerate() {
        let p = d.path().join(format!("part-{}", i + 1));
        std::fs::write(&p, chunk.join("\n") + "\n").unwrap();
        parts.push(p);
    }
    parts.sort();
    assert_eq!(parts[1].file_name().unwrap(), "part-10", "the shell's order");
    let agree = |db: &Path| query_i64(db, "SELECT count(*) FILTER (WHERE cause = logged_reason) - count(*) FROM miss_causes");
    let db = d.path().join("parts.duckdb");
    let out = cachescope().args(["ingest", "--batch-lines", "2000", "--db"]).arg(&db).args(&parts).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let whole_db = d.path().join("whole.duckdb");
    cachescope().arg("ingest").arg("--db").arg(&whole_db).arg(&whole).assert().success();
    assert_eq!(agree(&whole_db), 0);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM miss_causes"), query_i64(&whole_db, "SELECT count(*) FROM miss_causes"));
    assert_eq!(agree(&db), 0, "every miss's cause as the engine logged it");
    assert_eq!(query_i64(&db, "SELECT coalesce(sum(late_events), 0) FROM classify_state"), 0, "no line read late");
}

/// A directory, a pipe or a device given as a log is reported and skipped by `ingest` (the
/// other logs are read) and refused by `tail` at once: a pipe cannot be read again from a
/// checkpoint, `/dev/zero` never ends, and a directory's logs are to be named.
#[test]
fn a_directory_a_pipe_or_a_device_is_not_read_as_a_log() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    mixed_log(&log, 50, 5);
    let dir = d.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    let fifo = d.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let db = d.path().join("ev.duckdb");
    let out = cachescope()
        .arg("ingest")
        .arg("--db")
        .arg(&db)
        .args([dir.as_path(), fifo.as_path(), Path::new("/dev/zero"), log.as_path()])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 file(s) not read") && err.contains("not a regular file") && err.contains("DIR/*.log"), "{err}");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 50, "the log beside them is read");
    let out = cachescope().arg("tail").arg("--db").arg(&db).arg(&log).arg(&dir).timeout(Duration::from_secs(60)).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{} is not a regular file", dir.display())), "{err}");
}

/// Quarantined lines name their file in every transaction of it, not only the first.
#[test]
fn quarantined_lines_name_their_file_in_every_batch() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    let mut body = String::new();
    for n in 1..=9 {
        body += &if n % 3 == 0 { format!("garbage line {n}\n") } else { engine_line(n) };
    }
    std::fs::write(&log, body).unwrap();
    let db = d.path().join("ev.duckdb");
    let out = cachescope().args(["ingest", "--batch-lines", "2", "--db"]).arg(&db).arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM ingest_errors"), 3);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM ingest_errors e JOIN ingest_files f USING (file_id) WHERE e.path = f.path"),
        3,
        "every quarantined line names the file and its path"
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 6);
}

#[test]
fn python_and_json_logs_are_recognised_and_unknown_files_reported() {
    let d = tempfile::tempdir().unwrap();
    let py = d.path().join("trading-system.log");
    std::fs::write(
        &py,
        "2026-11-26 09:30:00,123 - src.shared.feature_store - INFO - Cache MISS for AAPL\n\
         2026-11-26 09:30:00,456 - src.shared.feature_store - INFO - Cache HIT for AAPL\n\
         2026-11-26 09:30:01,000 - src.shared.feature_store - INFO - Cache key AAPL:returns invalidated\n\
         2026-11-26 09:30:02,000 - src.shared.feature_store - ERROR - MemoryError computing features for TSLA\n",
    )
    .unwrap();
    // Python's logging with `datefmt='%Y-%m-%d %H:%M:%S'`: whole seconds, no `,mmm`.
    let py_seconds = d.path().join("strategy.log");
    std::fs::write(
        &py_seconds,
        "2026-11-26 09:31:00 - strategy - INFO - Cache MISS for NVDA\n2026-11-26 09:31:01 - strategy - INFO - Cache HIT for NVDA\n",
    )
    .unwrap();
    let js = d.path().join("events.jsonl");
    std::fs::write(&js, "{\"ts\":\"2026-11-26T09:30:00Z\",\"event\":\"miss\",\"symbol\":\"MSFT\",\"reason\":\"new_key\"}\n").unwrap();
    let junk = d.path().join("junk.bin");
    std::fs::write(&junk, b"\x00\x01\x02\x03 binary\n\x7f\x7f\n").unwrap();
    let db = d.path().join("ev.duckdb");
    let out = cachescope().arg("ingest").arg("--db").arg(&db).args([&py, &py_seconds, &js, &junk]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("junk.bin: no known format"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("junk.bin (no known format)") && err.contains("--format-file"), "the error says what to do: {err}");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events JOIN ingest_files USING (file_id) WHERE format = 'python'"), 6);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events JOIN ingest_files USING (file_id) WHERE format = 'python' AND event = 'miss' AND symbol = 'AAPL'"), 1);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events JOIN ingest_files USING (file_id) WHERE format = 'python' AND event = 'compute_failed'"), 1);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events JOIN ingest_files USING (file_id) WHERE format = 'python' AND event = 'invalidation'"), 1);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events JOIN ingest_files USING (file_id) WHERE format = 'json' AND symbol = 'MSFT'"), 1);
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM events WHERE symbol = 'NVDA' AND ts >= TIMESTAMP '2026-11-26 09:31:00'"),
        2,
        "Python lines of whole seconds"
    );
    assert_eq!(query_i64(&db, "SELECT count(*) FROM ingest_files"), 3);
    // The trading system's log has no cache keys: the classification says so and stays coarse.
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM miss_causes WHERE symbol = 'AAPL' AND cause = 'new_symbol' AND basis LIKE '%no cache keys%'"),
        1
    );
}

#[test]
fn a_custom_format_file_is_used() {
    let d = tempfile::tempdir().unwrap();
    let fmt = d.path().join("myapp.toml");
    std::fs::write(
        &fmt,
        "name = \"myapp\"\nline = '^(?P<ts>\\S+ \\S+) \\[(?P<level>\\w+)\\] (?P<message>.*)$'\nts_format = \"%Y-%m-%d %H:%M:%S\"\n[events]\nmiss = 'cache miss (?P<symbol>\\S+)'\nhit = 'cache hit (?P<symbol>\\S+)'\n",
    )
    .unwrap();
    let log = d.path().join("app.log");
    std::fs::write(&log, "2026-11-26 09:30:00 [INFO] cache miss AAPL\n2026-11-26 09:30:01 [INFO] cache hit AAPL\n").unwrap();
    let db = d.path().join("ev.duckdb");
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg("--format-file").arg(&fmt).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events JOIN ingest_files USING (file_id) WHERE format = 'myapp' AND event IN ('hit', 'miss')"), 2);
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nline = '(?P<message>'\n").unwrap();
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg("--format-file").arg(&bad).arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}

#[test]
fn rotated_archives_backfill_without_counting_twice() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("app.log");
    let db = d.path().join("ev.duckdb");
    // Day 1: ingest part of the file.
    let day1: String = (0..100).map(engine_line).collect();
    std::fs::write(&live, &day1[..day1.len() / 2 + 7]).unwrap();
    assert!(cachescope().arg("ingest").arg("--db").arg(&db).arg(&live).output().unwrap().status.success());
    // The rest arrives, then logrotate renames and compresses it; a new live file starts.
    std::fs::write(&live, &day1).unwrap();
    let z = zstd::encode_all(day1.as_bytes(), 3).unwrap();
    std::fs::write(d.path().join("app.log.1.zst"), z).unwrap();
    std::fs::remove_file(&live).unwrap();
    // An older archive nobody ingested.
    let day0: String = (1000..1050).map(engine_line).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(day0.as_bytes()).unwrap();
    std::fs::write(d.path().join("app.log.2.gz"), gz.finish().unwrap()).unwrap();
    let day2: String = (2000..2030).map(engine_line).collect();
    std::fs::write(&live, &day2).unwrap();
    let out = cachescope().arg("ingest").arg("--rotated").arg("--db").arg(&db).arg(&live).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 180);
    assert_eq!(query_i64(&db, "SELECT count(DISTINCT key) FROM events"), 180);
}

#[test]
fn a_database_held_by_another_process_is_refused_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("ev.duckdb");
    let log = d.path().join("a.log");
    std::fs::write(&log, engine_line(1)).unwrap();
    assert!(cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap().status.success());
    let holder = cachescope::replay::LockHolder::start(&assert_cmd::cargo::cargo_bin("cachescope"), &db).unwrap();
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("PID {}", holder.pid())), "{err}");
    holder.release();
}


#[test]
fn a_database_on_a_full_disk_fails_the_commit_and_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    let _m = common::Mount::tmpfs(&mnt, "12m");
    let log = d.path().join("app.log");
    let n = 150_000u64;
    let mut f = std::fs::File::create(&log).unwrap();
    for i in 0..n {
        f.write_all(engine_line(i).as_bytes()).unwrap();
    }
    drop(f);
    let db = mnt.join("ev.duckdb");
    let out = cachescope().args(["ingest", "--batch-lines", "20000", "--db"]).arg(&db).arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "the full disk is an error: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.to_lowercase().contains("space") || err.contains("os error 28"), "{err}");
    // Move the database to a disk with room and go on: every line exactly once.
    let big = d.path().join("ev.duckdb");
    for ext in ["", ".wal"] {
        let from = std::path::PathBuf::from(format!("{}{ext}", db.display()));
        if from.exists() {
            std::fs::copy(&from, format!("{}{ext}", big.display())).unwrap();
        }
    }
    let out = cachescope().arg("ingest").arg("--db").arg(&big).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(query_i64(&big, "SELECT count(*) FROM events"), n as i64);
    assert_eq!(query_i64(&big, "SELECT count(DISTINCT key) FROM events"), n as i64);
}

#[test]
fn a_missing_or_empty_file_is_reported_and_the_others_are_read() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.log");
    std::fs::write(&good, engine_line(1) + &engine_line(2)).unwrap();
    let empty = d.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let gone = d.path().join("gone.log");
    let db = d.path().join("ev.duckdb");
    let out = cachescope().arg("ingest").arg("--db").arg(&db).args([&good, &empty, &gone]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("gone.log: vanished"), "{text}");
    assert!(text.contains("empty.log: waiting for a first line"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("1 file(s) not read: ") && err.contains("gone.log (vanished)"), "the error names the file: {err}");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 2);
}

#[test]
fn a_file_deleted_while_it_is_read_is_read_whole_or_reported_vanished() {
    // Deleting an open file leaves its content readable until it is closed: the ingester
    // finishes it. Deleted before it was opened, it is reported. Never a partial table.
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("doomed.log");
    let n = 400_000u64;
    mixed_log(&log, n, 8);
    let db = d.path().join("ev.duckdb");
    let bin = assert_cmd::cargo::cargo_bin("cachescope");
    let child = StdCommand::new(&bin)
        .args(["ingest", "--batch-lines", "50000", "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(60));
    std::fs::remove_file(&log).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let events = if db.exists() { query_i64(&db, "SELECT count(*) FROM events") } else { 0 };
    match out.status.code() {
        Some(0) => assert_eq!(events, n as i64, "read whole: {text}"),
        Some(3) => {
            assert!(text.contains("doomed.log: vanished"), "{text}");
            assert_eq!(events, 0);
        }
        other => panic!("exit {other:?}: {text} {}", String::from_utf8_lossy(&out.stderr)),
    }
}

#[test]
fn a_database_of_the_old_layout_is_upgraded_and_keeps_its_rows() {
    // Before `hit_rows`, every row was in a table named `events`.
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("old.duckdb");
    {
        let c = duckdb::Connection::open(&db).unwrap();
        c.execute_batch(
            "CREATE TABLE events (ts TIMESTAMP, level VARCHAR, event VARCHAR NOT NULL, symbol VARCHAR,
                feature_set VARCHAR, key VARCHAR, slot VARCHAR, reason VARCHAR, outcome VARCHAR,
                config VARCHAR, data_version VARCHAR, bytes BIGINT, latency_us BIGINT, error VARCHAR,
                message VARCHAR, raw VARCHAR, file_id VARCHAR NOT NULL, byte_offset BIGINT NOT NULL,
                line_no BIGINT NOT NULL);
             CREATE TABLE ingest_files (file_id VARCHAR PRIMARY KEY, path VARCHAR NOT NULL,
                paths VARCHAR NOT NULL, dev UBIGINT, inode UBIGINT, format VARCHAR,
                byte_offset BIGINT NOT NULL, line_no BIGINT NOT NULL, tail_hash VARCHAR NOT NULL,
                events BIGINT NOT NULL, quarantined BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL);
             CREATE TABLE ingest_errors (file_id VARCHAR NOT NULL, path VARCHAR NOT NULL,
                byte_offset BIGINT NOT NULL, line_no BIGINT NOT NULL, prefix VARCHAR NOT NULL,
                error VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL);
             INSERT INTO events (ts, level, event, symbol, key, raw, file_id, byte_offset, line_no)
                VALUES ('2026-11-25 10:00:00', 'INFO', 'miss', 'OLD', 'k-old', 'the old line', 'f-old', 0, 1);",
        )
        .unwrap();
    }
    // Read before any ingest: the report works on the old layout as it is.
    let out = cachescope().args(["report", "--db"]).arg(&db).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "a report reads the old layout: {}", String::from_utf8_lossy(&out.stderr));
    let log = d.path().join("app.log");
    std::fs::write(&log, hit_line(1) + &engine_line(2) + &hit_line(3)).unwrap();
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 4);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM event_rows WHERE symbol = 'OLD' AND raw = 'the old line'"), 1);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM hit_rows"), 2);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'events'"), 1);
    // The hits read back exactly as written.
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM events WHERE event = 'hit' AND key IN ('0000000000000001', '0000000000000003') AND symbol IN ('S1', 'S3') AND feature_set = 'returns'"),
        2
    );
    let out = cachescope().args(["report", "--db"]).arg(&db).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "a report reads the upgraded database: {}", String::from_utf8_lossy(&out.stderr));
    // The upgrade built the per-minute figures from every row, the old one's included.
    assert_eq!(query_i64(&db, "SELECT sum(hits + misses)::BIGINT FROM request_minutes"), 4);
    assert_eq!(query_i64(&db, "SELECT misses FROM request_minutes WHERE minute = '2026-11-25 10:00:00'"), 1);
}

/// The derived tables (figures, evaluations, causes, kept episodes): missing (a database
/// written before them, or rows committed by an ingester that does not keep them) they are
/// computed from the events by a reader, built by the next ingest, and `reclassify` rebuilds
/// them equal.
#[test]
fn derived_figures_are_built_on_upgrade_rebuilt_on_demand_and_read_the_same() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("events.duckdb");
    // The mixed day: 7 hours, long enough for clusters of signals to close.
    let log = fixture_log(d.path(), "mixed_day");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let slo = |expect_note: bool| -> String {
        let out = cachescope().args(["slo", "--format", "json", "--db"]).arg(&db).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(err.contains("written before its derived tables"), expect_note, "{err}");
        String::from_utf8(out.stdout).unwrap()
    };
    let report = || -> String {
        let out = cachescope().args(["report", "--format", "json", "--db"]).arg(&db).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let (slo_built, report_built) = (slo(false), report());
    let figures = |db: &Path| -> Vec<(String, String, i64, i64, i64)> {
        let c = duckdb::Connection::open(db).unwrap();
        let mut s = c
            .prepare("SELECT strftime(minute, '%H:%M'), feature_set, hits, misses, latency_us FROM request_minutes ORDER BY ALL")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).unwrap().map(|x| x.unwrap()).collect()
    };
    let built = figures(&db);
    assert!(built.len() > 10, "{built:?}");
    let kept = |db: &Path| query_i64(db, "SELECT count(*) FROM episode_clusters WHERE is_episode");
    let kept_built = kept(&db);
    assert!(kept_built > 3, "{kept_built} closed episodes");
    // An ingest that rebuilds them (nothing new to read), saying why it takes longer.
    let ingest_rebuilds = || {
        cachescope()
            .arg("ingest")
            .arg("--db")
            .arg(&db)
            .arg(&log)
            .assert()
            .success()
            .stderr(predicates::str::contains("a database without up-to-date derived tables: building them from its events, once (1 days)"));
    };
    // As a database written before the derived tables.
    {
        let c = duckdb::Connection::open(&db).unwrap();
        // Before the classification was kept, `miss_causes` was a view.
        c.execute_batch(
            "DROP TABLE request_minutes; DROP TABLE request_minutes_stage; DROP TABLE derived_tables;
             DROP TABLE evaluations_5m; DROP TABLE evaluations_stage;
             DROP TABLE miss_causes; DROP TABLE classify_batch; DROP TABLE classify_carry; DROP TABLE classify_state;
             DROP TABLE episode_clusters; DROP TABLE episode_state;
             CREATE VIEW miss_causes AS SELECT * FROM miss_causes_full;",
        )
        .unwrap();
    }
    assert_eq!(slo(true), slo_built, "a reader computes the same figures from the events");
    assert_eq!(report(), report_built);
    // The next ingest builds them.
    ingest_rebuilds();
    assert_eq!(figures(&db), built);
    assert_eq!(kept(&db), kept_built);
    // Once: the ingest after says nothing of it.
    let again = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert!(!String::from_utf8_lossy(&again.stderr).contains("derived tables"));
    assert_eq!(slo(false), slo_built);
    // As a database written just before the kept evaluations: a reader computes them from
    // `request_minutes` (and says so), the next ingest builds them alone, from those.
    let evaluations = |db: &Path| query_i64(db, "SELECT count(*) FROM evaluations_5m");
    let evaluations_built = evaluations(&db);
    assert!(evaluations_built > 10);
    duckdb::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TABLE evaluations_5m; DROP TABLE evaluations_stage; DELETE FROM derived_tables WHERE name = 'evaluations_5m';")
        .unwrap();
    let out = cachescope().args(["slo", "--format", "json", "--db"]).arg(&db).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("written before its kept 5-minute evaluations"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), slo_built);
    assert_eq!(report(), report_built);
    let episodes_before = query_i64(&db, "SELECT count(*) FROM episode_clusters");
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    assert_eq!(evaluations(&db), evaluations_built);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM derived_tables"), 4);
    assert_eq!(query_i64(&db, "SELECT count(*) FROM episode_clusters"), episodes_before, "the rest is left as it was");
    assert_eq!(report(), report_built);
    // Tampered with, `reclassify` rebuilds them from the events.
    let causes = |db: &Path| query_i64(db, "SELECT count(*) FROM miss_causes WHERE cause = 'evicted_capacity'");
    let evicted = causes(&db);
    assert!(evicted > 0);
    duckdb::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "UPDATE request_minutes SET hits = hits + 1; UPDATE miss_causes SET cause = 'unknown'; DELETE FROM episode_clusters;
             UPDATE evaluations_5m SET hits = hits - 1;",
        )
        .unwrap();
    assert_ne!(figures(&db), built);
    assert_ne!(report(), report_built);
    cachescope()
        .args(["reclassify", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(predicates::str::contains("rebuilt request_minutes, miss_causes, episode_clusters, evaluations_5m from the events of 1 days"));
    assert_eq!(figures(&db), built);
    assert_eq!(evaluations(&db), evaluations_built);
    assert_eq!(causes(&db), evicted);
    assert_eq!(kept(&db), kept_built);
    assert_eq!(report(), report_built);
    // Rows committed by an ingester that does not keep the derived tables (another version's,
    // after a rollback) move the events on without their record: readers compute from the
    // events and say so, and the next ingest rebuilds them.
    let recorded = || query_i64(&db, "SELECT events FROM derived_events");
    let events = query_i64(&db, "SELECT sum(events)::BIGINT FROM ingest_files");
    assert_eq!(recorded(), events, "each commit records the events the derived tables hold");
    duckdb::Connection::open(&db).unwrap().execute_batch("UPDATE ingest_files SET events = events + 3").unwrap();
    assert_eq!(slo(true), slo_built, "stale: computed from the events, with the note");
    ingest_rebuilds();
    assert_eq!(recorded(), events + 3);
    assert_eq!(slo(false), slo_built);
    assert_eq!(report(), report_built);
}

#[test]
fn rows_are_written_in_row_groups_of_64k_and_read_back_whole() {
    // queries/ingest_attach.sql: the ingester writes row groups of 65,536 rows (DuckDB's
    // default is 122,880), and an ordinary `duckdb` open reads them back.
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("rg.duckdb");
    let log = d.path().join("app.log");
    mixed_log(&log, 150_000, 10);
    let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let largest = |table: &str| {
        query_i64(
            &db,
            &format!(
                "SELECT max(n) FROM (SELECT row_group_id, sum(count) AS n FROM pragma_storage_info('{table}')
                 WHERE column_id = 0 AND segment_type <> 'VALIDITY' GROUP BY ALL)"
            ),
        )
    };
    let hits = largest("hit_rows");
    assert!(hits > 30_000 && hits <= 65_536, "135,000 hits in row groups of at most 64k rows, not {hits}");
    assert_eq!(largest("event_rows"), 15_000, "all 15,000 misses in one row group");
    assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 150_000);
    assert_eq!(query_i64(&db, "SELECT count(DISTINCT line_no) FROM events WHERE line_no BETWEEN 1 AND 150000"), 150_000);
}

/// A rotator compressing an archive leaves a truncated stream for a moment: it is skipped as
/// incomplete (not an error, not a rewritten file read again from the start), and read
/// from the checkpoint once complete. Each line once.
#[test]
fn a_compressed_archive_still_being_written_is_read_once_complete() {
    for compressed in ["gz", "zst"] {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        let db = d.path().join("ev.duckdb");
        let body: String = (0..3000).map(hit_line).collect();
        // The live file, read up to its 2,000th line; then rotated away and compressed.
        std::fs::write(&log, (0..2000).map(hit_line).collect::<String>()).unwrap();
        cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
        std::fs::remove_file(&log).unwrap();
        let full = match compressed {
            "gz" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(body.as_bytes()).unwrap();
                e.finish().unwrap()
            }
            _ => zstd::encode_all(body.as_bytes(), 3).unwrap(),
        };
        let archive = d.path().join(format!("app.log-20261130.{compressed}"));
        std::fs::write(&archive, &full[..full.len() * 2 / 3]).unwrap();
        let out = cachescope().args(["ingest", "--rotated", "--json", "--db"]).arg(&db).arg(&log).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("incomplete compressed archive"), "{compressed}: {text} {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 2000, "{compressed}: nothing read twice, nothing half-read");
        std::fs::write(&archive, &full).unwrap();
        cachescope().args(["ingest", "--rotated", "--db"]).arg(&db).arg(&log).output().unwrap();
        assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 3000, "{compressed}");
        assert_eq!(query_i64(&db, "SELECT count(DISTINCT key) FROM events"), 3000, "{compressed}");
    }
}

/// A new database is created under another name and renamed into place: `ingest` killed while
/// DuckDB writes the new file's header leaves no half-made database behind (it used to leave a
/// file DuckDB refused until deleted by hand), and what it left is cleaned up.
#[test]
fn kill_9_while_the_database_is_created_leaves_nothing_broken() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    mixed_log(&log, 2000, 4);
    for (i, delay_ms) in [0u64, 1, 2, 3, 5, 8, 12, 16, 20, 25, 30, 40].into_iter().enumerate() {
        let db = d.path().join(format!("ev{i}.duckdb"));
        ingest_killed_after(&[], &db, &log, delay_ms);
        let out = cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).output().unwrap();
        assert!(out.status.success(), "killed after {delay_ms} ms: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(query_i64(&db, "SELECT count(*) FROM events"), 2000);
    }
    let left: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".creating-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
