//! The command line's clap types: every subcommand, flag and default. Nothing else in the
//! crate depends on clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

/// `--format text|json`, the flag every command that prints a summary takes (`--json` is
/// still read, hidden, for scripts written before).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Output {
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[arg(long, hide = true)]
    json: bool,
}

impl Output {
    pub fn json(&self) -> bool {
        self.json || matches!(self.format, Format::Json)
    }
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
    /// Also backfill each log's rotated archives, oldest first; `tail` does it once at start.
    /// Found beside each log: numbered (NAME.1, NAME.2.gz, NAME.3.zst), logrotate's dateext
    /// (NAME-YYYYMMDD, NAME-YYYYMMDDHH, NAME-YYYYMMDD-EPOCH, and the .backup it makes of one
    /// whose name it needs again) and Python's
    /// TimedRotatingFileHandler (NAME.YYYY-MM-DD, NAME.YYYY-MM-DD_HH[-MM[-SS]]), each plain,
    /// .gz or .zst.
    #[arg(long)]
    pub rotated: bool,
    /// Archives under other names: a glob such as '/var/log/app/old/app-*.log.gz' (quote it);
    /// may be repeated. Read like the archives --rotated finds.
    #[arg(long = "archives", value_name = "GLOB")]
    pub archives: Vec<String>,
    /// Read every file with this format instead of detecting it (engine, python, json, or a
    /// --format-file's name).
    #[arg(long)]
    pub format: Option<String>,
    /// A user-defined format (TOML of named-capture regexes); may be repeated.
    #[arg(long = "format-file")]
    pub format_files: Vec<PathBuf>,
    /// The zone of times written without one (Python's asctime is the writing host's local
    /// time): an IANA name such as America/New_York, `local` (this machine's) or UTC. Times
    /// with Z or an offset (the engine's) are read as they say.
    #[arg(long, default_value = "UTC", value_parser = crate::ingest::zone::Zone::parse)]
    pub timezone: crate::ingest::zone::Zone,
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
        /// START..END in RFC 3339 (default: the last 09:30-16:00 America/New_York session
        /// before now, in UTC: yesterday's, or Friday's after a weekend; holidays not known).
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
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq)]
pub enum ReportFormat {
    Md,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WhatIfFormat {
    Md,
    Json,
    Svg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SqlFormat {
    Table,
    Csv,
    Json,
}

/// The period a report, an export or a what-if covers.
#[derive(Debug, Clone, Args)]
pub struct PeriodArgs {
    /// The last DURATION before now (e.g. 24h, 90m, 7d).
    #[arg(long, conflicts_with_all = ["from", "until"])]
    pub since: Option<String>,
    /// Start (RFC 3339); without --since/--from: the whole database.
    #[arg(long)]
    pub from: Option<String>,
    /// End (RFC 3339, exclusive; default: now with --since, else the end of the data).
    #[arg(long)]
    pub until: Option<String>,
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
        /// Print the summary as JSON (here `--format` names the logs' format).
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the derived tables (per-minute figures, miss causes, episodes) from the
    /// events, a day per transaction: after a crash you distrust, after late lines, or to
    /// check them. Needs the database to itself (stop `tail` first).
    Reclassify {
        #[arg(long)]
        db: Option<PathBuf>,
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
        /// Memory a query through the socket may use on top of the tailer's own budget
        /// (e.g. 512MB, 2GB; a bare number is MB); beyond it DuckDB spills to `<db>.tmp/`.
        /// Readers on the file take the same cap from $CACHESCOPE_QUERY_MEMORY.
        #[arg(long, env = crate::query::QUERY_MEMORY_ENV, value_parser = crate::query::parse_megabytes, default_value_t = crate::tail::DEFAULT_QUERY_MEMORY_MB)]
        query_memory: u64,
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
        /// Every host's exported files (`cachescope export`): their directory, or a glob of
        /// directories or files. The fleet's figures from counts summed over the hosts, with
        /// each host's own (docs/fleet.md).
        #[arg(long, conflicts_with = "db", value_name = "DIR or GLOB")]
        fleet: Option<String>,
        #[command(flatten)]
        period: PeriodArgs,
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Write to FILE instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit with code 4 when the SLO was breached in the period.
        #[arg(long)]
        fail_on_breach: bool,
    },
    /// What-if cache sizing: the hit ratio every capacity and retention would have had over
    /// the requests of the period, what no capacity fixes, and the smallest
    /// `max_cache_size_gb` that holds the SLO over the period and in every 5-minute window
    /// (the engine's own eviction policy, replayed; through a running `tail` as on the file).
    Whatif {
        #[arg(long)]
        db: Option<PathBuf>,
        #[command(flatten)]
        period: PeriodArgs,
        /// Capacities to show, in GB, comma-separated (default: a curve up to the working set).
        #[arg(long, value_delimiter = ',')]
        capacity_gb: Vec<f64>,
        /// Retentions to try, in days, comma-separated (default: the clean-ups as they ran).
        #[arg(long, value_delimiter = ',')]
        retention_days: Vec<f64>,
        /// Simulate a spatial sample of this share of the keys (0 < RATE <= 1; default: exact).
        /// For months of requests over many keys: the error is measured in BENCHMARKS.md.
        #[arg(long)]
        sample: Option<f64>,
        #[arg(long, value_enum, default_value = "md")]
        format: WhatIfFormat,
        /// Write to FILE instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export the per-minute figures and the classified misses as Hive-partitioned Parquet
    /// (`OUT/<table>/host=<host>/date=<day>/part-0.parquet`) for a fleet-wide engine; each day
    /// replaced atomically (docs/export.md).
    Export {
        #[arg(long)]
        db: Option<PathBuf>,
        /// The directory (local or mounted) to write into.
        #[arg(long)]
        out: PathBuf,
        /// The host's name in the partitions (default: this machine's host name).
        #[arg(long)]
        host: Option<String>,
        #[command(flatten)]
        period: PeriodArgs,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The post-incident root-cause summary (Markdown with an SVG chart beside it, or HTML).
    Incident {
        #[arg(long)]
        db: Option<PathBuf>,
        /// Every host's exported files (`cachescope export`): their directory, or a glob of
        /// directories or files. The fleet's figures from counts summed over the hosts, with
        /// each host's own (docs/fleet.md).
        #[arg(long, conflicts_with = "db", value_name = "DIR or GLOB")]
        fleet: Option<String>,
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
        /// Every host's exported files (`cachescope export`): their directory, or a glob of
        /// directories or files. The fleet's figures from counts summed over the hosts, with
        /// each host's own (docs/fleet.md).
        #[arg(long, conflicts_with = "db", value_name = "DIR or GLOB")]
        fleet: Option<String>,
        /// The moment (RFC 3339).
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        output: Output,
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

/// `HOST:PORT`, or `:PORT` for 127.0.0.1.
pub(super) fn parse_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let full = if s.starts_with(':') { format!("127.0.0.1{s}") } else { s.to_string() };
    full.parse().map_err(|_| format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:9187)"))
}


#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommand_s_flags_are_well_formed() {
        // clap's own checks (no two arguments of a command with one name, ...), which a
        // release build only meets at run time, as a panic.
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

}
