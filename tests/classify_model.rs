//! Model test of the incremental classification: the engine's logs of every scenario are
//! ingested in pieces (random batch sizes, rotated files, crashes between batches, failed
//! commits, restarts), and the `miss_causes` table the ingester keeps must equal the
//! classification of the whole history (`miss_causes_full`) whenever no line came late; when
//! some did (a crash of the test hook stops one file, and the next file is read before the
//! rest of it), they are counted, and `reclassify` brings the table back to the reference. An
//! archive ingested after its successor is counted late, the report says so, and
//! `reclassify` clears it. The episodes the ingester keeps equal the whole history's over the
//! causes as kept, late lines or not.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use cachescope::ingest::formats::Formats;
use cachescope::ingest::{Faults, Ingester, Steps};
use proptest::prelude::*;

const SCENARIOS: [&str; 10] = [
    "steady",
    "thrashing",
    "invalidation_storm",
    "config_change",
    "disk_full",
    "memory_pressure",
    "manifest_outage",
    "external_deletion",
    "retention",
    "new_symbols",
];

fn log_lines(scenario: &str) -> Vec<String> {
    let p = format!("{}/fixtures/{scenario}/trading-system.log.zst", env!("CARGO_MANIFEST_DIR"));
    let text = String::from_utf8(zstd::decode_all(&std::fs::read(p).unwrap()[..]).unwrap()).unwrap();
    text.lines().map(str::to_string).collect()
}

fn write(p: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(p).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn ingest(db: &Path, paths: &[PathBuf], batch: usize, faults: Faults) -> Result<(), String> {
    ingest_in_steps(db, paths, batch, faults, (Steps::default(), None))
}

/// Steps inside a transaction need several chunks in it: `Some(rows)` per chunk.
fn ingest_in_steps(db: &Path, paths: &[PathBuf], batch: usize, faults: Faults, steps: (Steps, Option<usize>)) -> Result<(), String> {
    let mut ing = Ingester::open(db, Formats::default()).map_err(|e| e.to_string())?;
    ing.set_batch_lines(batch);
    match steps.1 {
        Some(rows) => ing.set_chunk_rows(rows),
        None => ing.set_small_chunks(),
    }
    ing.set_faults(faults);
    ing.set_steps(steps.0);
    ing.ingest(paths, false, |_| {}).map(|_| ()).map_err(|e| e.to_string())
}

/// Rows of the table that the reference lacks and the other way round, the lines counted
/// late, and the table's rows.
fn compare(db: &Path) -> (i64, i64, i64, i64) {
    let c = duckdb::Connection::open(db).unwrap();
    let cols = "ts, symbol, feature_set, key, slot, cause, basis, logged_reason, outcome, config, data_version, file_id, line_no";
    let differ = |a: &str, b: &str| -> i64 {
        c.query_row(&format!("SELECT count(*) FROM ((SELECT {cols} FROM {a}) EXCEPT ALL (SELECT {cols} FROM {b}))"), [], |r| r.get(0))
            .unwrap()
    };
    let late: i64 = c.query_row("SELECT coalesce(sum(late_events), 0) FROM classify_state", [], |r| r.get(0)).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM miss_causes", [], |r| r.get(0)).unwrap();
    (differ("miss_causes", "miss_causes_full"), differ("miss_causes_full", "miss_causes"), late, n)
}

/// Rows of `request_minutes` that its definition over `events` lacks, and the other way round;
/// the same of `evaluations_5m` against the evaluations computed from `events` here.
fn compare_minutes(db: &Path) -> (i64, i64, i64, i64) {
    let c = duckdb::Connection::open(db).unwrap();
    let kept = "SELECT minute, feature_set, hits, misses, hit_bytes, miss_bytes, latency_us, first_ts, last_ts FROM request_minutes";
    let reference = "SELECT * FROM request_minutes_of('-infinity'::TIMESTAMP, 'infinity'::TIMESTAMP)";
    let differ = |a: &str, b: &str| -> i64 {
        c.query_row(&format!("SELECT count(*) FROM (({a}) EXCEPT ALL ({b}))"), [], |r| r.get(0)).unwrap()
    };
    let evaluations = "SELECT eval_time, hits, requests FROM evaluations_5m";
    (differ(kept, reference), differ(reference, kept), differ(evaluations, common::EVALUATIONS_FROM_EVENTS), differ(common::EVALUATIONS_FROM_EVENTS, evaluations))
}


/// Episodes the ingester kept (closed clusters plus the open ones found from the signals,
/// the `episodes` view) that the whole history's (`episodes_full`) lacks, the other way
/// round, and the clusters kept closed (so a case that closes none is seen).
fn compare_episodes(db: &Path) -> (i64, i64, i64) {
    let c = duckdb::Connection::open(db).unwrap();
    let differ = |a: &str, b: &str| -> i64 {
        c.query_row(&format!("SELECT count(*) FROM ((SELECT * FROM {a}) EXCEPT ALL (SELECT * FROM {b}))"), [], |r| r.get(0)).unwrap()
    };
    let closed: i64 = c.query_row("SELECT count(*) FROM episode_clusters", [], |r| r.get(0)).unwrap();
    (differ("episodes", "episodes_full"), differ("episodes_full", "episodes"), closed)
}

/// One way of ingesting a log: cut into files, in batches, with crashes, a failed commit,
/// steps inside transactions and perhaps one part read last (a late archive).
#[derive(Debug)]
struct Case {
    cuts: Vec<usize>,
    batch: usize,
    crashes: Vec<u64>,
    fail_commit: Option<u64>,
    in_steps: Option<(u64, usize, usize, u64)>,
    archive_last: Option<usize>,
}

fn case(batches: std::ops::Range<usize>) -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(1..1000usize, 0..4),
        batches,
        proptest::collection::vec(1..6u64, 0..3),
        proptest::option::of(1..6u64),
        proptest::option::of((1..400u64, 1..64usize, 20..1000usize, 50..5000u64)),
        proptest::option::of(0..4usize),
    )
        .prop_map(|(cuts, batch, crashes, fail_commit, in_steps, archive_last)| Case { cuts, batch, crashes, fail_commit, in_steps, archive_last })
}

/// Ingests `scenario`'s log as `case` says and checks every derived table against its
/// definition over `events`; returns the clusters kept closed.
fn check(scenario: &str, case: &Case) -> Result<i64, TestCaseError> {
    // Steps of the classification and merges of the figures inside a transaction, as a
    // long catch-up makes them (small, so that these logs make many: chunks of a few
    // hundred rows, a step every few hundred staged rows, a merge every few minutes), and
    // the kept episodes advanced a few thousand rows at a time.
    let steps = match case.in_steps {
        Some((classify_rows, minute_rows, chunk, episode_rows)) => (Steps { classify_rows, minute_rows, episode_rows }, Some(chunk)),
        None => (Steps::default(), None),
    };
    let lines = log_lines(scenario);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.duckdb");
    // The log cut into consecutive files (as rotation leaves them), read oldest first...
    let mut bounds: Vec<usize> = case.cuts.iter().map(|c| c * lines.len() / 1000).collect();
    bounds.push(0);
    bounds.push(lines.len());
    bounds.sort();
    bounds.dedup();
    let mut files: Vec<PathBuf> = bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let p = dir.path().join(format!("part-{i}.log"));
            write(&p, &lines[w[0]..w[1]]);
            p
        })
        .collect();
    // ...but perhaps one part after all the others (a late archive).
    if let Some(k) = case.archive_last.filter(|k| *k + 1 < files.len()) {
        let late = files.remove(k);
        files.push(late);
    }
    // Crashes (as if killed) after some batches and a failed commit, then a clean run.
    for stop in &case.crashes {
        let _ = ingest_in_steps(&db, &files, case.batch, Faults { stop_after_batches: Some(*stop), fail_commit_after: None }, steps);
    }
    if let Some(n) = case.fail_commit {
        let _ = ingest_in_steps(&db, &files, case.batch, Faults { stop_after_batches: None, fail_commit_after: Some(n) }, steps);
    }
    ingest_in_steps(&db, &files, case.batch, Faults::default(), steps).unwrap();
    prop_assert_eq!(compare_minutes(&db), (0, 0, 0, 0), "request_minutes, evaluations_5m ({:?})", case);
    // Episodes equal the whole history's over the causes as kept, late lines or not: a late
    // line reopens the clusters it can change.
    let (extra_episodes, missing_episodes, closed) = compare_episodes(&db);
    prop_assert_eq!((extra_episodes, missing_episodes), (0, 0), "episodes: {} {:?}", scenario, case);
    let (extra, missing, late, n) = compare(&db);
    prop_assert!(n > 0, "no misses classified");
    if late == 0 {
        prop_assert_eq!((extra, missing), (0, 0), "{} {:?}", scenario, case);
    } else {
        let mut ing = Ingester::open(&db, Formats::default()).unwrap();
        ing.rebuild_derived(&mut |_, _| {}).unwrap();
        drop(ing);
        prop_assert_eq!(compare(&db), (0, 0, 0, n), "{} after reclassify", scenario);
        let (extra_episodes, missing_episodes, _) = compare_episodes(&db);
        prop_assert_eq!((extra_episodes, missing_episodes), (0, 0), "episodes after reclassify");
    }
    Ok(closed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn kept_causes_equal_the_full_classification(scenario in 0..SCENARIOS.len(), case in case(100..3000)) {
        check(SCENARIOS[scenario], &case)?;
    }
}

proptest! {
    // The scenarios' logs last 40 minutes: too short for most clusters to close (the data
    // must go on 15 minutes past a cluster's last signal). The mixed day's 7 hours close
    // dozens, and its late parts reopen them.
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn kept_episodes_equal_the_whole_history(case in case(1000..8000)) {
        let closed = check("mixed_day", &case)?;
        prop_assert!(closed > 0, "no cluster closed");
    }
}

#[test]
fn an_archive_read_after_its_successor_is_counted_late_until_reclassified() {
    let lines = log_lines("mixed_day");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.duckdb");
    let (old, new) = (dir.path().join("old.log"), dir.path().join("new.log"));
    let half = lines.len() / 2;
    write(&old, &lines[..half]);
    write(&new, &lines[half..]);
    ingest(&db, std::slice::from_ref(&new), 5000, Faults::default()).unwrap();
    ingest(&db, std::slice::from_ref(&old), 5000, Faults::default()).unwrap();
    let (_, _, late, n) = compare(&db);
    let c = duckdb::Connection::open(&db).unwrap();
    let (late_misses, classified): (i64, i64) = c
        .query_row(
            "SELECT (SELECT late_misses FROM classify_state), (SELECT count(*) FROM event_rows WHERE classified_event(event) AND file_id = (SELECT file_id FROM ingest_files WHERE path LIKE '%old.log'))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(c);
    let old_misses = lines[..half].iter().filter(|l| l.contains("event=miss")).count() as i64;
    assert!(old_misses > 0);
    assert_eq!((late, late_misses), (classified, old_misses), "every line of the late archive is counted late");
    assert_eq!(n, lines.iter().filter(|l| l.contains("event=miss")).count() as i64);
    // The archive's signals and misses reopened the episodes they could change: the kept
    // ones equal the whole history's.
    let (extra, missing, closed) = compare_episodes(&db);
    assert!(closed > 0);
    assert_eq!((extra, missing), (0, 0), "episodes after the late archive");
    let bin = assert_cmd::cargo::cargo_bin("cachescope");
    let out = std::process::Command::new(&bin).args(["report", "--format", "json", "--db"]).arg(&db).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["late_lines"].as_i64(), Some(late), "{report}");
    let text = std::process::Command::new(&bin).args(["report", "--db"]).arg(&db).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains(&format!("Note: {late} log lines the classification reads")));
    // `reclassify` classifies them in the log's order.
    let mut ing = Ingester::open(&db, Formats::default()).unwrap();
    ing.rebuild_derived(&mut |_, _| {}).unwrap();
    drop(ing);
    assert_eq!(compare(&db), (0, 0, 0, n));
    let out = std::process::Command::new(&bin).args(["report", "--format", "json", "--db"]).arg(&db).output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.get("late_lines").is_none(), "{report}");
}
