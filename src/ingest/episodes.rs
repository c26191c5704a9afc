//! Episodes kept as rows are committed: the clusters of signals that can no longer change
//! (`episode_clusters`) and how far each kind's are closed (`episode_state`), so a report
//! finds only the open clusters from the signals (queries/episodes.sql). At each commit a
//! late row (older than some kind's frontier) first reopens what it can change; then (at
//! every commit of `ingest`, at most once a minute in `tail`) the clusters from the lowest
//! frontier on are found by the reference's SQL, and those closed are kept. Readers find
//! whatever is open themselves, so how often it runs changes what a report costs, never
//! what it says. Their definition is `episodes_full`, which they must equal (tests check it).

use chrono::NaiveDateTime;
use duckdb::{params, Connection, OptionalExt};

use crate::queries;

/// Reopens what the rows of the open transaction (staged in `classify_batch`, so before
/// [`super::classify::done`]) can change when one of them is late for some kind. Runs at
/// every commit: the staged rows are gone after it.
pub(super) fn reopen_late(conn: &Connection) -> duckdb::Result<()> {
    let late: Option<NaiveDateTime> = conn.query_row(queries::EPISODES_LATE, [], |r| r.get("first_new")).optional()?;
    if let Some(first_new) = late {
        conn.execute("SET VARIABLE episode_late = CAST(? AS TIMESTAMP)", params![first_new])?;
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

/// Empties the kept episodes (before a rebuild).
pub(super) fn clear(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(queries::EPISODES_CLEAR)
}
