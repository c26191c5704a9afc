//! `tail --rotated` with Debian's real `logrotate` rotating a log that a separate Python
//! process writes (logging's WatchedFileHandler), while the tailer is killed with SIGKILL and
//! restarted about once a second: every line arrives exactly once, in numbered mode
//! (compress, delaycompress) and in dateext mode (`-%Y%m%d-%s`, zstd as compresscmd). The one
//! exception is logrotate's own: when its `create` races the writer it moves the writer's new
//! file to `<log>-<hour>.backup`, and a second race in the same hour renames another file over
//! that one: lines only in the file renamed over are gone before any reader could be sure to
//! see them. The test tells those gaps from ours (`lost_to_overwritten_backups`).
//! CI installs logrotate (.ci/run).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITER: &str = r#"
import datetime, logging, logging.handlers, sys, time
path, n, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
h = logging.handlers.WatchedFileHandler(path)
h.setFormatter(logging.Formatter("%(message)s"))
log = logging.getLogger("writer")
log.addHandler(h)
log.setLevel(logging.INFO)
log.propagate = False
base = datetime.datetime(2026, 11, 26, 14, 30)
start = time.time()
for i in range(n):
    ts = (base + datetime.timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    log.info(f"{ts} INFO cachescope::engine: Cache HIT for AAPL event=hit op=get_or_compute symbol=AAPL feature_set=returns key={i:016x} bytes=1 latency_us=1")
    if i % 250 == 249:
        wait = start + (i + 1) / rate - time.time()
        if wait > 0:
            time.sleep(wait)
h.close()
"#;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("cachescope")
}

fn logrotate() -> PathBuf {
    ["/usr/sbin/logrotate", "/sbin/logrotate", "/usr/bin/logrotate"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("logrotate (Debian's package; .ci/run installs it)")
}

fn tail(db: &Path, log: &Path) -> Child {
    Command::new(bin())
        .args(["tail", "--rotated", "--rescan-ms", "200", "--db"])
        .arg(db)
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The `.backup` files logrotate left in `dir`, with their inodes.
fn backups(dir: &Path) -> std::collections::BTreeMap<PathBuf, u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|r| r.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".backup")).filter_map(|e| Some((e.path(), e.metadata().ok()?.ino()))).collect())
        .unwrap_or_default()
}

/// Lines that went into a file logrotate destroyed by renaming a later backup over it (its
/// `create` racing the writer, which recreates the log first): every missing line must be in
/// a run that ends right before the first line of a file read under a `.backup` name (the
/// writer's next file, which logrotate moved aside the same way). Any other gap is ours and
/// fails the test.
fn lost_to_overwritten_backups(db: &Path, lines: usize) -> usize {
    let csv = |sql: &str| -> Vec<String> {
        let out = Command::new(bin()).args(["sql", "--format", "csv", "--db"]).arg(db).arg(sql).output().unwrap();
        String::from_utf8(out.stdout).unwrap().lines().skip(1).map(str::to_string).collect()
    };
    let key = |k: &str| u64::from_str_radix(k.trim_matches('"'), 16).unwrap() as usize;
    let mut seen = vec![false; lines];
    for k in csv("SELECT key FROM events") {
        seen[key(&k)] = true;
    }
    let backup_starts: Vec<usize> = csv("SELECT min(e.key) FROM events e JOIN ingest_files f USING (file_id) WHERE f.path LIKE '%.backup' GROUP BY e.file_id").iter().map(|k| key(k)).collect();
    explained_gaps(&seen, &backup_starts).unwrap_or_else(|e| panic!("{e}"))
}

/// The lines missing from `seen`, if every run of them ends right before a backup's first line.
fn explained_gaps(seen: &[bool], backup_starts: &[usize]) -> Result<usize, String> {
    let mut lost = 0;
    let mut i = 0;
    while i < seen.len() {
        if seen[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < seen.len() && !seen[i] {
            i += 1;
        }
        if !backup_starts.contains(&i) {
            return Err(format!("lines {start}..{i} are missing and no backup logrotate overwrote explains them (backups start at {backup_starts:?})"));
        }
        lost += i - start;
    }
    Ok(lost)
}

#[test]
fn only_gaps_before_a_backup_are_blamed_on_logrotate() {
    let seen = |missing: &[usize]| (0..10).map(|i| !missing.contains(&i)).collect::<Vec<_>>();
    assert_eq!(explained_gaps(&seen(&[]), &[]), Ok(0));
    assert_eq!(explained_gaps(&seen(&[3, 4]), &[5]), Ok(2));
    assert_eq!(explained_gaps(&seen(&[3, 4, 7]), &[5, 8]), Ok(3));
    assert!(explained_gaps(&seen(&[3, 4]), &[4]).is_err(), "a gap inside a file is ours");
    assert!(explained_gaps(&seen(&[9]), &[]).is_err(), "lines missing at the end are ours");
    assert!(explained_gaps(&seen(&[3, 4, 7]), &[5]).is_err());
}

fn count(db: &Path, what: &str) -> Option<i64> {
    let out = Command::new(bin()).args(["sql", "--format", "csv", "--db"]).arg(db).arg(what).output().unwrap();
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).unwrap().lines().nth(1)?.parse().ok()
}

fn run(mode: &str, options: &str) {
    const LINES: usize = 60_000;
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("app.log");
    let db = d.path().join("ev.duckdb");
    let conf = d.path().join("logrotate.conf");
    let state = d.path().join("logrotate.state");
    std::fs::write(&conf, format!("{} {{\n    rotate 1000\n    create\n    missingok\n    notifempty\n{options}}}\n", log.display())).unwrap();
    let mut writer = Command::new("python3")
        .args(["-c", WRITER])
        .arg(&log)
        .arg(LINES.to_string())
        .arg("8000")
        .spawn()
        .expect("python3");
    let done = Arc::new(AtomicBool::new(false));
    // logrotate about every 1.1 s (dateext names carry the second: one rotation a second).
    let rotator = {
        let (done, conf, state, dir) = (done.clone(), conf.clone(), state.clone(), d.path().to_path_buf());
        std::thread::spawn(move || {
            let mut rotations = 0;
            let mut overwritten = 0;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1100));
                let before = backups(&dir);
                let out = Command::new(logrotate()).arg("-f").arg("-s").arg(&state).arg(&conf).output().unwrap();
                // logrotate renamed a new backup over one of the same hour: the old one's
                // lines are gone, whoever had or had not read them yet.
                overwritten += backups(&dir).iter().filter(|(p, ino)| before.get(*p).is_some_and(|b| b != *ino)).count();
                // The writer (WatchedFileHandler) may recreate the log between logrotate's
                // rename and its `create`: logrotate then moves that file to a `.backup` name,
                // and fails when a backup of the same hour exists. A race between the two
                // programs, as in production; what is read must still be every line, once.
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success() || err.contains("already exists"), "logrotate: {err}");
                rotations += 1;
            }
            (rotations, overwritten)
        })
    };
    // The tailer, killed with SIGKILL at uneven moments and started again.
    let mut kills = 0;
    let mut said = String::new();
    let pauses = [700u64, 1300, 400, 1000, 900, 1500, 600, 1100];
    while writer.try_wait().unwrap().is_none() {
        let mut t = tail(&db, &log);
        std::thread::sleep(Duration::from_millis(pauses[kills % pauses.len()]));
        t.kill().unwrap();
        let out = t.wait_with_output().unwrap();
        said.push_str(&String::from_utf8_lossy(&out.stderr));
        // Killed, or it had stopped by itself: then say why.
        assert!(out.status.code().is_none(), "{mode}: a tailer stopped by itself: {}", String::from_utf8_lossy(&out.stderr));
        kills += 1;
    }
    assert!(writer.wait().unwrap().success());
    done.store(true, Ordering::SeqCst);
    let (rotations, overwritten) = rotator.join().unwrap();
    assert!(rotations >= 4 && kills >= 4, "{mode}: only {rotations} rotations and {kills} kills");
    let archives = std::fs::read_dir(d.path()).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("app.log")).count();
    assert!(archives >= 4, "{mode}: logrotate left {archives} files");
    // A last tailer catches up: every line, once.
    let t = tail(&db, &log);
    let sock = PathBuf::from(format!("{}.sock", db.display()));
    let started = Instant::now();
    // Readers open the file only once the tailer holds it (else the tailer could not).
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "{mode}: the last tailer never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut last = None;
    while started.elapsed() < Duration::from_secs(60) {
        last = count(&db, "SELECT count(*) FROM events");
        if last == Some(LINES as i64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    unsafe { libc::kill(t.id() as i32, libc::SIGTERM) };
    let out = t.wait_with_output().unwrap();
    assert!(out.status.success(), "{mode}: the last tailer failed: {}", String::from_utf8_lossy(&out.stderr));
    let total = count(&db, "SELECT count(*) FROM events");
    let lost_by_logrotate = if overwritten > 0 { lost_to_overwritten_backups(&db, LINES) } else { 0 };
    if total != Some((LINES - lost_by_logrotate) as i64) {
        let files = Command::new(bin())
            .args(["sql", "--db"])
            .arg(&db)
            .arg("SELECT f.path, f.paths, f.byte_offset, f.line_no, (SELECT count(*) FROM events e WHERE e.file_id = f.file_id) AS rows, (SELECT min(key) FROM events e WHERE e.file_id = f.file_id) AS first_key FROM ingest_files f ORDER BY first_key")
            .output()
            .unwrap();
        let listing = Command::new("ls").arg("-la").arg(d.path()).output().unwrap();
        panic!(
            "{mode}: {total:?} events for {LINES} lines (last seen {last:?}) after {kills} kills, {rotations} rotations\n{}\n{}\ntailers said: {}",
            String::from_utf8_lossy(&files.stdout),
            String::from_utf8_lossy(&listing.stdout),
            said
        );
    }
    assert_eq!(count(&db, "SELECT count(DISTINCT key) FROM events"), total, "{mode}: some line twice");
    if lost_by_logrotate > 0 {
        eprintln!("{mode}: {lost_by_logrotate} lines were in a backup logrotate renamed another over ({overwritten} times): lost by logrotate, not by the tailer");
    }
}

#[test]
fn logrotate_numbered_with_delaycompress_and_kills_loses_nothing() {
    run("numbered", "    compress\n    delaycompress\n");
}

#[test]
fn logrotate_dateext_with_zstd_and_kills_loses_nothing() {
    run(
        "dateext",
        "    dateext\n    dateformat -%Y%m%d-%s\n    compress\n    compresscmd /usr/bin/zstd\n    compressext .zst\n    compressoptions -q\n    uncompresscmd /usr/bin/unzstd\n",
    );
}
