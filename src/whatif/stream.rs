//! Reading the request stream for what-if sizing from the events database and running it
//! through the stack: each request's distance, in order, and what a cache of any size could
//! not have served.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};
use duckdb::Connection;

use super::StackDistances;
use crate::queries;
use crate::vocab::{Event, FillOutcome, RetireReason};

/// Each request's stack distance (`None`: no capacity serves it), in order.
#[derive(Debug, Default)]
pub struct Distances {
    pub distances: Vec<Option<u64>>,
    /// Bytes of every key ever stored: the cache that never evicts.
    pub working_set_bytes: u64,
    pub keys: u64,
}

/// Runs the requests of `[from, until)` through the stack. Modelled: a hit or a stored miss
/// uses its key (a hit of a key stored before the period counts as a hit at its own size);
/// a warm-up stores without a request; a miss the engine could not store (write or compute
/// failure, manifest outage) misses at any size; invalidations, deleted files and retention
/// clean-ups take the key out at any size. Capacity evictions are what is modelled.
pub fn distances(conn: &Connection, from: &str, until: &str) -> duckdb::Result<Distances> {
    let mut stmt = conn.prepare(queries::WHATIF_STREAM)?;
    // Streamed in Arrow chunks: a month's requests are never all in memory at once.
    let batches = stmt.stream_arrow([from, until])?;
    // Keys as compact ids: engine keys by their number, other keys by their text.
    let mut by_number: HashMap<u64, u64, foldhash::fast::RandomState> = HashMap::default();
    let mut by_text: HashMap<String, u64> = HashMap::new();
    let mut stack = StackDistances::with_capacity(1 << 16);
    let mut out = Distances::default();
    let column = |b: &RecordBatch, name: &str, to: &DataType| -> duckdb::Result<ArrayRef> {
        let c = b.column_by_name(name).ok_or_else(|| duckdb::Error::InvalidColumnName(name.into()))?;
        arrow::compute::cast(c, to).map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))
    };
    for batch in batches {
        let b = batch?;
        let (event, key_num, key_text) = (column(&b, "event", &DataType::Utf8)?, column(&b, "key_num", &DataType::UInt64)?, column(&b, "key_text", &DataType::Utf8)?);
        let (bytes, outcome, reason) = (column(&b, "bytes", &DataType::Int64)?, column(&b, "outcome", &DataType::Utf8)?, column(&b, "reason", &DataType::Utf8)?);
        let (event, key_num, key_text) = (event.as_string::<i32>(), key_num.as_primitive::<UInt64Type>(), key_text.as_string::<i32>());
        let (bytes, outcome, reason) = (bytes.as_primitive::<Int64Type>(), outcome.as_string::<i32>(), reason.as_string::<i32>());
        for i in 0..b.num_rows() {
            let next = (by_number.len() + by_text.len()) as u64;
            let id = if key_num.is_valid(i) {
                *by_number.entry(key_num.value(i)).or_insert(next)
            } else {
                match by_text.get(key_text.value(i)) {
                    Some(id) => *id,
                    None => *by_text.entry(key_text.value(i).to_string()).or_insert(next),
                }
            };
            let bytes = bytes.value(i).max(0) as u64;
            let (outcome, reason) = (outcome.value(i), reason.value(i));
            match Event::parse(event.value(i)) {
                Some(Event::Hit) => {
                    let d = stack.access(id, bytes);
                    // Cached before the period: it was served, at least its own size was needed.
                    out.distances.push(Some(d.unwrap_or(bytes)));
                }
                Some(Event::Miss) => match FillOutcome::parse(outcome) {
                    Some(FillOutcome::Stored) | None => out.distances.push(stack.access(id, bytes)),
                    Some(FillOutcome::Uncached) => out.distances.push(None),
                    Some(FillOutcome::WriteFailed | FillOutcome::ComputeFailed) => {
                        out.distances.push(None);
                        stack.drop_key(id);
                    }
                },
                Some(Event::WarmFill) if FillOutcome::parse(outcome) == Some(FillOutcome::Stored) => {
                    stack.access(id, bytes);
                }
                Some(Event::Invalidation | Event::MissingFile) => stack.drop_key(id),
                Some(Event::Eviction) if RetireReason::parse(reason) == Some(RetireReason::Retention) => stack.drop_key(id),
                _ => {}
            }
        }
    }
    out.working_set_bytes = stack.working_set_bytes();
    out.keys = (by_number.len() + by_text.len()) as u64;
    Ok(out)
}
