//! Reading the request stream for what-if sizing from the events database into a compact
//! [`Trace`]: the keys numbered densely, each event reduced to what it does to a cache.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};

use super::trace::{key_hash, retention_ms, sampled, Op, OpKind, Trace, MAX_KEYS};
use crate::queries;
use crate::query::{QueryError, Session};
use crate::vocab::{Event, FillOutcome, RetireReason};

/// Reads the events of `[warm_from, until)`; those before `from` only warm the cache up; with
/// `sample_rate`, only the events of a spatial sample of keys; with `times`, each event's time
/// in microseconds too (to cut the trace of a shorter period out of it: [`Trace::slice`]).
/// Streamed in Arrow chunks, from the file or through a running tailer: the database's rows
/// are never all in memory at once.
pub fn read(db: &Session, warm_from: &str, from_ms: i64, until: &str, sample_rate: Option<f64>, mut times: Option<&mut Vec<i64>>) -> Result<Trace, QueryError> {
    // Keys as compact ids: engine keys by their number, other keys by their text.
    let mut by_number: HashMap<u64, u32, foldhash::fast::RandomState> = HashMap::default();
    let mut by_text: HashMap<String, u32> = HashMap::new();
    let mut trace = Trace { from_ms, sample_rate, ..Default::default() };
    let column = |b: &RecordBatch, name: &str, to: &DataType| -> duckdb::Result<ArrayRef> {
        let c = b.column_by_name(name).ok_or_else(|| duckdb::Error::InvalidColumnName(name.into()))?;
        arrow::compute::cast(c, to).map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))
    };
    let too_many = || duckdb::Error::ToSqlConversionFailure(format!("more than {MAX_KEYS} distinct keys: narrow the period (--since, --from/--until)").into());
    db.stream_own(queries::WHATIF_STREAM, &[warm_from.to_string(), until.to_string()], &mut |b: &RecordBatch| {
        let us = column(&b, "us", &DataType::Int64)?;
        let us = us.as_primitive::<Int64Type>();
        let (ms, event, key_num, key_text) = (
            column(&b, "ms", &DataType::Int64)?,
            column(&b, "event", &DataType::Utf8)?,
            column(&b, "key_num", &DataType::UInt64)?,
            column(&b, "key_text", &DataType::Utf8)?,
        );
        let (bytes, outcome, reason, days) = (
            column(&b, "bytes", &DataType::Int64)?,
            column(&b, "outcome", &DataType::Utf8)?,
            column(&b, "reason", &DataType::Utf8)?,
            column(&b, "retention_days", &DataType::Float64)?,
        );
        let (ms, event, key_num, key_text) = (ms.as_primitive::<Int64Type>(), event.as_string::<i32>(), key_num.as_primitive::<UInt64Type>(), key_text.as_string::<i32>());
        let (bytes, outcome, reason, days) = (bytes.as_primitive::<Int64Type>(), outcome.as_string::<i32>(), reason.as_string::<i32>(), days.as_primitive::<Float64Type>());
        for i in 0..b.num_rows() {
            let kind = match Event::parse(event.value(i)) {
                Some(Event::Hit) => OpKind::Hit,
                Some(Event::Miss) => match FillOutcome::parse(outcome.value(i)) {
                    Some(FillOutcome::Stored) | None => OpKind::MissStored,
                    Some(FillOutcome::Uncached) => OpKind::MissUncached,
                    Some(FillOutcome::WriteFailed | FillOutcome::ComputeFailed) => OpKind::MissFailed,
                },
                Some(Event::WarmFill) if FillOutcome::parse(outcome.value(i)) == Some(FillOutcome::Stored) => OpKind::WarmStored,
                Some(Event::Invalidation | Event::MissingFile) => OpKind::Drop,
                Some(Event::Eviction) if RetireReason::parse(reason.value(i)) == Some(RetireReason::Retention) => OpKind::RetentionEviction,
                Some(Event::Cleanup) if days.is_valid(i) => {
                    trace.cleanup_retention_ms.push(retention_ms(days.value(i)));
                    let index = trace.cleanup_retention_ms.len() as u64 - 1;
                    trace.ops.push(Op::new(ms.value(i), OpKind::Cleanup, 0, index));
                    if let Some(t) = times.as_deref_mut() {
                        t.push(us.value(i));
                    }
                    continue;
                }
                _ => continue,
            };
            let number = key_num.is_valid(i).then(|| key_num.value(i));
            if let Some(rate) = sample_rate {
                if !sampled(key_hash(number, key_text.value(i)), rate) {
                    continue;
                }
            }
            let next = (by_number.len() + by_text.len()) as u32;
            if next >= MAX_KEYS {
                return Err(too_many().into());
            }
            let id = if let Some(n) = number {
                *by_number.entry(n).or_insert(next)
            } else {
                match by_text.get(key_text.value(i)) {
                    Some(id) => *id,
                    None => *by_text.entry(key_text.value(i).to_string()).or_insert(next),
                }
            };
            trace.ops.push(Op::new(ms.value(i), kind, id, bytes.value(i).max(0) as u64));
            if let Some(t) = times.as_deref_mut() {
                t.push(us.value(i));
            }
        }
        Ok(())
    })?;
    trace.keys = (by_number.len() + by_text.len()) as u32;
    Ok(trace)
}
