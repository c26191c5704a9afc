//! The exported tables' rows (decoded by column name from `queries/export_*.sql`) as Arrow
//! batches with fixed schemas: the contract docs/export.md documents.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use super::ExportError;

/// The per-minute figures.
pub const MINUTES: &str = "request_minutes";
/// The misses with their causes and log lines.
pub const MISSES: &str = "misses";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinuteRow {
    minute_us: i64,
    feature_set: String,
    hits: i64,
    misses: i64,
    hit_bytes: i64,
    miss_bytes: i64,
    latency_us: i64,
    first_us: i64,
    last_us: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissRow {
    ts_us: i64,
    symbol: Option<String>,
    feature_set: Option<String>,
    key: Option<String>,
    slot: Option<String>,
    cause: String,
    basis: String,
    logged_reason: Option<String>,
    outcome: Option<String>,
    config: Option<String>,
    data_version: Option<String>,
    file: Option<String>,
    line_no: i64,
    raw: Option<String>,
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// The schema of `request_minutes` files.
pub fn minutes_schema() -> SchemaRef {
    let i = |n: &str| Field::new(n, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new("minute", ts(), false),
        Field::new("feature_set", DataType::Utf8, false),
        i("hits"),
        i("misses"),
        i("hit_bytes"),
        i("miss_bytes"),
        i("latency_us"),
        Field::new("first_ts", ts(), false),
        Field::new("last_ts", ts(), false),
    ]))
}

/// The schema of `misses` files.
pub fn misses_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        Field::new("ts", ts(), false),
        s("symbol", true),
        s("feature_set", true),
        s("key", true),
        s("slot", true),
        s("cause", false),
        s("basis", false),
        s("logged_reason", true),
        s("outcome", true),
        s("config", true),
        s("data_version", true),
        s("file", true),
        Field::new("line_no", DataType::Int64, false),
        s("raw", true),
    ]))
}

fn batch(table: &'static str, schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch, ExportError> {
    RecordBatch::try_new(schema, columns).map_err(|source| ExportError::Arrow { table, source })
}

pub fn minutes(rows: &[MinuteRow]) -> Result<RecordBatch, ExportError> {
    let i = |f: fn(&MinuteRow) -> i64| Arc::new(Int64Array::from_iter_values(rows.iter().map(f))) as ArrayRef;
    let t = |f: fn(&MinuteRow) -> i64| Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(f))) as ArrayRef;
    batch(
        MINUTES,
        minutes_schema(),
        vec![
            t(|r| r.minute_us),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.feature_set.as_str()))),
            i(|r| r.hits),
            i(|r| r.misses),
            i(|r| r.hit_bytes),
            i(|r| r.miss_bytes),
            i(|r| r.latency_us),
            t(|r| r.first_us),
            t(|r| r.last_us),
        ],
    )
}

pub fn misses(rows: &[MissRow]) -> Result<RecordBatch, ExportError> {
    let s = |f: fn(&MissRow) -> Option<&str>| Arc::new(StringArray::from_iter(rows.iter().map(f))) as ArrayRef;
    batch(
        MISSES,
        misses_schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.ts_us))),
            s(|r| r.symbol.as_deref()),
            s(|r| r.feature_set.as_deref()),
            s(|r| r.key.as_deref()),
            s(|r| r.slot.as_deref()),
            s(|r| Some(r.cause.as_str())),
            s(|r| Some(r.basis.as_str())),
            s(|r| r.logged_reason.as_deref()),
            s(|r| r.outcome.as_deref()),
            s(|r| r.config.as_deref()),
            s(|r| r.data_version.as_deref()),
            s(|r| r.file.as_deref()),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.line_no))),
            s(|r| r.raw.as_deref()),
        ],
    )
}
