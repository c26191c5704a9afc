//! cachescope: a feature-store cache engine and the log-driven pipeline that explains its
//! cache misses.
//!
//! Stages, one module each:
//! - [`engine`]: `FeatureStore::get_or_compute` over Parquet+zstd cache files and a DuckDB
//!   manifest, instrumented with a line-per-event log (the contract in `docs/log-format.md`)
//!   and Prometheus metrics.
//! - [`replay`]: drives the real engine from a CSV trace on a virtual clock, injecting faults
//!   at the boundary (`docs/trace-format.md`).
//! - [`sim`]: scenario simulator: realistic traces with injected episodes, replayed through
//!   the engine, with the ground truth in `scenario.json`.
//! - [`ingest`]: log files into a DuckDB events database, exactly once (checkpoints
//!   committed with the rows; rotation, truncation and archives handled).
//! - [`tail`]: follows logs into the events database and serves queries meanwhile.
//! - [`query`]: read-only SQL over the events database, directly or through the tailer.
//! - [`analysis`]: reports and incident summaries from the SQL views.
//! - [`report`]: rendering them (Markdown, JSON, HTML, SVG chart).
//! - [`doctor`]: the runbook's health checks as one command.
//! - [`queries`]: every SQL statement the crate runs, loaded from `queries/*.sql`.
//! - [`whatif`]: what-if cache sizing from the request stream: the capacity and retention
//!   that would have held the SLO.
//! - [`export`]: a host's per-minute figures and classified misses as Hive-partitioned Parquet.
//! - [`vocab`]: the log's vocabulary (event, field, reason and cause names), defined once.
//! - [`cli`]: the command-line interface (clap types live only there).

/// The source of an error that may be any library's error or our own message, kept whole
/// (`Error::source` chains reach it).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub mod analysis;
pub mod cli;
pub mod doctor;
pub mod engine;
pub mod export;
pub mod fleet;
pub mod ingest;
pub mod queries;
pub mod query;
pub mod replay;
pub mod report;
pub mod sim;
pub mod tail;
pub mod vocab;
pub mod whatif;
