//! What the benchmarks share: a large log made from the mixed-day fixture, and a whole
//! command timed with its peak RSS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub struct Run {
    pub secs: f64,
    pub max_rss_mb: f64,
}

pub fn run(cmd: &mut Command) -> Run {
    let t = Instant::now();
    // Not /dev/null: GNU grep stops at the first match when its output is discarded.
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().expect("spawn");
    let mut out = child.stdout.take().expect("piped");
    let drain = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 on our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let _ = drain.join();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "{cmd:?} failed");
    Run {
        secs: t.elapsed().as_secs_f64(),
        max_rss_mb: ru.ru_maxrss as f64 / 1024.0,
    }
}

#[allow(dead_code)] // not every bench reads a log
pub fn make_log(dir: &Path, lines: usize) -> PathBuf {
    make_log_part(dir, 0, lines)
}

/// Lines `first..first + lines` of the log [`make_log`] makes (a long log in parts, so that
/// its text need not be on disk at once).
#[allow(dead_code)]
pub fn make_log_part(dir: &Path, first: usize, lines: usize) -> PathBuf {
    let z = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mixed_day/trading-system.log.zst")).unwrap();
    let day = String::from_utf8(zstd::decode_all(&z[..]).unwrap()).unwrap();
    let day: Vec<&str> = day.lines().collect();
    let p = dir.join(format!("bench-{first}-{lines}.log"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    // Each repetition of the day is the next day, as a host's log would be: time only moves
    // forward (a log that went back in time at every repetition would be late data throughout).
    let day0 = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let prefix = day0.format("%Y-%m-%d").to_string();
    let mut date = prefix.clone();
    for i in first..first + lines {
        let line = day[i % day.len()];
        if i == first || i % day.len() == 0 {
            date = (day0 + chrono::Duration::days((i / day.len()) as i64)).format("%Y-%m-%d").to_string();
        }
        match line.strip_prefix(prefix.as_str()) {
            Some(rest) => writeln!(f, "{date}{rest}").unwrap(),
            None => writeln!(f, "{line}").unwrap(),
        }
    }
    f.flush().unwrap();
    p
}

