//! Reading the request stream for what-if sizing from the events database into a compact
//! [`Trace`]: the keys numbered densely, each event reduced to what it does to a cache.
//!
//! Two reads, merged here: the ordinary hits (numbers only), sorted by DuckDB, and every other
//! event, sorted here. One sorted union of both cost DuckDB half as much again (the hits' sort
//! carried the others' text columns): 0.26 s against 0.17 s for a week of 10M lines, a new
//! process each time. The other events' files are numbered and their keys read here rather
//! than by a join, a regular expression and a sort in DuckDB: `whatif`'s read of that week
//! went from a median of 236 ms to 181 ms (six runs each).

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};

use super::trace::{key_hash, retention_ms, sampled, Op, OpKind, Trace, MAX_KEYS};
use crate::queries;
use crate::query::{QueryError, Session};
use crate::vocab::{Event, FillOutcome, RetireReason};

/// Where an event stands in the database's order: time (us), file id, line.
type Place = (i64, i64, i64);

/// A key as read: an engine key's number, or the index of another key's text.
#[derive(Clone, Copy)]
enum Key {
    Number(u64),
    Text(u32),
}

/// An event of the second read, waiting for its place among the hits.
struct Other {
    place: Place,
    ms: i64,
    what: OtherOp,
}

enum OtherOp {
    Keyed { kind: OpKind, key: Key, bytes: u64 },
    Cleanup { retention_ms: i64 },
}

/// The trace as it is built: keys numbered in the order they first appear.
struct Builder<'t> {
    trace: Trace,
    by_number: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// The id of each text key (by its index in [`Others::texts`]), `u32::MAX` before it appears.
    by_text: Vec<u32>,
    times: Option<&'t mut Vec<i64>>,
}

impl Builder<'_> {
    fn push(&mut self, ms: i64, us: i64, kind: OpKind, key: Key, bytes: u64) -> Result<(), QueryError> {
        let slot = match key {
            Key::Number(n) => self.by_number.entry(n).or_insert(u32::MAX),
            Key::Text(t) => &mut self.by_text[t as usize],
        };
        if *slot == u32::MAX {
            if self.trace.keys >= MAX_KEYS {
                return Err(duckdb::Error::ToSqlConversionFailure(format!("more than {MAX_KEYS} distinct keys: narrow the period (--since, --from/--until)").into()).into());
            }
            *slot = self.trace.keys;
            self.trace.keys += 1;
        }
        self.trace.ops.push(Op::new(ms, kind, *slot, bytes));
        if let Some(t) = self.times.as_deref_mut() {
            t.push(us);
        }
        Ok(())
    }

    fn push_other(&mut self, o: &Other) -> Result<(), QueryError> {
        match o.what {
            OtherOp::Keyed { kind, key, bytes } => self.push(o.ms, o.place.0, kind, key, bytes),
            OtherOp::Cleanup { retention_ms } => {
                self.trace.cleanup_retention_ms.push(retention_ms);
                let index = self.trace.cleanup_retention_ms.len() as u64 - 1;
                self.trace.ops.push(Op::new(o.ms, OpKind::Cleanup, 0, index));
                if let Some(t) = self.times.as_deref_mut() {
                    t.push(o.place.0);
                }
                Ok(())
            }
        }
    }
}

/// The events of the second read, in order, with the text keys they name.
#[derive(Default)]
struct Others {
    events: Vec<Other>,
    texts: Vec<String>,
}

/// A column of a batch by name, as the type the reader wants.
fn column(b: &RecordBatch, name: &str, to: &DataType) -> duckdb::Result<ArrayRef> {
    let c = b.column_by_name(name).ok_or_else(|| duckdb::Error::InvalidColumnName(name.into()))?;
    arrow::compute::cast(c, to).map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A row of queries/ingest_names_load.sql.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NameRow {
    id: i64,
    name: String,
}

/// An engine key's number: 16 lowercase hex digits (what `hit_rows` keeps as a number).
fn engine_key(key: &str) -> Option<u64> {
    let hex = key.len() == 16 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex.then(|| u64::from_str_radix(key, 16).ok()).flatten()
}

/// A string column's value, "" where it is null.
fn text(a: &arrow::array::StringArray, i: usize) -> &str {
    if a.is_valid(i) {
        a.value(i)
    } else {
        ""
    }
}

/// Reads every event but the ordinary hits (those of the sample only, with `sample_rate`),
/// in the database's order.
fn read_others(db: &Session, params: &[String], sample_rate: Option<f64>) -> Result<Others, QueryError> {
    let names: Vec<NameRow> = db.query_own(queries::INGEST_NAMES_LOAD, &[])?.decode()?;
    let file_ids: HashMap<&str, i64> = names.iter().map(|n| (n.name.as_str(), n.id)).collect();
    let mut others = Others::default();
    let mut text_ids: HashMap<String, u32> = HashMap::new();
    db.stream_own(queries::WHATIF_STREAM_OTHERS, params, &mut |b: &RecordBatch| {
        let (ms, us, file, line) = (column(b, "ms", &DataType::Int64)?, column(b, "us", &DataType::Int64)?, column(b, "file_id", &DataType::Utf8)?, column(b, "line_no", &DataType::Int64)?);
        let (event, key) = (column(b, "event", &DataType::Utf8)?, column(b, "key", &DataType::Utf8)?);
        let (bytes, outcome, reason, days) = (
            column(b, "bytes", &DataType::Int64)?,
            column(b, "outcome", &DataType::Utf8)?,
            column(b, "reason", &DataType::Utf8)?,
            column(b, "retention_days", &DataType::Float64)?,
        );
        let (ms, us, file, line) = (ms.as_primitive::<Int64Type>(), us.as_primitive::<Int64Type>(), file.as_string::<i32>(), line.as_primitive::<Int64Type>());
        let (event, key) = (event.as_string::<i32>(), key.as_string::<i32>());
        let (bytes, outcome, reason, days) = (bytes.as_primitive::<Int64Type>(), outcome.as_string::<i32>(), reason.as_string::<i32>(), days.as_primitive::<Float64Type>());
        for i in 0..b.num_rows() {
            // As the join with the names did: a row of a file without a name is not read.
            let Some(&file) = file_ids.get(file.value(i)) else { continue };
            let place = (us.value(i), file, line.value(i));
            let kind = match Event::parse(event.value(i)) {
                Some(Event::Hit) => OpKind::Hit,
                Some(Event::Miss) => match FillOutcome::parse(text(outcome, i)) {
                    Some(FillOutcome::Stored) | None => OpKind::MissStored,
                    Some(FillOutcome::Uncached) => OpKind::MissUncached,
                    Some(FillOutcome::WriteFailed | FillOutcome::ComputeFailed) => OpKind::MissFailed,
                },
                Some(Event::WarmFill) if FillOutcome::parse(text(outcome, i)) == Some(FillOutcome::Stored) => OpKind::WarmStored,
                Some(Event::Invalidation | Event::MissingFile) => OpKind::Drop,
                Some(Event::Eviction) if RetireReason::parse(text(reason, i)) == Some(RetireReason::Retention) => OpKind::RetentionEviction,
                Some(Event::Cleanup) if days.is_valid(i) => {
                    others.events.push(Other { place, ms: ms.value(i), what: OtherOp::Cleanup { retention_ms: retention_ms(days.value(i)) } });
                    continue;
                }
                _ => continue,
            };
            let key_text = text(key, i);
            let number = engine_key(key_text);
            if let Some(rate) = sample_rate {
                if !sampled(key_hash(number, key_text), rate) {
                    continue;
                }
            }
            let key = match number {
                Some(n) => Key::Number(n),
                None => Key::Text(match text_ids.get(key_text) {
                    Some(t) => *t,
                    None => {
                        let t = others.texts.len() as u32;
                        others.texts.push(key_text.to_string());
                        text_ids.insert(key_text.to_string(), t);
                        t
                    }
                }),
            };
            let bytes = if bytes.is_valid(i) { bytes.value(i).max(0) as u64 } else { 0 };
            others.events.push(Other { place, ms: ms.value(i), what: OtherOp::Keyed { kind, key, bytes } });
        }
        Ok(())
    })?;
    // Places are unique (a file's line is read once).
    others.events.sort_unstable_by_key(|o| o.place);
    Ok(others)
}

/// Reads the events of `[warm_from, until)`; those before `from` only warm the cache up; with
/// `sample_rate`, only the events of a spatial sample of keys; with `times`, each event's time
/// in microseconds too (to cut the trace of a shorter period out of it: [`Trace::slice`]).
/// The hits are streamed in Arrow chunks, from the file or through a running tailer, and
/// merged with the other events (read first, a tenth of the requests): the hits are never all
/// in memory at once but as the trace.
pub fn read(db: &Session, warm_from: &str, from_ms: i64, until: &str, sample_rate: Option<f64>, times: Option<&mut Vec<i64>>) -> Result<Trace, QueryError> {
    let params = [warm_from.to_string(), until.to_string()];
    let others = read_others(db, &params, sample_rate)?;
    let mut b = Builder {
        trace: Trace { from_ms, sample_rate, ..Default::default() },
        by_number: HashMap::default(),
        by_text: vec![u32::MAX; others.texts.len()],
        times,
    };
    let mut pending = others.events.iter().peekable();
    db.stream_own(queries::WHATIF_STREAM_HITS, &params, &mut |batch: &RecordBatch| {
        let (ms, us, file, line) = (column(batch, "ms", &DataType::Int64)?, column(batch, "us", &DataType::Int64)?, column(batch, "file", &DataType::Int64)?, column(batch, "line_no", &DataType::Int64)?);
        let (key, bytes) = (column(batch, "key_num", &DataType::UInt64)?, column(batch, "bytes", &DataType::Int64)?);
        let (ms, us, file, line) = (ms.as_primitive::<Int64Type>(), us.as_primitive::<Int64Type>(), file.as_primitive::<Int64Type>(), line.as_primitive::<Int64Type>());
        let (key, bytes) = (key.as_primitive::<UInt64Type>(), bytes.as_primitive::<Int64Type>());
        for i in 0..batch.num_rows() {
            let place = (us.value(i), file.value(i), line.value(i));
            while let Some(o) = pending.next_if(|o| o.place < place) {
                b.push_other(o)?;
            }
            let number = key.value(i);
            if let Some(rate) = sample_rate {
                if !sampled(key_hash(Some(number), ""), rate) {
                    continue;
                }
            }
            b.push(ms.value(i), place.0, OpKind::Hit, Key::Number(number), bytes.value(i).max(0) as u64)?;
        }
        Ok(())
    })?;
    for o in pending {
        b.push_other(o)?;
    }
    Ok(b.trace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sixteen_lowercase_hex_digits_are_an_engine_keys_number() {
        assert_eq!(engine_key("00000000000000aa"), Some(0xaa));
        assert_eq!(engine_key("ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(engine_key("00000000000000AA"), None);
        assert_eq!(engine_key("0000000000000aa"), None);
        assert_eq!(engine_key("000000000000000aa"), None);
        assert_eq!(engine_key("+000000000000aa0"), None);
        assert_eq!(engine_key("some/key"), None);
        assert_eq!(engine_key(""), None);
    }

    /// The merge keeps the database's order (time, then file, then line) across the two
    /// reads, numbers keys in the order they first appear (an engine key the same whether a
    /// hit or a miss names it), and keeps only the events a cache replays.
    #[test]
    fn the_hits_and_the_other_events_merge_in_the_databases_order() {
        let session = Session::in_memory().unwrap();
        let c = session.direct_connection().unwrap();
        c.execute_batch(queries::EVENTS_SCHEMA).unwrap();
        c.execute_batch("INSERT INTO ingest_names VALUES (1, 'fa'), (2, 'fb')").unwrap();
        // (us after 2026-01-01, file id, line, what): hits go to `hit_rows`, the rest to `event_rows`.
        let key = "00000000000000aa";
        let rows: [(i64, i32, i64, &str); 11] = [
            (1_000, 2, 3, "miss stored"),
            (1_000, 1, 9, "hit"),
            (1_000, 2, 4, "hit"),
            (2_500, 1, 10, "cleanup"),
            (2_500, 1, 11, "text miss"),
            (3_000, 1, 12, "hit"),
            (3_000, 2, 6, "invalidation"),
            (4_000, 2, 7, "text hit"),
            (4_000, 2, 8, "eviction capacity"),
            (5_000, 1, 13, "miss uncached"),
            (9_000_000, 1, 14, "hit"),
        ];
        let ts = |us: i64| (crate::engine::clock::parse_ts("2026-01-01T00:00:00Z").unwrap() + chrono::Duration::microseconds(us)).to_string();
        for (us, file, line, what) in rows {
            let other = |event: &str, key: &str, outcome: Option<&str>, reason: Option<&str>, raw: &str| {
                c.execute(
                    "INSERT INTO event_rows (ts, event, key, outcome, reason, bytes, raw, file_id, byte_offset, line_no) VALUES (CAST(? AS TIMESTAMP), ?, ?, ?, ?, 7, ?, ?, 0, ?)",
                    duckdb::params![ts(us), event, key, outcome, reason, raw, if file == 1 { "fa" } else { "fb" }, line],
                )
                .unwrap();
            };
            match what {
                "hit" => {
                    c.execute("INSERT INTO hit_rows VALUES (CAST(? AS TIMESTAMP), 1, 1, ?, 5, 10, ?, 0, ?)", duckdb::params![ts(us), 0xaa_u64, file, line]).unwrap();
                }
                "miss stored" => other("miss", key, Some("stored"), None, ""),
                "cleanup" => other("cleanup", "", None, None, "event=cleanup dry_run=false retention_days=2"),
                "text miss" => other("miss", "some/key", Some("stored"), None, ""),
                "invalidation" => other("invalidation", key, None, None, ""),
                "text hit" => other("hit", "some/key", None, None, ""),
                "eviction capacity" => other("eviction", key, None, Some("capacity"), ""),
                "miss uncached" => other("miss", "00000000000000bb", Some("uncached"), None, ""),
                _ => unreachable!(),
            }
        }
        let from = crate::engine::clock::parse_ts("2026-01-01T00:00:00Z").unwrap();
        let mut us = Vec::new();
        let trace = read(&session, &from.to_string(), 0, "2026-01-01 00:00:05", None, Some(&mut us)).unwrap();
        let got: Vec<(OpKind, u32, u64)> = trace.ops.iter().map(|o| (o.kind(), o.key(), o.bytes as u64)).collect();
        // Key 0 is 0xaa (first named by the hit of file 1, line 9), 1 is "some/key", 2 is 0xbb;
        // the clean-up's "bytes" is its index; the eviction for capacity is not replayed, nor
        // the hit after the period.
        assert_eq!(
            got,
            vec![
                (OpKind::Hit, 0, 5),
                (OpKind::MissStored, 0, 7),
                (OpKind::Hit, 0, 5),
                (OpKind::Cleanup, 0, 0),
                (OpKind::MissStored, 1, 7),
                (OpKind::Hit, 0, 5),
                (OpKind::Drop, 0, 7),
                (OpKind::Hit, 1, 7),
                (OpKind::MissUncached, 2, 7),
            ]
        );
        assert_eq!(trace.keys, 3);
        assert_eq!(trace.cleanup_retention_ms, vec![2 * 86_400_000]);
        let base = from.and_utc().timestamp_micros();
        assert_eq!(us.iter().map(|u| u - base).collect::<Vec<_>>(), vec![1_000, 1_000, 1_000, 2_500, 2_500, 3_000, 3_000, 4_000, 5_000]);
    }
}
