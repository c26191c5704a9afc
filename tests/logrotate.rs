//! `tail --rotated` with Debian's real `logrotate` rotating a log that a separate Python
//! process writes (logging's WatchedFileHandler), while the tailer is killed with SIGKILL and
//! restarted about once a second: every line arrives exactly once, in numbered mode
//! (compress, delaycompress) and in dateext mode (`-%Y%m%d-%s`, zstd as compresscmd).
//!
//! `nocreate`, as docs/ingest.md advises for a writer that recreates its own log: with
//! `create`, logrotate races the writer (which recreates the log between logrotate's rename and
//! its create), moves the writer's file to `<log>-<hour>.backup`, and lines that were only in a
//! file it moved or renamed over were seen destroyed on disk (CI lost 16 and then 7 of 60,000
//! that way). That race is logrotate's, not the tailer's, and not what this test is about.
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
    std::fs::write(&conf, format!("{} {{\n    rotate 1000\n    nocreate\n    missingok\n    notifempty\n{options}}}\n", log.display())).unwrap();
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
        let (done, conf, state) = (done.clone(), conf.clone(), state.clone());
        std::thread::spawn(move || {
            let mut rotations = 0;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1100));
                let out = Command::new(logrotate()).arg("-f").arg("-s").arg(&state).arg(&conf).output().unwrap();
                assert!(out.status.success(), "logrotate: {}", String::from_utf8_lossy(&out.stderr));
                rotations += 1;
            }
            rotations
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
    let rotations = rotator.join().unwrap();
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
    if total != Some(LINES as i64) {
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
    assert_eq!(count(&db, "SELECT count(DISTINCT key) FROM events"), Some(LINES as i64), "{mode}: some line twice");
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
