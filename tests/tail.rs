//! `cachescope tail`: follows, serves queries meanwhile, survives rotation, refuses a second
//! tailer, commits on SIGTERM.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("cachescope")
}

fn line(n: u64) -> String {
    // Even lines carry engine keys (stored in hit_rows), odd ones other keys (event_rows).
    let key = if n % 2 == 0 { format!("{n:016x}") } else { format!("k{n:08}") };
    format!(
        "{} INFO cachescope::engine: Cache HIT for AAPL event=hit op=get_or_compute symbol=AAPL feature_set=returns key={key} bytes=1 latency_us=1\n",
        common::engine_ts(n)
    )
}

fn append(p: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap();
    for i in from..to {
        f.write_all(line(i).as_bytes()).unwrap();
    }
}

fn count(db: &Path) -> Option<i64> {
    let out = Command::new(bin())
        .args(["sql", "--format", "csv", "--db"])
        .arg(db)
        .arg("SELECT count(*) AS n FROM events")
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).unwrap().lines().nth(1)?.parse().ok()
}

fn wait_for(db: &Path, n: i64, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        if count(db) == Some(n) {
            return t.elapsed();
        }
        assert!(t.elapsed() < within, "events never reached {n} (last {:?})", count(db));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(db: &Path, log: &Path) -> Child {
    Command::new(bin())
        .args(["tail", "--db"])
        .arg(db)
        .arg(log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A tailer started on a log of 100 lines: (its directory, the log, the database, the tailer).
fn following_100_lines() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf, Child) {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("trading-system.log");
    let db = d.path().join("ev.duckdb");
    append(&log, 0, 100);
    let child = start(&db, &log);
    (d, log, db, child)
}

#[test]
fn tail_follows_serves_queries_and_commits_on_sigterm() {
    let (d, log, db, mut child) = following_100_lines();
    // The tailer holds the database: `sql` goes through its socket.
    wait_for(&db, 100, Duration::from_secs(10));
    let sock = Path::new(&format!("{}.sock", db.display())).to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600);
    // New lines are queryable within a second.
    append(&log, 100, 150);
    let took = wait_for(&db, 150, Duration::from_secs(5));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // Rename rotation: the writer finishes the old file, then a new one starts.
    std::fs::rename(&log, d.path().join("trading-system.log.1")).unwrap();
    append(&d.path().join("trading-system.log.1"), 150, 170);
    append(&log, 170, 200);
    wait_for(&db, 200, Duration::from_secs(5));
    // A second tailer is refused, naming the first.
    let second = Command::new(bin()).args(["tail", "--db"]).arg(&db).arg(&log).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8(second.stderr).unwrap();
    assert!(err.contains(&format!("PID {}", child.id())), "{err}");
    // Its spills go next to the database, as DuckDB's own default for a database file.
    let tmp = Command::new(bin())
        .args(["sql", "--format", "csv", "--db"])
        .arg(&db)
        .arg("SELECT current_setting('temp_directory') AS t")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(tmp.stdout).unwrap().lines().nth(1), Some(format!("{}.tmp", db.display()).as_str()));
    // Writes are refused through the socket too.
    let del = Command::new(bin()).args(["sql", "--db"]).arg(&db).arg("DELETE FROM events").output().unwrap();
    assert_eq!(del.status.code(), Some(2));
    // Reports work through the tailer too.
    let rep = Command::new(bin()).args(["report", "--format", "json", "--db"]).arg(&db).output().unwrap();
    assert!(rep.status.success(), "{}", String::from_utf8_lossy(&rep.stderr));
    let v: serde_json::Value = serde_json::from_slice(&rep.stdout).unwrap();
    assert_eq!(v["requests"], 200);
    assert_eq!(v["hits"], 200);
    // SIGTERM: commit and exit 0; the socket is gone and the file opens directly.
    append(&log, 200, 230);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.contains("everything read was committed"), "{out}");
    assert!(!sock.exists());
    assert_eq!(count(&db), Some(230));
    let c = duckdb::Connection::open(&db).unwrap();
    let distinct: i64 = c.query_row("SELECT count(DISTINCT key) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(distinct, 230);
}

#[test]
fn lines_written_just_before_rotation_to_any_name_or_deletion_are_read() {
    // logrotate's `dateext` renames to NAME-YYYYMMDD, which is no NAME.N sibling; a deleted
    // file is no sibling at all. The tailer keeps the current file open and reads it to its
    // end after the name moves on. SIGSTOP makes the race certain: the lines are written,
    // and the file renamed, while the tailer cannot read.
    let (d, log, db, mut child) = following_100_lines();
    wait_for(&db, 100, Duration::from_secs(10));
    let pid = child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    append(&log, 100, 150);
    std::fs::rename(&log, d.path().join("trading-system.log-20261127")).unwrap();
    append(&log, 150, 160);
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_for(&db, 160, Duration::from_secs(5));
    // Deleted with unread lines.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    append(&log, 160, 200);
    std::fs::remove_file(&log).unwrap();
    append(&log, 200, 210);
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_for(&db, 210, Duration::from_secs(5));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let c = duckdb::Connection::open(&db).unwrap();
    let distinct: i64 = c.query_row("SELECT count(DISTINCT key) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(distinct, 210);
    let paths: String = c.query_row("SELECT string_agg(path, ' ' ORDER BY path) FROM ingest_files", [], |r| r.get(0)).unwrap();
    assert!(paths.contains("trading-system.log-20261127"), "the renamed file is recorded under its new name: {paths}");
    assert!(paths.contains("(deleted)"), "{paths}");
}

/// One number a query through the tailer answers (None while it cannot).
fn number(db: &Path, q: &str) -> Option<i64> {
    let out = Command::new(bin()).args(["sql", "--format", "csv", "--db"]).arg(db).arg(q).output().unwrap();
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).unwrap().lines().nth(1)?.parse().ok()
}

/// A tailer keeps episodes as the whole history finds them: the mixed day's log, half read
/// at the start and the rest appended in three parts while it follows. The first commit
/// advances the kept episodes; the rest comes within the minute a tailer waits between
/// advances, so readers find its clusters themselves, and the two together are
/// `episodes_full`'s. Its 5-minute evaluations, recomputed at each commit over the minutes it
/// added to (each part ends inside a minute the next one adds to), equal theirs from `events`.
#[test]
fn a_tailer_keeps_the_episodes_and_evaluations_the_whole_history_finds() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("trading-system.log");
    let db = d.path().join("ev.duckdb");
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mixed_day/trading-system.log.zst")).unwrap();
    let text = String::from_utf8(zstd::decode_all(&z[..]).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    let write = |part: &[&str]| {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        for l in part {
            writeln!(f, "{l}").unwrap();
        }
    };
    write(&lines[..half]);
    let tail = common::spawn_tail(&db, &log);
    common::wait_for_socket(&db);
    let read = |n: usize| {
        let t = Instant::now();
        while number(&db, "SELECT coalesce(max(line_no), 0) FROM events") != Some(n as i64) {
            assert!(t.elapsed() < Duration::from_secs(60), "the tailer never read {n} lines");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    read(half);
    let kept = number(&db, "SELECT count(*) FROM episode_clusters WHERE is_episode").unwrap();
    assert!(kept > 0, "the first commit kept no episode");
    // The rest in three parts, each cut inside a minute: the next commit adds to it.
    let cuts = [half, half + (lines.len() - half) / 3, half + 2 * (lines.len() - half) / 3, lines.len()];
    for w in cuts.windows(2) {
        write(&lines[w[0]..w[1]]);
        read(w[1]);
    }
    let extra = number(&db, "SELECT count(*) FROM (SELECT * FROM episodes EXCEPT ALL SELECT * FROM episodes_full)");
    let missing = number(&db, "SELECT count(*) FROM (SELECT * FROM episodes_full EXCEPT ALL SELECT * FROM episodes)");
    let all = number(&db, "SELECT count(*) FROM episodes_full").unwrap();
    // So are the 5-minute evaluations, against their computation from the events.
    let kept_evaluations = "SELECT eval_time, hits, requests FROM evaluations_5m";
    let differ = |a: &str, b: &str| number(&db, &format!("SELECT count(*) FROM (({a}) EXCEPT ALL ({b}))"));
    let evaluations = (differ(kept_evaluations, common::EVALUATIONS_FROM_EVENTS), differ(common::EVALUATIONS_FROM_EVENTS, kept_evaluations));
    let n_evaluations = number(&db, "SELECT count(*) FROM evaluations_5m").unwrap();
    common::stop_tail(tail);
    assert_eq!((extra, missing), (Some(0), Some(0)), "kept and found episodes through the tailer");
    assert!(all > kept, "{all} episodes, {kept} kept at the first commit");
    assert_eq!(evaluations, (Some(0), Some(0)), "kept evaluations through the tailer");
    assert!(n_evaluations > 300, "{n_evaluations} evaluations");
}
