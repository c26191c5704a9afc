//! The command line: clap types (`args`) and the thin glue from each subcommand to the
//! library, by habit: `ingest` (ingest, tail), `analysis` (sql, report, incident, slo) and
//! `engine` (replay, demo, cache, doctor, feature-sets).
//! Exit codes: 0 success, 1 runtime failure, 2 bad input (arguments, configuration, trace),
//! and per command as README says (`ingest` 3, `report --fail-on-breach` 4, `doctor`).

mod analysis;
mod args;
mod engine;
mod ingest;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::engine::ConfigError;
use crate::replay::{self, ReplayError};
use crate::sim::{self, Scenario, SimError, SimOptions};

pub use analysis::{SloBreached, EXIT_SLO_BREACHED};
pub use args::*;
pub use engine::{render_summary, DoctorFindings};
pub use ingest::{PartialIngest, EXIT_INGEST_PARTIAL};
use analysis::{cmd_export, cmd_incident, cmd_report, cmd_slo, cmd_sql, cmd_whatif};
use engine::{cmd_cache, cmd_demo, cmd_doctor, cmd_feature_sets, cmd_replay};
use ingest::{cmd_ingest, cmd_reclassify, cmd_tail};

/// Parses the command line, runs it, maps errors to exit codes.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The library's own diagnostics (a tailer that lost its lock, a setting it could not give
/// back, what-if retrying a sort) go to standard error; `RUST_LOG` chooses how much
/// (default `warn`; `RUST_LOG=cachescope=debug` also times each of the crate's queries).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).try_init();
}

/// The error and its causes, `: `-separated, leaving out a cause whose text an outer
/// message already quotes (most of ours end with `: {source}`). DuckDB's message is the
/// last word: below it is only its numeric code ("Error code 1: Unknown error code").
fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        if cause.downcast_ref::<duckdb::ffi::Error>().is_some() {
            break;
        }
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
                crate::query::QueryError::ReadOnly(_) | crate::query::QueryError::Sql(_) | crate::query::QueryError::Duck(_) | crate::query::QueryError::Missing { .. } => 2,
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
        Command::Reclassify { db } => cmd_reclassify(db),
        Command::Tail { src, rescan_ms, metrics_addr, query_memory } => cmd_tail(src, rescan_ms, metrics_addr, query_memory),
        Command::Sql { query, db, format, schema } => cmd_sql(query, db, format, schema),
        Command::Report { db, fleet, period, format, out, fail_on_breach } => cmd_report(db, fleet, period, format, out, fail_on_breach),
        Command::Incident {
            db,
            fleet,
            from,
            to,
            last_alert,
            format,
            out,
        } => cmd_incident(db, fleet, from, to, last_alert, format, out),
        Command::Slo { db, fleet, at, output } => cmd_slo(db, fleet, at, output.json()),
        Command::Whatif { db, period, capacity_gb, retention_days, sample, format, out } => {
            cmd_whatif(analysis::WhatIfArgs { db, period, capacity_gb, retention_days, sample, format, out })
        }
        Command::Export { db, out, host, period, json } => cmd_export(db, out, host, period, json),
        Command::Demo { dir } => cmd_demo(dir),
        Command::Doctor { config, db, format } => cmd_doctor(config.as_deref(), db.as_deref(), format),
        Command::Cache { op, config, log } => cmd_cache(op, config.as_deref(), log.as_deref()),
        Command::FeatureSets { config, format } => cmd_feature_sets(config.as_deref(), format),
        Command::HoldManifestLock { manifest } => replay::hold_manifest_lock(&manifest)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("holding the lock of {}", manifest.display())),
    }
}

/// A time given on the command line. One before the accepted times is fine (no line is older);
/// one after them is refused, as no analysis can run up to it.
pub(super) fn parse_time(flag: &str, v: &str) -> anyhow::Result<chrono::NaiveDateTime> {
    use crate::engine::clock;
    let t = clock::parse_ts(v)
        .ok_or_else(|| UsageError(format!("{flag} `{v}` is not an RFC 3339 time (e.g. 2026-11-24T14:30:00Z)")))?;
    if t.and_utc().timestamp_micros() >= clock::ACCEPTED_MICROS.end {
        anyhow::bail!(UsageError(format!("{flag} `{v}` is after the times cachescope handles ({}); give an earlier time", clock::accepted_span())));
    }
    Ok(t)
}

/// A command used wrongly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_quotes_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(crate::ingest::IngestError::CreateDir { path: "/proc/nope".into(), source: io })
            .context("opening the events database");
        let text = describe(&e);
        assert_eq!(text.matches("No such file or directory").count(), 1, "{text}");
        assert!(text.starts_with("opening the events database: cannot create /proc/nope"), "{text}");
        // A cause that adds something is kept.
        let e = anyhow::anyhow!("disk full").context("committing batch 3");
        assert_eq!(describe(&e), "committing batch 3: disk full");
    }
}
