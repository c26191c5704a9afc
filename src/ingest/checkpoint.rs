//! Checkpoints: where each file (by fingerprint) stands — how far it was read, under which
//! paths, in which format. Loaded when the database opens; written by the sink in the same
//! transaction as the rows they account for, so a crash loses or repeats nothing.

use std::collections::HashMap;
use std::path::Path;

use duckdb::{params, Connection};

use super::{db_error, IngestError};
use crate::queries;

/// Where a file stands.
#[derive(Debug, Clone, Default)]
pub(super) struct FileState {
    pub file_id: String,
    pub path: String,
    pub paths: Vec<String>,
    pub dev: u64,
    pub inode: u64,
    pub format: Option<String>,
    pub offset: u64,
    pub line_no: u64,
    pub tail_hash: String,
    pub events: u64,
    pub quarantined: u64,
}

/// Every file's checkpoint, by fingerprint.
pub(super) fn load(conn: &Connection, db: &Path) -> Result<HashMap<String, FileState>, IngestError> {
    let dberr = db_error(db);
    let mut stmt = conn.prepare(queries::INGEST_FILES_LOAD).map_err(dberr)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(FileState {
                file_id: r.get("file_id")?,
                path: r.get("path")?,
                paths: r.get::<_, String>("paths")?.split(';').map(String::from).collect(),
                dev: r.get::<_, Option<u64>>("dev")?.unwrap_or(0),
                inode: r.get::<_, Option<u64>>("inode")?.unwrap_or(0),
                format: r.get("format")?,
                offset: r.get::<_, i64>("byte_offset")? as u64,
                line_no: r.get::<_, i64>("line_no")? as u64,
                tail_hash: r.get("tail_hash")?,
                events: r.get::<_, i64>("events")? as u64,
                quarantined: r.get::<_, i64>("quarantined")? as u64,
            })
        })
        .map_err(dberr)?;
    let mut files = HashMap::new();
    for r in rows {
        let s = r.map_err(dberr)?;
        files.insert(s.file_id.clone(), s);
    }
    Ok(files)
}

/// Writes (replaces) `state`'s checkpoint, inside the caller's transaction.
pub(super) fn save(conn: &Connection, db: &Path, state: &FileState) -> Result<(), IngestError> {
    conn.execute(
        queries::INGEST_CHECKPOINT,
        params![
            state.file_id,
            state.path,
            state.paths.join(";"),
            state.dev,
            state.inode,
            state.format,
            state.offset as i64,
            state.line_no as i64,
            state.tail_hash,
            state.events as i64,
            state.quarantined as i64,
            chrono::Utc::now().naive_utc(),
        ],
    )
    .map_err(db_error(db))?;
    Ok(())
}
