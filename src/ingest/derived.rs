//! Derived tables: figures kept up to date as rows are committed (`request_minutes`,
//! `evaluations_5m`, `miss_causes` and the classification's state, `episode_clusters` and
//! theirs), so that the SLO's questions cost what the question costs, not what the history
//! costs. This module says which are stale and rebuilds them from `events` — the reference
//! they must equal — when a database written before them (or by an older definition, or with
//! rows another version's ingester committed without them) is opened, and for `cachescope
//! reclassify`.

use std::path::Path;

use chrono::{Duration, NaiveDateTime};
use duckdb::{params, Connection};

use super::{classify, db_error, episodes, IngestError};
use crate::queries;

/// The derived tables, each with the version of its definition: raising a version makes the
/// next ingester that opens a database rebuild that table.
pub const DERIVED: [(&str, i32); 4] =
    [("request_minutes", 1), ("miss_causes", 1), ("episode_clusters", 1), (EVALUATIONS, 1)];

/// The kept 5-minute evaluations: computed from `request_minutes` alone, so rebuilt alone
/// (in seconds) when they are all that is stale.
pub const EVALUATIONS: &str = "evaluations_5m";

/// How far a rebuild is: (days done, days in all).
pub type RebuildProgress<'a> = &'a mut dyn FnMut(u64, u64);

/// The derived tables to rebuild ([`stale_tables`]).
pub(super) fn stale(conn: &Connection, db: &Path) -> Result<Vec<&'static str>, IngestError> {
    stale_tables(conn).map_err(db_error(db))
}

/// The derived tables missing or older than this binary's definition, for any connection
/// (a reader's too); all of them when rows were committed by an ingester that does not keep
/// them ([`holds_every_event`]).
pub fn stale_tables(conn: &Connection) -> duckdb::Result<Vec<&'static str>> {
    let exists = |table: &str| -> duckdb::Result<bool> { Ok(conn.query_row(queries::DERIVED_EXISTS, [table], |r| r.get::<_, i64>("n"))? > 0) };
    if !exists("derived_tables")? || (exists("derived_events")? && !holds_every_event(conn)?) {
        return Ok(DERIVED.iter().map(|d| d.0).collect());
    }
    let mut read = conn.prepare(queries::DERIVED_VERSION)?;
    let built: Vec<(String, i32)> = read.query_map([], |r| Ok((r.get("name")?, r.get("version")?)))?.collect::<duckdb::Result<_>>()?;
    Ok(DERIVED.iter().filter(|(name, version)| !built.iter().any(|(n, v)| n == name && v == version)).map(|d| d.0).collect())
}

/// Whether the derived tables hold every event ingested: no ingester that does not keep them
/// (another version's) committed rows since the last one that does (`derived_events`). A
/// database without the record is trusted (the next ingester records it).
fn holds_every_event(conn: &Connection) -> duckdb::Result<bool> {
    let (kept, events): (Option<i64>, i64) = conn.query_row(queries::DERIVED_EVENTS_CHECK, [], |r| Ok((r.get("kept")?, r.get("events")?)))?;
    Ok(kept.is_none_or(|k| k == events))
}

/// Records that the derived tables hold every event ingested (in the transaction of a commit
/// that kept them, or after a rebuild).
pub(super) fn record_events(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(queries::DERIVED_EVENTS_SAVE)
}

/// What a reader of a database with these stale tables can read as kept: what an ingester
/// would not rebuild ([`Rebuild::of`]).
pub fn freshness(stale: &[&str]) -> queries::Fresh {
    match Rebuild::of(stale) {
        None => queries::Fresh::ALL,
        Some(Rebuild::Evaluations) => queries::Fresh { derived: true, evaluations: false },
        Some(Rebuild::All) => queries::Fresh { derived: false, evaluations: false },
    }
}

/// Days of evaluations a rebuild of them alone computes in one transaction.
const EVALUATION_REBUILD_DAYS: usize = 30;

/// What a rebuild rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Every derived table, from `events`.
    All,
    /// `evaluations_5m` alone, from `request_minutes` (up to date): all that a database
    /// written just before it lacks.
    Evaluations,
}

impl Rebuild {
    /// What a database with these stale tables needs (`None`: nothing).
    pub fn of(stale: &[&str]) -> Option<Rebuild> {
        match stale {
            [] => None,
            [only] if *only == EVALUATIONS => Some(Rebuild::Evaluations),
            _ => Some(Rebuild::All),
        }
    }

    /// The tables it rebuilds.
    pub fn tables(self) -> Vec<&'static str> {
        match self {
            Rebuild::All => DERIVED.iter().map(|d| d.0).collect(),
            Rebuild::Evaluations => vec![EVALUATIONS],
        }
    }
}

/// Rebuilds the derived tables of `what` from `events`, a day per transaction (the
/// evaluations alone: a month), reporting progress after each. The tables are first recorded as not built (so readers compute
/// from `events`, and an interrupted rebuild starts over when the next ingester opens the
/// database), and recorded as built with the last day. One transaction for the whole history
/// held every day's work until its commit: a month of a busy host ran out of memory.
pub(super) fn rebuild(conn: &Connection, db: &Path, what: Rebuild, progress: RebuildProgress) -> Result<(), IngestError> {
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
    let all = what == Rebuild::All;
    in_transaction(&mut || {
        if all {
            conn.execute_batch(queries::DERIVED_UNBUILT)?;
            conn.execute_batch(queries::REQUEST_MINUTES_CLEAR)?;
        } else {
            conn.execute(queries::DERIVED_UNBUILT_ONE, [EVALUATIONS])?;
        }
        conn.execute_batch(queries::EVALUATIONS_CLEAR)?;
        conn.execute_batch(queries::EVENTS_SCHEMA)?;
        if all {
            episodes::clear(conn)?;
            classify::clear(conn)?;
        }
        Ok(())
    })?;
    let mut insert = conn.prepare(queries::REQUEST_MINUTES_REBUILD).map_err(dberr)?;
    let mut evaluate = conn.prepare(queries::EVALUATIONS_REBUILD).map_err(dberr)?;
    let total = days.len() as u64;
    progress(0, total);
    // The evaluations alone go a month per transaction: a day's are a statement of a few
    // milliseconds, and 1,736 transactions of them took 30 s at 100M lines.
    let step = if all { 1 } else { EVALUATION_REBUILD_DAYS };
    let mut done = 0u64;
    for chunk in days.chunks(step) {
        let (day, until) = (chunk[0], chunk[chunk.len() - 1] + Duration::days(1));
        let day = &day;
        in_transaction(&mut || {
            if all {
                insert.execute(params![day, until])?;
            }
            // The days' evaluations, and the next day's first five, which their last minutes
            // reach (the next transaction completes them).
            evaluate.execute(params![*day + Duration::minutes(1), until + Duration::minutes(5)])?;
            if all {
                classify::step_over(conn, Some((*day, until)))?;
                classify::done(conn)?;
                episodes::advance(conn, Some(until))?;
            }
            Ok(())
        })?;
        done += chunk.len() as u64;
        progress(done, total);
    }
    in_transaction(&mut || {
        if all {
            classify::step_over(conn, None)?;
            classify::done(conn)?;
            episodes::advance(conn, None)?;
        }
        let now = chrono::Utc::now().naive_utc();
        for (name, version) in DERIVED.iter().filter(|d| what.tables().contains(&d.0)) {
            conn.execute(queries::DERIVED_BUILT, params![name, version, now])?;
        }
        record_events(conn)
    })?;
    Ok(())
}
