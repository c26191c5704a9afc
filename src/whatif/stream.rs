//! Reading the request stream for what-if sizing from the events database and running it
//! through the stack: each request's distance, in order, and what a cache of any size could
//! not have served.

use std::collections::HashMap;

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
    let mut rows = stmt.query([from, until])?;
    // Keys as compact ids: engine keys by their number, other keys by their text.
    let mut by_number: HashMap<u64, u64, foldhash::fast::RandomState> = HashMap::default();
    let mut by_text: HashMap<String, u64> = HashMap::new();
    let mut stack = StackDistances::with_capacity(1 << 16);
    let mut out = Distances::default();
    while let Some(r) = rows.next()? {
        // Borrowed, not copied: nine rows in ten are hits, read at millions a second.
        let text = |name: &str| -> duckdb::Result<&str> {
            let i = r.as_ref().column_index(name)?;
            Ok(r.get_ref(i)?.as_str().unwrap_or(""))
        };
        let event = text("event")?;
        let bytes = r.get::<_, i64>("bytes")?.max(0) as u64;
        let (outcome, reason) = (text("outcome")?, text("reason")?);
        let next = (by_number.len() + by_text.len()) as u64;
        let id = match r.get::<_, Option<u64>>("key_num")? {
            Some(k) => *by_number.entry(k).or_insert(next),
            None => match by_text.get(text("key_text")?) {
                Some(id) => *id,
                None => *by_text.entry(text("key_text")?.to_string()).or_insert(next),
            },
        };
        match Event::parse(event) {
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
    out.working_set_bytes = stack.working_set_bytes();
    out.keys = (by_number.len() + by_text.len()) as u64;
    Ok(out)
}
