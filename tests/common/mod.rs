//! Helpers shared by the integration tests: run the real binary on real files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use cachescope::ingest::formats::scan_engine;

pub const HEADER: &str = "ts,op,symbol,feature_set,start,end,value\n";
pub const DAY: (&str, &str) = ("2026-11-25T14:30:00Z", "2026-11-25T21:00:00Z");

/// A parsed engine log line: message and fields.
#[derive(Debug, Clone)]
pub struct Line {
    pub raw: String,
    pub level: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

impl Line {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    pub fn event(&self) -> &str {
        self.get("event").unwrap_or("")
    }
}

pub struct Run {
    pub dir: PathBuf,
    pub cache: PathBuf,
    pub log: PathBuf,
    pub metrics: PathBuf,
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn lines(&self) -> Vec<Line> {
        read_log(&self.log)
    }
    pub fn summary(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {}", self.stdout))
    }
    pub fn metrics_text(&self) -> String {
        std::fs::read_to_string(&self.metrics).unwrap()
    }
    /// The `reason=` of every miss line, in order, and `hit` for hits.
    pub fn outcomes(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.get("op") == Some("get_or_compute"))
            .map(|l| l.get("reason").unwrap_or("hit").to_string())
            .collect()
    }
    pub fn cache_files(&self) -> Vec<PathBuf> {
        cachescope::engine::cachefile::scan(&self.cache).unwrap().0
    }
}

pub fn read_log(p: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    text.lines()
        .map(|raw| {
            let mut fields = Vec::new();
            let head = scan_engine(raw, |k, v| {
                fields.push((k.to_string(), v.into_owned()));
                Ok(())
            })
            .unwrap_or_else(|e| panic!("log line does not parse ({e}): {raw}"));
            Line {
                raw: raw.to_string(),
                level: head.level.to_string(),
                message: head.message.to_string(),
                fields,
            }
        })
        .collect()
}

/// `ts,request,SYM,FS,day`.
/// The engine-format timestamp of test line `n` (microseconds after 2026-11-26T14:00:00Z).
pub fn engine_ts(n: u64) -> String {
    format!("2026-11-26T14:{:02}:{:02}.{:06}Z", (n / 60_000_000) % 60, (n / 1_000_000) % 60, n % 1_000_000)
}

pub fn req(ts: &str, sym: &str, fs: &str) -> String {
    format!("{ts},request,{sym},{fs},{},{},\n", DAY.0, DAY.1)
}

pub fn op(ts: &str, op: &str, value: &str) -> String {
    format!("{ts},{op},,,,,{value}\n")
}

/// Replays `body` (rows after the header) into `dir` (cache in `dir/cache`).
pub fn replay_in(dir: &Path, body: &str, extra: &[&str]) -> Run {
    let trace = dir.join("trace.csv");
    std::fs::write(&trace, format!("{HEADER}{body}")).unwrap();
    let cache = dir.join("cache");
    let log = dir.join("engine.log");
    let metrics = dir.join("metrics.prom");
    let out = Command::cargo_bin("cachescope")
        .unwrap()
        .arg("replay")
        .arg(&trace)
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--log")
        .arg(&log)
        .arg("--metrics-out")
        .arg(&metrics)
        .args(["--format", "json"])
        .args(extra)
        .env_remove("CACHESCOPE_CONFIG")
        .env_remove("FEATURE_CACHE_RETENTION_DAYS")
        .output()
        .unwrap();
    Run {
        dir: dir.to_path_buf(),
        cache,
        log,
        metrics,
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

pub fn replay(body: &str) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    let run = replay_in(dir.path(), body, &[]);
    assert_eq!(run.status, 0, "replay failed: {}\n{}", run.stderr, run.stdout);
    (dir, run)
}

/// The value of a metric sample line `name{labels} value`.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample `{sample}` in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// A tmpfs of `size` (e.g. "2m") mounted at `dir` until dropped: a small real filesystem to
/// fill. Needs root, which CI has; panics with the reason otherwise.
pub struct Mount(pub PathBuf);

impl Mount {
    pub fn tmpfs(dir: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "mounting a {size} tmpfs at {} failed: this test needs root (CI runs as root)", dir.display());
        Mount(dir.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// `cachescope tail --db DB LOG`, quiet, running in the background.
pub fn spawn_tail(db: &Path, log: &Path) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("cachescope"))
        .args(["tail", "--db"])
        .arg(db)
        .arg(log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (up to 30 s) until the tailer of `db` serves its socket; returns the socket.
pub fn wait_for_socket(db: &Path) -> PathBuf {
    let sock = PathBuf::from(format!("{}.sock", db.display()));
    let started = std::time::Instant::now();
    while !sock.exists() {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "tail never served {}", sock.display());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    sock
}

/// SIGTERM to a tailer; it must commit and exit 0.
pub fn stop_tail(mut tail: std::process::Child) {
    unsafe { libc::kill(tail.id() as i32, libc::SIGTERM) };
    assert!(tail.wait().unwrap().success());
}

/// Every evaluation with requests (the five whole minutes before each minute's end that
/// follows a request), written apart from the crate's definition: a range join of evaluation
/// times and the requests' minutes, straight from `events`.
pub const EVALUATIONS_FROM_EVENTS: &str = "
    WITH m AS (
        SELECT date_trunc('minute', ts) AS minute, count(*) FILTER (WHERE event = 'hit') AS hits, count(*) AS requests
        FROM events WHERE event IN ('hit', 'miss') AND ts IS NOT NULL GROUP BY 1
    ),
    e AS (SELECT DISTINCT minute + to_minutes(k) AS eval_time FROM m, range(1, 6) t(k))
    SELECT e.eval_time, sum(m.hits)::BIGINT AS hits, sum(m.requests)::BIGINT AS requests
    FROM e JOIN m ON m.minute >= e.eval_time - INTERVAL 5 MINUTE AND m.minute < e.eval_time
    GROUP BY e.eval_time";
