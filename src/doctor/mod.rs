//! `cachescope doctor`: the runbook's "Quick Health Checks" and "Common Causes" as one
//! command. Each check has a status (ok / warn / fail), the figure it measured, and what to do.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::cachefile;
use crate::engine::manifest::{probe_lock, LockStatus, Manifest, ManifestError};
use crate::engine::{Config, EntryState};

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    /// What was measured.
    pub figure: String,
    /// What to do about it (empty when ok).
    pub action: String,
}

fn check(name: &str, status: Status, figure: String, action: &str) -> Check {
    Check {
        name: name.into(),
        status,
        figure,
        action: if status == Status::Ok { String::new() } else { action.into() },
    }
}

/// Disk usage of the filesystem holding `dir`: (used bytes, total bytes).
pub fn disk_usage(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: statvfs fills the struct; the path is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = s.f_frsize as u64;
    let total = s.f_blocks as u64 * frsize;
    let avail = s.f_bavail as u64 * frsize;
    let free = s.f_bfree as u64 * frsize;
    // As df computes it: used / (used + available to users).
    let used = total.saturating_sub(free);
    Ok((used, used + avail))
}

/// Runs every check against the cache described by `cfg` (and the events database, if given).
pub fn run(cfg: &Config, events_db: Option<&Path>, now: chrono::NaiveDateTime) -> Vec<Check> {
    let mut out = Vec::new();
    // 1. Disk.
    match disk_usage(&cfg.cache_dir) {
        Ok((used, total)) => {
            let pct = if total > 0 { used as f64 * 100.0 / total as f64 } else { 0.0 };
            let status = if pct >= 90.0 {
                Status::Fail
            } else if pct >= 85.0 {
                Status::Warn
            } else {
                Status::Ok
            };
            out.push(check(
                "disk usage of the cache volume",
                status,
                format!("{pct:.1}% of {} used ({})", human(total), cfg.cache_dir.display()),
                "Runbook 1. Disk Space Issues: `cachescope cache cleanup` (or `find <cache_dir> -name \"*.parquet.zst\" -mtime +7 -delete`), or grow the volume.",
            ));
        }
        Err(e) => out.push(check(
            "disk usage of the cache volume",
            Status::Fail,
            format!("cannot stat {}: {e}", cfg.cache_dir.display()),
            "Check that cache_dir exists and is readable.",
        )),
    }
    // 2. Lock holder.
    let lock = probe_lock(&cfg.manifest_path);
    out.push(check(
        "manifest lock",
        if lock == LockStatus::Free { Status::Ok } else { Status::Fail },
        match &lock {
            LockStatus::Free => "nobody holds the manifest".into(),
            held => format!("held by {}: the engine runs uncached meanwhile", held.describe()),
        },
        "Runbook 2. DuckDB Manifest Database Issues: stop the process holding the manifest (it was found with F_GETLK, as `lsof` would).",
    ));
    // 3. Manifest health and agreement with the files.
    let (files, _temps) = cachefile::scan(&cfg.cache_dir).unwrap_or_default();
    let disk_bytes: u64 = files.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let mut cached: Vec<(PathBuf, u64, chrono::NaiveDateTime)> = Vec::new();
    if lock == LockStatus::Free {
        if !cfg.manifest_path.exists() {
            out.push(check(
                "manifest",
                if files.is_empty() { Status::Ok } else { Status::Warn },
                format!("{} does not exist ({} cache files on disk)", cfg.manifest_path.display(), files.len()),
                "The engine rebuilds it from the cache files at start; or run `cachescope cache rebuild-manifest`.",
            ));
        } else {
            match Manifest::new(&cfg.manifest_path).load_read_only() {
                Ok(loaded) => {
                    for e in loaded.entries.iter().filter(|e| e.state == EntryState::Cached) {
                        cached.push((e.path.clone(), e.bytes, e.created));
                    }
                    out.push(check("manifest", Status::Ok, format!("opens; {} remembered keys, {} cached", loaded.entries.len(), cached.len()), ""));
                }
                Err(e @ (ManifestError::Corrupt { .. } | ManifestError::Io { .. })) => out.push(check(
                    "manifest",
                    Status::Fail,
                    format!(
                        "{} cannot be read: {}",
                        cfg.manifest_path.display(),
                        std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default().lines().next().unwrap_or("")
                    ),
                    "Runbook 2: back it up and rebuild: `cachescope cache rebuild-manifest` (or restart the engine, which rebuilds it from the cache files).",
                )),
                Err(ManifestError::Locked { holder, .. }) => out.push(check(
                    "manifest",
                    Status::Fail,
                    format!("locked by {holder}"),
                    "Stop the process holding the manifest.",
                )),
            }
            let on_disk: HashSet<&Path> = files.iter().map(PathBuf::as_path).collect();
            let listed: HashSet<&Path> = cached.iter().map(|c| c.0.as_path()).collect();
            let missing = cached.iter().filter(|c| !on_disk.contains(c.0.as_path())).count();
            let orphans = files.iter().filter(|f| !listed.contains(f.as_path())).count();
            let manifest_bytes: u64 = cached.iter().map(|c| c.1).sum();
            out.push(check(
                "manifest agrees with the files",
                if missing > 0 || orphans > 0 { Status::Warn } else { Status::Ok },
                format!(
                    "{missing} entries without a file, {orphans} files without an entry; {} on disk, {} in the manifest",
                    human(disk_bytes),
                    human(manifest_bytes)
                ),
                "Files deleted behind the engine's back miss once and are recomputed; orphan files are adopted at the engine's next start. `cachescope cache rebuild-manifest` makes the manifest match the files now.",
            ));
        }
    }
    // 4. Age against retention, size against capacity.
    let cutoff = now - chrono::Duration::milliseconds((cfg.retention_days * 86_400_000.0) as i64);
    let old = files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok()?.modified().ok())
        .filter(|m| chrono::DateTime::<chrono::Utc>::from(*m).naive_utc() < cutoff)
        .count();
    out.push(check(
        "cache files older than retention_days",
        if old > 0 { Status::Warn } else { Status::Ok },
        format!("{old} of {} files older than {} days", files.len(), cfg.retention_days),
        "The clean-up has not run: check `systemctl status feature-cache-cleanup.timer`, or run `cachescope cache cleanup`.",
    ));
    let max = cfg.max_cache_bytes() as f64;
    let share = disk_bytes as f64 / max;
    out.push(check(
        "cache size against max_cache_size_gb",
        if share >= 1.0 {
            Status::Fail
        } else if share >= cfg.cleanup_threshold {
            Status::Warn
        } else {
            Status::Ok
        },
        format!("{} of {} ({:.1}%; eviction starts at {:.0}%)", human(disk_bytes), human(max as u64), share * 100.0, cfg.cleanup_threshold * 100.0),
        "At the threshold the engine evicts least-recently-used files: if misses are evicted_capacity (thrashing), raise max_cache_size_gb.",
    ));
    // 5. Memory headroom.
    match mem_available() {
        Some((avail, total)) => {
            let share = avail as f64 / total as f64;
            out.push(check(
                "memory headroom",
                if share < 0.05 {
                    Status::Fail
                } else if share < 0.15 {
                    Status::Warn
                } else {
                    Status::Ok
                },
                format!("{} of {} available ({:.0}%)", human(avail), human(total), share * 100.0),
                "Runbook 4. Memory Pressure: `ps aux | grep -E \"(trading|feature)\" | sort -k4 -nr`; feature computations fail with OOM when memory is short.",
            ));
        }
        None => out.push(check("memory headroom", Status::Warn, "/proc/meminfo unreadable".into(), "Check memory by hand: `free -h`.")),
    }
    // 6. From the events database.
    if let Some(db) = events_db {
        out.extend(events_checks(db));
    }
    out
}

/// Doctor's figures (queries/doctor_events.sql), by column name.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFigures {
    hit_ratio: Option<f64>,
    eval_time: Option<String>,
    alerts_firing: i64,
    alerts_firing_names: Option<String>,
    write_failures: i64,
    compute_failures: i64,
    invalidations: i64,
    storm_min_invalidations: i64,
}

/// The figures of the events database, from the evaluations of its last hours only.
fn event_figures(db: &Path) -> Result<EventFigures, crate::analysis::AnalysisError> {
    let s = crate::analysis::session(db)?;
    crate::analysis::evaluate_latest(&s)?;
    Ok(s.query_own(crate::queries::DOCTOR_EVENTS, &[])?.decode_one()?)
}

fn events_checks(db: &Path) -> Vec<Check> {
    let figures = event_figures(db);
    let f = match figures {
        Ok(f) => f,
        Err(e) => return vec![check("events database", Status::Fail, e.to_string(), "Run `cachescope ingest` or `cachescope tail` first.")],
    };
    let slo = crate::analysis::SLO;
    let at = f.eval_time.unwrap_or_else(|| "-".into());
    let count = |n: i64, warn: bool| (if warn { Status::Warn } else { Status::Ok }, n.to_string());
    let (write_status, write_figure) = count(f.write_failures, f.write_failures > 0);
    let (compute_status, compute_figure) = count(f.compute_failures, f.compute_failures > 0);
    let (storm_status, storm_figure) = count(f.invalidations, f.invalidations >= f.storm_min_invalidations);
    vec![
        check(
            "5-minute hit ratio (latest)",
            match f.hit_ratio {
                Some(x) if x < slo.critical_ratio => Status::Fail,
                Some(x) if x < slo.target => Status::Warn,
                _ => Status::Ok,
            },
            f.hit_ratio.map(|x| format!("{:.2}% at {at}", x * 100.0)).unwrap_or_else(|| "no requests".into()),
            "`cachescope incident --last-alert` names the causes and the runbook action.",
        ),
        check(
            "alerts firing",
            if f.alerts_firing > 0 { Status::Fail } else { Status::Ok },
            if f.alerts_firing > 0 { f.alerts_firing_names.unwrap_or_default() } else { "none".into() },
            "Follow the runbook's escalation for the firing alert.",
        ),
        check("write failures in the last hour", write_status, write_figure, "Runbook 1. Disk Space Issues."),
        check("compute failures in the last hour", compute_status, compute_figure, "Runbook 4. Memory Pressure."),
        check(
            "invalidations in the last hour",
            storm_status,
            storm_figure,
            "Runbook 3. High Data Churn (expected): silence the alert if it is a market-data correction or a config change.",
        ),
    ]
}

fn mem_available() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let get = |k: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(k))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    Some((get("MemAvailable:")?, get("MemTotal:")?))
}

fn human(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// The exit code for a set of checks: 0 all ok, 1 a warning, 2 a failure.
pub fn exit_code(checks: &[Check]) -> u8 {
    match checks.iter().map(|c| c.status).max() {
        Some(Status::Fail) => 2,
        Some(Status::Warn) => 1,
        _ => 0,
    }
}
