//! `cachescope export`: a host's figures and classified misses as Hive-partitioned Parquet,
//! read back by DuckDB with the same totals and causes as the database; idempotent and atomic;
//! the same files through a running `tail`.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn cachescope() -> Command {
    let mut c = Command::cargo_bin("cachescope").unwrap();
    c.env_remove("CACHESCOPE_DB");
    c
}

fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let z = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mixed_day/trading-system.log.zst")).unwrap();
    let log = dir.join("trading-system.log");
    std::fs::write(&log, zstd::decode_all(&z[..]).unwrap()).unwrap();
    (log, dir.join("ev.duckdb"))
}

fn export(db: &Path, out: &Path) {
    let o = cachescope().args(["export", "--host", "web-1", "--out"]).arg(out).arg("--db").arg(db).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                v.push((e.path().strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    v.sort();
    v
}

/// Every row of a table's files, with the host and date its partition names.
fn read_table(out: &Path, table: &str) -> Vec<(String, String, arrow::array::RecordBatch)> {
    let mut v = Vec::new();
    for (rel, _) in files(&out.join(table)) {
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().to_string()).collect();
        let host = parts[0].strip_prefix("host=").unwrap().to_string();
        let date = parts[1].strip_prefix("date=").unwrap().to_string();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(out.join(table).join(&rel)).unwrap()).unwrap().build().unwrap();
        for b in reader {
            v.push((host.clone(), date.clone(), b.unwrap()));
        }
    }
    v
}

fn sum_by(rows: &[(String, String, arrow::array::RecordBatch)], key: impl Fn(&str, &str, &arrow::array::RecordBatch, usize) -> String, value: impl Fn(&arrow::array::RecordBatch, usize) -> i64) -> Vec<(String, i64)> {
    let mut m = std::collections::BTreeMap::new();
    for (h, d, b) in rows {
        for i in 0..b.num_rows() {
            *m.entry(key(h, d, b, i)).or_insert(0) += value(b, i);
        }
    }
    m.into_iter().collect()
}

fn col<'a>(b: &'a arrow::array::RecordBatch, name: &str) -> &'a dyn arrow::array::Array {
    b.column_by_name(name).unwrap().as_ref()
}

fn str_at(b: &arrow::array::RecordBatch, name: &str, i: usize) -> String {
    use arrow::array::AsArray;
    col(b, name).as_string::<i32>().value(i).to_string()
}

fn i64_at(b: &arrow::array::RecordBatch, name: &str, i: usize) -> i64 {
    use arrow::array::AsArray;
    col(b, name).as_primitive::<arrow::datatypes::Int64Type>().value(i)
}

fn db_rows(db: &Path, sql: &str) -> Vec<(String, i64)> {
    let out = cachescope().args(["sql", "--format", "csv", "--db"]).arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (a, b) = l.rsplit_once(',').unwrap();
            (a.to_string(), b.parse().unwrap())
        })
        .collect()
}

#[test]
fn exported_files_read_back_with_the_databases_totals_and_causes_idempotently() {
    let d = tempfile::tempdir().unwrap();
    let (log, db) = fixture(d.path());
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let out = d.path().join("fleet");
    export(&db, &out);
    let first = files(&out);
    let names: Vec<String> = first.iter().map(|f| f.0.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "episodes/host=web-1/date=2026-11-24/part-0.parquet",
            "misses/host=web-1/date=2026-11-24/part-0.parquet",
            "request_minutes/host=web-1/date=2026-11-24/part-0.parquet"
        ]
    );
    // The figures: the same requests per feature set; the host and day from the partitions.
    let minutes = read_table(&out, "request_minutes");
    let exported = sum_by(&minutes, |h, d, b, i| format!("{h} {d} {}", str_at(b, "feature_set", i)), |b, i| i64_at(b, "hits", i) + i64_at(b, "misses", i));
    let stored = db_rows(&db, "SELECT 'web-1 2026-11-24 ' || feature_set AS k, sum(hits + misses) AS n FROM request_minutes GROUP BY ALL ORDER BY 1");
    assert_eq!(exported, stored);
    // The misses: the same causes, each with its log line.
    let misses = read_table(&out, "misses");
    let exported = sum_by(&misses, |_, _, b, i| str_at(b, "cause", i), |b, i| i64::from(col(b, "raw").is_valid(i) && i64_at(b, "line_no", i) > 0));
    let stored = db_rows(&db, "SELECT cause, count(*) AS n FROM miss_causes GROUP BY ALL ORDER BY 1");
    assert_eq!(exported, stored);
    assert!(exported.len() >= 7, "the mixed day's causes: {exported:?}");
    // The episodes: the same kinds and misses, each with its first evidence line.
    let episodes = read_table(&out, "episodes");
    let exported = sum_by(&episodes, |_, _, b, i| str_at(b, "kind", i), |b, i| i64_at(b, "misses", i) * i64::from(col(b, "first_miss_line").is_valid(i)));
    let stored = db_rows(&db, "SELECT kind, sum(misses)::BIGINT AS n FROM episodes GROUP BY ALL ORDER BY 1");
    assert_eq!(exported, stored);
    assert!(exported.len() >= 5, "the mixed day's episodes: {exported:?}");
    // Again: the same bytes, replaced in place. A temporary file a killed export left is never
    // matched by the glob and is removed by the next run.
    let part = out.join("misses/host=web-1/date=2026-11-24");
    let tmp = part.join(".part-0.parquet.999999.tmp");
    std::fs::write(&tmp, b"half a file").unwrap();
    let visible: Vec<_> = glob::glob(&format!("{}/*/*/*/*.parquet", out.display())).unwrap().collect();
    assert_eq!(visible.len(), 3, "a `*.parquet` glob sees only whole files");
    export(&db, &out);
    assert!(!tmp.exists());
    assert_eq!(files(&out), first);
    // A host name that would leave its directory is refused.
    let bad = cachescope().args(["export", "--host", "../x", "--out"]).arg(&out).arg("--db").arg(&db).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--host `../x`"));
}

#[test]
fn export_through_a_running_tail_writes_the_same_files() {
    let d = tempfile::tempdir().unwrap();
    let (log, db) = fixture(d.path());
    cachescope().arg("ingest").arg("--db").arg(&db).arg(&log).assert().success();
    let direct = d.path().join("direct");
    export(&db, &direct);
    let tail = common::spawn_tail(&db, &log);
    common::wait_for_socket(&db);
    let served = d.path().join("served");
    export(&db, &served);
    common::stop_tail(tail);
    assert_eq!(files(&served), files(&direct));
}
