//! Finding a fleet's files: a directory or a glob (of directories or of files) down to the
//! Parquet files of the export layout, `<table>/host=<host>/date=<YYYY-MM-DD>/<name>.parquet`
//! (docs/export.md). Hidden files (an export's temporary `.part-0.parquet.<pid>.tmp`) are never
//! taken; a `.parquet` file outside the layout, or one host's day found in two places (two
//! copies of an export would count twice), is an error rather than a silent guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::FleetError;

/// How deep below a given directory files are looked for (the layout needs 4 levels; a
/// directory of export roots 5; more is a symlink loop or the wrong directory).
const MAX_DEPTH: usize = 8;

/// One exported file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Part {
    pub table: &'static str,
    pub host: String,
    pub day: NaiveDate,
    pub path: PathBuf,
}

/// The exported files `pattern` names, sorted by table, host, day and path.
pub fn discover(pattern: &str) -> Result<Vec<Part>, FleetError> {
    let matches: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
        let paths = glob::glob(pattern).map_err(|source| FleetError::Pattern { pattern: pattern.into(), source })?;
        paths
            .map(|p| p.map_err(|e| FleetError::Read { path: e.path().to_path_buf(), source: e.into() }))
            .collect::<Result<_, _>>()?
    } else {
        let p = PathBuf::from(pattern);
        if !p.exists() {
            return Err(FleetError::NoFiles { pattern: pattern.into() });
        }
        vec![p]
    };
    let mut files = Vec::new();
    for m in matches {
        if m.is_dir() {
            walk(&m, 0, &mut files)?;
        } else if !hidden(&m) {
            files.push(m);
        }
    }
    let mut parts: BTreeMap<PathBuf, Part> = BTreeMap::new();
    for f in files {
        let part = part_of(&f)?;
        let key = std::fs::canonicalize(&f).map_err(|source| FleetError::Read { path: f.clone(), source })?;
        parts.insert(key, part);
    }
    if parts.is_empty() {
        return Err(FleetError::NoFiles { pattern: pattern.into() });
    }
    // One host's day of one table lives in one directory (its files are that day's parts).
    let mut dirs: BTreeMap<(&'static str, &str, NaiveDate), &Path> = BTreeMap::new();
    for (canonical, p) in &parts {
        let dir = canonical.parent().unwrap_or(canonical);
        if let Some(first) = dirs.insert((p.table, &p.host, p.day), dir) {
            if first != dir {
                return Err(FleetError::Duplicate {
                    table: p.table,
                    host: p.host.clone(),
                    day: p.day,
                    first: first.to_path_buf(),
                    second: dir.to_path_buf(),
                });
            }
        }
    }
    let mut out: Vec<Part> = parts.into_values().collect();
    out.sort();
    Ok(out)
}

fn hidden(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), FleetError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let read = std::fs::read_dir(dir).map_err(|source| FleetError::Read { path: dir.to_path_buf(), source })?;
    for entry in read {
        let entry = entry.map_err(|source| FleetError::Read { path: dir.to_path_buf(), source })?;
        let path = entry.path();
        if hidden(&path) {
            continue;
        }
        if path.is_dir() {
            walk(&path, depth + 1, files)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    Ok(())
}

/// The table, host and day of a file, from its place in the layout.
fn part_of(path: &Path) -> Result<Part, FleetError> {
    let bad = || FleetError::NotInLayout { path: path.to_path_buf() };
    if path.extension().is_none_or(|e| e != "parquet") {
        return Err(bad());
    }
    let names: Vec<String> = path.iter().rev().skip(1).take(3).map(|c| c.to_string_lossy().into_owned()).collect();
    let [date, host, table] = names.as_slice() else { return Err(bad()) };
    let table = crate::export::TABLES.iter().find(|t| **t == table.as_str()).ok_or_else(bad)?;
    let host = host.strip_prefix("host=").filter(|h| crate::export::valid_host(h)).ok_or_else(bad)?;
    let day = date
        .strip_prefix("date=")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(bad)?;
    Ok(Part { table, host: host.to_string(), day, path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"x").unwrap();
        p
    }

    #[test]
    fn a_directory_a_glob_of_roots_and_a_glob_of_files_find_the_same_parts() {
        let d = tempfile::tempdir().unwrap();
        let a = touch(d.path(), "a/request_minutes/host=web-1/date=2026-11-30/part-0.parquet");
        touch(d.path(), "a/request_minutes/host=web-1/date=2026-11-30/.part-0.parquet.77.tmp");
        touch(d.path(), "a/misses/host=web-1/date=2026-11-30/part-0.parquet");
        touch(d.path(), "b/request_minutes/host=web-2/date=2026-11-30/part-0.parquet");
        touch(d.path(), "b/README.txt");
        let root = d.path().to_str().unwrap();
        let all = discover(root).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1], Part { table: "request_minutes", host: "web-1".into(), day: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), path: a });
        assert_eq!(discover(&format!("{root}/*")).unwrap(), all);
        let minutes = discover(&format!("{root}/*/request_minutes/*/*/*.parquet")).unwrap();
        assert_eq!(minutes.iter().map(|p| p.host.as_str()).collect::<Vec<_>>(), ["web-1", "web-2"]);
    }

    #[test]
    fn nothing_found_a_file_outside_the_layout_and_a_day_in_two_places_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_str().unwrap();
        assert!(matches!(discover(&format!("{root}/nope")), Err(FleetError::NoFiles { .. })));
        assert!(matches!(discover(&format!("{root}/*")), Err(FleetError::NoFiles { .. })));
        touch(d.path(), "x/misses/host=web-1/date=2026-11-30/part-0.parquet");
        touch(d.path(), "y/misses/host=web-1/date=2026-11-30/part-0.parquet");
        let e = discover(root).unwrap_err();
        assert!(matches!(&e, FleetError::Duplicate { host, .. } if host == "web-1"), "{e}");
        let stray = touch(d.path(), "z/data.parquet");
        let e = discover(stray.to_str().unwrap()).unwrap_err();
        assert!(matches!(&e, FleetError::NotInLayout { path } if *path == stray), "{e}");
        touch(d.path(), "w/misses/host=../date=2026-11-30/part-0.parquet");
        assert!(matches!(discover(&format!("{root}/w")), Err(FleetError::NotInLayout { .. })));
        touch(d.path(), "v/misses/host=web-1/date=yesterday/part-0.parquet");
        assert!(matches!(discover(&format!("{root}/v")), Err(FleetError::NotInLayout { .. })));
    }
}
