//! `cachescope export`: one host's per-minute figures, classified misses and episodes as
//! Hive-partitioned Parquet (`<out>/<table>/host=<host>/date=<YYYY-MM-DD>/part-0.parquet`,
//! ZSTD), for an existing engine to read across a fleet (DuckDB over many files, ClickHouse,
//! Trino). Each (table, host, day) is one file, written aside and renamed into place: a
//! re-run replaces a day atomically and nothing half-written is ever visible. Reads through a
//! running `tail`'s socket like every reader. [`tables`] turns rows into Arrow batches;
//! [`write`] writes one file.

pub mod tables;
pub mod write;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::analysis::Period;
use crate::queries;
use crate::query::{QueryError, Session};

/// Failure of an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the events database: {0}")]
    Query(#[from] QueryError),
    #[error("host name `{0}`: use letters, digits, `.`, `-` and `_` (it names a directory)")]
    BadHost(String),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: crate::BoxError },
    #[error("building the {table} batch: {source}")]
    Arrow { table: &'static str, source: arrow::error::ArrowError },
}

/// The tables an export writes, as their directories are named.
pub const TABLES: [&str; 3] = [tables::MINUTES, tables::MISSES, tables::EPISODES];

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExportSummary {
    pub host: String,
    pub days: Vec<String>,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Whether `host` can name a partition directory (`host=<host>`).
pub fn valid_host(host: &str) -> bool {
    !host.is_empty() && !host.starts_with('.') && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The file of one table's day.
pub fn partition_file(out: &Path, table: &str, host: &str, day: &str) -> PathBuf {
    out.join(table).join(format!("host={host}")).join(format!("date={day}")).join("part-0.parquet")
}

/// Exports every day of `period` that has requests.
pub fn export(db: &Session, out: &Path, host: &str, period: Period) -> Result<ExportSummary, ExportError> {
    if !valid_host(host) {
        return Err(ExportError::BadHost(host.to_string()));
    }
    #[derive(serde::Deserialize)]
    struct Day {
        day: String,
    }
    let params = [period.from.to_string(), period.until.to_string()];
    let days: Vec<Day> = db.query_own(queries::EXPORT_DAYS, &params)?.decode()?;
    let mut summary = ExportSummary { host: host.to_string(), ..Default::default() };
    for Day { day } in days {
        let start = format!("{day} 00:00:00");
        let end = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .map(|d| (d + chrono::Duration::days(1)).format("%Y-%m-%d 00:00:00").to_string())
            .map_err(|e| ExportError::Query(QueryError::Decode(format!("day `{day}`: {e}"))))?;
        let day_params = [start, end];
        let batches = [
            (tables::MINUTES, tables::minutes(&db.query_own(queries::EXPORT_MINUTES, &day_params)?.decode()?)?),
            (tables::MISSES, tables::misses(&db.query_own(queries::EXPORT_MISSES, &day_params)?.decode()?)?),
            (tables::EPISODES, tables::episodes(&db.query_own(queries::EXPORT_EPISODES, &day_params)?.decode()?)?),
        ];
        for (table, batch) in batches {
            let path = partition_file(out, table, host, &day);
            summary.bytes += write::replace(&path, &batch)?;
            summary.rows += batch.num_rows() as u64;
            summary.files += 1;
        }
        summary.days.push(day);
    }
    Ok(summary)
}
