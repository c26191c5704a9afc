//! Keeps a process's hold on its database file. DuckDB locks the file with a POSIX record
//! lock, and POSIX drops every such lock a process holds on a file as soon as the process
//! closes *any* descriptor of that file. DuckDB lets a query read the database's own files
//! even with external access off (`read_csv('<db>')`, `read_blob('<db>.wal')`), and closing
//! what it opened would silently free the file for a second writer. So a query server
//! refuses texts that name those files ([`names_database_files`]) and, after every request,
//! takes the lock again ([`LockKeeper::reassert`]) on a descriptor it never closes.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Holds a descriptor of the database file, to lock it again after each request.
pub struct LockKeeper {
    path: PathBuf,
    file: File,
    exclusive: bool,
}

impl LockKeeper {
    /// `exclusive`: the process writes the database (a write lock), else a read lock.
    pub fn new(path: &Path, exclusive: bool) -> std::io::Result<LockKeeper> {
        let file = std::fs::OpenOptions::new().read(true).write(exclusive).open(path)?;
        let keeper = LockKeeper {
            path: path.to_path_buf(),
            file,
            exclusive,
        };
        keeper.reassert()?;
        Ok(keeper)
    }

    /// Takes the whole-file lock again (a no-op while the process still holds it). Fails if
    /// another process took the file meanwhile.
    pub fn reassert(&self) -> std::io::Result<()> {
        // SAFETY: flock is plain data; F_SETLK on a descriptor we own.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = if self.exclusive { libc::F_WRLCK } else { libc::F_RDLCK } as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = 0;
        fl.l_len = 0;
        if unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_SETLK, &fl) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether `sql` names one of the database's own files or its spill directory (by file
/// name, case-insensitively): `ev.duckdb`, `ev.duckdb.wal`, `ev.duckdb.tmp`.
pub fn names_database_files(sql: &str, db: &Path) -> bool {
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else { return false };
    !name.is_empty() && sql.to_lowercase().contains(&name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_dropped_by_closing_another_descriptor_is_taken_again() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ev.duckdb");
        std::fs::write(&p, b"x").unwrap();
        let keeper = LockKeeper::new(&p, true).unwrap();
        // Another descriptor of the same file, opened and closed in this process: POSIX
        // drops the process's lock.
        drop(File::open(&p).unwrap());
        // Whether another process sees the file locked (F_GETLK answers for other
        // processes only, so a child asks).
        let held_elsewhere = |p: &Path| -> bool {
            let f = std::fs::OpenOptions::new().read(true).write(true).open(p).unwrap();
            let mut fl: libc::flock = unsafe { std::mem::zeroed() };
            fl.l_type = libc::F_WRLCK as libc::c_short;
            fl.l_whence = libc::SEEK_SET as libc::c_short;
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
                unsafe { libc::_exit(if r == 0 && fl.l_type != libc::F_UNLCK as libc::c_short { 1 } else { 0 }) };
            }
            let mut status = 0;
            unsafe { libc::waitpid(pid, &mut status, 0) };
            libc::WEXITSTATUS(status) == 1
        };
        assert!(!held_elsewhere(&p), "closing another descriptor dropped the lock (POSIX)");
        keeper.reassert().unwrap();
        assert!(held_elsewhere(&p), "reasserted");
        assert!(names_database_files("select * from read_csv('/x/EV.duckdb.wal')", &p));
        assert!(!names_database_files("select * from events", &p));
    }
}
