//! Database set-up: the events database created (atomically) or opened, attached with the
//! ingester's storage options, its schema upgraded and this binary's views installed, and
//! DuckDB's settings for ingesting (one thread, a memory cap, no external access).

use std::path::Path;
use std::sync::Arc;

use duckdb::Connection;

use super::batch::Names;
use super::{create, db_error, IngestError, INGEST_MEMORY_MB};
use crate::query::guard::RawDatabase;
use crate::queries;

/// Attempts to attach a database another process holds (50 ms apart: 2 s in all).
const ATTACH_TRIES: u32 = 40;

/// Opens (creating) the events database at `db`: the database handle and the ingester's
/// connection, the file attached and made its default.
pub(super) fn open_database(db: &Path) -> Result<(Arc<RawDatabase>, Connection), IngestError> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| IngestError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let dberr = db_error(db);
    // Only a database that exists can have the old layout (and asking costs ~7 ms).
    let existed = db.exists();
    create::remove_interrupted_creations(db);
    if !existed {
        create::create_empty(db)?;
    }
    let locked = |e: duckdb::Error| {
        if crate::engine::manifest::is_lock_conflict(&e) {
            IngestError::Locked {
                db: db.to_path_buf(),
                holder: crate::engine::manifest::probe_lock(db).describe(),
            }
        } else {
            dberr(e)
        }
    };
    // Attached to an in-memory connection and made the default (`USE`), for the storage
    // options only ATTACH takes (queries/ingest_attach.sql).
    let path = crate::query::utf8_path(db)?;
    // Spills go where DuckDB puts them for a database file, `<db>.tmp/`: an in-memory
    // connection would use `.tmp/` in the working directory (cron's may be `/`).
    let database = Arc::new(RawDatabase::open(":memory:", &[("temp_directory", &format!("{path}.tmp"))]).map_err(dberr)?);
    let conn = database.connect().map_err(dberr)?;
    // A reader (`cachescope sql`, a report) may hold the file for a moment, e.g. the one just
    // created, before the ingester holds it: wait for it a little rather than give up.
    let mut tries = 0;
    while let Err(e) = conn.execute(queries::INGEST_ATTACH, [path]) {
        tries += 1;
        if tries >= ATTACH_TRIES || !crate::engine::manifest::is_lock_conflict(&e) {
            return Err(locked(e));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    conn.execute_batch(queries::INGEST_USE).map_err(dberr)?;
    // One transaction for the schema: one commit instead of one per statement.
    conn.execute_batch("BEGIN TRANSACTION").map_err(dberr)?;
    let schema = (|| {
        let old_layout: i64 = if existed { conn.query_row(queries::SCHEMA_LAYOUT, [], |r| r.get(0))? } else { 0 };
        if old_layout > 0 {
            conn.execute_batch(queries::SCHEMA_UPGRADE)?;
        }
        if existed {
            conn.execute_batch(queries::SCHEMA_OLD_VIEWS)?;
            let view: i64 = conn.query_row(queries::SCHEMA_MISS_CAUSES_VIEW, [], |r| r.get("n"))?;
            if view > 0 {
                conn.execute_batch("DROP VIEW miss_causes")?;
            }
        }
        conn.execute_batch(queries::EVENTS_SCHEMA)?;
        queries::install_views(&conn, false, queries::Fresh::ALL)?;
        conn.execute_batch("COMMIT")
    })();
    if let Err(e) = schema {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(dberr(e));
    }
    // Appends run on the append thread (`pipeline.rs`: the caller parses meanwhile), one
    // DuckDB thread each; DuckDB's worker threads only add hand-offs to them (1M lines on 2 cores: 0.80-0.84 s with one thread, 0.88-0.90 s with two; 10M
    // lines 7.6 s against 8.1 s, and 4 MB less). A connection that serves queries asks
    // for more (`query_connector`). The buffer pool is capped so a tailer stays small
    // whatever the log size (measured in BENCHMARKS.md); larger queries spill to disk.
    // Nothing of ours reads or writes files through DuckDB but the attached database, so
    // nothing a query could ask for may either (COPY ... TO, read_csv, EXPORT, ATTACH).
    // The classification's temporary tables carry their order in a column (`seq`): keeping
    // rows in insertion order as well cost 5-10% of a 2M-line ingest (8.2-8.9 s against
    // 9.3-9.8 s, alternately).
    conn.execute_batch(&format!(
        "SET threads = 1; SET memory_limit = '{INGEST_MEMORY_MB}MB'; SET enable_external_access = false; SET preserve_insertion_order = false;"
    ))
    .map_err(dberr)?;
    Ok((database, conn))
}

/// The names `hit_rows` refers to by id.
pub(super) fn load_names(conn: &Connection, db: &Path) -> Result<Names, IngestError> {
    let dberr = db_error(db);
    let mut stmt = conn.prepare(queries::INGEST_NAMES_LOAD).map_err(dberr)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i32>("id")?, r.get::<_, String>("name")?)))
        .map_err(dberr)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(dberr)?;
    Ok(Names::load(rows))
}
