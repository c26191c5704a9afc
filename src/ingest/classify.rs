//! The incremental classification of misses: each commit's misses classified once, in the
//! transaction that commits them, from the commit's rows (`classify_batch`) and the rows of
//! the history they need (`classify_carry`), by the same SQL as the full-history reference
//! (`miss_causes_full`). Rebuilding (`cachescope reclassify`, a database written before the
//! table) runs the same step over `events` a day at a time.

use chrono::NaiveDateTime;
use duckdb::{params, Connection};

use crate::queries;

/// The columns of `event_rows` (by position in its Arrow schema) that `classify_batch` holds,
/// in that table's order.
pub(super) const BATCH_COLUMNS: [usize; 12] = [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 18];

/// Classifies the rows staged in `classify_batch` since the last step. Runs inside the
/// caller's transaction, which calls [`done`] after its last step. Each part is timed for
/// `RUST_LOG=cachescope=debug` (milliseconds since the step began: the input, the rows'
/// evidence, the causes, the carried rows).
pub(super) fn step(conn: &Connection) -> duckdb::Result<()> {
    let t = std::time::Instant::now();
    conn.execute_batch(queries::CLASSIFY_STEP)?;
    let input_ms = t.elapsed().as_millis();
    conn.execute_batch(&queries::classify_step_rows())?;
    let rows_ms = t.elapsed().as_millis();
    conn.execute_batch(&queries::classify_step_insert())?;
    let causes_ms = t.elapsed().as_millis();
    conn.execute_batch(queries::CLASSIFY_CARRY_NEXT)?;
    tracing::debug!(input_ms, rows_ms, causes_ms, carry_ms = t.elapsed().as_millis(), "classification step");
    Ok(())
}

/// Empties the staged rows once they are all classified (before the commit).
pub(super) fn done(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(queries::CLASSIFY_DONE)
}

/// Forgets what was staged in a transaction that was rolled back.
pub(super) fn forget(conn: &Connection) {
    let _ = conn.execute_batch("RESET VARIABLE classify_staged_until");
}

/// Empties the classification (before a rebuild).
pub(super) fn clear(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(queries::CLASSIFY_CLEAR)
}

/// Stages the classified events of `events` in [from, until) (`None`: those without a time)
/// and classifies them.
pub(super) fn step_over(conn: &Connection, range: Option<(NaiveDateTime, NaiveDateTime)>) -> duckdb::Result<()> {
    match range {
        Some((from, until)) => conn.execute(queries::CLASSIFY_STAGE_RANGE, params![from, until])?,
        None => conn.execute(queries::CLASSIFY_STAGE_UNTIMED, [])?,
    };
    step(conn)
}
