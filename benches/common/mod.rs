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
    let z = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mixed_day/trading-system.log.zst")).unwrap();
    let day = String::from_utf8(zstd::decode_all(&z[..]).unwrap()).unwrap();
    let day: Vec<&str> = day.lines().collect();
    let p = dir.join(format!("bench-{lines}.log"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    for i in 0..lines {
        writeln!(f, "{}", day[i % day.len()]).unwrap();
    }
    f.flush().unwrap();
    p
}

