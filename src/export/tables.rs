//! The exported tables' rows (decoded by column name from `queries/export_*.sql`) as Arrow
//! batches with fixed schemas: the contract docs/export.md documents.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use super::ExportError;

/// The per-minute figures.
pub const MINUTES: &str = "request_minutes";
/// The misses with their causes and log lines.
pub const MISSES: &str = "misses";
/// The episodes (by the day they start) with their first evidence.
pub const EPISODES: &str = "episodes";

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpisodeRow {
    kind: String,
    start_us: i64,
    end_us: i64,
    misses: i64,
    keys: i64,
    n_symbols: i64,
    symbols: Vec<String>,
    causes: Vec<String>,
    runbook: String,
    first_signal: Option<String>,
    signal_file: Option<String>,
    signal_line_no: Option<i64>,
    first_miss_line: Option<String>,
    miss_file: Option<String>,
    miss_line_no: Option<i64>,
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

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The schema of `episodes` files.
pub fn episodes_schema() -> SchemaRef {
    let s = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    let i = |n: &str, null: bool| Field::new(n, DataType::Int64, null);
    Arc::new(Schema::new(vec![
        s("kind", false),
        Field::new("start", ts(), false),
        Field::new("end", ts(), false),
        i("misses", false),
        i("keys", false),
        i("n_symbols", false),
        Field::new("symbols", string_list(), false),
        Field::new("causes", string_list(), false),
        s("runbook", false),
        s("first_signal", true),
        s("signal_file", true),
        i("signal_line_no", true),
        s("first_miss_line", true),
        s("miss_file", true),
        i("miss_line_no", true),
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

pub fn episodes(rows: &[EpisodeRow]) -> Result<RecordBatch, ExportError> {
    let s = |f: fn(&EpisodeRow) -> Option<&str>| Arc::new(StringArray::from_iter(rows.iter().map(f))) as ArrayRef;
    let i = |f: fn(&EpisodeRow) -> Option<i64>| Arc::new(Int64Array::from_iter(rows.iter().map(f))) as ArrayRef;
    let t = |f: fn(&EpisodeRow) -> i64| Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(f))) as ArrayRef;
    let list = |f: fn(&EpisodeRow) -> &Vec<String>| {
        let mut b = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("item", DataType::Utf8, true)));
        for r in rows {
            for v in f(r) {
                b.values().append_value(v);
            }
            b.append(true);
        }
        Arc::new(b.finish()) as ArrayRef
    };
    batch(
        EPISODES,
        episodes_schema(),
        vec![
            s(|r| Some(r.kind.as_str())),
            t(|r| r.start_us),
            t(|r| r.end_us),
            i(|r| Some(r.misses)),
            i(|r| Some(r.keys)),
            i(|r| Some(r.n_symbols)),
            list(|r| &r.symbols),
            list(|r| &r.causes),
            s(|r| Some(r.runbook.as_str())),
            s(|r| r.first_signal.as_deref()),
            s(|r| r.signal_file.as_deref()),
            i(|r| r.signal_line_no),
            s(|r| r.first_miss_line.as_deref()),
            s(|r| r.miss_file.as_deref()),
            i(|r| r.miss_line_no),
        ],
    )
}
