//! `ingest` and `tail`: the glue from the command line to [`crate::ingest`] and [`crate::tail`].

use std::path::{Path, PathBuf};

use super::LogSources;

static SHUTDOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SHUTDOWN.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Progress of a rebuild of the derived tables, by day: a bar on a terminal; otherwise
/// `note` (when not empty) on standard error once, as the rebuild starts (a tailer under
/// systemd says why its start takes longer).
struct DaysBar {
    note: String,
    bar: Option<indicatif::ProgressBar>,
    started: bool,
}

impl DaysBar {
    fn new(note: String) -> DaysBar {
        DaysBar { note, bar: None, started: false }
    }

    fn update(&mut self, done: u64, total: u64) {
        use std::io::IsTerminal;
        // A new database has no events to build from: nothing to say.
        if !self.started && total > 0 {
            self.started = true;
            if !self.note.is_empty() {
                eprintln!("{} ({total} days)", self.note);
            }
            if std::io::stderr().is_terminal() {
                let b = indicatif::ProgressBar::new(total);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} days ETA {eta}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                self.bar = Some(b);
            }
        }
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(done);
        }
    }

    fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

pub(super) fn open_ingester(
    db: &Path,
    format: Option<&str>,
    format_files: &[PathBuf],
    archives: Vec<String>,
    zone: crate::ingest::zone::Zone,
) -> anyhow::Result<crate::ingest::Ingester> {
    use crate::ingest::formats::{Formats, RegexFormat};
    let custom = format_files
        .iter()
        .map(|p| RegexFormat::from_toml(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut bar = DaysBar::new(format!("cachescope: {}: a database without up-to-date derived tables: building them from its events, once", db.display()));
    let mut ing = crate::ingest::Ingester::open_with(db, Formats::with_custom(custom).in_zone(zone), &mut |done, total| bar.update(done, total))?;
    bar.finish();
    if let Some(f) = format {
        ing.force_format(f)?;
    }
    ing.set_archive_globs(archives)?;
    Ok(ing)
}

pub(super) fn cmd_tail(src: LogSources, rescan_ms: u64, metrics_addr: Option<std::net::SocketAddr>, query_memory_mb: u64) -> anyhow::Result<()> {
    let LogSources { logs, db, rotated, archives, format, format_files, timezone } = src;
    let db = db.unwrap_or_else(crate::ingest::default_db);
    let ing = open_ingester(&db, format.as_deref(), &format_files, archives, timezone)?;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    eprintln!(
        "cachescope tail: following {} file(s) into {} (queries: {}); Ctrl-C or SIGTERM to stop",
        logs.len(),
        db.display(),
        crate::query::socket_path(&db).display()
    );
    let mut tailer = crate::tail::Tailer::new(ing, db.clone(), logs, rotated, std::time::Duration::from_millis(rescan_ms.max(10)))
        .with_query_memory(query_memory_mb);
    let _exporter = match metrics_addr {
        Some(addr) => {
            let m = crate::tail::metrics::TailMetrics::new();
            let enc = m.clone();
            let ex = crate::engine::MetricsExporter::start_with(move || enc.encode_openmetrics(), addr)?;
            eprintln!("cachescope tail: metrics on http://{}/metrics", ex.addr());
            tailer = tailer.with_metrics(m);
            Some(ex)
        }
        None => None,
    };
    let totals = tailer.run(&SHUTDOWN, |_| {})?;
    println!(
        "tail stopped: {} lines ingested ({} events, {} quarantined) in {} passes; everything read was committed",
        totals.lines, totals.events, totals.quarantined, totals.wakeups
    );
    Ok(())
}

pub(super) fn cmd_reclassify(db: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let db = db.unwrap_or_else(crate::ingest::default_db);
    anyhow::ensure!(db.exists(), "events database {} does not exist; run `cachescope ingest` or `cachescope tail` first", db.display());
    let started = std::time::Instant::now();
    let mut days = 0;
    let mut bar = DaysBar::new(String::new());
    crate::ingest::Ingester::open_rebuilt(&db, crate::ingest::formats::Formats::default(), &mut |done, total| {
        days = total;
        bar.update(done, total);
    })?;
    bar.finish();
    let names: Vec<&str> = crate::ingest::derived::DERIVED.iter().map(|d| d.0).collect();
    println!("rebuilt {} from the events of {days} days in {:.2} s", names.join(", "), started.elapsed().as_secs_f64());
    println!("database: {}", db.display());
    Ok(())
}

/// Exit code when ingestion finished but quarantined lines or skipped files need a look.
pub const EXIT_INGEST_PARTIAL: u8 = 3;

pub(super) fn cmd_ingest(src: LogSources, batch_lines: usize, json: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let LogSources { logs, db, rotated, archives, format, format_files, timezone } = src;
    let db = db.unwrap_or_else(crate::ingest::default_db);
    let mut ing = open_ingester(&db, format.as_deref(), &format_files, archives, timezone)?;
    ing.set_batch_lines(batch_lines);
    let logs = ing.in_time_order(&logs);
    let total: u64 = logs.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let started = std::time::Instant::now();
    let mut lines = 0u64;
    let sum = ing.ingest(&logs, rotated, |p| {
        if let Some(b) = &bar {
            lines += p.lines;
            b.inc(p.bytes);
            let rate = lines as f64 / started.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!("{lines} lines, {rate:.0} lines/s"));
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&sum)?);
    } else {
        println!("{}", sum.line());
        println!("database: {}", db.display());
    }
    let unread: Vec<String> = sum
        .files
        .iter()
        .filter(|f| !f.status.read_through() && !f.status.read_later())
        .map(|f| format!("{} ({})", f.path, f.status))
        .collect();
    if sum.quarantined > 0 || !unread.is_empty() {
        return Err(PartialIngest { quarantined: sum.quarantined, unread }.into());
    }
    Ok(())
}

/// Ingestion finished, but not everything became events.
#[derive(Debug)]
pub struct PartialIngest {
    pub quarantined: u64,
    /// Files not read, with why (`vanished`, `no known format`, ...).
    pub unread: Vec<String>,
}

impl std::fmt::Display for PartialIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.quarantined > 0 {
            parts.push(format!("{} lines quarantined (see table ingest_errors)", self.quarantined));
        }
        if !self.unread.is_empty() {
            parts.push(format!("{} file(s) not read: {}", self.unread.len(), self.unread.join(", ")));
        }
        if self.unread.iter().any(|u| u.ends_with("(no known format)")) {
            parts.push("name the format of the others with --format or a --format-file".into());
        }
        if self.unread.iter().any(|u| u.ends_with(&format!("({})", crate::ingest::FileStatus::NotAFile))) {
            parts.push("give the log files themselves (plain, .gz or .zst; for a directory, DIR/*.log): ingest reads a file again from where it stopped, which a pipe cannot do".into());
        }
        write!(f, "{}", parts.join("; "))
    }
}

impl std::error::Error for PartialIngest {}
