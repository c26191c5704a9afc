//! The command line: clap types and the thin glue from each subcommand to the library.
//! Exit codes: 0 success, 1 runtime failure, 2 bad input (arguments, configuration, trace).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::engine::{Config, ConfigError, FeatureRegistry};
use crate::replay::{self, ReplayError, ReplayOptions, ReplaySummary, Trace};
use crate::sim::{self, Scenario, SimError, SimOptions};

#[derive(Debug, Parser)]
#[command(name = "cachescope", version, about = "Feature-store cache engine, and the facts behind its cache misses")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The logs to read and how (shared by `ingest` and `tail`).
#[derive(Debug, clap::Args)]
pub struct LogSources {
    /// Log files (plain, .gz or .zst).
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
    /// Events database (default: $CACHESCOPE_DB, else ~/.local/share/cachescope/events.duckdb).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Also backfill each log's rotated archives (NAME.1, NAME.2.gz, NAME.3.zst, ...); `tail`
    /// does it once at start.
    #[arg(long)]
    pub rotated: bool,
    /// Read every file with this format instead of detecting it (engine, python, json, or a
    /// --format-file's name).
    #[arg(long)]
    pub format: Option<String>,
    /// A user-defined format (TOML of named-capture regexes); may be repeated.
    #[arg(long = "format-file")]
    pub format_files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum CacheOp {
    /// Emergency cache warming: compute and store what is not cached yet.
    Warm {
        /// Comma-separated symbols, e.g. AAPL,GOOGL,MSFT,TSLA.
        #[arg(long, value_delimiter = ',', required = true)]
        symbols: Vec<String>,
        /// Comma-separated feature sets (default: all).
        #[arg(long, value_delimiter = ',')]
        feature_sets: Vec<String>,
        /// START..END in RFC 3339 (default: yesterday's 09:30-16:00 New York session).
        #[arg(long)]
        range: Option<String>,
        /// Market data from a directory of SYMBOL.parquet files (default: the synthetic source).
        #[arg(long)]
        market_data: Option<PathBuf>,
    },
    /// Remove cache files older than retention_days (what feature-cache-cleanup.timer runs).
    Cleanup {
        #[arg(long)]
        dry_run: bool,
    },
    /// Back up the manifest, then rebuild it from the cache files' footers.
    RebuildManifest,
    /// Files, bytes, capacity and what the manifest remembers.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum ReportFormat {
    Md,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SqlFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a CSV trace through the real engine on a virtual clock and summarise hits and misses.
    Replay {
        /// The trace (docs/trace-format.md).
        trace: PathBuf,
        /// Engine configuration (cachescope.toml). Without it: defaults, with a temporary cache
        /// directory that is removed afterwards.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Cache directory (overrides the configuration's; kept after the replay).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// The engine log to write (truncated first).
        #[arg(long)]
        log: PathBuf,
        /// Seed of the synthetic market data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write the final metrics (Prometheus text format) here.
        #[arg(long)]
        metrics_out: Option<PathBuf>,
        /// Serve /metrics while replaying, e.g. `127.0.0.1:9187` (`:9187` binds 127.0.0.1).
        #[arg(long, value_parser = parse_addr)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Reproducible log: modelled latencies, the cache directory shown as /mnt/feature_cache,
        /// the lock helper's PID as 4242.
        #[arg(long)]
        deterministic: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Generate a scenario's trace, replay it through the real engine, write the log, the
    /// metrics and the ground truth (scenario.json).
    Simulate {
        /// steady, new_symbols, invalidation_storm, config_change, thrashing, retention,
        /// disk_full, memory_pressure, manifest_outage, external_deletion or mixed_day.
        #[arg(long)]
        scenario: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
        /// 1 = 20 minutes at about 4 requests/s; 20 = a whole day at about 80 requests/s.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Ingest log files into the events database, exactly once, from where the last run stopped.
    Ingest {
        #[command(flatten)]
        src: LogSources,
        /// Lines per transaction.
        #[arg(long, default_value_t = crate::ingest::DEFAULT_BATCH_LINES)]
        batch_lines: usize,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow log files into the events database (inotify, with a periodic re-scan), serving
    /// queries from other `cachescope` commands meanwhile. SIGTERM or Ctrl-C commits and exits.
    Tail {
        #[command(flatten)]
        src: LogSources,
        /// Re-scan the files at least this often (milliseconds), whatever inotify says.
        #[arg(long, default_value_t = 1000)]
        rescan_ms: u64,
        /// Serve /metrics here: featurestore_* series derived from the logs and the tailer's
        /// health (`:9188` binds 127.0.0.1).
        #[arg(long, value_parser = parse_addr)]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Run a read-only SQL query over the events database (through `tail` when it holds it).
    Sql {
        /// The query (SELECT, WITH, FROM, DESCRIBE, ...).
        query: Option<String>,
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: SqlFormat,
        /// List the tables and views with their columns.
        #[arg(long)]
        schema: bool,
    },
    /// The cron report: requests, hit ratio and SLO status, error budget, misses by cause,
    /// episodes, alert periods.
    Report {
        #[arg(long)]
        db: Option<PathBuf>,
        /// The last DURATION before now (e.g. 24h, 90m, 7d).
        #[arg(long, conflicts_with_all = ["from", "until"])]
        since: Option<String>,
        /// Start (RFC 3339); without --since/--from: the whole database.
        #[arg(long)]
        from: Option<String>,
        /// End (RFC 3339, exclusive; default: now, or the end of the data).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Write to FILE instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit with code 4 when the SLO was breached in the period.
        #[arg(long)]
        fail_on_breach: bool,
    },
    /// The post-incident root-cause summary (Markdown with an SVG chart beside it, or HTML).
    Incident {
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, required_unless_present = "last_alert", requires = "to")]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// The last alert that fired, from 5 minutes before it went pending to its resolution.
        #[arg(long, conflicts_with_all = ["from", "to"])]
        last_alert: bool,
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Write to FILE (with Markdown, the chart goes to FILE's name with .svg).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The SLO status at a moment (default: the latest data): 5-minute hit ratio, alert states,
    /// error budget remaining.
    Slo {
        #[arg(long)]
        db: Option<PathBuf>,
        /// The moment (RFC 3339).
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The main job on an embedded default: simulate `mixed_day`, ingest it, print the report,
    /// write the incident summary.
    Demo {
        /// Where to write everything (default: a new temporary directory, kept).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Cache operations on a feature store's cache directory (what the runbook does by hand).
    Cache {
        #[command(subcommand)]
        op: CacheOp,
        /// Engine configuration (cachescope.toml; else $CACHESCOPE_CONFIG, ./cachescope.toml, defaults).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        /// Append the engine's log lines to this file (default: not logged).
        #[arg(long, global = true)]
        log: Option<PathBuf>,
    },
    /// The runbook's health checks in one command: disk, manifest (health, lock holder,
    /// agreement with the files), retention, capacity, memory, and the events database's SLO
    /// figures. Exit code 0 all ok, 1 a warning, 2 a failure.
    Doctor {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Events database for the SLO checks.
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// List the built-in feature sets with their configuration and its hash.
    FeatureSets {
        /// Configuration whose `[feature_sets.*]` overrides apply.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// (internal) Hold the manifest's lock until stdin closes; used by `replay` for `lock_manifest`.
    #[command(name = "__hold-manifest-lock", hide = true)]
    HoldManifestLock { manifest: PathBuf },
}

/// Parses the command line, runs it, maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<PartialIngest>().is_some() {
            return EXIT_INGEST_PARTIAL;
        }
        if cause.downcast_ref::<UsageError>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<SloBreached>().is_some() {
            return EXIT_SLO_BREACHED;
        }
        if let Some(d) = cause.downcast_ref::<DoctorFindings>() {
            return d.1;
        }
        if let Some(q) = cause.downcast_ref::<crate::query::QueryError>() {
            return match q {
                crate::query::QueryError::ReadOnly(_) | crate::query::QueryError::Sql(_) | crate::query::QueryError::Missing { .. } => 2,
                _ => 1,
            };
        }
        if let Some(crate::ingest::IngestError::UnknownFormat(_)) = cause.downcast_ref::<crate::ingest::IngestError>() {
            return 2;
        }
        if cause.downcast_ref::<crate::ingest::formats::FormatError>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return 2;
        }
        if let Some(s) = cause.downcast_ref::<SimError>() {
            if matches!(s, SimError::UnknownScenario { .. } | SimError::BadScale(_)) {
                return 2;
            }
        }
        if let Some(r) = cause.downcast_ref::<ReplayError>() {
            return match r {
                ReplayError::Row { .. } | ReplayError::Read { .. } => 2,
                ReplayError::Open(crate::engine::EngineError::Config(_)) => 2,
                _ => 1,
            };
        }
    }
    1
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Replay {
            trace,
            config,
            cache_dir,
            log,
            seed,
            metrics_out,
            metrics_addr,
            deterministic,
            format,
        } => cmd_replay(&trace, config.as_deref(), cache_dir, log, seed, metrics_out, metrics_addr, deterministic, format),
        Command::Simulate {
            scenario,
            seed,
            out,
            scale,
            format,
        } => {
            let opts = SimOptions {
                scenario: Scenario::parse(&scenario)?,
                seed,
                scale,
                out: out.clone(),
                lock_helper: std::env::current_exe().context("locating the cachescope binary")?,
            };
            let truth = sim::simulate(&opts)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&truth)?),
                Format::Text => print!("{}", sim::render(&truth, &out)),
            }
            Ok(())
        }
        Command::Ingest { src, batch_lines, json } => cmd_ingest(src, batch_lines, json),
        Command::Tail { src, rescan_ms, metrics_addr } => cmd_tail(src, rescan_ms, metrics_addr),
        Command::Sql { query, db, format, schema } => cmd_sql(query, db, format, schema),
        Command::Report {
            db,
            since,
            from,
            until,
            format,
            out,
            fail_on_breach,
        } => cmd_report(db, since, from, until, format, out, fail_on_breach),
        Command::Incident {
            db,
            from,
            to,
            last_alert,
            format,
            out,
        } => cmd_incident(db, from, to, last_alert, format, out),
        Command::Slo { db, at, json } => cmd_slo(db, at, json),
        Command::Demo { dir } => cmd_demo(dir),
        Command::Doctor { config, db, format } => cmd_doctor(config.as_deref(), db.as_deref(), format),
        Command::Cache { op, config, log } => cmd_cache(op, config.as_deref(), log.as_deref()),
        Command::FeatureSets { config, format } => cmd_feature_sets(config.as_deref(), format),
        Command::HoldManifestLock { manifest } => replay::hold_manifest_lock(&manifest)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("holding the lock of {}", manifest.display())),
    }
}

/// `HOST:PORT`, or `:PORT` for 127.0.0.1.
fn parse_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let full = if s.starts_with(':') { format!("127.0.0.1{s}") } else { s.to_string() };
    full.parse().map_err(|_| format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:9187)"))
}

#[allow(clippy::too_many_arguments)]
fn cmd_replay(
    trace: &Path,
    config: Option<&Path>,
    cache_dir: Option<PathBuf>,
    log: PathBuf,
    seed: u64,
    metrics_out: Option<PathBuf>,
    metrics_addr: Option<std::net::SocketAddr>,
    deterministic: bool,
    format: Format,
) -> anyhow::Result<()> {
    let parsed = Trace::from_path(trace)?;
    let mut cfg = match config {
        Some(p) => Config::load(Some(p))?,
        None => defaults_without_file()?,
    };
    let mut _temp = None;
    match (cache_dir, config) {
        (Some(dir), _) => {
            cfg.manifest_path = dir.join("manifest.duckdb");
            cfg.cache_dir = dir;
        }
        (None, None) => {
            let t = tempfile::Builder::new()
                .prefix("cachescope-replay-")
                .tempdir()
                .context("creating a temporary cache directory")?;
            cfg.cache_dir = t.path().to_path_buf();
            cfg.manifest_path = t.path().join("manifest.duckdb");
            _temp = Some(t);
        }
        (None, Some(_)) => {}
    }
    let opts = ReplayOptions {
        config: cfg,
        log,
        seed,
        lock_helper: std::env::current_exe().context("locating the cachescope binary")?,
        metrics_out,
        metrics_addr,
        deterministic,
    };
    let started = std::time::Instant::now();
    let sum = replay::replay(&parsed, &opts)?;
    let elapsed = started.elapsed().as_secs_f64();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&sum)?),
        Format::Text => print!("{}", render_summary(&sum, elapsed, _temp.is_some())),
    }
    Ok(())
}

static SHUTDOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SHUTDOWN.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn open_ingester(db: &Path, format: Option<&str>, format_files: &[PathBuf]) -> anyhow::Result<crate::ingest::Ingester> {
    use crate::ingest::formats::{Formats, RegexFormat};
    let custom = format_files
        .iter()
        .map(|p| RegexFormat::from_toml(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ing = crate::ingest::Ingester::open(db, Formats::with_custom(custom))?;
    if let Some(f) = format {
        ing.force_format(f)?;
    }
    Ok(ing)
}

fn cmd_tail(src: LogSources, rescan_ms: u64, metrics_addr: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let LogSources { logs, db, rotated, format, format_files } = src;
    let db = db.unwrap_or_else(crate::ingest::default_db);
    let ing = open_ingester(&db, format.as_deref(), &format_files)?;
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
    let mut tailer = crate::tail::Tailer::new(ing, db.clone(), logs, rotated, std::time::Duration::from_millis(rescan_ms.max(10)));
    let _exporter = match metrics_addr {
        Some(addr) => {
            let m = crate::tail::metrics::TailMetrics::new();
            let enc = m.clone();
            let ex = crate::engine::MetricsExporter::start_with(move || enc.encode(), addr)?;
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

fn cmd_sql(query: Option<String>, db: Option<PathBuf>, format: SqlFormat, schema: bool) -> anyhow::Result<()> {
    use crate::query;
    let db = db.unwrap_or_else(crate::ingest::default_db);
    let sql = match (schema, query) {
        (true, _) => query::SCHEMA_SQL.to_string(),
        (false, Some(q)) => q,
        (false, None) => anyhow::bail!(UsageError("give a query, or --schema to list the tables and views".into())),
    };
    let r = query::query(&db, &sql)?;
    match format {
        SqlFormat::Table => print!("{}", query::render_table(&r)),
        SqlFormat::Csv => print!("{}", query::render_csv(&r)?),
        SqlFormat::Json => {
            let objs: Vec<serde_json::Map<String, serde_json::Value>> = r
                .rows
                .iter()
                .map(|row| r.columns.iter().cloned().zip(row.iter().cloned()).collect())
                .collect();
            println!("{}", serde_json::to_string_pretty(&objs)?);
        }
    }
    Ok(())
}

fn parse_time(flag: &str, v: &str) -> anyhow::Result<chrono::NaiveDateTime> {
    crate::engine::clock::parse_ts(v).ok_or_else(|| {
        UsageError(format!("{flag} `{v}` is not an RFC 3339 time (e.g. 2026-11-24T14:30:00Z)")).into()
    })
}

fn parse_duration(v: &str) -> anyhow::Result<chrono::Duration> {
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = num.parse().map_err(|_| UsageError(format!("--since `{v}` is not a duration like 24h, 90m or 7d")))?;
    Ok(match unit {
        "s" => chrono::Duration::seconds(n),
        "m" => chrono::Duration::minutes(n),
        "h" | "" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => anyhow::bail!(UsageError(format!("--since `{v}`: unit must be s, m, h or d"))),
    })
}

fn period_of(db: &crate::query::Session, since: Option<String>, from: Option<String>, until: Option<String>) -> anyhow::Result<crate::analysis::Period> {
    use crate::analysis::{data_range, Period};
    let now = chrono::Utc::now().naive_utc();
    if let Some(s) = since {
        return Ok(Period { from: now - parse_duration(&s)?, until: now });
    }
    let range = data_range(db)?;
    let from = match from {
        Some(f) => parse_time("--from", &f)?,
        None => range.map(|r| r.from).unwrap_or(now),
    };
    let until = match until {
        Some(u) => parse_time("--until", &u)?,
        None => range.map(|r| r.until).unwrap_or(now),
    };
    if until <= from {
        anyhow::bail!(UsageError("the period is empty: --until must be after --from".into()));
    }
    Ok(Period { from, until })
}

fn write_or_print(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Exit code of `report --fail-on-breach` when the SLO was breached.
pub const EXIT_SLO_BREACHED: u8 = 4;

/// The SLO was breached (for `--fail-on-breach`).
#[derive(Debug, thiserror::Error)]
#[error("the SLO was breached in the period ({0} minutes below target)")]
pub struct SloBreached(pub i64);

fn cmd_report(
    db: Option<PathBuf>,
    since: Option<String>,
    from: Option<String>,
    until: Option<String>,
    format: ReportFormat,
    out: Option<PathBuf>,
    fail_on_breach: bool,
) -> anyhow::Result<()> {
    use crate::{analysis, report};
    let db = analysis::session(&db.unwrap_or_else(crate::ingest::default_db))?;
    let period = period_of(&db, since, from, until)?;
    let r = analysis::report(&db, period)?;
    let text = match format {
        ReportFormat::Md => report::report_markdown(&r)?,
        ReportFormat::Json => report::report_json(&r) + "\n",
        ReportFormat::Html => report::report_html(&r)?,
    };
    write_or_print(out.as_deref(), &text)?;
    if fail_on_breach && r.slo.status == "breached" {
        return Err(SloBreached(r.slo.breach_minutes).into());
    }
    Ok(())
}

fn cmd_incident(
    db: Option<PathBuf>,
    from: Option<String>,
    to: Option<String>,
    last_alert: bool,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use crate::{analysis, report};
    let db = analysis::session(&db.unwrap_or_else(crate::ingest::default_db))?;
    let period = if last_alert {
        analysis::last_alert(&db)?
    } else {
        let (f, t) = (from.unwrap_or_default(), to.unwrap_or_default());
        crate::analysis::Period { from: parse_time("--from", &f)?, until: parse_time("--to", &t)? }
    };
    let inc = analysis::incident(&db, period)?;
    match format {
        ReportFormat::Html => write_or_print(out.as_deref(), &report::incident_html(&inc)?),
        ReportFormat::Json => write_or_print(out.as_deref(), &(serde_json::to_string_pretty(&inc)? + "\n")),
        ReportFormat::Md => {
            let chart = match &out {
                Some(p) => {
                    let svg = p.with_extension("svg");
                    std::fs::write(&svg, report::chart_svg(&inc.report)?).with_context(|| format!("writing {}", svg.display()))?;
                    svg.file_name().map(|n| n.to_string_lossy().to_string())
                }
                None => None,
            };
            write_or_print(out.as_deref(), &report::incident_markdown(&inc, chart.as_deref())?)
        }
    }
}

fn cmd_slo(db: Option<PathBuf>, at: Option<String>, json: bool) -> anyhow::Result<()> {
    use crate::analysis;
    let db = analysis::session(&db.unwrap_or_else(crate::ingest::default_db))?;
    let at = match at {
        Some(a) => parse_time("--at", &a)?,
        None => analysis::data_range(&db)?.map(|r| r.until).unwrap_or_else(|| chrono::Utc::now().naive_utc()),
    };
    let r = analysis::report(&db, analysis::Period { from: at - chrono::Duration::hours(6), until: at })?;
    let ratio_5m = r.timeline.iter().rev().find_map(|p| p.hit_ratio);
    let states: Vec<serde_json::Value> = ["FeatureStoreHitRatioLow", "FeatureStoreHitRatioCritical"]
        .iter()
        .map(|name| {
            // The state at `at`: firing between firing and resolution, pending before firing.
            let ts = |x: &Option<String>| x.as_deref().and_then(crate::engine::clock::parse_ts);
            let mut state = ("inactive", None);
            for a in r.alerts.iter().filter(|a| a.alert == *name) {
                let (p, f, e) = (ts(&a.pending_since), ts(&a.start), ts(&a.end));
                let open = e.is_none_or(|e| e > at);
                if f.is_some_and(|f| f <= at) && open {
                    state = ("firing", a.start.clone());
                } else if p.is_some_and(|p| p <= at) && f.is_none_or(|f| f > at) && open {
                    state = ("pending", a.pending_since.clone());
                }
            }
            serde_json::json!({"alert": name, "state": state.0, "since": state.1})
        })
        .collect();
    let v = serde_json::json!({
        "at": crate::engine::clock::fmt_ts(at),
        "hit_ratio_5m": ratio_5m,
        "slo_target": r.slo.target,
        "alerts": states,
        "error_budget": r.error_budget,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("at {}: 5-minute hit ratio {} (SLO >= {:.0}%)", v["at"].as_str().unwrap_or(""),
            ratio_5m.map(|x| format!("{:.2}%", x * 100.0)).unwrap_or_else(|| "n/a (no traffic)".into()), r.slo.target * 100.0);
        for s in &states {
            println!("  {:<30} {}{}", s["alert"].as_str().unwrap_or(""), s["state"].as_str().unwrap_or(""),
                s["since"].as_str().map(|x| format!(" since {x}")).unwrap_or_default());
        }
        let b = &r.error_budget;
        println!("  error budget ({} days): {} of {:.0} allowed misses used, {} remaining",
            b.window_days, b.window_misses, b.allowed_misses,
            b.remaining.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "n/a".into()));
    }
    Ok(())
}

fn cmd_demo(dir: Option<PathBuf>) -> anyhow::Result<()> {
    use crate::{analysis, report, sim};
    let dir = match dir {
        Some(d) => d,
        None => tempfile::Builder::new().prefix("cachescope-demo-").tempdir()?.keep(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("simulating mixed_day (seed 1, scale 0.5) into {} ...", dir.display());
    let truth = sim::simulate(&SimOptions {
        scenario: Scenario::MixedDay,
        seed: 1,
        scale: 0.5,
        out: dir.clone(),
        lock_helper: std::env::current_exe().context("locating the cachescope binary")?,
    })?;
    let db = dir.join("events.duckdb");
    let _ = std::fs::remove_file(&db);
    let mut ing = open_ingester(&db, None, &[])?;
    let sum = ing.ingest(&[dir.join("trading-system.log")], false, |_| {})?;
    drop(ing);
    eprintln!("{}", sum.line());
    let session = analysis::session(&db)?;
    let period = analysis::data_range(&session)?.ok_or_else(|| anyhow::anyhow!("the simulated log has no requests"))?;
    let r = analysis::report(&session, period)?;
    print!("{}", report::report_markdown(&r)?);
    let inc = analysis::incident(&session, period)?;
    std::fs::write(dir.join("incident.svg"), report::chart_svg(&inc.report)?)?;
    std::fs::write(dir.join("incident.md"), report::incident_markdown(&inc, Some("incident.svg"))?)?;
    std::fs::write(dir.join("incident.html"), report::incident_html(&inc)?)?;
    println!();
    println!("simulated truth: {} episodes; wrote {}/{{incident.md,incident.svg,incident.html,events.duckdb}}", truth.episodes.len(), dir.display());
    Ok(())
}

fn cmd_cache(op: CacheOp, config: Option<&Path>, log: Option<&Path>) -> anyhow::Result<()> {
    use crate::engine::{EventLog, FeatureStore, ParquetDirMarketData};
    let cfg = Config::load(config)?;
    let open = |market: Option<&Path>| -> anyhow::Result<FeatureStore> {
        let mut b = FeatureStore::builder(cfg.clone()).log(match log {
            Some(p) => EventLog::append_to(p, true).with_context(|| format!("opening the log {}", p.display()))?,
            None => EventLog::sink(),
        });
        if let Some(dir) = market {
            b = b.market_data(std::sync::Arc::new(ParquetDirMarketData::new(dir)));
        }
        Ok(b.open()?)
    };
    match op {
        CacheOp::Warm { symbols, feature_sets, range, market_data } => {
            let mut store = open(market_data.as_deref())?;
            let sets: Vec<String> = if feature_sets.is_empty() {
                store.feature_sets().iter().map(|c| c.set.name().to_string()).collect()
            } else {
                feature_sets
            };
            let (start, end) = match range {
                Some(r) => {
                    let (a, b) = r
                        .split_once("..")
                        .ok_or_else(|| UsageError(format!("--range `{r}` is not START..END")))?;
                    (parse_time("--range start", a)?, parse_time("--range end", b)?)
                }
                None => {
                    let y = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
                    (y.and_hms_opt(14, 30, 0).expect("valid"), y.and_hms_opt(21, 0, 0).expect("valid"))
                }
            };
            let r = store.warm(&symbols, &sets, start, end)?;
            println!(
                "warmed {} symbols x {} feature sets ({} .. {}): {} stored, {} already cached, {} failed",
                symbols.len(),
                sets.len(),
                crate::engine::clock::fmt_ts(start),
                crate::engine::clock::fmt_ts(end),
                r.stored,
                r.already_cached,
                r.failed
            );
            store.close();
            if r.failed > 0 {
                anyhow::bail!("{} warm-ups failed (see the engine log)", r.failed);
            }
        }
        CacheOp::Cleanup { dry_run } => {
            let mut store = open(None)?;
            let r = store.cleanup(dry_run);
            println!(
                "{}{} files older than {} days ({} bytes); {} files ({} bytes) remain",
                if dry_run { "would remove " } else { "removed " },
                r.removed_files,
                r.retention_days,
                r.freed_bytes,
                r.remaining_files,
                r.remaining_bytes
            );
            store.close();
        }
        CacheOp::RebuildManifest => {
            let manifest = cfg.manifest_path.clone();
            if manifest.exists() {
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
                let backup = PathBuf::from(format!("{}.backup-{stamp}", manifest.display()));
                std::fs::copy(&manifest, &backup).with_context(|| format!("backing up {} to {}", manifest.display(), backup.display()))?;
                std::fs::remove_file(&manifest).with_context(|| format!("removing {}", manifest.display()))?;
                let _ = std::fs::remove_file(format!("{}.wal", manifest.display()));
                println!("backed up {} to {}", manifest.display(), backup.display());
            }
            let store = open(None)?;
            let st = store.stats();
            println!(
                "rebuilt {} from the cache files: {} files, {} bytes",
                manifest.display(),
                st.cached_files,
                st.cached_bytes
            );
            store.close();
        }
        CacheOp::Stats { json } => {
            let store = open(None)?;
            let st = store.stats();
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                println!(
                    "cache {}: {} files, {} bytes of {} ({:.1}% of max_cache_size_gb); manifest {}",
                    cfg.cache_dir.display(),
                    st.cached_files,
                    st.cached_bytes,
                    st.max_bytes,
                    st.cached_bytes as f64 * 100.0 / st.max_bytes.max(1) as f64,
                    if st.manifest_available { "available" } else { "LOCKED by another process" }
                );
                println!("remembered keys by state: {}", st.by_state.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "));
                println!("symbols seen: {}", st.symbols);
            }
            store.close();
        }
    }
    Ok(())
}

/// `doctor` found warnings (1) or failures (2).
#[derive(Debug, thiserror::Error)]
#[error("doctor: {0} check(s) need attention")]
pub struct DoctorFindings(pub usize, pub u8);

fn cmd_doctor(config: Option<&Path>, db: Option<&Path>, format: Format) -> anyhow::Result<()> {
    use crate::doctor;
    let cfg = Config::load(config)?;
    let checks = doctor::run(&cfg, db, chrono::Utc::now().naive_utc());
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&checks)?),
        Format::Text => {
            for c in &checks {
                println!("[{:<4}] {}: {}", c.status.as_str(), c.name, crate::query::printable(&c.figure));
                if !c.action.is_empty() {
                    println!("       -> {}", c.action);
                }
            }
        }
    }
    let code = doctor::exit_code(&checks);
    if code > 0 {
        let n = checks.iter().filter(|c| c.status != doctor::Status::Ok).count();
        return Err(DoctorFindings(n, code).into());
    }
    Ok(())
}

/// A command used wrongly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit code when ingestion finished but quarantined lines or skipped files need a look.
pub const EXIT_INGEST_PARTIAL: u8 = 3;

fn cmd_ingest(src: LogSources, batch_lines: usize, json: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let LogSources { logs, db, rotated, format, format_files } = src;
    let db = db.unwrap_or_else(crate::ingest::default_db);
    let mut ing = open_ingester(&db, format.as_deref(), &format_files)?;
    ing.set_batch_lines(batch_lines);
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
    if sum.quarantined > 0 || sum.files.iter().any(|f| !matches!(f.status.as_str(), "read" | "up to date" | "waiting for a first line")) {
        return Err(PartialIngest(sum.quarantined, sum.unrecognized().len()).into());
    }
    Ok(())
}

/// Ingestion finished, but not everything became events.
#[derive(Debug, thiserror::Error)]
#[error("{0} lines quarantined (see table ingest_errors), {1} files in no known format")]
pub struct PartialIngest(pub u64, pub usize);

fn defaults_without_file() -> anyhow::Result<Config> {
    let env = std::env::vars().collect();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    Ok(Config::from_parts(None, None, &env, Some(home.as_deref().unwrap_or(Path::new("/tmp"))))?)
}

/// The human summary of a replay.
pub fn render_summary(s: &ReplaySummary, elapsed_s: f64, temp_cache: bool) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "replayed {} rows ({} .. {}) in {:.2} s",
        s.rows,
        s.first_ts.as_deref().unwrap_or("-"),
        s.last_ts.as_deref().unwrap_or("-"),
        elapsed_s
    );
    let ratio = s
        .hit_ratio
        .map(|r| format!("{:.2}% ({})", r * 100.0, if r >= 0.95 { "SLO >= 95%: met" } else { "SLO >= 95%: BREACHED" }))
        .unwrap_or_else(|| "n/a (no requests)".into());
    let _ = writeln!(o, "requests {}  hits {}  misses {}  hit ratio {}", s.requests, s.hits, s.misses, ratio);
    if s.failed_requests > 0 {
        let _ = writeln!(o, "failed requests (computation errors): {}", s.failed_requests);
    }
    let _ = writeln!(o, "misses by reason:");
    let mut reasons: Vec<_> = s.misses_by_reason.iter().filter(|(_, n)| **n > 0).collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if reasons.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for (r, n) in reasons {
        let share = if s.misses > 0 { *n as f64 * 100.0 / s.misses as f64 } else { 0.0 };
        let _ = writeln!(o, "  {r:<22}{n:>8}  {share:5.1}%");
    }
    let _ = writeln!(
        o,
        "invalidated {}  cleanup removed {}  warmed {}  files deleted externally {}",
        s.invalidated, s.cleanup_removed_files, s.warmed, s.files_deleted
    );
    let _ = writeln!(
        o,
        "cache at end: {} files, {} bytes in {}{}",
        s.cached_files_at_end,
        s.cached_bytes_at_end,
        s.cache_dir,
        if temp_cache { " (temporary, removed)" } else { "" }
    );
    let _ = writeln!(o, "log: {}", s.log);
    o
}

fn cmd_feature_sets(config: Option<&Path>, format: Format) -> anyhow::Result<()> {
    let overrides = match config {
        Some(p) => Config::load(Some(p))?.feature_sets,
        None => Default::default(),
    };
    let reg = FeatureRegistry::with_builtins(&overrides).context("applying [feature_sets] overrides")?;
    match format {
        Format::Json => {
            let v: Vec<_> = reg
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "name": c.set.name(),
                        "description": c.set.description(),
                        "params": c.params,
                        "config_hash": c.config_hash,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            println!("{:<15} {:<17} {:<22} description", "name", "config_hash", "params");
            for c in reg.iter() {
                let p = c.params_string();
                println!(
                    "{:<15} {:<17} {:<22} {}",
                    c.set.name(),
                    c.config_hash,
                    if p.is_empty() { "-".to_string() } else { p },
                    c.set.description()
                );
            }
        }
    }
    Ok(())
}
