//! Making a new events database file: atomically (made under another name, then renamed),
//! and clearing what a creator killed midway left.

use std::path::Path;

use duckdb::Connection;

use super::{db_error, IngestError};

/// Creates an empty DuckDB file at `db` atomically: made under another name, then renamed.
/// DuckDB writes a new file's header in steps, and a process killed meanwhile left a file
/// DuckDB refuses ("not a valid DuckDB database file") until someone deleted it by hand.
pub(super) fn create_empty(db: &Path) -> Result<(), IngestError> {
    let name = db.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = db.with_file_name(format!(".{name}.creating-{}", std::process::id()));
    let io = |source: std::io::Error| IngestError::Io { path: tmp.clone(), source };
    {
        let conn = Connection::open(&tmp).map_err(db_error(&tmp))?;
        conn.execute_batch("CHECKPOINT").map_err(db_error(&tmp))?;
    }
    let _ = std::fs::remove_file(format!("{}.wal", tmp.display()));
    std::fs::rename(&tmp, db).map_err(io)
}

/// Removes what [`create_empty`] left when its process was killed (its PID no longer runs).
pub(super) fn remove_interrupted_creations(db: &Path) {
    let (Some(dir), Some(name)) = (db.parent(), db.file_name().and_then(|n| n.to_str())) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!(".{name}.creating-");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file.strip_prefix(&prefix).and_then(|r| r.split('.').next()).and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

