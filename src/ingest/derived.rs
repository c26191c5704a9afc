//! Derived tables: figures kept up to date as rows are committed (`request_minutes`,
//! `miss_causes` and the classification's state, `episode_clusters` and theirs), so
//! that the SLO's questions cost what the question costs, not what the history costs. This
//! module rebuilds them from `events` — the reference they must equal — when a database
//! written before them (or by an older definition) is opened, and for `cachescope reclassify`.

use std::path::Path;

use chrono::{Duration, NaiveDateTime};
use duckdb::{params, Connection};

use super::{classify, db_error, episodes, IngestError};
use crate::queries;

/// The derived tables, each with the version of its definition: raising a version makes the
/// next ingester that opens a database rebuild that table.
pub const DERIVED: [(&str, i32); 3] = [("request_minutes", 1), ("miss_causes", 1), ("episode_clusters", 1)];

/// How far a rebuild is: (days done, days in all).
pub type RebuildProgress<'a> = &'a mut dyn FnMut(u64, u64);

/// Whether some derived table is missing or older than this binary's definition.
pub(super) fn stale(conn: &Connection, db: &Path) -> Result<bool, IngestError> {
    is_stale(conn).map_err(db_error(db))
}

/// [`stale`] for any connection (a reader's too).
pub fn is_stale(conn: &Connection) -> duckdb::Result<bool> {
    let recorded: i64 = conn.query_row(queries::DERIVED_EXISTS, [], |r| r.get("n"))?;
    if recorded == 0 {
        return Ok(true);
    }
    for (name, version) in DERIVED {
        let built: Option<i32> = conn
            .query_row(queries::DERIVED_VERSION, [name], |r| r.get("version"))
            .map(Some)
            .or_else(|e| if matches!(e, duckdb::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })?;
        if built != Some(version) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Rebuilds every derived table from `events`, a day per transaction, reporting progress
/// after each day. The tables are first recorded as not built (so readers compute from
/// `events`, and an interrupted rebuild starts over when the next ingester opens the
/// database), and recorded as built with the last day. One transaction for the whole history
/// held every day's work until its commit: a month of a busy host ran out of memory.
pub(super) fn rebuild(conn: &Connection, db: &Path, progress: RebuildProgress) -> Result<(), IngestError> {
    let dberr = db_error(db);
    let range: (Option<NaiveDateTime>, Option<NaiveDateTime>) = conn
        .query_row(queries::DERIVED_RANGE, [], |r| Ok((r.get("first_ts")?, r.get("last_ts")?)))
        .map_err(dberr)?;
    let days: Vec<NaiveDateTime> = match range {
        (Some(first), Some(last)) => {
            let mut d = first.date().and_hms_opt(0, 0, 0).expect("midnight");
            let mut v = Vec::new();
            while d <= last {
                v.push(d);
                d += Duration::days(1);
            }
            v
        }
        _ => Vec::new(),
    };
    let in_transaction = |work: &mut dyn FnMut() -> duckdb::Result<()>| -> Result<(), IngestError> {
        conn.execute_batch("BEGIN TRANSACTION").map_err(dberr)?;
        if let Err(e) = work().and_then(|()| conn.execute_batch("COMMIT")) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(dberr(e));
        }
        Ok(())
    };
    in_transaction(&mut || {
        conn.execute_batch(queries::DERIVED_UNBUILT)?;
        conn.execute_batch(queries::REQUEST_MINUTES_CLEAR)?;
        conn.execute_batch(queries::EVENTS_SCHEMA)?;
        episodes::clear(conn)?;
        classify::clear(conn)
    })?;
    let mut insert = conn.prepare(queries::REQUEST_MINUTES_REBUILD).map_err(dberr)?;
    let total = days.len() as u64;
    progress(0, total);
    for (i, day) in days.iter().enumerate() {
        let until = *day + Duration::days(1);
        in_transaction(&mut || {
            insert.execute(params![day, until])?;
            classify::step_over(conn, Some((*day, until)))?;
            classify::done(conn)?;
            episodes::advance(conn, Some(until))
        })?;
        progress(i as u64 + 1, total);
    }
    in_transaction(&mut || {
        classify::step_over(conn, None)?;
        classify::done(conn)?;
        episodes::advance(conn, None)?;
        let now = chrono::Utc::now().naive_utc();
        for (name, version) in DERIVED {
            conn.execute(queries::DERIVED_BUILT, params![name, version, now])?;
        }
        Ok(())
    })?;
    Ok(())
}
