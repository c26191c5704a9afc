//! Episodes kept as rows are committed: the clusters of signals that can no longer change
//! (`episode_clusters`) and how far each kind's are closed (`episode_state`), so a report
//! finds only the open clusters from the signals (queries/episodes.sql). At each commit a
//! late row (older than some kind's frontier) first reopens what it can change; then (at
//! every commit of `ingest`, at most once a minute in `tail`) the clusters from the lowest
//! frontier on are found by the reference's SQL, and those closed are kept. Readers find
//! whatever is open themselves, so how often it runs changes what a report costs, never
//! what it says. Their definition is `episodes_full`, which they must equal (tests check it).

use chrono::{Duration, NaiveDateTime};
use duckdb::{params, Connection, OptionalExt};

use crate::queries;

/// Reopens what the rows of the open transaction (staged in `classify_batch`, so before
/// [`super::classify::done`]) can change when one of them is late for some kind. Runs at
/// every commit: the staged rows are gone after it.
pub(super) fn reopen_late(conn: &Connection) -> duckdb::Result<()> {
    let late: Option<NaiveDateTime> = conn.query_row(queries::EPISODES_LATE, [], |r| r.get("first_new")).optional()?;
    if let Some(first_new) = late {
        // The last deciding line before it: looked for in the hour before first (lines come
        // seconds apart), then everywhere before (every earlier row: 0.1-0.3 s at 100M).
        let deciding = |from: &str| -> duckdb::Result<Option<NaiveDateTime>> {
            conn.query_row(queries::EPISODES_DECIDING, params![from, first_new], |r| r.get("at"))
        };
        let hour_before = (first_new - Duration::hours(1)).to_string();
        match deciding(&hour_before)?.map_or_else(|| deciding("-infinity"), |t| Ok(Some(t)))? {
            Some(t) => conn.execute("SET VARIABLE episode_rewind_to = CAST(? AS TIMESTAMP)", params![t])?,
            None => conn.execute("SET VARIABLE episode_rewind_to = '-infinity'::TIMESTAMP", [])?,
        };
        conn.execute_batch(queries::EPISODES_REWIND)?;
    }
    Ok(())
}

/// Closes the clusters that can no longer change among the signals up to `until` (`None`:
/// all of them) and moves the frontiers on.
pub(super) fn advance(conn: &Connection, until: Option<NaiveDateTime>) -> duckdb::Result<()> {
    match until {
        Some(t) => conn.execute("SET VARIABLE episode_until = CAST(? AS TIMESTAMP)", params![t])?,
        None => conn.execute("SET VARIABLE episode_until = 'infinity'::TIMESTAMP", [])?,
    };
    let started = std::time::Instant::now();
    conn.execute_batch(queries::EPISODES_ADVANCE)?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "episodes advanced up to {until:?}");
    Ok(())
}

/// Advances over all the data, in parts of about `part_rows` rows of `event_rows` from the
/// lowest frontier (a part is doubled while nothing closes in it: a cluster may go on
/// longer). One pass over a long stretch (a late archive that reopened the whole history, a
/// catch-up of months) held every signal and miss of it at once, beyond the ingester's
/// memory cap at 100M lines.
pub(super) fn advance_all(conn: &Connection, part_rows: u64) -> duckdb::Result<()> {
    let part_rows = part_rows.max(1) as i64;
    let lowest = |conn: &Connection| -> duckdb::Result<Option<NaiveDateTime>> {
        match conn.query_row(queries::EPISODES_SPAN, [], |r| r.get("lowest"))? {
            Some(t) => Ok(Some(t)),
            None => conn.query_row(queries::EPISODES_FIRST, [], |r| r.get("first")),
        }
    };
    let mut grow = 1;
    let mut next = lowest(conn)?;
    loop {
        let Some(from) = next else { return advance(conn, None) };
        let (last, rows): (Option<NaiveDateTime>, i64) = conn.query_row(queries::EPISODES_ROWS, params![from], |r| Ok((r.get("last")?, r.get("rows")?)))?;
        let Some(last) = last.filter(|_| rows > part_rows) else { return advance(conn, None) };
        // The part's time, as the rows are spread, at least a minute.
        let whole = (last - from).num_microseconds().unwrap_or(i64::MAX);
        let part = Duration::microseconds((whole / rows).saturating_mul(part_rows).saturating_mul(grow)).max(Duration::minutes(1));
        let Some(until) = from.checked_add_signed(part).filter(|u| *u <= last) else { return advance(conn, None) };
        advance(conn, Some(until))?;
        // Where the next part starts (read once: it is also whether this part moved).
        next = lowest(conn)?;
        grow = if next > Some(from) { 1 } else { grow * 2 };
    }
}

/// Empties the kept episodes (before a rebuild).
pub(super) fn clear(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(queries::EPISODES_CLEAR)
}
