//! `cachescope sql` writes nothing, directly or through a running tailer: a table of hostile
//! texts (several statements, comments hiding a second one, COPY, EXPORT, ATTACH, SET, PRAGMA,
//! CALL, CREATE TEMP, INSTALL, ...) is refused, every table keeps its rows, no setting
//! changes and no file appears.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("cachescope")
}

fn sql(db: &Path, q: &str) -> Output {
    // After `--`: a text may start with `--` (a comment).
    Command::new(bin()).args(["sql", "--format", "csv", "--db"]).arg(db).arg("--").arg(q).output().unwrap()
}

fn csv_rows(o: &Output) -> Vec<String> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap().lines().skip(1).map(String::from).collect()
}

/// Every table of the database with its row count, and the settings a text could change.
fn state(db: &Path) -> Vec<String> {
    let tables = csv_rows(&sql(db, "SELECT database_name || '.' || schema_name || '.' || table_name FROM duckdb_tables() ORDER BY ALL"));
    assert!(tables.len() >= 4, "{tables:?}");
    let mut out = Vec::new();
    for t in tables {
        // Names read back from the database's own catalog (ours), quoted per part.
        let quoted: Vec<String> = t.split('.').map(|p| format!("\"{p}\"")).collect();
        let n = csv_rows(&sql(db, &format!("SELECT count(*) FROM {}", quoted.join("."))));
        out.push(format!("{t}={}", n[0]));
    }
    out.extend(csv_rows(&sql(
        db,
        "SELECT current_setting('threads'), current_setting('enable_external_access'), current_setting('autoinstall_known_extensions'), (SELECT count(*) FROM duckdb_databases()), (SELECT count(*) FROM duckdb_views() WHERE NOT internal), (SELECT count(*) FROM duckdb_functions()), (SELECT count(*) FROM duckdb_types())",
    )));
    out
}

fn hostile(out: &Path, db: &Path) -> Vec<String> {
    let o = out.display();
    let db = db.display();
    vec![
        // Reading the database's own files would close a descriptor of it in the process
        // that holds it, and POSIX would drop that process's lock (src/query/lock.rs).
        format!("select * from read_csv('{db}')"),
        format!("select * from read_blob('{db}.wal')"),
        // The two found by a user, then variations.
        "select 1; commit; delete from event_rows; select 1".into(),
        format!("select 1; copy (select 42 as x) to '{o}/x.csv'; select 1"),
        "select 1 /* ; */ ; delete from event_rows".into(),
        "select 1; -- a comment\ndelete from hit_rows".into(),
        "/* select */ delete from event_rows".into(),
        "-- select\ndelete from event_rows".into(),
        "begin; delete from event_rows; commit".into(),
        "delete from event_rows".into(),
        "update event_rows set level = 'X'".into(),
        "insert into ingest_names values (999999, 'x')".into(),
        "drop table event_rows".into(),
        "drop view events".into(),
        "create or replace view events as select 1".into(),
        "create temp table t as select 1".into(),
        "create table t as select 1".into(),
        "create macro m() as 1".into(),
        format!("copy event_rows to '{o}/rows.csv'"),
        format!("copy (select 1) to '{o}/one.parquet' (format parquet)"),
        format!("export database '{o}/export'"),
        format!("attach '{o}/other.duckdb' as other"),
        "detach cachescope".into(),
        "set memory_limit = '10GB'".into(),
        "set threads = 1".into(),
        "reset threads".into(),
        "set enable_external_access = true".into(),
        "pragma memory_limit = '10GB'".into(),
        "pragma enable_profiling".into(),
        "call pragma_version()".into(),
        "install httpfs".into(),
        "load httpfs".into(),
        "create secret s (type s3, key_id 'a', secret 'b')".into(),
        "checkpoint".into(),
        "vacuum".into(),
        "explain analyze delete from event_rows".into(),
        "explain delete from event_rows".into(),
        format!("select * from read_csv('{o}/../ev.duckdb')"),
        format!("select * from read_text('/etc/hostname')"),
        "select * from query('delete from event_rows')".into(),
        "with d as (delete from event_rows returning *) select count(*) from d".into(),
        "select 1; select 2".into(),
        "select 'unterminated".into(),
        "\u{1b}[2J\u{7f}garbage\u{1}".into(),
        ";".into(),
        "".into(),
    ]
}

fn refuses_everything(db: &Path, out: &Path, how: &str) {
    let before = state(db);
    for q in hostile(out, db) {
        if how.starts_with("through") {
            assert!(std::os::unix::net::UnixStream::connect(db.with_extension("duckdb.sock")).is_ok(), "{how}: the tailer is gone before `{q}`");
        }
        let o = sql(db, &q);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{how}: `{q}` was not refused: {}{err}", String::from_utf8_lossy(&o.stdout));
        assert!(!err.is_empty(), "{how}: `{q}`: no message");
    }
    // The message for several statements says what to do.
    let err = String::from_utf8(sql(db, "select 1; select 2").stderr).unwrap();
    assert!(err.contains("2 statements") && err.contains("one statement per query"), "{how}: {err}");
    let err = String::from_utf8(sql(db, "delete from event_rows").stderr).unwrap();
    assert!(err.contains("DELETE statements are refused"), "{how}: {err}");
    assert_eq!(state(db), before, "{how}: something changed");
    let left: Vec<_> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "{how}: files appeared: {left:?}");
    // Reading still works, with comments and a trailing semicolon.
    let n = csv_rows(&sql(db, "-- how many\n/* all */ SELECT count(*) FROM events;"));
    assert_eq!(n.len(), 1, "{how}");
}

#[test]
fn sql_refuses_every_write_directly_and_through_a_running_tailer() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("trading-system.log");
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/disk_full/trading-system.log.zst")).unwrap();
    std::fs::write(&log, zstd::decode_all(&z[..]).unwrap()).unwrap();
    let db = d.path().join("ev.duckdb");
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let ing = Command::new(bin()).args(["ingest", "--db"]).arg(&db).arg(&log).output().unwrap();
    assert!(ing.status.success(), "{}", String::from_utf8_lossy(&ing.stderr));
    refuses_everything(&db, &out, "direct");

    let tail_err = d.path().join("tail.err");
    let mut tail: Child = Command::new(bin())
        .args(["tail", "--db"])
        .arg(&db)
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&tail_err).unwrap())
        .spawn()
        .unwrap();
    let sock = d.path().join("ev.duckdb.sock");
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "the tailer never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    refuses_everything(&db, &out, "through the tailer");
    assert!(tail.try_wait().unwrap().is_none(), "the tailer stopped: {}", std::fs::read_to_string(&tail_err).unwrap());
    // A raw request with several statements, a NUL byte and a huge line, straight to the
    // socket: refused, and the tailer goes on.
    for req in [
        serde_json::json!({"sql": "select 1; delete from event_rows; select 1"}).to_string(),
        serde_json::json!({"sql": "select 1\u{0}; delete from event_rows"}).to_string(),
        "x".repeat(3 << 20),
        "{\"sql\": 12}".to_string(),
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        let _ = s.write_all(req.as_bytes());
        let _ = s.write_all(b"\n");
        let mut answer = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(s).read_line(&mut answer).unwrap();
        assert!(answer.contains("\"ok\":false"), "{answer}");
    }
    refuses_everything(&db, &out, "through the tailer, after raw requests");
    // A path the name check cannot see: whatever DuckDB does with it, the tailer holds its
    // lock afterwards (a second writer is refused, and readers still go through the socket).
    let dir = d.path().display();
    let _ = sql(&db, &format!("select * from read_csv('{dir}/e' || 'v.duckdb')"));
    let second = Command::new(bin()).args(["ingest", "--db"]).arg(&db).arg(&log).output().unwrap();
    assert_eq!(second.status.code(), Some(1), "a second writer got the database: {}", String::from_utf8_lossy(&second.stderr));
    assert!(state(&db)[0].starts_with("cachescope."), "the reader opened the file itself: the tailer lost its lock");
    unsafe { libc::kill(tail.id() as i32, libc::SIGTERM) };
    assert!(tail.wait().unwrap().success());
}

/// A reader's DuckDB memory on the file is 1000 MB unless `CACHESCOPE_QUERY_MEMORY` says
/// (one knob with `tail --query-memory`'s default); a bad value is an error that names it.
#[test]
fn a_reader_s_memory_cap_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ev.duckdb");
    duckdb::Connection::open(&db).unwrap().execute_batch("CREATE TABLE t (x INT)").unwrap();
    let cap = |env: Option<&str>| -> Output {
        let mut c = Command::new(bin());
        c.args(["sql", "--format", "csv", "--db"]).arg(&db).arg("SELECT current_setting('memory_limit') AS m");
        match env {
            Some(v) => c.env("CACHESCOPE_QUERY_MEMORY", v),
            None => c.env_remove("CACHESCOPE_QUERY_MEMORY"),
        };
        c.output().unwrap()
    };
    // DuckDB shows MiB: 1000 MB is 953.6 MiB, 300 MB 286.1 MiB, 4 GB 3.7 GiB.
    assert_eq!(csv_rows(&cap(None)), ["953.6 MiB"]);
    assert_eq!(csv_rows(&cap(Some("300MB"))), ["286.1 MiB"]);
    assert_eq!(csv_rows(&cap(Some("4GB"))), ["3.7 GiB"]);
    let bad = cap(Some("lots"));
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("CACHESCOPE_QUERY_MEMORY=lots") && err.contains("give a size"), "{err}");
}
