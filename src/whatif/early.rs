//! A report's sizing read begun before the session's views are installed: when the command
//! line gives the period, what a report of it would size is known at once, and reading its
//! requests (a second connection, in a thread of its own) takes the core that installing the
//! views (one core, ~0.1 s) leaves idle. Whether the report sizes at all is known only from
//! its causes, after the views: a read not wanted is interrupted.

use std::sync::Arc;
use std::thread::JoinHandle;

use duckdb::InterruptHandle;

use super::{read_shared, SharedTrace, WhatIfError};
use crate::analysis::Period;
use crate::queries;
use crate::query::Session;

/// The second connection and what it read.
pub type Read = (Session, SharedTrace);

/// A read under way on a second connection.
pub struct EarlyRead {
    /// What it reads: the period a report sizes.
    pub period: Period,
    thread: Option<JoinHandle<Result<Read, WhatIfError>>>,
    interrupt: Arc<InterruptHandle>,
}

impl EarlyRead {
    /// Begins reading the requests of `period` on a second connection to `db`'s file; `None`
    /// through a tailer (a read there cannot be interrupted: it begins once the report knows
    /// it sizes) and where the session cannot be forked (a file of the old layout).
    /// The session's memory cap is kept, to be put back if the read is interrupted in the
    /// middle of what-if's own (DuckDB's cap is the whole database's).
    pub fn begin(db: &Session, period: Period) -> Result<Option<EarlyRead>, WhatIfError> {
        if db.direct_connection().is_none() {
            return Ok(None);
        }
        let Some(fork) = db.fork()? else { return Ok(None) };
        let (Some(main), Some(conn)) = (db.direct_connection(), fork.direct_connection()) else { return Ok(None) };
        main.execute_batch(queries::WHATIF_MEMORY_KEEP)?;
        let interrupt = conn.interrupt_handle();
        let thread = std::thread::spawn(move || {
            let shared = read_shared(&fork, &[period])?;
            Ok((fork, shared))
        });
        Ok(Some(EarlyRead { period, thread: Some(thread), interrupt }))
    }

    /// The read, once it is done.
    pub fn take(mut self) -> Result<Read, WhatIfError> {
        let thread = self.thread.take().expect("an early read is taken once");
        thread.join().expect("the early read's thread panicked")
    }

    /// Interrupts the read (not wanted: the report sizes nothing, or another period) and puts
    /// `db`'s memory cap back.
    pub fn cancel(mut self, db: &Session) -> Result<(), WhatIfError> {
        self.stop();
        if let Some(main) = db.direct_connection() {
            main.execute_batch(queries::WHATIF_MEMORY_RESTORE)?;
        }
        Ok(())
    }

    /// Interrupts the thread's queries until it ends. DuckDB forgets an interruption when its
    /// next query begins, so one that came between two queries is repeated.
    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() {
                self.interrupt.interrupt();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let _ = thread.join();
        }
    }
}

impl Drop for EarlyRead {
    /// A read neither taken nor cancelled (the report failed first) is stopped.
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file with a few hits and a miss, opened as a reader opens it.
    fn reader(dir: &std::path::Path) -> Session {
        let path = dir.join("events.duckdb");
        let c = duckdb::Connection::open(&path).unwrap();
        c.execute_batch(queries::EVENTS_SCHEMA).unwrap();
        c.execute_batch(
            "INSERT INTO ingest_names VALUES (1, 'f');
             INSERT INTO hit_rows SELECT TIMESTAMP '2026-01-01 00:00:00' + to_seconds(i), 1, 1, i % 7, 100, 10, 1, 0, i + 2 FROM range(1000) t(i);
             INSERT INTO event_rows (ts, event, key, outcome, bytes, raw, file_id, byte_offset, line_no)
             VALUES (TIMESTAMP '2026-01-01 00:00:00', 'miss', '0000000000000063', 'stored', 100, '', 'f', 0, 1);",
        )
        .unwrap();
        drop(c);
        Session::open(&path).unwrap()
    }

    fn cap(db: &Session) -> String {
        db.direct_connection().unwrap().query_row("SELECT current_setting('memory_limit')", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn an_early_read_is_the_read_of_its_period_and_one_not_wanted_leaves_the_session_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let db = reader(dir.path());
        let t = |s: &str| crate::engine::clock::parse_ts(s).unwrap();
        let period = Period { from: t("2026-01-01T00:05:00Z"), until: t("2026-01-01T00:20:00Z") };
        // A cap its text gives back exactly (1000MB reads "953.6 MiB", which sets 953.5 MiB).
        db.direct_connection().unwrap().execute_batch("SET memory_limit = '777MB'").unwrap();
        let before = cap(&db);
        let early = EarlyRead::begin(&db, period).unwrap().expect("a file's session forks");
        assert_eq!(early.period, period);
        let (_, shared) = early.take().unwrap();
        let own = read_shared(&db, &[period]).unwrap();
        assert_eq!((shared.trace.ops.len(), shared.us.clone(), shared.warm_from), (own.trace.ops.len(), own.us, own.warm_from));
        assert_eq!(shared.trace.ops.len(), 1001, "every request of the read, the warm-up's included");
        assert_eq!(cap(&db), before);
        // Cancelled at once, or after it ended: the thread is gone and the cap is the session's.
        for wait in [0, 50] {
            let early = EarlyRead::begin(&db, period).unwrap().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(wait));
            early.cancel(&db).unwrap();
            assert_eq!(cap(&db), before);
        }
        // A cap the interrupted read would have left is put back.
        let early = EarlyRead::begin(&db, period).unwrap().unwrap();
        db.direct_connection().unwrap().execute_batch("SET memory_limit = '300MB'").unwrap();
        early.cancel(&db).unwrap();
        assert_eq!(cap(&db), before);
    }
}
